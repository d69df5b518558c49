"""Seam: stack updates replace, clean up and roll back as CloudFormation's do."""
from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from tests.integration.test_emulator_cfn_helpers import client, deploy, unique

_KEYS = {"AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
         "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}], "BillingMode": "PAY_PER_REQUEST"}


def _table(name: str, **extra) -> dict:
    return {"Type": "AWS::DynamoDB::Table", "Properties": {"TableName": name, **_KEYS}, **extra}


def _tables(emulator) -> set[str]:
    return set(client(emulator, "dynamodb").list_tables()["TableNames"])


def _timeline(emulator, stack: str) -> list[tuple[str, str]]:
    """(logical id, status), oldest first, as the deployer's live view shows them."""
    events = client(emulator, "cloudformation").describe_stack_events(StackName=stack)["StackEvents"]
    return [(e["LogicalResourceId"], e["ResourceStatus"]) for e in reversed(events)]


def _failed_events(emulator, stack: str) -> list[dict]:
    events = client(emulator, "cloudformation").describe_stack_events(StackName=stack)["StackEvents"]
    return [e for e in events if e["ResourceStatus"] == "UPDATE_FAILED"]


def _role(name: str, path: str, service: str) -> dict:
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]}
    return {"Type": "AWS::IAM::Role",
            "Properties": {"RoleName": name, "Path": path, "AssumeRolePolicyDocument": trust}}


