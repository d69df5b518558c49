"""The lint phase of a first deploy of a 23-stack lake: cfn-lint in worker processes vs in one process.

    .venv/bin/python benchmarks/lint_phase.py [--rounds 2] [--teams 3] [--pipelines 2] [--datasets 4]

Each measurement is a fresh Python process (as `sdlf deploy` is) that renders every template of the lake and
times `lint_templates` with no cache, i.e. the lint phase of a first deploy; cfn-lint is imported before the
clock starts in both modes, as the CLI imports it at start-up. Modes alternate round by round, so load drifts
hit both alike; the median per mode is compared. Prints figures side by side and their ratio; nothing is asserted.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, header, ratio, table  # noqa: E402

import yaml  # noqa: E402

from deploy_parallel import env_file  # noqa: E402

CHILD = """
import sys, time
from pathlib import Path
from sdlf_cli.config.loader import load_config
from sdlf_cli.lint import lint_templates
from sdlf_cli.render import render_layer
from sdlf_cli.workflows.deploy import all_layers
params, processes = Path(sys.argv[1]), int(sys.argv[2]) or None
cfg = load_config("blint", params)
templates = [t for layer in ["bootstrap", *all_layers(cfg, Path(sys.argv[3]))]
             for t in render_layer(cfg, layer, Path(sys.argv[3]) / "templates")]
started = time.perf_counter()
findings = lint_templates(templates, processes=processes)
print(len(templates), len(findings), time.perf_counter() - started)
"""


def lint_once(params: Path, processes: int) -> tuple[int, int, float]:
    out = subprocess.run([sys.executable, "-c", CHILD, str(params), str(processes), str(ROOT)],
                         check=True, capture_output=True, text=True, cwd=ROOT).stdout.split()
    return int(out[0]), int(out[1]), float(out[2])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--teams", type=int, default=3)
    parser.add_argument("--pipelines", type=int, default=2, help="per team")
    parser.add_argument("--datasets", type=int, default=4, help="per team")
    args = parser.parse_args()
    header("lint phase of a first deploy: cfn-lint in worker processes vs one process")
    with tempfile.TemporaryDirectory(prefix="sdlf-bench-lint-") as tmp:
        params = Path(tmp)
        (params / "base.yaml").write_text((ROOT / "parameters" / "base.yaml").read_text())
        lake = env_file("blint", args.teams, args.pipelines, args.datasets)
        (params / "blint.yaml").write_text(yaml.safe_dump(lake, sort_keys=False))
        seconds: dict[str, list[float]] = {"parallel": [], "serial": []}
        for _ in range(args.rounds):
            for mode, processes in (("parallel", 0), ("serial", 1)):
                templates, findings, took = lint_once(params, processes)
                seconds[mode].append(took)
    par, ser = statistics.median(seconds["parallel"]), statistics.median(seconds["serial"])
    table([
        ["lint phase, no cache", "worker processes (default)", "one process", "one / workers"],
        ["templates (findings)", f"{templates} ({findings})", f"{templates} ({findings})", ""],
        ["runs", " ".join(f"{s:.1f}" for s in seconds["parallel"]), " ".join(f"{s:.1f}" for s in seconds["serial"]), ""],
        ["median", f"{par:.1f} s", f"{ser:.1f} s", ratio(ser, par)],
    ], "lrrr")


if __name__ == "__main__":
    main()
