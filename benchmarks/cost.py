"""AWS requests and Step Functions state transitions per object ingested through stage A, on the emulator.

    .venv/bin/python benchmarks/cost.py [--files 10] [--file-records 100]

Starts the in-process emulator, deploys the dev lake (as benchmarks/stage_a.py does, stage B's schedule set to
rate(1 day) so no batch runs meanwhile), warms the Lambda workers with one file, then puts --files small
JSON-lines objects one at a time, each waited for until its catalog row is PROCESSED. The emulator's request
log (sdlf_cli/local/request_log.py) counts every request it answered in that window, by service and
operation: the producer's PutObject, Step Functions calling Lambda, and every call the Lambda code makes.
The benchmark's own polling of the catalog is counted on its client and taken out. State transitions are
the stage-A executions' history events that enter a state (what AWS bills as transitions), read afterwards.
Counts do not depend on the machine's load. Prints per-object figures beside SDLF's published estimate.
"""
from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, copy_project, header, table  # noqa: E402

import yaml  # noqa: E402

from stage_a import file_body, wait_processed  # noqa: E402

SDLF_ESTIMATE = {"requests": "20-30", "transitions": "6"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--file-records", type=int, default=100)
    args = parser.parse_args()
    header("cost per object: AWS requests and state transitions through stage A, embedded emulator")

    from sdlf_cli.aws.session import AwsTarget, Clients
    from sdlf_cli.config.loader import load_config
    from sdlf_cli.lake import Lake
    from sdlf_cli.local import request_log
    from sdlf_cli.local.context import EmulatorContext
    from sdlf_cli.local.server import free_port, start
    from sdlf_cli.ui import make_reporter
    from sdlf_cli.workflows.deploy import all_layers, deploy_layers

    env = "bcost"
    with tempfile.TemporaryDirectory(prefix="sdlf-bench-cost-") as tmp:
        project = copy_project(Path(tmp))
        (project / "parameters").mkdir()
        (project / "parameters" / "base.yaml").write_text((ROOT / "parameters" / "base.yaml").read_text())
        lake = yaml.safe_load((ROOT / "parameters" / "dev.yaml").read_text())
        lake["env"] = env
        for team in lake.get("teams", {}).values():
            for dataset in (team.get("datasets") or {}).values():
                dataset["schedule"] = "rate(1 day)"  # keep stage B out of the window
        (project / "parameters" / f"{env}.yaml").write_text(yaml.safe_dump(lake, sort_keys=False))
        team_name = next(iter(lake["teams"]))
        dataset_name = next(iter(lake["teams"][team_name]["datasets"]))

        emulator = start(EmulatorContext(host="127.0.0.1", port=free_port(), state_dir=Path(tmp) / "emulator"))
        try:
            cfg = load_config(env, project / "parameters")
            clients = Clients(AwsTarget(region=cfg.region, endpoint_url=emulator.endpoint_url))
            outcome = deploy_layers(Lake(cfg, clients), make_reporter("json"), all_layers(cfg, project), root=project)
            if not outcome.ok:
                raise SystemExit("deploy failed")
            resources = Lake(cfg, clients).registry
            raw_bucket, table_name = resources.raw_bucket, resources.catalog_table
            s3, ddb, sfn = clients.client("s3"), clients.client("dynamodb"), clients.client("stepfunctions")
            own = collections.Counter()
            ddb.meta.events.register("after-call.dynamodb", lambda model, **_: own.update([("dynamodb", model.name)]))

            def put(index: int, run: str):
                key = f"{team_name}/{dataset_name}/cost-{run}-{index:03d}.jsonl"
                put_at = time.time()
                s3.put_object(Bucket=raw_bucket, Key=key, Body=file_body(index, args.file_records, run))
                return f"s3://{raw_bucket}/{key}", put_at

            uri, put_at = put(0, "warm")
            wait_processed(ddb, table_name, {uri: put_at}, 300, 0.1)
            own.clear()
            window_start = time.time()
            before, internal_before = request_log.snapshot(), request_log.snapshot(internal=True)
            results = {}
            for i in range(args.files):
                uri, put_at = put(i, "obj")
                results.update(wait_processed(ddb, table_name, {uri: put_at}, 300, 0.1))
            counted = request_log.snapshot() - before - own
            internal = request_log.snapshot(internal=True) - internal_before
            transitions, executions = 0, 0
            for machine in sfn.list_state_machines()["stateMachines"]:
                for execution in sfn.list_executions(stateMachineArn=machine["stateMachineArn"])["executions"]:
                    if execution["startDate"].timestamp() < window_start:
                        continue
                    executions += 1
                    events = sfn.get_execution_history(executionArn=execution["executionArn"],
                                                       maxResults=1000)["events"]
                    transitions += sum(1 for e in events if e["type"].endswith("StateEntered"))
        finally:
            emulator.stop()

    n = args.files
    processed = sum(1 for r in results.values() if r["status"] == "PROCESSED")
    print(f"dataset {team_name}/{dataset_name}: {n} objects of {args.file_records} records, {processed} PROCESSED; "
          f"{executions} stage-A execution(s) in the window")
    print()
    by_service = collections.Counter()
    for (service, _), count in counted.items():
        by_service[service] += count
    rows = [["per object, stage A", "counted (emulator)", "SDLF's estimate"],
            ["AWS requests", f"{sum(counted.values()) / n:.1f}", SDLF_ESTIMATE["requests"]],
            ["Step Functions state transitions", f"{transitions / n:.1f}", SDLF_ESTIMATE["transitions"]]]
    for service, count in by_service.most_common():
        rows.append([f"  {service}", f"{count / n:.1f}", ""])
    table(rows, "lrr")
    print()
    rows = [["requests per object by operation", "per object"]]
    for (service, operation), count in sorted(counted.items(), key=lambda kv: (-kv[1], kv[0])):
        rows.append([f"{service} {operation}", f"{count / n:.1f}"])
    table(rows, "lr")
    print()
    print(f"not counted above: {sum(internal.values())} request(s) the emulator made to itself in CloudWatch's")
    print("stead in the window (queue and execution metrics, alarm evaluation: " +
          ", ".join(f"{s} {o} {c}" for (s, o), c in internal.most_common()) + "); they depend on time, not objects.")


if __name__ == "__main__":
    main()
