"""The lakes the security tests render: every layer (cicd too, once it has templates) of

- "dev": parameters/dev.yaml, the lake the README deploys;
- "two-teams": two teams, Lake Formation on, one dataset on the python engine and one on spark, e-mails on;
- "two-teams-plain": the same lake with Lake Formation and every e-mail off.
"""
from __future__ import annotations

from dataclasses import replace
from functools import cache

from sdlf_cli.config.loader import load_config
from sdlf_cli.config.model import LakeConfig
from sdlf_cli.naming import LAYERS
from sdlf_cli.render import RenderedTemplate, render_layer
from tests.snapshots import ROOT, TEMPLATES_DIR
from tests.snapshots.layers import lake


def _lakes() -> dict[str, LakeConfig]:
    return {
        "dev": load_config("dev", ROOT / "parameters"),
        "two-teams": lake(lake_formation=True, emails=True),
        "two-teams-plain": lake(lake_formation=False, emails=False),
    }


LAKE_NAMES = ("dev", "two-teams", "two-teams-plain")


@cache
def lake_config(name: str) -> LakeConfig:
    return _lakes()[name]


@cache
def rendered(name: str) -> tuple[RenderedTemplate, ...]:
    """Every template of the lake, each under a folder named after the lake (so two lakes never collide)."""
    cfg = lake_config(name)
    templates = [t for layer in LAYERS if (TEMPLATES_DIR / layer).is_dir()
                 for t in render_layer(cfg, layer, TEMPLATES_DIR)]
    return tuple(replace(t, layer=f"{name}/{t.layer}") for t in templates)


def all_rendered() -> list[RenderedTemplate]:
    return [t for name in LAKE_NAMES for t in rendered(name)]
