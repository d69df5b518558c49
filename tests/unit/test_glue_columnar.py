"""The python engine's columnar reading gives exactly the rows and schema of the exact (json) rules.

Each case is run twice: through `run("python")` (pyarrow's reader, vectorised conversion, exact
reading only where pyarrow cannot give the rules' answer) and through the reference: every line
parsed with `json`, types inferred and values converted record by record by the script's own rule
functions. The outputs must be identical, value for value and type for type.
"""
from __future__ import annotations

import json
import random

import pyarrow as pa
import pytest

from tests.unit.test_glue_helpers import (  # noqa: F401  (fixtures)
    STAGE, TEAM, aws, load_script, put_manifest, read_parquet, spark,
)

heavy = load_script("heavy_transform")


def _put(s3, bodies: list[bytes]) -> list[dict]:
    inputs = []
    for index, body in enumerate(bodies):
        key = f"{TEAM}/orders/part-{index:03d}.jsonl"
        s3.put_object(Bucket=STAGE, Key=key, Body=body)
        inputs.append({"uri": f"s3://{STAGE}/{key}", "etag": str(index)})
    return inputs


def _reference(bodies: list[bytes]):
    """(schema, rows) by the exact rules: json, infer/merge, finalise, convert."""
    records = [heavy.parse_line("x", n, line) for body in bodies for n, line in heavy.iter_lines("x", body)]
    final = heavy.finalise(heavy.infer_records(records))
    columns = list(final[1]) if final != "string" else []
    schema = pa.schema([pa.field(name, heavy.arrow_type(kind)) for name, _, kind in columns])
    rows = [{name: heavy.convert(r.get(key), kind) for name, key, kind in columns} for r in records]
    return schema, rows


def _engine(s3, bodies: list[bytes]):
    result = heavy.run("python", put_manifest(s3, _put(s3, bodies), partition_by=[]))
    (output,) = result["outputs"]
    table = read_parquet(s3, output["uri"])
    return table.schema.remove_metadata(), table.to_pylist()


def _lines(records) -> bytes:
    return ("\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n").encode()


def _messy(rng: random.Random, n: int) -> dict:
    record = {
        "id": n,
        "Name": rng.choice(["Ann", "Bø", "名前", "", None]),
        "when": rng.choice(["2024-05-01T10:00:00Z", "2024-05-01", "10:00", None]),
        "score": rng.choice([1, 2.5, -3, None, 0.1]),
        "geo": rng.choice([None, {}, {"lat": 1.5, "lon": 2}, {"lat": 3, "alt": {"m": 1}}]),
        "tags": rng.choice([None, [], ["a", None], ["b"]]),
        "lines": [{"sku": f"S{i}", "qty": rng.choice([1, 1.5, None]), "at": "2024-01-0%dT00:00:00" % (i + 1)}
                  for i in range(rng.randrange(0, 3))],
        "empties": rng.choice([[], [{}], None]),
    }
    if rng.random() < 0.3:
        record["name"] = "lowercase twin of Name"
    if rng.random() < 0.1:
        record[f"late_{rng.randrange(3)}"] = rng.choice([True, False])
    return record


def test_consistent_files_are_read_natively_and_match_the_rules(aws):
    rng = random.Random(3)
    bodies = [_lines(_messy(rng, f * 400 + i) for i in range(400)) for f in range(3)]
    assert all(heavy.arrow_read(body) is not None for body in bodies)  # no exact fallback here
    assert _engine(aws, bodies) == _reference(bodies)


def test_text_typed_fields_first_seen_past_the_prefix_stay_text(aws):
    filler = [{"id": i, "note": "x" * 200} for i in range(1500)]  # ~330 KB: past the inference prefix
    late = [{"id": 9999, "note": "y", "seen": "2024-05-01T10:00:00Z", "nested": {"at": "2024-05-02"}}]
    body = _lines(filler + late)
    assert len(body) > heavy.PREFIX_BYTES
    table, _ = heavy.arrow_read(body)
    assert table.schema.field("seen").type == pa.string()
    schema, rows = _engine(aws, [body])
    assert (schema, rows) == _reference([body])
    assert rows[-1]["seen"] == "2024-05-01T10:00:00Z" and rows[-1]["nested"] == {"at": "2024-05-02"}


