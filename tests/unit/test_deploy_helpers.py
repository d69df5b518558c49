"""Shared helpers for the deploy tests (no tests here): a stubbed CloudFormation client, a fake clock, a recorder."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import boto3
from botocore.stub import ANY, Stubber

from sdlf_cli.aws.cloudformation import CloudFormationGateway
from sdlf_cli.deploy import StackDeployer, StackSpec

STACK = "acme-lake-dev-foundations"
STACK_ID = f"arn:aws:cloudformation:us-east-1:123456789012:stack/{STACK}/1111"
CS_ID = f"arn:aws:cloudformation:us-east-1:123456789012:changeSet/sdlf-x/2222"
T0 = datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)

TEMPLATE = "Resources:\n  Queue:\n    Type: AWS::SQS::Queue\n"


def spec(**overrides) -> StackSpec:
    values = dict(
        name=STACK, layer="foundations", template_body=TEMPLATE,
        parameters={"pArtifactsBucket": "artifacts"}, tags={"sdlf:layer": "foundations"},
    )
    values.update(overrides)
    return StackSpec(**values)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def stack_started(self, spec):
        self.calls.append(("started", spec.name))

    def event(self, stack_name, event):
        self.calls.append(("event", stack_name, event.logical_id, event.status, event.reason))

    def status(self, stack_name, message):
        self.calls.append(("status", stack_name, message))

    def stack_finished(self, result):
        self.calls.append(("finished", result.name, result.status))

    def events(self):
        return [c[2:] for c in self.calls if c[0] == "event"]

    def statuses(self):
        return [c[2] for c in self.calls if c[0] == "status"]


class Harness:
    """A real cloudformation client with a Stubber, wired into a StackDeployer."""

    def __init__(self, **deployer_kwargs) -> None:
        self.client = boto3.client(
            "cloudformation", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
        )
        self.stub = Stubber(self.client)
        self.clock = FakeClock()
        self.reporter = Recorder()
        self.deployer = StackDeployer(
            CloudFormationGateway(self.client), self.reporter, sleep=self.clock.sleep, clock=self.clock,
            **deployer_kwargs,
        )

    def __enter__(self):
        self.stub.activate()
        return self

    def __exit__(self, *exc):
        self.stub.deactivate()

    # --- canned responses ----------------------------------------------------------------
    def no_stack(self, name=STACK):
        self.stub.add_client_error(
            "describe_stacks", "ValidationError", f"Stack with id {name} does not exist",
            expected_params={"StackName": name},
        )

    def stack(self, status, name_or_id=STACK, tags=None, outputs=None, reason=None):
        raw = {
            "StackName": STACK, "StackId": STACK_ID, "StackStatus": status, "CreationTime": T0,
            "Tags": [{"Key": k, "Value": v} for k, v in (tags or {}).items()],
            "Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in (outputs or {}).items()],
        }
        if reason:
            raw["StackStatusReason"] = reason
        self.stub.add_response("describe_stacks", {"Stacks": [raw]}, {"StackName": name_or_id})

    def events(self, events, name_or_id=STACK_ID):
        """`events` oldest first as (id, logical_id, type, status, reason, seconds after T0)."""
        raw = [
            {
                "StackId": STACK_ID, "EventId": eid, "StackName": STACK, "LogicalResourceId": logical,
                "ResourceType": rtype, "Timestamp": T0 + timedelta(seconds=secs), "ResourceStatus": status,
                **({"ResourceStatusReason": reason} if reason else {}),
            }
            for eid, logical, rtype, status, reason, secs in events
        ]
        raw.reverse()  # the API answers newest first
        self.stub.add_response("describe_stack_events", {"StackEvents": raw}, {"StackName": name_or_id})

    def create_change_set(self, change_set_type):
        self.stub.add_response(
            "create_change_set", {"Id": CS_ID, "StackId": STACK_ID},
            {
                "StackName": STACK, "ChangeSetName": ANY, "ChangeSetType": change_set_type, "Parameters": ANY,
                "Tags": ANY, "Capabilities": ANY, "TemplateBody": TEMPLATE, "Description": ANY,
            },
        )

    def change_set(self, status="CREATE_COMPLETE", execution="AVAILABLE", changes=(), reason=None):
        response = {
            "ChangeSetId": CS_ID, "ChangeSetName": "sdlf-x", "StackId": STACK_ID, "StackName": STACK,
            "Status": status, "ExecutionStatus": execution,
            "Changes": [{"Type": "Resource", "ResourceChange": dict(c)} for c in changes],
        }
        if reason:
            response["StatusReason"] = reason
        self.stub.add_response("describe_change_set", response, {"ChangeSetName": CS_ID})

    def ok(self, operation, params):
        self.stub.add_response(operation, {}, params)


