"""`sdlf add-team|add-pipeline|add-dataset` on the emulator: file edits, parents first, refusals that change nothing."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from sdlf_cli.aws.cloudformation import CloudFormationGateway
from sdlf_cli.aws.session import AwsTarget, Clients
from sdlf_cli.config.loader import load_config
from sdlf_cli.errors import UsageError
from sdlf_cli.lake import Lake
from sdlf_cli.ui import make_reporter
from sdlf_cli.workflows.deploy import deploy_layers
from sdlf_cli.workflows.onboard import Addition, add_and_deploy

ROOT = Path(__file__).resolve().parents[2]
ENV = "onbd"


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    dest = tmp_path_factory.mktemp("onboard")
    for part in ("templates", "lambda", "glue"):
        if (ROOT / part).exists():
            shutil.copytree(ROOT / part, dest / part, ignore=shutil.ignore_patterns("__pycache__"))
    (dest / "parameters").mkdir()
    shutil.copy(ROOT / "parameters" / "base.yaml", dest / "parameters" / "base.yaml")
    (dest / "parameters" / f"{ENV}.yaml").write_text(f"# onboarding test lake\nenv: {ENV}\n")
    return dest


@pytest.fixture(scope="module")
def clients_for(emulator):
    return lambda cfg: Clients(AwsTarget(region=cfg.region, endpoint_url=emulator.endpoint_url))


def _add(project, clients_for, addition):
    parameters = str(project / "parameters")
    return add_and_deploy(Lake(lambda: load_config(ENV, parameters), clients_for), parameters, addition,
                          make_reporter("json"), root=project)


def _stack_status(clients_for, cfg, name):
    stack = CloudFormationGateway(clients_for(cfg).client("cloudformation")).describe_stack(name)
    return stack.status if stack else None


def test_without_foundations_nothing_changes_and_it_says_what_to_run(project, clients_for):
    env_file = project / "parameters" / f"{ENV}.yaml"
    before = env_file.read_text()
    with pytest.raises(UsageError) as err:
        _add(project, clients_for, Addition("team", "sales", "sales"))
    assert f"sdlf deploy foundations --env {ENV}" in str(err.value)
    assert env_file.read_text() == before


def test_add_team_pipeline_dataset_then_parents_first(project, clients_for):
    cfg = load_config(ENV, project / "parameters")
    assert deploy_layers(Lake(cfg, clients_for(cfg)), make_reporter("json"), ["foundations"], root=project).ok

    outcome = _add(project, clients_for, Addition("team", "sales", "sales", email="sales@example.com"))
    assert outcome.ok, outcome.to_dict()
    assert [r.name for r in outcome.results if r.layer != "bootstrap"] == [cfg.names.team_stack("sales")]
    text = (project / "parameters" / f"{ENV}.yaml").read_text()
    assert "sales:" in text and "sales@example.com" in text and text.startswith("# onboarding test lake")

    outcome = _add(project, clients_for, Addition("pipeline", "sales", "ingest"))
    assert outcome.ok, outcome.to_dict()
    outcome = _add(project, clients_for, Addition("dataset", "sales", "orders", pipeline="ingest"))
    assert outcome.ok, outcome.to_dict()
    cfg = load_config(ENV, project / "parameters")
    assert _stack_status(clients_for, cfg, cfg.names.dataset_stack("sales", "orders")).endswith("_COMPLETE")

    # A team and pipeline only written to the file (never deployed): adding a dataset deploys them first.
    env_file = project / "parameters" / f"{ENV}.yaml"
    env_file.write_text(env_file.read_text() + "  ops:\n    pipelines:\n      nightly: {}\n")
    outcome = _add(project, clients_for, Addition("dataset", "ops", "logs", pipeline="nightly"))
    assert outcome.ok, outcome.to_dict()
    deployed = [r.name for r in outcome.results if r.layer != "bootstrap"]
    assert deployed == [cfg.names.team_stack("ops"), cfg.names.pipeline_stack("ops", "nightly"),
                        cfg.names.dataset_stack("ops", "logs")]


def test_duplicates_and_unknown_parents_are_refused_without_edits(project, clients_for):
    env_file = project / "parameters" / f"{ENV}.yaml"
    before = env_file.read_text()
    with pytest.raises(UsageError, match="already exists"):
        _add(project, clients_for, Addition("team", "sales", "sales"))
    with pytest.raises(UsageError, match="nosuchteam"):
        _add(project, clients_for, Addition("pipeline", "nosuchteam", "p1"))
    with pytest.raises(UsageError, match="nosuchpipe"):
        _add(project, clients_for, Addition("dataset", "sales", "returns", pipeline="nosuchpipe"))
    assert env_file.read_text() == before
