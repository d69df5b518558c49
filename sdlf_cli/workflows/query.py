"""`sdlf query`: SQL over the lake's Glue catalog — Athena on AWS, DuckDB over the emulator's Parquet.

On AWS the query runs in the team's Athena workgroup (`names.workgroup(team)`) or the lake's
(`names.workgroup("primary")`); both enforce their result location, so none is passed here.

On the emulator there is no Athena engine, so the same SQL runs on DuckDB: every `database.table`
reference (found by a small tokenizer that skips strings and comments; quoted names too) whose database
exists in the emulator's Glue catalog is resolved with GetTable, the Parquet files below its Location are
downloaded to a local cache (one copy per ETag, shared by the machine's processes), and a view `"database"."table"` over
`read_parquet([...], hive_partitioning=true)` makes the SQL run unchanged.
"""
from __future__ import annotations

import datetime as dt
import os
import re
import tempfile
import time
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Callable

from sdlf_cli.aws.athena import Athena
from sdlf_cli.aws.glue import GlueCatalog
from sdlf_cli.aws.storage import Storage
from sdlf_cli.config.model import LakeConfig
from sdlf_cli.errors import AwsError, SdlfError, UsageError
from sdlf_cli.lake import Lake

LAKE_WORKGROUP = "primary"


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    rows: list[tuple]
    engine: str  # "athena" | "duckdb"
    seconds: float
    query_id: str | None = None  # Athena's QueryExecutionId
    tables: list[str] = field(default_factory=list)  # "database.table" resolved for DuckDB
    scanned_bytes: int | None = None
    ok = True

    def to_dict(self) -> dict:
        return {"engine": self.engine, "columns": self.columns,
                "rows": [dict(zip(self.columns, row)) for row in self.rows], "seconds": round(self.seconds, 3)}


def check_query(cfg: LakeConfig, sql: str, team: str | None) -> None:
    if not sql or not sql.strip():
        raise UsageError("the query is empty")
    if team is not None and cfg.team(team) is None:
        known = ", ".join(t.name for t in cfg.teams) or "none"
        raise UsageError(f"unknown team {team!r} (teams of {cfg.names.prefix}: {known})")


def run_query(lake: Lake, sql: str, team: str | None = None, *, local: bool | None = None,
              sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
              cache_dir: Path | None = None, timeout_seconds: float = 1800.0) -> QueryResult:
    """Runs one SQL statement and returns its rows. `local` defaults to "the target is the emulator"."""
    cfg = lake.config
    check_query(cfg, sql, team)
    if local is None:
        local = lake.target.is_local
    started = clock()
    if local:
        columns, rows, tables = run_duckdb(lake.glue, lake.storage, sql, cache_dir or default_cache_dir())
        return QueryResult(columns, rows, "duckdb", clock() - started, tables=tables)
    workgroup = cfg.names.workgroup(team or LAKE_WORKGROUP)
    query_id, columns, rows, scanned = run_athena(lake.athena, sql, workgroup, sleep=sleep,
                                                  clock=clock, timeout_seconds=timeout_seconds)
    return QueryResult(columns, rows, "athena", clock() - started, query_id=query_id, scanned_bytes=scanned)


# --- Athena ------------------------------------------------------------------------------------------------
_INTEGER_TYPES = {"tinyint", "smallint", "integer", "int", "bigint"}
_FLOAT_TYPES = {"double", "float", "real"}


def athena_value(value: str | None, athena_type: str) -> Any:
    """Athena returns every value as text; give callers the Python value its column type says."""
    if value is None:
        return None
    kind = athena_type.lower()
    try:
        if kind in _INTEGER_TYPES:
            return int(value)
        if kind in _FLOAT_TYPES:
            return float(value)
        if kind == "decimal":
            return Decimal(value)
        if kind == "boolean":
            return value.lower() == "true"
        if kind == "date":
            return dt.date.fromisoformat(value)
        if kind.startswith("timestamp"):
            return dt.datetime.fromisoformat(value)
    except (ValueError, InvalidOperation):
        return value  # e.g. NaN/Infinity spellings or timestamp formats Python does not parse: keep the text
    return value


