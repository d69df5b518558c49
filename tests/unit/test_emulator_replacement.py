"""Replacement rules of the emulator's change sets, read from the provider schemas cfn-lint ships."""
from __future__ import annotations

from sdlf_cli.local.cfn import replacement

REGION = "us-east-1"


def test_create_only_paths_come_from_the_schema_nested_paths_included():
    assert ("TableName",) in replacement.create_only_paths(REGION, "AWS::DynamoDB::Table")
    assert ("TableInput", "Name") in replacement.create_only_paths(REGION, "AWS::Glue::Table")
    assert replacement.create_only_paths(REGION, "AWS::KMS::Key") == ()
    assert replacement.create_only_paths(REGION, "Custom::Anything") == (("ServiceToken",),)
    assert replacement.create_only_paths(REGION, "AWS::Nothing::Here") == ()


def test_recreating_properties_compare_only_create_only_parts():
    before = {"TableInput": {"Name": "t", "Parameters": {"a": "1"}}, "DatabaseName": "db"}
    assert replacement.recreating_properties(REGION, "AWS::Glue::Table", before,
                                             {"TableInput": {"Name": "t", "Parameters": {"a": "2"}}, "DatabaseName": "db"}) == []
    assert replacement.recreating_properties(REGION, "AWS::Glue::Table", before,
                                             {"TableInput": {"Name": "u"}, "DatabaseName": "db"}) == ["TableInput"]
    # a create-only property that appears where there was none is a change too
    assert replacement.recreating_properties(REGION, "AWS::IAM::Role", {}, {"Path": "/x/"}) == ["Path"]


def test_name_property_is_the_create_only_identifier_but_not_for_versioned_types():
    assert replacement.name_property(REGION, "AWS::S3::Bucket") == "BucketName"
    assert replacement.name_property(REGION, "AWS::Glue::Database") == "DatabaseName"
    assert replacement.name_property(REGION, "AWS::SQS::Queue", "QueueName") == "QueueName"
    assert replacement.name_property(REGION, "AWS::Lambda::LayerVersion", "LayerName") is None
    assert replacement.name_property(REGION, "AWS::KMS::Key") is None


def test_modification_replacement_scope_and_details():
    table = {"Type": "AWS::DynamoDB::Table", "Properties": {"TableName": {"Ref": "pName"}, "BillingMode": "PAY_PER_REQUEST"}}
    assert replacement.modification(REGION, table, table, set(), set()) is None

    by_parameter = replacement.modification(REGION, table, table, {"pName"}, set())
    assert by_parameter.replacement == "True"
    assert [d.to_aws() for d in by_parameter.details] == [{
        "Target": {"Attribute": "Properties", "Name": "TableName", "RequiresRecreation": "Always"},
        "Evaluation": "Static", "ChangeSource": "ParameterReference", "CausingEntity": "pName"}]

    tagged = {**table, "Properties": {**table["Properties"], "Tags": [{"Key": "k", "Value": "v"}]},
              "DeletionPolicy": "Retain"}
    found = replacement.modification(REGION, table, tagged, set(), set())
    assert found.replacement == "False" and found.scope == ("Tags", "DeletionPolicy")

    pointer = {"Type": "AWS::SSM::Parameter",
               "Properties": {"Name": {"Fn::Sub": "/x/${Queue.QueueName}"}, "Type": "String", "Value": "v"}}
    dynamic = replacement.modification(REGION, pointer, pointer, set(), {"Queue"})
    assert dynamic.replacement == "Conditional"
    assert dynamic.details[0].evaluation == "Dynamic" and dynamic.details[0].change_source == "ResourceAttribute"

    assert replacement.modification(REGION, table, {**table, "Type": "AWS::S3::Bucket"}, set(), set()).replacement == "True"


def test_modifications_follow_replacements_through_references():
    old = {
        "Queue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "a"}},
        "Name": {"Type": "AWS::SSM::Parameter", "Properties": {"Name": {"Fn::GetAtt": ["Queue", "QueueName"]}, "Value": "v"}},
        "Copy": {"Type": "AWS::SSM::Parameter", "Properties": {"Name": "/copy", "Value": {"Ref": "Name"}}},
        "Same": {"Type": "AWS::SSM::Parameter", "Properties": {"Name": "/same", "Value": "v"}},
    }
    new = {**old, "Queue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "b"}}}
    found = replacement.modifications(REGION, old, new, set())
    assert {name: m.replacement for name, m in found.items()} == {"Queue": "True", "Name": "Conditional", "Copy": "False"}
