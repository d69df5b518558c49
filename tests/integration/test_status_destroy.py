"""`sdlf status` and `sdlf destroy` on the emulator, on a lake of its own (env "dstr") from a temp copy of the
project: in sync after deploy, template changed after a parameter change, orphans, refusal without confirmation,
data retained and listed, data removed (every object version) with include_data, not deployed afterwards."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from sdlf_cli.aws.cloudformation import CloudFormationGateway
from sdlf_cli.aws.session import AwsTarget, Clients
from sdlf_cli.config.loader import load_config
from sdlf_cli.lake import Lake
from sdlf_cli.ui import make_reporter
from sdlf_cli.workflows.deploy import all_layers, deploy_layers
from sdlf_cli.workflows.destroy import DestroyRefused, destroy
from sdlf_cli.workflows.status import CHANGED, IN_SYNC, NOT_DEPLOYED, ORPHAN, lake_status

ROOT = Path(__file__).resolve().parents[2]
ENV = "dstr"
LAKE = f"""env: {ENV}
teams:
  sales:
    pipelines:
      main: {{}}
    datasets:
      orders:
        pipeline: main
        schedule: rate(5 minutes)
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    dest = tmp_path_factory.mktemp("destroy")
    for part in ("templates", "lambda", "glue"):
        if (ROOT / part).exists():
            shutil.copytree(ROOT / part, dest / part, ignore=shutil.ignore_patterns("__pycache__"))
    (dest / "parameters").mkdir()
    shutil.copy(ROOT / "parameters" / "base.yaml", dest / "parameters" / "base.yaml")
    (dest / "parameters" / f"{ENV}.yaml").write_text(LAKE)
    return dest


@pytest.fixture(scope="module")
def lake(project, emulator):
    cfg = load_config(ENV, project / "parameters")
    return cfg, Clients(AwsTarget(region=cfg.region, endpoint_url=emulator.endpoint_url))


def _cfg(project, text):
    (project / "parameters" / f"{ENV}.yaml").write_text(text)
    return load_config(ENV, project / "parameters")


def _deploy(project, cfg, clients):
    outcome = deploy_layers(Lake(cfg, clients), make_reporter("json"), all_layers(cfg, project), root=project)
    assert outcome.ok, outcome.to_dict()


def _buckets(clients) -> set[str]:
    return {b["Name"] for b in clients.client("s3").list_buckets()["Buckets"] if f"-{ENV}-" in b["Name"]}


def _tables(clients) -> set[str]:
    return {t for t in clients.client("dynamodb").list_tables()["TableNames"] if f"-{ENV}-" in t}


def _live_keys(clients, cfg) -> set[str]:
    kms = clients.client("kms")
    out = set()
    for key in kms.list_keys()["Keys"]:
        meta = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
        if cfg.names.prefix in meta.get("Description", "") and meta["KeyState"] == "Enabled":
            out.add(key["KeyId"])
    return out


def _lake_stacks(clients) -> list[str]:
    return [s.name for s in CloudFormationGateway(clients.client("cloudformation")).list_stacks()
            if s.tags.get("sdlf:env") == ENV]


