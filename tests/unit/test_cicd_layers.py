"""The delivery layers in the layer model: deployed only when named (never by --all), the pipeline only from
its tooling environment, listed by render/lint/status, and destroyed only when named (the target last)."""
from __future__ import annotations

from dataclasses import replace

import pytest

from sdlf_cli.errors import UsageError
from sdlf_cli.workflows.build import layers_of
from sdlf_cli.workflows.deploy import all_layers, delivery_layers, layers_to_deploy
from sdlf_cli.workflows.destroy import DEPTH, wanted
from tests.snapshots.layers import FULL, WITH_CICD

PROD = replace(WITH_CICD, env="prod")


def test_all_never_includes_the_delivery_layers():
    assert "cicd" not in all_layers(WITH_CICD) and "cicd-target" not in all_layers(WITH_CICD)
    assert layers_to_deploy(WITH_CICD, [], True) == all_layers(WITH_CICD)


def test_the_pipeline_deploys_from_its_tooling_environment_and_targets_from_every_stage():
    assert delivery_layers(WITH_CICD) == ["cicd", "cicd-target"]
    assert delivery_layers(PROD) == ["cicd-target"]
    assert delivery_layers(FULL) == []
    assert layers_to_deploy(WITH_CICD, ["cicd"], False) == ["cicd"]
    assert layers_to_deploy(PROD, ["cicd-target"], False) == ["cicd-target"]
    with pytest.raises(UsageError, match="hosted by environment 'dev'.*sdlf deploy cicd --env dev"):
        layers_to_deploy(PROD, ["cicd"], False)
    with pytest.raises(UsageError, match="declare no `cicd` section"):
        layers_to_deploy(FULL, ["cicd-target"], False)


def test_render_and_lint_cover_the_delivery_layers():
    assert layers_of(WITH_CICD, None)[-2:] == ["cicd", "cicd-target"]
    assert layers_of(PROD, None)[-1] == "cicd-target"


def test_destroy_takes_a_delivery_layer_only_when_named_and_the_target_last():
    assert wanted("cicd", "acme-lake-dev-cicd", ["cicd"])
    assert not wanted("foundations", "acme-lake-dev-foundations", ["cicd"])
    assert not wanted("cicd", "acme-lake-dev-cicd", ["foundations"])
    assert wanted("team", "acme-lake-dev-team-eng", ["foundations"])
    assert wanted("cicd-target", "acme-lake-dev-cicd-target", None)
    assert DEPTH["cicd-target"] == DEPTH["bootstrap"] < DEPTH["foundations"]
