"""glue/heavy_transform.py on both engines: same rows, same schema, stable file names, clear bad-input errors."""
from __future__ import annotations

import json
import subprocess
import sys
import time

import pyarrow as pa
import pytest

from tests.unit.test_glue_helpers import (  # noqa: F401  (fixtures)
    ANALYTICS, FIXTURES, ROOT, STAGE, TEAM, aws, keys, load_script, put_inputs, put_manifest, read_json,
    read_parquet, spark,
)

heavy = load_script("heavy_transform")
FILES = ["orders-1.jsonl", "orders-2.jsonl"]
TIMINGS: dict[str, float] = {}


def _rows_and_schemas(s3, result):
    """Every output's rows (with its partition values added) and the file schemas, metadata stripped."""
    rows, schemas = [], set()
    for output in result["outputs"]:
        table = read_parquet(s3, output["uri"])
        assert table.num_rows == output["rows"]
        schemas.add(table.schema.remove_metadata())
        rows += [{**row, **output["partition"]} for row in table.to_pylist()]
    return sorted(rows, key=lambda r: json.dumps(r, sort_keys=True)), schemas


def _transform(s3, engine, spark_session=None, **manifest):
    uri = put_manifest(s3, put_inputs(s3, FILES), engine=engine, **manifest)
    started = time.perf_counter()
    result = heavy.run(engine, uri, spark=spark_session)
    TIMINGS[engine] = time.perf_counter() - started
    assert read_json(s3, uri.replace("manifest.json", "result.json")) == result
    return uri, result


def test_python_engine_types_names_and_partitions(aws):
    _, result = _transform(aws, "python", partition_by=["Country", "ingestion_date"])
    assert result["rows"] == 5
    assert [o["partition"] for o in result["outputs"]] == [
        {"country": "NO", "ingestion_date": "2024-05-03"}, {"country": "SE", "ingestion_date": "2024-05-03"}]
    assert result["outputs"][0]["uri"] == (
        f"s3://{ANALYTICS}/{TEAM}/orders/orders/country=NO/ingestion_date=2024-05-03/part-b0123456789abcdef0123456.parquet")
    columns = {c["name"]: c["type"] for c in result["columns"]}
    assert list(columns) == ["order_id", "customer_name", "amount", "address", "tags", "mixed", "status",
                             "updated_at", "customer_name_2", "lines", "always_null", "empty"]
    assert columns["order_id"] == "bigint"
    assert columns["amount"] == "double"  # 10 and 12.5 in one field
    assert columns["address"] == "struct<city:string,zip_code:string,floor:bigint>"
    assert columns["tags"] == "array<string>"
    assert columns["mixed"] == "string"  # int, string, object, bool, float
    assert columns["lines"] == "array<struct<sku:string,qty:double>>"
    assert columns["always_null"] == "string" and columns["empty"] == "string"
    assert result["partition_keys"] == [{"name": "country", "type": "string"},
                                        {"name": "ingestion_date", "type": "string"}]
    rows, schemas = _rows_and_schemas(aws, result)
    (schema,) = schemas
    assert schema.field("address").type == pa.struct(
        [("city", pa.string()), ("zip_code", pa.string()), ("floor", pa.int64())])
    assert "country" not in schema.names  # hive partition columns live in the path only
    by_id = {(r["order_id"], r["customer_name"]): r for r in rows}
    assert by_id[(3, "Cid")]["mixed"] == '{"k":[1,2]}'
    assert by_id[(4, "Dee")]["mixed"] == "true" and by_id[(4, "Dee")]["empty"] == "{}"
    assert by_id[(2, None)]["customer_name_2"] == "dup"
    assert by_id[(3, "Cid")]["lines"] == [{"sku": "A-1", "qty": 2.0}, {"sku": "B-2", "qty": 1.5}]
    assert by_id[(4, "Eve")]["amount"] == 99999999999.0


