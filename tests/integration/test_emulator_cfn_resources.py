"""Seams where moto's CloudFormation silently did the wrong thing: bucket settings and S3 -> EventBridge
events, Lambda layers and code updates, state machine definitions."""
from __future__ import annotations

import hashlib
import json
import time

from tests.integration.test_emulator_cfn_helpers import ROLE_ARN, client, deploy, outputs, unique, zip_bytes


def _lake_bucket_template(bucket: str, logs: str, queue: str) -> dict:
    return {"Resources": {
        "Logs": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": logs}},
        "Raw": {"Type": "AWS::S3::Bucket", "Properties": {
            "BucketName": bucket,
            "VersioningConfiguration": {"Status": "Enabled"},
            "PublicAccessBlockConfiguration": {"BlockPublicAcls": True, "BlockPublicPolicy": True,
                                               "IgnorePublicAcls": True, "RestrictPublicBuckets": True},
            "LoggingConfiguration": {"DestinationBucketName": {"Ref": "Logs"}, "LogFilePrefix": "raw/"},
            "LifecycleConfiguration": {"Rules": [{"Id": "old-versions", "Status": "Enabled",
                                                  "NoncurrentVersionExpiration": {"NoncurrentDays": 30},
                                                  "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7}}]},
            "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
            "NotificationConfiguration": {"EventBridgeConfiguration": {"EventBridgeEnabled": True}},
        }},
        "RawPolicy": {"Type": "AWS::S3::BucketPolicy", "Properties": {"Bucket": {"Ref": "Raw"}, "PolicyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Sid": "TlsOnly", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                           "Resource": [{"Fn::Sub": "arn:aws:s3:::${Raw}/*"}],
                           "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}}},
        "Queue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": queue}},
        "Rule": {"Type": "AWS::Events::Rule", "Properties": {
            "EventPattern": {"source": ["aws.s3"], "detail-type": ["Object Created", "Object Deleted"],
                             "detail": {"bucket": {"name": [{"Ref": "Raw"}]}}},
            "Targets": [{"Id": "catalog", "Arn": {"Fn::GetAtt": ["Queue", "Arn"]}}]}},
        "QueuePolicy": {"Type": "AWS::SQS::QueuePolicy", "Properties": {"Queues": [{"Ref": "Queue"}], "PolicyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
                           "Action": "sqs:SendMessage", "Resource": {"Fn::GetAtt": ["Queue", "Arn"]},
                           "Condition": {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["Rule", "Arn"]}}}}]}}},
    }}


def _receive(sqs, url: str, count: int, timeout: float = 10.0) -> list[dict]:
    bodies: list[dict] = []
    deadline = time.monotonic() + timeout
    while len(bodies) < count and time.monotonic() < deadline:
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return bodies


def test_bucket_eventbridge_notification_reaches_the_queue_with_the_aws_envelope(emulator):
    bucket, logs, queue = unique("raw"), unique("logs"), unique("catalog")
    stack = deploy(emulator, unique("bucket"), _lake_bucket_template(bucket, logs, queue))
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    s3, sqs = client(emulator, "s3"), client(emulator, "sqs")
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    assert s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]["BlockPublicPolicy"] is True
    assert s3.get_bucket_logging(Bucket=bucket)["LoggingEnabled"] == {"TargetBucket": logs, "TargetPrefix": "raw/"}
    rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert rules[0]["NoncurrentVersionExpiration"]["NoncurrentDays"] == 30
    assert s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"] == [
        {"ObjectOwnership": "BucketOwnerEnforced"}]
    assert "EventBridgeConfiguration" in s3.get_bucket_notification_configuration(Bucket=bucket)
    assert json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])["Statement"][0]["Sid"] == "TlsOnly"
    url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    policy = json.loads(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])["Attributes"]["Policy"])
    assert policy["Statement"][0]["Principal"] == {"Service": "events.amazonaws.com"}

    put = s3.put_object(Bucket=bucket, Key="team/dataset/file.json", Body=b'{"a": 1}')
    s3.put_object(Bucket=bucket, Key="team/dataset/file2.json", Body=b"{}")
    s3.delete_object(Bucket=bucket, Key="team/dataset/file.json")
    events = _receive(sqs, url, 3)
    assert [e["detail-type"] for e in events] == ["Object Created", "Object Created", "Object Deleted"]
    created = events[0]
    assert created["source"] == "aws.s3"
    assert created["detail"]["bucket"]["name"] == bucket
    obj = created["detail"]["object"]
    assert obj["key"] == "team/dataset/file.json"
    assert obj["size"] == 8
    assert obj["etag"] == hashlib.md5(b'{"a": 1}').hexdigest()
    assert obj["version-id"] == put["VersionId"]
    assert isinstance(created["time"], str) and created["time"].endswith("Z")
    assert created["detail"]["reason"] == "PutObject"
    assert len({e["id"] for e in events}) == 3
    sequencers = [e["detail"]["object"]["sequencer"] for e in events]
    assert sequencers == sorted(sequencers, key=lambda s: (len(s), s)) and len(set(sequencers)) == 3
    deleted = events[2]["detail"]
    assert deleted["object"]["key"] == "team/dataset/file.json"
    assert deleted["deletion-type"] == "Delete Marker Created"


