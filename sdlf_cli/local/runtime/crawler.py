"""Glue crawlers that really crawl on the emulator (Parquet over S3 targets).

moto's `StartCrawler` records a crawl that stays RUNNING forever and creates no table. Here the crawl
is pinned to RUNNING while a worker thread, for each S3 target of the crawler:
- lists the objects below the target path (skipping `_*`/`.*` files and folders, like Hive and Glue, and
  the target's Exclusions), reads each Parquet footer with two ranged GETs and merges the schemas
  (pyarrow, permissive promotion);
- takes `k=v/` folders between the target and the files as hive partition keys (type string);
- creates the table (named after the target folder's last segment, normalised, with the crawler's
  TablePrefix) in the crawler's database, or updates it when its schema changed and the
  SchemaChangePolicy says UPDATE_IN_DATABASE; creates the partitions that are missing.
Then the crawl ends: the crawler is READY again with LastCrawl SUCCEEDED (or FAILED with the message).
What happened goes to CloudWatch Logs `/aws-glue/crawlers`, log stream = crawler name.
"""
from __future__ import annotations

import fnmatch
import io
import logging
import re
import struct
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from sdlf_cli.local.context import EmulatorContext
from sdlf_cli.local.iam.credentials import ServiceClients

LOG = logging.getLogger(__name__)

LOG_GROUP = "/aws-glue/crawlers"
PARQUET_MAGIC = b"PAR1"
PARQUET_INPUT_FORMAT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
PARQUET_OUTPUT_FORMAT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
PARTITION_BATCH = 100  # BatchCreatePartition takes at most 100 partitions


class CrawlError(Exception):
    """A crawl that cannot complete; the message becomes LastCrawl.ErrorMessage."""


# --- names and types -----------------------------------------------------------------------------
def normalise_name(name: str) -> str:
    """Glue/Athena identifier: lowercase, anything but [a-z0-9_] -> '_'."""
    return re.sub(r"[^a-z0-9_]", "_", name.lower())


def hive_type(arrow_type: Any) -> str:
    """The Glue/Hive type name of a pyarrow type (what a Glue crawler writes for Parquet)."""
    import pyarrow as pa
    import pyarrow.types as t

    if t.is_dictionary(arrow_type):
        return hive_type(arrow_type.value_type)
    if t.is_boolean(arrow_type):
        return "boolean"
    if t.is_int8(arrow_type):
        return "tinyint"
    if t.is_int16(arrow_type) or t.is_uint8(arrow_type):
        return "smallint"
    if t.is_int32(arrow_type) or t.is_uint16(arrow_type):
        return "int"
    if t.is_integer(arrow_type):
        return "bigint"
    if t.is_float16(arrow_type) or t.is_float32(arrow_type):
        return "float"
    if t.is_float64(arrow_type):
        return "double"
    if t.is_decimal(arrow_type):
        return f"decimal({arrow_type.precision},{arrow_type.scale})"
    if t.is_string(arrow_type) or t.is_large_string(arrow_type) or t.is_null(arrow_type):
        return "string"
    if t.is_binary(arrow_type) or t.is_large_binary(arrow_type) or t.is_fixed_size_binary(arrow_type):
        return "binary"
    if t.is_date(arrow_type):
        return "date"
    if t.is_timestamp(arrow_type):
        return "timestamp"
    if t.is_list(arrow_type) or t.is_large_list(arrow_type) or t.is_fixed_size_list(arrow_type):
        return f"array<{hive_type(arrow_type.value_type)}>"
    if t.is_map(arrow_type):
        return f"map<{hive_type(arrow_type.key_type)},{hive_type(arrow_type.item_type)}>"
    if t.is_struct(arrow_type):
        fields = ",".join(f"{arrow_type.field(i).name}:{hive_type(arrow_type.field(i).type)}"
                          for i in range(arrow_type.num_fields))
        return f"struct<{fields}>"
    if isinstance(arrow_type, pa.DataType):  # time, duration, interval: Hive has none of them
        return "string"
    raise TypeError(f"not a pyarrow type: {arrow_type!r}")


