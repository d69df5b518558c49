"""Deploy a multi-team lake on the in-process emulator: DAG executor (4 workers) vs serial (1 worker).

    .venv/bin/python benchmarks/deploy_parallel.py [--teams 3] [--pipelines 1] [--datasets 2] [--serial-first]

Each mode deploys the same lake into its own environment name, so both start from nothing on the same
emulator. `run_stacks` is wrapped (here only) to time the stack phase on its own and, for the serial mode,
to force max_workers=1. Then each environment is deployed again with nothing changed (fingerprints).
Prints figures side by side and their ratios; nothing is asserted.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, copy_project, header, ratio, table  # noqa: E402

import yaml  # noqa: E402

import sdlf_cli.workflows.deploy as deploy_workflow  # noqa: E402
from sdlf_cli.aws.session import AwsTarget, Clients  # noqa: E402
from sdlf_cli.config.loader import load_config  # noqa: E402
from sdlf_cli.deploy import dag  # noqa: E402
from sdlf_cli.lake import Lake  # noqa: E402
from sdlf_cli.local.context import EmulatorContext  # noqa: E402
from sdlf_cli.local.server import free_port, start  # noqa: E402
from sdlf_cli.ui import make_reporter  # noqa: E402

ORIGINAL_RUN_STACKS = dag.run_stacks
DEFAULT_WORKERS = ORIGINAL_RUN_STACKS.__defaults__[0]  # run_stacks(specs, action, max_workers=4, ...)


def env_file(env: str, teams: int, pipelines: int, datasets: int) -> dict:
    lake = {"env": env, "teams": {}}
    for t in range(1, teams + 1):
        team = {"pipelines": {}, "datasets": {}}
        for p in range(1, pipelines + 1):
            team["pipelines"][f"p{p}"] = {"description": f"pipeline {p}"}
        for d in range(1, datasets + 1):
            team["datasets"][f"ds{d}"] = {
                "pipeline": f"p{(d - 1) % pipelines + 1}",
                "transform": "default",
                "engine": "python",
                "schedule": "rate(5 minutes)",
                "batch": {"min_items": 1, "max_items": 100},
                "partition_by": ["ingestion_date"],
                "quality": [{"rule": "row_count", "min": 1, "severity": "warn"}],
            }
        lake["teams"][f"team{t}"] = team
    return lake


class StackPhase:
    """Wraps run_stacks: records how long the stack phase took and forces a worker count.

    With `simulated_wait`, every stack that was created or updated then sleeps that long in its worker
    (sleeping releases the GIL), a stand-in for the time AWS spends provisioning resources remotely.
    """

    def __init__(self, simulated_wait: float = 0.0) -> None:
        self.workers: int | None = None
        self.simulated_wait = simulated_wait
        self.seconds = 0.0
        self.results = []

    def __call__(self, specs, action, max_workers=DEFAULT_WORKERS, reporter=None):
        workers = self.workers or max_workers
        if self.simulated_wait:
            action = self._waiting(action)
        started = time.perf_counter()
        self.results = ORIGINAL_RUN_STACKS(specs, action, max_workers=workers, reporter=reporter)
        self.seconds = time.perf_counter() - started
        return self.results

    def _waiting(self, action):
        def run(spec):
            result = action(spec)
            if result.status in ("created", "updated"):
                time.sleep(self.simulated_wait)
                result = dataclasses.replace(result, duration=result.duration + self.simulated_wait)
            return result
        return run


class Timers:
    """Accumulated wall time of some functions the deploy workflow calls by their module-level name."""

    NAMES = ("render_layer", "lint_templates", "build_artifacts", "upload_artifacts")

    def __init__(self) -> None:
        self.seconds = dict.fromkeys(self.NAMES, 0.0)
        for name in self.NAMES:
            setattr(deploy_workflow, name, self._timed(name, getattr(deploy_workflow, name)))

    def _timed(self, name, function):
        @functools.wraps(function)
        def run(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - started
        return run

    def take(self) -> dict:
        taken, self.seconds = self.seconds, dict.fromkeys(self.NAMES, 0.0)
        return taken


def deploy(project: Path, env: str, clients_for, phase: StackPhase, timers: Timers, workers: int | None) -> dict:
    cfg = load_config(env, project / "parameters")
    clients = clients_for(cfg)
    layers = deploy_workflow.all_layers(cfg, project)
    phase.workers = workers
    timers.take()
    started = time.perf_counter()
    outcome = deploy_workflow.deploy_layers(Lake(cfg, clients), make_reporter("json"), layers, root=project)
    wall = time.perf_counter() - started
    if not outcome.ok:
        bad = [r for r in outcome.results if r.status in ("failed", "skipped")]
        raise SystemExit(f"deploy of {env} failed: " + "; ".join(f"{r.name}: {r.message}" for r in bad[:3]))
    statuses = {}
    for r in outcome.results:
        statuses[r.status] = statuses.get(r.status, 0) + 1
    in_dag = phase.results
    steps = timers.take()
    return {
        "steps": steps,
        "env": env,
        "wall": wall,
        "stack_phase": phase.seconds,
        "stacks": len(outcome.results),
        "dag_stacks": len(in_dag),
        "busy": sum(r.duration for r in in_dag),  # sum of per-stack durations inside the DAG
        "statuses": ", ".join(f"{n} {s}" for s, n in sorted(statuses.items())),
        "uploads": sum(1 for u in outcome.uploads if u.action != "skipped"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teams", type=int, default=3)
    parser.add_argument("--pipelines", type=int, default=1, help="per team")
    parser.add_argument("--datasets", type=int, default=2, help="per team")
    parser.add_argument("--serial-first", action="store_true", help="deploy the serial lake first")
    parser.add_argument("--simulated-wait", type=float, default=0.0, metavar="SECONDS",
                        help="sleep this long after each created/updated stack, in its worker (AWS-like waits)")
    args = parser.parse_args()

    header("deploy: DAG executor vs serial, embedded emulator (in-process)")
    phase = StackPhase(args.simulated_wait)
    timers = Timers()
    deploy_workflow.run_stacks = phase  # this process only; the library is not changed

    with tempfile.TemporaryDirectory(prefix="sdlf-bench-deploy-") as tmp:
        project = copy_project(Path(tmp))
        (project / "parameters").mkdir()
        (project / "parameters" / "base.yaml").write_text((ROOT / "parameters" / "base.yaml").read_text())
        envs = {"parallel": "bpar", "serial": "bser", "warmup": "bwarm"}
        for env in envs.values():
            lake = env_file(env, args.teams, args.pipelines, args.datasets)
            (project / "parameters" / f"{env}.yaml").write_text(yaml.safe_dump(lake, sort_keys=False))
        # warm-up: foundations only (one team-less env), so imports and cfn-lint's caches are not
        # charged to whichever mode runs first.
        (project / "parameters" / "bwarm.yaml").write_text(yaml.safe_dump({"env": "bwarm"}))

        ctx = EmulatorContext(host="127.0.0.1", port=free_port(), state_dir=Path(tmp) / "emulator")
        emulator = start(ctx)
        try:
            target = functools.partial(AwsTarget, endpoint_url=emulator.endpoint_url)

            def clients_for(cfg):
                return Clients(target(region=cfg.region))

            warm = deploy(project, envs["warmup"], clients_for, phase, timers, None)
            print(f"warm-up (bootstrap + foundations only, env {warm['env']}): {warm['wall']:.1f} s, not compared")
            print(f"lake: {args.teams} team(s) x {args.pipelines} pipeline(s) x {args.datasets} dataset(s) per team")
            print()

            order = [("serial", 1), ("parallel", None)] if args.serial_first else [("parallel", None), ("serial", 1)]
            first = {}
            for mode, workers in order:
                first[mode] = deploy(project, envs[mode], clients_for, phase, timers, workers)
            again = {}
            for mode, workers in order:
                again[mode] = deploy(project, envs[mode], clients_for, phase, timers, workers)
        finally:
            emulator.stop()

    def steps(r: dict) -> list[list[str]]:
        st = r["steps"]
        other = r["wall"] - r["stack_phase"] - sum(st.values())
        return [
            ["  render templates", f"{st['render_layer']:.1f} s"],
            ["  cfn-lint", f"{st['lint_templates']:.1f} s"],
            ["  build artifacts (zips)", f"{st['build_artifacts']:.1f} s"],
            ["  upload artifacts", f"{st['upload_artifacts']:.1f} s"],
            ["  bootstrap stack + the rest", f"{other:.1f} s"],
            ["  stack phase (run_stacks)", f"{r['stack_phase']:.1f} s"],
        ]

    par, ser = first["parallel"], first["serial"]
    wait = f", +{args.simulated_wait:g} s simulated wait per created stack" if args.simulated_wait else ""
    rows = [
        [f"first deploy (from nothing){wait}", f"DAG, {DEFAULT_WORKERS} workers", "serial, 1 worker", "serial / DAG"],
        ["environment", par["env"], ser["env"], ""],
        ["stacks (bootstrap + DAG)", f"1 + {par['dag_stacks']}", f"1 + {ser['dag_stacks']}", ""],
        ["results", par["statuses"], ser["statuses"], ""],
        ["wall time, whole deploy", f"{par['wall']:.1f} s", f"{ser['wall']:.1f} s", ratio(ser["wall"], par["wall"])],
    ]
    for (label, p_value), (_, s_value) in zip(steps(par), steps(ser)):
        rows.append([label, p_value, s_value, ""])
    rows[-1][3] = ratio(ser["stack_phase"], par["stack_phase"])
    rows += [
        ["sum of per-stack durations in the DAG", f"{par['busy']:.1f} s", f"{ser['busy']:.1f} s", ""],
        ["effective concurrency (sum / phase)", f"{par['busy'] / par['stack_phase']:.2f}",
         f"{ser['busy'] / ser['stack_phase']:.2f}", ""],
    ]
    table(rows, "lrrr")
    print()
    pa, sa = again["parallel"], again["serial"]
    rows = [
        ["second deploy, nothing changed", par["env"], ser["env"]],
        ["results", pa["statuses"], sa["statuses"]],
        ["artifacts uploaded", str(pa["uploads"]), str(sa["uploads"])],
        ["wall time, whole deploy", f"{pa['wall']:.1f} s", f"{sa['wall']:.1f} s"],
    ]
    for (label, p_value), (_, s_value) in zip(steps(pa), steps(sa)):
        rows.append([label, p_value, s_value])
    rows[-1] = ["  stack phase (fingerprint checks only)", f"{pa['stack_phase']:.2f} s", f"{sa['stack_phase']:.2f} s"]
    rows += [
        ["no-change / first deploy, wall", ratio(pa["wall"], par["wall"]), ratio(sa["wall"], ser["wall"])],
        ["no-change / first deploy, stack phase", ratio(pa["stack_phase"], par["stack_phase"]),
         ratio(sa["stack_phase"], ser["stack_phase"])],
    ]
    table(rows, "lrr")
    print()
    print("notes:")
    print("- On the emulator every CloudFormation operation runs synchronously inside moto, in this same Python")
    print("  process: the DAG's worker threads take turns on the GIL (and on 2 cores), so they cannot finish")
    print("  CPU-bound stack work sooner than one thread; 'effective concurrency' above only counts threads that")
    print("  were waiting for the GIL. What the DAG buys on AWS (overlapping minutes of remote provisioning) is")
    print("  not measured here; --simulated-wait S adds an S-second GIL-free sleep per created stack to model it.")
    print("- The second deploy skips every stack by fingerprint (describe only, no change set) and uploads")
    print("  nothing, but still renders, lints and hashes the artifacts: that is where its time goes.")


if __name__ == "__main__":
    main()