def _function_template() -> dict:
    return {
        "Parameters": {"pArtifactsBucket": {"Type": "String"}, "pCodeCatalogKey": {"Type": "String"},
                       "pLayerDatalakeKey": {"Type": "String"}},
        "Resources": {
            "Role": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                               "Action": "sts:AssumeRole"}]}}},
            "Layer": {"Type": "AWS::Lambda::LayerVersion", "Properties": {
                "LayerName": "test-datalake", "CompatibleRuntimes": ["python3.12"],
                "Content": {"S3Bucket": {"Ref": "pArtifactsBucket"}, "S3Key": {"Ref": "pLayerDatalakeKey"}}}},
            "Function": {"Type": "AWS::Lambda::Function", "Properties": {
                "FunctionName": "test-catalog", "Runtime": "python3.12", "Handler": "handler.handler",
                "Role": {"Fn::GetAtt": ["Role", "Arn"]}, "Timeout": 30, "MemorySize": 256, "Layers": [{"Ref": "Layer"}],
                "Environment": {"Variables": {"CATALOG_TABLE": "t"}},
                "Code": {"S3Bucket": {"Ref": "pArtifactsBucket"}, "S3Key": {"Ref": "pCodeCatalogKey"}}}},
            "LayerArn": {"Type": "AWS::SSM::Parameter", "Properties": {
                "Name": "/test/layers/datalake", "Type": "String", "Value": {"Ref": "Layer"}}},
        },
        "Outputs": {"LayerArn": {"Value": {"Ref": "Layer"}},
                    "LayerVersionArn": {"Value": {"Fn::GetAtt": ["Layer", "LayerVersionArn"]}},
                    "FunctionArn": {"Value": {"Fn::GetAtt": ["Function", "Arn"]}}},
    }


def _upload_code(s3, bucket: str, version: str) -> dict[str, str]:
    code = zip_bytes({"handler.py": f"def handler(event, context):\n    return {version!r}\n"})
    layer = zip_bytes({"python/sdlf_datalake/__init__.py": f"VERSION = {version!r}\n"})
    s3.put_object(Bucket=bucket, Key=f"code/{version}.zip", Body=code)
    s3.put_object(Bucket=bucket, Key=f"layer/{version}.zip", Body=layer)
    return {"pArtifactsBucket": bucket, "pCodeCatalogKey": f"code/{version}.zip",
            "pLayerDatalakeKey": f"layer/{version}.zip"}