# --- reading S3 ---------------------------------------------------------------------------------------
def split_s3_path(path: str) -> tuple[str, str]:
    """s3://bucket/prefix -> (bucket, 'prefix/') (the prefix always names a folder)."""
    if not path.startswith("s3://"):
        raise CrawlError(f"S3 target path {path!r} does not start with s3://")
    bucket, _, prefix = path[5:].partition("/")
    if not bucket:
        raise CrawlError(f"S3 target path {path!r} has no bucket")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return bucket, prefix


def read_parquet_schema(s3: Any, bucket: str, key: str) -> tuple[Any, int] | None:
    """(schema, rows) from the footer only, or None when the object is not Parquet."""
    import pyarrow.parquet as pq

    tail = s3.get_object(Bucket=bucket, Key=key, Range="bytes=-8")["Body"].read()
    if len(tail) < 8 or tail[-4:] != PARQUET_MAGIC:
        return None
    footer_length = struct.unpack("<I", tail[:4])[0]
    footer = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes=-{footer_length + 8}")["Body"].read()
    # The schema needs only the footer; the leading magic makes it a well-formed (data-less) file.
    metadata = pq.read_metadata(io.BytesIO(PARQUET_MAGIC + footer))
    return metadata.schema.to_arrow_schema(), metadata.num_rows


@dataclass
class DataFile:
    key: str
    partition: tuple[tuple[str, str], ...]  # ((key, value), ...) from the k=v folders, outermost first
    folder: str  # the file's folder (prefix ending in '/')


def _excluded(relative: str, exclusions: list[str]) -> bool:
    parts = relative.split("/")
    if any(p.startswith(("_", ".")) for p in parts):
        return True
    return any(fnmatch.fnmatch(relative, pattern) for pattern in exclusions)


def list_data_files(s3: Any, bucket: str, prefix: str, exclusions: list[str]) -> tuple[list[DataFile], list[str]]:
    """Files below the prefix, with their partition values; plus the keys skipped (not in a k=v layout)."""
    files, odd = [], []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            relative = obj["Key"][len(prefix):]
            if not relative or relative.endswith("/") or obj.get("Size", 0) == 0:
                continue
            if _excluded(relative, exclusions):
                continue
            folders = relative.split("/")[:-1]
            if not all("=" in f for f in folders):
                odd.append(obj["Key"])
                continue
            partition = tuple(tuple(f.split("=", 1)) for f in folders)
            files.append(DataFile(obj["Key"], partition, obj["Key"].rsplit("/", 1)[0] + "/"))
    return files, odd


# --- one crawl ---------------------------------------------------------------------------------------
@dataclass
class TableCrawl:
    """What a crawl found below one S3 target."""

    name: str
    location: str
    columns: list[dict[str, str]]
    partition_keys: list[str]
    partitions: dict[tuple[str, ...], str] = field(default_factory=dict)  # values -> folder location
    files: int = 0
    rows: int = 0
    notes: list[str] = field(default_factory=list)


