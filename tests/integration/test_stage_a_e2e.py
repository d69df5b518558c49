"""Stage A end to end on the emulator: the whole lake deployed, good and bad files ingested together."""
from __future__ import annotations

import json
import shutil
import time
from functools import partial
from pathlib import Path

import pytest

from sdlf_cli.aws.session import AwsTarget, Clients
from sdlf_cli.config.loader import load_config
from sdlf_cli.lake import Lake
from sdlf_cli.ui import make_reporter
from sdlf_cli.workflows.deploy import all_layers, deploy_layers
from sdlf_cli.workflows.ingest import catalog_rows, ingest_files
from sdlf_cli.workflows.observe import recent_runs, trace_object
from sdlf_datalake.timeutil import parse_time

from tests.integration.helpers import wait_for

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples" / "engineering" / "legislators"
GOOD = ["persons-1.json", "persons-2.csv", "persons-3.json.gz"]
TERMINAL = {"PROCESSED", "FAILED"}


_wait = partial(wait_for, timeout=60.0, interval=0.3)


def _drain(sqs, url: str) -> list[dict]:
    bodies, seen = [], set()
    for _ in range(10):
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                       VisibilityTimeout=60).get("Messages", [])
        if not messages:
            break
        for m in messages:
            if m["MessageId"] not in seen:
                seen.add(m["MessageId"])
                bodies.append(json.loads(m["Body"]))
    return bodies


@pytest.fixture(scope="module")
def lake(emulator, tmp_path_factory):
    project = tmp_path_factory.mktemp("lake-a")
    for part in ("templates", "lambda", "glue", "parameters"):
        if (ROOT / part).exists():
            shutil.copytree(ROOT / part, project / part, ignore=shutil.ignore_patterns("__pycache__"))
    # Same lake, another environment: this module's stacks do not collide with other tests' ones.
    dev = (project / "parameters" / "dev.yaml").read_text()
    (project / "parameters" / "stga.yaml").write_text(dev.replace("env: dev", "env: stga", 1))
    cfg = load_config("stga", project / "parameters")
    clients = Clients(AwsTarget(region=cfg.region, endpoint_url=emulator.endpoint_url))
    outcome = deploy_layers(Lake(cfg, clients), make_reporter("json"), all_layers(cfg, project), root=project)
    assert outcome.ok, outcome.to_dict()
    return cfg, clients


@pytest.fixture(scope="module")
def ingested(lake, tmp_path_factory):
    cfg, clients = lake
    bad_dir = tmp_path_factory.mktemp("bad")
    (bad_dir / "empty.json").write_bytes(b"")
    (bad_dir / "image.json").write_bytes(bytes(range(256)) * 4)
    files = [SAMPLES / n for n in GOOD] + [SAMPLES / "persons-broken.json", bad_dir / "empty.json",
                                           bad_dir / "image.json"]
    done = ingest_files(Lake(cfg, clients), files, "engineering", "legislators")
    stray = ingest_files(Lake(cfg, clients), [SAMPLES / "persons-1.json"], "engineering", "nosuchdataset")
    uris = [d.uri for d in done + stray]

    def settled():
        rows = {u: (catalog_rows(Lake(cfg, clients), uri=u) or [None])[0] for u in uris}
        return rows if all(r and r["status"] in TERMINAL for r in rows.values()) else None

    rows = _wait(settled)
    assert rows, "objects did not reach a terminal catalog state"
    return {Path(d.key).name if d in done else "stray": rows[d.uri] for d in done + stray}


def test_good_files_become_json_lines_in_stage_with_lineage(lake, ingested):
    cfg, clients = lake
    s3 = clients.client("s3")
    stage_bucket = Lake(cfg, clients).registry.get("buckets/stage")
    expected_records = {"persons-1.json": 3, "persons-2.csv": 2, "persons-3.json.gz": 2}
    for name in GOOD:
        raw = ingested[name]
        assert raw["status"] == "PROCESSED", raw
        assert raw.get("execution")
        outputs = raw.get("outputs") or []
        assert len(outputs) == 1, raw
        stage_row = catalog_rows(Lake(cfg, clients), uri=outputs[0])[0]
        assert stage_row["status"] == "PROCESSED" and stage_row["stage"] == "stage", stage_row
        assert stage_row["lineage"] == [raw["id"]]
        key = outputs[0].split(f"s3://{stage_bucket}/", 1)[1]
        assert key.startswith("engineering/legislators/") and key.endswith(".jsonl")
        lines = s3.get_object(Bucket=stage_bucket, Key=key)["Body"].read().decode("utf-8").splitlines()
        records = [json.loads(line) for line in lines]
        assert len(records) == expected_records[name]
        assert all(isinstance(r, dict) and r["id"] for r in records)


