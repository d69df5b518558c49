"""Every derived resource name is checked against AWS limits with the longest account and region."""
from __future__ import annotations

from pathlib import Path

import pytest

from sdlf_cli.config.loader import load_config
from sdlf_cli.config.model import Dataset, LakeConfig, Pipeline, Team
from sdlf_cli.config.validate import check_names
from sdlf_cli.errors import ConfigError
from sdlf_cli.naming import LIMITS, LONGEST_ACCOUNT, LONGEST_REGION, derived_names

BROKEN = Path(__file__).resolve().parent.parent / "fixtures" / "config" / "broken"


def lake(org="acme", app="lake", env="dev", team="eng", pipeline="main", dataset="orders", region="us-east-1"):
    return LakeConfig(org=org, app=app, env=env, region=region, teams=(Team(
        name=team, pipelines=(Pipeline(pipeline, team),), datasets=(Dataset(dataset, team, pipeline),)),))


def test_derived_names_cover_every_layer_and_kind():
    names = derived_names(lake())
    by_kind = {}
    for d in names:
        by_kind.setdefault(d.kind, set()).add(d.name)
    assert set(by_kind) <= set(LIMITS)
    assert {"acme-lake-dev-bootstrap", "acme-lake-dev-foundations", "acme-lake-dev-team-eng",
            "acme-lake-dev-pipeline-eng-main", "acme-lake-dev-dataset-eng-orders"} <= by_kind["stack"]
    assert f"acme-lake-dev-{LONGEST_REGION}-{LONGEST_ACCOUNT}-artifacts" in by_kind["bucket"]
    assert {"acme-lake-dev-eng-main-routing-a", "acme-lake-dev-eng-main-transform-a", "acme-lake-dev-eng-main-error-a",
            "acme-lake-dev-eng-main-routing-b", "acme-lake-dev-eng-main-error-b",
            "acme-lake-dev-catalog"} <= by_kind["function"]
    assert {"acme-lake-dev-eng-lambda", "acme-lake-dev-eng-states", "acme-lake-dev-eng-glue"} <= by_kind["role"]
    assert {"acme-lake-dev-eng-main-sm-a", "acme-lake-dev-eng-main-sm-b"} == by_kind["state_machine"]
    assert {"acme-lake-dev-catalog", "acme-lake-dev-catalog-dlq", "acme-lake-dev-eng-main-a",
            "acme-lake-dev-eng-orders-b"} <= by_kind["queue"]
    assert by_kind["glue_job"] == {"acme-lake-dev-eng-orders-job", "acme-lake-dev-eng-orders-dq"}
    assert by_kind["crawler"] == {"acme-lake-dev-eng-orders-crawler"}
    assert "acme-lake-dev-eng-orders-schedule" in by_kind["rule"]
    assert "acme-lake-dev-eng-notifications" in by_kind["topic"]
    owner = next(d for d in names if d.name == "acme-lake-dev-eng-orders-schedule")
    assert owner.fields == ("teams.eng.datasets.orders", "teams.eng", "org", "app", "env")


def test_the_longest_names_the_rules_allow_fit_every_limit_with_a_16_char_dataset():
    cfg = lake(org="o" * 8, app="a" * 8, env="e" * 7, team="t" * 12, pipeline="p" * 12, dataset="d" * 16)
    assert check_names(cfg) == []
    assert max(len(d.name) for d in derived_names(cfg) if d.kind == "bucket") == 63


def test_a_longer_configured_region_is_used_when_it_is_longer_than_the_default():
    cfg = lake(org="o" * 8, app="a" * 8, env="e" * 7, region="us-isof-south-1")
    (problem,) = check_names(cfg)
    assert problem.field == "org"
    assert "bucket 'oooooooo-aaaaaaaa-eeeeeee-us-isof-south-1-123456789012-analytics' is 64 characters " \
           "(AWS allows 63)" in problem.message
    assert problem.message.endswith("shorten org 'oooooooo', app 'aaaaaaaa' or env 'eeeeeee' by at least 1 character")


def test_too_long_dataset_is_reported_once_at_its_line_naming_the_fields_to_shorten():
    with pytest.raises(ConfigError) as caught:
        load_config("toolong", BROKEN)
    (problem,) = caught.value.problems
    assert (problem.file, problem.line) == (str(BROKEN / "toolong.yaml"), 6)
    assert problem.field == "teams.engineering1.datasets.a_very_long_dataset_name_of_32ch"
    assert problem.message == (
        "derived names too long: rule 'acme-lake-toolong-engineering1-a_very_long_dataset_name_of_32ch-schedule' "
        "is 72 characters (AWS allows 64); shorten the dataset name 'a_very_long_dataset_name_of_32ch' "
        "(teams.engineering1.datasets.a_very_long_dataset_name_of_32ch), the team name 'engineering1' "
        "(teams.engineering1), org 'acme', app 'lake' or env 'toolong' by at least 8 characters")


def test_every_too_long_name_of_one_field_is_listed_in_one_problem():
    cfg = lake(org="o" * 8, app="a" * 8, env="e" * 7, team="t" * 12, pipeline="p" * 12, dataset="d" * 32)
    (problem,) = check_names(cfg)
    assert problem.field == f"teams.{'t' * 12}.datasets.{'d' * 32}"
    assert "rule '" in problem.message and "by at least 16 characters" in problem.message
    assert problem.line is None  # built in code, no origin: points at the env file


def test_a_team_whose_names_clash_with_lake_resources_is_reported(tmp_path):
    # The lake has workgroup '<prefix>-primary' and key alias 'alias/<prefix>-lake'; a team named
    # 'primary' or 'lake' would get the same names for its own workgroup / key alias.
    (tmp_path / "dev.yaml").write_text("org: acme\napp: lake\nregion: us-east-1\nteams:\n  eng: {}\n  primary: {}\n")
    with pytest.raises(ConfigError) as caught:
        load_config("dev", tmp_path)
    assert [str(p) for p in caught.value.problems] == [
        f"{tmp_path / 'dev.yaml'}:6: teams.primary: workgroup name 'acme-lake-dev-primary' is also the name of "
        "a lake-wide resource; rename teams.primary"]


def test_same_team_listed_twice_in_code_is_not_a_clash_of_different_fields():
    team = Team(name="eng", pipelines=(Pipeline("main", "eng"),))
    cfg = LakeConfig(org="acme", app="lake", env="dev", region="us-east-1", teams=(team, team))
    assert check_names(cfg) == []
