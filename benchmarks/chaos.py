"""Chaos at a larger N: the scenario of tests/integration/test_chaos.py (tests/integration/chaos.py) on the
in-process emulator, then its figures: N, faults by kind, retries, redriven, time, and the audit's answer.

    .venv/bin/python benchmarks/chaos.py --objects 500
    .venv/bin/python benchmarks/chaos.py --objects 500 --baseline     # the same N without faults first

Deploys the sample lake as env `bcha` (stage B only when the scenario runs it), ingests --objects small JSON-lines
files of --records records, with --faults injected (seeded by --seed), lets the lake's retries run, redrives the
DLQs until nothing is left, turns the faults off and audits. Nothing here asserts; the audit line says
whether anything was lost or duplicated.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import header, ratio  # noqa: E402  (also puts the project on sys.path, emulator credentials)

from sdlf_cli.aws.session import AwsTarget, Clients  # noqa: E402
from sdlf_cli.config.loader import load_config  # noqa: E402
from sdlf_cli.lake import Lake  # noqa: E402
from sdlf_cli.local.context import EmulatorContext  # noqa: E402
from sdlf_cli.local.server import free_port, start  # noqa: E402
from sdlf_cli.ui import make_reporter  # noqa: E402
from sdlf_cli.workflows.deploy import all_layers, deploy_layers  # noqa: E402
from tests.integration import chaos  # noqa: E402

DEFAULT_FAULTS = ("lambda_error=0.08,lambda_timeout=0.03,partial_write=0.03,throttle=0.03,glue_error=0.2,"
                  "duplicate=0.05,delay=0.03")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=500)  # the test runs 200
    parser.add_argument("--records", type=int, default=3)
    parser.add_argument("--faults", default=DEFAULT_FAULTS)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--baseline", action="store_true", help="Run the same N without faults first.")
    args = parser.parse_args(argv)

    header(f"chaos: {args.objects} objects x {args.records} records under faults")
    work = Path(tempfile.mkdtemp(prefix="sdlf-chaos-"))
    emulator = start(EmulatorContext(host="127.0.0.1", port=free_port(), state_dir=work / "emulator"))
    try:
        runs = [("baseline", "", "bchb"), ("faults", args.faults, "bcha")] if args.baseline else \
            [("faults", args.faults, "bcha")]
        seconds = {}
        for label, spec, env in runs:
            project = chaos.prepare_project(work / env, env)
            cfg = load_config(env, project / "parameters")
            lake = Lake(cfg, Clients(AwsTarget(region=cfg.region, endpoint_url=emulator.endpoint_url)))
            began = time.monotonic()
            deployed = deploy_layers(lake, make_reporter("json"), all_layers(cfg, project), root=project)
            if not deployed.ok:
                print(f"deploy failed: {deployed.to_dict()}", file=sys.stderr)
                return 1
            print(f"[{label}] lake deployed in {time.monotonic() - began:.1f} s", flush=True)
            scenario = chaos.Scenario(chaos.LakeOps(lake, lake.registry.raw_bucket),
                                      say=lambda m, label=label: print(f"[{label}] {m}", flush=True), timeout=900)
            outcome = scenario.run(args.objects, args.records, spec, args.seed, work / f"{env}-faults.jsonl")
            seconds[label] = outcome.seconds
            print()
            print(f"## {label}" + (f": --faults {spec} --seed {args.seed}" if spec else ": no faults"))
            for line in outcome.lines():
                print(line)
            print(f"fault log: {work / f'{env}-faults.jsonl'}" if spec else "")
        if args.baseline:
            print(f"time with faults / without: {ratio(seconds['faults'], seconds['baseline'])}")
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
