"""Stage-B heavy transform: a batch of stage JSON-lines objects -> partitioned Parquet in the analytics bucket.

One script for both engines (Glue passes arguments as `--name value`):
  --engine python   Glue Python shell (or the host, on the emulator): pyarrow, columnar.
  --engine spark    Glue ETL (PySpark), or a local `local[2]` session where inputs are staged from S3 to
                    local files and outputs uploaded back (no s3a:// jars off Glue).
  --manifest s3://<stage>/<team>/<dataset>/_batches/<batch_id>/manifest.json

Both engines share one schema inference, so the same inputs give the same rows and the same schema:
  JSON int -> bigint (int64), float -> double, int mixed with float -> double, string -> string,
  boolean -> boolean, object -> struct (fields merged across rows), array -> array (elements merged),
  any other mix of types in one field -> string (non-string values as compact JSON text),
  a field that is always null, an empty object or an empty array's element -> string,
  an integer outside int64 -> string.
Column (and struct field) names are normalised: lowercase, anything but [a-z0-9_] -> '_', duplicates get
`_2`, `_3`... in order of first appearance. Columns keep the order of first appearance.

How (no row-at-a-time Python on the common path): each stage object is parsed by pyarrow's JSON reader
and its Arrow schema mapped onto the rules above; the files' schemas are merged; then each file's
columns are converted to the merged types with Arrow compute (int -> double, missing struct fields ->
null, renames) and split by partition. A file pyarrow cannot type by these rules (a conflict inside it,
a value that becomes JSON text, an integer past int64, a duplicate key) is read exactly by the pure
functions below instead, so the result never depends on which path ran. Memory stays bounded: files are
inferred one at a time (their tables kept only up to KEEP_BYTES, read again past it) and output rows
are written per partition in row groups of at most FLUSH_BYTES.
Spark runs the same per-file inference in its executors, then reads the lines with its own JSON parser
(`from_json`) under the merged schema (keys as in the data) and casts to the final names.

Output: one Parquet file (snappy) per hive partition, `<output>/<col>=<value>/.../part-<batch_id>.parquet`,
so a replayed batch overwrites its files instead of adding new ones. `ingestion_date` (the batch's
created_at date) is added as a column when the data has none. Then `result.json` next to the manifest:
  {"batch_id", "outputs": [{"uri", "rows", "partition"}], "rows", "columns": [{"name", "type"}],
   "partition_keys": [{"name", "type"}], "engine", "rejected": [{"uri", "reason"}]}

The dataset's own heavy transform (`--transform`, `--transform-script`, `--tables`; see the section
below and docs/heavy-transforms.md) runs SQL (DuckDB / Spark SQL) or a glue/transforms script over the
batch and writes each output table the same way under <dataset>/<table>/; result.json then also lists
"tables": [{"name", "output", "rows", "columns", "partition_keys"}] and each output names its "table".

One bad input never blocks its neighbours: an object that does not parse (a line that is not a JSON object,
not UTF-8) or whose schema drifted past what the table holds is rejected, with a reason naming the object,
the line and, for drift, the column, the type found and the type the table expects; the batch's other inputs
are written, and result.json lists the rejected ones (stage B's post-update fails them and parks each for
redrive). When every input is rejected, or the batch itself is wrong (manifest, partition columns, an object
that cannot be read), the job fails with a message naming it: the last line on stderr (what the job run's
ErrorMessage shows).

Must run on Glue Python shell 3.9: no `match`, no runtime `X | Y` annotations; `awsglue` is never needed.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

ENGINES = ("python", "spark")
DEFAULT_PARTITION_BY = ["ingestion_date"]
INGESTION_DATE = "ingestion_date"
HIVE_DEFAULT_PARTITION = "__HIVE_DEFAULT_PARTITION__"
INT64_MIN, INT64_MAX = -(2 ** 63), 2 ** 63 - 1
ORDER_COLUMNS = ("__sdlf_input", "__sdlf_line")
# Partition values become folder names: a column of one of these types can partition the data.
PARTITIONABLE = ("string", "bigint", "boolean")


class JobError(Exception):
    """A failure the job reports as its error message (bad input, bad manifest, unreadable object)."""


class BadInput(JobError):
    """One input object's content cannot go into the table (it does not parse, or its schema drifted past what
    the table can hold): that object is rejected, its neighbours in the batch are written."""


# --- S3 ------------------------------------------------------------------------------------------
def parse_s3_uri(uri: str) -> Tuple[str, str]:
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        raise JobError(f"not an s3:// location: {uri!r}")
    bucket, _, key = uri[5:].partition("/")
    if not bucket:
        raise JobError(f"not an s3://bucket/key location: {uri!r}")
    return bucket, key


def s3_client() -> Any:
    import boto3  # botocore honours AWS_ENDPOINT_URL (the emulator) for every client

    return boto3.client("s3")


def read_object(s3: Any, uri: str, what: str = "object") -> bytes:
    bucket, key = parse_s3_uri(uri)
    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except Exception as exc:  # botocore ClientError or a network error: name the object either way
        raise JobError(f"cannot read {what} {uri}: {_describe(exc)}") from None


def write_object(s3: Any, uri: str, body: bytes, content_type: str) -> None:
    bucket, key = parse_s3_uri(uri)
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
    except Exception as exc:
        raise JobError(f"cannot write {uri}: {_describe(exc)}") from None


def write_file(s3: Any, uri: str, path: str, content_type: str) -> None:
    """A local file to S3 through boto3's managed transfer (in parts past its threshold): an output file is
    never held whole in memory, however large the batch."""
    bucket, key = parse_s3_uri(uri)
    try:
        s3.upload_file(path, bucket, key, ExtraArgs={"ContentType": content_type})
    except Exception as exc:
        raise JobError(f"cannot write {uri}: {_describe(exc)}") from None


def _describe(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and response.get("Error"):
        error = response["Error"]
        return f"{error.get('Code', 'error')}: {error.get('Message') or exc}"
    return f"{type(exc).__name__}: {exc}"


def sibling_uri(manifest_uri: str, name: str) -> str:
    bucket, key = parse_s3_uri(manifest_uri)
    folder = key.rsplit("/", 1)[0] if "/" in key else ""
    return f"s3://{bucket}/{folder}/{name}" if folder else f"s3://{bucket}/{name}"


# --- names ---------------------------------------------------------------------------------------
_NOT_IDENTIFIER = re.compile(r"[^a-z0-9_]")


def normalise_name(name: str) -> str:
    """Glue/Athena-friendly column name: lowercase, anything but [a-z0-9_] -> '_'."""
    return _NOT_IDENTIFIER.sub("_", str(name).lower()) or "_"


def dedupe(names: Sequence[str]) -> List[str]:
    """Normalised names, made unique with `_2`, `_3`... in order (a suffix never collides either)."""
    taken: set = set()
    out: List[str] = []
    for name in names:
        base = normalise_name(name)
        candidate, counter = base, 1
        while candidate in taken:
            counter += 1
            candidate = f"{base}_{counter}"
        taken.add(candidate)
        out.append(candidate)
    return out


# --- parsing and type inference: the rules, exactly (the reference and the fallback) --------------
# Raw types while inferring: ("null",) ("boolean",) ("bigint",) ("double",) ("string",)
# ("struct", ((raw_key, type), ...)) ("array", type).
NULL = ("null",)


def parse_line(uri: str, line_number: int, text: str) -> Dict[str, Any]:
    if line_number == 1 and text.startswith("\ufeff"):
        text = text[1:]
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise BadInput(f"{uri} line {line_number}: not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise BadInput(f"{uri} line {line_number}: expected a JSON object, got {_json_kind(value)}")
    return value


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return "null" if value is None else type(value).__name__


def infer(value: Any) -> tuple:
    if value is None:
        return NULL
    if isinstance(value, bool):  # before int: bool is an int in Python
        return ("boolean",)
    if isinstance(value, int):
        return ("bigint",) if INT64_MIN <= value <= INT64_MAX else ("string",)
    if isinstance(value, float):
        return ("double",)
    if isinstance(value, str):
        return ("string",)
    if isinstance(value, dict):
        return ("struct", tuple((key, infer(item)) for key, item in value.items()))
    if isinstance(value, list):
        element = NULL
        for item in value:
            element = merge(element, infer(item))
        return ("array", element)
    return ("string",)


def merge(a: tuple, b: tuple) -> tuple:
    """The type of a field that held values of types a and b (order-preserving for struct fields)."""
    if a == b:
        return a
    if a == NULL:
        return b
    if b == NULL:
        return a
    kinds = {a[0], b[0]}
    if kinds == {"bigint", "double"}:
        return ("double",)
    if a[0] == b[0] == "struct":
        fields = dict(a[1])
        order = [key for key, _ in a[1]]
        for key, kind in b[1]:
            if key in fields:
                fields[key] = merge(fields[key], kind)
            else:
                fields[key] = kind
                order.append(key)
        return ("struct", tuple((key, fields[key]) for key in order))
    if a[0] == b[0] == "array":
        return ("array", merge(a[1], b[1]))
    return ("string",)


def infer_records(records: Iterable[Dict[str, Any]], start: tuple = ("struct", ())) -> tuple:
    schema = start
    for record in records:
        schema = merge(schema, infer(record))
    return schema


# Final types: "bigint" "double" "string" "boolean" ("struct", [(name, raw_key, type)]) ("array", type)
def finalise(kind: tuple) -> Any:
    if kind == NULL:
        return "string"
    if kind[0] == "struct":
        if not kind[1]:
            return "string"  # Parquet has no empty struct: keep `{}` as text
        names = dedupe([key for key, _ in kind[1]])
        return ("struct", [(name, key, finalise(sub)) for name, (key, sub) in zip(names, kind[1])])
    if kind[0] == "array":
        return ("array", finalise(kind[1]))
    return kind[0]


def to_text(value: Any) -> Optional[str]:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def convert(value: Any, kind: Any, as_tuple: bool = False) -> Any:
    """A JSON value as the final type says (struct as dict, or as tuple for Spark rows)."""
    if value is None:
        return None
    if kind == "string":
        return to_text(value)
    if kind == "double":
        return float(value)
    if kind in ("bigint", "boolean"):
        return value
    if kind[0] == "array":
        return [convert(item, kind[1], as_tuple) for item in value]
    fields = kind[1]
    if as_tuple:
        return tuple(convert(value.get(key), sub, True) for _, key, sub in fields)
    return {name: convert(value.get(key), sub) for name, key, sub in fields}


def hive_type(kind: Any) -> str:
    if isinstance(kind, str):
        return kind
    if kind[0] == "array":
        return f"array<{hive_type(kind[1])}>"
    return "struct<" + ",".join(f"{name}:{hive_type(sub)}" for name, _, sub in kind[1]) + ">"


# --- partitions ----------------------------------------------------------------------------------
# Hive's (and Spark's) escaping of partition folder names, so both engines name folders alike.
_ESCAPED = set('"#%\'*/:=?\\\x7f{[]^') | {chr(c) for c in range(1, 32)}


def escape_partition_value(value: str) -> str:
    return "".join(f"%{ord(ch):02X}" if ch in _ESCAPED else ch for ch in value)


def unescape_partition_value(text: str) -> str:
    return re.sub(r"%([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), text)


def partition_text(value: Any) -> Optional[str]:
    """The folder value of a partition column; None for the default (null) partition."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def partition_path(values: Sequence[Tuple[str, Optional[str]]]) -> str:
    return "".join(
        f"{name}={HIVE_DEFAULT_PARTITION if value is None else escape_partition_value(value)}/"
        for name, value in values
    )


