"""Small hand-written CodePipeline stacks for the emulator's CI/CD tests (no tests here).

`pipeline_template()`: a versioned source bucket (zip), an artifact bucket, roles, an SNS topic whose
messages land in an SQS queue, two CodeBuild projects and a V2 pipeline
Source (S3) -> Build (inline buildspec) -> Approve (manual) -> Deploy (buildspec from the source zip).
"""
from __future__ import annotations

import json
import time

from tests.integration.test_emulator_runtime_helpers import client, wait_for, zip_bytes

BUILD_SPEC = """version: 0.2
env:
  variables:
    GREETING: hello
    PROJECT_VAR: from-buildspec
  exported-variables:
    - BUILT_NUMBER
phases:
  install:
    commands:
      - echo "installing in $(pwd)"
      - cd "$CODEBUILD_SRC_DIR"
  build:
    commands:
      - cat message.txt
      - test ! -f FAIL || { echo "failing on purpose"; exit 3; }
      - mkdir -p out/nested && echo "$GREETING $STAGE_VAR" > out/nested/result.txt
      - export BUILT_NUMBER="build-$CODEBUILD_BUILD_NUMBER"
      - env | grep -E '^(CODEBUILD_|AWS_REGION|AWS_DEFAULT_REGION|AWS_ENDPOINT_URL|STAGE_VAR|PROJECT_VAR|GREETING)' | sort
    finally:
      - echo "build finally ran"
  post_build:
    commands:
      - echo "post_build ran, succeeding=$CODEBUILD_BUILD_SUCCEEDING"
artifacts:
  files:
    - out/**/*
  discard-paths: yes
"""

DEPLOY_SPEC = """version: 0.2
phases:
  build:
    commands:
      - echo "deploying $(cat "$CODEBUILD_SRC_DIR_BuildOutput/result.txt")"
      - echo "source is $(cat message.txt)"
"""


def _role(service: str) -> dict:
    return {"Type": "AWS::IAM::Role", "Properties": {
        "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Service": [f"{service}.amazonaws.com"]}, "Action": "sts:AssumeRole"}]},
        "Policies": [{"PolicyName": "all", "PolicyDocument": {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "codebuild:StartBuild"],
            "Resource": "*"}]}}]}}


def _project(name: str, buildspec: str, variables: list[dict] | None = None) -> dict:
    return {"Type": "AWS::CodeBuild::Project", "Properties": {
        "Name": name, "ServiceRole": {"Fn::GetAtt": ["BuildRole", "Arn"]}, "TimeoutInMinutes": 5,
        "EncryptionKey": {"Fn::GetAtt": ["Key", "Arn"]},
        "Source": {"Type": "CODEPIPELINE", "BuildSpec": buildspec},
        "Artifacts": {"Type": "CODEPIPELINE"},
        "Environment": {"Type": "LINUX_CONTAINER", "ComputeType": "BUILD_GENERAL1_SMALL",
                        "Image": "aws/codebuild/standard:7.0",
                        "EnvironmentVariables": variables or []},
        "LogsConfig": {"CloudWatchLogs": {"Status": "ENABLED", "GroupName": {"Ref": "BuildLogs"},
                                          "StreamName": name}}}}


