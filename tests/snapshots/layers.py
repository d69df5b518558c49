"""Snapshots of the team, pipeline and dataset layers: the lake they are rendered from and which unit.

These layers render one template per team / pipeline / dataset, so each case names the unit
(`RenderedTemplate.name`) it stores. `scripts/update_snapshots.py` regenerates them with the others;
`tests/unit/test_layer_templates.py` compares.
"""
from __future__ import annotations

from dataclasses import replace

from sdlf_cli.config.cicd import CicdConfig, Source, Stage
from sdlf_cli.config.model import Dataset, LakeConfig, Pipeline, Team
from tests.snapshots import SNAPSHOT_DIR, TEMPLATES_DIR

# Full dataset settings, as the config loader fills them in.
SETTINGS = {
    "transform": "default",
    "engine": "python",
    "schedule": "rate(5 minutes)",
    "batch": {"min_items": 1, "max_items": 100},
    "partition_by": ["ingestion_date"],
    "quality": [
        {"rule": "completeness", "column": "id", "threshold": 1.0},
        {"rule": "uniqueness", "column": "id"},
        {"rule": "row_count", "min": 1, "severity": "warn"},
    ],
}


def lake(lake_formation: bool = True, emails: bool = True) -> LakeConfig:
    """Two teams: "eng" with one pipeline and one dataset, "mkt" with two pipelines and a dataset on
    the second one (so a dataset's pipeline is not always the team's first)."""
    return LakeConfig(
        org="acme",
        app="lake",
        env="dev",
        region="eu-west-1",
        notification_email="data-team@example.com" if emails else None,
        lake_formation=lake_formation,
        teams=(
            Team(
                name="eng",
                notification_email="eng@example.com" if emails else None,
                pipelines=(Pipeline("main", "eng"),),
                datasets=(Dataset("legislators", "eng", "main", settings=dict(SETTINGS)),),
            ),
            Team(
                name="mkt",
                pipelines=(Pipeline("main", "mkt"), Pipeline("fast", "mkt")),
                datasets=(Dataset("ads", "mkt", "fast", settings={**SETTINGS, "engine": "spark"}),),
            ),
        ),
    )


FULL = lake()

CONNECTION_ARN = "arn:aws:codeconnections:eu-west-1:111111111111:connection/0a1b2c3d-4e5f-6789-abcd-ef0123456789"


def cicd(provider: str = "connection") -> CicdConfig:
    """A pipeline hosted by dev (account 111111111111) promoting to prod in another account."""
    sources = {
        "connection": Source("connection", CONNECTION_ARN, "acme/data-lake", "main"),
        "codecommit": Source("codecommit", None, "data-lake", "main"),
        "s3": Source("s3"),
    }
    return CicdConfig(
        tooling_env="dev",
        source=sources[provider],
        stages=(Stage("dev", False, "111111111111", "eu-west-1"), Stage("prod", True, "222222222222", "eu-west-1")),
        tooling_account="111111111111",
        test_command="python -m pytest tests/unit -q",
        log_retention_days=30,
    )


WITH_CICD = replace(FULL, account="111111111111", cicd=cicd())

# snapshot file name -> (configuration, layer, unit name)
LAYER_CASES = {
    "team.yaml": (FULL, "team", "eng"),
    "pipeline.yaml": (FULL, "pipeline", "eng/main"),
    "dataset.yaml": (FULL, "dataset", "eng/legislators"),
    "cicd.yaml": (WITH_CICD, "cicd", "cicd"),
    "cicd-target.yaml": (replace(WITH_CICD, env="prod", account="222222222222"), "cicd-target", "cicd-target"),
}


def render_layer_case(file_name: str) -> str:
    from sdlf_cli.render import render_layer

    cfg, layer, unit = LAYER_CASES[file_name]
    (rendered,) = [t for t in render_layer(cfg, layer, TEMPLATES_DIR) if t.name == unit]
    return rendered.body


__all__ = ["FULL", "LAYER_CASES", "SETTINGS", "SNAPSHOT_DIR", "WITH_CICD", "cicd", "lake", "render_layer_case"]
