"""What CloudFormation resolves at deploy time counts in a stack's fingerprint."""
from __future__ import annotations

import boto3
from botocore.stub import Stubber

from sdlf_cli.aws.parameters import Parameters
from sdlf_cli.deploy import StackSpec
from sdlf_cli.deploy.inputs import (
    InputResolver,
    imported_exports,
    published_sources,
    ssm_parameters,
    upstream_of,
)

PRODUCER = {
    "Parameters": {
        "pLayerKey": {"Type": "String"},
        "pCodeKey": {"Type": "String"},
        "pBucket": {"Type": "AWS::SSM::Parameter::Value<String>", "Default": "/lake/bucket"},
    },
    "Resources": {
        "rLayer": {"Type": "AWS::Lambda::LayerVersion",
                   "Properties": {"LayerName": "lib", "Content": {"S3Bucket": "b", "S3Key": {"Ref": "pLayerKey"}}}},
        "rFunction": {"Type": "AWS::Lambda::Function",
                      "Properties": {"FunctionName": "fn", "Code": {"S3Key": {"Ref": "pCodeKey"}}, "Layers": [{"Ref": "rLayer"}]}},
        "rSsmLayer": {"Type": "AWS::SSM::Parameter", "Properties": {"Name": "/lake/layer", "Value": {"Ref": "rLayer"}}},
        "rSsmFunction": {"Type": "AWS::SSM::Parameter",
                         "Properties": {"Name": "/lake/function", "Value": {"Fn::GetAtt": ["rFunction", "Arn"]}}},
        "rSsmPrefix": {"Type": "AWS::SSM::Parameter",
                       "Properties": {"Name": "/lake/prefix", "Value": {"Fn::Sub": "s3://${pBucket}/x"}}},
    },
}
CONSUMER = {
    "Parameters": {
        "pLayer": {"Type": "AWS::SSM::Parameter::Value<String>", "Default": "/lake/layer"},
        "pFunction": {"Type": "AWS::SSM::Parameter::Value<String>", "Default": "/lake/function"},
        "pOther": {"Type": "String"},
    },
    "Resources": {"r": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": {"Fn::ImportValue": "lake-topic"}}}},
}


def test_ssm_typed_parameters_and_imports_are_found():
    assert ssm_parameters(CONSUMER, {}) == {"pLayer": "/lake/layer", "pFunction": "/lake/function"}
    assert ssm_parameters(CONSUMER, {"pLayer": "/elsewhere"})["pLayer"] == "/elsewhere"
    assert imported_exports(CONSUMER) == ["lake-topic"]


def test_a_published_value_comes_from_the_inputs_that_replace_what_it_names():
    sources = published_sources(PRODUCER, {"pLayerKey": "layer/abc.zip", "pCodeKey": "code/1.zip"},
                                {"/lake/bucket": {"parameters": {"pName": "raw"}, "ssm": {}}})
    # A new layer zip is a new layer version, hence a new ARN.
    assert sources["/lake/layer"] == {"parameters": {"pLayerKey": "layer/abc.zip"}, "ssm": {}}
    # New function code keeps the function's ARN: the value does not depend on it.
    assert sources["/lake/function"] == {"parameters": {}, "ssm": {}}
    # A value built from an SSM-typed parameter carries where that one came from.
    assert sources["/lake/prefix"] == {"parameters": {}, "ssm": {"/lake/bucket": {"parameters": {"pName": "raw"}, "ssm": {}}}}


def test_a_new_layer_zip_changes_the_consumers_fingerprint_before_anything_is_deployed():
    def consumer_spec(layer_key: str) -> StackSpec:
        sources = published_sources(PRODUCER, {"pLayerKey": layer_key, "pCodeKey": "code/1.zip"})
        resolve = InputResolver(lambda names: {n: "same" for n in names}, lambda: {"lake-topic": "t"})
        return resolve(StackSpec("consumer", "pipeline", "body", {"pOther": "x"}, {},
                                 ssm_parameters=ssm_parameters(CONSUMER, {}), imports=("lake-topic",),
                                 upstream=upstream_of(CONSUMER, {}, sources)))

    assert consumer_spec("layer/abc.zip").fingerprint() == consumer_spec("layer/abc.zip").fingerprint()
    assert consumer_spec("layer/abc.zip").fingerprint() != consumer_spec("layer/def.zip").fingerprint()


def test_resolved_values_and_imports_count_in_the_fingerprint():
    base = StackSpec("s", "pipeline", "body", {}, {}, ssm_parameters={"pLayer": "/lake/layer"}, imports=("e",))

    def fingerprint(layer: str | None, export: str = "v") -> str:
        return InputResolver(lambda names: {n: layer for n in names}, lambda: {"e": export})(base).fingerprint()

    assert fingerprint("arn:layer:1") == fingerprint("arn:layer:1")
    assert fingerprint("arn:layer:1") != fingerprint("arn:layer:2")
    assert fingerprint("arn:layer:1") != fingerprint(None)
    assert fingerprint("arn:layer:1", "v") != fingerprint("arn:layer:1", "w")


def test_a_stack_without_deploy_time_inputs_keeps_its_fingerprint():
    plain = StackSpec("s", "foundations", "body", {"p": "1"}, {"t": "x"})
    resolved = InputResolver(lambda names: {}, lambda: {})(plain)
    assert resolved.fingerprint() == plain.fingerprint()


def test_the_parameters_gateway_reads_in_batches_and_reports_missing_names():
    client = boto3.client("ssm", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    names = [f"/p/{i:02d}" for i in range(12)]
    with Stubber(client) as stub:
        stub.add_response("get_parameters", {"Parameters": [{"Name": n, "Value": n.upper(), "Type": "String"}
                                                            for n in names[:10]]},
                          {"Names": names[:10]})
        stub.add_response("get_parameters", {"Parameters": [{"Name": names[10], "Value": "v", "Type": "String"}],
                                             "InvalidParameters": [names[11]]}, {"Names": names[10:]})
        values = Parameters(client).values(reversed(names))
    assert values[names[0]] == "/P/00" and values[names[10]] == "v" and values[names[11]] is None
