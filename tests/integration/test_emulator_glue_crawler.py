"""Glue crawlers on the emulator infer Parquet tables and partitions from S3."""
from __future__ import annotations

import io
import threading

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sdlf_cli.local.runtime import install, installed_part
from sdlf_cli.local.runtime.crawler import hive_type, normalise_name
from tests.integration.test_emulator_runtime_helpers import bucket, client, role_arn, unique, wait_for


@pytest.fixture(scope="module", autouse=True)
def runtime(emulator):
    install(emulator.context)


def put_parquet(emulator, bucket_name: str, key: str, table: pa.Table) -> None:
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="snappy")
    client(emulator, "s3").put_object(Bucket=bucket_name, Key=key, Body=buf.getvalue())


def make_crawler(emulator, path: str, **kwargs) -> tuple[str, str]:
    glue = client(emulator, "glue")
    database = unique("db").replace("-", "_")
    glue.create_database(DatabaseInput={"Name": database})
    name = unique("crawler")
    glue.create_crawler(Name=name, Role=role_arn(emulator), DatabaseName=database,
                        Targets={"S3Targets": [{"Path": path}]},
                        SchemaChangePolicy={"UpdateBehavior": "UPDATE_IN_DATABASE", "DeleteBehavior": "LOG"},
                        RecrawlPolicy={"RecrawlBehavior": "CRAWL_EVERYTHING"}, **kwargs)
    return name, database


def crawl(emulator, name: str) -> dict:
    glue = client(emulator, "glue")
    glue.start_crawler(Name=name)
    return wait_for(lambda: (c := glue.get_crawler(Name=name)["Crawler"])["State"] == "READY" and c,
                    timeout=30, what=f"crawler {name}")


ORDERS_V1 = pa.table({
    "Order ID": pa.array([1, 2], pa.int64()),
    "amount": pa.array([9.5, 3.25]),
    "customer": pa.array([{"name": "a", "tier": 1}, {"name": "b", "tier": 2}]),
    "tags": pa.array([["x"], ["y", "z"]]),
    "paid": pa.array([True, False]),
})


def test_a_crawl_creates_the_table_with_columns_partitions_and_parquet_storage(emulator):
    data = bucket(emulator)
    put_parquet(emulator, data, "team/orders/orders/ingestion_date=2024-01-01/part-a.parquet", ORDERS_V1)
    put_parquet(emulator, data, "team/orders/orders/ingestion_date=2024-01-02/part-b.parquet", ORDERS_V1)
    client(emulator, "s3").put_object(Bucket=data, Key="team/orders/orders/_SUCCESS", Body=b"x")
    name, database = make_crawler(emulator, f"s3://{data}/team/orders/orders/")
    glue = client(emulator, "glue")
    # Hold the crawler's worker threads so the crawl is certainly still running while we look.
    release = threading.Event()
    pool = installed_part("crawler")._pool
    holders = [pool.submit(release.wait, 30) for _ in range(pool._max_workers)]
    try:
        glue.start_crawler(Name=name)
        assert glue.get_crawler(Name=name)["Crawler"]["State"] == "RUNNING"
        with pytest.raises(glue.exceptions.CrawlerRunningException):
            glue.start_crawler(Name=name)
    finally:
        release.set()
    assert all(h.result(timeout=5) for h in holders)
    done = wait_for(lambda: (c := glue.get_crawler(Name=name)["Crawler"])["State"] == "READY" and c,
                    timeout=30, what="crawl")
    assert done["LastCrawl"]["Status"] == "SUCCEEDED"

    table = glue.get_table(DatabaseName=database, Name="orders")["Table"]
    sd = table["StorageDescriptor"]
    assert [(c["Name"], c["Type"]) for c in sd["Columns"]] == [
        ("order_id", "bigint"), ("amount", "double"), ("customer", "struct<name:string,tier:bigint>"),
        ("tags", "array<string>"), ("paid", "boolean")]
    assert table["PartitionKeys"] == [{"Name": "ingestion_date", "Type": "string"}]
    assert sd["Location"] == f"s3://{data}/team/orders/orders/"
    assert sd["InputFormat"].endswith("MapredParquetInputFormat")
    assert sd["SerdeInfo"]["SerializationLibrary"].endswith("ParquetHiveSerDe")
    assert table["Parameters"]["classification"] == "parquet"
    partitions = glue.get_partitions(DatabaseName=database, TableName="orders")["Partitions"]
    assert sorted((p["Values"], p["StorageDescriptor"]["Location"]) for p in partitions) == [
        (["2024-01-01"], f"s3://{data}/team/orders/orders/ingestion_date=2024-01-01/"),
        (["2024-01-02"], f"s3://{data}/team/orders/orders/ingestion_date=2024-01-02/")]
    logs = client(emulator, "logs").get_log_events(logGroupName="/aws-glue/crawlers", logStreamName=name)["events"]
    assert any("created table" in e["message"] for e in logs)


