"""`sdlf destroy` without AWS: delete order (children first, per team in parallel, failures hold back the parents),
what a layer selects, the refusal without confirmation, a stack delete's event stream; `sdlf status`'s next steps."""
from __future__ import annotations

import threading

import boto3
import pytest
from botocore.stub import Stubber

from sdlf_cli.aws.cloudformation import StackInfo
from sdlf_cli.aws.session import AwsTarget, Clients
from sdlf_cli.lake import Lake
from sdlf_cli.config.model import LakeConfig
from sdlf_cli.deploy import FINGERPRINT_TAG, StackResult, run_stacks
from sdlf_cli.errors import UsageError
from sdlf_cli.workflows.destroy import DestroyCancelled, DestroyRefused, delete_order, destroy, select
from sdlf_cli.workflows.status import FAILED_CREATE, IN_SYNC, classify
from tests.unit.test_deploy_helpers import STACK, STACK_ID, T0, Harness

CFG = LakeConfig(org="acme", app="lake", env="dev", region="us-east-1")
LAKE_TAGS = {"sdlf:org": "acme", "sdlf:app": "lake", "sdlf:env": "dev"}


def stack(name: str, layer: str, team: str | None = None) -> StackInfo:
    tags = {**LAKE_TAGS, "sdlf:layer": layer, **({"sdlf:team": team} if team else {})}
    return StackInfo(name=name, stack_id=f"id-{name}", status="CREATE_COMPLETE", tags=tags)


LAKE = [
    stack("boot", "bootstrap"), stack("found", "foundations"),
    stack("team-a", "team", "a"), stack("pipe-a", "pipeline", "a"), stack("data-a", "dataset", "a"),
    stack("team-b", "team", "b"), stack("pipe-b", "pipeline", "b"), stack("data-b1", "dataset", "b"),
    stack("data-b2", "dataset", "b"),
]


def _run(specs, fail: set[str] = frozenset()):
    order: list[str] = []
    lock = threading.Lock()

    def action(spec):
        with lock:
            order.append(spec.name)
        return StackResult(spec.name, spec.layer, "failed" if spec.name in fail else "deleted")

    return order, {r.name: r.status for r in run_stacks(specs, action)}


def test_children_are_deleted_before_their_parents_and_bootstrap_last():
    specs = delete_order(LAKE)
    assert [s.layer for s in specs][:3] == ["dataset"] * 3 and specs[-1].name == "boot"
    order, results = _run(specs)
    pos = order.index
    for child, parent in [("data-a", "pipe-a"), ("pipe-a", "team-a"), ("data-b1", "pipe-b"), ("data-b2", "pipe-b"),
                          ("pipe-b", "team-b"), ("team-a", "found"), ("team-b", "found"), ("found", "boot")]:
        assert pos(child) < pos(parent), order
    assert set(results.values()) == {"deleted"}
    # Teams are independent: team a's pipeline does not wait for team b's datasets.
    assert "data-b1" not in next(s for s in specs if s.name == "pipe-a").depends_on


def test_a_failed_child_keeps_its_parents_and_the_other_team_goes_on():
    _, results = _run(delete_order(LAKE), fail={"data-a"})
    assert results["data-a"] == "failed"
    assert {results[n] for n in ("pipe-a", "team-a", "found", "boot")} == {"skipped"}
    assert {results[n] for n in ("data-b1", "data-b2", "pipe-b", "team-b")} == {"deleted"}


def test_a_layer_takes_its_children_with_it_and_a_stack_name_only_itself():
    assert {s.name for s in select(CFG, LAKE, ["pipeline"])} == {"pipe-a", "pipe-b", "data-a", "data-b1", "data-b2"}
    assert {s.name for s in select(CFG, LAKE, ["team-b"])} == {"team-b"}
    assert len(select(CFG, LAKE, None)) == len(LAKE)
    with pytest.raises(UsageError, match="nonsense"):
        select(CFG, LAKE, ["nonsense"])


