"""Rendered-template snapshots: the configurations they are rendered from, and where they live.

`scripts/update_snapshots.py` regenerates the files; `tests/unit/test_render_snapshots.py` compares.
"""
from __future__ import annotations

from pathlib import Path

from sdlf_cli.config.model import LakeConfig

SNAPSHOT_DIR = Path(__file__).resolve().parent
ROOT = SNAPSHOT_DIR.parent.parent
TEMPLATES_DIR = ROOT / "templates"

# A fixed lake with every optional feature on, and one with every optional feature off.
FULL = LakeConfig(
    org="acme",
    app="lake",
    env="dev",
    region="eu-west-1",
    notification_email="data-team@example.com",
    lake_formation=True,
)
MINIMAL = LakeConfig(org="acme", app="lake", env="dev", region="eu-west-1")

# snapshot file name -> (configuration, layer)
CASES = {
    "bootstrap.yaml": (FULL, "bootstrap"),
    "foundations.yaml": (FULL, "foundations"),
    "foundations-minimal.yaml": (MINIMAL, "foundations"),
}


def render_case(file_name: str) -> str:
    from sdlf_cli.render import render_layer

    cfg, layer = CASES[file_name]
    (rendered,) = render_layer(cfg, layer, TEMPLATES_DIR)
    return rendered.body
