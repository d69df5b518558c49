"""`sdlf query`'s engine: Athena (botocore Stubber), table references, DuckDB over moto's S3/Glue."""
from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from botocore.stub import ANY, Stubber
from moto import mock_aws

from sdlf_cli.aws.session import AwsTarget, Clients
from sdlf_cli.aws.storage import Storage
from sdlf_cli.lake import Lake
from sdlf_cli.config.model import LakeConfig, Team
from sdlf_cli.errors import SdlfError, UsageError
from sdlf_cli.workflows.query import (
    duckdb_type, identifier_chains, run_query, sync_parquet_files, table_references,
)

CFG = LakeConfig(org="acme", app="lake", env="dev", region="us-east-1", teams=(Team("sales"),))


class FakeClock:
    def __init__(self):
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def athena_clients() -> tuple[Clients, Stubber]:
    athena = boto3.client("athena", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    clients = Clients(AwsTarget(region="us-east-1"))
    clients._cache["athena"] = athena  # the factory's cache is the injection point for a stubbed client
    return clients, Stubber(athena)


def execution(state: str, **status) -> dict:
    return {"QueryExecution": {"QueryExecutionId": "q-1", "StatementType": "DML",
                               "Status": {"State": state, **status},
                               "Statistics": {"DataScannedInBytes": 2048}}}


COLUMNS = [{"Name": "id", "Type": "bigint", "Label": "id"}, {"Name": "amount", "Type": "decimal", "Label": "amount"},
           {"Name": "ok", "Type": "boolean", "Label": "ok"}, {"Name": "day", "Type": "date", "Label": "day"},
           {"Name": "name", "Type": "varchar", "Label": "name"}]


def row(*values) -> dict:
    return {"Data": [{} if v is None else {"VarCharValue": v} for v in values]}


def test_athena_query_polls_until_done_and_reads_every_page():
    clients, stub = athena_clients()
    clock = FakeClock()
    stub.add_response("start_query_execution", {"QueryExecutionId": "q-1"},
                      {"QueryString": "SELECT * FROM db.t", "WorkGroup": "acme-lake-dev-sales"})
    stub.add_response("get_query_execution", execution("QUEUED"), {"QueryExecutionId": "q-1"})
    stub.add_response("get_query_execution", execution("RUNNING"), {"QueryExecutionId": "q-1"})
    stub.add_response("get_query_execution", execution("SUCCEEDED"), {"QueryExecutionId": "q-1"})
    stub.add_response("get_query_results", {
        "ResultSet": {"ResultSetMetadata": {"ColumnInfo": COLUMNS},
                      "Rows": [row("id", "amount", "ok", "day", "name"), row("1", "9.50", "true", "2024-01-02", "a")]},
        "NextToken": "page-2"}, {"QueryExecutionId": "q-1"})
    stub.add_response("get_query_results", {
        "ResultSet": {"ResultSetMetadata": {"ColumnInfo": COLUMNS},
                      "Rows": [row("2", None, "false", "2024-01-03", "id")]}},
        {"QueryExecutionId": "q-1", "NextToken": "page-2"})
    with stub:
        result = run_query(Lake(CFG, clients), "SELECT * FROM db.t", team="sales", sleep=clock.sleep, clock=clock)
        stub.assert_no_pending_responses()
    assert result.engine == "athena" and result.query_id == "q-1" and result.scanned_bytes == 2048
    assert result.columns == ["id", "amount", "ok", "day", "name"]
    assert result.rows == [(1, Decimal("9.50"), True, dt.date(2024, 1, 2), "a"),
                           (2, None, False, dt.date(2024, 1, 3), "id")]
    assert clock.sleeps == [0.5, 1.0]  # backoff between polls, no real sleeping
    assert result.seconds == 1.5


def test_athena_without_a_team_uses_the_lake_workgroup():
    clients, stub = athena_clients()
    stub.add_response("start_query_execution", {"QueryExecutionId": "q-1"},
                      {"QueryString": "SHOW DATABASES", "WorkGroup": "acme-lake-dev-primary"})
    stub.add_response("get_query_execution", {"QueryExecution": {
        "QueryExecutionId": "q-1", "StatementType": "UTILITY", "Status": {"State": "SUCCEEDED"}}},
        {"QueryExecutionId": "q-1"})
    stub.add_response("get_query_results", {"ResultSet": {
        "ResultSetMetadata": {"ColumnInfo": [{"Name": "database_name", "Type": "varchar"}]},
        "Rows": [row("database_name"), row("sales_db")]}}, {"QueryExecutionId": "q-1"})
    with stub:
        result = run_query(Lake(CFG, clients), "SHOW DATABASES", sleep=lambda s: None)
    # Not a SELECT: the first row is data, not a header.
    assert result.columns == ["database_name"] and result.rows == [("database_name",), ("sales_db",)]


def test_a_failed_athena_query_raises_with_athenas_reason():
    clients, stub = athena_clients()
    stub.add_response("start_query_execution", {"QueryExecutionId": "q-9"}, {"QueryString": ANY, "WorkGroup": ANY})
    stub.add_response("get_query_execution", execution(
        "FAILED", StateChangeReason="TABLE_NOT_FOUND: line 1:15: Table 'awsdatacatalog.db.nope' does not exist"),
        {"QueryExecutionId": "q-9"})
    with stub, pytest.raises(SdlfError) as err:
        run_query(Lake(CFG, clients), "SELECT * FROM db.nope", sleep=lambda s: None)
    assert str(err.value) == ("Athena query q-9 failed (workgroup acme-lake-dev-primary): "
                              "TABLE_NOT_FOUND: line 1:15: Table 'awsdatacatalog.db.nope' does not exist")


def test_a_rejected_query_and_a_timeout_are_errors():
    clients, stub = athena_clients()
    stub.add_client_error("start_query_execution", "InvalidRequestException", "line 1:1: mismatched input 'SELEC'")
    with stub, pytest.raises(SdlfError, match="Athena rejected the query .*InvalidRequestException: line 1:1"):
        run_query(Lake(CFG, clients), "SELEC 1", sleep=lambda s: None)

    clients, stub = athena_clients()
    clock = FakeClock()
    stub.add_response("start_query_execution", {"QueryExecutionId": "q-2"}, {"QueryString": ANY, "WorkGroup": ANY})
    for _ in range(4):
        stub.add_response("get_query_execution", execution("RUNNING"), {"QueryExecutionId": "q-2"})
    stub.add_response("stop_query_execution", {}, {"QueryExecutionId": "q-2"})
    with stub, pytest.raises(SdlfError, match="q-2 still RUNNING after 2s; stopped it"):
        run_query(Lake(CFG, clients), "SELECT 1", sleep=clock.sleep, clock=clock, timeout_seconds=2)
    stub.assert_no_pending_responses()
    assert clock.sleeps == [0.5, 1.0, 0.5]  # the last wait ends at the deadline


def test_bad_arguments_are_usage_errors():
    clients, _ = athena_clients()
    with pytest.raises(UsageError, match="unknown team 'ops' .*teams of acme-lake-dev: sales"):
        run_query(Lake(CFG, clients), "SELECT 1", team="ops")
    with pytest.raises(UsageError, match="empty"):
        run_query(Lake(CFG, clients), "  ")


def test_identifier_chains_skip_strings_and_comments_and_keep_quoted_names():
    sql = """-- db.commented
    SELECT o.id, 'db.in_string', "Db"."Mixed Case", x . y, 1.5 /* db.block */
    FROM DB.Orders o JOIN `db`.`items` i ON o.id = i.id WHERE name = 'it''s db.t'"""
    chains = [[(p.name, p.quoted) for p in c] for c in identifier_chains(sql)]
    assert chains == [[("o", False), ("id", False)], [("Db", True), ("Mixed Case", True)],
                      [("x", False), ("y", False)], [("db", False), ("orders", False)],
                      [("db", True), ("items", True)], [("o", False), ("id", False)], [("i", False), ("id", False)]]
    assert table_references(sql, {"db"}) == [("db", "orders"), ("db", "items")]


def test_hive_types_in_duckdb_spelling():
    assert duckdb_type("bigint") == "BIGINT"
    assert duckdb_type("decimal(10,2)") == "DECIMAL(10,2)"
    assert duckdb_type("array<struct<a:string,b:array<int>>>") == 'STRUCT("a" VARCHAR, "b" INTEGER[])[]'
    assert duckdb_type("map<string,double>") == "MAP(VARCHAR, DOUBLE)"
    assert duckdb_type("interval") == "VARCHAR"


# --- DuckDB over moto (in process) ---------------------------------------------------------------------------
def _parquet(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


@pytest.fixture
def local_lake(monkeypatch):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(var, "testing")
    with mock_aws():
        session = boto3.session.Session(region_name="us-east-1")
        clients = Clients(AwsTarget(region="us-east-1", endpoint_url="http://127.0.0.1:1"), session=session)
        for service in ("s3", "glue"):  # moto intercepts these in-process; no endpoint needed
            clients._cache[service] = session.client(service)
        s3, glue = clients.client("s3"), clients.client("glue")
        s3.create_bucket(Bucket="analytics")
        s3.put_object(Bucket="analytics", Key="sales/orders/orders/ingestion_date=2024-01-01/part-a.parquet",
                      Body=_parquet(pa.table({"id": [1, 2], "amount": [1.5, 2.5]})))
        s3.put_object(Bucket="analytics", Key="sales/orders/orders/ingestion_date=2024-01-02/part-b.parquet",
                      Body=_parquet(pa.table({"id": [3], "amount": [4.0], "note": ["late"]})))
        s3.put_object(Bucket="analytics", Key="sales/orders/orders/_batches/b1/result.json", Body=b"{}")
        glue.create_database(DatabaseInput={"Name": "sales_orders"})
        glue.create_table(DatabaseName="sales_orders", TableInput={
            "Name": "orders", "PartitionKeys": [{"Name": "ingestion_date", "Type": "string"}],
            "StorageDescriptor": {"Location": "s3://analytics/sales/orders/orders/",
                                  "Columns": [{"Name": "id", "Type": "bigint"}, {"Name": "amount", "Type": "double"}]}})
        glue.create_table(DatabaseName="sales_orders", TableInput={
            "Name": "empty", "StorageDescriptor": {"Location": "s3://analytics/sales/orders/empty/",
                                                   "Columns": [{"Name": "id", "Type": "bigint"}]}})
        yield clients


def test_duckdb_runs_the_sql_unchanged_over_the_catalog_tables(local_lake, tmp_path):
    sql = ("SELECT ingestion_date, count(*) AS n, sum(amount) AS total, max(note) AS note "
           "FROM sales_orders.orders GROUP BY 1 ORDER BY 1")
    result = run_query(Lake(CFG, local_lake), sql, cache_dir=tmp_path)
    assert result.engine == "duckdb" and result.tables == ["sales_orders.orders"]
    assert result.columns == ["ingestion_date", "n", "total", "note"]
    # Partition values stay strings, like the catalog's partition key type (and Athena).
    assert result.rows == [("2024-01-01", 2, 4.0, None), ("2024-01-02", 1, 4.0, "late")]
    empty = run_query(Lake(CFG, local_lake), 'SELECT count(*) FROM "sales_orders"."empty"', cache_dir=tmp_path)
    assert empty.rows == [(0,)]


def test_unknown_tables_and_databases_are_clear_errors(local_lake, tmp_path):
    with pytest.raises(SdlfError) as err:
        run_query(Lake(CFG, local_lake), "SELECT * FROM sales_orders.order", cache_dir=tmp_path)
    assert str(err.value) == ("table sales_orders.order is not in the Glue catalog; "
                              "tables of sales_orders: empty, orders")
    with pytest.raises(SdlfError, match=r"(?s)query failed on DuckDB: .*nope_db.*databases in the emulator's Glue "
                                        r"catalog: sales_orders\)"):
        run_query(Lake(CFG, local_lake), "SELECT * FROM nope_db.orders", cache_dir=tmp_path)


def test_the_cache_downloads_only_changed_objects(local_lake, tmp_path):
    s3 = local_lake.client("s3")
    location = "s3://analytics/sales/orders/orders/"
    files = sync_parquet_files(Storage(s3), location, tmp_path)
    assert [f.name for f in files] == ["part-a.parquet", "part-b.parquet"]
    first_mtimes = {f: f.stat().st_mtime_ns for f in files}
    first_rows = pq.read_table(files[1]).num_rows
    s3.put_object(Bucket="analytics", Key="sales/orders/orders/ingestion_date=2024-01-02/part-b.parquet",
                  Body=_parquet(pa.table({"id": [3, 4], "amount": [4.0, 5.0]})))
    again = sync_parquet_files(Storage(s3), location, tmp_path)
    assert again[0] == files[0] and again[0].stat().st_mtime_ns == first_mtimes[again[0]]  # same ETag: kept
    assert again[1] != files[1] and pq.read_table(again[1]).num_rows == 2  # changed ETag: a copy of its own
    # The copy another reader (a query of another lake or emulator, sharing the machine's cache) was given is
    # never rewritten under it.
    assert pq.read_table(files[1]).num_rows == first_rows
    assert not list(tmp_path.rglob("*.part"))