class Plan:
    """What to write: final columns, data columns (in the files) and partition columns (in the path)."""

    def __init__(self, manifest: Dict[str, Any], raw_schema: tuple):
        final = finalise(raw_schema) if raw_schema[1] else ("struct", [])
        self.columns: List[Tuple[str, str, Any]] = list(final[1]) if final != "string" else []
        names = [name for name, _, _ in self.columns]
        self.ingestion_date = ingestion_date(manifest)
        self.partition_by = [normalise_name(p) for p in manifest_partition_by(manifest)]
        self.added_ingestion_date = False
        for name in self.partition_by:
            if name in names:
                kind = dict((n, k) for n, _, k in self.columns)[name]
                if kind not in PARTITIONABLE:
                    raise JobError(
                        f"partition column {name!r} is {hive_type(kind)}; partition by a string, bigint or boolean column"
                    )
            elif name == INGESTION_DATE:
                self.added_ingestion_date = True
            else:
                raise JobError(f"partition column {name!r} is not in the data (columns: {', '.join(names) or 'none'})")
        self.data_columns = [c for c in self.columns if c[0] not in self.partition_by]
        self.kinds = {name: kind for name, _, kind in self.columns}
        self.raw_keys = {name: key for name, key, _ in self.columns}

    def require_columns(self, rows: int) -> None:
        if rows and not self.data_columns:
            raise JobError(f"the batch's {rows} record(s) have no fields besides the partition columns")

    def partition_values(self, record: Dict[str, Any]) -> Tuple[Optional[str], ...]:
        values = []
        for name in self.partition_by:
            if name == INGESTION_DATE and self.added_ingestion_date:
                values.append(self.ingestion_date)
            else:
                values.append(partition_text(convert(record.get(self.raw_keys[name]), self.kinds[name])))
        return tuple(values)

    def row(self, record: Dict[str, Any], as_tuple: bool = False) -> Any:
        if as_tuple:
            return tuple(convert(record.get(key), kind, True) for _, key, kind in self.data_columns)
        return {name: convert(record.get(key), kind) for name, key, kind in self.data_columns}

    def result_columns(self) -> List[Dict[str, str]]:
        return [{"name": name, "type": hive_type(kind)} for name, _, kind in self.data_columns]

    def partition_keys(self) -> List[Dict[str, str]]:
        return [
            {"name": name, "type": "string" if name == INGESTION_DATE and self.added_ingestion_date
             else hive_type(self.kinds[name])}
            for name in self.partition_by
        ]


def ingestion_date(manifest: Dict[str, Any]) -> str:
    created = manifest.get("created_at")
    if not isinstance(created, str):
        raise JobError(f"manifest: created_at must be an ISO-8601 time, got {created!r}")
    try:
        moment = datetime.fromisoformat(created.replace("Z", "+00:00"))
    except ValueError:
        raise JobError(f"manifest: created_at must be an ISO-8601 time, got {created!r}") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%d")


def manifest_partition_by(manifest: Dict[str, Any]) -> List[str]:
    value = manifest.get("partition_by")
    if value is None:
        return list(DEFAULT_PARTITION_BY)
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise JobError(f"manifest: partition_by must be a list of column names, got {value!r}")
    return list(value)


# --- the table's schema across batches ---------------------------------------------------------------
# Every batch of a dataset writes Parquet into one table; a column's type must not change between batches (a
# reader of the table would find bigint in one file and string in the next). `_schema/<table>.json`, beside
# the table's folder (crawlers and queries never see it), holds the columns the batches wrote. A later batch
# is widened to them by the same rules as inside a batch: a new column is added (earlier rows read it as null),
# bigint values go into a double column, any value into a string column (as its JSON text), a column always
# null in the batch takes the table's type. An input that needs a wider type than the table's (string values
# for a bigint column, a struct for a double) is rejected, naming the column, both types, the input and the
# first line with such a value; the rest of the batch is written, and the rejected object waits in the
# stage-B DLQ.
SCHEMA_FOLDER = "_schema"


def schema_uri(manifest: Dict[str, Any]) -> str:
    folder, _, table = manifest["output"].rstrip("/").rpartition("/")
    return f"{folder}/{SCHEMA_FOLDER}/{table}.json"


def read_table_schema(s3: Any, manifest: Dict[str, Any]) -> List[Dict[str, str]]:
    """The columns earlier batches wrote ([] for the first batch)."""
    bucket, key = parse_s3_uri(schema_uri(manifest))
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except Exception as exc:
        if (getattr(exc, "response", None) or {}).get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
            return []
        raise JobError(f"cannot read the table's schema {schema_uri(manifest)}: {_describe(exc)}") from None
    try:
        columns = json.loads(body)["columns"]
        return [{"name": str(c["name"]), "type": str(c["type"])} for c in columns]
    except (ValueError, KeyError, TypeError) as exc:
        raise JobError(f"the table's schema {schema_uri(manifest)} is not what stage B writes: {exc}") from None


def write_table_schema(s3: Any, manifest: Dict[str, Any], table: List[Dict[str, str]], plan: "Plan") -> None:
    known = {c["name"] for c in table}
    columns = list(table) + [c for c in plan.result_columns() if c["name"] not in known]
    if columns != table:
        write_object(s3, schema_uri(manifest), json.dumps({"columns": columns}, indent=2).encode("utf-8"),
                     "application/json")


def parse_hive_type(text: str) -> tuple:
    """A Hive type of `hive_type` back to a raw type: `struct<a:bigint,b:array<string>>` -> ("struct", ...)."""
    kind, rest = _parse_hive(text.strip())
    if rest:
        raise JobError(f"unexpected {rest!r} after a type in {text!r}")
    return kind


def _parse_hive(text: str) -> Tuple[tuple, str]:
    for simple in ("bigint", "double", "string", "boolean"):
        if text.startswith(simple):
            return (simple,), text[len(simple):]
    if text.startswith("array<"):
        element, rest = _parse_hive(text[len("array<"):])
        return ("array", element), rest[1:]  # '>'
    if text.startswith("struct<"):
        rest, fields = text[len("struct<"):], []
        while not rest.startswith(">"):
            name, _, rest = rest.partition(":")
            kind, rest = _parse_hive(rest)
            fields.append((name, kind))
            rest = rest[1:] if rest.startswith(",") else rest
        return ("struct", tuple(fields)), rest[1:]
    raise JobError(f"type {text!r} is not one stage B writes")


def _rekey(table: tuple, batch: tuple) -> tuple:
    """The table's raw type with its struct fields named by the batch's keys (`Zip Code` for `zip_code`), so
    that merging matches them."""
    if table[0] == batch[0] == "struct":
        keys: Dict[str, Tuple[str, tuple]] = {}
        for key, sub in batch[1]:
            keys.setdefault(normalise_name(key), (key, sub))
        return ("struct", tuple((keys[name][0], _rekey(sub, keys[name][1])) if name in keys else (name, sub)
                                for name, sub in table[1]))
    if table[0] == batch[0] == "array":
        return ("array", _rekey(table[1], batch[1]))
    return table


