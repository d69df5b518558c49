"""The lint phase of a first deploy of a 23-stack lake: sdlf's cfn-lint (worker processes, rules loaded once per
process) vs the same in one process, vs cfn-lint's own `lint()` per template (what sdlf called before: it loads
every rule again for each template), in worker processes as sdlf ran it.

    .venv/bin/python benchmarks/lint_phase.py [--rounds 2] [--teams 3] [--pipelines 2] [--datasets 4]

Each measurement is a fresh Python process (as `sdlf deploy` is) that renders every template of the lake and
times `lint_templates` with no cache, i.e. the lint phase of a first deploy; cfn-lint is imported before the
clock starts in every mode, as the CLI imports it at start-up. Modes alternate round by round, so load drifts
hit all alike; the median per mode is compared. Prints figures side by side and their ratio; nothing is asserted.
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

CHILD = """
import sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[5])
from sdlf_cli.config.loader import load_config
from sdlf_cli.lint import lint_templates
from sdlf_cli.render import render_layer
from sdlf_cli.workflows.deploy import all_layers
import lint_phase
params, processes = Path(sys.argv[1]), int(sys.argv[2]) or None
cfg = load_config("blint", params)
templates = [t for layer in ["bootstrap", *all_layers(cfg, Path(sys.argv[3]))]
             for t in render_layer(cfg, layer, Path(sys.argv[3]) / "templates")]
check = lint_phase.cfn_lint_api if sys.argv[4] == "api" else None
started = time.perf_counter()
findings = lint_templates(templates, processes=processes, check=check)
print(len(templates), len(findings), time.perf_counter() - started)
"""


def cfn_lint_api(template):
    """One template through cfn-lint's `lint()`, as sdlf's lint_template did before it kept the rules loaded."""
    from cfnlint.api import ManualArgs, lint

    from sdlf_cli.lint import LEVELS, Finding

    found = {Finding(template.output_name, int(m.linenumber), m.rule.id, str(m.rule.severity).lower(), m.message)
             for m in lint(template.body, config=ManualArgs(regions=[template.region]))}
    return sorted((f for f in found if f.level in LEVELS), key=lambda f: (f.line, f.rule, f.message))


def lint_once(params: Path, processes: int, check: str) -> tuple[int, int, float]:
    here = str(Path(__file__).resolve().parent)
    out = subprocess.run([sys.executable, "-c", CHILD, str(params), str(processes), str(ROOT), check, here],
                         check=True, capture_output=True, text=True, cwd=ROOT).stdout.split()
    return int(out[0]), int(out[1]), float(out[2])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--teams", type=int, default=3)
    parser.add_argument("--pipelines", type=int, default=2, help="per team")
    parser.add_argument("--datasets", type=int, default=4, help="per team")
    args = parser.parse_args()
    from deploy_parallel import env_file

    header("lint phase of a first deploy: sdlf's cfn-lint vs one process vs cfn-lint's lint() per template")
    with tempfile.TemporaryDirectory(prefix="sdlf-bench-lint-") as tmp:
        params = Path(tmp)
        (params / "base.yaml").write_text((ROOT / "parameters" / "base.yaml").read_text())
        lake = env_file("blint", args.teams, args.pipelines, args.datasets)
        (params / "blint.yaml").write_text(yaml.safe_dump(lake, sort_keys=False))
        modes = {"sdlf": (0, "sdlf"), "one": (1, "sdlf"), "api": (0, "api")}
        seconds: dict[str, list[float]] = {mode: [] for mode in modes}
        found: dict[str, str] = {}
        for _ in range(args.rounds):
            for mode, (processes, check) in modes.items():
                templates, findings, took = lint_once(params, processes, check)
                seconds[mode].append(took)
                found[mode] = f"{templates} ({findings})"
    median = {mode: statistics.median(runs) for mode, runs in seconds.items()}
    table([
        ["lint phase, no cache", "sdlf (worker processes)", "sdlf, one process", "cfn-lint lint() per template",
         "one / sdlf", "lint() / sdlf"],
        ["templates (findings)", found["sdlf"], found["one"], found["api"], "", ""],
        ["runs", *(" ".join(f"{s:.1f}" for s in seconds[mode]) for mode in modes), "", ""],
        ["median", *(f"{median[mode]:.1f} s" for mode in modes), ratio(median["one"], median["sdlf"]),
         ratio(median["api"], median["sdlf"])],
    ], "lrrrrr")
    print()
    print("cfn-lint lint() per template: what sdlf ran before, in worker processes (the default), each call")
    print("loading every cfn-lint rule again. The target is that column over sdlf's: the lint phase halved.")


if __name__ == "__main__":
    main()
