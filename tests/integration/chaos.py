"""The chaos scenario, shared by tests/integration/test_chaos.py and benchmarks/chaos.py (no tests here).

Deploy the sample lake on the in-process emulator, turn faults on, ingest N small JSON-lines files, let the
lake's own retries run, run stage B, redrive whatever reached a DLQ (again until nothing is left), then turn
faults off and audit: the answer must be every object PROCESSED once, nothing lost, nothing duplicated, and the
analytics rows equal to the records put in.

The catalog, stage-A and stage-B queues get a visibility timeout of a few seconds instead of the templates' minutes,
so SQS's own retries (a failed batch comes back after the visibility timeout) happen within the run: a stage-B
router that fails after receiving (a fault on its manifest or its execution start) leaves the dataset's
hand-offs in flight for the whole visibility timeout, longer than the scenario. A receive that outlives it is
redelivered while still being processed: one more source of duplicates, on purpose.
"""
from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from sdlf_cli.local import faults as fault_injection

ROOT = Path(__file__).resolve().parents[2]
TEAM, DATASET = "engineering", "legislators"
FAST_VISIBILITY = "4"


@dataclass
class ChaosOutcome:
    objects: int
    records: int
    faults: dict
    retries: int
    redriven: int
    redrive_rounds: int
    stage_b_batches: int
    seconds: float
    audit: object  # AuditResult
    rows_queried: int | None = None
    log: list[dict] = field(default_factory=list)
    phases: list[tuple[str, float]] = field(default_factory=list)  # (step, seconds it took), in order
    redriven_by_kind: dict[str, int] = field(default_factory=dict)  # DLQ kind (catalog, a, b) -> messages

    def lines(self) -> list[str]:
        a = self.audit
        counts = ", ".join(f"{k} {v}" for k, v in a.to_dict()["counts"].items() if v)
        by_kind = ", ".join(f"{k} {v}" for k, v in self.faults["faults"].items() if v) or "none"
        return [
            f"N (objects) {self.objects}, records {self.records}",
            f"faults injected {self.faults['total']} ({self.faults['spec']}, seed {self.faults['seed']}): {by_kind}",
            f"retries {self.retries}, redriven {self.redriven}"
            + (" (" + ", ".join(f"{k} {v}" for k, v in sorted(self.redriven_by_kind.items())) + ")"
               if self.redriven_by_kind else "") + f" in {self.redrive_rounds} round(s), "
            f"stage-B batches {self.stage_b_batches}",
            f"time {self.seconds:.1f} s" + (" (" + ", ".join(f"{name} {secs:.1f} s" for name, secs in self.phases)
                                             + ")" if self.phases else ""),
            f"audit: {counts}; lost {a.lost}, duplicated {a.duplicated}; analytics rows {self.rows_queried} "
            f"(catalog rows {a.to_dict()['rows']}, records {a.to_dict()['records']})",
        ] + [f"  {o.state} {o.uri} ({o.version_id}): {o.detail}" for d in a.datasets for o in d.objects
             if o.state != "PROCESSED"] + [f"  duplicate {d.uri}: {d.detail}" for ds in a.datasets
                                           for d in ds.duplicates]


def prepare_project(dest: Path, env: str, max_items: int | None = None) -> Path:
    """The sample lake as env `env`; `max_items`: the dataset's batch.max_items instead of the sample's."""
    for part in ("templates", "lambda", "glue", "parameters"):
        shutil.copytree(ROOT / part, dest / part, ignore=shutil.ignore_patterns("__pycache__", ".sdlf"))
    dev = (dest / "parameters" / "dev.yaml").read_text()
    # Stage B runs when the scenario asks for it, not on a schedule in the middle of the run.
    dev = dev.replace("env: dev", f"env: {env}", 1).replace("schedule: rate(5 minutes)", "schedule: rate(1 day)")
    if max_items is not None:
        assert "max_items: 100}" in dev, "the sample dataset's batch settings changed"
        dev = dev.replace("max_items: 100}", f"max_items: {max_items}}}", 1)
    (dest / "parameters" / f"{env}.yaml").write_text(dev)
    return dest


