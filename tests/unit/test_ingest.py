"""Ingest's wait for catalog rows: polls the catalog, reads the lake's registry once."""
from __future__ import annotations

from pathlib import Path

import boto3
from botocore.stub import Stubber

from sdlf_cli.aws.session import AwsTarget, Clients
from sdlf_cli.config.loader import load_config
from sdlf_cli.lake import Lake
from sdlf_cli.workflows.ingest import Ingested, wait_for_rows

ROOT = Path(__file__).resolve().parents[2]
URI = "s3://raw/engineering/legislators/a.json"


def test_waiting_for_rows_reads_the_registry_once_however_many_polls():
    cfg = load_config("dev", ROOT / "parameters")
    clients = Clients(AwsTarget(region="us-east-1"))
    ssm, ddb = (boto3.client(s, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
                for s in ("ssm", "dynamodb"))
    clients._cache.update(ssm=ssm, dynamodb=ddb)  # the factory's cache is the injection point for stubbed clients
    prefix = cfg.names.ssm_prefix
    key = {"TableName": "catalog", "Key": {"id": {"S": URI}}, "ConsistentRead": True}
    row = {"id": {"S": URI}, "etag": {"S": '"e1"'}, "status": {"S": "RECEIVED"}}
    sleeps = []
    with Stubber(ssm) as registry, Stubber(ddb) as tables:
        registry.add_response("get_parameters_by_path", {"Parameters": [
            {"Name": f"{prefix}/tables/catalog", "Value": "catalog"}]}, {"Path": prefix, "Recursive": True})
        tables.add_response("get_item", {}, key)  # no row yet
        tables.add_response("get_item", {"Item": {**row, "etag": {"S": "older"}}}, key)  # an earlier upload's row
        tables.add_response("get_item", {"Item": row}, key)
        found = wait_for_rows(Lake(cfg, clients), [Ingested("a.json", "raw", "engineering/legislators/a.json", "e1",
                                                            None, 3)], sleep=sleeps.append, clock=lambda: 0.0)
        registry.assert_no_pending_responses()
        tables.assert_no_pending_responses()
    assert found[URI]["status"] == "RECEIVED" and len(sleeps) == 2