class SchemaDrift(BadInput):
    """An input's column needs a wider type than the table's: the input, the column's key in it, its type
    there and the table's."""

    def __init__(self, uri: str, key: str, found: str, want: str, location: str, line: str = ""):
        self.uri, self.key, self.found, self.want, self.location = uri, key, found, want, location
        super().__init__(
            f"schema drift in {uri}{line}: column {normalise_name(key)!r} is {found} there but {want} in the table "
            f"at {location or 'its location'}; stage B widens a batch to its table (new columns, bigint into "
            f"double, any value into string) but never changes a column's type: expected {want} values, or "
            "another column name")

    def at_line(self, number: int, value: Any) -> "SchemaDrift":
        text = to_text(value) if not isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        text = text if len(text) <= 80 else text[:77] + "..."
        return SchemaDrift(self.uri, self.key, self.found, self.want, self.location,
                           f" line {number} (value {text})")


def _fits(want: str, kind: tuple) -> bool:
    return hive_type(finalise(merge(_rekey(parse_hive_type(want), kind), kind))) == want


def widen_to_table(raw_schema: tuple, table: List[Dict[str, str]], files: Sequence[Tuple[str, tuple]],
                   location: str = "") -> tuple:
    """The batch's raw schema with each column the table has widened to the table's type (see above);
    SchemaDrift when a column needs a wider type than the table's. `files`: (uri, raw schema) of each input,
    to name one; `location`: the table's, to name it."""
    types = {c["name"]: c["type"] for c in table}
    fields = []
    for key, kind in raw_schema[1]:
        want = types.get(normalise_name(key))
        if want is None:
            fields.append((key, kind))
            continue
        if not _fits(want, kind):
            culprit = next((uri for uri, file_kind in files for k, sub in file_kind[1] if k == key
                            and not _fits(want, sub)), "the batch")
            raise SchemaDrift(culprit, key, hive_type(finalise(kind)), want, location)
        fields.append((key, merge(_rekey(parse_hive_type(want), kind), kind)))
    return ("struct", tuple(fields))


def drift_line(drift: SchemaDrift, body: bytes) -> SchemaDrift:
    """The drift, naming the first line of the input whose value of the column the table's type cannot hold
    (as it was when no such line is found)."""
    for number, line in iter_lines(drift.uri, body):
        try:
            record = parse_line(drift.uri, number, line)
        except BadInput:
            continue
        if drift.key in record and not _fits(drift.want, infer(record[drift.key])):
            return drift.at_line(number, record[drift.key])
    return drift


def fit_to_table(s3: Any, inputs: Sequence[Tuple[str, str, tuple]], table: List[Dict[str, str]],
                 location: str) -> Tuple[List[int], List[Dict[str, str]]]:
    """Which inputs ((uri, where its bytes are, raw schema)) the table can take, by index, and a rejection
    ({"uri", "reason"}) for each other: each input is widened to the table alone, so one input's drift is
    only its own."""
    accepted, rejected = [], []
    for index, (uri, where, kind) in enumerate(inputs):
        try:
            widen_to_table(kind, table, [(uri, kind)], location)
        except SchemaDrift as drift:
            rejected.append({"uri": uri, "reason": str(drift_line(drift, read_location(s3, uri, where)))})
            continue
        accepted.append(index)
    return accepted, rejected


def every_input_rejected(rejected: List[Dict[str, str]]) -> JobError:
    """The job's failure when no input of the batch is left to write."""
    if len(rejected) == 1:
        return JobError(rejected[0]["reason"])
    return JobError(f"all {len(rejected)} inputs of the batch were rejected: "
                    + "; ".join(r["reason"] for r in sorted(rejected, key=lambda r: r["uri"])))


# --- manifest ------------------------------------------------------------------------------------
def load_manifest(s3: Any, uri: str) -> Dict[str, Any]:
    body = read_object(s3, uri, "manifest")
    try:
        manifest = json.loads(body)
    except ValueError as exc:
        raise JobError(f"manifest {uri} is not JSON: {exc}") from None
    if not isinstance(manifest, dict):
        raise JobError(f"manifest {uri} must be a JSON object")
    for name in ("batch_id", "output"):
        if not isinstance(manifest.get(name), str) or not manifest[name]:
            raise JobError(f"manifest {uri}: {name!r} is missing")
    if not re.fullmatch(r"[A-Za-z0-9_-]+", manifest["batch_id"]):
        raise JobError(f"manifest {uri}: batch_id {manifest['batch_id']!r} must be [A-Za-z0-9_-]")
    inputs = manifest.get("inputs")
    if not isinstance(inputs, list):
        raise JobError(f"manifest {uri}: 'inputs' must be a list")
    for index, item in enumerate(inputs):
        if not isinstance(item, dict) or not isinstance(item.get("uri"), str):
            raise JobError(f"manifest {uri}: inputs[{index}] must be an object with a 'uri'")
        parse_s3_uri(item["uri"])
    parse_s3_uri(manifest["output"])
    return manifest


def input_uris(manifest: Dict[str, Any]) -> List[str]:
    """Inputs in a fixed order (sorted by uri), so rows come out in the same order on every run."""
    return sorted({item["uri"] for item in manifest["inputs"]})


def output_uri(manifest: Dict[str, Any], values: Sequence[Tuple[str, Optional[str]]]) -> str:
    base = manifest["output"] if manifest["output"].endswith("/") else manifest["output"] + "/"
    return f"{base}{partition_path(values)}part-{manifest['batch_id']}.parquet"


def write_result(s3: Any, manifest_uri: str, manifest: Dict[str, Any], plan: Plan,
                 outputs: List[Dict[str, Any]], engine: str,
                 rejected: Sequence[Dict[str, str]] = ()) -> Dict[str, Any]:
    outputs = sorted(outputs, key=lambda o: o["uri"])
    result = {
        "batch_id": manifest["batch_id"],
        "engine": engine,
        "outputs": outputs,
        "rows": sum(o["rows"] for o in outputs),
        "columns": plan.result_columns(),
        "partition_keys": plan.partition_keys(),
        "rejected": sorted(rejected, key=lambda r: r["uri"]),
    }
    write_object(s3, sibling_uri(manifest_uri, "result.json"),
                 json.dumps(result, indent=2, sort_keys=True).encode("utf-8"), "application/json")
    return result


def _partition_dict(plan: Plan, values: Sequence[Optional[str]]) -> Dict[str, Optional[str]]:
    return dict(zip(plan.partition_by, values))


# --- columnar reading (shared by both engines) ---------------------------------------------------
# pyarrow's JSON reader parses and infers types natively; its results are mapped onto the rules above.
# Where its inference cannot give those rules' answer the file is read exactly, with `json` and the
# functions above, instead: a type conflict inside the file (pyarrow raises), a duplicate key, a line
# that is not an object (it raises), an integer beyond int64 (it makes a double). It also infers
# timestamps from ISO-looking strings, which stay text here: such fields are read again as strings.
PREFIX_BYTES = 256 * 1024  # the prefix whose inferred schema fixes the field order and text fields
KEEP_BYTES = 64 * 1024 * 1024  # tables kept between the two passes; past this they are read again
FLUSH_BYTES = 64 * 1024 * 1024  # rows buffered per output file before a row group is written
INT64_LIMIT = float(2 ** 63)  # a double this large may be an integer past int64 pyarrow widened


class FileRead:
    """One stage object after the inference pass: its raw schema, and its Arrow table while kept."""

    def __init__(self, uri: str, location: str, kind: tuple, rows: int, table: Any = None):
        self.uri, self.location, self.kind, self.rows, self.table = uri, location, kind, rows, table


UTF8_CHECK_BYTES = 16 * 1024 * 1024  # checked at a time: decoding a whole object would copy it as text


def check_utf8(uri: str, body: bytes, piece: int = UTF8_CHECK_BYTES) -> None:
    """The object is UTF-8, checked in pieces cut after a newline (which no multi-byte character contains)."""
    start = 0
    while start < len(body):
        end = body.find(b"\n", start + piece)
        end = len(body) if end < 0 else end + 1
        try:
            body[start:end].decode("utf-8")
        except UnicodeDecodeError as exc:
            offset = start + exc.start
            line = body.count(b"\n", 0, offset) + 1
            raise BadInput(f"{uri} line {line}: not UTF-8 ({exc.reason} at byte {offset})") from None
        start = end


def raw_kind(arrow: Any, reference: Any = None) -> tuple:
    """The raw type (see infer) of an Arrow type pyarrow inferred; struct fields in `reference`'s order."""
    import pyarrow as pa

    if pa.types.is_null(arrow):
        return NULL
    if pa.types.is_boolean(arrow):
        return ("boolean",)
    if pa.types.is_integer(arrow):
        return ("bigint",)
    if pa.types.is_floating(arrow):
        return ("double",)
    if pa.types.is_list(arrow) or pa.types.is_large_list(arrow):
        inner = reference.value_type if reference is not None and pa.types.is_list(reference) else None
        return ("array", raw_kind(arrow.value_type, inner))
    if pa.types.is_struct(arrow):
        return ("struct", _raw_fields(list(arrow), reference))
    return ("string",)


def _raw_fields(fields: List[Any], reference: Any) -> tuple:
    import pyarrow as pa

    order: Dict[str, int] = {}
    if reference is not None and (isinstance(reference, pa.Schema) or pa.types.is_struct(reference)):
        order = {field.name: index for index, field in enumerate(reference)}
    ranked = sorted(enumerate(fields), key=lambda item: (order.get(item[1].name, len(order) + item[0])))
    return tuple(
        (field.name, raw_kind(field.type, reference.field(field.name).type if field.name in order else None))
        for _, field in ranked
    )