def files(count: int, records: int) -> list[tuple[str, bytes]]:
    out = []
    for i in range(count):
        lines = [json.dumps({"id": f"{i:05d}-{j:03d}", "file": i, "line": j, "name": f"person {i}/{j}"})
                 for j in range(records)]
        out.append((f"chaos-{i:05d}.jsonl", ("\n".join(lines) + "\n").encode()))
    return out


class Scenario:
    """The steps, each waiting until the lake is quiet. `ops` are the lake's workflows, as the CLI calls them."""

    def __init__(self, ops: "LakeOps", say: Callable[[str], None] = lambda _: None, timeout: float = 240.0):
        self.ops = ops
        self.say = say
        self.timeout = timeout
        self.batches = 0
        self.redriven_by_kind: dict[str, int] = {}
        self.phases: list[tuple[str, float]] = []
        self._mark = time.monotonic()

    def _phase(self, name: str) -> None:
        now = time.monotonic()
        self.phases.append((name, now - self._mark))
        self._mark = now

    def settle(self, step: tuple[str, ...] | None = None, stage_b: bool = False) -> object:
        """Audit until nothing is in progress (at `step`, or anywhere). With `stage_b`, a stage-B batch runs
        between looks, as the dataset's schedule would run it while stage A is still busy. The audit reads the
        whole dataset (seconds at a few hundred objects, taken from the lake's own work on a small machine): it
        runs only once a cheap look at stage A's queues and executions finds them quiet."""
        deadline = time.monotonic() + self.timeout
        while True:
            if self.ops.stage_a_busy() and time.monotonic() < deadline:
                if not (stage_b and self.ops.run_stage_b()):
                    time.sleep(1.0)
                else:
                    self.batches += 1
                continue
            result = self.ops.audit()
            waiting = [o for d in result.datasets for o in d.objects
                       if o.state == "IN_PROGRESS" and (step is None or o.step in step)]
            if not waiting or time.monotonic() > deadline:
                return result
            if stage_b and self.ops.run_stage_b():
                self.batches += 1
            else:
                time.sleep(1.0)

    def stage_b(self) -> None:
        """Run stage B until its queue is empty."""
        for _ in range(50):
            started = self.ops.run_stage_b()
            if started is None:
                continue  # the router failed (a fault): try again
            if not started:
                return
            self.batches += 1

    def run(self, count: int, records: int, spec: str, seed: int, log_path: Path | None) -> ChaosOutcome:
        self.ops.fast_retries()
        started = self._mark = time.monotonic()
        with fault_injection.injected(spec, seed=seed, log_path=log_path) as injected:
            for name, body in files(count, records):
                self.ops.put(name, body)
            self._phase("put")
            self.say(f"put {count} objects")
            redriven, rounds = self.drain(lambda: f"stage A and B done once: {injected.summary()['faults']}")
            summary = injected.summary()
        audit = self.settle()
        self._phase("final audit")
        seconds = time.monotonic() - started
        rows = self.ops.count_rows()
        return ChaosOutcome(count, count * records, summary, summary["retries"], redriven, rounds, self.batches, seconds,
                            audit, rows, fault_injection.read_log(log_path) if log_path else [], list(self.phases),
                            dict(self.redriven_by_kind))

    def drain(self, done_once: Callable[[], str] = lambda: "stage A and B done once") -> tuple[int, int]:
        """Stage A and B until quiet, then redrive what reached a DLQ and run them again, until nothing is left
        to redrive: (messages redriven, redrive rounds)."""
        redriven = rounds = 0
        self.settle(("catalog", "a"), stage_b=True)
        self._phase("stage A")
        self.stage_b()
        self._phase("stage B")
        self.say(done_once())
        # A round fails again now and then (a batch is one Glue job run and one quality run, each may fail): enough
        # rounds that running out of them is never the outcome of a clean lake.
        for rounds in range(1, 13):
            by_kind = self.ops.redrive()
            moved = sum(by_kind.values())
            redriven += moved
            for kind, count in by_kind.items():
                self.redriven_by_kind[kind] = self.redriven_by_kind.get(kind, 0) + count
            if moved == 0 and not self._failed():
                rounds -= 1
                self._phase("last redrive")
                break
            self.settle(("catalog", "a"), stage_b=True)
            self.stage_b()
            self._phase(f"redrive {rounds}")
            self.say(f"redrive round {rounds}: moved {moved} ({by_kind})")
        return redriven, rounds

    def _failed(self) -> bool:
        result = self.ops.audit()
        return result.count("FAILED") > 0 or result.count("IN_PROGRESS") > 0