def pipeline_template(name: str, *, poll: bool = True, source_key: str = "source.zip") -> dict:
    source_config: dict = {"S3Bucket": {"Ref": "SourceBucket"}, "S3ObjectKey": source_key}
    if not poll:
        source_config["PollForSourceChanges"] = False
    return {"Resources": {
        "Key": {"Type": "AWS::KMS::Key", "Properties": {"KeyPolicy": {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:*", "Resource": "*"}]}}},
        "SourceBucket": {"Type": "AWS::S3::Bucket", "Properties": {
            "VersioningConfiguration": {"Status": "Enabled"},
            "NotificationConfiguration": {"EventBridgeConfiguration": {"EventBridgeEnabled": True}}}},
        "ArtifactBucket": {"Type": "AWS::S3::Bucket"},
        "BuildLogs": {"Type": "AWS::Logs::LogGroup", "Properties": {"RetentionInDays": 7}},
        "PipelineRole": _role("codepipeline"),
        "BuildRole": _role("codebuild"),
        "Topic": {"Type": "AWS::SNS::Topic"},
        "Inbox": {"Type": "AWS::SQS::Queue"},
        "Subscription": {"Type": "AWS::SNS::Subscription", "Properties": {
            "TopicArn": {"Ref": "Topic"}, "Protocol": "sqs", "Endpoint": {"Fn::GetAtt": ["Inbox", "Arn"]},
            "RawMessageDelivery": True}},
        "BuildProject": _project(f"{name}-build", BUILD_SPEC,
                                 [{"Name": "PROJECT_VAR", "Value": "from-project"}]),
        "DeployProject": _project(f"{name}-deploy", "deploy.yml"),
        "Connection": {"Type": "AWS::CodeConnections::Connection", "Properties": {
            "ConnectionName": name[:32], "ProviderType": "GitHub"}},
        "Pipeline": {"Type": "AWS::CodePipeline::Pipeline", "Properties": {
            "Name": name, "PipelineType": "V2", "ExecutionMode": "QUEUED",
            "RoleArn": {"Fn::GetAtt": ["PipelineRole", "Arn"]},
            "ArtifactStore": {"Type": "S3", "Location": {"Ref": "ArtifactBucket"},
                              "EncryptionKey": {"Id": {"Fn::GetAtt": ["Key", "Arn"]}, "Type": "KMS"}},
            "Variables": [{"Name": "Target", "DefaultValue": "dev", "Description": "where to deploy"}],
            "Stages": [
                {"Name": "Source", "Actions": [{
                    "Name": "Zip", "ActionTypeId": {"Category": "Source", "Owner": "AWS", "Provider": "S3",
                                                    "Version": "1"},
                    "Configuration": source_config, "OutputArtifacts": [{"Name": "SourceOutput"}],
                    "Namespace": "SourceVars"}]},
                {"Name": "Build", "Actions": [{
                    "Name": "Compile", "ActionTypeId": {"Category": "Build", "Owner": "AWS", "Provider": "CodeBuild",
                                                        "Version": "1"},
                    "Configuration": {"ProjectName": {"Ref": "BuildProject"}, "EnvironmentVariables": json.dumps([
                        {"name": "STAGE_VAR", "value": "#{variables.Target}-#{SourceVars.VersionId}",
                         "type": "PLAINTEXT"}])},
                    "InputArtifacts": [{"Name": "SourceOutput"}], "OutputArtifacts": [{"Name": "BuildOutput"}],
                    "Namespace": "BuildVars", "RunOrder": 1}]},
                {"Name": "Approve", "Actions": [{
                    "Name": "Review", "ActionTypeId": {"Category": "Approval", "Owner": "AWS", "Provider": "Manual",
                                                       "Version": "1"},
                    "Configuration": {"NotificationArn": {"Ref": "Topic"},
                                      "CustomData": "release #{BuildVars.BUILT_NUMBER} to #{variables.Target}",
                                      "ExternalEntityLink": "https://example.com/plan"}}]},
                {"Name": "Deploy", "Actions": [{
                    "Name": "Apply", "ActionTypeId": {"Category": "Build", "Owner": "AWS", "Provider": "CodeBuild",
                                                      "Version": "1"},
                    "Configuration": {"ProjectName": {"Ref": "DeployProject"}, "PrimarySource": "SourceOutput"},
                    "InputArtifacts": [{"Name": "SourceOutput"}, {"Name": "BuildOutput"}]}]},
            ]}},
    }, "Outputs": {
        "Pipeline": {"Value": {"Ref": "Pipeline"}}, "Version": {"Value": {"Fn::GetAtt": ["Pipeline", "Version"]}},
        "BuildProjectArn": {"Value": {"Fn::GetAtt": ["BuildProject", "Arn"]}},
        "SourceBucket": {"Value": {"Ref": "SourceBucket"}}, "ArtifactBucket": {"Value": {"Ref": "ArtifactBucket"}},
        "Connection": {"Value": {"Ref": "Connection"}},
        "ConnectionStatus": {"Value": {"Fn::GetAtt": ["Connection", "ConnectionStatus"]}},
        "Inbox": {"Value": {"Ref": "Inbox"}}, "LogGroup": {"Value": {"Ref": "BuildLogs"}},
        "KeyArn": {"Value": {"Fn::GetAtt": ["Key", "Arn"]}},
    }}


def source_zip(message: str = "release one", *, fail: bool = False) -> bytes:
    files = {"message.txt": message, "deploy.yml": DEPLOY_SPEC}
    if fail:
        files["FAIL"] = "yes"
    return zip_bytes(files)


def executions(emulator, pipeline: str) -> list[dict]:
    return client(emulator, "codepipeline").list_pipeline_executions(pipelineName=pipeline)[
        "pipelineExecutionSummaries"]


def wait_new_execution(emulator, pipeline: str, known: set[str], timeout: float = 30) -> str:
    found = wait_for(lambda: [e["pipelineExecutionId"] for e in executions(emulator, pipeline)
                              if e["pipelineExecutionId"] not in known], timeout=timeout, what="a new execution")
    return found[0]


def wait_status(emulator, pipeline: str, execution_id: str, statuses: tuple[str, ...] = ("Succeeded", "Failed",
                                                                                           "Stopped", "Superseded"),
                timeout: float = 90) -> dict:
    cp = client(emulator, "codepipeline")
    return wait_for(lambda: (e := cp.get_pipeline_execution(pipelineName=pipeline, pipelineExecutionId=execution_id)[
        "pipelineExecution"])["status"] in statuses and e, timeout=timeout, what=f"execution {execution_id} {statuses}")


def stage_state(emulator, pipeline: str, stage: str) -> dict:
    state = client(emulator, "codepipeline").get_pipeline_state(name=pipeline)
    return next(s for s in state["stageStates"] if s["stageName"] == stage)


def wait_approval_token(emulator, pipeline: str, execution_id: str, stage: str = "Approve") -> str:
    def token():
        s = stage_state(emulator, pipeline, stage)
        if s.get("latestExecution", {}).get("pipelineExecutionId") != execution_id:
            return None
        return s["actionStates"][0].get("latestExecution", {}).get("token")

    return wait_for(token, timeout=90, what=f"approval of {execution_id}")


def log_lines(emulator, group: str, stream: str) -> list[str]:
    events = client(emulator, "logs").get_log_events(logGroupName=group, logStreamName=stream,
                                                     startFromHead=True)["events"]
    return [e["message"] for e in events]


def drain(emulator, queue_url: str, timeout: float = 10) -> list[str]:
    sqs = client(emulator, "sqs")
    deadline = time.monotonic() + timeout
    bodies: list[str] = []
    while time.monotonic() < deadline:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
            "Messages", [])
        for message in messages:
            bodies.append(message["Body"])
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        if bodies and not messages:
            return bodies
        time.sleep(0.2)
    return bodies