def test_both_engines_give_the_same_rows_and_schema_and_replay_overwrites(aws, spark):
    _, python_result = _transform(aws, "python", partition_by=["Country", "ingestion_date"])
    python_rows, python_schemas = _rows_and_schemas(aws, python_result)
    python_keys = keys(aws, ANALYTICS, f"{TEAM}/orders/")

    _, spark_result = _transform(aws, "spark", spark, partition_by=["Country", "ingestion_date"])
    spark_rows, spark_schemas = _rows_and_schemas(aws, spark_result)

    assert spark_rows == python_rows
    assert spark_schemas == python_schemas
    assert {k: v for k, v in spark_result.items() if k != "engine"} == \
        {k: v for k, v in python_result.items() if k != "engine"}
    # the same batch again (either engine) overwrites the same files: nothing is duplicated
    assert keys(aws, ANALYTICS, f"{TEAM}/orders/") == python_keys
    assert len([k for k in python_keys if "/_schema/" not in k]) == 2  # + the table's schema, beside it
    assert keys(aws, STAGE, f"{TEAM}/orders/_batches/") == [
        f"{TEAM}/orders/_batches/b0123456789abcdef0123456/manifest.json",
        f"{TEAM}/orders/_batches/b0123456789abcdef0123456/result.json"]
    print(f"\nfixtures: python {TIMINGS['python']:.2f} s, spark {TIMINGS['spark']:.2f} s")


def test_spark_bad_line_names_object_and_line(aws, spark):
    """The object that does not parse is rejected, naming itself and its line; its neighbour is written."""
    inputs = put_inputs(aws, ["orders-1.jsonl", "not_object.jsonl"])
    result = heavy.run("spark", put_manifest(aws, inputs), spark=spark)
    assert result["rejected"] == [{"uri": "s3://lake-stage/sales/orders/not_object.jsonl", "reason": (
        "s3://lake-stage/sales/orders/not_object.jsonl line 2: expected a JSON object, got an array")}]
    alone = heavy.run("python", put_manifest(aws, inputs[:1], batch_id="b0000000000000000000000aa"))
    assert result["rows"] == alone["rows"] > 0
    with pytest.raises(heavy.JobError, match=r"^s3://lake-stage/sales/orders/not_object.jsonl line 2: "
                                             r"expected a JSON object, got an array$"):
        heavy.run("spark", put_manifest(aws, inputs[1:]), spark=spark)


@pytest.mark.parametrize(
    "body, message",
    [
        (b'{"a": 1}\n[1, 2]\n', "bad.jsonl line 2: expected a JSON object, got an array"),
        (b'{"a": 1}\n\n{"a": \n', "bad.jsonl line 3: not valid JSON"),
        (b'"text"\n', "bad.jsonl line 1: expected a JSON object, got a string"),
        (b'{"a": "\xff"}\n', "bad.jsonl line 1: not UTF-8"),
    ],
)
def test_python_bad_input_names_object_and_line(aws, body, message):
    aws.put_object(Bucket=STAGE, Key=f"{TEAM}/orders/bad.jsonl", Body=body)
    uri = put_manifest(aws, [{"uri": f"s3://{STAGE}/{TEAM}/orders/bad.jsonl", "etag": "x"}])
    with pytest.raises(heavy.JobError, match=f"s3://{STAGE}/{TEAM}/orders/{message}"):
        heavy.run("python", uri)


def test_unreadable_input_and_bad_partition_columns(aws):
    uri = put_manifest(aws, [{"uri": f"s3://{STAGE}/{TEAM}/orders/missing.jsonl", "etag": "x"}])
    with pytest.raises(heavy.JobError, match=r"cannot read input s3://lake-stage/sales/orders/missing.jsonl: NoSuchKey"):
        heavy.run("python", uri)
    inputs = put_inputs(aws, FILES)
    with pytest.raises(heavy.JobError, match=r"partition column 'region' is not in the data \(columns: order_id, "):
        heavy.run("python", put_manifest(aws, inputs, partition_by=["region"]))
    with pytest.raises(heavy.JobError, match=r"partition column 'address' is struct<city:string"):
        heavy.run("python", put_manifest(aws, inputs, partition_by=["address"]))


