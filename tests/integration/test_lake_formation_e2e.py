"""Lake Formation mode deployed end to end on the emulator: the deploying principal becomes a data lake
administrator (no administrators in the parameters), the data buckets are registered, and each team's and
dataset's roles get their grants - then data still flows through the lake."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from sdlf_cli.aws.session import AwsTarget, Clients
from sdlf_cli.config.loader import load_config
from sdlf_cli.lake import Lake
from sdlf_cli.ui import make_reporter
from sdlf_cli.workflows.deploy import all_layers, deploy_layers
from sdlf_cli.workflows.ingest import catalog_rows, ingest_files
from sdlf_cli.workflows.status import IN_SYNC, lake_status

from tests.integration.helpers import wait_for

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples" / "engineering" / "legislators"
ENV = "lkfm"
TEAM = "engineering"


@pytest.fixture(scope="module")
def lake(emulator, tmp_path_factory):
    project = tmp_path_factory.mktemp("lake-formation")
    for part in ("templates", "lambda", "glue", "parameters"):
        shutil.copytree(ROOT / part, project / part, ignore=shutil.ignore_patterns("__pycache__"))
    dev = (project / "parameters" / "dev.yaml").read_text().replace("env: dev", f"env: {ENV}", 1)
    (project / "parameters" / f"{ENV}.yaml").write_text(dev + "\nlake_formation: true\n")
    cfg = load_config(ENV, project / "parameters")
    assert cfg.lake_formation and not cfg.lake_formation_admins
    clients = Clients(AwsTarget(region=cfg.region, endpoint_url=emulator.endpoint_url))
    outcome = deploy_layers(Lake(cfg, clients), make_reporter("json"), all_layers(cfg, project), root=project)
    assert outcome.ok, outcome.to_dict()
    return project, cfg, clients


def _grants(lf, principal: str) -> list[dict]:
    every = lf.list_permissions()["PrincipalResourcePermissions"]
    return [g for g in every if g["Principal"]["DataLakePrincipalIdentifier"] == principal]


def test_the_deployer_is_an_administrator_and_every_role_has_its_grants(lake):
    project, cfg, clients = lake
    names, lf, ssm = cfg.names, clients.client("lakeformation"), clients.client("ssm")
    caller = clients.client("sts").get_caller_identity()["Arn"]
    admins = [a["DataLakePrincipalIdentifier"] for a in lf.get_data_lake_settings()["DataLakeSettings"]["DataLakeAdmins"]]
    assert caller in admins

    registered = {r["ResourceArn"] for r in lf.list_resources()["ResourceInfoList"]}
    for kind in ("raw", "stage", "analytics"):
        bucket = ssm.get_parameter(Name=names.ssm("buckets", kind))["Parameter"]["Value"]
        assert f"arn:aws:s3:::{bucket}" in registered, kind

    team = lambda key: ssm.get_parameter(Name=names.ssm("teams", TEAM, key))["Parameter"]["Value"]  # noqa: E731
    glue_grants = _grants(lf, team("glue-role-arn"))
    databases = {g["Resource"]["Database"]["Name"]: set(g["Permissions"]) for g in glue_grants if "Database" in g["Resource"]}
    for database in (names.glue_database(TEAM), names.glue_database(TEAM, "legislators")):
        assert {"CREATE_TABLE", "ALTER", "DESCRIBE"} <= databases[database], databases
    assert any("DataLocation" in g["Resource"] for g in glue_grants)
    assert any("Table" in g["Resource"] for g in glue_grants)
    lambda_grants = _grants(lf, team("lambda-role-arn"))
    assert any(g["Resource"].get("Database", {}).get("Name") == names.glue_database(TEAM) for g in lambda_grants)

    # Nothing moves on a second look, and objects still flow.
    assert {s.drift for s in lake_status(Lake(cfg, clients), root=project) if s.layer != "cicd-target"} == {IN_SYNC}
    [landed] = ingest_files(Lake(cfg, clients), [SAMPLES / "persons-1.json"], TEAM, "legislators")
    row = wait_for(lambda: (r := catalog_rows(Lake(cfg, clients), uri=landed.uri)) and r[0].get("status") == "PROCESSED"
                   and r[0], timeout=60)
    assert row, catalog_rows(Lake(cfg, clients), uri=landed.uri)
