"""The hostile corpus (tests/corpus) through a deployed lake on the emulator, all at once: every file reaches its
stated end state in the catalog and in `sdlf audit`, the good ones beside the bad ones go through stage A and
stage B, every FAILED object names itself and what was expected and waits in a DLQ (audit: FAILED, not LOST),
and nothing is lost or duplicated. Scenarios that are steps rather than files ride in the same batch: an
object deleted before stage A reads it, the same content under two keys and twice under one key, prefixes no
dataset claims, and schema drift across two stage-B batches of one dataset."""
from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from sdlf_cli.aws.session import AwsTarget, Clients
from sdlf_cli.config.loader import load_config
from sdlf_cli.lake import Lake
from sdlf_cli.ui import make_reporter
from sdlf_cli.workflows.deploy import all_layers, deploy_layers
from sdlf_cli.workflows.query import run_query
from tests import corpus
from tests.integration import chaos
from tests.integration.helpers import wait_for

ROOT = Path(__file__).resolve().parents[2]
ENV, TEAM, DATASET, DRIFT = "corpus", "engineering", "hostile", "drift"
PREFIX = f"{TEAM}/{DATASET}/"
ENV_FILE = f"""# the hostile corpus
org: acme
app: lake
region: us-east-1
env: {ENV}
teams:
  {TEAM}:
    pipelines:
      main: {{}}
    datasets:
      {DATASET}:
        pipeline: main
        schedule: rate(1 day)
        batch: {{min_items: 1, max_items: 200}}
      {DRIFT}:
        pipeline: main
        schedule: rate(1 day)
        batch: {{min_items: 1, max_items: 200}}
"""
SAME = b'{"id": "same", "n": 1}\n{"id": "same", "n": 2}\n'
DELETED = "deleted-before-processing.json"
UNCLAIMED = [f"{TEAM}/nosuchdataset/orphan.json", "loose-at-the-top.json", f"{TEAM}/loose-below-team.json"]
# Schema drift within one dataset, across two stage-B batches: a new column is added (earlier rows read it as
# null); a column whose type changed is widened to the table's type when that type can hold the new values
# (bigint into double, anything into string), and otherwise that file alone is rejected saying which line, which
# column, which types, while its neighbour in the batch is written.
DRIFT_1 = {"drift-1.jsonl": b'{"id": 1, "amount": 1.5, "label": "a", "count": 1}\n{"id": 2, "amount": 2.5, "label": "b", "count": 2}\n'}
DRIFT_2 = {"drift-2.jsonl": b'{"id": 3, "amount": 3, "label": 7, "count": 3, "extra": true}\n'}
DRIFT_3 = {"drift-3.jsonl": b'{"id": 4, "amount": 4.5, "label": "d", "count": "four"}\n',
           "drift-4.jsonl": b'{"id": 5, "amount": 5.5, "label": "e", "count": 5}\n'}


def _cases() -> list[corpus.Case]:
    return corpus.cases() + corpus.key_cases(PREFIX) + corpus.large_cases()


@pytest.fixture(scope="module")
def lake(emulator, tmp_path_factory):
    project = tmp_path_factory.mktemp("corpus")
    for part in ("templates", "lambda", "glue"):
        shutil.copytree(ROOT / part, project / part, ignore=shutil.ignore_patterns("__pycache__"))
    (project / "parameters").mkdir()
    (project / "parameters" / f"{ENV}.yaml").write_text(ENV_FILE)
    cfg = load_config(ENV, project / "parameters")
    lake = Lake(cfg, Clients(AwsTarget(region=cfg.region, endpoint_url=emulator.endpoint_url)))
    outcome = deploy_layers(lake, make_reporter("json"), all_layers(cfg, project), root=project)
    assert outcome.ok, outcome.to_dict()
    return lake


def _stage_a_mapping(lake: Lake) -> str:
    client = lake.clients.client("lambda")
    function = lake.config.names.function(TEAM, "main", "routing-a")
    [mapping] = client.list_event_source_mappings(FunctionName=function)["EventSourceMappings"]
    return mapping["UUID"]


def _set_mapping(lake: Lake, uuid: str, enabled: bool) -> None:
    lake.clients.client("lambda").update_event_source_mapping(UUID=uuid, Enabled=enabled)


