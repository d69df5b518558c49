"""`config show` rows: every setting with its value and the file:line (or "default") it came from."""
from __future__ import annotations

from pathlib import Path

from sdlf_cli.config.loader import load_config
from sdlf_cli.config.show import format_value, show_rows

VALID = Path(__file__).resolve().parent.parent / "fixtures" / "config" / "valid"


def test_rows_show_values_with_their_origin_or_default():
    rows = {path: (value, origin) for path, value, origin in show_rows(load_config("dev", VALID))}
    base, dev = VALID / "base.yaml", VALID / "dev.yaml"
    d = "teams.engineering.datasets.legislators"
    assert rows["org"] == ("acme", f"{base}:2")
    assert rows["env"] == ("dev", "default")  # from the file name
    assert rows["account"] == ("(not set)", "default")
    assert rows["lake_formation"] == ("false", f"{base}:5")
    assert rows["teams.engineering.notification_email"] == ("eng@example.com", f"{base}:8")
    assert rows["teams.engineering.pipelines.main.description"] == ("from base", f"{base}:11")
    assert rows[f"{d}.pipeline"] == ("main", f"{dev}:6")
    assert rows[f"{d}.schedule"] == ("rate(5 minutes)", "default")
    assert rows[f"{d}.batch.min_items"] == ("1", "default")
    assert rows[f"{d}.partition_by"] == ("[ingestion_date]", "default")
    assert rows[f"{d}.quality"] == ("[]", "default")


def test_rows_are_in_file_order_and_list_every_quality_rule():
    rows = show_rows(load_config("prod", VALID))
    paths = [r[0] for r in rows]
    assert paths[:7] == ["org", "app", "env", "region", "account", "notification_email", "lake_formation"]
    d = "teams.engineering.datasets.legislators"
    quality = [r for r in rows if r[0].startswith(f"{d}.quality[")]
    assert len(quality) == 7
    assert quality[3] == (f"{d}.quality[3]", "{rule: allowed_values, column: party, values: [D, R, I], severity: fail}",
                          f"{VALID / 'prod.yaml'}:21")
    assert (f"{d}.batch.min_items", "1", "default") in rows  # prod set only max_items
    assert (f"{d}.batch.max_items", "500", f"{VALID / 'prod.yaml'}:15") in rows


def test_format_value():
    assert format_value(None) == "(not set)"
    assert format_value(True) == "true"
    assert format_value(0.5) == "0.5"
    assert format_value({"a": [1, "x y"]}) == "{a: [1, x y]}"
