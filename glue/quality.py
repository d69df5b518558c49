"""Stage-B data quality: the manifest's rules on the batch's output, evaluated by cuallee.

Arguments (as Glue passes them): `--engine python|spark --manifest s3://.../manifest.json` [`--now ISO`].
The batch's output is what heavy_transform.py wrote (its `result.json` next to the manifest lists the
Parquet files and their hive partition values, added back as string columns). cuallee evaluates the rules
on DuckDB (engine python) or on PySpark (engine spark):

  completeness   {column, threshold=1.0}        cuallee is_complete(pct=threshold)        observed: share non-null
  uniqueness     {column, threshold=1.0}        cuallee is_unique(pct=threshold)          observed: distinct / rows
  range          {column, min?, max?, threshold} is_between / is_greater_or_equal_than /
                                                is_less_or_equal_than (numeric columns)   observed: share in range
  allowed_values {column, values, threshold}    cuallee is_contained_in                   observed: share allowed
  pattern        {column, regex, threshold}     cuallee has_pattern                        observed: share matching
  row_count      {min?, max?}                   the row count as a column, then is_between / ..._than
                                                                                          observed: rows
  freshness      {column, max_age "24h"/"7d"}   the latest timestamp (engine max) as a column, then
                                                is_greater_or_equal_than(now - max_age)   observed: age in hours
In range, allowed_values and pattern a null value is a violation: the engines disagree on how a
predicate over null counts, so nulls are first replaced by a value that fails the rule (min - 1, a value
not allowed, ''). Column names are normalised like the transform's ("Customer ID" -> customer_id);
`a.b` reaches a struct field. A rule whose column is missing fails (severity decides what that means).

Results: one item in the quality table (id "<team>/<dataset>", run_id "<iso time>#<batch id>", batch_id,
created_at, status PASS|WARN|FAIL, rows, rules [...]), Parquet at
`<quality_output>/batch_id=<batch_id>/results.parquet`, and `quality.json` next to the manifest. The job
then fails ("quality rule(s) failed: completeness(id) 0.93 < 1.0, ...") when a `fail` rule failed;
failed `warn` rules only make the status WARN. Stand-alone like every Glue script (Glue runs one file).
"""
from __future__ import annotations

import argparse
import io
import json
import math
import os
import re
import shutil
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Dict, List, Optional, Sequence, Tuple

ENGINES = ("python", "spark")
RULES = ("completeness", "uniqueness", "range", "allowed_values", "pattern", "row_count", "freshness")
COLUMN_RULES = ("completeness", "uniqueness", "range", "allowed_values", "pattern", "freshness")
SEVERITIES = ("warn", "fail")
NUMERIC = ("bigint", "double", "int", "float", "smallint", "tinyint")
NULL_TEXT = "<sdlf:null>"  # stands in for null in allowed_values on strings (values are never this)
_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_AGE_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class JobError(Exception):
    """A failure the job reports as its error message."""


# --- S3 (same helpers as heavy_transform.py: Glue runs each script alone) ------------------------
def parse_s3_uri(uri: str) -> Tuple[str, str]:
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        raise JobError(f"not an s3:// location: {uri!r}")
    bucket, _, key = uri[5:].partition("/")
    if not bucket:
        raise JobError(f"not an s3://bucket/key location: {uri!r}")
    return bucket, key


