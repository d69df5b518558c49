"""glue/quality.py: cuallee rules on DuckDB and on PySpark give the same verdicts and observed values."""
from __future__ import annotations

import io
from datetime import datetime, timezone

import boto3
import pyarrow.parquet as pq
import pytest

from tests.unit.test_glue_helpers import (  # noqa: F401  (fixtures)
    ANALYTICS, QUALITY_TABLE, REGION, STAGE, TEAM, aws, load_script, put_inputs, put_manifest, read_json, spark,
)

heavy = load_script("heavy_transform")
quality = load_script("quality")
NOW = datetime(2024, 5, 3, 12, 0, tzinfo=timezone.utc)
BATCH = "b0123456789abcdef0123456"

RULES = [
    {"rule": "completeness", "column": "Customer Name", "threshold": 0.8, "severity": "warn"},  # 4/5 -> PASS
    {"rule": "completeness", "column": "customer_name", "severity": "warn"},                    # 0.8 < 1.0 -> FAIL
    {"rule": "uniqueness", "column": "order_id", "severity": "warn"},                           # 4 distinct / 5
    {"rule": "range", "column": "amount", "min": 0, "max": 100, "severity": "warn"},            # 4/5
    {"rule": "range", "column": "amount", "min": 1, "severity": "fail"},                        # 5/5
    {"rule": "allowed_values", "column": "status", "values": ["open", "closed"], "threshold": 0.8},  # 4/5 PASS
    {"rule": "pattern", "column": "address.zip_code", "regex": "^[0-9]{4}$", "severity": "warn"},   # 2/5 (nulls fail)
    {"rule": "row_count", "min": 1, "max": 10},                                                 # 5 -> PASS
    {"rule": "freshness", "column": "updated_at", "max_age": "1d"},                             # 2h 45m old -> PASS
    {"rule": "freshness", "column": "updated_at", "max_age": "2h", "severity": "warn"},         # FAIL
    {"rule": "allowed_values", "column": "country", "values": ["NO", "SE"]},                    # partition column
]
EXPECTED = [  # (status, observed)
    ("PASS", 0.8), ("FAIL", 0.8), ("FAIL", 0.8), ("FAIL", 0.8), ("PASS", 1.0), ("PASS", 0.8), ("FAIL", 0.4),
    ("PASS", 5), ("PASS", 2.75), ("FAIL", 2.75), ("PASS", 1.0),
]


def _batch(s3, engine, spark_session=None, rules=RULES):
    uri = put_manifest(s3, put_inputs(s3, ["orders-1.jsonl", "orders-2.jsonl"]), engine=engine,
                       partition_by=["country", "ingestion_date"], quality=rules)
    heavy.run(engine, uri, spark=spark_session)
    return uri


def _verdicts(report):
    return [(r["status"], r["observed"]) for r in report["rules"]]


def test_python_engine_rules_observed_values_and_storage(aws):
    uri = _batch(aws, "python")
    report = quality.run("python", uri, now=NOW)
    assert _verdicts(report) == EXPECTED
    assert report["status"] == "WARN"  # only warn rules failed
    assert report["rules"][1]["message"] == "completeness(customer_name) 0.8 < 1.0"
    assert report["rules"][9]["message"] == "freshness(updated_at) latest value is 2.75h old > 2h"
    assert report["run_id"] == f"2024-05-03T12:00:00.000000Z#{BATCH}"
    stored = read_json(aws, uri.replace("manifest.json", "quality.json"))
    assert stored == report
    item = boto3.resource("dynamodb", region_name=REGION).Table(QUALITY_TABLE).get_item(
        Key={"id": f"{TEAM}/orders", "run_id": report["run_id"]})["Item"]
    assert item["status"] == "WARN" and item["batch_id"] == BATCH and len(item["rules"]) == len(RULES)
    assert float(item["rules"][6]["observed"]) == 0.4
    body = aws.get_object(Bucket=ANALYTICS, Key=f"{TEAM}/orders/_quality/batch_id={BATCH}/results.parquet")["Body"]
    table = pq.read_table(io.BytesIO(body.read()))
    assert table.num_rows == len(RULES)
    assert table.column("status").to_pylist() == [status for status, _ in EXPECTED]


