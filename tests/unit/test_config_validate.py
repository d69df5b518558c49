"""Schema validation: every problem of a file is reported at once, with file:line, field and expectation."""
from __future__ import annotations

from pathlib import Path

import pytest

from sdlf_cli.config.loader import load_config
from sdlf_cli.config.validate import known_regions
from sdlf_cli.errors import ConfigError

BROKEN = Path(__file__).resolve().parent.parent / "fixtures" / "config" / "broken"


def found(env: str, directory: Path = BROKEN) -> list[tuple[int | None, str, str]]:
    """(line, field, message) of every problem, all of which must be in `<env>.yaml`."""
    with pytest.raises(ConfigError) as caught:
        load_config(env, directory)
    problems = caught.value.problems
    assert {p.file for p in problems} == {str(directory / f"{env}.yaml")}
    return [(p.line, p.field, p.message) for p in problems]


LOWER8 = "expected lowercase letters and digits starting with a letter, 2-8 characters"
LOWER12 = "expected lowercase letters and digits starting with a letter, 2-12 characters"


def test_unknown_keys_suggest_the_closest_known_key():
    assert found("typos")[:4] == [
        (2, "teems", "unknown key 'teems' (did you mean 'teams'?); expected one of: org, app, env, region, account, "
                     "notification_email, lake_formation, lake_formation_admins, termination_protection, "
                     "log_retention_days, teams, cicd"),
        (3, "notification_emial", "unknown key 'notification_emial' (did you mean 'notification_email'?); expected "
                                  "one of: org, app, env, region, account, notification_email, lake_formation, "
                                  "lake_formation_admins, termination_protection, log_retention_days, teams, cicd"),
        (6, "teams.engineering.pipeline", "unknown key 'pipeline' (did you mean 'pipelines'?); expected one of: "
                                          "notification_email, pipelines, datasets"),
        (10, "teams.engineering.datasets.legislators.pipline", "unknown key 'pipline' (did you mean 'pipeline'?); "
         "expected one of: pipeline, description, transform, engine, schedule, batch, partition_by, quality, heavy_transform, glue"),
    ]


def test_every_value_problem_of_a_file_is_reported_with_its_line():
    d = "teams.engineering.datasets"
    assert found("values") == [
        (1, "org", f"{LOWER8}, got 'Acme_Corp'"),
        (2, "region", "expected an AWS region such as us-east-1, got 'us-est-1' (did you mean 'us-west-1'?)"),
        (3, "account", 'expected the 12-digit account id as a string, got 123456789012 (a YAML number); quote it: '
                       'account: "123456789012"'),
        (4, "lake_formation", "expected true or false, got 'maybe'"),
        (5, "notification_email", "expected an email address such as ops@example.com, got 'nope'"),
        (7, "teams.e", f"invalid team name: {LOWER12}, got 'e'"),
        (10, "teams.engineering.notification_email",
         "expected an email address such as ops@example.com, got 42 (a number)"),
        (12, "teams.engineering.pipelines.Main", f"invalid pipeline name: {LOWER12}, got 'Main'"),
        (14, "teams.engineering.pipelines.main.description", "expected a string, got a list"),
        (16, f"{d}.x", "invalid dataset name: expected lowercase letters, digits and underscores starting with a "
                       "letter, 2-32 characters, got 'x'"),
        (19, f"{d}.legislators.pipeline",
         "unknown pipeline 'mian' of team 'engineering' (did you mean 'main'?); expected one of: main"),
        (20, f"{d}.legislators.engine", "expected one of python, spark, got 'sparc' (did you mean 'spark'?)"),
        (21, f"{d}.legislators.transform", "expected lowercase letters, digits and underscores starting with a "
                                           "letter, 1-64 characters, got 'Upper'"),
        (22, f"{d}.legislators.schedule",
         "AWS requires 'rate(1 minute)' (singular unit for 1, plural otherwise), got 'rate(1 minutes)'"),
        (23, f"{d}.legislators.batch", "expected min_items <= max_items, got min_items 10 and max_items 5"),
        (24, f"{d}.legislators.partition_by[0]", "expected lowercase letters, digits and underscores, not starting "
                                                 "with a digit, 1-128 characters, got 'Ingestion-Date'"),
        (27, f"{d}.events.schedule", "exactly one of day-of-month and day-of-week must be '?' in 'cron(0 2 * * * *)'"),
        (28, f"{d}.events.batch.min_items", "expected a whole number between 1 and 10000, got 0"),
        (28, f"{d}.events.batch.max_items", "expected a whole number between 1 and 10000, got 20000"),
        (29, f"{d}.events.partition_by",
         "expected a list of column names such as [ingestion_date], got 'ingestion_date'"),
        (30, f"{d}.clicks.pipeline", "missing required field 'pipeline'"),
    ]


