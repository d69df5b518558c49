"""Seam: the emulator's change sets say Replacement / RequiresRecreation as CloudFormation's do."""
from __future__ import annotations

import json

from tests.integration.test_emulator_cfn_helpers import client, deploy, unique


def _propose(emulator, stack: str, template: dict, parameters: dict[str, str] | None = None) -> dict:
    """Creates (and does not execute) an update change set; returns its changes by logical id."""
    cfn = client(emulator, "cloudformation")
    name = unique("cs")
    cfn.create_change_set(
        StackName=stack, ChangeSetName=name, ChangeSetType="UPDATE", TemplateBody=json.dumps(template),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in (parameters or {}).items()],
    )
    described = cfn.describe_change_set(StackName=stack, ChangeSetName=name)
    cfn.delete_change_set(StackName=stack, ChangeSetName=name)
    return {c["ResourceChange"]["LogicalResourceId"]: c["ResourceChange"] for c in described["Changes"]}


def _targets(change: dict) -> dict[str, str]:
    return {d["Target"].get("Name", d["Target"]["Attribute"]): d["Target"]["RequiresRecreation"]
            for d in change["Details"]}


def test_create_only_property_replaces_and_others_update_in_place(emulator):
    stack, table = unique("cs-table"), unique("table")
    keys = {"AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}], "BillingMode": "PAY_PER_REQUEST"}
    template = {"Resources": {"Table": {"Type": "AWS::DynamoDB::Table", "Properties": {"TableName": table, **keys}}}}
    assert deploy(emulator, stack, template)["StackStatus"] == "CREATE_COMPLETE"

    renamed = {"Resources": {"Table": {"Type": "AWS::DynamoDB::Table",
                                       "Properties": {"TableName": table + "-v2", **keys}}}}
    change = _propose(emulator, stack, renamed)["Table"]
    assert change["Action"] == "Modify"
    assert change["Replacement"] == "True"
    assert change["PhysicalResourceId"] == table
    assert change["Scope"] == ["Properties"]
    assert _targets(change) == {"TableName": "Always"}
    assert change["Details"][0]["Evaluation"] == "Static"
    assert change["Details"][0]["ChangeSource"] == "DirectModification"

    streamed = {"Resources": {"Table": {"Type": "AWS::DynamoDB::Table", "Properties": {
        "TableName": table, **keys, "StreamSpecification": {"StreamViewType": "NEW_IMAGE"}}}}}
    change = _propose(emulator, stack, streamed)["Table"]
    assert change["Replacement"] == "False"
    assert _targets(change) == {"StreamSpecification": "Never"}


def test_parameter_change_and_reference_to_a_replaced_resource(emulator):
    stack = unique("cs-param")
    template = {
        "Parameters": {"pName": {"Type": "String"}, "pValue": {"Type": "String"}},
        "Resources": {
            "Queue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": {"Ref": "pName"}}},
            "Param": {"Type": "AWS::SSM::Parameter",
                      "Properties": {"Name": f"/t/{stack}", "Type": "String", "Value": {"Ref": "pValue"}}},
            "Pointer": {"Type": "AWS::SSM::Parameter",
                        "Properties": {"Name": f"/t/{stack}/queue", "Type": "String",
                                       "Value": {"Fn::GetAtt": ["Queue", "Arn"]}}},
        },
    }
    first = unique("q")
    assert deploy(emulator, stack, template, {"pName": first, "pValue": "a"})["StackStatus"] == "CREATE_COMPLETE"

    # Only a parameter value changes: moto alone saw no Modify at all.
    changes = _propose(emulator, stack, template, {"pName": first, "pValue": "b"})
    assert set(changes) == {"Param"}
    assert changes["Param"]["Replacement"] == "False"
    detail = changes["Param"]["Details"][0]
    assert (detail["ChangeSource"], detail["CausingEntity"], detail["Evaluation"]) == ("ParameterReference", "pValue", "Static")

    # A new queue name replaces the queue; what reads its Arn changes only when that is known (Dynamic).
    changes = _propose(emulator, stack, template, {"pName": unique("q"), "pValue": "a"})
    assert changes["Queue"]["Replacement"] == "True"
    assert _targets(changes["Queue"]) == {"QueueName": "Always"}
    pointer = changes["Pointer"]
    assert pointer["Replacement"] == "False"
    assert pointer["Details"][0]["Evaluation"] == "Dynamic"
    assert pointer["Details"][0]["ChangeSource"] == "ResourceAttribute"
    assert pointer["Details"][0]["CausingEntity"] == "Queue"


def test_nested_create_only_path_and_add_remove_have_no_replacement(emulator):
    stack = unique("cs-nested")
    database = unique("db").replace("-", "_")
    table_input = {"Name": "t1", "TableType": "EXTERNAL_TABLE", "Parameters": {"classification": "parquet"}}
    template = {"Resources": {
        "Db": {"Type": "AWS::Glue::Database",
               "Properties": {"CatalogId": {"Ref": "AWS::AccountId"}, "DatabaseInput": {"Name": database}}},
        "Table": {"Type": "AWS::Glue::Table",
                  "Properties": {"CatalogId": {"Ref": "AWS::AccountId"}, "DatabaseName": {"Ref": "Db"},
                                 "TableInput": table_input}},
        "Gone": {"Type": "AWS::SQS::Queue", "Properties": {}},
    }}
    assert deploy(emulator, stack, template)["StackStatus"] == "CREATE_COMPLETE"
    changed = json.loads(json.dumps(template))
    changed["Resources"]["Table"]["Properties"]["TableInput"]["Parameters"] = {"classification": "json"}
    del changed["Resources"]["Gone"]
    changed["Resources"]["New"] = {"Type": "AWS::SQS::Queue", "Properties": {}}
    changes = _propose(emulator, stack, changed)
    assert changes["Table"]["Replacement"] == "False"  # TableInput/Name (create-only) is unchanged
    assert changes["New"]["Action"] == "Add" and "Replacement" not in changes["New"]
    assert changes["Gone"]["Action"] == "Remove" and "Replacement" not in changes["Gone"]

    changed["Resources"]["Table"]["Properties"]["TableInput"]["Name"] = "t2"
    assert _propose(emulator, stack, changed)["Table"]["Replacement"] == "True"
