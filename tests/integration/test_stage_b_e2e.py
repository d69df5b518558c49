"""Stage B end to end on the in-process emulator, deployed the way `sdlf deploy` deploys:

raw object -> stage A -> stage-B queue -> routing-b (forced) -> sm-b: Glue heavy transform (real
script) -> crawler -> quality job -> post-update; then a dataset whose `fail` quality rule fails,
and replays of a batch that must not duplicate rows.
"""
from __future__ import annotations

import io
import json
import shutil
from functools import partial
from pathlib import Path

import pytest

from sdlf_cli.aws.session import AwsTarget, Clients
from sdlf_cli.config.loader import load_config
from sdlf_cli.lake import Lake
from sdlf_cli.ui import make_reporter
from sdlf_cli.workflows.deploy import deploy_layers
from sdlf_cli.workflows.ingest import catalog_rows, ingest_files
from sdlf_cli.workflows.stage_b import run_stage_b

from tests.integration.helpers import wait_for

ROOT = Path(__file__).resolve().parents[2]
ENV = "stgb"
TEAM, PIPELINE = "engineering", "main"
GOOD, STRICT = "people", "strict"
# The schedule would start batches on its own; once a day never fires during the test.
ENV_FILE = f"""# stage-B end-to-end lake
env: {ENV}
teams:
  {TEAM}:
    pipelines:
      {PIPELINE}: {{}}
    datasets:
      {GOOD}:
        pipeline: {PIPELINE}
        engine: python
        schedule: rate(1 day)
        batch: {{min_items: 1, max_items: 100}}
        quality:
          - {{rule: completeness, column: id, threshold: 1.0}}
          - {{rule: row_count, min: 1, severity: warn}}
      {STRICT}:
        pipeline: {PIPELINE}
        engine: python
        schedule: rate(1 day)
        batch: {{min_items: 1, max_items: 100}}
        quality:
          - {{rule: completeness, column: email, threshold: 1.0, severity: fail}}
"""
PEOPLE = [
    {"id": 1, "Name": "Ada", "address": {"city": "London"}, "tags": ["math"]},
    {"id": 2, "Name": "Grace", "address": {"city": "Arlington"}, "tags": ["navy", "cobol"]},
    {"id": 3, "Name": "Edsger", "address": {"city": "Austin"}, "tags": []},
]


def _jsonl(rows: list[dict]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in rows)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    dest = tmp_path_factory.mktemp("stage_b")
    for part in ("templates", "lambda", "glue"):
        shutil.copytree(ROOT / part, dest / part, ignore=shutil.ignore_patterns("__pycache__"))
    (dest / "parameters").mkdir()
    shutil.copy(ROOT / "parameters" / "base.yaml", dest / "parameters" / "base.yaml")
    (dest / "parameters" / f"{ENV}.yaml").write_text(ENV_FILE)
    return dest


@pytest.fixture(scope="module")
def lake(emulator, project):
    cfg = load_config(ENV, project / "parameters")
    clients = Clients(AwsTarget(region=cfg.region, endpoint_url=emulator.endpoint_url))
    outcome = deploy_layers(
        Lake(cfg, clients), make_reporter("json"), ["foundations", "team", "pipeline", "dataset"], root=project
    )
    assert outcome.ok, outcome.to_dict()
    return cfg, clients, Lake(cfg, clients).registry


_wait = partial(wait_for, timeout=60.0, interval=0.25)


def _stage_rows(cfg, clients, dataset: str, status: str) -> list[dict]:
    return [
        r for r in catalog_rows(Lake(cfg, clients), team=TEAM, dataset=dataset)
        if r.get("stage") == "stage" and r.get("status") == status
    ]


