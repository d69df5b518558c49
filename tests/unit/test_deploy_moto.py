"""The whole deployer against moto's in-process CloudFormation (mock_aws, no network): the real
shapes of the emulator, including its synchronous "No updates are to be performed."."""
from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from sdlf_cli.aws.cloudformation import CloudFormationGateway
from sdlf_cli.deploy import FINGERPRINT_TAG, StackDeployer, StackSpec, run_stacks
from tests.unit.test_deploy_helpers import FakeClock, Recorder

QUEUE = {"Resources": {"Queue": {"Type": "AWS::SQS::Queue"}}}
QUEUE_AND_TOPIC = {"Resources": {"Queue": {"Type": "AWS::SQS::Queue"}, "Topic": {"Type": "AWS::SNS::Topic"}}}
BAD_LAMBDA = {
    "Resources": {
        "Fn": {
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "FunctionName": "f", "Runtime": "python3.12", "Handler": "handler.handler",
                "Role": "arn:aws:iam::123456789012:role/x",
                "Code": {"S3Bucket": "no-such-bucket", "S3Key": "code.zip"},
            },
        }
    }
}


def spec(name: str, template: dict, *deps: str) -> StackSpec:
    return StackSpec(name=name, layer="team", template_body=json.dumps(template), parameters={},
                     tags={"sdlf:layer": "team"}, depends_on=deps)


@pytest.fixture
def cfn(monkeypatch):
    for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    with mock_aws():
        yield boto3.client("cloudformation", region_name="us-east-1",
                           aws_access_key_id="testing", aws_secret_access_key="testing")


def deployer(client):
    clock = FakeClock()
    reporter = Recorder()
    return StackDeployer(CloudFormationGateway(client), reporter, sleep=clock.sleep, clock=clock), reporter


def test_create_then_unchanged_then_update_on_moto(cfn):
    d, reporter = deployer(cfn)
    first = d.deploy(spec("s1", QUEUE))
    assert first.status == "created", first.message
    tags = {t["Key"]: t["Value"] for t in cfn.describe_stacks(StackName="s1")["Stacks"][0]["Tags"]}
    assert tags[FINGERPRINT_TAG] == spec("s1", QUEUE).fingerprint()
    assert any(e[1] == "CREATE_COMPLETE" for e in reporter.events())

    again = d.deploy(spec("s1", QUEUE))
    assert again.status == "unchanged" and "no change set" in again.message

    updated = d.deploy(spec("s1", QUEUE_AND_TOPIC))
    assert updated.status == "updated", updated.message
    assert ("Add", "Topic") in [(c.action, c.logical_id) for c in updated.changes]

    # moto keeps the old tags after an update, so this goes through its "no changes" path.
    assert d.deploy(spec("s1", QUEUE_AND_TOPIC)).status == "unchanged"
    # (moto keeps executed change sets; AWS removes them.) No unexecuted leftover:
    leftovers = [c for c in cfn.list_change_sets(StackName="s1")["Summaries"] if c["ExecutionStatus"] != "EXECUTE_COMPLETE"]
    assert leftovers == []


def test_plan_leaves_nothing_behind_on_moto(cfn):
    d, _ = deployer(cfn)
    planned = d.plan(spec("p1", QUEUE_AND_TOPIC))
    assert planned.status == "planned"
    assert sorted(c.logical_id for c in planned.changes) == ["Queue", "Topic"]
    live = [s["StackName"] for s in cfn.describe_stacks()["Stacks"] if s["StackStatus"] != "DELETE_COMPLETE"]
    assert "p1" not in live


def test_failed_resource_on_moto_is_reported_and_the_leftover_recreated(cfn):
    d, _ = deployer(cfn)
    failed = d.deploy(spec("bad", BAD_LAMBDA))
    assert failed.status == "failed"
    assert "NoSuchBucket" in failed.failure.reason

    # The failed execution leaves a REVIEW_IN_PROGRESS stack; the next deploy replaces it.
    fixed = d.deploy(spec("bad", QUEUE))
    assert fixed.status == "created", fixed.message


def test_dag_on_moto_skips_children_of_a_failure(cfn):
    d, _ = deployer(cfn)
    results = run_stacks(
        [spec("root", QUEUE), spec("broken", BAD_LAMBDA, "root"), spec("leaf", QUEUE, "broken"), spec("side", QUEUE, "root")],
        d.deploy, max_workers=2,
    )
    assert [(r.name, r.status) for r in results] == [
        ("root", "created"), ("broken", "failed"), ("leaf", "skipped"), ("side", "created"),
    ]