def _describe(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and response.get("Error"):
        error = response["Error"]
        return f"{error.get('Code', 'error')}: {error.get('Message') or exc}"
    return f"{type(exc).__name__}: {exc}"


def read_object(s3: Any, uri: str, what: str) -> bytes:
    bucket, key = parse_s3_uri(uri)
    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except Exception as exc:
        raise JobError(f"cannot read {what} {uri}: {_describe(exc)}") from None


def write_object(s3: Any, uri: str, body: bytes, content_type: str) -> None:
    bucket, key = parse_s3_uri(uri)
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
    except Exception as exc:
        raise JobError(f"cannot write {uri}: {_describe(exc)}") from None


def read_json(s3: Any, uri: str, what: str) -> Dict[str, Any]:
    try:
        data = json.loads(read_object(s3, uri, what))
    except ValueError as exc:
        raise JobError(f"{what} {uri} is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise JobError(f"{what} {uri} must be a JSON object")
    return data


def sibling_uri(manifest_uri: str, name: str) -> str:
    bucket, key = parse_s3_uri(manifest_uri)
    folder = key.rsplit("/", 1)[0] if "/" in key else ""
    return f"s3://{bucket}/{folder}/{name}" if folder else f"s3://{bucket}/{name}"


def normalise_name(name: str) -> str:
    return re.sub(r"[^a-z0-9_]", "_", str(name).lower()) or "_"


def on_glue() -> bool:
    return any(a.startswith(("--JOB_RUN_ID", "--JOB_ID")) for a in sys.argv) and not os.environ.get("AWS_ENDPOINT_URL")


# --- rules ---------------------------------------------------------------------------------------
class Rule:
    """One manifest rule, checked; `alias` is its column in the evaluation frame."""

    def __init__(self, index: int, spec: Any):
        where = f"quality[{index}]"
        if not isinstance(spec, dict):
            raise JobError(f"{where} must be an object, got {spec!r}")
        self.index, self.alias, self.spec = index, f"r{index}", spec
        self.name = spec.get("rule")
        if self.name not in RULES:
            raise JobError(f"{where}: rule must be one of {', '.join(RULES)}, got {self.name!r}")
        where = f"{where} {self.name}"
        self.severity = spec.get("severity", "fail")
        if self.severity not in SEVERITIES:
            raise JobError(f"{where}: severity must be warn or fail, got {self.severity!r}")
        self.column: Optional[str] = None
        if self.name in COLUMN_RULES:
            if not isinstance(spec.get("column"), str) or not spec["column"]:
                raise JobError(f"{where}: 'column' is required")
            self.column = ".".join(normalise_name(part) for part in spec["column"].split("."))
        self.threshold = _number(spec.get("threshold", 1.0), f"{where}: threshold")
        if not 0 < self.threshold <= 1:
            raise JobError(f"{where}: threshold must be in (0, 1], got {self.threshold}")
        self.min = _number(spec["min"], f"{where}: min") if spec.get("min") is not None else None
        self.max = _number(spec["max"], f"{where}: max") if spec.get("max") is not None else None
        if self.name in ("range", "row_count") and self.min is None and self.max is None:
            raise JobError(f"{where}: needs 'min', 'max' or both")
        if self.name == "allowed_values":
            values = spec.get("values")
            if not isinstance(values, list) or not values or len({type(v) for v in values}) != 1 \
                    or not isinstance(values[0], (str, int, float)) or isinstance(values[0], bool):
                raise JobError(f"{where}: 'values' must be a non-empty list of strings or of numbers")
            if any(isinstance(v, str) and "'" in v for v in values):
                raise JobError(f"{where}: values with a quote (') are not supported")
            self.values = tuple(values)
        if self.name == "pattern":
            if not isinstance(spec.get("regex"), str) or not spec["regex"] or "'" in spec["regex"]:
                raise JobError(f"{where}: 'regex' must be a non-empty pattern without a quote (')")
            self.regex = spec["regex"]
        if self.name == "freshness":
            self.max_age = spec.get("max_age")
            self.max_age_seconds = parse_age(self.max_age, f"{where}: max_age")

    @property
    def label(self) -> str:
        return f"{self.name}({self.column})" if self.column else self.name

    def threshold_value(self) -> Any:
        if self.name == "row_count":
            return {"min": self.min, "max": self.max}
        if self.name == "freshness":
            return self.max_age
        if self.name == "range":
            return {"min": self.min, "max": self.max, "threshold": self.threshold}
        return self.threshold


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise JobError(f"{what} must be a number, got {value!r}")
    return value


def parse_age(value: Any, what: str) -> float:
    match = _AGE.match(str(value)) if isinstance(value, (str, int, float)) else None
    if not match:
        raise JobError(f"{what} must look like 30m, 24h or 7d, got {value!r}")
    return float(match.group(1)) * _AGE_SECONDS[match.group(2)]


def _sentinel(rule: Rule) -> Any:
    """A value that fails the rule, standing in for null (see the module docstring)."""
    if rule.name == "range":
        return (rule.min - 1) if rule.min is not None else (rule.max + 1)
    if rule.name == "allowed_values":
        return NULL_TEXT if isinstance(rule.values[0], str) else max(rule.values) + 1
    return ""


def add_cuallee_rule(check: Any, rule: Rule, cutoff: float) -> None:
    alias = rule.alias
    if rule.name == "completeness":
        check.is_complete(alias, pct=rule.threshold)
    elif rule.name == "uniqueness":
        check.is_unique(alias, pct=rule.threshold)
    elif rule.name == "allowed_values":
        check.is_contained_in(alias, rule.values, pct=rule.threshold)
    elif rule.name == "pattern":
        check.has_pattern(alias, rule.regex, pct=rule.threshold)
    elif rule.name == "freshness":
        check.is_greater_or_equal_than(alias, cutoff)
    else:  # range, row_count
        pct = rule.threshold if rule.name == "range" else 1.0
        if rule.min is not None and rule.max is not None:
            check.is_between(alias, (rule.min, rule.max), pct=pct)
        elif rule.min is not None:
            check.is_greater_or_equal_than(alias, rule.min, pct=pct)
        else:
            check.is_less_or_equal_than(alias, rule.max, pct=pct)


# --- evaluation ----------------------------------------------------------------------------------
class Batch:
    """The batch's output as the transform described it."""

    def __init__(self, manifest: Dict[str, Any], result: Dict[str, Any]):
        self.manifest, self.result = manifest, result
        self.outputs = result.get("outputs") or []
        self.rows = int(result.get("rows") or 0)
        self.types = {c["name"]: c["type"] for c in result.get("columns", [])}
        self.types.update({c["name"]: c["type"] for c in result.get("partition_keys", [])})
        self.partition_columns = [c["name"] for c in result.get("partition_keys", [])]


def problem_of(rule: Rule, batch: Batch) -> Optional[str]:
    """Why the rule cannot run on this output (it then fails), or None."""
    if rule.column is None:
        return None
    top = rule.column.split(".")[0]
    if top not in batch.types:
        return f"{rule.label}: no column {rule.column} in the output (columns: {', '.join(batch.types) or 'none'})"
    kind = batch.types[top] if "." not in rule.column else None
    if rule.name == "range" and kind is not None and kind not in NUMERIC:
        return f"{rule.label}: range needs a numeric column, {rule.column} is {kind}"
    if rule.name == "pattern" and kind is not None and kind != "string":
        return f"{rule.label}: pattern needs a string column, {rule.column} is {kind}"
    return None


def outcome(rule: Rule, batch_rows: int, pass_rate: Optional[float], latest: Optional[float],
            now: datetime, problem: Optional[str] = None) -> Dict[str, Any]:
    """The stored result of one rule (observed value, threshold, status, message)."""
    if pass_rate is None or (isinstance(pass_rate, float) and math.isnan(pass_rate)):
        pass_rate = 0.0
    status = "PASS" if pass_rate >= (rule.threshold if rule.name in ("completeness", "uniqueness", "range",
                                                                      "allowed_values", "pattern") else 1.0) else "FAIL"
    observed: Any = round(float(pass_rate), 4)
    message = f"{rule.label} {observed} < {rule.threshold}"
    if rule.name == "row_count":
        observed = batch_rows
        message = f"row_count {batch_rows} < {rule.min}" if rule.min is not None and batch_rows < rule.min \
            else f"row_count {batch_rows} > {rule.max}"
    elif rule.name == "freshness":
        if latest is None or math.isinf(latest):
            observed, message = None, f"{rule.label} has no timestamp values"
        else:
            observed = round((now.timestamp() - latest) / 3600.0, 2)
            message = f"{rule.label} latest value is {observed}h old > {rule.max_age}"
    if problem:
        status, observed, message = "FAIL", None, problem
    return {
        "rule": rule.name, "column": rule.column, "severity": rule.severity, "status": status,
        "observed": observed, "threshold": rule.threshold_value(), "pass_rate": round(float(pass_rate), 6),
        "rows": batch_rows, "message": message if status == "FAIL" else None,
    }


def evaluate(rules: List[Rule], batch: Batch, engine: str, now: datetime, s3: Any, spark: Any = None) -> List[Dict[str, Any]]:
    problems = {rule.index: problem_of(rule, batch) for rule in rules}
    runnable = [r for r in rules if problems[r.index] is None]
    rates: Dict[int, Optional[float]] = {}
    latest: Dict[int, Optional[float]] = {}
    if runnable and batch.rows == 0:
        # Nothing to scan: column rules hold vacuously (as cuallee reports on Spark), row_count sees 0.
        rates = {r.index: (1.0 if r.name not in ("row_count", "freshness") else 0.0) for r in runnable}
        for rule in runnable:
            if rule.name == "row_count":
                rates[rule.index] = 1.0 if (rule.min is None or rule.min <= 0) and (rule.max is None or rule.max >= 0) else 0.0
            latest[rule.index] = None
    elif runnable:
        scratch = tempfile.mkdtemp(prefix="sdlf-quality-")
        try:
            if engine == "python":
                rates, latest = _evaluate_duckdb(runnable, batch, now, s3, scratch)
            else:
                rates, latest = _evaluate_spark(runnable, batch, now, s3, scratch, spark)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return [outcome(r, batch.rows, rates.get(r.index), latest.get(r.index), now, problems[r.index]) for r in rules]


def _cutoff(rule: Rule, now: datetime) -> float:
    return (now - timedelta(seconds=rule.max_age_seconds)).timestamp() if rule.name == "freshness" else 0.0


def _download(s3: Any, uri: str, path: str) -> str:
    bucket, key = parse_s3_uri(uri)
    try:
        s3.download_file(bucket, key, path)
    except Exception as exc:
        raise JobError(f"cannot read output {uri}: {_describe(exc)}") from None
    return path


def _sql_name(path: str) -> str:
    return ".".join(f'"{part}"' for part in path.split("."))


def _sql_literal(value: Any) -> str:
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return repr(float(value)) if isinstance(value, float) else str(value)


def _evaluate_duckdb(rules: List[Rule], batch: Batch, now: datetime, s3: Any, scratch: str):
    import duckdb
    import pyarrow as pa
    import pyarrow.parquet as pq
    from cuallee import Check

    tables = []
    for index, output in enumerate(batch.outputs):
        table = pq.read_table(_download(s3, output["uri"], os.path.join(scratch, f"{index}.parquet")))
        for name in batch.partition_columns:
            value = (output.get("partition") or {}).get(name)
            table = table.append_column(name, pa.array([value] * table.num_rows, pa.string()))
        tables.append(table)
    data = pa.concat_tables(tables, promote_options="default")
    connection = duckdb.connect()
    connection.register("sdlf_batch", data)
    latest: Dict[int, Optional[float]] = {}
    for rule in rules:
        if rule.name == "freshness":
            column = _sql_name(rule.column)
            kind = batch.types.get(rule.column)
            value = f"to_timestamp({column})" if kind in NUMERIC else f"TRY_CAST({column} AS TIMESTAMPTZ)"
            latest[rule.index] = connection.execute(f"SELECT epoch(max({value})) FROM sdlf_batch").fetchone()[0]
    selects = []
    for rule in rules:
        if rule.name == "row_count":
            expression = str(batch.rows)
        elif rule.name == "freshness":
            value = latest[rule.index]
            expression = f"CAST({_sql_literal(float(value))} AS DOUBLE)" if value is not None else "CAST('-inf' AS DOUBLE)"
        elif rule.name in ("range", "allowed_values", "pattern"):
            expression = f"COALESCE({_sql_name(rule.column)}, {_sql_literal(_sentinel(rule))})"
        else:
            expression = _sql_name(rule.column)
        selects.append(f"{expression} AS {rule.alias}")
    connection.execute(f"CREATE TABLE sdlf_quality AS SELECT {', '.join(selects)} FROM sdlf_batch")
    check = Check(0, "sdlf-quality", table_name="sdlf_quality")
    for rule in rules:
        add_cuallee_rule(check, rule, _cutoff(rule, now))
    summary = check.validate(connection)
    rates = {int(str(row["column"])[1:]): float(row["pass_rate"]) for row in summary.to_dict(orient="records")}
    return rates, latest


def _evaluate_spark(rules: List[Rule], batch: Batch, now: datetime, s3: Any, scratch: str, spark: Any):
    from cuallee import Check
    from pyspark.sql import functions as F

    glue = on_glue()
    spark = spark or _spark_session(glue)
    frames = []
    for index, output in enumerate(batch.outputs):
        path = output["uri"] if glue else _download(s3, output["uri"], os.path.join(scratch, f"{index}.parquet"))
        frame = spark.read.parquet(path)
        for name in batch.partition_columns:
            frame = frame.withColumn(name, F.lit((output.get("partition") or {}).get(name)).cast("string"))
        frames.append(frame)
    data = frames[0]
    for frame in frames[1:]:
        data = data.unionByName(frame, allowMissingColumns=True)
    latest: Dict[int, Optional[float]] = {}
    for rule in rules:
        if rule.name == "freshness":
            column = F.col(rule.column)
            value = column.cast("timestamp") if batch.types.get(rule.column) in NUMERIC else F.to_timestamp(column)
            latest[rule.index] = data.select(F.max(value).cast("double")).first()[0]
    columns = []
    for rule in rules:
        if rule.name == "row_count":
            expression = F.lit(batch.rows)
        elif rule.name == "freshness":
            value = latest[rule.index]
            expression = F.lit(float(value) if value is not None else float("-inf"))
        elif rule.name in ("range", "allowed_values", "pattern"):
            expression = F.coalesce(F.col(rule.column), F.lit(_sentinel(rule)))
        else:
            expression = F.col(rule.column)
        columns.append(expression.alias(rule.alias))
    check = Check(0, "sdlf-quality")
    for rule in rules:
        add_cuallee_rule(check, rule, _cutoff(rule, now))
    summary = check.validate(data.select(*columns))
    rates = {int(row["column"][1:]): float(row["pass_rate"]) for row in summary.collect()}
    return rates, latest


def _spark_session(glue: bool) -> Any:
    from pyspark.sql import SparkSession

    if glue:
        return SparkSession.builder.getOrCreate()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    return (SparkSession.builder.master("local[2]").appName("sdlf-quality")
            .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.session.timeZone", "UTC").config("spark.sql.shuffle.partitions", "4")
            .getOrCreate())


# --- results -------------------------------------------------------------------------------------
def overall_status(results: Sequence[Dict[str, Any]]) -> str:
    failed = {r["severity"] for r in results if r["status"] == "FAIL"}
    return "FAIL" if "fail" in failed else "WARN" if "warn" in failed else "PASS"


def store(s3: Any, manifest_uri: str, manifest: Dict[str, Any], report: Dict[str, Any], dynamodb: Any = None) -> None:
    import boto3
    import pyarrow as pa
    import pyarrow.parquet as pq

    table_name = manifest.get("quality_table")
    if table_name:
        item = json.loads(json.dumps({k: v for k, v in report.items() if k != "engine"}), parse_float=Decimal)
        item["id"] = f"{manifest.get('team')}/{manifest.get('dataset')}"
        try:
            (dynamodb or boto3.resource("dynamodb")).Table(table_name).put_item(Item=item)
        except Exception as exc:
            raise JobError(f"cannot store the quality results in table {table_name}: {_describe(exc)}") from None
    output = manifest.get("quality_output")
    if output:
        schema = pa.schema([("run_id", pa.string()), ("team", pa.string()), ("dataset", pa.string()),
                            ("created_at", pa.string()), ("rule", pa.string()), ("column", pa.string()),
                            ("severity", pa.string()), ("status", pa.string()), ("observed", pa.float64()),
                            ("threshold", pa.string()), ("pass_rate", pa.float64()), ("rows", pa.int64()),
                            ("message", pa.string()), ("table", pa.string())])
        rows = [{
            "run_id": report["run_id"], "team": manifest.get("team"), "dataset": manifest.get("dataset"),
            "created_at": report["created_at"], "rule": r["rule"], "column": r["column"], "severity": r["severity"],
            "status": r["status"], "observed": None if r["observed"] is None else float(r["observed"]),
            "threshold": json.dumps(r["threshold"]), "pass_rate": r["pass_rate"], "rows": r["rows"],
            "message": r["message"], "table": r.get("table"),
        } for r in report["rules"]]
        buffer = io.BytesIO()
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), buffer, compression="snappy")
        base = output if output.endswith("/") else output + "/"
        write_object(s3, f"{base}batch_id={report['batch_id']}/results.parquet", buffer.getvalue(),
                     "application/vnd.apache.parquet")
    write_object(s3, sibling_uri(manifest_uri, "quality.json"),
                 json.dumps(report, indent=2, sort_keys=True).encode("utf-8"), "application/json")


