"""`run_query` on the emulator: DuckDB over a table the emulator's crawler created."""
from __future__ import annotations

import pyarrow as pa
import pytest

from sdlf_cli.aws.session import AwsTarget, Clients
from sdlf_cli.config.model import LakeConfig, Team
from sdlf_cli.errors import SdlfError
from sdlf_cli.lake import Lake
from sdlf_cli.local.runtime import install
from sdlf_cli.workflows.query import run_query
from tests.integration.test_emulator_glue_crawler import crawl, make_crawler, put_parquet
from tests.integration.test_emulator_runtime_helpers import bucket

CFG = LakeConfig(org="acme", app="lake", env="dev", region="us-east-1", teams=(Team("sales"),))


@pytest.fixture(scope="module", autouse=True)
def runtime(emulator):
    install(emulator.context)


def test_query_on_the_emulator_reads_a_crawled_table(emulator, tmp_path):
    data = bucket(emulator)
    put_parquet(emulator, data, "sales/orders/orders/ingestion_date=2024-01-01/part-b1.parquet",
                pa.table({"id": [1, 2], "customer": [{"name": "a"}, {"name": "b"}], "amount": [1.0, 2.0]}))
    put_parquet(emulator, data, "sales/orders/orders/ingestion_date=2024-01-02/part-b2.parquet",
                pa.table({"id": [3], "customer": [{"name": "c"}], "amount": [3.5]}))
    name, database = make_crawler(emulator, f"s3://{data}/sales/orders/orders/")
    assert crawl(emulator, name)["LastCrawl"]["Status"] == "SUCCEEDED"

    clients = Clients(AwsTarget(region="us-east-1", endpoint_url=emulator.endpoint_url))
    sql = (f"SELECT o.ingestion_date, count(*) AS n, sum(o.amount) AS total, list(o.customer.name ORDER BY o.id) "
           f"AS names FROM {database}.orders AS o GROUP BY 1 ORDER BY 1")
    result = run_query(Lake(CFG, clients), sql, team="sales", cache_dir=tmp_path)
    assert result.engine == "duckdb" and result.tables == [f"{database}.orders"]
    assert result.rows == [("2024-01-01", 2, 3.0, ["a", "b"]), ("2024-01-02", 1, 3.5, ["c"])]

    with pytest.raises(SdlfError, match=f"table {database}.nope is not in the Glue catalog; "
                                        f"tables of {database}: orders"):
        run_query(Lake(CFG, clients), f"SELECT * FROM {database}.nope", cache_dir=tmp_path)
