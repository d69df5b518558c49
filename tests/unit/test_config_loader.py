"""Loading parameters files: origins, base/env merge, YAML-level problems (syntax, duplicates, missing env)."""
from __future__ import annotations

from pathlib import Path

import pytest

from sdlf_cli.config.loader import load_config
from sdlf_cli.config.model import Origin
from sdlf_cli.errors import ConfigError

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "config"
REPO_PARAMETERS = Path(__file__).resolve().parents[2] / "parameters"


def problems(env: str, directory: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(env, directory)
    assert caught.value.exit_code == 2
    return [str(p) for p in caught.value.problems]


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text)
    return path


def test_repo_parameters_load_and_name_every_origin():
    cfg = load_config("dev", REPO_PARAMETERS)
    assert (cfg.org, cfg.app, cfg.env, cfg.region, cfg.lake_formation) == ("acme", "lake", "dev", "us-east-1", False)
    team = cfg.team("engineering")
    assert [p.name for p in team.pipelines] == ["main"]
    (dataset,) = team.datasets
    assert (dataset.name, dataset.pipeline, dataset.team) == ("legislators", "main", "engineering")
    assert len(dataset.settings["quality"]) >= 2
    base, dev = str(REPO_PARAMETERS / "base.yaml"), str(REPO_PARAMETERS / "dev.yaml")
    assert cfg.files == (base, dev)
    assert cfg.origins["org"].file == base
    assert cfg.origins["teams.engineering.datasets.legislators.pipeline"].file == dev


def test_origins_point_at_the_file_and_line_that_supplied_the_final_value():
    cfg = load_config("prod", FIXTURES / "valid")
    base, prod = str(FIXTURES / "valid" / "base.yaml"), str(FIXTURES / "valid" / "prod.yaml")
    assert cfg.origins["org"] == Origin(base, 2)
    assert cfg.origins["region"] == Origin(prod, 3)  # prod overrides base's us-east-1 (base line 4)
    assert cfg.origins["teams.engineering.notification_email"] == Origin(base, 8)  # merged from base
    assert cfg.origins["teams.engineering.pipelines.main.description"] == Origin(prod, 9)
    assert cfg.origins["teams.engineering.datasets.legislators.quality[3].values[1]"] == Origin(prod, 21)
    assert str(cfg.origins["env"]) == f"{prod}:1"


def test_env_file_deep_merges_over_base_and_wins():
    cfg = load_config("prod", FIXTURES / "valid")
    assert cfg.region == "eu-west-1" and cfg.lake_formation is True and cfg.account == "123456789012"
    team = cfg.team("engineering")
    assert team.notification_email == "eng@example.com"  # only in base: kept by the deep merge
    assert team.pipelines[0].description == "from prod"  # in both: env wins
    settings = team.datasets[0].settings
    assert settings["batch"] == {"min_items": 1, "max_items": 500}  # default min filled in
    assert settings["partition_by"] == ["ingestion_date", "country"]
    assert settings["engine"] == "spark" and settings["schedule"] == "cron(0 2 * * ? *)"
    assert [r["rule"] for r in settings["quality"]] == [
        "completeness", "uniqueness", "range", "allowed_values", "pattern", "row_count", "freshness"]
    assert settings["quality"][1] == {"rule": "uniqueness", "column": "id", "severity": "warn"}
    assert settings["quality"][0]["severity"] == "fail"


def test_env_defaults_to_file_stem_and_dataset_settings_to_defaults():
    cfg = load_config("dev", FIXTURES / "valid")
    assert cfg.env == "dev" and "env" not in cfg.origins
    assert cfg.team("engineering").datasets[0].settings == {
        "transform": "default", "engine": "python", "schedule": "rate(5 minutes)",
        "batch": {"min_items": 1, "max_items": 100}, "partition_by": ["ingestion_date"], "quality": [],
        # Stage B resolved: no heavy transform, one table named after the dataset, the Python shell defaults.
        "stage_b": {"kind": "none", "script": None, "script_artifact": None,
                    "tables": [{"name": "legislators", "partition_by": ["ingestion_date"], "quality": [], "sql": None}],
                    "glue": {"dpu": 0.0625, "timeout": 60, "max_concurrency": 3, "arguments": {}}}}


def test_missing_env_file_lists_existing_environments():
    directory = FIXTURES / "valid"
    assert problems("qa", directory) == [
        f"{directory / 'qa.yaml'}: env: no parameters file for environment 'qa' "
        f"(expected {directory / 'qa.yaml'}); environments found: dev, prod"]


