"""Seams of moto's stack machinery the deployer relies on (change sets, exports, failures, nested stacks)."""
from __future__ import annotations

import json

from tests.integration.test_emulator_cfn_helpers import client, delete, deploy, outputs, unique


def _exporter(export: str, value: str) -> dict:
    return {
        "Parameters": {"pValue": {"Type": "String"}},
        "Resources": {"Param": {"Type": "AWS::SSM::Parameter",
                                "Properties": {"Type": "String", "Value": {"Ref": "pValue"}, "Name": f"/t/{export}"}}},
        "Outputs": {"Value": {"Value": {"Ref": "pValue"}, "Export": {"Name": export}}},
    }


def test_change_set_outputs_exports_and_import_value_across_stacks(emulator):
    export, producer, consumer = unique("exp"), unique("producer"), unique("consumer")
    produced = deploy(emulator, producer, _exporter(export, "v1"), {"pValue": "v1"})
    assert produced["StackStatus"] == "CREATE_COMPLETE"
    assert outputs(produced) == {"Value": "v1"}
    cfn = client(emulator, "cloudformation")
    exports = {e["Name"]: e for e in cfn.list_exports()["Exports"]}
    assert exports[export]["Value"] == "v1"
    assert exports[export]["ExportingStackId"] == produced["StackId"]

    importer = {
        "Resources": {"Copy": {"Type": "AWS::SSM::Parameter",
                               "Properties": {"Name": f"/t/{consumer}", "Type": "String",
                                              "Value": {"Fn::ImportValue": export}}}},
        "Outputs": {"Imported": {"Value": {"Fn::ImportValue": export}}},
    }
    consumed = deploy(emulator, consumer, importer)
    assert consumed["StackStatus"] == "CREATE_COMPLETE"
    assert outputs(consumed) == {"Imported": "v1"}
    assert client(emulator, "ssm").get_parameter(Name=f"/t/{consumer}")["Parameter"]["Value"] == "v1"

    updated = deploy(emulator, producer, _exporter(export, "v2"), {"pValue": "v2"})
    assert updated["StackStatus"] == "UPDATE_COMPLETE"
    assert outputs(updated) == {"Value": "v2"}
    assert {e["Name"]: e["Value"] for e in cfn.list_exports()["Exports"]}[export] == "v2"

    delete(emulator, consumer)
    delete(emulator, producer)
    assert export not in {e["Name"] for e in cfn.list_exports()["Exports"]}


def test_failed_create_rolls_back_and_names_the_resource(emulator):
    stack = unique("broken")
    template = {"Resources": {
        "Good": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": unique("good")}},
        "Bad": {"Type": "AWS::SQS::QueuePolicy",
                "Properties": {"Queues": ["https://sqs.us-east-1.amazonaws.com/123456789012/does-not-exist"],
                               "PolicyDocument": {"Statement": []}}},
    }}
    described = deploy(emulator, stack, template)
    assert described["StackStatus"] == "ROLLBACK_COMPLETE"
    events = client(emulator, "cloudformation").describe_stack_events(StackName=stack)["StackEvents"]
    failed = [e for e in events if e["ResourceStatus"] == "CREATE_FAILED"]
    assert failed and failed[0]["LogicalResourceId"] == "Bad"
    assert failed[0]["ResourceType"] == "AWS::SQS::QueuePolicy"
    # the queue created before the failure was rolled back
    queues = client(emulator, "sqs").list_queues().get("QueueUrls", [])
    assert not [q for q in queues if q.endswith(template["Resources"]["Good"]["Properties"]["QueueName"])]


def test_getatt_on_nested_stack_output_keeps_outputs(emulator):
    bucket = unique("templates")
    s3 = client(emulator, "s3")
    s3.create_bucket(Bucket=bucket)
    child = {"Resources": {"Q": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": unique("child")}}},
             "Outputs": {"QueueArn": {"Value": {"Fn::GetAtt": ["Q", "Arn"]}}}}
    s3.put_object(Bucket=bucket, Key="child.json", Body=json.dumps(child).encode())
    parent = {
        "Resources": {"Child": {"Type": "AWS::CloudFormation::Stack",
                                "Properties": {"TemplateURL": f"https://s3.amazonaws.com/{bucket}/child.json"}}},
        "Outputs": {"ChildQueueArn": {"Value": {"Fn::GetAtt": ["Child", "Outputs.QueueArn"]}},
                    "Other": {"Value": "kept"}},
    }
    described = deploy(emulator, unique("parent"), parent)
    assert described["StackStatus"] == "CREATE_COMPLETE"
    values = outputs(described)
    assert values["Other"] == "kept"
    assert values["ChildQueueArn"].startswith("arn:aws:sqs:us-east-1:123456789012:child-")
