"""`sdlf demo`: from nothing to a queried analytics table on the embedded emulator, in one command.

Starts the emulator, deploys the sample lake (parameters/<env>.yaml), ingests the bundled samples
(one deliberately bad), waits for stage A, runs a stage-B batch, then queries the result and reads the
data-quality summary. Each step reports through `on_step` as it finishes.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from sdlf_cli.lake import Lake
from sdlf_cli.workflows.deploy import DeployOutcome, all_layers, deploy_layers
from sdlf_cli.workflows.ingest import catalog_rows, ingest_files

SAMPLES = Path("samples")
DEMO_TEAM = "engineering"
DEMO_DATASET = "legislators"
TERMINAL = {"PROCESSED", "FAILED"}


@dataclass(frozen=True)
class Step:
    name: str
    ok: bool
    seconds: float
    detail: str


@dataclass
class DemoResult:
    endpoint_url: str = ""
    steps: list[Step] = field(default_factory=list)
    deploy: DeployOutcome | None = None
    raw_rows: list[dict] = field(default_factory=list)
    stage_b: object | None = None
    query_sql: str = ""
    query: object | None = None
    quality: list[dict] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return bool(self.steps) and all(s.ok for s in self.steps)

    @property
    def failed_objects(self) -> list[dict]:
        return [r for r in self.raw_rows if r.get("status") == "FAILED"]

    def to_dict(self) -> dict:
        return {
            "ok": self.ok,
            "endpoint_url": self.endpoint_url,
            "seconds": round(self.seconds, 2),
            "steps": [s.__dict__ for s in self.steps],
            "objects": self.raw_rows,
            "query": {"sql": self.query_sql, "columns": getattr(self.query, "columns", []),
                      "rows": [list(r) for r in getattr(self.query, "rows", [])]},
            "quality": self.quality,
        }


def sample_files(root: Path = Path(".")) -> list[Path]:
    return sorted(p for p in (root / SAMPLES / DEMO_TEAM / DEMO_DATASET).iterdir() if p.is_file())


class _Steps:
    def __init__(self, result: DemoResult, on_step: Callable[[Step], None]):
        self.result, self.on_step = result, on_step

    def record(self, name: str, started: float, ok: bool, detail: str) -> bool:
        step = Step(name, ok, time.monotonic() - started, detail)
        self.result.steps.append(step)
        self.on_step(step)
        return ok


def wait_for_terminal(lake: Lake, uris: list[str], timeout: float = 120.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        rows = [(catalog_rows(lake, uri=u) or [{"id": u, "status": "MISSING"}])[0] for u in uris]
        if all(r.get("status") in TERMINAL for r in rows) or time.monotonic() >= deadline:
            return rows
        time.sleep(0.5)


def run_demo(lake: Lake, reporter, root: Path = Path("."),
             on_step: Callable[[Step], None] = lambda step: None) -> DemoResult:
    """`lake`'s configuration is deployed on the emulator this starts (whatever target it names)."""
    from sdlf_cli.local import process
    from sdlf_cli.workflows.query import run_query
    from sdlf_cli.workflows.stage_b import latest_quality, run_stage_b

    began = time.monotonic()
    result = DemoResult()
    steps = _Steps(result, on_step)

    t = time.monotonic()
    status = process.up(None)
    result.endpoint_url = status.endpoint_url
    steps.record("emulator", t, True, f"{status.endpoint_url} (pid {status.pid})")

    t = time.monotonic()
    lake = lake.at_endpoint(status.endpoint_url)
    cfg = lake.config
    result.deploy = deploy_layers(lake, reporter, all_layers(cfg, root), root=root)
    summary = ", ".join(f"{r.name.removeprefix(cfg.names.prefix + '-')} {r.status}" for r in result.deploy.results)
    if not steps.record("deploy", t, result.deploy.ok, summary):
        return _done(result, began)

    t = time.monotonic()
    ingested = ingest_files(lake, sample_files(root), DEMO_TEAM, DEMO_DATASET)
    steps.record("ingest", t, True, f"{len(ingested)} files into s3://{ingested[0].bucket}/{DEMO_TEAM}/{DEMO_DATASET}/")

    t = time.monotonic()
    result.raw_rows = wait_for_terminal(lake, [i.uri for i in ingested])
    counts = {s: sum(r.get("status") == s for r in result.raw_rows) for s in ("PROCESSED", "FAILED")}
    settled = all(r.get("status") in TERMINAL for r in result.raw_rows)
    if not steps.record("stage A", t, settled and counts["PROCESSED"] > 0,
                        f"{counts['PROCESSED']} processed, {counts['FAILED']} failed"):
        return _done(result, began)

    t = time.monotonic()
    result.stage_b = run_stage_b(lake, DEMO_TEAM, DEMO_DATASET)
    run = result.stage_b
    if run.started:
        ok = run.status == "SUCCEEDED"
        detail = f"batch of {run.objects} object(s): {run.status}" + (f" ({run.error})" if run.error else "")
    else:
        # A second demo ingests identical files: stage A recognises them, so nothing new reaches stage B.
        ok = run.objects == 0 and all(r.get("execution") for r in result.raw_rows)
        detail = f"nothing new to transform ({run.reason}; these files were processed before)"
    if not steps.record("stage B", t, ok, detail):
        return _done(result, began)

    t = time.monotonic()
    database = cfg.names.glue_database(DEMO_TEAM, DEMO_DATASET)
    result.query_sql = (f"SELECT gender, count(*) AS people, min(birth_date) AS earliest_birth "
                        f"FROM {database}.{DEMO_DATASET} GROUP BY gender ORDER BY gender")
    result.query = run_query(lake, result.query_sql)
    steps.record("query", t, bool(result.query.rows), f"{len(result.query.rows)} row(s) via {result.query.engine}")

    t = time.monotonic()
    result.quality = latest_quality(lake, DEMO_TEAM, DEMO_DATASET)
    status_q = result.quality[0].get("status") if result.quality else "none"
    steps.record("quality", t, bool(result.quality), f"latest run {status_q}")
    return _done(result, began)


def _done(result: DemoResult, began: float) -> DemoResult:
    result.seconds = time.monotonic() - began
    return result