def test_no_partitions_and_null_partition_values(aws):
    inputs = put_inputs(aws, FILES)
    result = heavy.run("python", put_manifest(aws, inputs, partition_by=[]))
    assert [o["uri"] for o in result["outputs"]] == [
        f"s3://{ANALYTICS}/{TEAM}/orders/orders/part-b0123456789abcdef0123456.parquet"]
    result = heavy.run("python", put_manifest(aws, inputs, partition_by=["customer name"]))
    partitions = [o["partition"]["customer_name"] for o in result["outputs"]]
    assert partitions == ["Ann", "Cid", "Dee", "Eve", None]
    assert "/customer_name=__HIVE_DEFAULT_PARTITION__/" in result["outputs"][-1]["uri"]


def test_names_types_and_escaping_rules():
    assert heavy.dedupe(["Order ID", "order-id", "order_id_2", "Ümlaut", ""]) == \
        ["order_id", "order_id_2", "order_id_2_2", "_mlaut", "_"]
    assert heavy.finalise(heavy.infer_records([{"a": 1}, {"a": 2.5}, {"b": [None]}, {"c": 2 ** 70}])) == (
        "struct", [("a", "a", "double"), ("b", "b", ("array", "string")), ("c", "c", "string")])
    assert heavy.escape_partition_value("a/b:c=d%") == "a%2Fb%3Ac%3Dd%25"
    assert heavy.unescape_partition_value("a%2Fb%3Ac%3Dd%25") == "a/b:c=d%"
    assert heavy.partition_text(True) == "true" and heavy.partition_text("") is None


