"""Deploy a 23-stack lake on the in-process emulator: sdlf (DAG, default concurrency) vs `aws cloudformation deploy`
one stack at a time in dependency order, with the same simulated provisioning wait, then a no-change redeploy.

    .venv/bin/python benchmarks/deploy_parallel.py [--teams 3] [--pipelines 2] [--datasets 4] [--simulated-wait 2]

Both modes deploy the same lake (same rendered templates, parameters and artifacts) into their own environment
name on one emulator, so both start from nothing. The serial mode is the sequence `aws cloudformation deploy`
runs per stack (describe, create change set, wait, execute, wait) on a plain client; sdlf is
`deploy_layers`, the CLI's code path. Every CloudFormation call of either mode is counted by kind (a botocore
event hook on its client) and each CreateChangeSet / ExecuteChangeSet is followed by `--simulated-wait` seconds
of sleep in the calling thread: AWS's time to compute a change set and to provision, identical for both.
Prints figures side by side and their ratios; nothing is asserted.
"""
from __future__ import annotations

import argparse
import collections
import dataclasses
import functools
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, copy_project, header, ratio, table  # noqa: E402

import yaml  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402

import sdlf_cli.workflows.deploy as deploy_workflow  # noqa: E402
from sdlf_cli.aws.session import AwsTarget, Clients  # noqa: E402
from sdlf_cli.config.loader import load_config  # noqa: E402
from sdlf_cli.deploy import dag  # noqa: E402
from sdlf_cli.deploy.model import StackResult  # noqa: E402
from sdlf_cli.lake import Lake  # noqa: E402
from sdlf_cli.local.context import EmulatorContext  # noqa: E402
from sdlf_cli.local.server import free_port, start  # noqa: E402
from sdlf_cli.ui import make_reporter  # noqa: E402

ORIGINAL_RUN_STACKS = dag.run_stacks
DEFAULT_WORKERS = dag.DEFAULT_MAX_WORKERS
WRITES = ("CreateChangeSet", "ExecuteChangeSet", "CreateStack", "UpdateStack", "DeleteStack", "DeleteChangeSet")
WAITED = ("CreateChangeSet", "ExecuteChangeSet")


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


class CloudFormationCalls:
    """Counts a client's CloudFormation calls by operation; sleeps `wait` after each change set create/execute."""

    def __init__(self, wait: float) -> None:
        self.wait = wait
        self.counts: collections.Counter = collections.Counter()
        self._lock = threading.Lock()

    def attach(self, client) -> None:
        client.meta.events.register("after-call.cloudformation", self._after)

    def _after(self, model, **_) -> None:
        with self._lock:
            self.counts[model.name] += 1
        if model.name in WAITED and self.wait:
            time.sleep(self.wait)  # releases the GIL: other stacks go on, as they would on AWS

    def take(self) -> collections.Counter:
        with self._lock:
            taken, self.counts = self.counts, collections.Counter()
        return taken


class StackPhase:
    """Wraps run_stacks: records how long the stack phase took and forces a worker count."""

    def __init__(self) -> None:
        self.workers: int | None = None
        self.seconds = 0.0
        self.results = []

    def __call__(self, specs, action, max_workers=DEFAULT_WORKERS, reporter=None):
        workers = self.workers or max_workers
        started = time.perf_counter()
        self.results = ORIGINAL_RUN_STACKS(specs, action, max_workers=workers, reporter=reporter)
        self.seconds = time.perf_counter() - started
        return self.results


