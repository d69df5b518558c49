"""Foundations end to end on the in-process emulator, through the same workflow `sdlf deploy` runs."""
from __future__ import annotations

import json
import shutil
from functools import partial
from pathlib import Path

import boto3
import pytest

from sdlf_cli.aws.session import AwsTarget, Clients
from sdlf_cli.config.loader import load_config
from sdlf_cli.lake import Lake
from sdlf_cli.ui import make_reporter
from sdlf_cli.workflows.deploy import deploy_layers
from sdlf_cli.workflows.ingest import catalog_rows, ingest_and_track

from tests.integration.helpers import wait_for

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A copy of the project tree, so a test may change Lambda code without touching the repo."""
    dest = tmp_path_factory.mktemp("project")
    for part in ("templates", "lambda", "parameters", "samples"):
        shutil.copytree(ROOT / part, dest / part, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


@pytest.fixture(scope="module")
def lake(emulator, project):
    cfg = load_config("dev", project / "parameters")
    clients = Clients(AwsTarget(region=cfg.region, endpoint_url=emulator.endpoint_url))
    outcome = deploy_layers(Lake(cfg, clients), make_reporter("json"), ["foundations"], root=project)
    assert outcome.ok, outcome.to_dict()
    return cfg, clients, outcome


_wait = partial(wait_for, timeout=20.0, interval=0.2)


def test_first_deploy_creates_bootstrap_and_foundations(lake):
    _, _, outcome = lake
    statuses = {r.layer: r.status for r in outcome.results}
    assert statuses == {"bootstrap": "created", "foundations": "created"}
    foundations = next(r for r in outcome.results if r.layer == "foundations")
    for key in ("RawBucket", "StageBucket", "AnalyticsBucket", "CatalogTable", "CatalogQueueUrl", "KmsKeyArn"):
        assert foundations.outputs.get(key), key
    assert {u.action for u in outcome.uploads} == {"uploaded"}


def test_registry_is_published_in_ssm(lake):
    cfg, clients, outcome = lake
    resources = Lake(cfg, clients).registry
    foundations = next(r for r in outcome.results if r.layer == "foundations")
    assert resources.raw_bucket == foundations.outputs["RawBucket"]
    assert resources.catalog_table == foundations.outputs["CatalogTable"]


def test_put_object_creates_catalog_row_and_delete_marks_it(lake, project):
    cfg, clients, _ = lake
    sample = project / "samples" / "engineering" / "legislators" / "persons-1.json"
    tracked = ingest_and_track(Lake(cfg, clients), [sample], "engineering", "legislators", timeout=20)
    row = tracked[0].row
    assert row is not None, "no catalog row"
    assert row["status"] in ("RECEIVED", "FAILED")
    assert row["stage"] == "raw"
    assert (row["team"], row["dataset"]) == ("engineering", "legislators")
    assert row["size"] == sample.stat().st_size
    assert row["etag"].strip('"') == tracked[0].ingested.etag

    uri = tracked[0].ingested.uri
    # Only foundations are deployed: no dataset claims the prefix, so the object ends FAILED with the
    # reason and a replayable message in the catalog DLQ instead of sitting RECEIVED forever.
    failed = _wait(lambda: [r for r in catalog_rows(Lake(cfg, clients), uri=uri) if r["status"] == "FAILED"])
    assert failed and "engineering/legislators is not registered" in failed[0]["reason"]
    dlq = Lake(cfg, clients).registry.get("queues/catalog-dlq")
    bodies = [json.loads(m["Body"]) for m in clients.client("sqs").receive_message(
        QueueUrl=dlq, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])]
    assert any(b["detail"]["object"]["key"] == tracked[0].ingested.key and b["detail-type"] == "Object Created"
               for b in bodies)

    s3 = clients.client("s3")
    s3.delete_object(Bucket=tracked[0].ingested.bucket, Key=tracked[0].ingested.key)
    deleted = _wait(lambda: [r for r in catalog_rows(Lake(cfg, clients), uri=uri) if r["status"] == "DELETED"])
    assert deleted and deleted[0]["deleted_at"]

    # Re-uploading brings the row back with the new object's details.
    again = ingest_and_track(Lake(cfg, clients), [sample], "engineering", "legislators", timeout=20)
    assert again[0].row and again[0].row["status"] in ("RECEIVED", "FAILED")
    assert not again[0].row.get("deleted_at") or again[0].row["status"] != "DELETED"


def test_second_deploy_is_unchanged(lake, project):
    cfg, clients, _ = lake
    outcome = deploy_layers(Lake(cfg, clients), make_reporter("json"), ["foundations"], root=project)
    assert outcome.ok
    assert {r.status for r in outcome.results} == {"unchanged"}
    assert {u.action for u in outcome.uploads} == {"skipped"}


def test_plan_of_a_renamed_table_says_what_aws_would(lake, project):
    """A new TableName is a replacement (create-only in the provider schema): the plan flags the table as
    destructive with its data at risk, and what reads its name or Arn as changing when it is known."""
    cfg, clients, _ = lake
    tables = project / "templates" / "foundations" / "_tables.yaml.j2"
    original = tables.read_text()
    tables.write_text(original.replace('table("rExecutionsTable", "executions",', 'table("rExecutionsTable", "runs",'))
    try:
        outcome = deploy_layers(Lake(cfg, clients), make_reporter("json"), ["foundations"], root=project, dry_run=True)
    finally:
        tables.write_text(original)
    foundations = next(r for r in outcome.results if r.layer == "foundations")
    assert foundations.status == "planned", foundations.message
    changes = {c.logical_id: c for c in foundations.changes}
    table = changes["rExecutionsTable"].to_dict()
    assert (table["action"], table["replacement"], table["destructive"], table["data_at_risk"]) == (
        "Modify", "True", True, True)
    assert table["recreates"] == ["TableName"]
    dependants = [c for c in foundations.changes if c.logical_id != "rExecutionsTable"]
    assert dependants and all(c.action == "Modify" and not c.destructive for c in dependants)
    # the registry parameter that publishes the table's name changes with it
    assert "AWS::SSM::Parameter" in {c.resource_type for c in dependants}
    assert "1 destructive" in foundations.message and "1 with data at risk" in foundations.message
    # nothing was executed: the stack and the table are as deployed
    assert cfg.names.table("executions") in clients.client("dynamodb").list_tables()["TableNames"]


def test_changed_lambda_code_updates_only_that_function(lake, project, emulator):
    cfg, clients, _ = lake
    handler = project / "lambda" / "catalog" / "handler.py"
    handler.write_text(handler.read_text() + "\n# a comment that changes the code hash\n")
    outcome = deploy_layers(Lake(cfg, clients), make_reporter("json"), ["foundations"], root=project)
    assert outcome.ok, outcome.to_dict()
    statuses = {r.layer: r.status for r in outcome.results}
    assert statuses == {"bootstrap": "unchanged", "foundations": "updated"}
    uploaded = [u.artifact.name for u in outcome.uploads if u.action == "uploaded"]
    assert uploaded == ["catalog"]
    fn = clients.client("lambda").get_function(FunctionName=cfg.names.function("catalog"))
    assert fn["Code"]["Location"] or fn["Configuration"]["CodeSha256"]


def test_any_s3_client_works(lake, emulator, project):
    """A client nobody here wrote (plain boto3 with only an endpoint) sees the same lake."""
    cfg, clients, outcome = lake
    raw = next(r for r in outcome.results if r.layer == "foundations").outputs["RawBucket"]
    s3 = boto3.client("s3", endpoint_url=emulator.endpoint_url, region_name=cfg.region,
                      aws_access_key_id="x", aws_secret_access_key="x")
    s3.put_object(Bucket=raw, Key="engineering/legislators/other.json", Body=b'{"id": 1}\n')
    uri = f"s3://{raw}/engineering/legislators/other.json"
    rows = _wait(lambda: catalog_rows(Lake(cfg, clients), uri=uri))
    assert rows and rows[0]["stage"] == "raw" and rows[0]["size"] == 10


def test_the_aws_cli_sees_the_same_lake(lake, emulator, project):
    """`aws --endpoint-url … s3 cp` into the raw bucket gives a catalog row that `aws dynamodb scan` shows."""
    import os
    import subprocess
    import sys

    cfg, clients, outcome = lake
    foundations = next(r for r in outcome.results if r.layer == "foundations").outputs
    aws = str(Path(sys.executable).with_name("aws"))
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": cfg.region}
    env.pop("AWS_PROFILE", None)
    key = "engineering/legislators/from-the-aws-cli.json"
    sample = project / "samples" / "engineering" / "legislators" / "persons-1.json"
    subprocess.run([aws, "--endpoint-url", emulator.endpoint_url, "s3", "cp", str(sample),
                    f"s3://{foundations['RawBucket']}/{key}"], env=env, check=True, capture_output=True)

    def scanned():
        out = subprocess.run([aws, "--endpoint-url", emulator.endpoint_url, "dynamodb", "scan",
                              "--table-name", foundations["CatalogTable"], "--output", "json"],
                             env=env, check=True, capture_output=True, text=True).stdout
        return [i for i in json.loads(out)["Items"] if i["key"]["S"] == key]

    items = _wait(scanned)
    assert items and items[0]["stage"]["S"] == "raw" and items[0]["size"]["N"] == str(sample.stat().st_size)
