"""The dataset's own heavy transform (SQL or a glue/transforms script, several output tables) on both engines.

The batch is the legislators sample (samples/engineering/legislators_history/) as stage A leaves it
(JSON lines); the SQL is translated by the same code `sdlf` validates parameters files with.
"""
from __future__ import annotations

import json

import pytest

from sdlf_cli.config.transform_sql import translate
from tests.unit.test_glue_helpers import (  # noqa: F401  (fixtures)
    ANALYTICS, ROOT, STAGE, TEAM, aws, load_script, put_manifest, read_json, read_parquet, spark,
)

heavy = load_script("heavy_transform")
SAMPLE = ROOT / "samples" / "engineering" / "legislators_history"
DATASET = "legislators_history"
SCRIPT = ROOT / "glue" / "transforms" / "legislators.py"
script = load_script("transforms/legislators")


def _put_sample(s3) -> list[dict]:
    inputs = []
    for name in ("memberships", "organizations", "persons"):
        records = json.loads((SAMPLE / f"{name}.json").read_text())
        key = f"{TEAM}/{DATASET}/{name}.json.jsonl"
        s3.put_object(Bucket=STAGE, Key=key, Body="".join(json.dumps(r) + "\n" for r in records).encode())
        inputs.append({"uri": f"s3://{STAGE}/{key}", "etag": name})
    return inputs


def _rows(s3, result, table=None):
    rows = []
    for output in result["outputs"]:
        if table is None or output["table"] == table:
            rows += [{**r, **output["partition"]} for r in read_parquet(s3, output["uri"]).to_pylist()]
    return sorted(rows, key=lambda r: json.dumps(r, sort_keys=True, default=str))


def _schemas(s3, result):
    return {(o["table"], str(read_parquet(s3, o["uri"]).schema.remove_metadata())) for o in result["outputs"]}


def _run(s3, engine, session, transform, tables, script_uri=None):
    uri = put_manifest(s3, _put_sample(s3), dataset=DATASET, engine=engine)
    result = heavy.run(engine, uri, spark=session if engine == "spark" else None, transform=json.dumps(transform),
                       tables=json.dumps(tables), transform_script=script_uri)
    assert read_json(s3, uri.replace("manifest.json", "result.json")) == result
    return result


def test_sql_transform_gives_the_same_rows_on_both_engines(aws, spark):
    sql = translate(script.HISTORY)
    tables = [{"name": "history", "partition_by": ["org_name"]}]
    results = {engine: _run(aws, engine, spark, {"kind": "sql", "sql": {"history": getattr(sql, engine if engine == "spark" else "duckdb")}}, tables)
               for engine in ("python", "spark")}
    python, spark_result = results["python"], results["spark"]
    assert _rows(aws, spark_result) == _rows(aws, python)
    assert _schemas(aws, spark_result) == _schemas(aws, python)
    assert {k: v for k, v in spark_result.items() if k != "engine"} == {k: v for k, v in python.items() if k != "engine"}
    rows = _rows(aws, python)
    assert len(rows) == 46  # every membership of the sample joins its person and chamber
    assert {r["org_name"] for r in rows} == {"House of Representatives", "Senate"}
    assert [t["name"] for t in python["tables"]] == ["history"]
    assert python["outputs"][0]["uri"].startswith(f"s3://{ANALYTICS}/{TEAM}/{DATASET}/history/org_name=House of Representatives/")
    assert {c["name"] for c in python["columns"]} >= {"person_id", "name", "party", "legislative_period_id"}
    assert python["partition_keys"] == [{"name": "org_name", "type": "string"}]