class CliDeploy:
    """What `aws cloudformation deploy` does for one stack (awscli's deployer): describe to choose CREATE or
    UPDATE, create a change set, wait for it, execute it, wait for the stack; then `describe-stacks` for its
    outputs, which the next stacks' deploy scripts read."""

    CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]

    def __init__(self, client) -> None:
        self.client = client

    def __call__(self, spec) -> StackResult:
        started = time.perf_counter()
        cfn = self.client
        try:
            status = cfn.describe_stacks(StackName=spec.name)["Stacks"][0]["StackStatus"]
            change_type = "CREATE" if status == "REVIEW_IN_PROGRESS" else "UPDATE"
        except ClientError:
            change_type = "CREATE"
        source = {"TemplateURL": spec.template_url} if spec.template_url else {"TemplateBody": spec.template_body}
        change_set = cfn.create_change_set(
            StackName=spec.name, ChangeSetName=f"awscli-cloudformation-package-deploy-{int(time.time())}",
            ChangeSetType=change_type, Capabilities=self.CAPABILITIES,
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in spec.parameters.items()],
            Tags=[{"Key": k, "Value": v} for k, v in spec.tags.items()], **source)
        cfn.get_waiter("change_set_create_complete").wait(
            ChangeSetName=change_set["Id"], StackName=spec.name, WaiterConfig={"Delay": 5})
        cfn.execute_change_set(ChangeSetName=change_set["Id"], StackName=spec.name)
        waiter = "stack_create_complete" if change_type == "CREATE" else "stack_update_complete"
        cfn.get_waiter(waiter).wait(StackName=spec.name, WaiterConfig={"Delay": 30})
        stack = cfn.describe_stacks(StackName=spec.name)["Stacks"][0]
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        return StackResult(spec.name, spec.layer, "created" if change_type == "CREATE" else "updated",
                           outputs=outputs, duration=time.perf_counter() - started)


class CliLayerDeployer(deploy_workflow.LayerDeployer):
    """The same rendered templates, parameters and artifacts as sdlf's deploy, each stack deployed by CliDeploy."""

    def _action(self, dry_run: bool):
        return CliDeploy(self.lake.clients.client("cloudformation"))


class Timers:
    """Accumulated wall time of some functions the deploy workflow calls by their module-level name."""

    NAMES = ("render_layer", "lint_templates", "build_artifacts")

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