def test_status_then_destroy_keeping_data_then_removing_it(project, lake):
    cfg, clients = lake
    _deploy(project, cfg, clients)

    states = lake_status(Lake(cfg, clients), project)
    assert [s.layer for s in states] == ["bootstrap", "foundations", "team", "pipeline", "dataset", "cicd-target"]
    # The delivery roles are declared by the cicd section but deployed on their own, never by --all.
    *states, target = states
    assert (target.drift, target.status) == (NOT_DEPLOYED, None) and "sdlf deploy cicd-target" in target.next_step
    assert {s.drift for s in states} == {IN_SYNC}, [s.to_dict() for s in states]
    assert all(s.status == "CREATE_COMPLETE" and s.last_updated and not s.next_step for s in states)

    changed = _cfg(project, LAKE.replace("rate(5 minutes)", "rate(15 minutes)"))
    by_name = {s.name: s for s in lake_status(Lake(changed, clients), project)}
    dataset = by_name[cfg.names.dataset_stack("sales", "orders")]
    assert (dataset.drift, dataset.unit) == (CHANGED, "sales/orders")
    assert f"sdlf deploy dataset --env {ENV}" in dataset.next_step
    assert by_name[cfg.names.team_stack("sales")].drift == IN_SYNC

    without = _cfg(project, LAKE.split("    datasets:")[0])
    orphan = [s for s in lake_status(Lake(without, clients), project) if s.drift == ORPHAN]
    assert [(s.name, s.layer, s.unit) for s in orphan] == [(cfg.names.dataset_stack("sales", "orders"), "dataset",
                                                            "sales/orders")]
    assert f"sdlf destroy {orphan[0].name}" in orphan[0].next_step
    cfg = _cfg(project, LAKE)

    plan = destroy(Lake(cfg, clients), dry_run=True, root=project)
    assert plan.results == [] and plan.dry_run
    assert [s.layer for s in plan.plan.stacks] == ["dataset", "pipeline", "team", "foundations", "bootstrap"]
    with pytest.raises(DestroyRefused, match="--yes"):
        destroy(Lake(cfg, clients), root=project)
    assert len(_lake_stacks(clients)) == 5

    buckets, tables, keys = _buckets(clients), _tables(clients), _live_keys(clients, cfg)
    # raw, stage, analytics, athena, logs, artifacts and the artifact bucket's own access-log bucket
    assert len(buckets) == 7 and len(tables) == 3 and len(keys) == 3
    result = destroy(Lake(cfg, clients), confirm=lambda p: True, reporter=make_reporter("json"), root=project)
    assert result.ok, result.to_dict()
    assert [r.status for r in result.results] == ["deleted"] * 5
    assert _lake_stacks(clients) == []
    retained = {r.physical_id for r in result.retained if r.action == "retained"}
    assert buckets | tables | keys <= retained
    assert _buckets(clients) == buckets and _tables(clients) == tables and _live_keys(clients, cfg) == keys
    assert {s.drift for s in lake_status(Lake(cfg, clients), project)} == {NOT_DEPLOYED}

    # A later --include-data finds what the first destroy kept, by name.
    result = destroy(Lake(cfg, clients), include_data=True, confirm=lambda p: True, root=project)
    assert result.ok, result.to_dict()
    assert buckets | tables | keys <= {r.physical_id for r in result.retained}
    assert _buckets(clients) == set() and _tables(clients) == set() and _live_keys(clients, cfg) == set()


def test_destroy_with_data_removes_versioned_objects_and_everything_else(project, lake):
    cfg, clients = lake
    _deploy(project, cfg, clients)
    s3 = clients.client("s3")
    raw = next(b for b in _buckets(clients) if b.endswith("-raw"))
    assert s3.get_bucket_versioning(Bucket=raw)["Status"] == "Enabled"
    s3.put_object(Bucket=raw, Key="sales/orders/a.json", Body=b'{"id": 1}')
    s3.put_object(Bucket=raw, Key="sales/orders/a.json", Body=b'{"id": 2}')
    s3.delete_object(Bucket=raw, Key="sales/orders/a.json")  # a delete marker over two versions
    listed = s3.list_object_versions(Bucket=raw)
    assert len(listed.get("Versions", [])) == 2 and len(listed.get("DeleteMarkers", [])) == 1

    result = destroy(Lake(cfg, clients), include_data=True, confirm=lambda p: True, root=project)
    assert result.ok, result.to_dict()
    assert _lake_stacks(clients) == []
    assert _buckets(clients) == set() and _tables(clients) == set() and _live_keys(clients, cfg) == set()
    actions = {r.physical_id: r.action for r in result.retained}
    assert actions[raw].startswith("deleted (3 ")
    assert all(a.startswith(("deleted", "scheduled for deletion in 7 days")) for a in actions.values()), actions
    assert {s.drift for s in lake_status(Lake(cfg, clients), project)} == {NOT_DEPLOYED}
    assert destroy(Lake(cfg, clients), root=project).plan.empty  # nothing left: no confirmation needed
