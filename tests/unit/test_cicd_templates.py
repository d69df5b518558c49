"""The delivery layers: least privilege of the target roles, and a pipeline that runs the buildspec files.

Rendered for a pipeline hosted by dev (account 111111111111) promoting to prod (account 222222222222).
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from cfn_tools import load_yaml

from sdlf_cli.render import render_layer
from tests.snapshots import TEMPLATES_DIR
from tests.snapshots.layers import WITH_CICD, cicd

ROOT = Path(__file__).resolve().parents[2]
PROD = replace(WITH_CICD, env="prod", account="222222222222")


def _template(cfg, layer: str) -> dict:
    (rendered,) = render_layer(cfg, layer, TEMPLATES_DIR)
    return load_yaml(rendered.body)


def _statements(role: dict) -> list[dict]:
    out = []
    for policy in role["Properties"].get("Policies", []):
        out.extend(policy["PolicyDocument"]["Statement"])
    return out


def _actions(statement: dict) -> list[str]:
    actions = statement.get("Action", [])
    return [actions] if isinstance(actions, str) else list(actions)


def _text(value) -> str:
    """The string of a plain value or of a !Sub."""
    if isinstance(value, dict) and "Fn::Sub" in value:
        return value["Fn::Sub"]
    return value if isinstance(value, str) else json.dumps(value)


@pytest.fixture(scope="module")
def target() -> dict:
    return _template(PROD, "cicd-target")


@pytest.fixture(scope="module")
def pipeline() -> dict:
    return _template(WITH_CICD, "cicd")


# --- the target roles ------------------------------------------------------------------------------
@pytest.mark.parametrize("role", ["rDeployRole", "rCfnRole"])
def test_target_roles_have_no_wildcard_actions_and_no_managed_admin(target, role):
    resource = target["Resources"][role]
    assert "ManagedPolicyArns" not in resource["Properties"]
    statements = _statements(resource)
    assert statements
    for statement in statements:
        for action in _actions(statement):
            assert "*" not in action, f"{role} {statement.get('Sid')}: wildcard action {action}"
            assert ":" in action, action


def test_roles_are_created_only_with_a_lake_boundary(target):
    guarded = {"iam:CreateRole", "iam:PutRolePolicy", "iam:AttachRolePolicy", "iam:PutRolePermissionsBoundary"}
    for role in ("rDeployRole", "rCfnRole"):
        for statement in _statements(target["Resources"][role]):
            granted = guarded & set(_actions(statement))
            if not granted or statement["Effect"] == "Deny":
                continue
            condition = statement["Condition"]["StringLike"]["iam:PermissionsBoundary"]
            assert _text(condition) == "arn:${AWS::Partition}:iam::${AWS::AccountId}:policy/acme-lake-prod-*-boundary"
    # ...and some statement does grant role creation (the lake's templates create roles).
    assert any("iam:CreateRole" in _actions(s) for s in _statements(target["Resources"]["rCfnRole"]))


def test_pass_role_only_for_the_lake_own_roles(target):
    for role in ("rDeployRole", "rCfnRole"):
        for statement in _statements(target["Resources"][role]):
            if "iam:PassRole" not in _actions(statement) or statement["Effect"] == "Deny":
                continue
            resource = statement["Resource"]
            text = _text(resource) if not (isinstance(resource, dict) and "Fn::GetAtt" in resource) else "cfn-role"
            assert text in ("cfn-role", "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/acme-lake-prod-*"), text
            assert "iam:PassedToService" in statement["Condition"]["StringEquals"]
    denied = [s for s in _statements(target["Resources"]["rCfnRole"]) if s["Effect"] == "Deny"
              and "iam:PassRole" in _actions(s)]
    assert _text(denied[0]["Resource"]).endswith(":role/acme-lake-prod-cicd-*")


def test_deploy_role_trusts_only_the_tooling_build_role(target):
    (statement,) = target["Resources"]["rDeployRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert _text(statement["Principal"]["AWS"]) == "arn:${AWS::Partition}:iam::111111111111:root"
    assert _text(statement["Condition"]["ArnEquals"]["aws:PrincipalArn"]) == (
        "arn:${AWS::Partition}:iam::111111111111:role/acme-lake-dev-cicd-build")


def test_deploy_role_cannot_change_the_delivery_stacks(target):
    statements = _statements(target["Resources"]["rDeployRole"])
    (deny,) = [s for s in statements if s["Effect"] == "Deny"]
    assert {"cloudformation:CreateChangeSet", "cloudformation:ExecuteChangeSet",
            "cloudformation:DeleteStack"} <= set(_actions(deny))
    assert any("stack/acme-lake-prod-cicd-target/" in _text(r) for r in deny["Resource"])


# --- the pipeline ------------------------------------------------------------------------------------
def test_pipeline_runs_validate_then_plan_approve_deploy_per_environment(pipeline):
    props = pipeline["Resources"]["rPipeline"]["Properties"]
    assert props["PipelineType"] == "V2"
    stages = [(s["Name"], [a["Name"] for a in sorted(s["Actions"], key=lambda a: a["RunOrder"])])
              for s in props["Stages"]]
    assert stages == [("Source", ["Source"]), ("Validate", ["Validate"]), ("Deploy-dev", ["Plan", "Deploy"]),
                      ("Deploy-prod", ["Plan", "Approve", "Deploy"])]
    approve = props["Stages"][3]["Actions"][1]["Configuration"]
    assert approve["CustomData"] == "#{plan-prod.SDLF_PLAN_SUMMARY}"
    assert approve["ExternalEntityLink"] == "#{plan-prod.SDLF_PLAN_LINK}"
    assert props["Stages"][3]["Actions"][0]["Namespace"] == "plan-prod"


def test_each_stage_assumes_its_environment_roles(pipeline):
    props = pipeline["Resources"]["rPipeline"]["Properties"]
    deploy = props["Stages"][3]["Actions"][2]["Configuration"]["EnvironmentVariables"]
    variables = {v["name"]: v["value"] for v in json.loads(_text(deploy))}
    assert variables == {
        "SDLF_ENV": "prod",
        "SDLF_DEPLOY_ROLE_ARN": "arn:${AWS::Partition}:iam::222222222222:role/acme-lake-prod-cicd-deploy",
        "SDLF_CFN_ROLE_ARN": "arn:${AWS::Partition}:iam::222222222222:role/acme-lake-prod-cicd-cfn",
    }
    assume = [s for s in _statements(pipeline["Resources"]["rBuildRole"]) if s["Sid"] == "AssumeDeployRoles"][0]
    assert [_text(r) for r in assume["Resource"]] == [
        "arn:${AWS::Partition}:iam::111111111111:role/acme-lake-dev-cicd-deploy",
        "arn:${AWS::Partition}:iam::222222222222:role/acme-lake-prod-cicd-deploy",
    ]


def test_connection_source_triggers_on_push_to_the_branch(pipeline):
    props = pipeline["Resources"]["rPipeline"]["Properties"]
    (trigger,) = props["Triggers"]
    assert trigger["GitConfiguration"]["Push"][0]["Branches"]["Includes"] == ["main"]
    source = props["Stages"][0]["Actions"][0]
    assert source["ActionTypeId"]["Provider"] == "CodeStarSourceConnection"
    assert source["Configuration"]["FullRepositoryId"] == "acme/data-lake"


def test_s3_source_reads_the_pushed_zip_and_does_not_poll():
    props = _template(replace(WITH_CICD, cicd=cicd("s3")), "cicd")["Resources"]["rPipeline"]["Properties"]
    assert "Triggers" not in props
    config = props["Stages"][0]["Actions"][0]["Configuration"]
    assert config["S3ObjectKey"] == "cicd/source.zip" and config["PollForSourceChanges"] is False


def test_builds_log_to_an_encrypted_group_with_retention(pipeline):
    group = pipeline["Resources"]["rBuildLogGroup"]["Properties"]
    assert group["RetentionInDays"] == 30 and group["KmsKeyId"] == {"Fn::GetAtt": ["rKey", "Arn"]}
    store = pipeline["Resources"]["rPipeline"]["Properties"]["ArtifactStore"]
    assert store["EncryptionKey"]["Type"] == "KMS"
    for logical_id in ("rValidateProject", "rPlanProject", "rDeployProject"):
        project = pipeline["Resources"][logical_id]["Properties"]
        assert project["LogsConfig"]["CloudWatchLogs"]["GroupName"] == {"Ref": "rBuildLogGroup"}
        assert project["EncryptionKey"] == {"Fn::GetAtt": ["rKey", "Arn"]}


def test_projects_point_at_buildspec_files_that_run_only_sdlf_and_tests(pipeline):
    for logical_id in ("rValidateProject", "rPlanProject", "rDeployProject"):
        path = pipeline["Resources"][logical_id]["Properties"]["Source"]["BuildSpec"]
        spec = yaml.safe_load((ROOT / path).read_text())
        assert spec["version"] == 0.2
        build = spec["phases"]["build"]
        post = spec["phases"]["post_build"]["commands"]
        commands = build["commands"] + post
        for command in commands:
            first = command.split()[0]
            assert first in ("sdlf", "export", "bash"), command
            if first == "export":
                assert "$(sdlf " in command or command == 'export SDLF_PLAN_LINK="$CODEBUILD_BUILD_URL"', command
            if first == "bash":
                assert command == 'bash -c "$SDLF_TEST_COMMAND"'
        assert [c for c in post if c.startswith("sdlf cicd report")] == post