def merge_schemas(schemas: list[Any], notes: list[str]) -> Any:
    import pyarrow as pa

    try:
        return pa.unify_schemas(schemas, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        # Incompatible types for one column: keep the first type seen (Glue keeps the table's) and say so.
        notes.append(f"incompatible column types across files ({exc}); first type kept")
        fields: dict[str, Any] = {}
        for schema in schemas:
            for f in schema:
                fields.setdefault(f.name, f)
        return pa.schema(list(fields.values()))


def crawl_target(s3: Any, path: str, exclusions: list[str], table_prefix: str = "") -> TableCrawl | None:
    """Infers one table from the Parquet files below an S3 path; None when there are none."""
    bucket, prefix = split_s3_path(path)
    files, odd = list_data_files(s3, bucket, prefix, exclusions)
    notes = [f"skipped {len(odd)} object(s) outside a k=v folder layout, e.g. s3://{bucket}/{odd[0]}"] if odd else []
    layouts = Counter(tuple(k for k, _ in f.partition) for f in files)
    if len(layouts) > 1:
        keys, _ = layouts.most_common(1)[0]
        others = [f for f in files if tuple(k for k, _ in f.partition) != keys]
        notes.append(f"skipped {len(others)} file(s) with partition folders other than {list(keys)}, "
                     f"e.g. s3://{bucket}/{others[0].key}")
        files = [f for f in files if tuple(k for k, _ in f.partition) == keys]
    schemas, rows, parquet_files = [], 0, []
    for data_file in files:
        found = read_parquet_schema(s3, bucket, data_file.key)
        if found is None:
            notes.append(f"skipped s3://{bucket}/{data_file.key}: not a Parquet file")
            continue
        schemas.append(found[0])
        rows += found[1]
        parquet_files.append(data_file)
    if not parquet_files:
        return None
    partition_keys = [k for k, _ in parquet_files[0].partition]
    schema = merge_schemas(schemas, notes)
    columns = [{"Name": normalise_name(f.name), "Type": hive_type(f.type)} for f in schema
               if normalise_name(f.name) not in {normalise_name(k) for k in partition_keys}]
    folder = prefix.rstrip("/").rsplit("/", 1)[-1] if prefix else bucket
    crawl = TableCrawl(
        name=normalise_name(table_prefix + folder), location=f"s3://{bucket}/{prefix}", columns=columns,
        partition_keys=[normalise_name(k) for k in partition_keys], files=len(parquet_files), rows=rows, notes=notes,
    )
    for data_file in parquet_files:
        if data_file.partition:
            crawl.partitions[tuple(v for _, v in data_file.partition)] = f"s3://{bucket}/{data_file.folder}"
    return crawl


def _storage_descriptor(location: str, columns: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "Columns": columns,
        "Location": location,
        "InputFormat": PARQUET_INPUT_FORMAT,
        "OutputFormat": PARQUET_OUTPUT_FORMAT,
        "Compressed": False,
        "NumberOfBuckets": -1,
        "SerdeInfo": {"SerializationLibrary": PARQUET_SERDE, "Parameters": {"serialization.format": "1"}},
        "StoredAsSubDirectories": False,
        "Parameters": {"classification": "parquet", "typeOfData": "file"},
    }


def table_input(crawl: TableCrawl, crawler_name: str) -> dict[str, Any]:
    return {
        "Name": crawl.name,
        "TableType": "EXTERNAL_TABLE",
        "StorageDescriptor": _storage_descriptor(crawl.location, crawl.columns),
        "PartitionKeys": [{"Name": k, "Type": "string"} for k in crawl.partition_keys],
        "Parameters": {
            "classification": "parquet", "typeOfData": "file", "compressionType": "none",
            "UPDATED_BY_CRAWLER": crawler_name, "CrawlerSchemaSerializerVersion": "1.0",
            "objectCount": str(crawl.files), "recordCount": str(crawl.rows),
        },
    }


def _shape(table: dict[str, Any]) -> tuple:
    sd = table.get("StorageDescriptor") or {}
    return ([(c["Name"], c["Type"]) for c in sd.get("Columns", [])],
            [(k["Name"], k.get("Type")) for k in table.get("PartitionKeys", [])], sd.get("Location"))


def apply_crawl(glue: Any, database: str, crawl: TableCrawl, crawler_name: str, update_behavior: str) -> list[str]:
    """Creates/updates the table and its missing partitions; returns log lines."""
    lines = [*crawl.notes]
    wanted = table_input(crawl, crawler_name)
    try:
        existing = glue.get_table(DatabaseName=database, Name=crawl.name)["Table"]
    except glue.exceptions.EntityNotFoundException:
        existing = None
    if existing is None:
        glue.create_table(DatabaseName=database, TableInput=wanted)
        lines.append(f"created table {database}.{crawl.name} ({len(crawl.columns)} columns, "
                     f"partition keys {crawl.partition_keys})")
    elif _shape(existing) != _shape(wanted):
        if update_behavior == "LOG":
            lines.append(f"schema of {database}.{crawl.name} changed; not updated (SchemaChangePolicy LOG)")
        else:
            glue.update_table(DatabaseName=database, TableInput=wanted)
            lines.append(f"updated table {database}.{crawl.name} ({len(crawl.columns)} columns)")
    else:
        lines.append(f"table {database}.{crawl.name} unchanged")
    if crawl.partitions:
        known = set()
        for page in glue.get_paginator("get_partitions").paginate(DatabaseName=database, TableName=crawl.name):
            known.update(tuple(p["Values"]) for p in page["Partitions"])
        columns = wanted["StorageDescriptor"]["Columns"] if existing is None or update_behavior != "LOG" else \
            existing["StorageDescriptor"]["Columns"]
        missing = [{"Values": list(values), "StorageDescriptor": _storage_descriptor(location, columns),
                    "Parameters": {"classification": "parquet"}}
                   for values, location in sorted(crawl.partitions.items()) if values not in known]
        for start in range(0, len(missing), PARTITION_BATCH):
            response = glue.batch_create_partition(DatabaseName=database, TableName=crawl.name,
                                                   PartitionInputList=missing[start:start + PARTITION_BATCH])
            errors = [e for e in response.get("Errors", [])
                      if e.get("ErrorDetail", {}).get("ErrorCode") != "AlreadyExistsException"]
            if errors:
                raise CrawlError(f"could not add partitions to {database}.{crawl.name}: {errors[0]}")
        if missing:
            lines.append(f"added {len(missing)} partition(s) to {database}.{crawl.name}")
    return lines


def run_crawl(s3: Any, glue: Any, crawler: dict[str, Any]) -> list[str]:
    """Crawls every target of a crawler (GetCrawler's shape); raises CrawlError when it cannot."""
    name = crawler["Name"]
    database = crawler.get("DatabaseName")
    targets = crawler.get("Targets") or {}
    unsupported = sorted(k for k, v in targets.items() if v and k != "S3Targets")
    if unsupported:
        raise CrawlError(f"crawler {name}: the local emulator crawls only S3Targets, not {', '.join(unsupported)}")
    if not targets.get("S3Targets"):
        raise CrawlError(f"crawler {name} has no S3 targets")
    if not database:
        raise CrawlError(f"crawler {name} has no DatabaseName")
    try:
        glue.get_database(Name=database)
    except glue.exceptions.EntityNotFoundException:
        raise CrawlError(f"crawler {name}: database {database} does not exist") from None
    update_behavior = (crawler.get("SchemaChangePolicy") or {}).get("UpdateBehavior") or "UPDATE_IN_DATABASE"
    lines = []
    for target in targets["S3Targets"]:
        path = target.get("Path") or ""
        crawl = crawl_target(s3, path, list(target.get("Exclusions") or []), crawler.get("TablePrefix") or "")
        if crawl is None:
            lines.append(f"no Parquet files below {path}; no table")
            continue
        lines += apply_crawl(glue, database, crawl, name, update_behavior)
    return lines


# --- runner and moto patches --------------------------------------------------------------------
class CrawlerRunner:
    def __init__(self, ctx: EmulatorContext, max_workers: int = 2):
        self.ctx = ctx
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="sdlf-glue-crawler")
        self._closed = False
        self._service_clients = ServiceClients(ctx.endpoint_url, ctx.region)

    def _client(self, service: str, role: str | None = None, session: str = ""):
        """A client of the Glue service itself, or, with `role`, one acting as the crawler's role (which
        is what reads the S3 targets and writes the catalog on Glue)."""
        return self._service_clients.client(service, role, session)

    def submit(self, crawler: Any, crawl: Any) -> None:
        if self._closed:
            _end_crawl(crawl, "FAILED", "the emulator is stopping")
            return
        self._pool.submit(self._crawl_and_record, crawler, crawl)

    def _crawl_and_record(self, crawler: Any, crawl: Any) -> None:
        started = time.monotonic()
        try:
            role, session = crawler.role, f"crawler-{crawler.name}"
            lines = run_crawl(self._client("s3", role, session), self._client("glue", role, session),
                              crawler.as_dict())
            outcome, message = "SUCCEEDED", None
        except CrawlError as exc:
            lines, outcome, message = [], "FAILED", str(exc)
        except Exception as exc:  # a crawl must end, whatever happened
            LOG.exception("crawler %s failed", crawler.name)
            lines, outcome, message = [], "FAILED", f"{type(exc).__name__}: {exc}"
        if message:
            lines.append(f"ERROR {message}")
        lines.append(f"crawl {crawl.crawl_id} {outcome} in {time.monotonic() - started:.2f}s")
        try:
            self._write_logs(crawler.name, crawl.crawl_id, lines)
        except Exception:
            LOG.exception("could not write the logs of crawler %s", crawler.name)
        crawler.crawl_elapsed_time = int((time.monotonic() - started) * 1000)
        _end_crawl(crawl, outcome, message)

    def _write_logs(self, crawler_name: str, crawl_id: str, lines: list[str]) -> None:
        from sdlf_cli.local.runtime.glue_jobs import _put_log_text

        _put_log_text(self._client("logs"), LOG_GROUP, crawler_name, "\n".join(f"[{crawl_id}] {line}" for line in lines))

    def close(self) -> None:
        self._closed = True
        self._pool.shutdown(wait=False, cancel_futures=True)