def test_quality_rules_are_checked_per_kind():
    q = "teams.engineering.datasets.legislators.quality"
    assert found("quality") == [
        (9, f"{q}[0].rule", "expected one of completeness, uniqueness, range, allowed_values, pattern, row_count, "
                            "freshness, got 'completness' (did you mean 'completeness'?)"),
        (10, f"{q}[1]", "rule 'range' needs at least one of: min, max"),
        (11, f"{q}[2].regex",
         "expected a regular expression that compiles, got '((': missing ), unterminated subpattern at position 1"),
        (12, f"{q}[3].max_age", "expected a duration like 30m, 24h or 7d, got '3 days'"),
        (13, f"{q}[4].threshold", "expected a number between 0 and 1, got 1.5"),
        (13, f"{q}[4].severity", "expected one of warn, fail, got 'error'"),
        (14, f"{q}[5].values", "expected a non-empty list of allowed values, got an empty list"),
        (15, f"{q}[6].min", "expected min <= max, got min 10 and max 1"),
        (16, f"{q}[7].treshold", "unknown key 'treshold'; expected one of: rule, column, severity"),
        (17, f"{q}[8].rule", "missing required field 'rule' (one of: completeness, uniqueness, range, "
                             "allowed_values, pattern, row_count, freshness)"),
        (18, f"{q}[9]", "expected a quality rule mapping like {rule: completeness, column: id, threshold: 1.0}, "
                        "got 'just a string'"),
    ]


def test_env_key_must_equal_the_file_stem():
    assert found("envbad") == [
        (1, "env", "expected 'envbad' (env must equal the parameters file name envbad.yaml), got 'dev'")]


def _lake(tmp_path: Path, dataset_yaml: str) -> Path:
    (tmp_path / "dev.yaml").write_text(
        "org: acme\napp: lake\nregion: us-east-1\nteams:\n  eng:\n    pipelines:\n      main: {}\n"
        "    datasets:\n      ds:\n        pipeline: main\n" + dataset_yaml)
    return tmp_path


@pytest.mark.parametrize("text, message", [
    ("        schedule: rate(5 minute)\n",
     "AWS requires 'rate(5 minutes)' (singular unit for 1, plural otherwise), got 'rate(5 minute)'"),
    ("        schedule: rate(0 minutes)\n",
     "expected rate(N minute[s]|hour[s]|day[s]) or cron(<6 fields>) with N >= 1, got 'rate(0 minutes)'"),
    ("        schedule: every 5 minutes\n",
     "expected rate(N minute[s]|hour[s]|day[s]) or cron(<6 fields>), got 'every 5 minutes'"),
    ("        schedule: cron(0 2 * * ?)\n",
     "expected cron(minutes hours day-of-month month day-of-week year) with 6 fields, got 5 in 'cron(0 2 * * ?)'"),
    ("        schedule: cron(0 2 ! * ? *)\n", "unexpected characters in cron field '!' of 'cron(0 2 ! * ? *)'"),
    ("        schedule: 5\n",
     "expected a schedule expression like rate(5 minutes) or cron(0 2 * * ? *), got 5 (a number)"),
])
def test_schedule_expressions(tmp_path, text, message):
    assert found("dev", _lake(tmp_path, text)) == [(11, "teams.eng.datasets.ds.schedule", message)]


@pytest.mark.parametrize("text", [
    "        schedule: rate(1 minute)\n", "        schedule: rate(12 hours)\n", "        schedule: rate(1 day)\n",
    "        schedule: cron(0/15 8-18 ? * MON-FRI *)\n", "        schedule: cron(0 2 1 * ? *)\n",
    "        batch: {min_items: 10000, max_items: 10000}\n", "        partition_by: []\n",
    "        quality:\n", "        description: '2024'\n",
])
def test_valid_dataset_settings_are_accepted(tmp_path, text):
    cfg = load_config("dev", _lake(tmp_path, text))
    assert cfg.team("eng").datasets[0].name == "ds"


def test_wrong_types_say_what_was_expected(tmp_path):
    (tmp_path / "dev.yaml").write_text("""\
org: 12
app: [lake]
region: us-east-1
account: "12345"
teams:
  eng:
    notification_email: {}
    pipelines: [main]
    datasets: x
  ops: []
""")
    assert found("dev", tmp_path) == [
        (1, "org", f"{LOWER8}, got 12 (a number)"),
        (2, "app", f"{LOWER8}, got a list"),
        (4, "account", "expected exactly 12 digits, got '12345'"),
        (7, "teams.eng.notification_email", "expected an email address such as ops@example.com, got a mapping"),
        (8, "teams.eng.pipelines", "expected a mapping of pipeline names, got a list"),
        (9, "teams.eng.datasets", "expected a mapping of dataset names, got 'x'"),
        (10, "teams.ops", "expected a mapping (key: value lines), got a list"),
    ]


def test_description_given_as_number_is_told_to_quote_it(tmp_path):
    assert found("dev", _lake(tmp_path, "        description: 2024\n")) == [
        (11, "teams.eng.datasets.ds.description", "expected a string, got 2024 (a number); quote it")]


def test_regions_come_from_botocore_partitions_offline():
    regions = known_regions()
    assert {"us-east-1", "eu-west-1", "ap-southeast-4", "cn-north-1", "us-gov-west-1"} <= regions
    assert not any(r.endswith("-global") for r in regions)


@pytest.mark.parametrize("text, message", [
    ("        schedule: cron(61 * * * ? *)\n", "value out of range 0-59 in '61'"),
    ("        schedule: cron(0 2 ? FOO MON *)\n", "unknown value 'FOO'"),
])
def test_schedules_the_emulator_could_not_fire_are_refused_by_the_validator(tmp_path, text, message):
    assert found("dev", _lake(tmp_path, text)) == [(11, "teams.eng.datasets.ds.schedule", message)]