def table_batches(manifest: Dict[str, Any], manifest_uri: str, result: Dict[str, Any],
                  tables: Optional[str]) -> List[Tuple[str, List[Dict[str, Any]], "Batch"]]:
    """(table, its rules, its output) for each output table. Rules come from --tables
    ([{"name", "quality"}], one entry per table) or, without it, from the manifest for the one table."""
    default = str(manifest.get("table") or "")
    if tables:
        try:
            entries = json.loads(tables)
        except ValueError as exc:
            raise JobError(f"--tables is not JSON: {exc}") from None
        if not isinstance(entries, list) or not all(isinstance(e, dict) and isinstance(e.get("name"), str)
                                                    and isinstance(e.get("quality", []), list) for e in entries):
            raise JobError(f"--tables must be a list of {{\"name\", \"quality\": [rules]}}, got {tables!r}")
    else:
        specs = manifest.get("quality") or []
        if not isinstance(specs, list):
            raise JobError(f"manifest {manifest_uri}: 'quality' must be a list of rules")
        entries = [{"name": default, "quality": specs}]
    described = {t.get("name"): t for t in result.get("tables") or []}
    out = []
    for entry in entries:
        name = entry["name"]
        if described:
            if name not in described:
                raise JobError(f"job result has no table {name!r} (tables: {', '.join(described)})")
            table = {**described[name], "outputs": [o for o in result.get("outputs", []) if o.get("table") == name]}
        else:  # the batch as it is: one table
            table = result
        out.append((name, list(entry.get("quality") or []), Batch(manifest, table)))
    return out