def test_runs_as_a_script_and_reports_the_error_as_the_last_stderr_line(tmp_path):
    """Off Glue, the job ends with the message on the last stderr line (what the emulator shows)."""
    completed = subprocess.run(
        [sys.executable, str(ROOT / "glue" / "heavy_transform.py"), "--JOB_RUN_ID", "jr_1",
         "--engine", "python", "--manifest", "not-a-uri"],
        capture_output=True, text=True, env={"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    assert completed.returncode == 1
    assert completed.stderr.strip().splitlines()[-1] == "heavy transform failed: not an s3:// location: 'not-a-uri'"
    assert FIXTURES.is_dir()


def _batch(s3, engine, spark_session, batch_id, name, body):
    key = f"{TEAM}/drifting/{name}"
    etag = s3.put_object(Bucket=STAGE, Key=key, Body=body)["ETag"].strip('"')
    inputs = [{"uri": f"s3://{STAGE}/{key}", "etag": etag, "source": f"s3://lake-raw/{key}", "records": None}]
    uri = put_manifest(s3, inputs, batch_id=batch_id, engine=engine, dataset="drifting", partition_by=[])
    return heavy.run(engine, uri, spark=spark_session)


@pytest.mark.parametrize("engine", ["python", "spark"])
def test_later_batches_are_widened_to_the_table_or_fail_naming_the_column(aws, engine, request):
    session = request.getfixturevalue("spark") if engine == "spark" else None
    first = _batch(aws, engine, session, "b000000000000000000000001", "d-1.jsonl",
                   b'{"id": 1, "amount": 1.5, "label": "a", "count": 1}\n')
    second = _batch(aws, engine, session, "b000000000000000000000002", "d-2.jsonl",
                    b'{"id": 3, "amount": 3, "label": 7, "count": null, "extra": true}\n')
    types = {c["name"]: c["type"] for c in second["columns"]}
    assert types == {"id": "bigint", "amount": "double", "label": "string", "count": "bigint", "extra": "boolean"}
    assert read_parquet(aws, second["outputs"][0]["uri"]).to_pylist() == \
        [{"id": 3, "amount": 3.0, "label": "7", "count": None, "extra": True}]
    schema = read_json(aws, f"s3://{ANALYTICS}/{TEAM}/drifting/_schema/drifting.json")["columns"]
    assert [c["name"] for c in schema] == ["id", "amount", "label", "count", "extra"]
    assert [c["name"] for c in first["columns"]] == ["id", "amount", "label", "count"]
    # A batch whose only input drifted past the table has nothing to write: it fails, saying why.
    with pytest.raises(heavy.JobError, match=(
            rf"^schema drift in s3://{STAGE}/{TEAM}/drifting/d-3.jsonl line 2 \(value \"four\"\): column 'count' is "
            rf"string there but bigint in the table at s3://{ANALYTICS}/{TEAM}/drifting/drifting/; "
            ".*expected bigint values")):
        _batch(aws, engine, session, "b000000000000000000000003", "d-3.jsonl",
               b'{"id": 4, "count": 4}\n{"id": 5, "count": "four"}\n')
    assert not [k for k in keys(aws, ANALYTICS, f"{TEAM}/drifting/") if "b000000000000000000000003" in k]


@pytest.mark.parametrize("engine", ["python", "spark"])
def test_one_bad_input_is_rejected_and_its_neighbours_are_written(aws, engine, request):
    """A batch with an input whose column drifted past the table's type and one that does not parse: both are
    rejected with what was found and expected; the good inputs' rows are written once; the table's schema
    keeps its types."""
    session = request.getfixturevalue("spark") if engine == "spark" else None
    _batch(aws, engine, session, "b000000000000000000000011", "t-0.jsonl", b'{"id": 0, "count": 0}\n')
    files = {"t-1.jsonl": b'{"id": 1, "count": 1}\n{"id": 2, "count": 2}\n',
             "t-2.jsonl": b'{"id": 3, "count": 3}\n{"id": 4, "count": {"n": 4}}\n',
             "t-3.jsonl": b'{"id": 5, "count": 5, "new": "x"}\n',
             "t-4.jsonl": b'{"id": 6}\n{"id": \n'}
    inputs = []
    for name, body in files.items():
        key = f"{TEAM}/drifting/{name}"
        etag = aws.put_object(Bucket=STAGE, Key=key, Body=body)["ETag"].strip('"')
        inputs.append({"uri": f"s3://{STAGE}/{key}", "etag": etag, "source": f"s3://lake-raw/{key}", "records": 2})
    uri = put_manifest(aws, inputs, batch_id="b000000000000000000000012", engine=engine, dataset="drifting",
                       partition_by=[])
    result = heavy.run(engine, uri, spark=session)
    stage = f"s3://{STAGE}/{TEAM}/drifting"
    assert [r["uri"] for r in result["rejected"]] == [f"{stage}/t-2.jsonl", f"{stage}/t-4.jsonl"]
    drift, broken = (r["reason"] for r in result["rejected"])
    assert drift.startswith(f"schema drift in {stage}/t-2.jsonl line 2 (value {{\"n\":4}}): column 'count' is "
                            "string there but bigint in the table at "), drift
    assert broken.startswith(f"{stage}/t-4.jsonl line 2: not valid JSON"), broken
    assert read_json(aws, uri.replace("manifest.json", "result.json")) == result
    [output] = result["outputs"]
    rows = read_parquet(aws, output["uri"]).to_pylist()
    assert result["rows"] == output["rows"] == 3
    assert sorted(rows, key=lambda r: r["id"]) == [{"id": 1, "count": 1, "new": None}, {"id": 2, "count": 2, "new": None},
                                                   {"id": 5, "count": 5, "new": "x"}]
    schema = read_json(aws, f"s3://{ANALYTICS}/{TEAM}/drifting/_schema/drifting.json")["columns"]
    assert schema == [{"name": "id", "type": "bigint"}, {"name": "count", "type": "bigint"},
                      {"name": "new", "type": "string"}]


def test_hive_types_read_back_as_the_raw_types_they_came_from():
    for kind in (("bigint",), ("array", ("struct", (("a", ("double",)), ("b", ("array", ("string",))))))):
        assert heavy.parse_hive_type(heavy.hive_type(heavy.finalise(kind))) == kind


def test_a_line_longer_than_the_json_readers_block_is_read_whole(aws):
    blob = "x" * (6 * 1024**2)  # past pyarrow's 4 MiB block: read exactly instead of split
    result = _batch(aws, "python", None, "b000000000000000000000009", "long-line.jsonl",
                    json.dumps({"id": 1, "blob": blob}).encode() + b"\n" + b'{"id": 2, "blob": "short"}\n')
    rows = read_parquet(aws, result["outputs"][0]["uri"]).to_pylist()
    assert [(r["id"], len(r["blob"])) for r in rows] == [(1, len(blob)), (2, 5)]