def run_athena(athena: Athena, sql: str, workgroup: str, *, sleep: Callable[[float], None] = time.sleep,
               clock: Callable[[], float] = time.monotonic, timeout_seconds: float = 1800.0,
               poll_seconds: float = 0.5) -> tuple[str, list[str], list[tuple], int | None]:
    """(query id, columns, rows, scanned bytes); a failed or cancelled query raises SdlfError with the reason."""
    try:
        query_id = athena.start(sql, workgroup)
    except AwsError as exc:
        raise SdlfError(f"Athena rejected the query (workgroup {workgroup}): {exc.code}: {exc.reason}") from None
    deadline = clock() + timeout_seconds
    delay = poll_seconds
    while True:
        execution = athena.execution(query_id)
        status = execution["Status"]
        state = status["State"]
        if state == "SUCCEEDED":
            break
        if state in ("FAILED", "CANCELLED"):
            reason = status.get("StateChangeReason") or (status.get("AthenaError") or {}).get("ErrorMessage") \
                or "no reason given"
            raise SdlfError(f"Athena query {query_id} {state.lower()} (workgroup {workgroup}): {reason}")
        if clock() >= deadline:
            try:
                athena.stop(query_id)
            except AwsError:
                pass  # the timeout is the error to report
            raise SdlfError(f"Athena query {query_id} still {state} after {timeout_seconds:.0f}s; stopped it")
        sleep(min(delay, max(deadline - clock(), 0.0)))  # never wait past the deadline
        delay = min(delay * 2, 5.0)
    columns: list[str] = []
    types: list[str] = []
    rows: list[tuple] = []
    first_page = True
    for result_set in athena.result_sets(query_id):
        if first_page:
            info = result_set.get("ResultSetMetadata", {}).get("ColumnInfo", [])
            columns = [c.get("Label") or c["Name"] for c in info]
            types = [c.get("Type", "varchar") for c in info]
        page_rows = result_set.get("Rows", [])
        if first_page and page_rows and execution.get("StatementType", "DML") == "DML" \
                and [d.get("VarCharValue") for d in page_rows[0]["Data"]] == columns:
            page_rows = page_rows[1:]  # a SELECT's first row repeats the column names
        first_page = False
        for row in page_rows:
            cells = [d.get("VarCharValue") for d in row.get("Data", [])]
            rows.append(tuple(athena_value(v, t) for v, t in zip(cells, types)))
    scanned = execution.get("Statistics", {}).get("DataScannedInBytes")
    return query_id, columns, rows, scanned


# --- table references --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Identifier:
    name: str
    quoted: bool


_BARE = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")


def identifier_chains(sql: str) -> list[list[Identifier]]:
    """Dotted names (`a.b`, `"a"."b c"`, `a . b`) outside strings and comments; unquoted names lowercased."""
    chains: list[list[Identifier]] = []
    current: list[Identifier] = []
    expecting_part = False  # just saw a dot after an identifier
    i, n = 0, len(sql)

    def close() -> None:
        nonlocal current, expecting_part
        if len(current) > 1:
            chains.append(current)
        current, expecting_part = [], False

    while i < n:
        ch = sql[i]
        if ch.isspace():
            i += 1
            continue
        if sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end < 0 else end + 1
            continue
        if sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            i = n if end < 0 else end + 2
            continue
        if ch in "\"`":
            j, text = i + 1, []
            while j < n:
                if sql[j] == ch:
                    if j + 1 < n and sql[j + 1] == ch:  # doubled quote = the quote itself
                        text.append(ch)
                        j += 2
                        continue
                    break
                text.append(sql[j])
                j += 1
            token = Identifier("".join(text), True)
            i = j + 1
        elif _BARE.match(sql, i):
            match = _BARE.match(sql, i)
            token = Identifier(match.group(0).lower(), False)
            i = match.end()
        elif ch == "." and current and not expecting_part:
            expecting_part = True
            i += 1
            continue
        else:
            close()
            if ch == "'":  # string literal: skip to its end ('' is an escaped quote)
                j = i + 1
                while j < n and not (sql[j] == "'" and not sql.startswith("''", j)):
                    j += 2 if sql.startswith("''", j) else 1
                i = j + 1
            elif ch.isdigit():
                while i < n and (sql[i].isalnum() or sql[i] == "."):
                    i += 1
            else:
                i += 1
            continue
        if current and not expecting_part:
            close()
        current.append(token)
        expecting_part = False
    close()
    return chains