def _text_paths(arrow: Any, path: Tuple[str, ...] = ()) -> List[Tuple[str, ...]]:
    """Paths of the fields pyarrow typed from strings (timestamps and the like)."""
    import pyarrow as pa

    if isinstance(arrow, pa.Schema) or pa.types.is_struct(arrow):
        return [p for field in arrow for p in _text_paths(field.type, path + (field.name,))]
    if pa.types.is_list(arrow):
        return _text_paths(arrow.value_type, path + ("[]",))
    simple = (pa.types.is_null, pa.types.is_boolean, pa.types.is_integer, pa.types.is_floating,
              pa.types.is_string, pa.types.is_large_string)
    return [] if any(test(arrow) for test in simple) else [path]


def _explicit_schema(schema: Any, paths: List[Tuple[str, ...]]) -> Any:
    """`schema` pruned to `paths`, each of them a string: pyarrow then reads those fields as text."""
    import pyarrow as pa

    def prune(arrow: Any, wanted: List[Tuple[str, ...]]) -> Any:
        if any(not p for p in wanted):
            return pa.string()
        if pa.types.is_list(arrow):
            return pa.list_(prune(arrow.value_type, [p[1:] for p in wanted]))
        fields = []
        for field in arrow:
            sub = [p[1:] for p in wanted if p[0] == field.name]
            if sub:
                fields.append(pa.field(field.name, prune(field.type, sub)))
        return pa.struct(fields)

    return pa.schema(list(prune(pa.struct(list(schema)), paths)))


def _largest_double(array: Any) -> float:
    """The largest magnitude of the doubles anywhere in an array (nested ones included), 0 if none."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(array, pa.ChunkedArray):
        return max([_largest_double(chunk) for chunk in array.chunks], default=0.0)
    kind = array.type
    if pa.types.is_struct(kind):
        return max([_largest_double(array.field(i)) for i in range(kind.num_fields)], default=0.0)
    if pa.types.is_list(kind):
        return _largest_double(array.flatten())
    if pa.types.is_floating(kind):
        largest = pc.max(pc.abs(array)).as_py()
        return largest if largest is not None else 0.0
    return 0.0


def _pyarrow_json(body: bytes, explicit: Any) -> Any:
    import pyarrow.json as pj

    options = pj.ParseOptions(explicit_schema=explicit, unexpected_field_behavior="infer")
    return pj.read_json(pa_buffer(body), read_options=pj.ReadOptions(block_size=4 << 20), parse_options=options)


def pa_buffer(body: bytes) -> Any:
    import pyarrow as pa

    return pa.BufferReader(body)


def arrow_read(body: bytes) -> Optional[Tuple[Any, tuple]]:
    """(table, raw schema) read natively, or None where only the exact reading gives the rules' answer."""
    import pyarrow as pa

    cut = body.rfind(b"\n", 0, PREFIX_BYTES) + 1 if len(body) > PREFIX_BYTES else 0
    try:
        reference = _pyarrow_json(body[:cut], None).schema if cut else None
        paths = _text_paths(reference) if reference is not None else []
        table = _pyarrow_json(body, _explicit_schema(reference, paths) if paths else None)
        reference = reference if reference is not None else table.schema
        for _ in range(3):  # fields typed from strings that first appear past the prefix
            more = [p for p in _text_paths(table.schema) if p not in paths]
            if not more:
                break
            paths += more
            table = _pyarrow_json(body, _explicit_schema(table.schema, paths))
        else:
            return None
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None
    if any(_largest_double(column) >= INT64_LIMIT for column in table.columns):
        return None  # an integer past int64 is text by the rules: let the exact reading decide
    return table, ("struct", _raw_fields(list(table.schema), reference))


def read_exact(uri: str, body: bytes) -> List[Dict[str, Any]]:
    return [parse_line(uri, number, line) for number, line in iter_lines(uri, body)]


def infer_file(uri: str, location: str, body: bytes, keep: bool) -> FileRead:
    """Pass one over a stage object: check it, infer its raw schema; keep the Arrow table if asked."""
    check_utf8(uri, body)
    if not body.strip():
        return FileRead(uri, location, ("struct", ()), 0)
    native = arrow_read(body)
    if native is None:
        records = read_exact(uri, body)
        return FileRead(uri, location, infer_records(records), len(records))
    table, kind = native
    return FileRead(uri, location, kind, table.num_rows, table if keep else None)


def conform(array: Any, have: tuple, want: Any) -> Any:
    """An Arrow array read as raw type `have`, as final type `want` (vectorised), or None when only
    the exact conversion can (a value that becomes its JSON text)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(array, pa.ChunkedArray):
        chunks = [conform(chunk, have, want) for chunk in array.chunks]
        return None if any(c is None for c in chunks) else pa.chunked_array(chunks, arrow_type(want))
    if have == NULL:
        return pa.nulls(len(array), arrow_type(want))
    if isinstance(want, str):
        if (want,) == have:
            return array
        if want == "double" and have == ("bigint",):
            return array.cast(pa.float64())
        if want == "string" and have == ("struct", ()):
            return pc.if_else(array.is_valid(), pa.scalar("{}"), pa.scalar(None, pa.string()))
        return None
    if want[0] == "array":
        if have[0] != "array":
            return None
        offsets = array.offsets
        first, last = offsets[0].as_py(), offsets[-1].as_py()
        values = conform(array.values.slice(first, last - first), have[1], want[1])
        if values is None:
            return None
        if first:
            offsets = pc.subtract(offsets, pa.scalar(first, offsets.type))
        return pa.ListArray.from_arrays(offsets, values, type=arrow_type(want), mask=array.is_null())
    if have[0] != "struct":
        return None
    present = dict(have[1])
    children = []
    for _, key, sub in want[1]:
        child = conform(array.field(key), present[key], sub) if key in present else pa.nulls(len(array), arrow_type(sub))
        if child is None:
            return None
        children.append(child)
    fields = [pa.field(name, arrow_type(sub)) for name, _, sub in want[1]]
    return pa.StructArray.from_arrays(children, fields=fields, mask=array.is_null())


def read_location(s3: Any, uri: str, location: str) -> bytes:
    """A stage object's bytes from where pass one left them: a local copy, else S3 (read again)."""
    if not location.startswith("s3://") and os.path.exists(location):
        with open(location, "rb") as handle:
            return handle.read()
    return read_object(s3 or s3_client(), location if location.startswith("s3://") else uri, "input")


# --- engine: python (pyarrow) --------------------------------------------------------------------
def arrow_type(kind: Any) -> Any:
    import pyarrow as pa

    simple = {"bigint": pa.int64(), "double": pa.float64(), "string": pa.string(), "boolean": pa.bool_()}
    if isinstance(kind, str):
        return simple[kind]
    if kind[0] == "array":
        return pa.list_(arrow_type(kind[1]))
    return pa.struct([pa.field(name, arrow_type(sub)) for name, _, sub in kind[1]])


