"""A change reaches every stack that depends on it, and nothing else moves.

On a lake of its own (env "inpt") from a temp copy of the project: a custom light transform added to the
shared library layer exactly as docs/transforms.md says reaches the pipeline's functions through an
SSM-typed parameter the pipeline template never changes in. `sdlf status` must show the pipeline as
changed before the deploy, `sdlf deploy --all` must update it (every function on the new layer version,
the new transform really running), and a redeploy with nothing changed must make no CloudFormation write.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from sdlf_cli.aws.session import AwsTarget, Clients
from sdlf_cli.config.loader import load_config
from sdlf_cli.lake import Lake
from sdlf_cli.ui import make_reporter
from sdlf_cli.workflows.deploy import DELIVERY_LAYERS, all_layers, deploy_layers
from sdlf_cli.workflows.ingest import catalog_rows, ingest_files
from sdlf_cli.workflows.status import CHANGED, IN_SYNC, lake_status

from tests.integration.helpers import wait_for

ROOT = Path(__file__).resolve().parents[2]
ENV = "inpt"
LAKE = """env: inpt
teams:
  sales:
    pipelines:
      main: {{}}
    datasets:
      orders:
        pipeline: main
        transform: {transform}
        schedule: rate(5 minutes)
"""
TRANSFORM = '''from sdlf_datalake.transforms import RawObject, StageObject, stage_name


def transform(obj: RawObject) -> list[StageObject]:
    rows = [{"shouted": line.upper()} for line in obj.text.splitlines() if line.strip()]
    return [StageObject.from_records(stage_name(obj.relative_key), rows)]
'''
# CloudFormation calls that change something; a no-op deploy makes none of them.
WRITES = {"CreateChangeSet", "ExecuteChangeSet", "DeleteChangeSet", "CreateStack", "UpdateStack", "DeleteStack"}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    dest = tmp_path_factory.mktemp("inputs")
    for part in ("templates", "lambda", "glue", "parameters"):
        shutil.copytree(ROOT / part, dest / part, ignore=shutil.ignore_patterns("__pycache__"))
    (dest / "parameters" / f"{ENV}.yaml").write_text(LAKE.format(transform="default"))
    return dest


class CallLog:
    """Every CloudFormation operation the deployer's client sends."""

    def __init__(self, client):
        self.operations: list[str] = []
        client.meta.events.register("before-call.cloudformation.*", self._record)

    def _record(self, model, **_):
        self.operations.append(model.name)

    def writes(self) -> list[str]:
        return [op for op in self.operations if op in WRITES]


def _deploy(project, cfg, clients):
    outcome = deploy_layers(Lake(cfg, clients), make_reporter("json"), all_layers(cfg, project), root=project)
    assert outcome.ok, outcome.to_dict()
    return {r.name: r.status for r in outcome.results}


def _drift(cfg, clients, project):
    """The lake's stacks (the delivery pipeline's are deployed by people, never by `deploy --all`)."""
    return {s.name: s.drift for s in lake_status(Lake(cfg, clients), root=project) if s.layer not in DELIVERY_LAYERS}


def test_a_new_layer_reaches_every_pipeline_function_and_a_no_op_writes_nothing(project, emulator):
    cfg = load_config(ENV, project / "parameters")
    clients = Clients(AwsTarget(region=cfg.region, endpoint_url=emulator.endpoint_url))
    calls = CallLog(clients.client("cloudformation"))
    names = cfg.names
    pipeline = names.pipeline_stack("sales", "main")
    _deploy(project, cfg, clients)

    # Nothing changed: every stack unchanged, in sync, and not one CloudFormation write.
    calls.operations.clear()
    assert set(_deploy(project, cfg, clients).values()) == {"unchanged"}
    assert calls.writes() == []
    assert set(_drift(cfg, clients, project).values()) == {IN_SYNC}

    # A custom transform in the layer, as docs/transforms.md tells users, and a dataset that uses it.
    (project / "lambda/layers/datalake/python/sdlf_datalake/transforms/shout.py").write_text(TRANSFORM)
    (project / "parameters" / f"{ENV}.yaml").write_text(LAKE.format(transform="shout"))
    cfg = load_config(ENV, project / "parameters")
    before = _drift(cfg, clients, project)
    assert before[pipeline] == CHANGED, before
    assert before[names.foundations_stack()] == CHANGED
    assert before[names.team_stack("sales")] == IN_SYNC, "the team reads nothing the layer changes"

    statuses = _deploy(project, cfg, clients)
    assert statuses[pipeline] == "updated", statuses
    assert statuses[names.team_stack("sales")] == "unchanged", statuses
    layer_arn = clients.client("ssm").get_parameter(Name=names.ssm("layers/datalake"))["Parameter"]["Value"]
    lam = clients.client("lambda")
    for role in ("routing-a", "transform-a", "error-a", "routing-b", "transform-b", "error-b"):
        config = lam.get_function_configuration(FunctionName=names.function("sales", "main", role))
        assert [layer["Arn"] for layer in config.get("Layers", [])] == [layer_arn], role
    after = _drift(cfg, clients, project)
    assert set(after.values()) == {IN_SYNC}, after

    # The functions really run the new library: the new transform turns the object into its output.
    sample = project / "orders.txt"
    sample.write_text("first order\nsecond order\n")
    [landed] = ingest_files(Lake(cfg, clients), [sample], "sales", "orders")
    row = wait_for(lambda: (r := catalog_rows(Lake(cfg, clients), uri=landed.uri)) and r[0].get("status") in (
        "PROCESSED", "FAILED") and r[0], timeout=60)
    assert row and row["status"] == "PROCESSED", row
    [output] = row["outputs"]
    bucket, key = output.removeprefix("s3://").split("/", 1)
    body = clients.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    assert [json.loads(line) for line in body.splitlines()] == [{"shouted": "FIRST ORDER"}, {"shouted": "SECOND ORDER"}]

    # And once more with nothing changed: no write at all.
    calls.operations.clear()
    assert set(_deploy(project, cfg, clients).values()) == {"unchanged"}
    assert calls.writes() == []