def table_references(sql: str, databases: set[str]) -> list[tuple[str, str]]:
    """(database, table) pairs whose first part is one of `databases`, in order of appearance, unique."""
    found: list[tuple[str, str]] = []
    for chain in identifier_chains(sql):
        database, table = chain[0].name, chain[1].name
        if database in databases and (database, table) not in found:
            found.append((database, table))
    return found


# --- DuckDB over the emulator --------------------------------------------------------------------------------
def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sdlf" / "query"


def _quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


_DUCKDB_SIMPLE = {
    "string": "VARCHAR", "varchar": "VARCHAR", "char": "VARCHAR", "bigint": "BIGINT", "int": "INTEGER",
    "integer": "INTEGER", "smallint": "SMALLINT", "tinyint": "TINYINT", "double": "DOUBLE", "float": "FLOAT",
    "boolean": "BOOLEAN", "date": "DATE", "timestamp": "TIMESTAMP", "binary": "BLOB",
}


def duckdb_type(hive: str) -> str:
    """A Glue/Hive type in DuckDB's spelling (struct<a:int> -> STRUCT("a" INTEGER), array<x> -> x[])."""
    text = hive.strip()
    lower = text.lower()
    if lower in _DUCKDB_SIMPLE:
        return _DUCKDB_SIMPLE[lower]
    if lower.startswith(("decimal", "varchar(", "char(")):
        return "DECIMAL" + text[7:] if lower.startswith("decimal") else "VARCHAR"
    for kind in ("array", "map", "struct"):
        if lower.startswith(kind + "<") and lower.endswith(">"):
            parts = _split_top_level(text[len(kind) + 1:-1])
            if kind == "array":
                return duckdb_type(parts[0]) + "[]"
            if kind == "map":
                return f"MAP({duckdb_type(parts[0])}, {duckdb_type(parts[1])})"
            fields = [p.split(":", 1) for p in parts]
            return "STRUCT(" + ", ".join(f"{_quote_identifier(k.strip())} {duckdb_type(v)}" for k, v in fields) + ")"
    return "VARCHAR"


def _split_top_level(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "<(":
            depth += 1
        elif ch in ">)":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts]


def _resolve_table(glue: GlueCatalog, database: str, table: str) -> dict[str, Any]:
    found = glue.table(database, table)
    if found is None:
        known = glue.tables(database)
        listing = ", ".join(known) if known else "none yet (has the dataset's crawler run?)"
        raise SdlfError(f"table {database}.{table} is not in the Glue catalog; tables of {database}: {listing}")
    return found


