"""Shared fixtures for the Glue script tests (stage-B heavy transform and quality).

The scripts live in `glue/` as stand-alone files (Glue runs one file), so they are loaded by path.
S3 and DynamoDB are moto's in-process `mock_aws`; Spark is one local session for the whole run.
"""
from __future__ import annotations

import importlib.util
import io
import json
import os
import sys
from pathlib import Path
from typing import Any

import boto3
import pyarrow.parquet as pq
import pytest
from moto import mock_aws

from sdlf_cli.cache_dir import cache_dir
from sdlf_cli.local.runtime import spark_class_archive

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "stage_b"
REGION = "us-east-1"
STAGE = "lake-stage"
ANALYTICS = "lake-analytics"
QUALITY_TABLE = "lake-quality"
TEAM, DATASET = "sales", "orders"
CREATED_AT = "2024-05-03T12:00:00.000000Z"


def load_script(name: str):
    """Import glue/<name>.py as module `<name>` (the tests' view of what Glue runs)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "glue" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def spark():
    """One local Spark session for every Spark test (start-up is the slow part). It starts from the Spark class
    archive in the suite's shared cache when the emulator's Spark job runs have made it by then (never makes it)."""
    heavy = load_script("heavy_transform")
    sharing = spark_class_archive.for_cache(cache_dir(ROOT)).using(os.environ)
    with pytest.MonkeyPatch.context() as patch:  # the JVM reads it when it starts only
        if sharing.java_options:
            name = spark_class_archive.SUBMIT_ARGS_VARIABLE
            patch.setenv(name, sharing.environment(os.environ)[name])
        session = heavy.spark_session()
    yield session
    session.stop()


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        for bucket in (STAGE, ANALYTICS):
            s3.create_bucket(Bucket=bucket)
        boto3.client("dynamodb", region_name=REGION).create_table(
            TableName=QUALITY_TABLE,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}, {"AttributeName": "run_id", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"},
                                  {"AttributeName": "run_id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield s3


def put_inputs(s3, files: list[str], dataset: str = DATASET) -> list[dict[str, Any]]:
    inputs = []
    for name in files:
        key = f"{TEAM}/{dataset}/{name}"
        body = (FIXTURES / name).read_bytes()
        etag = s3.put_object(Bucket=STAGE, Key=key, Body=body)["ETag"].strip('"')
        inputs.append({"uri": f"s3://{STAGE}/{key}", "etag": etag, "source": f"s3://lake-raw/{key}", "records": None})
    return inputs


def put_manifest(s3, inputs: list[dict[str, Any]], *, batch_id: str = "b0123456789abcdef0123456",
                 partition_by: list[str] | None = None, quality: list[dict[str, Any]] | None = None,
                 engine: str = "python", dataset: str = DATASET) -> str:
    manifest = {
        "batch_id": batch_id,
        "team": TEAM,
        "dataset": dataset,
        "table": dataset,
        "engine": engine,
        "created_at": CREATED_AT,
        "partition_by": ["ingestion_date"] if partition_by is None else partition_by,
        "inputs": inputs,
        "output": f"s3://{ANALYTICS}/{TEAM}/{dataset}/{dataset}/",
        "quality": quality or [],
        "quality_table": QUALITY_TABLE,
        "quality_output": f"s3://{ANALYTICS}/{TEAM}/{dataset}/_quality/",
    }
    key = f"{TEAM}/{dataset}/_batches/{batch_id}/manifest.json"
    s3.put_object(Bucket=STAGE, Key=key, Body=json.dumps(manifest).encode())
    return f"s3://{STAGE}/{key}"


def read_json(s3, uri: str) -> dict[str, Any]:
    bucket, _, key = uri[5:].partition("/")
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def read_parquet(s3, uri: str):
    bucket, _, key = uri[5:].partition("/")
    return pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))


def keys(s3, bucket: str, prefix: str) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []))


def test_utf8_is_checked_piece_by_piece_and_a_bad_byte_is_named_by_its_line_and_offset():
    heavy = load_script("heavy_transform")
    body = '{"a": "ø"}\n{"b": "æ"}\n{"c": "å"}\n'.encode() * 3
    heavy.check_utf8("s3://b/k.jsonl", body, piece=5)  # pieces end after a newline, never inside "ø"
    bad = body + b'{"d": "\xff"}\n'
    with pytest.raises(heavy.JobError, match=rf"s3://b/k.jsonl line 10: not UTF-8 \(invalid start byte at byte {len(body) + 7}\)"):
        heavy.check_utf8("s3://b/k.jsonl", bad, piece=5)