def test_a_second_crawl_adds_new_columns_and_partitions(emulator):
    data = bucket(emulator)
    put_parquet(emulator, data, "t/d/events/country=fr/day=1/part-1.parquet", pa.table({"id": [1]}))
    name, database = make_crawler(emulator, f"s3://{data}/t/d/events", TablePrefix="raw_")
    crawl(emulator, name)
    glue = client(emulator, "glue")
    first = glue.get_table(DatabaseName=database, Name="raw_events")["Table"]
    assert [c["Name"] for c in first["StorageDescriptor"]["Columns"]] == ["id"]
    assert [k["Name"] for k in first["PartitionKeys"]] == ["country", "day"]

    put_parquet(emulator, data, "t/d/events/country=de/day=2/part-2.parquet",
                pa.table({"id": pa.array([2], pa.int32()), "Score": [0.5]}))
    again = crawl(emulator, name)
    assert again["LastCrawl"]["Status"] == "SUCCEEDED"
    second = glue.get_table(DatabaseName=database, Name="raw_events")["Table"]
    # int32 and int64 files merge to bigint; the new column is added.
    assert [(c["Name"], c["Type"]) for c in second["StorageDescriptor"]["Columns"]] == [
        ("id", "bigint"), ("score", "double")]
    assert int(second["VersionId"]) == int(first["VersionId"]) + 1
    values = sorted(p["Values"] for p in glue.get_partitions(DatabaseName=database, TableName="raw_events")["Partitions"])
    assert values == [["de", "2"], ["fr", "1"]]

    crawl(emulator, name)  # nothing changed: no new table version
    assert glue.get_table(DatabaseName=database, Name="raw_events")["Table"]["VersionId"] == second["VersionId"]


def test_schema_change_policy_log_leaves_the_table_alone(emulator):
    data = bucket(emulator)
    put_parquet(emulator, data, "logs/t1/part.parquet", pa.table({"a": [1]}))
    glue = client(emulator, "glue")
    name, database = make_crawler(emulator, f"s3://{data}/logs/t1/")
    crawl(emulator, name)
    put_parquet(emulator, data, "logs/t1/part2.parquet", pa.table({"a": [2], "b": ["new"]}))
    # moto has no UpdateCrawler; change the stored policy as an update would.
    _moto_crawler(name).schema_change_policy = {"UpdateBehavior": "LOG", "DeleteBehavior": "LOG"}
    crawl(emulator, name)
    columns = glue.get_table(DatabaseName=database, Name="t1")["Table"]["StorageDescriptor"]["Columns"]
    assert [c["Name"] for c in columns] == ["a"]


def _moto_crawler(name: str):
    from moto.glue.models import glue_backends

    return glue_backends["123456789012"]["us-east-1"].crawlers[name]


def test_a_crawl_of_a_missing_database_fails_with_the_reason(emulator):
    glue = client(emulator, "glue")
    name = unique("crawler")
    glue.create_crawler(Name=name, Role=role_arn(emulator), DatabaseName="no_such_db",
                        Targets={"S3Targets": [{"Path": f"s3://{bucket(emulator)}/x/"}]})
    done = crawl(emulator, name)
    assert done["LastCrawl"]["Status"] == "FAILED"
    assert done["LastCrawl"]["ErrorMessage"] == f"crawler {name}: database no_such_db does not exist"


def test_no_parquet_files_means_no_table_and_a_successful_crawl(emulator):
    data = bucket(emulator)
    client(emulator, "s3").put_object(Bucket=data, Key="p/q/readme.txt", Body=b"not parquet")
    name, database = make_crawler(emulator, f"s3://{data}/p/q/")
    assert crawl(emulator, name)["LastCrawl"]["Status"] == "SUCCEEDED"
    assert client(emulator, "glue").get_tables(DatabaseName=database)["TableList"] == []


def test_hive_type_names():
    assert hive_type(pa.int32()) == "int"
    assert hive_type(pa.timestamp("us", tz="UTC")) == "timestamp"
    assert hive_type(pa.date32()) == "date"
    assert hive_type(pa.decimal128(10, 2)) == "decimal(10,2)"
    assert hive_type(pa.map_(pa.string(), pa.int64())) == "map<string,bigint>"
    assert hive_type(pa.list_(pa.struct([("a", pa.string())]))) == "array<struct<a:string>>"
    assert hive_type(pa.dictionary(pa.int8(), pa.string())) == "string"
    assert normalise_name("Order ID-2") == "order_id_2"
