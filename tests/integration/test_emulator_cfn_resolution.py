"""Seams: an SSM-typed parameter is re-resolved on update, and an executed change set leaves its tags and
parameters on the stack (stacks.py) - both as on AWS, both what the deployer's fingerprint relies on."""
from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from tests.integration.test_emulator_cfn_helpers import client, unique


def _reader(source: str, copy: str) -> dict:
    # A stack whose template and parameters never change; only the SSM value behind pSource does.
    return {
        "Parameters": {"pSource": {"Type": "AWS::SSM::Parameter::Value<String>", "Default": source}},
        "Resources": {
            "Copy": {"Type": "AWS::SSM::Parameter",
                     "Properties": {"Name": copy, "Type": "String", "Value": {"Ref": "pSource"}}},
            "SubCopy": {"Type": "AWS::SSM::Parameter",
                        "Properties": {"Name": copy + "-sub", "Type": "String", "Value": {"Fn::Sub": "v=${pSource}"}}},
            "Unrelated": {"Type": "AWS::SSM::Parameter",
                          "Properties": {"Name": copy + "-fixed", "Type": "String", "Value": "fixed"}},
        },
    }


def _change_set(cfn, stack: str, template: dict, change_type: str, tags: dict[str, str] | None = None,
                parameters: dict[str, str] | None = None) -> dict:
    name = unique("cs")
    cfn.create_change_set(StackName=stack, ChangeSetName=name, ChangeSetType=change_type,
                          TemplateBody=json.dumps(template),
                          Tags=[{"Key": k, "Value": v} for k, v in (tags or {}).items()],
                          Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in (parameters or {}).items()])
    return cfn.describe_change_set(StackName=stack, ChangeSetName=name)


def test_a_new_ssm_value_makes_a_change_set_that_updates_its_users(emulator):
    cfn, ssm = client(emulator, "cloudformation"), client(emulator, "ssm")
    stack, source, copy = unique("ssm-reader"), f"/{unique('src')}", f"/{unique('copy')}"
    ssm.put_parameter(Name=source, Value="v1", Type="String")
    created = _change_set(cfn, stack, _reader(source, copy), "CREATE")
    cfn.execute_change_set(ChangeSetName=created["ChangeSetId"])
    assert ssm.get_parameter(Name=copy)["Parameter"]["Value"] == "v1"

    # Same value: nothing to do (AWS's FAILED "didn't contain changes" change set).
    same = _change_set(cfn, stack, _reader(source, copy), "UPDATE")
    assert same["Status"] == "FAILED" and "didn't contain changes" in same["StatusReason"]
    cfn.delete_change_set(ChangeSetName=same["ChangeSetId"])

    ssm.put_parameter(Name=source, Value="v2", Type="String", Overwrite=True)
    changed = _change_set(cfn, stack, _reader(source, copy), "UPDATE")
    assert changed["Status"] == "CREATE_COMPLETE", changed.get("StatusReason")
    modified = {c["ResourceChange"]["LogicalResourceId"] for c in changed["Changes"]}
    assert modified == {"Copy", "SubCopy"}
    cfn.execute_change_set(ChangeSetName=changed["ChangeSetId"])
    assert ssm.get_parameter(Name=copy)["Parameter"]["Value"] == "v2"
    assert ssm.get_parameter(Name=copy + "-sub")["Parameter"]["Value"] == "v=v2"


def test_an_executed_change_set_leaves_its_tags_and_parameters_on_the_stack(emulator):
    cfn = client(emulator, "cloudformation")
    stack, name = unique("tagged"), f"/{unique('tagged')}"
    template = {"Parameters": {"pValue": {"Type": "String"}},
                "Resources": {"P": {"Type": "AWS::SSM::Parameter",
                                    "Properties": {"Name": name, "Type": "String", "Value": {"Ref": "pValue"}}}}}
    created = _change_set(cfn, stack, template, "CREATE", {"fingerprint": "one"}, {"pValue": "a"})
    cfn.execute_change_set(ChangeSetName=created["ChangeSetId"])
    updated = _change_set(cfn, stack, template, "UPDATE", {"fingerprint": "two"}, {"pValue": "b"})
    cfn.execute_change_set(ChangeSetName=updated["ChangeSetId"])

    described = cfn.describe_stacks(StackName=stack)["Stacks"][0]
    assert {t["Key"]: t["Value"] for t in described["Tags"]} == {"fingerprint": "two"}
    assert {p["ParameterKey"]: p["ParameterValue"] for p in described["Parameters"]} == {"pValue": "b"}
    # ... so the same parameters again are "no change" (the emulator says so synchronously), compared
    # with what is deployed now.
    with pytest.raises(ClientError, match="No updates are to be performed"):
        _change_set(cfn, stack, template, "UPDATE", {"fingerprint": "two"}, {"pValue": "b"})