def _end_crawl(crawl: Any, outcome: str, message: str | None) -> None:
    crawl.sdlf_outcome = outcome
    crawl.sdlf_error_message = message
    crawl.end_time = datetime.now(timezone.utc).replace(tzinfo=None)
    stopping = crawl.__dict__.get("sdlf_state") == "STOPPING"
    # moto's crawler is READY again once its last crawl is COMPLETED/STOPPED/FAILED.
    crawl.sdlf_state = "STOPPED" if stopping else ("COMPLETED" if outcome == "SUCCEEDED" else "FAILED")


_runner: dict[str, CrawlerRunner] = {}
_lock = threading.Lock()


def _start_crawler(original: Any) -> Any:
    def start_crawler(self: Any) -> None:
        with _lock:  # two StartCrawler calls at once: exactly one gets CrawlerRunningException
            original(self)
            runner = _runner.get("runner")
            if runner is None:
                return
            crawl = self.crawls[-1]
            crawl.sdlf_state = "RUNNING"
        runner.submit(self, crawl)

    return start_crawler


def _crawler_as_dict(original: Any) -> Any:
    def as_dict(self: Any) -> dict[str, Any]:
        data = original(self)
        finished = [c for c in self.crawls if c.__dict__.get("sdlf_outcome")]
        ours = [c for c in self.crawls if c.__dict__.get("sdlf_state")]
        if not ours:
            return data
        if finished:  # AWS's LastCrawl is the last finished crawl: SUCCEEDED | FAILED | CANCELLED
            last = finished[-1]
            status = "CANCELLED" if last.sdlf_state == "STOPPED" else last.sdlf_outcome
            data["LastCrawl"] = {"Status": status, "LogGroup": last.log_group, "LogStream": last.log_stream,
                                 "MessagePrefix": last.message_prefix, "StartTime": last.start_time}
            if last.sdlf_error_message:
                data["LastCrawl"]["ErrorMessage"] = last.sdlf_error_message
        else:
            data.pop("LastCrawl", None)
        return data

    return as_dict


def install(ctx: EmulatorContext) -> CrawlerRunner:
    from moto.glue.models import FakeCrawl, FakeCrawler

    from sdlf_cli.local.cfn import _patching
    from sdlf_cli.local.runtime.glue_jobs import _pinned_status_property

    runner = CrawlerRunner(ctx)
    _runner["runner"] = runner
    _patching.install(_patching.Patch("glue crawls: pinned state", FakeCrawl, "status",
                                      _pinned_status_property(FakeCrawl.status)))
    _patching.wrap(FakeCrawler, "start_crawler", "glue crawlers: crawl S3 for real", _start_crawler)
    _patching.wrap(FakeCrawler, "as_dict", "glue crawlers: last crawl outcome", _crawler_as_dict)
    return runner


def uninstall(runner: CrawlerRunner) -> None:
    if _runner.get("runner") is runner:
        _runner.pop("runner")
    runner.close()