def test_script_transform_writes_several_tables_on_both_engines(aws, spark):
    aws.put_object(Bucket=STAGE, Key="scripts/legislators.py", Body=SCRIPT.read_bytes())
    script_uri = f"s3://{STAGE}/scripts/legislators.py"
    tables = [{"name": "history", "partition_by": ["org_name"]}, {"name": "persons", "partition_by": []}]
    results = {engine: _run(aws, engine, spark, {"kind": "script"}, tables, script_uri) for engine in ("python", "spark")}
    python, spark_result = results["python"], results["spark"]
    for table in ("history", "persons"):
        assert _rows(aws, spark_result, table) == _rows(aws, python, table)
    assert _schemas(aws, spark_result) == _schemas(aws, python)
    assert [t["name"] for t in python["tables"]] == ["history", "persons"]
    assert [t["rows"] for t in python["tables"]] == [46, 8]
    assert python["tables"][1]["output"] == f"s3://{ANALYTICS}/{TEAM}/{DATASET}/persons/"
    assert {o["uri"].rsplit("/", 1)[0] for o in python["outputs"] if o["table"] == "persons"} == \
        {f"s3://{ANALYTICS}/{TEAM}/{DATASET}/persons"}


def test_transform_mistakes_fail_the_batch_with_the_reason(aws, tmp_path):
    inputs = _put_sample(aws)
    uri = put_manifest(aws, inputs, dataset=DATASET)
    with pytest.raises(heavy.JobError, match=r"table history: the SQL failed: .*nope"):
        heavy.run("python", uri, transform=json.dumps({"kind": "sql", "sql": {"history": "SELECT nope FROM input"}}),
                  tables=json.dumps([{"name": "history"}]))
    with pytest.raises(heavy.JobError, match=r"table history: partition column 'region' is not in its columns"):
        heavy.run("python", uri, transform=json.dumps({"kind": "sql", "sql": {"history": "SELECT id FROM input"}}),
                  tables=json.dumps([{"name": "history", "partition_by": ["region"]}]))
    aws.put_object(Bucket=STAGE, Key="scripts/bad.py", Body=b"def transform(batch, context):\n    return {'other': batch}\n")
    with pytest.raises(heavy.JobError, match=r"returned tables other; the dataset declares history"):
        heavy.run("python", uri, transform=json.dumps({"kind": "script"}), tables=json.dumps([{"name": "history"}]),
                  transform_script=f"s3://{STAGE}/scripts/bad.py")
    with pytest.raises(heavy.JobError, match=r"--transform has SQL for a but --tables lists history"):
        heavy.run("python", uri, transform=json.dumps({"kind": "sql", "sql": {"a": "SELECT 1"}}),
                  tables=json.dumps([{"name": "history"}]))


def test_quality_rules_run_per_output_table(aws):
    quality = load_script("quality")
    aws.put_object(Bucket=STAGE, Key="scripts/legislators.py", Body=SCRIPT.read_bytes())
    tables = [{"name": "history", "partition_by": ["org_name"]}, {"name": "persons", "partition_by": []}]
    uri = put_manifest(aws, _put_sample(aws), dataset=DATASET)
    heavy.run("python", uri, transform=json.dumps({"kind": "script"}), tables=json.dumps(tables),
              transform_script=f"s3://{STAGE}/scripts/legislators.py")
    rules = [{"name": "history", "quality": [{"rule": "completeness", "column": "person_id", "threshold": 1.0,
                                              "severity": "fail"}, {"rule": "row_count", "min": 46, "severity": "fail"}]},
             {"name": "persons", "quality": [{"rule": "uniqueness", "column": "id", "severity": "fail"},
                                             {"rule": "allowed_values", "column": "gender", "values": ["female"],
                                              "threshold": 1.0, "severity": "warn"}]}]
    report = quality.run("python", uri, tables=json.dumps(rules))
    assert [(r["table"], r["rule"], r["status"], r["observed"]) for r in report["rules"]] == [
        ("history", "completeness", "PASS", 1.0), ("history", "row_count", "PASS", 46),
        ("persons", "uniqueness", "PASS", 1.0), ("persons", "allowed_values", "FAIL", 0.5)]
    assert report["status"] == "WARN"
    rules[1]["quality"][1]["severity"] = "fail"
    with pytest.raises(quality.JobError, match=r"quality rule\(s\) failed: persons: allowed_values\(gender\) 0.5 < 1.0"):
        quality.run("python", uri, tables=json.dumps(rules))