def _ingest_through_stage_a(cfg, clients, project, dataset: str, files: dict[str, bytes]) -> list[dict]:
    """Upload raw files and wait until stage A processed each (one stage object per file)."""
    paths = []
    for name, body in files.items():
        path = project / "inputs" / dataset / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        paths.append(path)
    ingested = ingest_files(Lake(cfg, clients), paths, TEAM, dataset)
    uris = {i.uri for i in ingested}

    def processed():
        rows = [r for r in catalog_rows(Lake(cfg, clients), team=TEAM, dataset=dataset) if r["id"] in uris]
        failed = [r for r in rows if r.get("status") == "FAILED"]
        assert not failed, f"stage A failed: {failed}"
        return len(rows) == len(uris) and all(r.get("status") == "PROCESSED" for r in rows)

    assert _wait(processed), "stage A did not process the raw objects"
    return _wait(lambda: len(_stage_rows(cfg, clients, dataset, "PROCESSED")) >= len(files) and
                 _stage_rows(cfg, clients, dataset, "PROCESSED"))


def _parquet_rows(clients, bucket: str, prefix: str) -> tuple[list[str], int]:
    import pyarrow.parquet as pq

    s3 = clients.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
            if o["Key"].endswith(".parquet")]
    rows = sum(pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=k)["Body"].read())).num_rows for k in keys)
    return keys, rows


@pytest.fixture(scope="module")
def good_batch(lake, project):
    cfg, clients, resources = lake
    stage_rows = _ingest_through_stage_a(
        cfg, clients, project, GOOD, {"a.json": _jsonl(PEOPLE[:2]), "b.json": _jsonl(PEOPLE[2:])}
    )
    run = run_stage_b(Lake(cfg, clients), TEAM, GOOD, timeout=300)
    return run, stage_rows


def test_batch_succeeds_with_parquet_table_quality_and_lineage(lake, good_batch):
    cfg, clients, resources = lake
    run, stage_rows = good_batch
    assert run.started and run.status == "SUCCEEDED", run.to_dict()
    assert run.objects == 2

    analytics = resources.get("buckets/analytics")
    keys, rows = _parquet_rows(clients, analytics, f"{TEAM}/{GOOD}/{GOOD}/")
    assert rows == 3
    assert keys and all(f"part-{run.batch_id}.parquet" in k and "/ingestion_date=" in k for k in keys)

    glue = clients.client("glue")
    table = glue.get_table(DatabaseName=cfg.names.glue_database(TEAM, GOOD), Name=GOOD)["Table"]
    columns = {c["Name"] for c in table["StorageDescriptor"]["Columns"]}
    assert {"id", "name", "address", "tags"} <= columns
    assert [k["Name"] for k in table["PartitionKeys"]] == ["ingestion_date"]
    partitions = glue.get_partitions(DatabaseName=cfg.names.glue_database(TEAM, GOOD), TableName=GOOD)["Partitions"]
    assert len(partitions) == 1

    quality = clients.client("dynamodb").query(
        TableName=resources.get("tables/quality"),
        KeyConditionExpression="id = :d",
        ExpressionAttributeValues={":d": {"S": f"{TEAM}/{GOOD}"}},
    )["Items"]
    assert quality and {q["status"]["S"] for q in quality} <= {"PASS", "WARN"}

    stage_uris = sorted(r["id"] for r in stage_rows)
    processed_stage = _stage_rows(cfg, clients, GOOD, "PROCESSED")
    assert sorted(r["id"] for r in processed_stage) == stage_uris
    assert all(r.get("batch_id") == run.batch_id for r in processed_stage)
    table_prefix = f"s3://{analytics}/{TEAM}/{GOOD}/{GOOD}/"
    analytics_rows = [r for r in catalog_rows(Lake(cfg, clients), team=TEAM, dataset=GOOD) if r["id"].startswith(table_prefix)]
    assert analytics_rows and all(r["status"] == "PROCESSED" for r in analytics_rows)
    assert all(sorted(r["lineage"]) == stage_uris for r in analytics_rows)

    execution = clients.client("dynamodb").get_item(
        TableName=resources.get("tables/executions"), Key={"id": {"S": run.execution_arn.rsplit(":", 1)[1]}}
    )["Item"]
    assert execution["status"]["S"] == "SUCCEEDED" and execution["stage"]["S"] == "b"
    assert execution["records_out"]["N"] == "3"


