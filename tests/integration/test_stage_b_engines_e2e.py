"""Both stage-B engines on the emulator, same input: the `spark` dataset runs its Glue job with local
PySpark (inputs staged from the emulator's S3), the `python` one with pyarrow; tables and rows agree."""
from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest

from sdlf_cli.aws.session import AwsTarget, Clients
from sdlf_cli.config.loader import load_config
from sdlf_cli.lake import Lake
from sdlf_cli.ui import make_reporter
from sdlf_cli.workflows.deploy import deploy_layers
from sdlf_cli.workflows.ingest import catalog_rows, ingest_files
from sdlf_cli.workflows.query import run_query
from sdlf_cli.workflows.stage_b import run_stage_b

ROOT = Path(__file__).resolve().parents[2]
ENV = "engs"
TEAM = "engineering"
ENGINES = ("python", "spark")
ENV_FILE = f"""# both engines, same data
env: {ENV}
teams:
  {TEAM}:
    pipelines:
      main: {{}}
    datasets:
""" + "".join(f"""      on{engine}:
        pipeline: main
        engine: {engine}
        schedule: rate(1 day)
        quality:
          - {{rule: uniqueness, column: id}}
""" for engine in ENGINES)
RECORDS = [
    {"id": 1, "Full Name": "Ada", "score": 1.5, "address": {"city": "London", "zip": None}, "tags": ["math"]},
    {"id": 2, "Full Name": "Grace", "score": 2, "address": {"city": "Arlington", "zip": "22201"}, "tags": []},
    {"id": 3, "Full Name": None, "score": None, "address": None, "tags": ["a", "b"]},
]


@pytest.fixture(scope="module")
def batches(emulator, tmp_path_factory):
    project = tmp_path_factory.mktemp("engines")
    for part in ("templates", "lambda", "glue"):
        shutil.copytree(ROOT / part, project / part, ignore=shutil.ignore_patterns("__pycache__"))
    (project / "parameters").mkdir()
    shutil.copy(ROOT / "parameters" / "base.yaml", project / "parameters" / "base.yaml")
    (project / "parameters" / f"{ENV}.yaml").write_text(ENV_FILE)
    cfg = load_config(ENV, project / "parameters")
    clients = Clients(AwsTarget(region=cfg.region, endpoint_url=emulator.endpoint_url))
    assert deploy_layers(Lake(cfg, clients), make_reporter("json"), ["foundations", "team", "pipeline", "dataset"],
                         root=project).ok
    data = project / "people.json"
    data.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    runs = {}
    for engine in ENGINES:
        dataset = f"on{engine}"
        [ingested] = ingest_files(Lake(cfg, clients), [data], TEAM, dataset)
        _wait_processed(cfg, clients, ingested.uri)
        runs[engine] = run_stage_b(Lake(cfg, clients), TEAM, dataset, timeout=600)
    return cfg, clients, runs


def _wait_processed(cfg, clients, uri, timeout=60.0):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = catalog_rows(Lake(cfg, clients), uri=uri)
        if rows and rows[0]["status"] in ("PROCESSED", "FAILED"):
            assert rows[0]["status"] == "PROCESSED", rows[0]
            return
        time.sleep(0.3)
    raise AssertionError(f"{uri} was not processed by stage A")


def test_both_engines_succeed_on_the_emulator(batches):
    _, _, runs = batches
    for engine, run in runs.items():
        assert run.started and run.status == "SUCCEEDED", (engine, run.to_dict())


def test_both_engines_give_the_same_table_and_rows(batches):
    cfg, clients, _ = batches
    glue = clients.client("glue")
    schemas, rows = {}, {}
    for engine in ENGINES:
        dataset = f"on{engine}"
        database = cfg.names.glue_database(TEAM, dataset)
        table = glue.get_table(DatabaseName=database, Name=dataset)["Table"]
        schemas[engine] = [(c["Name"], c["Type"]) for c in table["StorageDescriptor"]["Columns"]]
        result = run_query(Lake(cfg, clients), f"SELECT * EXCLUDE (ingestion_date) FROM {database}.{dataset} ORDER BY id")
        rows[engine] = [dict(zip(result.columns, r)) for r in result.rows]
    assert schemas["python"] == schemas["spark"]
    assert ("full_name", "string") in schemas["python"]
    assert rows["python"] == rows["spark"]
    assert [r["id"] for r in rows["python"]] == [1, 2, 3]


def test_quality_results_are_stored_for_both(batches):
    cfg, clients, runs = batches
    table = Lake(cfg, clients).registry.get("tables/quality")
    for engine in ENGINES:
        items = clients.client("dynamodb").query(
            TableName=table, KeyConditionExpression="id = :d",
            ExpressionAttributeValues={":d": {"S": f"{TEAM}/on{engine}"}})["Items"]
        assert items and items[0]["status"]["S"] == "PASS", engine
