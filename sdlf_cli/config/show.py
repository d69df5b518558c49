"""Data for `sdlf config show`: every resolved setting, its value and the file:line that supplied it.

Settings nobody wrote show the default that applies, with origin "default".
"""
from __future__ import annotations

from typing import Any

import yaml

from sdlf_cli.config.cicd import show_rows as cicd_rows
from sdlf_cli.config.model import LakeConfig
from sdlf_cli.results import Listing

DEFAULT_ORIGIN = "default"
NOT_SET = "(not set)"


def format_value(value: Any) -> str:
    """One-line text for a value: strings as they are, everything else as YAML flow style."""
    if value is None:
        return NOT_SET
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    text = yaml.safe_dump({"v": value}, default_flow_style=True, sort_keys=False, width=10**9).strip()
    return text[len("{v: "):-1]


class ConfigValues(Listing):
    """(field, value, origin) rows."""

    key = "values"

    def to_dict(self) -> dict:
        return {"values": [{"field": f, "value": v, "origin": o} for f, v, o in self]}


def show_rows(cfg: LakeConfig) -> ConfigValues:
    """(field path, value, origin) for every setting of the lake, in file order."""
    rows: list[tuple[str, str, str]] = []

    def row(path: str, value: Any) -> None:
        origin = cfg.origins.get(path)
        rows.append((path, format_value(value), str(origin) if origin else DEFAULT_ORIGIN))

    for key in ("org", "app", "env", "region", "account", "notification_email", "lake_formation",
                "lake_formation_admins", "termination_protection", "log_retention_days"):
        row(key, getattr(cfg, key))
    for team in cfg.teams:
        t = f"teams.{team.name}"
        row(f"{t}.notification_email", team.notification_email)
        for pipeline in team.pipelines:
            row(f"{t}.pipelines.{pipeline.name}.description", pipeline.description)
        for dataset in team.datasets:
            d = f"{t}.datasets.{dataset.name}"
            row(f"{d}.pipeline", dataset.pipeline)
            row(f"{d}.description", dataset.description)
            settings = dataset.settings
            for key in ("transform", "engine", "schedule"):
                row(f"{d}.{key}", settings.get(key))
            for key, value in (settings.get("batch") or {}).items():
                row(f"{d}.batch.{key}", value)
            row(f"{d}.partition_by", settings.get("partition_by"))
            rules = settings.get("quality") or []
            if not rules:
                row(f"{d}.quality", [])
            for i, rule in enumerate(rules):
                row(f"{d}.quality[{i}]", rule)
    for path, value in cicd_rows(cfg.cicd):
        row(path, value)
    return ConfigValues(rows)