def sync_parquet_files(storage: Storage, location: str, cache_dir: Path) -> list[Path]:
    """Local copies of the Parquet files below an s3:// location (`_*`/`.*` paths skipped, as Hive does);
    a file whose ETag did not change is not downloaded again.

    The cache is shared by every process of the machine (queries of several lakes or emulators at once with
    the same bucket and key names), so a copy is named by its object's ETag (`<key's folder>/<etag>/<name>`)
    and written whole under a unique temporary name, then renamed: a copy never changes once written, and
    a query never reads another object's bytes or a half-written file."""
    if not location.startswith("s3://"):
        raise SdlfError(f"table location {location!r} is not an s3:// location")
    bucket, _, prefix = location[5:].partition("/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    files: list[tuple[str, Path]] = []
    for obj in storage.objects(bucket, prefix):
        key, relative = obj.key, obj.key[len(prefix):]
        if not relative or key.endswith("/") or any(p.startswith(("_", ".")) for p in relative.split("/")):
            continue
        folder, _, name = key.rpartition("/")
        local = cache_dir / bucket / folder / obj.etag.strip('"') / name
        if not local.is_file():
            local.parent.mkdir(parents=True, exist_ok=True)
            handle, partial = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=local.parent)
            try:
                with os.fdopen(handle, "wb") as out:
                    out.write(storage.read(bucket, key))
                os.replace(partial, local)
            except BaseException:
                Path(partial).unlink(missing_ok=True)
                raise
        if _is_parquet(local):  # only Parquet: a stray text file would fail the whole query
            files.append((key, local))
    return [local for _, local in sorted(files)]  # in key order, as the objects are listed


def _is_parquet(path: Path) -> bool:
    if path.stat().st_size < 12:  # magic + footer length + magic
        return False
    with path.open("rb") as fh:
        fh.seek(-4, os.SEEK_END)
        return fh.read(4) == b"PAR1"


def _view_sql(database: str, table: dict[str, Any], files: list[Path]) -> str:
    name = f"{_quote_identifier(database)}.{_quote_identifier(table['Name'])}"
    partition_keys = table.get("PartitionKeys") or []
    if files:
        options = ["union_by_name=true"]
        if partition_keys:
            types = ", ".join(f"{_quote_literal(k['Name'])}: {_quote_literal(duckdb_type(k.get('Type', 'string')))}"
                              for k in partition_keys)
            options += ["hive_partitioning=true", f"hive_types={{{types}}}"]
        else:
            options.append("hive_partitioning=false")
        paths = ", ".join(_quote_literal(str(f)) for f in files)
        return f"CREATE VIEW {name} AS SELECT * FROM read_parquet([{paths}], {', '.join(options)})"
    # No data yet: an empty view with the catalog's columns, so the query still runs (and returns nothing).
    columns = [*(table.get("StorageDescriptor") or {}).get("Columns", []), *partition_keys]
    if not columns:
        raise SdlfError(f"table {database}.{table['Name']} has no files and no columns in the Glue catalog")
    select = ", ".join(f"CAST(NULL AS {duckdb_type(c.get('Type', 'string'))}) AS {_quote_identifier(c['Name'])}"
                       for c in columns)
    return f"CREATE VIEW {name} AS SELECT {select} WHERE false"


def run_duckdb(glue: GlueCatalog, storage: Storage, sql: str, cache_dir: Path) -> tuple[list[str], list[tuple], list[str]]:
    """(columns, rows, resolved tables) of the SQL on DuckDB, with the referenced catalog tables as views."""
    import duckdb

    databases = glue.databases()
    con = duckdb.connect(":memory:")
    resolved = []
    try:
        for database, table_name in table_references(sql, databases):
            table = _resolve_table(glue, database, table_name)
            location = (table.get("StorageDescriptor") or {}).get("Location")
            if not location:
                raise SdlfError(f"table {database}.{table_name} has no StorageDescriptor.Location")
            files = sync_parquet_files(storage, location, cache_dir)
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {_quote_identifier(database)}")
            con.execute(_view_sql(database, table, files))
            resolved.append(f"{database}.{table_name}")
        try:
            cursor = con.execute(sql)
        except duckdb.Error as exc:
            hint = f" (databases in the emulator's Glue catalog: {', '.join(sorted(databases)) or 'none'})" \
                if isinstance(exc, duckdb.CatalogException) else ""
            raise SdlfError(f"query failed on DuckDB: {exc}{hint}") from None
        if cursor.description is None:
            return [], [], resolved
        columns = [d[0] for d in cursor.description]
        return columns, cursor.fetchall(), resolved
    finally:
        con.close()