def test_bad_files_fail_alone_with_reasons_and_wait_in_the_dlq(lake, ingested):
    cfg, clients = lake
    reasons = {n: ingested[n].get("reason", "") for n in ("persons-broken.json", "empty.json", "image.json")}
    assert all(ingested[n]["status"] == "FAILED" for n in reasons)
    assert "malformed JSON" in reasons["persons-broken.json"]
    assert "empty file" in reasons["empty.json"]
    assert "binary content" in reasons["image.json"]
    assert ingested["stray"]["status"] == "FAILED" and "not registered" in ingested["stray"]["reason"]

    sqs = clients.client("sqs")
    dlq_a = Lake(cfg, clients).registry.get("pipelines/engineering/main/dlq-a-url")
    parked = {b["detail"]["object"]["key"].rsplit("/", 1)[-1] for b in _drain(sqs, dlq_a)}
    assert {"persons-broken.json", "empty.json", "image.json"} <= parked
    catalog_dlq = Lake(cfg, clients).registry.get("queues/catalog-dlq")
    assert any(b["detail"]["object"]["key"].startswith("engineering/nosuchdataset/")
               for b in _drain(sqs, catalog_dlq))


def test_stage_b_queue_holds_one_message_per_stage_object(lake, ingested):
    cfg, clients = lake
    registration = json.loads(Lake(cfg, clients).registry.get("datasets/engineering/legislators"))
    bodies = _drain(clients.client("sqs"), registration["stage_b_queue_url"])
    sources = sorted(b["source"] for b in bodies)
    assert sources == sorted(ingested[n]["id"] for n in GOOD)


def test_runs_and_trace_show_each_journey(lake, ingested):
    cfg, clients = lake
    runs = recent_runs(Lake(cfg, clients), team="engineering", dataset="legislators")
    by_id = {r["id"]: r for r in runs}
    for name in GOOD:
        assert by_id[ingested[name]["execution"]]["status"] == "SUCCEEDED"
    assert by_id[ingested["persons-broken.json"]["execution"]]["status"] == "FAILED"
    # The state machine passes its $$.Execution.StartTime: each row starts when its execution did, and its duration
    # runs from there to finished_at (post and the error handler compute it without reading the row).
    sfn = clients.client("stepfunctions")
    machine = Lake(cfg, clients).registry.get("pipelines/engineering/main/state-machine-a-arn")
    arn_prefix = machine.replace(":stateMachine:", ":execution:")
    for name in [*GOOD, "persons-broken.json"]:
        run = by_id[ingested[name]["execution"]]
        started = sfn.describe_execution(executionArn=f"{arn_prefix}:{run['id']}")["startDate"]
        assert abs((parse_time(run["started_at"]) - started).total_seconds()) < 0.002, (run, started)
        elapsed = parse_time(run["finished_at"]) - parse_time(run["started_at"])
        assert run["duration_ms"] == int(elapsed.total_seconds() * 1000), run

    journey = trace_object(Lake(cfg, clients), ingested["persons-1.json"]["id"])
    assert [o["stage"] for o in journey.outputs] == ["stage"]
    assert journey.executions and journey.executions[0]["status"] == "SUCCEEDED"
    failed = trace_object(Lake(cfg, clients), ingested["persons-broken.json"]["id"])
    assert failed.row["status"] == "FAILED" and failed.executions[0]["status"] == "FAILED"


def test_uploading_the_same_files_again_changes_nothing(lake, ingested):
    cfg, clients = lake
    sfn = clients.client("stepfunctions")
    machine = Lake(cfg, clients).registry.get("pipelines/engineering/main/state-machine-a-arn")
    before = len(sfn.list_executions(stateMachineArn=machine)["executions"])
    stage_bucket = Lake(cfg, clients).registry.get("buckets/stage")
    s3 = clients.client("s3")
    objects_before = s3.list_objects_v2(Bucket=stage_bucket, Prefix="engineering/legislators/")["KeyCount"]

    again = ingest_files(Lake(cfg, clients), [SAMPLES / n for n in GOOD], "engineering", "legislators")
    time.sleep(3)  # let the events flow; nothing new should start
    rows = [catalog_rows(Lake(cfg, clients), uri=d.uri)[0] for d in again]
    assert all(r["status"] == "PROCESSED" for r in rows)
    assert len(sfn.list_executions(stateMachineArn=machine)["executions"]) == before
    assert s3.list_objects_v2(Bucket=stage_bucket, Prefix="engineering/legislators/")["KeyCount"] == objects_before