def test_spark_engine_gives_the_same_verdicts(aws, spark):
    uri = _batch(aws, "spark", spark)
    report = quality.run("spark", uri, spark=spark, now=NOW)
    assert _verdicts(report) == EXPECTED
    assert report["status"] == "WARN"


def test_spark_failing_rule_fails_the_job_after_storing(aws, spark):
    rules = [{"rule": "completeness", "column": "customer_name"}, {"rule": "row_count", "min": 10}]
    uri = _batch(aws, "spark", spark, rules)
    with pytest.raises(quality.JobError, match=r"^quality rule\(s\) failed: completeness\(customer_name\) 0.8 < 1.0, "
                                              r"row_count 5 < 10$"):
        quality.run("spark", uri, spark=spark, now=NOW)
    assert read_json(aws, uri.replace("manifest.json", "quality.json"))["status"] == "FAIL"


def test_failing_rule_fails_the_job_after_storing(aws):
    rules = [{"rule": "uniqueness", "column": "order_id"}, {"rule": "completeness", "column": "no_such_column"},
             {"rule": "range", "column": "status", "min": 1, "severity": "warn"}]
    uri = _batch(aws, "python", rules=rules)
    with pytest.raises(quality.JobError) as raised:
        quality.run("python", uri, now=NOW)
    assert str(raised.value).startswith(
        "quality rule(s) failed: uniqueness(order_id) 0.8 < 1.0, completeness(no_such_column): no column "
        "no_such_column in the output (columns: order_id, ")
    report = read_json(aws, uri.replace("manifest.json", "quality.json"))
    assert report["status"] == "FAIL"
    assert report["rules"][2]["message"] == "range(status): range needs a numeric column, status is string"


def test_no_rules_passes_and_bad_rules_are_named(aws):
    uri = _batch(aws, "python", rules=[])
    assert quality.run("python", uri, now=NOW)["status"] == "PASS"
    for spec, message in [
        ({"rule": "sameness", "column": "a"}, r"quality\[0\]: rule must be one of completeness, "),
        ({"rule": "range", "column": "a"}, r"quality\[0\] range: needs 'min', 'max' or both"),
        ({"rule": "freshness", "column": "a", "max_age": "soon"}, r"quality\[0\] freshness: max_age must look like"),
        ({"rule": "completeness", "column": "a", "severity": "panic"}, r"severity must be warn or fail"),
        ({"rule": "allowed_values", "column": "a", "values": [1, "b"]}, r"'values' must be a non-empty list"),
    ]:
        uri = put_manifest(aws, [], quality=[spec])
        with pytest.raises(quality.JobError, match=message):
            quality.run("python", uri, now=NOW)


def test_empty_batch_rules_hold_vacuously_but_row_count_and_freshness_fail(aws):
    aws.put_object(Bucket=STAGE, Key=f"{TEAM}/orders/empty.jsonl", Body=b"\n")
    rules = [{"rule": "completeness", "column": "ingestion_date"}, {"rule": "row_count", "min": 1, "severity": "warn"},
             {"rule": "freshness", "column": "ingestion_date", "max_age": "1d", "severity": "warn"}]
    uri = put_manifest(aws, [{"uri": f"s3://{STAGE}/{TEAM}/orders/empty.jsonl"}], quality=rules)
    assert heavy.run("python", uri)["outputs"] == []
    report = quality.run("python", uri, now=NOW)
    assert _verdicts(report) == [("PASS", 1.0), ("FAIL", 0), ("FAIL", None)]
    assert report["rules"][1]["message"] == "row_count 0 < 1"


def test_age_parsing():
    assert quality.parse_age("24h", "x") == 86400 and quality.parse_age("7d", "x") == 604800
    assert quality.parse_age(90, "x") == 90 and quality.parse_age("30m", "x") == 1800
