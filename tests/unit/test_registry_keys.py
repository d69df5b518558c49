"""The registry's keys are spelled once (sdlf_cli/registry.py); the Lambda layer, which cannot import the CLI,
spells the one it reads again, so this checks the two agree."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from sdlf_cli import registry
from sdlf_cli.registry import Registry

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "lambda" / "layers" / "datalake" / "python"))

from sdlf_datalake.registry import registration_parameter  # noqa: E402


@pytest.mark.parametrize("prefix", ["/sdlf/acme/lake/dev", "/sdlf/acme/lake/dev/"])
def test_the_layer_reads_registrations_where_the_cli_and_templates_publish_them(prefix):
    assert registration_parameter(prefix, "engineering", "legislators") == \
        f"{prefix.rstrip('/')}/{registry.dataset('engineering', 'legislators')}"


def test_unknown_keys_are_refused():
    with pytest.raises(ValueError, match="'queue-b-url' is not a registry key of a pipeline"):
        registry.pipeline("t", "p", "queue-b-url")
    with pytest.raises(ValueError, match="'buckets/raws' is not a registry key of the lake"):
        registry.bucket("raws")


def test_the_reader_finds_pipelines_datasets_and_registrations_by_the_same_keys():
    values = {
        registry.stage_a_queue("eng", "main"): "https://q/a",
        registry.stage_a_dlq("eng", "main"): "https://q/a-dlq",
        registry.dataset("eng", "orders"): '{"pipeline": "main"}',
        registry.dataset("eng", "broken"): "not json",
        registry.bucket("raw"): "raw-bucket",
    }
    read = Registry(values)
    assert read.pipelines() == {("eng", "main")}
    assert read.datasets() == {("eng", "orders"), ("eng", "broken")}
    assert read.registration("eng", "orders") == {"pipeline": "main"}
    assert read.registration("eng", "broken") is None and read.registration("eng", "none") is None
    assert read.raw_bucket == "raw-bucket"


def test_every_parameter_the_templates_publish_is_a_registry_key():
    from cfn_tools import load_yaml

    from sdlf_cli.config.loader import load_config
    from sdlf_cli.render import render_layer

    cfg = load_config("dev", ROOT / "parameters")
    prefix = cfg.names.ssm_prefix + "/"
    known = set(registry.LAKE_KEYS)
    for team in cfg.teams:
        known |= {registry.team(team.name, k) for k in registry.TEAM_KEYS}
        known |= {registry.pipeline(team.name, p.name, k) for p in team.pipelines for k in registry.PIPELINE_KEYS}
        known |= {registry.dataset(team.name, d.name) for d in team.datasets}
    published = set()
    for layer in ("foundations", "team", "pipeline", "dataset"):
        for template in render_layer(cfg, layer, ROOT / "templates"):
            for resource in (load_yaml(template.body).get("Resources") or {}).values():
                if resource.get("Type") == "AWS::SSM::Parameter":
                    name = resource["Properties"]["Name"]
                    assert name.startswith(prefix), name
                    published.add(name[len(prefix):])
    assert published == known
