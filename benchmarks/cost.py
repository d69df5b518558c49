"""AWS requests and Step Functions state transitions per object through stage A, and per batch through stage B,
on the emulator.

    .venv/bin/python benchmarks/cost.py [--files 10] [--file-records 100]

Starts the in-process emulator and deploys the dev lake (benchmarks/_lake.py: stage B's schedule set to
rate(1 day) so no batch runs unless started here), warms the Lambda workers with one file, then:

- stage A: puts --files small JSON-lines objects one at a time, each waited for until its catalog row is
  PROCESSED;
- stage B: starts one batch of those objects as `sdlf run-stage-b` does (the stage-B router invoked with
  force, which the schedule would invoke on AWS) and waits for its execution: routing-b, the stage-B state
  machine, the Glue job (the python engine, in its own process, talking to the emulator), the crawler, data
  quality and the catalog.

The emulator's request log (sdlf_cli/local/request_log.py) counts every request it answered in each window,
by service and operation: the producer's PutObject, Step Functions calling Lambda, every call the Lambda and
Glue code makes. The benchmark's own polling (catalog reads, execution status) is counted on its clients and
taken out. State transitions are the window's executions' history events that enter a state (what AWS bills
as transitions), read afterwards. Counts do not depend on the machine's load. Prints per-object (stage A) and
per-batch (stage B) figures beside SDLF's published estimate.
"""
from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import header, table  # noqa: E402
from _lake import dev_lake, wait_processed  # noqa: E402

# SDLF's own figures for stage A (per object); it publishes none for a stage-B batch.
SDLF_ESTIMATE = {"requests": "20-30", "transitions": "6"}


class OwnCalls:
    """The benchmark's own requests (by SigV4 service and operation), to take out of the emulator's count."""

    def __init__(self, *clients) -> None:
        self.counts: collections.Counter = collections.Counter()
        for client in clients:
            client.meta.events.register("after-call", self._after)

    def _after(self, model, **_) -> None:
        self.counts[(model.service_model.signing_name, model.name)] += 1


def transitions_since(sfn, since: float, machine_marker: str) -> tuple[int, int]:
    """(executions, state-entered events) of the state machines whose name has `machine_marker`, started since."""
    transitions = executions = 0
    for machine in sfn.list_state_machines()["stateMachines"]:
        if machine_marker not in machine["name"]:
            continue
        for execution in sfn.list_executions(stateMachineArn=machine["stateMachineArn"])["executions"]:
            if execution["startDate"].timestamp() < since:
                continue
            executions += 1
            events = sfn.get_execution_history(executionArn=execution["executionArn"], maxResults=1000)["events"]
            transitions += sum(1 for e in events if e["type"].endswith("StateEntered"))
    return executions, transitions


def report(title: str, unit: str, per: int, counted: collections.Counter, transitions: int,
           estimate: dict[str, str]) -> None:
    by_service = collections.Counter()
    for (service, _), count in counted.items():
        by_service[service] += count
    rows = [[title, "counted (emulator)", "SDLF's estimate"],
            ["AWS requests", f"{sum(counted.values()) / per:.1f}", estimate["requests"]],
            ["Step Functions state transitions", f"{transitions / per:.1f}", estimate["transitions"]]]
    for service, count in by_service.most_common():
        rows.append([f"  {service}", f"{count / per:.1f}", ""])
    table(rows, "lrr")
    print()
    rows = [[f"requests per {unit} by operation", f"per {unit}"]]
    for (service, operation), count in sorted(counted.items(), key=lambda kv: (-kv[1], kv[0])):
        rows.append([f"{service} {operation}", f"{count / per:.1f}"])
    table(rows, "lr")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--file-records", type=int, default=100)
    args = parser.parse_args()
    header("cost: AWS requests and state transitions per object (stage A) and per batch (stage B), emulator")

    from sdlf_cli.local import request_log
    from sdlf_cli.workflows.stage_b import run_stage_b

    with dev_lake("bcost") as dev:
        table_name = dev.lake.registry.catalog_table
        ddb, sfn = dev.clients.client("dynamodb"), dev.clients.client("stepfunctions")
        own = OwnCalls(ddb, sfn)

        uri, put_at = dev.put(0, args.file_records, "warm", prefix="cost")
        wait_processed(ddb, table_name, {uri: put_at}, 300, 0.1)
        own.counts.clear()
        a_start = time.time()
        before, internal_before = request_log.snapshot(), request_log.snapshot(internal=True)
        results = {}
        for i in range(args.files):
            uri, put_at = dev.put(i, args.file_records, "obj", prefix="cost")
            results.update(wait_processed(ddb, table_name, {uri: put_at}, 300, 0.1))
        stage_a = request_log.snapshot() - before - own.counts
        internal_a = request_log.snapshot(internal=True) - internal_before
        own.counts.clear()

        b_start = time.time()
        before, internal_before = request_log.snapshot(), request_log.snapshot(internal=True)
        run = run_stage_b(dev.lake, dev.team, dev.dataset, timeout=600)
        stage_b = request_log.snapshot() - before - own.counts
        internal_b = request_log.snapshot(internal=True) - internal_before
        own.counts.clear()
        a_executions, a_transitions = transitions_since(sfn, a_start, "-sm-a")
        b_executions, b_transitions = transitions_since(sfn, b_start, "-sm-b")

    n = args.files
    processed = sum(1 for r in results.values() if r["status"] == "PROCESSED")
    print(f"dataset {dev.team}/{dev.dataset}: {n} objects of {args.file_records} records, {processed} PROCESSED; "
          f"{a_executions} stage-A execution(s) in the window")
    print()
    report("per object, stage A", "object", n, stage_a, a_transitions, SDLF_ESTIMATE)
    print(f"stage B: one batch of {run.objects} object(s), {run.status or run.reason}"
          f"{': ' + run.error if run.error else ''}; {b_executions} stage-B execution(s) in the window")
    print()
    report("per batch, stage B", "batch", 1, stage_b, b_transitions, {"requests": "-", "transitions": "-"})
    if run.objects:
        print(f"per object of the batch: {sum(stage_b.values()) / run.objects:.1f} requests, "
              f"{b_transitions / run.objects:.1f} state transitions")
        print()
    for label, internal in (("stage A", internal_a), ("stage B", internal_b)):
        print(f"not counted above ({label}): {sum(internal.values())} request(s) the emulator made to itself in "
              "CloudWatch's stead in the window (queue and execution metrics, alarm evaluation: " +
              ", ".join(f"{s} {o} {c}" for (s, o), c in internal.most_common()) + "); they depend on time, not objects.")


if __name__ == "__main__":
    main()
