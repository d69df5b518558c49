"""A dataset's heavy transform, output tables and Glue settings in the parameters file: resolved, or refused
at validation with file:line, field and what was expected."""
from __future__ import annotations

from pathlib import Path

import pytest

from sdlf_cli.config.loader import load_config
from sdlf_cli.config.transform_sql import SqlSubsetError, translate
from sdlf_cli.errors import ConfigError

HEAD = """org: acme
app: lake
env: dev
region: us-east-1
teams:
  eng:
    pipelines: {main: {}}
    datasets:
      history:
        pipeline: main
"""


def _lake(tmp_path: Path, body: str, engine: str = "python"):
    (tmp_path / "parameters").mkdir(exist_ok=True)
    (tmp_path / "parameters" / "dev.yaml").write_text(HEAD + f"        engine: {engine}\n" + body)
    return load_config("dev", tmp_path / "parameters")


def _problems(tmp_path: Path, body: str, engine: str = "python") -> list[tuple[int | None, str, str]]:
    with pytest.raises(ConfigError) as caught:
        _lake(tmp_path, body, engine)
    return [(p.line, p.field, p.message) for p in caught.value.problems]


def _stage_b(config):
    return config.teams[0].datasets[0].settings["stage_b"]


def test_a_dataset_without_a_transform_is_one_table_with_default_glue_settings(tmp_path):
    stage_b = _stage_b(_lake(tmp_path, ""))
    assert stage_b["kind"] == "none"
    assert stage_b["tables"] == [{"name": "history", "partition_by": ["ingestion_date"], "quality": [], "sql": None}]
    assert stage_b["glue"] == {"dpu": 0.0625, "timeout": 60, "max_concurrency": 3, "arguments": {}}


def test_sql_is_translated_per_engine_and_tables_take_their_own_settings(tmp_path):
    stage_b = _stage_b(_lake(tmp_path, """        partition_by: [ingestion_date]
        heavy_transform:
          sql:
            members: "SELECT p.id, nvl(p.name, 'x') AS name, concat(p.a, p.b) AS ab FROM input p WHERE p.id IS NOT NULL"
            totals: "SELECT count(*) AS n FROM input"
          tables:
            members:
              partition_by: [name]
              quality: [{rule: uniqueness, column: id}]
        glue: {worker_type: G.2X, workers: 10, timeout: 120, max_concurrency: 5, arguments: {"--enable-metrics": "true"}}
""", engine="spark"))
    assert stage_b["kind"] == "sql"
    members, totals = stage_b["tables"]
    assert members["name"] == "members" and members["partition_by"] == ["name"]
    assert members["quality"] == [{"rule": "uniqueness", "column": "id", "severity": "fail"}]
    assert totals["partition_by"] == ["ingestion_date"] and totals["quality"] == []
    assert members["sql"]["python"] == ("SELECT p.id, COALESCE(p.name, 'x') AS name, p.a || p.b AS ab FROM input AS p "
                                        "WHERE NOT p.id IS NULL")
    assert members["sql"]["spark"].startswith("SELECT p.id, COALESCE(p.name, 'x') AS name, CONCAT(p.a, p.b) AS ab")
    assert stage_b["glue"] == {"worker_type": "G.2X", "workers": 10, "timeout": 120, "max_concurrency": 5,
                               "arguments": {"--enable-metrics": "true"}}


def test_a_script_is_checked_and_named_as_its_artifact(tmp_path):
    (tmp_path / "glue" / "transforms").mkdir(parents=True)
    (tmp_path / "glue" / "transforms" / "joins.py").write_text("def transform(batch, context):\n    return {}\n")
    stage_b = _stage_b(_lake(tmp_path, """        heavy_transform:
          script: glue/transforms/joins.py
          tables: [history, persons]
"""))
    assert stage_b["kind"] == "script" and stage_b["script"] == "glue/transforms/joins.py"
    assert stage_b["script_artifact"] == "transform_joins"
    assert [t["name"] for t in stage_b["tables"]] == ["history", "persons"]
    (tmp_path / "glue" / "transforms" / "joins.py").write_text("def run(batch):\n    return {}\n")
    assert _problems(tmp_path, """        heavy_transform: {script: glue/transforms/joins.py}
""") == [(12, "teams.eng.datasets.history.heavy_transform.script",
          "glue/transforms/joins.py must define transform(batch, context) at its top level")]
    assert _problems(tmp_path, """        heavy_transform: {script: glue/transforms/missing.py}
""")[0][2].startswith("glue/transforms/missing.py does not exist")


@pytest.mark.parametrize("body, line, field, message", [
    ('        heavy_transform: {sql: "SELECT size(tags) FROM input"}\n', 12, "heavy_transform.sql",
     "function 'SIZE' is outside the SQL both engines run alike; use a script transform for it"),
    ('        heavy_transform: {sql: "SELECT id FROM orders"}\n', 12, "heavy_transform.sql",
     "reads table 'orders'; a heavy transform reads only `input` (the batch) and its own WITH queries"),
    ('        heavy_transform: {sql: "DELETE FROM input"}\n', 12, "heavy_transform.sql",
     "expected a query (SELECT ...), got DELETE"),
    ('        heavy_transform: {sql: "SELECT 1", script: glue/transforms/x.py}\n', 12, "heavy_transform.script",
     "give either sql or script, not both"),
    ('        heavy_transform: {sql: {a: "SELECT 1"}, tables: {b: {}}}\n', 12, "heavy_transform.tables",
     "table(s) b have no query under sql; expected one of: a"),
    ("        glue: {dpu: 2}\n", 12, "glue.dpu", "a Glue Python shell job takes 0.0625 or 1 DPU, got 2"),
    ("        glue: {workers: 4}\n", 12, "glue.workers",
     "workers is for the spark engine; this dataset's engine is python (dpu apply)"),
    ("        glue: {timeout: 5000}\n", 12, "glue.timeout", "expected a whole number between 1 and 2880, got 5000"),
    ('        glue: {arguments: {"--manifest": "x"}}\n', 12, "glue.arguments.--manifest",
     "--manifest is set by sdlf or reserved by Glue; reserved: --engine, --manifest, --transform, --tables, "
     "--additional-python-modules, --python-modules-installer-option, --JOB_NAME, --JOB_ID, --JOB_RUN_ID, "
     "--SECURITY_CONFIGURATION, --scriptLocation"),
    ('        quality: [{rule: row_count, min: 1}]\n        heavy_transform: {sql: {a: "SELECT 1", b: "SELECT 2"}}\n',
     12, "quality", "with several output tables, put each table's rules under heavy_transform.tables.<table>.quality"),
])
def test_what_glue_or_the_engines_would_refuse_is_refused_at_validation(tmp_path, body, line, field, message):
    assert _problems(tmp_path, body) == [(line, "teams.eng.datasets.history." + field, message)]


def test_sql_outside_the_subset_names_what_and_where():
    with pytest.raises(SqlSubsetError, match="CAST to TIMESTAMPTZ"):
        translate("SELECT CAST(a AS TIMESTAMP) FROM input")
    with pytest.raises(SqlSubsetError, match=r"not valid Spark SQL \(line 1"):
        translate("SELECT FROM WHERE (")