def deploy(project: Path, env: str, clients_for, calls: CloudFormationCalls, phase: StackPhase, timers: Timers,
           workers: int | None, deployer=deploy_workflow.LayerDeployer) -> dict:
    cfg = load_config(env, project / "parameters")
    clients = clients_for(cfg)
    calls.attach(clients.client("cloudformation"))
    layers = deploy_workflow.all_layers(cfg, project)
    phase.workers = workers
    timers.take()
    calls.take()
    started = time.perf_counter()
    outcome = deployer(Lake(cfg, clients), make_reporter("json"), project).run(layers)
    wall = time.perf_counter() - started
    if not outcome.ok:
        bad = [r for r in outcome.results if r.status in ("failed", "skipped")]
        raise SystemExit(f"deploy of {env} failed: " + "; ".join(f"{r.name}: {r.message}" for r in bad[:3]))
    statuses = collections.Counter(r.status for r in outcome.results)
    steps = timers.take()
    return {
        "env": env,
        "wall": wall,
        "steps": steps,
        "stacks_phase": wall - sum(steps.values()),  # bootstrap + the DAG (+ an account lookup)
        "stacks": len(outcome.results),
        "statuses": ", ".join(f"{n} {s}" for s, n in sorted(statuses.items())),
        "uploads": sum(1 for u in outcome.uploads if u.action != "skipped"),
        "calls": calls.take(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teams", type=int, default=3)
    parser.add_argument("--pipelines", type=int, default=2, help="per team")
    parser.add_argument("--datasets", type=int, default=4, help="per team")
    parser.add_argument("--serial-first", action="store_true", help="deploy the serial lake first")
    parser.add_argument("--simulated-wait", type=float, default=2.0, metavar="SECONDS",
                        help="sleep after each CreateChangeSet and ExecuteChangeSet (AWS's provisioning time)")
    args = parser.parse_args()

    header("deploy: sdlf (DAG) vs `aws cloudformation deploy` stack by stack, embedded emulator (in-process)")
    phase = StackPhase()
    timers = Timers()
    calls = CloudFormationCalls(args.simulated_wait)
    deploy_workflow.run_stacks = phase  # this process only; the library is not changed

    with tempfile.TemporaryDirectory(prefix="sdlf-bench-deploy-") as tmp:
        project = copy_project(Path(tmp))
        (project / "parameters").mkdir()
        (project / "parameters" / "base.yaml").write_text((ROOT / "parameters" / "base.yaml").read_text())
        envs = {"sdlf": "bsdlf", "cli": "bcli"}
        for env in envs.values():
            lake = env_file(env, args.teams, args.pipelines, args.datasets)
            (project / "parameters" / f"{env}.yaml").write_text(yaml.safe_dump(lake, sort_keys=False))
        # warm-up: foundations only, so imports and caches are not charged to whichever mode runs first.
        (project / "parameters" / "bwarm.yaml").write_text(yaml.safe_dump({"env": "bwarm"}))

        ctx = EmulatorContext(host="127.0.0.1", port=free_port(), state_dir=Path(tmp) / "emulator")
        emulator = start(ctx)
        try:
            target = functools.partial(AwsTarget, endpoint_url=emulator.endpoint_url)

            def clients_for(cfg):
                return Clients(target(region=cfg.region))

            warm = deploy(project, "bwarm", clients_for, CloudFormationCalls(0), phase, timers, None)
            print(f"warm-up (bootstrap + foundations only): {warm['wall']:.1f} s, not compared")
            print(f"lake: {args.teams} team(s) x {args.pipelines} pipeline(s) x {args.datasets} dataset(s) per team")
            print()
            order = [("cli", 1, CliLayerDeployer), ("sdlf", None, deploy_workflow.LayerDeployer)]
            if not args.serial_first:
                order.reverse()
            first = {mode: deploy(project, envs[mode], clients_for, calls, phase, timers, workers, deployer)
                     for mode, workers, deployer in order}
            again = deploy(project, envs["sdlf"], clients_for, calls, phase, timers, None)
        finally:
            emulator.stop()

    def steps(r: dict) -> list[list[str]]:
        st = r["steps"]
        return [
            ["  render templates", f"{st['render_layer']:.1f} s"],
            ["  cfn-lint", f"{st['lint_templates']:.1f} s"],
            ["  build artifacts (zips)", f"{st['build_artifacts']:.1f} s"],
            ["  stacks (bootstrap, artifact uploads, the DAG)", f"{r['stacks_phase']:.1f} s"],
        ]

    sd, cli = first["sdlf"], first["cli"]
    rows = [
        [f"first deploy, {args.simulated_wait:g} s per change set create/execute",
         f"sdlf, {DEFAULT_WORKERS} workers", "aws cloudformation deploy, serial", "serial / sdlf"],
        ["environment", sd["env"], cli["env"], ""],
        ["stacks (with bootstrap)", str(sd["stacks"]), str(cli["stacks"]), ""],
        ["results", sd["statuses"], cli["statuses"], ""],
        ["wall time, whole deploy", f"{sd['wall']:.1f} s", f"{cli['wall']:.1f} s", ratio(cli["wall"], sd["wall"])],
    ]
    for (label, s_value), (_, c_value) in zip(steps(sd), steps(cli)):
        rows.append([label, s_value, c_value, ""])
    rows[-1][3] = ratio(cli["stacks_phase"], sd["stacks_phase"])
    kinds = sorted(set(sd["calls"]) | set(cli["calls"]))
    rows.append(["CloudFormation calls", str(sum(sd["calls"].values())), str(sum(cli["calls"].values())), ""])
    for kind in kinds:
        rows.append([f"  {kind}", str(sd["calls"][kind]), str(cli["calls"][kind]), ""])
    table(rows, "lrrr")
    print()
    writes = sum(again["calls"][k] for k in WRITES)
    rows = [
        ["no-change redeploy (sdlf)", again["env"]],
        ["results", again["statuses"]],
        ["artifacts uploaded", str(again["uploads"])],
        ["wall time, whole deploy", f"{again['wall']:.2f} s"],
        *steps(again),
        ["CloudFormation write calls", str(writes)],
        ["CloudFormation calls", ", ".join(f"{k} {n}" for k, n in sorted(again["calls"].items()))],
    ]
    table(rows, "lr")
    print()
    print("notes:")
    print("- The simulated wait sleeps in the thread that made the call, after the emulator answered, so the stack")
    print("  is final on the next poll: neither mode pays a poll interval here. On AWS both poll (sdlf every 3 s,")
    print("  the AWS CLI every 5 s for change sets and 30 s for stacks), which only widens the gap.")
    print("- CloudFormation work inside the emulator is CPU in this process: with many stacks in flight it queues")
    print("  on the GIL and on the shared cores, which the serial mode never does; that is the part of the stack")
    print("  phase that is not simulated waiting.")


if __name__ == "__main__":
    main()
