"""Lake Formation mode: administrators from the parameters, else the principal that deploys."""
from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber
from cfn_tools import load_yaml

from sdlf_cli.aws.identity import iam_principal
from sdlf_cli.aws.session import AwsTarget, Clients
from sdlf_cli.config.loader import load_config
from sdlf_cli.errors import ConfigError, UsageError
from sdlf_cli.lake import Lake
from sdlf_cli.render import render_layer
from sdlf_cli.workflows.deploy import deployer_values

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
ADMIN = "arn:aws:iam::123456789012:role/data-platform-admin"


def _config(tmp_path: Path, extra: str):
    (tmp_path / "dev.yaml").write_text("org: acme\napp: lake\nenv: dev\nregion: us-east-1\nlake_formation: true\n" + extra)
    return load_config("dev", tmp_path)


def _foundations(cfg) -> dict:
    (template,) = render_layer(cfg, "foundations", TEMPLATES)
    return load_yaml(template.body)


def _lake(cfg, caller_arn: str | None = None) -> tuple[Lake, Stubber]:
    session = boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1")
    clients = Clients(AwsTarget(region="us-east-1"), session)
    stub = Stubber(clients.client("sts"))
    if caller_arn:
        stub.add_response("get_caller_identity", {"Arn": caller_arn, "Account": "123456789012", "UserId": "u"})
    stub.activate()
    return Lake(cfg, clients), stub


def test_without_administrators_the_deployer_passes_its_own_principal(tmp_path):
    cfg = _config(tmp_path, "")
    settings = _foundations(cfg)["Resources"]["rLakeFormationSettings"]["Properties"]
    assert settings["Admins"] == [{"DataLakePrincipalIdentifier": {"Ref": "pLakeFormationAdmin"}}]
    lake, stub = _lake(cfg, "arn:aws:sts::123456789012:assumed-role/deployer/ci-session")
    assert deployer_values(lake) == {"pLakeFormationAdmin": "arn:aws:iam::123456789012:role/deployer"}
    # The role CloudFormation acts as, when there is one, is who makes the grants.
    assert deployer_values(lake, "arn:aws:iam::123456789012:role/cfn") == {"pLakeFormationAdmin": "arn:aws:iam::123456789012:role/cfn"}
    stub.assert_no_pending_responses()


def test_administrators_from_the_parameters_are_written_into_the_template(tmp_path):
    cfg = _config(tmp_path, f"lake_formation_admins:\n  - {ADMIN}\n  - arn:aws:iam::123456789012:user/alice\n")
    template = _foundations(cfg)
    admins = template["Resources"]["rLakeFormationSettings"]["Properties"]["Admins"]
    assert admins == [{"DataLakePrincipalIdentifier": ADMIN},
                      {"DataLakePrincipalIdentifier": "arn:aws:iam::123456789012:user/alice"}]
    assert "pLakeFormationAdmin" not in template.get("Parameters", {})
    lake, _ = _lake(cfg)
    assert deployer_values(lake) == {}
    registrations = [r for r in template["Resources"].values() if r["Type"] == "AWS::LakeFormation::Resource"]
    assert len(registrations) == 3 and all(r["DependsOn"] == "rLakeFormationSettings" for r in registrations)


def test_an_administrator_that_is_not_an_iam_role_or_user_is_refused_with_its_line(tmp_path):
    with pytest.raises(ConfigError) as caught:
        _config(tmp_path, "lake_formation_admins:\n  - arn:aws:sts::123456789012:assumed-role/x/y\n")
    [problem] = caught.value.problems
    assert problem.line == 7 and problem.field == "lake_formation_admins[0]" and "IAM role or user ARN" in problem.message


@pytest.mark.parametrize("caller, principal", [
    ("arn:aws:sts::123456789012:assumed-role/deployer/session", "arn:aws:iam::123456789012:role/deployer"),
    ("arn:aws-cn:sts::123456789012:assumed-role/deployer/s", "arn:aws-cn:iam::123456789012:role/deployer"),
    ("arn:aws:iam::123456789012:user/alice", "arn:aws:iam::123456789012:user/alice"),
])
def test_the_caller_is_named_by_its_iam_arn(caller, principal):
    assert iam_principal(caller) == principal


def test_the_root_user_cannot_administer_lake_formation():
    with pytest.raises(UsageError, match="lake_formation_admins"):
        iam_principal("arn:aws:iam::123456789012:root")