def test_function_layers_kept_and_second_deploy_updates_code_and_layer(emulator):
    from moto.awslambda.utils import get_backend

    s3, lam = client(emulator, "s3"), client(emulator, "lambda")
    artifacts = unique("artifacts")
    s3.create_bucket(Bucket=artifacts)
    stack = unique("function")
    first = deploy(emulator, stack, _function_template(), _upload_code(s3, artifacts, "v1"))
    assert first["StackStatus"] == "CREATE_COMPLETE"
    layer_arn = outputs(first)["LayerArn"]
    assert layer_arn == outputs(first)["LayerVersionArn"]
    assert layer_arn.endswith(":layer:test-datalake:1")
    config = lam.get_function(FunctionName="test-catalog")["Configuration"]
    assert [layer["Arn"] for layer in config["Layers"]] == [layer_arn]
    assert config["Timeout"] == 30 and config["Environment"]["Variables"] == {"CATALOG_TABLE": "t"}
    # what the warm-worker runtime reads: moto's own LambdaFunction, as the Lambda API would build it
    backend = get_backend("123456789012", "us-east-1")
    function = backend.get_function("test-catalog")
    assert [layer["Arn"] for layer in function.layers] == [layer_arn]
    assert b"VERSION = 'v1'" in _unzip_one(backend.layers_versions_by_arn(layer_arn).code_bytes)
    assert b"'v1'" in _unzip_one(function.code_bytes)
    assert client(emulator, "ssm").get_parameter(Name="/test/layers/datalake")["Parameter"]["Value"] == layer_arn

    second = deploy(emulator, stack, _function_template(), _upload_code(s3, artifacts, "v2"))
    assert second["StackStatus"] == "UPDATE_COMPLETE"
    new_layer_arn = outputs(second)["LayerArn"]
    assert new_layer_arn.endswith(":layer:test-datalake:2")
    function = backend.get_function("test-catalog")
    assert b"'v2'" in _unzip_one(function.code_bytes)
    assert [layer["Arn"] for layer in function.layers] == [new_layer_arn]
    assert config["CodeSha256"] != lam.get_function(FunctionName="test-catalog")["Configuration"]["CodeSha256"]
    assert client(emulator, "ssm").get_parameter(Name="/test/layers/datalake")["Parameter"]["Value"] == new_layer_arn


def _unzip_one(data: bytes) -> bytes:
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return b"".join(archive.read(name) for name in archive.namelist())


def test_state_machine_definitions_and_substitutions_are_served_by_the_interpreter(emulator):
    s3, sfn = client(emulator, "s3"), client(emulator, "stepfunctions")
    bucket = unique("definitions")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="sm.json", Body=json.dumps(
        {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "Result": "${Greeting}", "End": True}}}).encode())
    name_object, name_s3 = unique("sm-object"), unique("sm-s3")
    template = {"Resources": {
        "FromObject": {"Type": "AWS::StepFunctions::StateMachine", "Properties": {
            "StateMachineName": name_object, "RoleArn": ROLE_ARN,
            "Definition": {"StartAt": "Say", "States": {"Say": {"Type": "Pass", "Result": {"to": "${Target}"},
                                                                 "End": True}}},
            "DefinitionSubstitutions": {"Target": {"Fn::Sub": "${AWS::Region}-world"}}}},
        "FromS3": {"Type": "AWS::StepFunctions::StateMachine", "Properties": {
            "StateMachineName": name_s3, "RoleArn": ROLE_ARN,
            "DefinitionS3Location": {"Bucket": bucket, "Key": "sm.json"},
            "DefinitionSubstitutions": {"Greeting": "hello"}}},
    }, "Outputs": {"Arn": {"Value": {"Ref": "FromObject"}}, "Name": {"Value": {"Fn::GetAtt": ["FromObject", "Name"]}}}}
    stack = deploy(emulator, unique("states"), template)
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    arn = outputs(stack)["Arn"]
    assert outputs(stack)["Name"] == name_object
    definition = json.loads(sfn.describe_state_machine(stateMachineArn=arn)["definition"])
    assert definition["States"]["Say"]["Result"] == {"to": "us-east-1-world"}
    listed = {m["name"] for m in sfn.list_state_machines()["stateMachines"]}
    assert {name_object, name_s3} <= listed
    execution = sfn.start_execution(stateMachineArn=arn, name=unique("run"), input="{}")["executionArn"]
    deadline = time.monotonic() + 20
    while (described := sfn.describe_execution(executionArn=execution))["status"] == "RUNNING":
        assert time.monotonic() < deadline, "execution did not finish"
        time.sleep(0.1)
    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"]) == {"to": "us-east-1-world"}
    s3_arn = next(m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"] if m["name"] == name_s3)
    assert json.loads(sfn.describe_state_machine(stateMachineArn=s3_arn)["definition"])["States"]["Done"]["Result"] == "hello"
