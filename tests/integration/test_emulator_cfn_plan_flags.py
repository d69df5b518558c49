"""`sdlf plan` on the emulator flags replacements of data-bearing resources and IAM changes as on AWS:
the flags come from the change set's Replacement and Details, which the emulator now reports."""
from __future__ import annotations

import json

import pytest

from sdlf_cli.aws.cloudformation import CloudFormationGateway
from sdlf_cli.deploy.model import StackSpec
from sdlf_cli.deploy.reporter import NullReporter
from sdlf_cli.deploy.stack_deployer import StackDeployer

from tests.integration.test_emulator_cfn_helpers import client, unique

_TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
_KEY_POLICY = {"Version": "2012-10-17", "Statement": [
    {"Sid": "Root", "Effect": "Allow", "Principal": {"AWS": {"Fn::Sub": "arn:aws:iam::${AWS::AccountId}:root"}},
     "Action": "kms:*", "Resource": "*"}]}


def _table(name: str) -> dict:
    return {"Type": "AWS::DynamoDB::Table", "UpdateReplacePolicy": "Retain", "Properties": {
        "TableName": name, "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}]}}


def _bucket(name: str) -> dict:
    return {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": name}}


def _key(description: str, policy: dict = _KEY_POLICY) -> dict:
    return {"Type": "AWS::KMS::Key", "Properties": {"Description": description, "KeyPolicy": policy}}


def _database(name: str, description: str = "lake tables") -> dict:
    return {"Type": "AWS::Glue::Database", "Properties": {
        "CatalogId": {"Ref": "AWS::AccountId"}, "DatabaseName": name,
        "DatabaseInput": {"Name": name, "Description": description}}}


def _role(name: str, actions: list[str], path: str = "/") -> dict:
    return {"Type": "AWS::IAM::Role", "Properties": {
        "RoleName": name, "Path": path, "AssumeRolePolicyDocument": _TRUST,
        "Policies": [{"PolicyName": "access", "PolicyDocument": {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": actions, "Resource": "*"}]}}]}}


def _spec(stack: str, resources: dict) -> StackSpec:
    return StackSpec(name=stack, layer="test", template_body=json.dumps({"Resources": resources}),
                     parameters={}, tags={})


@pytest.fixture
def deployer(emulator):
    return StackDeployer(CloudFormationGateway(client(emulator, "cloudformation")), NullReporter(),
                         sleep=lambda _: None, poll_interval=0)


def _planned(deployer, stack: str, before: dict, after: dict):
    assert deployer.deploy(_spec(stack, before)).status == "created"
    result = deployer.plan(_spec(stack, after))
    assert result.status == "planned", result.message
    return {c.logical_id: c for c in result.changes}, result


def test_table_rename_is_flagged_as_a_replacement_of_data(deployer):
    name = unique("rows")
    changes, result = _planned(deployer, unique("plan-table"), {"Table": _table(name)},
                               {"Table": _table(name + "-v2")})
    change = changes["Table"]
    assert (change.action, change.replacement, change.destructive, change.data_at_risk) == ("Modify", "True", True, True)
    assert change.recreates == ("TableName",)
    assert change.to_dict()["replacement"] == "True" and change.to_dict()["data_at_risk"] is True
    assert "1 destructive" in result.message and "1 with data at risk" in result.message


def test_bucket_rename_is_destructive_and_a_bucket_setting_is_not(deployer):
    stack, name = unique("plan-bucket"), unique("bucket")
    changes, _ = _planned(deployer, stack, {"Bucket": _bucket(name)}, {"Bucket": _bucket(name + "-v2")})
    assert (changes["Bucket"].replacement, changes["Bucket"].destructive, changes["Bucket"].data_at_risk) == (
        "True", True, True)
    versioned = {"Bucket": {**_bucket(name), "Properties": {
        "BucketName": name, "VersioningConfiguration": {"Status": "Enabled"}}}}
    change = {c.logical_id: c for c in deployer.plan(_spec(stack, versioned)).changes}["Bucket"]
    assert (change.replacement, change.destructive, change.data_at_risk, change.recreates) == ("False", False, False, ())


def test_key_policy_change_is_an_iam_change_in_place(deployer):
    widened = json.loads(json.dumps(_KEY_POLICY))
    widened["Statement"].append({"Sid": "Lake", "Effect": "Allow", "Principal": {"AWS": "*"},
                                 "Action": "kms:Decrypt", "Resource": "*"})
    changes, _ = _planned(deployer, unique("plan-key"), {"Key": _key("lake key")}, {"Key": _key("lake key", widened)})
    change = changes["Key"]
    assert (change.replacement, change.destructive, change.is_iam, change.data_at_risk) == ("False", False, True, False)


def test_key_description_change_is_neither_destructive_nor_iam(deployer):
    changes, _ = _planned(deployer, unique("plan-key"), {"Key": _key("lake key")}, {"Key": _key("the lake's key")})
    change = changes["Key"]
    assert (change.replacement, change.destructive, change.is_iam) == ("False", False, False)


def test_glue_database_rename_replaces_and_description_does_not(deployer):
    stack, name = unique("plan-db"), unique("db").replace("-", "_")
    changes, _ = _planned(deployer, stack, {"Db": _database(name)}, {"Db": _database(name + "_v2")})
    assert (changes["Db"].replacement, changes["Db"].data_at_risk) == ("True", True)
    assert "DatabaseName" in changes["Db"].recreates
    change = {c.logical_id: c for c in deployer.plan(_spec(stack, {"Db": _database(name, "renamed")})).changes}["Db"]
    assert (change.replacement, change.destructive) == ("False", False)


def test_role_policy_change_is_iam_and_a_new_path_replaces_the_role(deployer):
    stack, name = unique("plan-role"), unique("role")
    changes, _ = _planned(deployer, stack, {"Role": _role(name, ["s3:GetObject"])},
                          {"Role": _role(name, ["s3:GetObject", "s3:PutObject"])})
    change = changes["Role"]
    assert (change.replacement, change.is_iam, change.destructive, change.data_bearing) == ("False", True, False, False)
    moved = {c.logical_id: c for c in deployer.plan(_spec(stack, {"Role": _role(name, ["s3:GetObject"], "/lake/")})).changes}
    assert (moved["Role"].replacement, moved["Role"].is_iam, moved["Role"].recreates) == ("True", True, ("Path",))
    # ... and executing that fails as on AWS: the custom name would stay the same.
    result = deployer.deploy(_spec(stack, {"Role": _role(name, ["s3:GetObject"], "/lake/")}))
    assert result.status == "failed"
    assert result.failure is not None and result.failure.logical_id == "Role"
    assert "custom-named resource requires replacing. Rename " + name in result.failure.reason