def _stubbed_clients():
    clients = Clients(AwsTarget(region="us-east-1"))
    stubs = {}
    for service in ("sts", "cloudformation"):
        client = boto3.client(service, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
        clients._cache[service] = client  # the factory's cache is the injection point for stubbed clients
        stubs[service] = Stubber(client)
    stubs["sts"].add_response("get_caller_identity", {"Account": "123456789012", "Arn": "arn:aws:iam::123456789012:root",
                                                      "UserId": "x"})
    raw = {"StackName": STACK, "StackId": STACK_ID, "StackStatus": "CREATE_COMPLETE", "CreationTime": T0,
           "Tags": [{"Key": k, "Value": v} for k, v in {**LAKE_TAGS, "sdlf:layer": "foundations"}.items()]}
    other = {**raw, "StackName": "someone-else", "StackId": "id-else", "Tags": []}
    cfn = stubs["cloudformation"]
    cfn.add_response("describe_stacks", {"Stacks": [raw, other]}, {})
    cfn.add_response("get_template", {"TemplateBody": "Resources:\n  rRaw:\n    Type: AWS::S3::Bucket\n"
                                                      "    DeletionPolicy: Retain\n  rQueue:\n    Type: AWS::SQS::Queue\n"},
                     {"StackName": STACK, "TemplateStage": "Original"})
    cfn.add_response("list_stack_resources", {"StackResourceSummaries": [
        {"LogicalResourceId": "rRaw", "PhysicalResourceId": "acme-raw", "ResourceType": "AWS::S3::Bucket",
         "LastUpdatedTimestamp": T0, "ResourceStatus": "CREATE_COMPLETE"},
        {"LogicalResourceId": "rQueue", "PhysicalResourceId": "q", "ResourceType": "AWS::SQS::Queue",
         "LastUpdatedTimestamp": T0, "ResourceStatus": "CREATE_COMPLETE"}]}, {"StackName": STACK})
    for stub in stubs.values():
        stub.activate()
    return clients, stubs


def test_without_confirmation_nothing_is_deleted_and_the_message_says_what_to_run():
    clients, stubs = _stubbed_clients()
    with pytest.raises(DestroyRefused) as err:
        destroy(Lake(CFG, clients))  # no confirm: a non-interactive run without --yes
    assert "--yes" in str(err.value) and "delete 1 stack(s) of env 'dev'" in str(err.value)
    assert err.value.exit_code == 2
    for stub in stubs.values():
        stub.assert_no_pending_responses()  # planned (read-only calls), and no delete_stack was ever made


def test_a_no_answer_cancels_and_a_dry_run_needs_no_answer():
    clients, _ = _stubbed_clients()
    seen = []
    with pytest.raises(DestroyCancelled):
        destroy(Lake(CFG, clients), confirm=lambda plan: seen.append(plan) or False)
    assert [s.name for s in seen[0].stacks] == [STACK]
    assert [(r.logical_id, r.physical_id) for r in seen[0].retained] == [("rRaw", "acme-raw")]

    clients, _ = _stubbed_clients()
    result = destroy(Lake(CFG, clients), dry_run=True)
    assert result.dry_run and result.results == [] and result.retained[0].action == "would be retained"


def test_delete_waits_for_a_busy_stack_streams_events_and_reports_deleted():
    stack_type = "AWS::CloudFormation::Stack"
    with Harness() as h:
        h.stack("UPDATE_IN_PROGRESS")
        h.stub.add_response("describe_stack_events", {"StackEvents": []}, {"StackName": STACK_ID})
        h.stack("UPDATE_COMPLETE", STACK_ID)
        h.events([])
        h.events([("e1", STACK, stack_type, "UPDATE_COMPLETE", None, 1)])
        h.ok("delete_stack", {"StackName": STACK_ID})
        h.stub.add_client_error("describe_stacks", "ValidationError", f"Stack with id {STACK_ID} does not exist",
                                expected_params={"StackName": STACK_ID})
        h.events([("e1", STACK, stack_type, "UPDATE_COMPLETE", None, 1),
                  ("e2", STACK, stack_type, "DELETE_IN_PROGRESS", "User Initiated", 2)])
        result = h.deployer.delete(delete_order([stack(STACK, "foundations")])[0])
        h.stub.assert_no_pending_responses()
    assert result.status == "deleted", result.message
    assert (STACK, "DELETE_IN_PROGRESS", "User Initiated") in h.reporter.events()


def test_status_next_steps():
    ok = StackInfo(STACK, STACK_ID, "UPDATE_COMPLETE", tags={FINGERPRINT_TAG: "f1"})
    assert classify(CFG, "foundations", ok, "f1") == (IN_SYNC, "")
    rolled = StackInfo(STACK, STACK_ID, "ROLLBACK_COMPLETE")
    drift, step = classify(CFG, "team", rolled, "f1")
    assert drift == FAILED_CREATE and "`sdlf deploy team --env dev` deletes and recreates it" in step
    assert "sdlf deploy foundations" in classify(CFG, "bootstrap", None, "f1")[1]