def iter_lines(uri: str, body: bytes) -> Iterator[Tuple[int, str]]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = body[: exc.start].count(b"\n") + 1
        raise BadInput(f"{uri} line {line}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            yield number, line


def infer_inputs(s3: Any, uris: Sequence[str], scratch: str) -> Tuple[List[FileRead], List[Dict[str, str]]]:
    """Pass one: every stage object read, checked and inferred, in input order; one whose table is not
    kept is saved to `scratch` for pass two. Returns those, and a rejection for each object that does not
    parse."""
    reads, rejected, kept = [], [], 0
    for index, uri in enumerate(uris):
        body = read_object(s3, uri, "input")
        location = os.path.join(scratch, "in", f"{index:06d}.jsonl")
        try:
            read = infer_file(uri, location, body, keep=kept < KEEP_BYTES)
        except BadInput as bad:
            rejected.append({"uri": uri, "reason": str(bad)})
            continue
        if read.table is not None:
            kept += read.table.nbytes
        elif read.rows:
            os.makedirs(os.path.dirname(location), exist_ok=True)
            with open(location, "wb") as handle:
                handle.write(body)
        reads.append(read)
        del body
        _release_memory()
    return reads, rejected


def fit_reads(s3: Any, reads: List[FileRead], table: List[Dict[str, str]], location: str,
              rejected: List[Dict[str, str]]) -> List[FileRead]:
    """The reads the table can take (the others' rejections added to `rejected`); JobError when none is left
    of a batch that had inputs rejected."""
    accepted, drifted = fit_to_table(s3, [(r.uri, r.location, r.kind) for r in reads], table, location)
    for read in reads:
        if read.uri in {d["uri"] for d in drifted}:
            read.table = None
    rejected += drifted
    kept = [reads[index] for index in accepted]
    if rejected and not kept:
        raise every_input_rejected(rejected)
    return kept


def _release_memory() -> None:
    """Hand the Arrow buffers freed by the last object back to the system: the allocator keeps them otherwise,
    and the process's resident memory would grow with the batch instead of with its largest object."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()


def batch_tables(plan: "Plan", reads: Sequence[FileRead], s3: Any = None) -> Iterator[Tuple[str, Any]]:
    """Pass two: (uri, rows as an Arrow table of the plan's columns, final names and types) per object."""
    import pyarrow as pa

    schema = pa.schema([pa.field(name, arrow_type(kind)) for name, _, kind in plan.columns])
    for read in reads:
        if not read.rows:
            continue
        table, kind = read.table, read.kind
        body = None
        if table is None:
            body = read_location(s3, read.uri, read.location)
            native = arrow_read(body)
            if native is not None:
                table, kind = native
        columns = None
        if table is not None:
            present = dict(kind[1])
            columns = []
            for name, key, final in plan.columns:
                column = conform(table.column(key), present[key], final) if key in present \
                    else pa.nulls(table.num_rows, arrow_type(final))
                if column is None:
                    columns = None
                    break
                columns.append(column)
        read.table = None
        if columns is not None:
            yield read.uri, pa.Table.from_arrays(columns, schema=schema)
            _release_memory()
            continue
        records = read_exact(read.uri, body if body is not None else read_location(s3, read.uri, read.location))
        rows = [{name: convert(record.get(key), kind) for name, key, kind in plan.columns} for record in records]
        yield read.uri, pa.Table.from_pylist(rows, schema=schema)


def partition_text_array(column: Any, kind: Any) -> Any:
    """Folder values of a partition column, vectorised like partition_text ('' and null -> None)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if kind == "string":
        return pc.if_else(pc.equal(column, ""), pa.scalar(None, pa.string()), column)
    return column.cast(pa.string())  # bigint digits; boolean true/false


def split_partitions(plan: "Plan", table: Any) -> Iterator[Tuple[Tuple[Optional[str], ...], Any]]:
    """(partition values, rows without the partition columns) for each partition the table holds."""
    import pyarrow as pa
    import pyarrow.compute as pc

    data = table.select([name for name, _, _ in plan.data_columns])
    keys = {name: partition_text_array(table.column(name), plan.kinds[name])
            for name in plan.partition_by if not (name == INGESTION_DATE and plan.added_ingestion_date)}
    if not keys:
        yield tuple(plan.ingestion_date for _ in plan.partition_by), data
        return
    frame = pa.table(keys)
    for combo in frame.group_by(list(keys), use_threads=False).aggregate([]).to_pylist():
        mask = None
        for name, value in combo.items():
            test = pc.is_null(frame.column(name)) if value is None else \
                pc.fill_null(pc.equal(frame.column(name), value), False)
            mask = test if mask is None else pc.and_(mask, test)
        values = tuple(plan.ingestion_date if name not in keys else combo[name] for name in plan.partition_by)
        yield values, data.filter(mask)


class PartitionFiles:
    """One Parquet file per partition, written in row groups as rows arrive (bounded memory)."""

    def __init__(self, schema: Any, scratch: str):
        self.schema, self.scratch = schema, scratch
        self.pending: Dict[Tuple[Optional[str], ...], List[Any]] = {}
        self.writers: Dict[Tuple[Optional[str], ...], Any] = {}
        self.rows: Dict[Tuple[Optional[str], ...], int] = {}

    def add(self, values: Tuple[Optional[str], ...], table: Any) -> None:
        if not table.num_rows:
            return
        self.pending.setdefault(values, []).append(table)
        self.rows[values] = self.rows.get(values, 0) + table.num_rows
        if sum(t.nbytes for t in self.pending[values]) >= FLUSH_BYTES:
            self._flush(values)

    def _flush(self, values: Tuple[Optional[str], ...]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        tables = self.pending.pop(values, [])
        if not tables:
            return
        if values not in self.writers:
            path = os.path.join(self.scratch, f"out-{len(self.writers)}.parquet")
            self.writers[values] = (pq.ParquetWriter(path, self.schema, compression="snappy"), path)
        self.writers[values][0].write_table(pa.concat_tables(tables))

    def close(self) -> Dict[Tuple[Optional[str], ...], Tuple[str, int]]:
        """partition values -> (local file, rows)."""
        for values in list(self.pending):
            self._flush(values)
        files = {}
        for values, (writer, path) in self.writers.items():
            writer.close()
            files[values] = (path, self.rows[values])
        return files


def run_python(manifest_uri: str, s3: Any = None) -> Dict[str, Any]:
    import pyarrow as pa

    s3 = s3 or s3_client()
    manifest = load_manifest(s3, manifest_uri)
    with tempfile.TemporaryDirectory(prefix="sdlf-heavy-") as scratch:
        reads, rejected = infer_inputs(s3, input_uris(manifest), scratch)
        table_schema = read_table_schema(s3, manifest)
        reads = fit_reads(s3, reads, table_schema, manifest["output"], rejected)
        raw_schema: tuple = ("struct", ())
        for read in reads:
            raw_schema = merge(raw_schema, read.kind)
        raw_schema = widen_to_table(raw_schema, table_schema, [(read.uri, read.kind) for read in reads],
                                    manifest["output"])
        plan = Plan(manifest, raw_schema)
        plan.require_columns(sum(read.rows for read in reads))
        schema = pa.schema([pa.field(name, arrow_type(kind)) for name, _, kind in plan.data_columns])
        files = PartitionFiles(schema, scratch)
        for _, table in batch_tables(plan, reads, s3):
            for values, part in split_partitions(plan, table):
                files.add(values, part)
        outputs = []
        for values, (path, rows) in sorted(files.close().items(), key=lambda item: _sort_key(item[0])):
            uri = output_uri(manifest, list(zip(plan.partition_by, values)))
            write_file(s3, uri, path, "application/vnd.apache.parquet")
            outputs.append({"uri": uri, "rows": rows, "partition": _partition_dict(plan, values)})
    write_table_schema(s3, manifest, table_schema, plan)
    return write_result(s3, manifest_uri, manifest, plan, outputs, "python", rejected)


def _sort_key(values: Sequence[Optional[str]]) -> Tuple:
    return tuple((v is None, v or "") for v in values)


# --- the dataset's own heavy transform: SQL or a script, one or more output tables -----------------
# --transform {"kind": "none"}                      the batch as it is, one table (the manifest's output)
# --transform {"kind": "sql", "sql": {table: SQL}}  DuckDB (python) or Spark SQL (spark) over `input`;
#                                                   `sdlf` checked and translated the SQL for the engine
# --transform {"kind": "script"} --transform-script s3://.../<name>.py
#     the script's transform(batch, context) gets the batch (pyarrow.Table on python, DataFrame on spark)
#     and returns {table name: pyarrow.Table | DataFrame}, one entry per declared table
# --tables [{"name", "partition_by"}]               the output tables, each under <dataset>/<name>/
# `input` holds the batch's columns (as without a transform) and SOURCE_COLUMN, the stage object each
# row came from. Outputs are written like the batch: names normalised, Parquet per hive partition.
SOURCE_COLUMN = "_source_object"
TRANSFORM_KINDS = ("none", "sql", "script")


class TransformContext:
    """What a script's transform(batch, context) may use besides the batch."""

    def __init__(self, engine: str, manifest: Dict[str, Any], spark: Any = None):
        self.engine = engine
        self.spark = spark
        self.batch_id = manifest["batch_id"]
        self.team = manifest.get("team")
        self.dataset = manifest.get("dataset")
        self.created_at = manifest.get("created_at")

    def sql(self, query: str, **tables: Any) -> Any:
        """Run `query` over the given tables (name=table): DuckDB on python (returns a pyarrow.Table),
        Spark SQL on spark (returns a DataFrame). Write SQL both engines read alike."""
        if self.engine == "spark":
            for name, frame in tables.items():
                frame.createOrReplaceTempView(name)
            return self.spark.sql(query)
        import duckdb

        connection = duckdb.connect()
        try:
            for name, table in tables.items():
                connection.register(name, table)
            return connection.execute(query).arrow()
        finally:
            connection.close()


class OutputTable:
    """One output table: where it goes and how it is partitioned."""

    def __init__(self, manifest: Dict[str, Any], name: str, partition_by: Sequence[str]):
        self.name = name
        base = manifest["output"].rstrip("/").rsplit("/", 1)[0]
        self.output = f"{base}/{name}/"
        self.manifest = {**manifest, "output": self.output}
        self.partition_by = [normalise_name(p) for p in partition_by]
        self.ingestion_date = ingestion_date(manifest)


def parse_transform(text: Optional[str], script: Optional[str]) -> Dict[str, Any]:
    if not text:
        return {"kind": "none"}
    try:
        transform = json.loads(text)
    except ValueError as exc:
        raise JobError(f"--transform is not JSON: {exc}") from None
    if not isinstance(transform, dict) or transform.get("kind") not in TRANSFORM_KINDS:
        raise JobError(f"--transform must be an object with kind {', '.join(TRANSFORM_KINDS)}, got {text!r}")
    if transform["kind"] == "sql" and not (isinstance(transform.get("sql"), dict) and transform["sql"]):
        raise JobError("--transform: kind sql needs {\"sql\": {table: statement}}")
    if transform["kind"] == "script":
        if not script:
            raise JobError("--transform: kind script needs --transform-script s3://.../<name>.py")
        parse_s3_uri(script)
        transform = {**transform, "script": script}
    return transform


def parse_tables(text: Optional[str], manifest: Dict[str, Any], transform: Dict[str, Any]) -> List[OutputTable]:
    if not text:
        name = manifest["output"].rstrip("/").rsplit("/", 1)[-1]
        entries = [{"name": name, "partition_by": manifest_partition_by(manifest)}]
    else:
        try:
            entries = json.loads(text)
        except ValueError as exc:
            raise JobError(f"--tables is not JSON: {exc}") from None
    if not isinstance(entries, list) or not entries or not all(
            isinstance(e, dict) and isinstance(e.get("name"), str) and re.fullmatch(r"[a-z][a-z0-9_]*", e["name"])
            for e in entries):
        raise JobError(f"--tables must be a list of {{\"name\", \"partition_by\"}} with lowercase names, got {text!r}")
    tables = [OutputTable(manifest, e["name"], e.get("partition_by") or []) for e in entries]
    if transform["kind"] == "sql" and sorted(transform["sql"]) != sorted(t.name for t in tables):
        raise JobError(f"--transform has SQL for {', '.join(sorted(transform['sql']))} but --tables lists "
                       f"{', '.join(t.name for t in tables)}")
    return tables


def load_script(s3: Any, uri: str, scratch: str) -> Any:
    import importlib.util

    path = os.path.join(scratch, "transform_script.py")
    with open(path, "wb") as handle:
        handle.write(read_object(s3, uri, "transform script"))
    spec = importlib.util.spec_from_file_location("sdlf_dataset_transform", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise JobError(f"transform script {uri} failed to load: {type(exc).__name__}: {exc}") from None
    if not callable(getattr(module, "transform", None)):
        raise JobError(f"transform script {uri} defines no transform(batch, context)")
    return module


def call_script(module: Any, uri: str, batch: Any, context: TransformContext, tables: Sequence[OutputTable]) -> Dict[str, Any]:
    try:
        produced = module.transform(batch, context)
    except JobError:
        raise
    except Exception as exc:
        raise JobError(f"transform script {uri} failed: {type(exc).__name__}: {exc}") from None
    if not isinstance(produced, dict):
        raise JobError(f"transform script {uri} must return {{table name: table}}, got {type(produced).__name__}")
    expected = sorted(t.name for t in tables)
    if sorted(produced) != expected:
        raise JobError(f"transform script {uri} returned tables {', '.join(sorted(map(str, produced))) or 'none'}; "
                       f"the dataset declares {', '.join(expected)}")
    return produced


def arrow_hive_type(arrow: Any) -> str:
    """The Glue/Hive type of an Arrow type, spelled as Spark's simpleString spells it."""
    import pyarrow as pa

    named = [(pa.types.is_int64, "bigint"), (pa.types.is_int32, "int"), (pa.types.is_int16, "smallint"),
             (pa.types.is_int8, "tinyint"), (pa.types.is_float64, "double"), (pa.types.is_float32, "float"),
             (pa.types.is_boolean, "boolean"), (pa.types.is_string, "string"), (pa.types.is_large_string, "string"),
             (pa.types.is_date32, "date"), (pa.types.is_timestamp, "timestamp"), (pa.types.is_binary, "binary")]
    for test, name in named:
        if test(arrow):
            return name
    if pa.types.is_decimal(arrow):
        return f"decimal({arrow.precision},{arrow.scale})"
    if pa.types.is_list(arrow) or pa.types.is_large_list(arrow):
        return f"array<{arrow_hive_type(arrow.value_type)}>"
    if pa.types.is_struct(arrow):
        return "struct<" + ",".join(f"{f.name}:{arrow_hive_type(f.type)}" for f in arrow) + ">"
    if pa.types.is_null(arrow):
        return "string"
    raise JobError(f"an output column has type {arrow}, which Glue tables cannot hold")


def _portable_arrow(table: Any) -> Any:
    """An output table as both engines write it: unique normalised names, null-typed columns as
    strings, DuckDB's 128-bit sums as bigint (Spark's type for them), other decimals as double."""
    import pyarrow as pa

    columns, fields = [], []
    for name, column in zip(dedupe(table.column_names), table.columns):
        kind = column.type
        if pa.types.is_null(kind):
            column, kind = column.cast(pa.string()), pa.string()
        elif pa.types.is_decimal(kind) and kind.precision == 38 and kind.scale == 0:
            column, kind = column.cast(pa.int64()), pa.int64()
        elif pa.types.is_decimal(kind):
            column, kind = column.cast(pa.float64()), pa.float64()
        columns.append(column)
        fields.append(pa.field(name, kind))
    return pa.Table.from_arrays(columns, schema=pa.schema(fields))


def _partition_text(column: Any) -> Any:
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = column.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return pc.if_else(pc.equal(column, ""), pa.scalar(None, pa.string()), column.cast(pa.string()))
    if pa.types.is_integer(kind) or pa.types.is_boolean(kind) or pa.types.is_date32(kind):
        return column.cast(pa.string())
    raise JobError(f"partition column is {arrow_hive_type(kind)}; partition by a string, integer, boolean or date column")


def write_arrow_output(s3: Any, out: OutputTable, table: Any, scratch: str) -> Dict[str, Any]:
    """Partition and write one output table (python engine); its entry for result.json."""
    import pyarrow as pa
    import pyarrow.compute as pc

    table = _portable_arrow(table)
    keys: Dict[str, Any] = {}
    added = []
    for name in out.partition_by:
        if name in table.column_names:
            try:
                keys[name] = _partition_text(table.column(name))
            except JobError as exc:
                raise JobError(f"table {out.name}: {name}: {exc}") from None
        elif name == INGESTION_DATE:
            added.append(name)
        else:
            raise JobError(f"table {out.name}: partition column {name!r} is not in its columns "
                           f"({', '.join(table.column_names) or 'none'})")
    data = table.drop_columns(list(keys))
    if table.num_rows and not data.num_columns:
        raise JobError(f"table {out.name}: no columns besides the partition columns")
    folder = os.path.join(scratch, f"table-{out.name}")
    os.makedirs(folder, exist_ok=True)
    files = PartitionFiles(data.schema, folder)
    if keys:
        frame = pa.table(keys)
        for combo in frame.group_by(list(keys), use_threads=False).aggregate([]).to_pylist():
            mask = None
            for name, value in combo.items():
                test = pc.is_null(frame.column(name)) if value is None else \
                    pc.fill_null(pc.equal(frame.column(name), value), False)
                mask = test if mask is None else pc.and_(mask, test)
            files.add(tuple(out.ingestion_date if n in added else combo[n] for n in out.partition_by), data.filter(mask))
    else:
        files.add(tuple(out.ingestion_date for _ in out.partition_by), data)
    outputs = []
    for values, (path, rows) in sorted(files.close().items(), key=lambda item: _sort_key(item[0])):
        uri = output_uri(out.manifest, list(zip(out.partition_by, values)))
        write_file(s3, uri, path, "application/vnd.apache.parquet")
        outputs.append({"uri": uri, "rows": rows, "partition": dict(zip(out.partition_by, values)), "table": out.name})
    columns = [{"name": f.name, "type": arrow_hive_type(f.type)} for f in data.schema]
    partition_keys = [{"name": n, "type": "string" if n in added else arrow_hive_type(table.schema.field(n).type)}
                      for n in out.partition_by]
    return _table_entry(out, outputs, columns, partition_keys)


def _table_entry(out: OutputTable, outputs: List[Dict[str, Any]], columns: List[Dict[str, str]],
                 partition_keys: List[Dict[str, str]]) -> Dict[str, Any]:
    return {"name": out.name, "output": out.output, "rows": sum(o["rows"] for o in outputs),
            "outputs": outputs, "columns": columns, "partition_keys": partition_keys}


def write_tables_result(s3: Any, manifest_uri: str, manifest: Dict[str, Any], entries: List[Dict[str, Any]],
                        engine: str, rejected: Sequence[Dict[str, str]] = ()) -> Dict[str, Any]:
    """result.json of a transformed batch: every table, and (as for one table) all outputs and the
    first table's columns at the top."""
    outputs = sorted((o for e in entries for o in e["outputs"]), key=lambda o: o["uri"])
    result = {
        "batch_id": manifest["batch_id"],
        "engine": engine,
        "outputs": outputs,
        "rows": sum(o["rows"] for o in outputs),
        "columns": entries[0]["columns"],
        "partition_keys": entries[0]["partition_keys"],
        "tables": [{k: v for k, v in e.items() if k != "outputs"} for e in entries],
        "rejected": sorted(rejected, key=lambda r: r["uri"]),
    }
    write_object(s3, sibling_uri(manifest_uri, "result.json"),
                 json.dumps(result, indent=2, sort_keys=True).encode("utf-8"), "application/json")
    return result


def run_python_transform(manifest_uri: str, s3: Any, manifest: Dict[str, Any], transform: Dict[str, Any],
                         tables: List[OutputTable]) -> Dict[str, Any]:
    import pyarrow as pa

    with tempfile.TemporaryDirectory(prefix="sdlf-heavy-") as scratch:
        reads, rejected = infer_inputs(s3, input_uris(manifest), scratch)
        reads = fit_reads(s3, reads, [], manifest["output"], rejected)
        raw_schema: tuple = ("struct", ())
        for read in reads:
            raw_schema = merge(raw_schema, read.kind)
        plan = Plan({**manifest, "partition_by": []}, raw_schema)
        if SOURCE_COLUMN in plan.kinds:
            raise JobError(f"the batch has a column {SOURCE_COLUMN!r}, the name the transform's input gives the "
                           "stage object of each row; rename it in stage A")
        schema = pa.schema([pa.field(name, arrow_type(kind)) for name, _, kind in plan.columns]
                           + [pa.field(SOURCE_COLUMN, pa.string())])
        pieces = [table.append_column(SOURCE_COLUMN, pa.array([uri] * table.num_rows, pa.string()))
                  for uri, table in batch_tables(plan, reads, s3)]
        batch = pa.concat_tables(pieces) if pieces else schema.empty_table()
        context = TransformContext("python", manifest)
        if transform["kind"] == "sql":
            produced = {}
            for out in tables:
                try:
                    produced[out.name] = context.sql(transform["sql"][out.name], input=batch)
                except Exception as exc:
                    raise JobError(f"table {out.name}: the SQL failed: {type(exc).__name__}: {exc}") from None
        else:
            module = load_script(s3, transform["script"], scratch)
            produced = call_script(module, transform["script"], batch, context, tables)
        entries = []
        for out in tables:
            table = produced[out.name]
            if not isinstance(table, pa.Table):
                raise JobError(f"table {out.name}: expected a pyarrow.Table, got {type(table).__name__}")
            entries.append(write_arrow_output(s3, out, table, scratch))
    return write_tables_result(s3, manifest_uri, manifest, entries, "python", rejected)


# --- engine: spark -------------------------------------------------------------------------------
def on_glue(argv: Sequence[str] = ()) -> bool:
    """Real Glue: a job run id and no emulator endpoint. There Spark reads and writes s3:// itself."""
    argv = list(argv) or sys.argv
    return any(a.startswith(("--JOB_RUN_ID", "--JOB_ID")) for a in argv) and not os.environ.get("AWS_ENDPOINT_URL")


def spark_session(glue: bool = False) -> Any:
    from pyspark.sql import SparkSession

    if glue:
        return SparkSession.builder.getOrCreate()
    # Executors must run this interpreter (it has the same Python as the driver), not whatever `python3` is.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    return (
        SparkSession.builder.master("local[2]")
        .appName("sdlf-heavy-transform")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.sql.caseSensitive", "true")  # JSON keys differing only in case are distinct fields
        .getOrCreate()
    )


def spark_type(kind: Any, raw_names: bool = False) -> Any:
    """The Spark type of a final type; struct fields by final name, or by the JSON key (raw_names)."""
    from pyspark.sql import types as T

    simple = {"bigint": T.LongType(), "double": T.DoubleType(), "string": T.StringType(), "boolean": T.BooleanType()}
    if isinstance(kind, str):
        return simple[kind]
    if kind[0] == "array":
        return T.ArrayType(spark_type(kind[1], raw_names), True)
    return T.StructType([T.StructField(key if raw_names else name, spark_type(sub, raw_names), True)
                         for name, key, sub in kind[1]])


def _infer_task(items: Iterable[Tuple[int, str, str]]) -> Iterator[Tuple[int, Optional[tuple], Optional[str], int, bool]]:
    """Executors: (input index, raw schema, error, rows, whether the error is the object's content) of each
    stage object, by the shared inference."""
    for index, uri, location in items:
        try:
            read = infer_file(uri, location, read_location(None, uri, location), keep=False)
            yield index, read.kind, None, read.rows, False
        except JobError as exc:
            yield index, None, str(exc), 0, isinstance(exc, BadInput)


def _portable_spark(frame: Any) -> Any:
    """An output DataFrame as both engines write it: unique normalised names, every field nullable
    (DuckDB's Arrow output always is), void as string, decimals as double."""
    from pyspark.sql import types as T

    def loosen(kind: Any) -> Any:
        if isinstance(kind, T.StructType):
            return T.StructType([T.StructField(f.name, loosen(f.dataType), True) for f in kind.fields])
        if isinstance(kind, T.ArrayType):
            return T.ArrayType(loosen(kind.elementType), True)
        if isinstance(kind, T.MapType):
            return T.MapType(loosen(kind.keyType), loosen(kind.valueType), True)
        if isinstance(kind, T.NullType):
            return T.StringType()
        if isinstance(kind, T.DecimalType):
            return T.DoubleType()
        return kind

    frame = frame.toDF(*dedupe(frame.columns))
    return frame.select(*[frame[f.name].cast(loosen(f.dataType)).alias(f.name) for f in frame.schema.fields]) \
        .to(loosen(frame.schema))


def write_spark_output(s3: Any, out: "OutputTable", frame: Any, scratch: str, glue: bool,
                       manifest_uri: str) -> Dict[str, Any]:
    """Partition and write one output table (spark engine); its entry for result.json."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    frame = _portable_spark(frame)
    names = frame.columns
    fields = {f.name: f.dataType for f in frame.schema.fields}
    partition_types = {}
    for name in out.partition_by:
        if name in names:
            kind = fields[name]
            if isinstance(kind, T.StringType):
                value = F.when(F.col(name) == "", F.lit(None)).otherwise(F.col(name))
            elif isinstance(kind, (T.IntegralType, T.BooleanType, T.DateType)):
                value = F.col(name).cast("string")
            else:
                raise JobError(f"table {out.name}: {name}: partition column is {kind.simpleString()}; partition by "
                               "a string, integer, boolean or date column")
            partition_types[name] = kind.simpleString()
        elif name == INGESTION_DATE:
            value = F.lit(out.ingestion_date)
            partition_types[name] = "string"
        else:
            raise JobError(f"table {out.name}: partition column {name!r} is not in its columns ({', '.join(names) or 'none'})")
        frame = frame.withColumn(name, value.cast(T.StringType()))
    data = [name for name in names if name not in out.partition_by]
    if not data:
        raise JobError(f"table {out.name}: no columns besides the partition columns")
    columns = [{"name": name, "type": fields[name].simpleString()} for name in data]
    pcols = list(out.partition_by)
    frame = frame.select(*data, *pcols)
    frame = frame.repartition(*pcols).sortWithinPartitions(*pcols) if pcols else frame.coalesce(1)
    frame.persist()
    counts = {tuple(r[c] for c in pcols): r["count"] for r in frame.groupBy(*pcols).count().collect()} \
        if pcols else {(): frame.count()}
    counts = {k: v for k, v in counts.items() if v}
    staging = sibling_uri(manifest_uri, f"_spark_output/{out.name}/") if glue else os.path.join(scratch, "out", out.name)
    frame.write.mode("overwrite").option("compression", "snappy").partitionBy(*pcols).parquet(staging)
    frame.unpersist()
    outputs = [{**o, "table": out.name} for o in _publish_spark_files(s3, out.manifest, out, staging, glue, counts)]
    return _table_entry(out, outputs, columns, [{"name": n, "type": partition_types[n]} for n in pcols])


def run_spark(manifest_uri: str, s3: Any = None, spark: Any = None, glue: Optional[bool] = None,
              transform: Optional[Dict[str, Any]] = None, tables: Optional[List["OutputTable"]] = None) -> Dict[str, Any]:
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    _pickle_by_value()
    glue = on_glue() if glue is None else glue
    s3 = s3 or s3_client()
    manifest = load_manifest(s3, manifest_uri)
    own_session = spark is None
    spark = spark or spark_session(glue)
    spark.conf.set("spark.sql.caseSensitive", "true")
    scratch = tempfile.mkdtemp(prefix="sdlf-heavy-spark-")
    try:
        sc = spark.sparkContext
        uris = input_uris(manifest)
        locations = [uri if glue else _stage_input(s3, uri, os.path.join(scratch, "in", f"{index:06d}.jsonl"))
                     for index, uri in enumerate(uris)]
        items = [(index, uri, location) for index, (uri, location) in enumerate(zip(uris, locations))]
        inferred = sorted(sc.parallelize(items, max(1, min(len(items), sc.defaultParallelism * 4)))
                          .mapPartitions(_infer_task).collect()) if items else []
        failures = [error for _, _, error, _, bad_input in inferred if error and not bad_input]
        if failures:
            raise JobError(failures[0])  # the first unreadable object in input order
        rejected = [{"uri": uris[index], "reason": error} for index, _, error, _, _ in inferred if error]
        parsed_inputs = [(index, kind, rows) for index, kind, error, rows, _ in inferred if not error]
        table_schema = [] if transform else read_table_schema(s3, manifest)
        fitting, drifted = fit_to_table(s3, [(uris[index], locations[index], kind) for index, kind, _ in parsed_inputs],
                                        table_schema, manifest["output"])
        rejected += drifted
        accepted = [parsed_inputs[i] for i in fitting]
        if rejected and not accepted:
            raise every_input_rejected(rejected)
        raw_schema: tuple = ("struct", ())
        for _, kind, _ in accepted:
            raw_schema = merge(raw_schema, kind)
        raw_schema = widen_to_table(raw_schema, table_schema, [(uris[index], kind) for index, kind, _ in accepted],
                                    manifest["output"])
        plan = Plan({**manifest, "partition_by": []} if transform else manifest, raw_schema)
        plan.require_columns(sum(rows for _, _, rows in accepted))
        pcols = list(plan.partition_by)
        paths = [locations[index] if glue else "file://" + locations[index] for index, _, _ in accepted]
        final = ("struct", plan.columns)
        lines = spark.read.text(paths) if paths else spark.createDataFrame([], "value string")
        # Spark's JSON parser with the shared schema: keys as in the data, cast to the final names.
        parsed = (
            lines.where(F.trim("value") != "")
            .select(
                F.from_json(F.regexp_replace("value", "^\ufeff", ""), spark_type(final, raw_names=True),
                            {"mode": "FAILFAST"}).cast(spark_type(final)).alias("record"),
                F.input_file_name().alias(ORDER_COLUMNS[0]),
                F.input_file_block_start().alias("__sdlf_block"),
                F.monotonically_increasing_id().alias(ORDER_COLUMNS[1]),
            )
        )
        if transform:
            return _spark_transform(s3, spark, manifest_uri, manifest, plan, parsed, uris, transform, tables,
                                    scratch, glue, rejected)
        record = [F.col("record").getField(name).alias(name) for name, _, _ in plan.data_columns]
        partition_values = []
        for name in pcols:
            if name == INGESTION_DATE and plan.added_ingestion_date:
                value = F.lit(plan.ingestion_date)
            elif plan.kinds[name] == "string":
                column = F.col("record").getField(name)
                value = F.when(column == "", F.lit(None)).otherwise(column)
            else:
                value = F.col("record").getField(name).cast("string")
            partition_values.append(value.cast(T.StringType()).alias(name))
        order = [ORDER_COLUMNS[0], "__sdlf_block", ORDER_COLUMNS[1]]
        frame = parsed.select(*record, *partition_values, *order)
        # Every partition value goes to one task, so each partition folder gets exactly one file.
        frame = frame.repartition(*pcols) if pcols else frame.coalesce(1)
        frame = frame.sortWithinPartitions(*pcols, *order).drop(*order)
        frame.persist()
        counts = {tuple(r[c] for c in pcols): r["count"] for r in frame.groupBy(*pcols).count().collect()} \
            if pcols else {(): frame.count()}
        counts = {k: v for k, v in counts.items() if v}
        staging = _spark_staging(manifest_uri, glue, scratch)
        frame.write.mode("overwrite").option("compression", "snappy").partitionBy(*pcols).parquet(staging)
        frame.unpersist()
        outputs = _publish_spark_files(s3, manifest, plan, staging, glue, counts)
        write_table_schema(s3, manifest, table_schema, plan)
        return write_result(s3, manifest_uri, manifest, plan, outputs, "spark", rejected)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if own_session and not glue:
            spark.stop()


def _spark_transform(s3: Any, spark: Any, manifest_uri: str, manifest: Dict[str, Any], plan: Plan, parsed: Any,
                     uris: List[str], transform: Dict[str, Any], tables: List["OutputTable"], scratch: str,
                     glue: bool, rejected: Sequence[Dict[str, str]] = ()) -> Dict[str, Any]:
    from pyspark.sql import functions as F

    if SOURCE_COLUMN in plan.kinds:
        raise JobError(f"the batch has a column {SOURCE_COLUMN!r}, the name the transform's input gives the "
                       "stage object of each row; rename it in stage A")
    if glue:
        source = F.input_file_name()
    else:  # staged as <index>.jsonl: back to the stage object's uri
        index = F.regexp_extract(F.input_file_name(), r"([0-9]{6})\.jsonl$", 1).cast("int")
        source = F.element_at(F.array(*[F.lit(uri) for uri in uris]), index + 1)
    batch = parsed.select(*[F.col("record").getField(name).alias(name) for name, _, _ in plan.columns],
                          source.alias(SOURCE_COLUMN))
    context = TransformContext("spark", manifest, spark)
    if transform["kind"] == "sql":
        batch.createOrReplaceTempView("input")
        produced = {}
        for out in tables:
            try:
                produced[out.name] = spark.sql(transform["sql"][out.name])
            except Exception as exc:
                raise JobError(f"table {out.name}: the SQL failed: {type(exc).__name__}: {exc}") from None
    else:
        module = load_script(s3, transform["script"], scratch)
        produced = call_script(module, transform["script"], batch, context, tables)
    entries = []
    for out in tables:
        frame = produced[out.name]
        if not hasattr(frame, "toDF"):
            raise JobError(f"table {out.name}: expected a Spark DataFrame, got {type(frame).__name__}")
        entries.append(write_spark_output(s3, out, frame, scratch, glue, manifest_uri))
    return write_tables_result(s3, manifest_uri, manifest, entries, "spark", rejected)


def _pickle_by_value() -> None:
    """Executors cannot import this file when it was loaded as a module: send its functions by value."""
    if __name__ != "__main__":
        from pyspark import cloudpickle

        cloudpickle.register_pickle_by_value(sys.modules[__name__])


def _stage_input(s3: Any, uri: str, path: str) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    bucket, key = parse_s3_uri(uri)
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
        with open(path, "wb") as handle:
            shutil.copyfileobj(body, handle, 8 << 20)
    except Exception as exc:
        raise JobError(f"cannot read input {uri}: {_describe(exc)}") from None
    return path


def _spark_staging(manifest_uri: str, glue: bool, scratch: str) -> str:
    if glue:  # executors on other nodes: stage next to the manifest in S3, then copy to the final names
        return sibling_uri(manifest_uri, "_spark_output/")
    return os.path.join(scratch, "out")


def _publish_spark_files(s3: Any, manifest: Dict[str, Any], plan: Plan, staging: str, glue: bool,
                         counts: Dict[Tuple[Optional[str], ...], int]) -> List[Dict[str, Any]]:
    """Give each partition's single Spark file its final name `part-<batch_id>.parquet`."""
    found: Dict[Tuple[Optional[str], ...], str] = {}
    for relative, location in _spark_files(s3, staging, glue):
        folders = relative.split("/")[:-1]
        values = []
        for folder, name in zip(folders, plan.partition_by):
            key, _, text = folder.partition("=")
            if key != name:
                raise JobError(f"unexpected Spark output folder {relative!r}")
            values.append(None if text == HIVE_DEFAULT_PARTITION else unescape_partition_value(text))
        if len(folders) != len(plan.partition_by):
            raise JobError(f"unexpected Spark output file {relative!r}")
        if tuple(values) in found:
            raise JobError(f"Spark wrote more than one file for partition {relative.rsplit('/', 1)[0]!r}")
        found[tuple(values)] = location
    outputs = []
    for values in sorted(counts, key=_sort_key):
        if values not in found:
            raise JobError(f"Spark wrote no file for partition {values!r}")
        uri = output_uri(manifest, list(zip(plan.partition_by, values)))
        bucket, key = parse_s3_uri(uri)
        if glue:
            source_bucket, source_key = parse_s3_uri(found[values])
            s3.copy_object(Bucket=bucket, Key=key, CopySource={"Bucket": source_bucket, "Key": source_key})
        else:
            write_file(s3, uri, found[values], "application/vnd.apache.parquet")
        outputs.append({"uri": uri, "rows": counts[values], "partition": _partition_dict(plan, values)})
    if glue:
        _delete_prefix(s3, staging)
    return outputs


def _spark_files(s3: Any, staging: str, glue: bool) -> List[Tuple[str, str]]:
    """(path relative to staging, location) of every Parquet file Spark wrote."""
    files = []
    if glue:
        bucket, prefix = parse_s3_uri(staging)
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                if item["Key"].endswith(".parquet"):
                    files.append((item["Key"][len(prefix):], f"s3://{bucket}/{item['Key']}"))
        return files
    for current, _, names in os.walk(staging):
        for name in names:
            if name.endswith(".parquet"):
                path = os.path.join(current, name)
                files.append((os.path.relpath(path, staging).replace(os.sep, "/"), path))
    return files


def _delete_prefix(s3: Any, uri: str) -> None:
    """Delete every object under `uri`. DeleteObjects answers 200 even when it deleted nothing (each refused
    key is listed in `Errors`), so those are collected and raised: a clean-up that fails is never silent."""
    bucket, prefix = parse_s3_uri(uri)
    failed: List[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if keys:
            response = s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
            failed += [f"{e.get('Key')}: {e.get('Code')} {e.get('Message', '')}".strip()
                       for e in response.get("Errors", [])]
    if failed:
        raise JobError(f"staging clean-up of {uri} failed for {len(failed)} object(s) (the outputs are published; "
                       f"the job role needs s3:DeleteObject there): " + "; ".join(failed[:5]))


# --- entry point ---------------------------------------------------------------------------------
def parse_arguments(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="sdlf stage-B heavy transform")
    parser.add_argument("--engine", required=True, choices=ENGINES)
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--transform", default=None, help='{"kind": "none" | "sql" | "script", ...}')
    parser.add_argument("--transform-script", default=None, help="s3:// location of a glue/transforms script")
    parser.add_argument("--tables", default=None, help='[{"name", "partition_by"}]: the output tables')
    arguments, _ = parser.parse_known_args(list(argv))  # Glue adds its own (--JOB_ID, --TempDir, ...)
    return arguments


def run(engine: str, manifest_uri: str, s3: Any = None, spark: Any = None, transform: Optional[str] = None,
        tables: Optional[str] = None, transform_script: Optional[str] = None) -> Dict[str, Any]:
    """One batch. `transform` and `tables` are the job arguments' JSON text (None: the batch as it is,
    into the manifest's output)."""
    if engine not in ENGINES:
        raise JobError(f"--engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    spec = parse_transform(transform, transform_script)
    s3 = s3 or s3_client()
    if spec["kind"] == "none":
        if tables:
            manifest = load_manifest(s3, manifest_uri)
            outputs = parse_tables(tables, manifest, spec)
            if len(outputs) != 1:
                raise JobError("without a transform the batch is one table; --tables lists "
                               f"{', '.join(t.name for t in outputs)}")
        return run_python(manifest_uri, s3) if engine == "python" else run_spark(manifest_uri, s3, spark)
    manifest = load_manifest(s3, manifest_uri)
    outputs = parse_tables(tables, manifest, spec)
    if engine == "python":
        return run_python_transform(manifest_uri, s3, manifest, spec, outputs)
    return run_spark(manifest_uri, s3, spark, transform=spec, tables=outputs)


def main(argv: Optional[Sequence[str]] = None) -> int:
    arguments = parse_arguments(sys.argv[1:] if argv is None else argv)
    started = time.monotonic()
    result = run(arguments.engine, arguments.manifest, transform=arguments.transform, tables=arguments.tables,
                 transform_script=arguments.transform_script)
    print(json.dumps({"batch_id": result["batch_id"], "engine": arguments.engine, "rows": result["rows"],
                      "files": len(result["outputs"]), "seconds": round(time.monotonic() - started, 3)}))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except JobError as error:
        if on_glue():
            raise  # Glue shows the exception as the run's ErrorMessage
        print(f"heavy transform failed: {error}", file=sys.stderr)
        sys.exit(1)