@pytest.fixture(scope="module")
def batch(lake):
    """Everything put at once while stage A's queue is held, the deleted object removed before stage A can read
    it, then stage A released; stage A settles, stage B runs for both datasets, the drift goes on in two more
    batches, and the lake settles again."""
    raw, s3 = lake.registry.raw_bucket, lake.clients.client("s3")
    ops = chaos.LakeOps(lake, raw, team=None, dataset=None)
    scenario = chaos.Scenario(ops, timeout=300.0)
    cases = _cases()
    mapping = _stage_a_mapping(lake)
    _set_mapping(lake, mapping, False)
    try:
        for case in cases:
            lake.storage.put_bytes(raw, PREFIX + case.name, case.body)
        lake.storage.put_bytes(raw, PREFIX + "same-content-a.jsonl", SAME)
        lake.storage.put_bytes(raw, PREFIX + "same-content-b.jsonl", SAME)
        first = lake.storage.put_bytes(raw, PREFIX + "twice.jsonl", SAME.replace(b"same", b"twice"))
        second = lake.storage.put_bytes(raw, PREFIX + "twice.jsonl", SAME.replace(b"same", b"twice"))
        for name, body in DRIFT_1.items():
            lake.storage.put_bytes(raw, f"{TEAM}/{DRIFT}/{name}", body)
        for key in UNCLAIMED:
            lake.storage.put_bytes(raw, key, b'{"id": 1}')
        gone = lake.storage.put_bytes(raw, PREFIX + DELETED, b'{"id": "gone"}')
        s3.delete_object(Bucket=raw, Key=PREFIX + DELETED, VersionId=gone.version_id)
        deleted_row = wait_for(lambda: (_row(lake, PREFIX + DELETED) or {}).get("status") == "DELETED", timeout=60)
        assert deleted_row, "the catalog did not record the delete"
    finally:
        _set_mapping(lake, mapping, True)
    scenario.settle(("catalog", "a"))
    with ThreadPoolExecutor(2) as pool:  # two datasets' batches at once, as their schedules would run them
        hostile, drift = pool.map(lambda dataset: lake_stage_b(lake, dataset), (DATASET, DRIFT))
    runs = {DATASET: hostile, DRIFT: [drift]}
    drift_runs = runs[DRIFT]
    for step in (DRIFT_2, DRIFT_3):
        for name, body in step.items():
            lake.storage.put_bytes(raw, f"{TEAM}/{DRIFT}/{name}", body)
        scenario.settle(("catalog", "a"))
        drift_runs.append(lake_stage_b(lake, DRIFT))
    audit = scenario.settle()
    return {"cases": cases, "audit": audit, "runs": runs, "twice": (first, second)}


def lake_stage_b(lake: Lake, dataset: str):
    from sdlf_cli.workflows.stage_b import run_stage_b

    return run_stage_b(lake, TEAM, dataset, timeout=240)


def _row(lake: Lake, key: str) -> dict | None:
    from sdlf_cli.workflows.ingest import catalog_rows

    rows = catalog_rows(lake, uri=f"s3://{lake.registry.raw_bucket}/{key}")
    return rows[0] if rows else None


def _objects(audit) -> dict[str, object]:
    return {o.uri: o for d in audit.datasets for o in d.objects if o.state not in ("SUPERSEDED",)}


def _uri(lake: Lake, key: str) -> str:
    return f"s3://{lake.registry.raw_bucket}/{key}"


def test_every_file_reaches_its_end_state_in_the_catalog_and_the_audit(lake, batch):
    objects, problems = _objects(batch["audit"]), []
    for case in batch["cases"]:
        key = PREFIX + case.name
        row, audited = _row(lake, key) or {}, objects.get(_uri(lake, key))
        state = getattr(audited, "state", None)
        if case.accepted:
            if row.get("status") != "PROCESSED" or state != "PROCESSED":
                problems.append(f"{case.name[:60]}: expected PROCESSED, catalog {row.get('status')} "
                                f"({row.get('reason')}), audit {state} ({getattr(audited, 'detail', '')})")
                continue
            stage = _row_by_uri(lake, row["outputs"][0]) if row.get("outputs") else {}
            if len(row.get("outputs") or []) != 1 or int(stage.get("records") or -1) != case.records:
                problems.append(f"{case.name[:60]}: expected {case.records} records, got {stage.get('records')}")
        else:
            reason = row.get("reason") or ""
            # The row is the object's (its id is the s3:// uri); the reason says what was wrong and expected.
            if row.get("status") != "FAILED" or state != "FAILED" or case.reason not in reason:
                problems.append(f"{case.name[:60]}: expected FAILED ({case.reason}), catalog {row.get('status')} "
                                f"({reason[:200]}), audit {state} ({getattr(audited, 'detail', '')[:200]})")
    assert not problems, "\n".join(problems)


def _row_by_uri(lake: Lake, uri: str) -> dict:
    from sdlf_cli.workflows.ingest import catalog_rows

    rows = catalog_rows(lake, uri=uri)
    return rows[0] if rows else {}