def test_replaying_the_batch_does_not_duplicate_rows(lake, good_batch):
    cfg, clients, resources = lake
    run, _ = good_batch
    stage_bucket = resources.get("buckets/stage")
    manifest_key = f"{TEAM}/{GOOD}/_batches/{run.batch_id}/manifest.json"
    s3 = clients.client("s3")
    manifest = json.loads(s3.get_object(Bucket=stage_bucket, Key=manifest_key)["Body"].read())

    # The same stage objects handed off again (SQS delivers at least once): their content is in the
    # table already, so routing-b deletes the hand-offs and starts nothing.
    sqs = clients.client("sqs")
    queue = sqs.get_queue_url(QueueName=cfg.names.queue(TEAM, GOOD, "b"))["QueueUrl"]
    for item in manifest["inputs"]:
        body = {"team": TEAM, "dataset": GOOD, "bucket": stage_bucket, "key": item["uri"].split("/", 3)[3], **item}
        sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(body))
    again = run_stage_b(Lake(cfg, clients), TEAM, GOOD, timeout=300)
    assert not again.started, again.to_dict()
    counts = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    assert (counts["ApproximateNumberOfMessages"], counts["ApproximateNumberOfMessagesNotVisible"]) == ("0", "0")

    # Running the whole batch again (a new execution of the same manifest) overwrites its files.
    sfn = clients.client("stepfunctions")
    original = json.loads(sfn.describe_execution(executionArn=run.execution_arn)["input"])
    rerun_name = original["execution"][:70] + "-rerun"
    arn = sfn.start_execution(
        stateMachineArn=run.execution_arn.replace(":execution:", ":stateMachine:").rsplit(":", 1)[0],
        name=rerun_name, input=json.dumps({**original, "execution": rerun_name}),
    )["executionArn"]
    status = _wait(lambda: sfn.describe_execution(executionArn=arn)["status"] != "RUNNING" and
                   sfn.describe_execution(executionArn=arn)["status"], timeout=300, interval=1)
    assert status == "SUCCEEDED"
    _, rows = _parquet_rows(clients, resources.get("buckets/analytics"), f"{TEAM}/{GOOD}/{GOOD}/")
    assert rows == 3


def test_failing_quality_rule_fails_the_batch_and_parks_objects(lake, project):
    cfg, clients, resources = lake
    people = [{"id": 1, "email": "a@example.com"}, {"id": 2, "email": None}]
    _ingest_through_stage_a(cfg, clients, project, STRICT, {"c.json": _jsonl(people)})
    run = run_stage_b(Lake(cfg, clients), TEAM, STRICT, timeout=300)
    assert run.started and run.status == "FAILED", run.to_dict()

    failed = _wait(lambda: _stage_rows(cfg, clients, STRICT, "FAILED"))
    assert len(failed) == 1
    assert "quality rule(s) failed" in failed[0]["reason"] and "completeness(email)" in failed[0]["reason"]

    sqs = clients.client("sqs")
    dlq = sqs.get_queue_url(QueueName=cfg.names.dlq(TEAM, STRICT, "b"))["QueueUrl"]
    messages = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, VisibilityTimeout=0)["Messages"]
    bodies = [json.loads(m["Body"]) for m in messages]
    assert [b["uri"] for b in bodies] == [failed[0]["id"]]
    assert bodies[0]["sdlf"]["batch_id"] == run.batch_id and "quality" in bodies[0]["sdlf"]["reason"]
    # Its Parquet is out of the table (queries and crawls see none of its rows), kept in quarantine.
    analytics = resources.get("buckets/analytics")
    assert _parquet_rows(clients, analytics, f"{TEAM}/{STRICT}/{STRICT}/") == ([], 0)
    quarantined, rows = _parquet_rows(clients, analytics, f"{TEAM}/{STRICT}/_quarantine/{run.batch_id}/")
    assert len(quarantined) == 1 and rows == 2

    execution = clients.client("dynamodb").get_item(
        TableName=resources.get("tables/executions"), Key={"id": {"S": run.execution_arn.rsplit(":", 1)[1]}}
    )["Item"]
    assert execution["status"]["S"] == "FAILED"
