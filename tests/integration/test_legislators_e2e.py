"""The legislators sample end to end on the emulator, on both engines: persons, memberships and
organizations ingested through stage A, then stage B runs the dataset's own heavy transform
(glue/transforms/legislators.py, packaged and uploaded like the other artifacts) into two tables, each
crawled and checked by its own quality rules; both engines give the same tables and rows."""
from __future__ import annotations

import importlib.util
import shutil
import textwrap
import time
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
SAMPLE = ROOT / "samples" / "engineering" / "legislators_history"
ENV = "legs"
TEAM = "engineering"
ENGINES = ("python", "spark")
# The script's join as SQL in the parameters file (validated and translated by sdlf, run by DuckDB).
_SPEC = importlib.util.spec_from_file_location("legislators_transform", ROOT / "glue" / "transforms" / "legislators.py")
_SCRIPT = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(_SCRIPT)
HISTORY_SQL = _SCRIPT.HISTORY
ENV_FILE = f"""# the legislators sample, on both engines
org: acme
app: lake
region: us-east-1
env: {ENV}
teams:
  {TEAM}:
    pipelines:
      main: {{}}
    datasets:
""" + "".join(f"""      legislators_{engine}:
        pipeline: main
        engine: {engine}
        schedule: rate(1 day)
        batch: {{min_items: 3, max_items: 100}}
        heavy_transform:
          script: glue/transforms/legislators.py
          tables:
            history:
              partition_by: [org_name]
              quality:
                - {{rule: completeness, column: person_id, threshold: 1.0}}
                - {{rule: allowed_values, column: party, values: [Democrat, Republican, Independent]}}
            persons:
              quality:
                - {{rule: uniqueness, column: id}}
                - {{rule: row_count, min: 8, max: 8}}
""" for engine in ENGINES) + f"""      legislators_sql:
        pipeline: main
        schedule: rate(1 day)
        batch: {{min_items: 3, max_items: 100}}
        heavy_transform:
          sql:
            history: |
{textwrap.indent(HISTORY_SQL.strip(), " " * 14)}
          tables:
            history: {{partition_by: [org_name]}}
"""


@pytest.fixture(scope="module")
def batches(emulator, tmp_path_factory):
    project = tmp_path_factory.mktemp("legislators")
    for part in ("templates", "lambda", "glue"):
        shutil.copytree(ROOT / part, project / part, ignore=shutil.ignore_patterns("__pycache__"))
    (project / "parameters").mkdir()
    (project / "parameters" / f"{ENV}.yaml").write_text(ENV_FILE)
    cfg = load_config(ENV, project / "parameters")
    clients = Clients(AwsTarget(region=cfg.region, endpoint_url=emulator.endpoint_url))
    assert deploy_layers(Lake(cfg, clients), make_reporter("json"), ["foundations", "team", "pipeline", "dataset"],
                         root=project).ok
    files = [SAMPLE / f"{name}.json" for name in ("persons", "memberships", "organizations")]
    runs = {}
    for engine in (*ENGINES, "sql"):
        dataset = f"legislators_{engine}"
        for ingested in ingest_files(Lake(cfg, clients), files, TEAM, dataset):
            _wait_processed(cfg, clients, ingested.uri)
        runs[engine] = run_stage_b(Lake(cfg, clients), TEAM, dataset, timeout=600)
    return cfg, clients, runs


def _wait_processed(cfg, clients, uri, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = catalog_rows(Lake(cfg, clients), uri=uri)
        if rows and rows[0].get("status") in ("PROCESSED", "FAILED"):
            assert rows[0]["status"] == "PROCESSED", rows[0]
            return
        time.sleep(0.3)
    raise AssertionError(f"{uri} was not processed by stage A")


def test_the_sample_runs_its_transform_on_both_engines(batches):
    _, _, runs = batches
    assert set(runs) == {"python", "spark", "sql"}
    for engine, run in runs.items():
        assert run.started and run.status == "SUCCEEDED", (engine, run.to_dict())


def test_the_same_join_as_sql_in_the_parameters_file_gives_the_same_rows(batches):
    cfg, clients, _ = batches
    rows = {}
    for dataset in ("legislators_python", "legislators_sql"):
        database = cfg.names.glue_database(TEAM, dataset)
        result = run_query(Lake(cfg, clients), f"SELECT * FROM {database}.history "
                                               "ORDER BY person_id, legislative_period_id, org_name")
        rows[dataset] = [dict(zip(result.columns, r)) for r in result.rows]
    assert len(rows["legislators_sql"]) == 46
    assert rows["legislators_sql"] == rows["legislators_python"]


def test_both_engines_give_the_same_tables_and_rows(batches):
    cfg, clients, _ = batches
    glue = clients.client("glue")
    schemas, rows = {}, {}
    for engine in ENGINES:
        database = cfg.names.glue_database(TEAM, f"legislators_{engine}")
        names = sorted(t["Name"] for t in glue.get_tables(DatabaseName=database)["TableList"])
        assert names == ["history", "persons"], engine
        for table in names:
            described = glue.get_table(DatabaseName=database, Name=table)["Table"]
            schemas[engine, table] = ([(c["Name"], c["Type"]) for c in described["StorageDescriptor"]["Columns"]],
                                      [(k["Name"], k["Type"]) for k in described.get("PartitionKeys", [])])
            order = "person_id, legislative_period_id, org_name" if table == "history" else "id"
            result = run_query(Lake(cfg, clients), f"SELECT * FROM {database}.{table} ORDER BY {order}")
            rows[engine, table] = [dict(zip(result.columns, r)) for r in result.rows]
    for table in ("history", "persons"):
        assert schemas["python", table] == schemas["spark", table]
        assert rows["python", table] == rows["spark", table]
    history = rows["python", "history"]
    assert len(history) == 46 and len(rows["python", "persons"]) == 8
    assert {r["org_name"] for r in history} == {"House of Representatives", "Senate"}
    assert schemas["python", "history"][1] == [("org_name", "string")]
    assert {r["party"] for r in history} <= {"Democrat", "Republican", "Independent"}


def test_each_table_is_checked_by_its_own_rules(batches):
    cfg, clients, _ = batches
    table = Lake(cfg, clients).registry.get("tables/quality")
    for engine in ENGINES:
        items = clients.client("dynamodb").query(
            TableName=table, KeyConditionExpression="id = :d",
            ExpressionAttributeValues={":d": {"S": f"{TEAM}/legislators_{engine}"}})["Items"]
        assert items and items[0]["status"]["S"] == "PASS", (engine, items)
        checked = [(r["M"]["table"]["S"], r["M"]["rule"]["S"]) for r in items[0]["rules"]["L"]]
        assert checked == [("history", "completeness"), ("history", "allowed_values"),
                           ("persons", "uniqueness"), ("persons", "row_count")], engine