@pytest.mark.parametrize("bodies", [
    # a type conflict inside one file: pyarrow refuses, the file is read exactly
    [b'{"a": 1, "b": {"c": 1}}\n{"a": "x", "b": {"c": [1, 2.5]}}\n{"a": {"k": [1, 2]}, "b": null}\n'],
    # conflicts across files: each file alone is consistent, the merged type is text
    [b'{"a": 1, "b": [1]}\n', b'{"a": "x", "b": ["y"]}\n', b'{"a": {"k": true}, "b": [{"z": 1}]}\n',
     b'{"a": 2.5, "b": null}\n'],
    # an integer past int64 is text; pyarrow alone would make it a double
    [b'{"n": 1, "f": 0.5}\n{"n": 99999999999999999999999, "f": 1}\n'],
    [b'{"deep": {"n": [1, 18446744073709551616]}}\n'],
    # int64 limits stay integers
    [b'{"n": 9223372036854775807}\n{"n": -9223372036854775808}\n'],
    # a duplicate key: the last value wins, as in json
    [b'{"a": 1, "a": 2}\n'],
    # blank lines, a byte-order mark, an empty file in the batch
    [b'\xef\xbb\xbf{"a": 1}\n\n   \n{"a": 2}\n', b"", b'{"b": "z"}'],
])
def test_fallbacks_and_conflicts_match_the_rules(aws, bodies):
    assert _engine(aws, bodies) == _reference(bodies)


def test_the_native_reader_declines_what_it_cannot_type_by_the_rules():
    assert heavy.arrow_read(b'{"a": 1}\n{"a": "x"}\n') is None
    assert heavy.arrow_read(b'{"a": 99999999999999999999}\n') is None
    assert heavy.arrow_read(b'[1]\n') is None
    table, kind = heavy.arrow_read(b'{"b": 1, "a": {"y": null, "x": []}}\n{"c": 2.5, "a": {}}\n')
    assert kind == ("struct", (("b", ("bigint",)), ("a", ("struct", (("y", ("null",)), ("x", ("array", ("null",)))))),
                               ("c", ("double",))))
    assert table.num_rows == 2


def test_spark_reads_the_same_rows_with_the_shared_schema(aws, spark):
    """Spark's own JSON parser with the shared inference's schema: text of non-string values,
    widened numbers, integers past int64 and case-twin keys as the python engine has them."""
    rng = random.Random(5)
    bodies = [b'{"a": 1, "b": [1], "n": 1}\n', b'{"a": "x", "b": ["y"], "n": 99999999999999999999999}\n',
              b'{"a": {"k": [1, true, null]}, "b": [{"z": 1}], "n": 2}\n\n', b'{"a": 2.5, "b": null}\n',
              _lines(_messy(rng, i) for i in range(200))]
    inputs = _put(aws, bodies)
    results = {engine: heavy.run(engine, put_manifest(aws, inputs, partition_by=["name"], engine=engine),
                                 spark=spark if engine == "spark" else None) for engine in ("python", "spark")}
    tables = {}
    for engine, result in results.items():
        rows = []
        for output in result["outputs"]:
            table = read_parquet(aws, output["uri"])
            tables.setdefault(engine, set()).add(table.schema.remove_metadata())
            rows += [{**row, **output["partition"]} for row in table.to_pylist()]
        tables[engine, "rows"] = rows
    assert tables["spark"] == tables["python"]
    assert tables["spark", "rows"] == tables["python", "rows"]  # same order too, file by file
    assert {k: v for k, v in results["spark"].items() if k != "engine"} == \
        {k: v for k, v in results["python"].items() if k != "engine"}
    texts = {row["a"] for row in tables["python", "rows"] if row.get("a")}
    assert {"1", "x", '{"k":[1,true,null]}', "2.5"} <= texts