class LakeOps:
    """What the scenario does to the lake, through the same workflows the CLI runs."""

    def __init__(self, lake, raw_bucket: str, team: str | None = TEAM, dataset: str | None = DATASET):
        self.lake = lake
        self.raw_bucket = raw_bucket
        self.team, self.dataset = team, dataset  # None: audit the whole lake
        self._stage_a: list[str] | None = None
        self._sm_a = ""

    def fast_retries(self) -> None:
        names, sqs = self.lake.config.names, self.lake.clients.client("sqs")
        for name in (names.queue("catalog"), names.queue(TEAM, "main", "a"), names.queue(TEAM, DATASET, "b")):
            url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
            sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": FAST_VISIBILITY})

    def stage_a_busy(self) -> bool:
        """Messages waiting, in flight or delayed in the catalog or stage-A queue, or stage-A executions running:
        three calls, where the audit lists and reads the whole dataset."""
        names, sqs = self.lake.config.names, self.lake.clients.client("sqs")
        if self._stage_a is None:
            self._stage_a = [sqs.get_queue_url(QueueName=name)["QueueUrl"]
                             for name in (names.queue("catalog"), names.queue(TEAM, "main", "a"))]
            wanted = names.state_machine(TEAM, "main", "sm-a")
            machines = self.lake.clients.client("stepfunctions").list_state_machines()["stateMachines"]
            self._sm_a = next(m["stateMachineArn"] for m in machines if m["name"] == wanted)
        if any(self.lake.queues.pending(url) for url in self._stage_a):
            return True
        running = self.lake.clients.client("stepfunctions").list_executions(
            stateMachineArn=self._sm_a, statusFilter="RUNNING", maxResults=1)
        return bool(running["executions"])

    def put(self, name: str, body: bytes) -> None:
        self.lake.storage.put_bytes(self.raw_bucket, f"{TEAM}/{DATASET}/{name}", body)

    def audit(self):
        from sdlf_cli.workflows.audit import audit

        return audit(self.lake, team=self.team, dataset=self.dataset, stale_after=3600)

    def run_stage_b(self) -> bool | None:
        from sdlf_cli.errors import SdlfError
        from sdlf_cli.workflows.stage_b import run_stage_b

        try:
            run = run_stage_b(self.lake, TEAM, DATASET, timeout=120)
        except SdlfError:
            # The router failed (a fault), possibly after it started a batch: the next call waits for that batch
            # (the router refuses while one of the dataset's runs, and run_stage_b waits for it).
            return None
        return run.started

    def redrive(self) -> dict[str, int]:
        """Messages moved out of the team's DLQs, by kind of DLQ."""
        from sdlf_cli.workflows.redrive import redrive

        moved: dict[str, int] = {}
        for queue in redrive(self.lake, team=TEAM).queues:
            if queue.moved:
                moved[queue.queue.kind] = moved.get(queue.queue.kind, 0) + queue.moved
        return moved

    def count_rows(self) -> int:
        from sdlf_cli.workflows.query import run_query

        database = self.lake.config.names.glue_database(TEAM, DATASET)
        result = run_query(self.lake, f"SELECT count(*) AS n FROM {database}.{DATASET}")
        return int(result.rows[0][0])