def test_custom_named_resource_that_must_be_replaced_fails_and_rolls_back(emulator):
    stack, name = unique("upd-same-name"), unique("role")
    iam = client(emulator, "iam")
    assert deploy(emulator, stack, {"Resources": {"Role": _role(name, "/", "lambda.amazonaws.com")}})[
        "StackStatus"] == "CREATE_COMPLETE"
    # Path is create-only: a new role is needed, but its custom name stays the same.
    described = deploy(emulator, stack, {"Resources": {"Role": _role(name, "/sdlf/", "glue.amazonaws.com")}})
    assert described["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE"
    failed = _failed_events(emulator, stack)
    assert failed[0]["LogicalResourceId"] == "Role"
    assert failed[0]["ResourceStatusReason"] == (
        "CloudFormation cannot update a stack when a custom-named resource requires replacing. "
        f"Rename {name} and update the stack again.")
    role = iam.get_role(RoleName=name)["Role"]
    assert role["Path"] == "/"
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["Service"] == "lambda.amazonaws.com"


@pytest.mark.parametrize("policy, old_kept", [("Retain", True), ("Delete", False)])
def test_replacement_with_a_new_name_applies_the_update_replace_policy(emulator, policy, old_kept):
    stack, old, new = unique("upd-replace"), unique("old"), unique("new")
    template = {"Resources": {"Table": _table(old, UpdateReplacePolicy=policy)}}
    assert deploy(emulator, stack, template)["StackStatus"] == "CREATE_COMPLETE"
    client(emulator, "dynamodb").put_item(TableName=old, Item={"id": {"S": "row"}})

    described = deploy(emulator, stack, {"Resources": {"Table": _table(new, UpdateReplacePolicy=policy)}})
    assert described["StackStatus"] == "UPDATE_COMPLETE"
    tables = _tables(emulator)
    assert new in tables
    assert (old in tables) is old_kept
    if old_kept:  # retained with its rows, outside the stack
        assert client(emulator, "dynamodb").scan(TableName=old)["Count"] == 1
    timeline = _timeline(emulator, stack)
    assert ("Table", "DELETE_SKIPPED" if old_kept else "DELETE_COMPLETE") == timeline[-2]
    resource = client(emulator, "cloudformation").describe_stack_resource(StackName=stack, LogicalResourceId="Table")
    assert resource["StackResourceDetail"]["PhysicalResourceId"] == new


def test_removed_resources_go_after_the_update_and_deletion_policy_retain_keeps_them(emulator):
    stack, kept, dropped = unique("upd-remove"), unique("kept"), unique("dropped")
    template = {"Resources": {"Kept": _table(kept, DeletionPolicy="Retain"), "Dropped": _table(dropped)}}
    assert deploy(emulator, stack, template)["StackStatus"] == "CREATE_COMPLETE"
    assert deploy(emulator, stack, {"Resources": {"Other": _table(unique("other"))}})["StackStatus"] == "UPDATE_COMPLETE"
    tables = _tables(emulator)
    assert kept in tables and dropped not in tables


def test_failed_update_halfway_restores_what_it_changed(emulator):
    stack, name = unique("upd-rollback"), unique("p")
    ssm = client(emulator, "ssm")
    template = {"Resources": {
        "Config": {"Type": "AWS::SSM::Parameter", "Properties": {"Name": f"/t/{name}/config", "Type": "String", "Value": "v1"}},
        "Table": _table(unique("rows")),
        "Named": {"Type": "AWS::SSM::Parameter", "Properties": {"Name": f"/t/{name}/named", "Type": "String", "Value": "x"}},
    }}
    assert deploy(emulator, stack, template)["StackStatus"] == "CREATE_COMPLETE"
    old_table = template["Resources"]["Table"]["Properties"]["TableName"]
    added = unique("added")

    changed = json.loads(json.dumps(template))
    changed["Resources"]["Config"]["Properties"]["Value"] = "v2"  # updated in place first
    new_table = unique("rows-v2")
    changed["Resources"]["Table"]["Properties"]["TableName"] = new_table  # then replaced
    # then a new name the service rejects: parameter names may not start with "aws"
    changed["Resources"]["Named"]["Properties"]["Name"] = f"aws-{name}"
    changed["Resources"]["Added"] = _table(added)
    described = deploy(emulator, stack, changed)

    assert described["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE"
    assert _failed_events(emulator, stack)[0]["LogicalResourceId"] == "Named"
    # CloudFormation's order: the work, the failure, the rollback of each piece, the end state
    timeline = _timeline(emulator, stack)
    update = timeline[timeline.index((stack, "UPDATE_IN_PROGRESS")):]
    assert update[:5] == [(stack, "UPDATE_IN_PROGRESS"), ("Added", "CREATE_IN_PROGRESS"), ("Added", "CREATE_COMPLETE"),
                          ("Config", "UPDATE_IN_PROGRESS"), ("Config", "UPDATE_COMPLETE")]
    failed_at = update.index(("Named", "UPDATE_FAILED"))
    assert update[failed_at + 1] == (stack, "UPDATE_ROLLBACK_IN_PROGRESS")
    rollback = update[failed_at + 2:]
    assert ("Config", "UPDATE_COMPLETE") in rollback
    assert ("Table", "DELETE_COMPLETE") in rollback and ("Added", "DELETE_COMPLETE") in rollback
    assert rollback[-1] == (stack, "UPDATE_ROLLBACK_COMPLETE")
    assert ssm.get_parameter(Name=f"/t/{name}/config")["Parameter"]["Value"] == "v1"
    assert ssm.get_parameter(Name=f"/t/{name}/named")["Parameter"]["Value"] == "x"
    tables = _tables(emulator)
    assert old_table in tables
    assert new_table not in tables and added not in tables
    cfn = client(emulator, "cloudformation")
    physical = {r["LogicalResourceId"]: r["PhysicalResourceId"]
                for r in cfn.describe_stack_resources(StackName=stack)["StackResources"]}
    assert physical["Table"] == old_table and "Added" not in physical

    # The next deploy starts from the real state: the same change without the bad name goes through.
    changed["Resources"]["Named"]["Properties"]["Name"] = f"/t/{name}/renamed"
    assert deploy(emulator, stack, changed)["StackStatus"] == "UPDATE_COMPLETE"
    assert ssm.get_parameter(Name=f"/t/{name}/config")["Parameter"]["Value"] == "v2"
    assert {new_table, added} <= _tables(emulator) and old_table not in _tables(emulator)
    with pytest.raises(ClientError):
        ssm.get_parameter(Name=f"/t/{name}/named")


def test_update_applies_the_change_set_tags_and_a_failed_one_keeps_the_old(emulator):
    stack = unique("upd-tags")
    cfn = client(emulator, "cloudformation")

    def run(template: dict, tags: dict[str, str]) -> dict:
        name = unique("cs")
        cfn.create_change_set(StackName=stack, ChangeSetName=name, TemplateBody=json.dumps(template),
                              ChangeSetType="UPDATE" if run.created else "CREATE",
                              Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
        cfn.execute_change_set(StackName=stack, ChangeSetName=name)
        run.created = True
        described = cfn.describe_stacks(StackName=stack)["Stacks"][0]
        return described["StackStatus"], {t["Key"]: t["Value"] for t in described.get("Tags") or []}

    run.created = False
    table = _table(unique("tagged"))
    assert run({"Resources": {"Table": table}}, {"sdlf:fingerprint": "one"}) == ("CREATE_COMPLETE", {"sdlf:fingerprint": "one"})
    streamed = {**table, "Properties": {**table["Properties"], "StreamSpecification": {"StreamViewType": "KEYS_ONLY"}}}
    assert run({"Resources": {"Table": streamed}}, {"sdlf:fingerprint": "two"}) == ("UPDATE_COMPLETE", {"sdlf:fingerprint": "two"})
    bad = {"Resources": {"Table": table, "Named": {"Type": "AWS::SSM::Parameter",
                                                   "Properties": {"Name": "aws-reserved", "Type": "String", "Value": "x"}}}}
    assert run(bad, {"sdlf:fingerprint": "three"}) == ("UPDATE_ROLLBACK_COMPLETE", {"sdlf:fingerprint": "two"})