def test_good_files_reach_the_analytics_table_whatever_their_neighbours(lake, batch):
    run = batch["runs"][DATASET]
    assert run.started and run.status == "SUCCEEDED", run.to_dict()
    accepted = [c for c in batch["cases"] if c.accepted]
    records = sum(c.records for c in accepted) + 2 * SAME.count(b"\n") + SAME.count(b"\n")
    database = lake.config.names.glue_database(TEAM, DATASET)
    counted = run_query(lake, f"SELECT count(*) AS n FROM {database}.{DATASET}")
    assert int(counted.rows[0][0]) == records
    [dataset] = [d for d in batch["audit"].datasets if d.dataset == DATASET]
    assert (dataset.rows, dataset.records) == (records, records)


def test_nothing_is_lost_or_duplicated_and_every_failure_is_replayable(batch):
    audit = batch["audit"]
    assert (audit.lost, audit.duplicated) == (0, 0), json.dumps(audit.to_dict(), default=str)[:4000]
    assert audit.count("IN_PROGRESS") == 0
    failed = [o for d in audit.datasets for o in d.objects if o.state == "FAILED"]
    refused = [c for c in batch["cases"] if not c.accepted]
    assert len(failed) == len(refused) + len(UNCLAIMED) + 1  # + the drifted file its table cannot hold


def test_an_object_deleted_before_processing_ends_deleted_with_nothing_to_replay(lake, batch):
    row = _row(lake, PREFIX + DELETED)
    assert row["status"] == "DELETED", row
    assert _uri(lake, PREFIX + DELETED) not in _objects(batch["audit"])  # no version left: nothing to audit
    dlq_a = lake.registry.get(f"pipelines/{TEAM}/main/dlq-a-url")
    parked = [json.loads(m["Body"]) for m in lake.queues.peek(dlq_a, limit=1000)]
    assert not [b for b in parked if b["detail"]["object"]["key"] == PREFIX + DELETED]


def test_the_same_content_twice_is_processed_once_per_key(lake, batch):
    objects = _objects(batch["audit"])
    for name in ("same-content-a.jsonl", "same-content-b.jsonl", "twice.jsonl"):
        assert objects[_uri(lake, PREFIX + name)].state == "PROCESSED", name
    versions = [o for d in batch["audit"].datasets for o in d.objects if o.uri == _uri(lake, PREFIX + "twice.jsonl")]
    assert sorted(o.state for o in versions) == ["PROCESSED", "SUPERSEDED"]
    a = _row(lake, PREFIX + "same-content-a.jsonl")["outputs"]
    b = _row(lake, PREFIX + "same-content-b.jsonl")["outputs"]
    assert a != b  # two inputs, two stage objects: the rows of both are in the table, each once


def test_prefixes_no_dataset_claims_fail_and_wait_in_the_catalog_dlq(lake, batch):
    objects = _objects(batch["audit"])
    for key in UNCLAIMED:
        row = _row(lake, key)
        assert row["status"] == "FAILED" and row["reason"], (key, row)
        assert objects[_uri(lake, key)].state == "FAILED", key


def test_schema_drift_adds_columns_widens_types_or_rejects_the_file_saying_which(lake, batch):
    first, second, third = batch["runs"][DRIFT]
    assert [run.status for run in (first, second, third)] == ["SUCCEEDED"] * 3, [r.to_dict() for r in batch["runs"][DRIFT]]
    database = lake.config.names.glue_database(TEAM, DRIFT)
    result = run_query(lake, f"SELECT id, amount, label, extra FROM {database}.{DRIFT} ORDER BY id")
    assert [list(r) for r in result.rows] == [[1, 1.5, "a", None], [2, 2.5, "b", None], [3, 3.0, "7", True],
                                              [5, 5.5, "e", None]]
    objects = _objects(batch["audit"])
    assert objects[_uri(lake, f"{TEAM}/{DRIFT}/drift-4.jsonl")].state == "PROCESSED"
    [stage] = [r for r in _stage_rows(lake) if r["id"].endswith("/drift-3.jsonl")]
    assert stage["status"] == "FAILED" and stage["reason"].startswith(
        f"schema drift in {stage['id']} line 1 (value \"four\"): column 'count' is string there but bigint in the "
        "table at "), stage
    assert objects[_uri(lake, f"{TEAM}/{DRIFT}/drift-3.jsonl")].state == "FAILED"


def _stage_rows(lake: Lake) -> list[dict]:
    from sdlf_cli.workflows.ingest import catalog_rows

    return [r for r in catalog_rows(lake, team=TEAM, dataset=DRIFT) if r.get("stage") == "stage"]
