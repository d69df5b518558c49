"""Editing parameters files: entries land in the right place, comments survive, bad edits change nothing."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from sdlf_cli.config import editor
from sdlf_cli.config.loader import load_config
from sdlf_cli.errors import ConfigError, UsageError

REPO_PARAMETERS = Path(__file__).resolve().parents[2] / "parameters"


@pytest.fixture
def params(tmp_path) -> Path:
    for name in ("base.yaml", "dev.yaml"):
        shutil.copy(REPO_PARAMETERS / name, tmp_path / name)
    return tmp_path / "dev.yaml"


def comments(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip().startswith("#")]


def test_add_team_pipeline_dataset_round_trip_keeps_comments(params):
    before = comments(params)
    editor.add_team(params, "marketing", email="mk@example.com")
    editor.add_pipeline(params, "marketing", "main", description="Marketing: main")
    editor.add_dataset(params, "marketing", "clicks", "main", schedule="rate(1 hour)",
                       batch={"min_items": 2, "max_items": 50},
                       quality=[{"rule": "uniqueness", "column": "click_id"}])
    editor.add_pipeline(params, "engineering", "heavy")
    editor.add_dataset(params, "engineering", "events", "heavy", engine="spark", description=None)
    assert comments(params) == before
    cfg = load_config("dev", params.parent)
    marketing = cfg.team("marketing")
    assert marketing.notification_email == "mk@example.com"
    assert [(p.name, p.description) for p in marketing.pipelines] == [("main", "Marketing: main")]
    (clicks,) = marketing.datasets
    assert clicks.settings["batch"] == {"min_items": 2, "max_items": 50}
    assert clicks.settings["quality"] == [{"rule": "uniqueness", "column": "click_id", "severity": "fail"}]
    engineering = cfg.team("engineering")
    assert [p.name for p in engineering.pipelines] == ["main", "heavy"]
    assert [(d.name, d.pipeline, d.settings["engine"]) for d in engineering.datasets] == [
        ("legislators", "main", "python"), ("events", "heavy", "spark")]
    text = params.read_text()
    # new entries sit with their siblings, indented like them, not appended at the end of the file
    assert "      main:\n        description: Default two-stage pipeline (light transform, then Parquet)\n" \
           "      heavy: {}\n" in text
    assert "          - {rule: row_count, min: 1, severity: warn}\n      events:\n        pipeline: heavy\n" \
           "        engine: spark\n" in text
    assert text.endswith("  marketing:\n    notification_email: mk@example.com\n    pipelines:\n      main:\n"
                         "        description: 'Marketing: main'\n    datasets:\n      clicks:\n"
                         "        pipeline: main\n        schedule: rate(1 hour)\n"
                         "        batch: {min_items: 2, max_items: 50}\n"
                         "        quality: [{rule: uniqueness, column: click_id}]\n")


def test_add_to_file_without_teams_and_to_empty_values(tmp_path):
    path = tmp_path / "qa.yaml"
    path.write_text("org: acme  # the org\napp: lake\nregion: us-east-1\n# trailing comment")
    editor.add_team(path, "ops")
    assert path.read_text() == ("org: acme  # the org\napp: lake\nregion: us-east-1\n# trailing comment\n"
                                "teams:\n  ops: {}\n")
    editor.add_pipeline(path, "ops", "main")
    editor.add_dataset(path, "ops", "logs", "main")
    assert path.read_text().endswith("teams:\n  ops:\n    pipelines:\n      main: {}\n    datasets:\n      logs:\n"
                                     "        pipeline: main\n")
    path.write_text("org: acme\napp: lake\nregion: us-east-1\nteams:   # none yet\n")
    editor.add_team(path, "ops", email="ops@example.com")
    assert path.read_text() == ("org: acme\napp: lake\nregion: us-east-1\nteams:   # none yet\n  ops:\n"
                                "    notification_email: ops@example.com\n")
    assert load_config("qa", tmp_path).team("ops").notification_email == "ops@example.com"


def test_trailing_comments_of_the_parent_block_stay_with_it(tmp_path):
    path = tmp_path / "qa.yaml"
    path.write_text("org: acme\napp: lake\nregion: us-east-1\nteams:\n  eng:\n    pipelines:\n      main: {}\n"
                    "      # old: {}\n\n# the end\n")
    editor.add_pipeline(path, "eng", "second")
    assert path.read_text().endswith("      main: {}\n      # old: {}\n      second: {}\n\n# the end\n")


def test_duplicates_and_unknown_parents_are_refused_naming_the_file(params):
    original = params.read_text()
    with pytest.raises(UsageError, match=rf"^{params}:15: team 'engineering' already exists$"):
        editor.add_team(params, "engineering")
    with pytest.raises(UsageError, match=rf"^{params}:20: pipeline 'main' of team 'engineering' already exists$"):
        editor.add_pipeline(params, "engineering", "main")
    with pytest.raises(UsageError, match=rf"^{params}:25: dataset 'legislators' of team 'engineering' already"):
        editor.add_dataset(params, "engineering", "legislators", "main")
    with pytest.raises(UsageError, match=rf"^{params}: team 'sales' is not defined in this file; teams defined "
                                         r"there: engineering$"):
        editor.add_pipeline(params, "sales", "main")
    with pytest.raises(UsageError, match=rf"^{params}: team 'engineering' has no pipeline 'nope'; pipelines "
                                         r"defined there: main$"):
        editor.add_dataset(params, "engineering", "orders", "nope")
    with pytest.raises(UsageError, match=r"invalid team name: expected lowercase letters and digits starting with a "
                                         r"letter, 2-12 characters, got 'Sales'"):
        editor.add_team(params, "Sales")
    with pytest.raises(UsageError, match=r"unknown dataset setting\(s\) colour; expected: description, transform"):
        editor.add_dataset(params, "engineering", "orders", "main", colour="red")
    with pytest.raises(UsageError, match=r"^.*no such parameters file$"):
        editor.add_team(params.parent / "qa.yaml", "ops")
    assert params.read_text() == original


def test_an_edit_that_would_not_validate_is_not_written(params):
    original = params.read_text()
    with pytest.raises(UsageError) as caught:
        editor.add_dataset(params, "engineering", "orders", "main", schedule="rate(1 hours)")
    message = str(caught.value)
    assert message.startswith(f"{params}: adding dataset engineering/orders would leave the configuration invalid; "
                              "the file was not changed:\n")
    assert "teams.engineering.datasets.orders.schedule: AWS requires 'rate(1 hour)'" in message
    assert caught.value.exit_code == 2
    assert params.read_text() == original
    assert not list(params.parent.glob(".*.tmp"))


def test_broken_file_is_reported_not_edited(tmp_path):
    path = tmp_path / "qa.yaml"
    path.write_text("teams:\n  eng: {\n")
    with pytest.raises(ConfigError) as caught:
        editor.add_team(path, "ops")
    assert str(caught.value.problems[0]).startswith(f"{path}:3: yaml: invalid YAML")


def test_flow_style_parent_with_entries_is_refused(tmp_path):
    path = tmp_path / "qa.yaml"
    path.write_text("org: acme\napp: lake\nregion: us-east-1\nteams: {eng: {}}\n")
    with pytest.raises(UsageError, match=rf"^{path}:4: cannot add 'ops' here: expected a block mapping"):
        editor.add_team(path, "ops")