def run(engine: str, manifest_uri: str, s3: Any = None, spark: Any = None, now: Optional[datetime] = None,
        dynamodb: Any = None, tables: Optional[str] = None) -> Dict[str, Any]:
    """Evaluate, store, and raise JobError when a `fail` rule failed (after storing everything)."""
    if engine not in ENGINES:
        raise JobError(f"--engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if s3 is None:
        import boto3

        s3 = boto3.client("s3")
    now = now or datetime.now(timezone.utc)
    manifest = read_json(s3, manifest_uri, "manifest")
    result = read_json(s3, sibling_uri(manifest_uri, "result.json"), "job result")
    results: List[Dict[str, Any]] = []
    batches = table_batches(manifest, manifest_uri, result, tables)
    for name, specs, batch in batches:
        rules = [Rule(index, spec) for index, spec in enumerate(specs)]
        for outcome_ in (evaluate(rules, batch, engine, now, s3, spark) if rules else []):
            if len(batches) > 1 and outcome_["message"]:
                outcome_["message"] = f"{name}: {outcome_['message']}"
            results.append({**outcome_, "table": name})
    batch = Batch(manifest, result)
    created_at = now.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    batch_id = str(manifest.get("batch_id"))
    report = {
        "batch_id": batch_id, "run_id": f"{created_at}#{batch_id}", "created_at": created_at,
        "status": overall_status(results), "rows": batch.rows, "engine": engine, "rules": results,
    }
    store(s3, manifest_uri, manifest, report, dynamodb)
    failed = [r["message"] for r in results if r["status"] == "FAIL" and r["severity"] == "fail"]
    if failed:
        raise JobError(f"quality rule(s) failed: {', '.join(failed)}")
    return report


def parse_now(text: Optional[str]) -> Optional[datetime]:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise JobError(f"--now must be an ISO-8601 time, got {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="sdlf stage-B data quality")
    parser.add_argument("--engine", required=True, choices=ENGINES)
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--now", default=None, help="evaluate freshness as of this ISO time (replays, tests)")
    parser.add_argument("--tables", default=None, help='[{"name", "quality": [rules]}]: rules per output table')
    arguments, _ = parser.parse_known_args(list(sys.argv[1:] if argv is None else argv))
    report = run(arguments.engine, arguments.manifest, now=parse_now(arguments.now), tables=arguments.tables)
    print(json.dumps({"batch_id": report["batch_id"], "status": report["status"],
                      "rules": [(r["rule"], r["column"], r["status"], r["observed"]) for r in report["rules"]]}))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except JobError as error:
        if on_glue():
            raise
        print(f"quality check failed: {error}", file=sys.stderr)
        sys.exit(1)