def test_missing_parameters_directory(tmp_path):
    (message,) = problems("dev", tmp_path / "nowhere")
    assert "no parameters file for environment 'dev'" in message and "no <env>.yaml files in" in message


def test_yaml_syntax_error_reports_its_line():
    directory = FIXTURES / "broken"
    assert problems("syntax", directory) == [
        f"{directory / 'syntax.yaml'}:4: yaml: invalid YAML: expected ',' or '}}', but got '<scalar>' "
        "(while parsing a flow mapping at line 3)"]


def test_duplicate_keys_are_reported_with_both_lines():
    directory = FIXTURES / "broken"
    file = directory / "dupes.yaml"
    assert problems("dupes", directory) == [
        f"{file}:5: teams.engineering.pipelines.main: duplicate key 'main' (first defined at line 4); "
        "a key may appear only once in a mapping",
        f"{file}:7: teams.engineering: duplicate key 'engineering' (first defined at line 2); "
        "a key may appear only once in a mapping"]


def test_top_level_must_be_a_mapping():
    directory = FIXTURES / "broken"
    assert problems("notamap", directory) == [
        f"{directory / 'notamap.yaml'}:1: yaml: expected a mapping of settings (key: value lines) at the top level"]


def test_problems_in_base_and_env_are_collected_together(tmp_path):
    write(tmp_path, "base.yaml", "org: acme\napp: lake\nregion: us-east-1\nteams: [\n")
    write(tmp_path, "dev.yaml", "lake_formation: nope\n")
    found = problems("dev", tmp_path)
    assert found[0].startswith(f"{tmp_path / 'base.yaml'}:5: yaml: invalid YAML")
    assert f"{tmp_path / 'dev.yaml'}:1: lake_formation: expected true or false, got 'nope'" in found
    # base.yaml could not be read, so org/app/region are reported missing rather than silently defaulted
    assert any("missing required field 'org'" in p for p in found)


def test_missing_required_fields_name_both_files(tmp_path):
    write(tmp_path, "base.yaml", "app: lake\n")
    write(tmp_path, "dev.yaml", "teams: {}\n")
    dev, base = tmp_path / "dev.yaml", tmp_path / "base.yaml"
    assert problems("dev", tmp_path) == [
        f"{dev}: org: missing required field 'org' (set it in {base} or {dev})",
        f"{dev}: region: missing required field 'region' (set it in {base} or {dev})"]


def test_env_in_base_must_match_the_loaded_environment():
    directory = FIXTURES / "badbase"
    assert problems("prod", directory) == [
        f"{directory / 'base.yaml'}:4: env: expected 'prod' (env must equal the parameters file name prod.yaml), "
        "got 'dev'"]


def test_env_file_name_must_itself_be_a_valid_env(tmp_path):
    write(tmp_path, "Production.yaml", "org: acme\napp: lake\nregion: us-east-1\n")
    assert problems("Production", tmp_path) == [
        f"{tmp_path / 'Production.yaml'}: env: environment name from the file name: expected lowercase letters "
        "and digits starting with a letter, 2-7 characters, got 'Production'"]


def test_yaml_merge_keys_and_null_entries_are_understood(tmp_path):
    write(tmp_path, "dev.yaml", """\
org: acme
app: lake
region: us-east-1
defaults: &defaults
  pipeline: main
  engine: spark
""")
    # 'defaults' is not a known key: anchors must live inside known structure
    problem = problems("dev", tmp_path)[0]
    assert "dev.yaml:4: defaults: unknown key 'defaults'; expected one of: org, app, env, region, " in problem
    assert problem.endswith(", teams, cicd")
    write(tmp_path, "dev.yaml", """\
org: acme
app: lake
region: us-east-1
teams:
  engineering:
    pipelines:
      main:
    datasets:
      one: &spark {pipeline: main, engine: spark}
      two:
        <<: *spark
        engine: python
  empty:
""")
    cfg = load_config("dev", tmp_path)
    one, two = cfg.team("engineering").datasets
    assert (one.settings["engine"], two.settings["engine"], two.pipeline) == ("spark", "python", "main")
    assert cfg.team("empty").pipelines == () and cfg.team("empty").datasets == ()


def test_unknown_yaml_tag_is_a_problem_not_a_crash(tmp_path):
    write(tmp_path, "dev.yaml", "org: !Ref Org\napp: lake\nregion: us-east-1\n")
    first, then = problems("dev", tmp_path)
    assert first.startswith(f"{tmp_path / 'dev.yaml'}:1: org: cannot read value 'Org'")
    assert then.endswith("org: expected lowercase letters and digits starting with a letter, 2-8 characters, "
                         "got nothing (null)")
