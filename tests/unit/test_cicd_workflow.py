"""`sdlf cicd` without AWS: the gateways against botocore's Stubber, the workflow against fakes of them, the
plan summary and root cause from real result shapes, the deterministic source zip, and the deploy options
(assumed role, CloudFormation execution role) against moto in-process."""
from __future__ import annotations

import io
import json
import subprocess
import zipfile
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from sdlf_cli.aws.cloudformation import CloudFormationGateway, StackInfo
from sdlf_cli.aws.pipelines import ActionRun, ActionState, Build, Execution, Pipelines
from sdlf_cli.aws.storage import Put
from sdlf_cli.aws.session import AwsTarget, Clients
from sdlf_cli.delivery.archive import build_archive
from sdlf_cli.delivery.results import plan_summary, root_cause
from sdlf_cli.errors import SdlfError, UsageError
from sdlf_cli.workflows import cicd as wf
from tests.snapshots.layers import WITH_CICD, cicd

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
CFG = replace(WITH_CICD, cicd=cicd("s3"))
PIPELINE = "acme-lake-dev-cicd"

LINT_FAILED = {"version": 1, "findings": [
    {"template": "foundations/acme-lake-dev-foundations.yaml", "line": 40, "rule": "E3012", "level": "error",
     "message": "'maybe' is not of type 'boolean'"},
    {"template": "team/acme-lake-dev-team-eng.yaml", "line": 9, "rule": "W1001", "level": "warning", "message": "x"}]}
DEPLOY_FAILED = {"version": 1, "ok": False, "results": [
    {"name": "acme-lake-prod-bootstrap", "status": "unchanged", "changes": [], "failure": None, "message": ""},
    {"name": "acme-lake-prod-foundations", "status": "failed", "changes": [], "message": "rolled back",
     "failure": {"logical_id": "rRawBucket", "resource_type": "AWS::S3::Bucket", "status": "CREATE_FAILED",
                 "reason": "bucket already exists"}},
    {"name": "acme-lake-prod-team-eng", "status": "skipped", "changes": [], "failure": None, "message": ""}]}


def _change(action, logical_id, resource_type, replacement=None, iam=False):
    destructive = action == "Remove" or replacement == "True"
    return {"action": action, "logical_id": logical_id, "resource_type": resource_type, "replacement": replacement,
            "is_iam": iam, "destructive": destructive}


PLAN = {"version": 1, "dry_run": True, "ok": True, "results": [
    {"name": "acme-lake-prod-bootstrap", "status": "unchanged", "changes": [], "message": "unchanged"},
    {"name": "acme-lake-prod-foundations", "status": "planned", "message": "update stack: 1 modify, 1 remove",
     "changes": [_change("Modify", "rRawBucket", "AWS::S3::Bucket", "True"),
                 _change("Remove", "rCatalogTable", "AWS::DynamoDB::Table")]},
    {"name": "acme-lake-prod-team-eng", "status": "planned", "message": "update stack: 1 modify, 1 IAM",
     "changes": [_change("Modify", "rLambdaRole", "AWS::IAM::Role", "False", iam=True),
                 _change("Modify", "rTopic", "AWS::SNS::Topic", "Conditional")]},
    {"name": "acme-lake-prod-dataset-eng-x", "status": "planned", "message": "create stack: 2 add",
     "changes": [_change("Add", "rQueue", "AWS::SQS::Queue"), _change("Add", "rJob", "AWS::Glue::Job")]}]}


# --- results: root cause and plan summary ---------------------------------------------------------------------
def test_root_cause_is_the_first_lint_finding_or_failing_resource():
    assert root_cause(LINT_FAILED) == ("foundations/acme-lake-dev-foundations.yaml:40 E3012 'maybe' is not of type "
                                       "'boolean' (and 1 more)")
    assert root_cause(DEPLOY_FAILED) == ("acme-lake-prod-foundations: rRawBucket (AWS::S3::Bucket) CREATE_FAILED: "
                                         "bucket already exists")
    assert root_cause({"version": 1, "findings": []}) is None
    assert root_cause(PLAN) is None


def test_plan_summary_counts_stacks_and_flags_data_and_iam_loudly():
    summary, text = plan_summary("prod", PLAN)
    assert summary.add == ["acme-lake-prod-dataset-eng-x"]
    assert summary.change == ["acme-lake-prod-foundations", "acme-lake-prod-team-eng"]
    assert summary.unchanged == ["acme-lake-prod-bootstrap"]
    message = summary.message()
    assert message.startswith("prod: 1 stack(s) to add, 2 to change, 0 to remove, 1 unchanged. !! DATA AT RISK: "
                              "acme-lake-prod-foundations: rRawBucket (AWS::S3::Bucket) replaced; "
                              "acme-lake-prod-foundations: rCatalogTable (AWS::DynamoDB::Table) removed")
    assert "!! IAM CHANGES: acme-lake-prod-team-eng (1)" in message
    assert "  Modify   rRawBucket (AWS::S3::Bucket)  [DATA REPLACED]" in text
    assert "  Modify   rTopic (AWS::SNS::Topic)  [may be replaced]" in text
    assert "  Modify   rLambdaRole (AWS::IAM::Role)  [IAM]" in text


def test_stacks_deployed_but_no_longer_declared_are_to_remove_loudly(tmp_path):
    status = {"version": 1, "stacks": [
        {"name": "acme-lake-prod-bootstrap", "drift": "in sync", "next_step": ""},
        {"name": "acme-lake-prod-dataset-eng-old", "drift": "not in configuration",
         "next_step": "sdlf destroy acme-lake-prod-dataset-eng-old --env prod deletes it"}]}
    summary, text = plan_summary("prod", PLAN, status)
    assert summary.remove == ["acme-lake-prod-dataset-eng-old"]
    message = summary.message()
    assert message.startswith("prod: 1 stack(s) to add, 2 to change, 1 to remove, 1 unchanged.")
    assert ("!! STACKS TO REMOVE (not in the configuration; `sdlf destroy` deletes them, this pipeline does not): "
            "acme-lake-prod-dataset-eng-old") in message
    assert "acme-lake-prod-dataset-eng-old: to remove (not in configuration) — sdlf destroy" in text

    (tmp_path / "plan.json").write_text(json.dumps(PLAN))
    (tmp_path / "status.json").write_text(json.dumps(status))
    digest, _ = wf.summarize(tmp_path / "plan.json", "prod", status_path=tmp_path / "status.json")
    assert "1 to remove" in digest.message
    (tmp_path / "empty.json").write_text("")
    with pytest.raises(SdlfError, match="empty.json: no status in it"):
        wf.summarize(tmp_path / "plan.json", "prod", status_path=tmp_path / "empty.json")


def test_the_approval_message_fits_codepipeline_limit():
    many = {"results": [{"name": f"stack-{i}", "status": "planned", "message": "update stack",
                         "changes": [_change("Remove", f"rTable{i}", "AWS::DynamoDB::Table")]} for i in range(40)]}
    summary, _ = plan_summary("prod", many)
    assert len(summary.message()) == 500 and summary.message().endswith("…")


# --- the source zip ------------------------------------------------------------------------------------------
def _git_repo(root: Path) -> None:
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], cwd=root, check=True)
    (root / "a.txt").write_text("a")
    (root / "run.sh").write_text("#!/bin/sh\n")
    (root / "run.sh").chmod(0o755)
    (root / "sub").mkdir()
    (root / "sub" / "b.txt").write_text("b")
    subprocess.run([*git, "add", "-A"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "x"], cwd=root, check=True)


def test_source_zip_holds_tracked_files_with_their_current_content_deterministically(tmp_path):
    _git_repo(tmp_path)
    (tmp_path / "untracked.txt").write_text("not pushed")
    (tmp_path / "a.txt").write_text("edited")
    first = build_archive(tmp_path)
    second = build_archive(tmp_path)
    assert first.body == second.body and first.digest == second.digest and first.files == 3
    with zipfile.ZipFile(io.BytesIO(first.body)) as zf:
        assert zf.namelist() == ["a.txt", "run.sh", "sub/b.txt"]
        assert zf.read("a.txt") == b"edited"
        assert (zf.getinfo("run.sh").external_attr >> 16) & 0o777 == 0o755
        assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_source_zip_outside_git_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="not a git working tree"):
        build_archive(tmp_path)


# --- gateways against the Stubber -----------------------------------------------------------------------------
def test_pipelines_gateway_reads_state_runs_and_answers_approvals():
    client = boto3.client("codepipeline", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    stub = Stubber(client)
    stub.add_response("get_pipeline_state", {"pipelineName": PIPELINE, "stageStates": [
        {"stageName": "Deploy-prod", "latestExecution": {"pipelineExecutionId": "e-1", "status": "InProgress"},
         "actionStates": [
             {"actionName": "Plan", "latestExecution": {"status": "Succeeded", "externalExecutionId": "b-1"}},
             {"actionName": "Approve", "latestExecution": {"status": "InProgress", "token": "tok"}}]}]},
        {"name": PIPELINE})
    stub.add_response("list_action_executions", {"actionExecutionDetails": [
        {"stageName": "Validate", "actionName": "Validate", "status": "Failed", "startTime": T0,
         "lastUpdateTime": T0 + timedelta(seconds=42),
         "output": {"executionResult": {"externalExecutionId": "b-0", "errorDetails": {"code": "JobFailed",
                                                                                      "message": "Build terminated"}},
                    "outputVariables": {"X": "1"}}}], "nextToken": "n"},
        {"pipelineName": PIPELINE, "filter": {"pipelineExecutionId": "e-1"}})
    stub.add_response("list_action_executions", {"actionExecutionDetails": []},
                      {"pipelineName": PIPELINE, "filter": {"pipelineExecutionId": "e-1"}, "nextToken": "n"})
    stub.add_response("put_approval_result", {}, {
        "pipelineName": PIPELINE, "stageName": "Deploy-prod", "actionName": "Approve", "token": "tok",
        "result": {"summary": "ok", "status": "Approved"}})
    with stub:
        gateway = Pipelines(client)
        assert gateway.state(PIPELINE) == [
            ActionState("Deploy-prod", "Plan", "Succeeded", "e-1", external_id="b-1"),
            ActionState("Deploy-prod", "Approve", "InProgress", "e-1", token="tok")]
        (run,) = gateway.action_runs(PIPELINE, "e-1")
        assert run == ActionRun("Validate", "Validate", "Failed", T0, T0 + timedelta(seconds=42), "b-0", None,
                                "Build terminated", {"X": "1"})
        gateway.decide(PIPELINE, "Deploy-prod", "Approve", "tok", True, "ok")


# --- the workflow against fakes ----------------------------------------------------------------------------
class FakePipelines:
    def __init__(self, states, runs, executions=None):
        self.states, self.runs = states, runs
        self.executions = executions or [Execution("e-1", "InProgress", T0, T0)]
        self.decisions, self.started = [], []

    def latest(self, name):
        return self.executions[0] if self.executions else None

    def execution(self, name, execution_id):
        return next(e for e in self.executions if e.execution_id == execution_id)

    def state(self, name):
        return self.states

    def action_runs(self, name, execution_id):
        return self.runs

    def decide(self, name, stage, action, token, approve, summary):
        self.decisions.append((name, stage, action, token, approve, summary))

    def start(self, name):
        self.started.append(name)
        return "e-2"


class FakeBuilds:
    def get(self, build_id):
        return Build(build_id, "FAILED", "/aws/codebuild/acme-lake-dev-cicd", f"stream-{build_id}", None)


class FakeLogs:
    def __init__(self, lines):
        self._lines = lines

    def lines(self, group, stream):
        return self._lines


class FakeTopic:
    def __init__(self):
        self.sent = []

    def publish(self, arn, subject, message):
        self.sent.append((arn, subject, message))
        return "m-1"


class FakeStorage:
    def __init__(self):
        self.put_calls = []

    def put_bytes(self, bucket, key, body):
        self.put_calls.append((bucket, key, body))
        return Put("etag", "v-1")


class FakeStacks:
    def __init__(self, stacks):
        self.stacks = stacks

    def describe_stack(self, name):
        return self.stacks.get(name)


class FakeLake:
    """What the workflow reads of a Lake: its configuration and gateways."""

    def __init__(self, pipelines, lines=(), stacks=None, config=CFG):
        self.config = config
        self.pipelines = pipelines
        self.builds = FakeBuilds()
        self.build_logs = FakeLogs(list(lines))
        self.stacks = FakeStacks(stacks or {})
        self.storage = FakeStorage()


def _delivery(pipelines, lines=(), stacks=None, config=CFG) -> FakeLake:
    return FakeLake(pipelines, lines, stacks, config)


def _states(*pairs):
    return [ActionState(stage, action, status, "e-1", token="tok" if action == "Approve" else None)
            for stage, action, status in pairs]


def test_status_shows_each_action_with_duration_and_a_failure_with_its_root_cause_and_log():
    states = _states(("Source", "Source", "Succeeded"), ("Validate", "Validate", "Failed"),
                     ("Deploy-dev", "Plan", None))
    runs = [ActionRun("Source", "Source", "Succeeded", T0, T0 + timedelta(seconds=1)),
            ActionRun("Validate", "Validate", "Failed", T0, T0 + timedelta(seconds=95), "b-7", None,
                      "Build terminated with state: FAILED")]
    lines = ["[Container] Running command sdlf cicd report --action Validate",
             "ROOT CAUSE: Validate: foundations/x.yaml:40 E3012 'maybe' is not of type 'boolean'"]
    d = _delivery(FakePipelines(states, runs, [Execution("e-1", "Failed", T0, T0)]), lines)
    status = wf.pipeline_status(d, now=lambda: T0 + timedelta(minutes=5))
    assert [(a.stage, a.action, a.status, a.duration) for a in status.actions] == [
        ("Source", "Source", "Succeeded", 1.0), ("Validate", "Validate", "Failed", 95.0),
        ("Deploy-dev", "Plan", "not run", None)]
    failure = status.failure
    assert failure.root_cause == "Validate: foundations/x.yaml:40 E3012 'maybe' is not of type 'boolean'"
    assert failure.log == "/aws/codebuild/acme-lake-dev-cicd stream-b-7"
    assert not status.ok and status.settled
    assert status.to_dict()["root_cause"] == failure.root_cause


def test_status_without_a_report_line_falls_back_to_codepipeline_error():
    states = _states(("Validate", "Validate", "Failed"))
    runs = [ActionRun("Validate", "Validate", "Failed", T0, T0, "b-1", None, "Build terminated: FAULT")]
    status = wf.pipeline_status(_delivery(FakePipelines(states, runs), ["nothing useful"]))
    assert status.actions[0].root_cause == "Build terminated: FAULT"


def test_a_waiting_approval_carries_the_plan_summary_and_settles_follow():
    states = _states(("Deploy-prod", "Plan", "Succeeded"), ("Deploy-prod", "Approve", "InProgress"),
                     ("Deploy-prod", "Deploy", None))
    runs = [ActionRun("Deploy-prod", "Plan", "Succeeded", T0, T0, variables={"SDLF_PLAN_SUMMARY": "prod: 1 to add"}),
            ActionRun("Deploy-prod", "Approve", "InProgress", T0, T0)]
    d = _delivery(FakePipelines(states, runs))
    seen, slept = [], []
    status = wf.follow(d, on_change=seen.append, sleep=slept.append)
    assert status.waiting.message == "prod: 1 to add" and status.ok and slept == []
    assert [(a.action, a.status) for a in seen] == [("Plan", "Succeeded"), ("Approve", "InProgress")]


def test_follow_gives_up_after_its_timeout():
    states = _states(("Validate", "Validate", "InProgress"))
    runs = [ActionRun("Validate", "Validate", "InProgress", T0, T0)]
    ticks = iter(range(0, 100, 10))
    with pytest.raises(SdlfError, match="still InProgress after 30s"):
        wf.follow(_delivery(FakePipelines(states, runs)), sleep=lambda s: None, clock=lambda: next(ticks),
                  timeout=30)


def test_approve_answers_the_approval_of_the_environment_or_the_only_one_waiting():
    states = _states(("Deploy-prod", "Approve", "InProgress"))
    pipelines = FakePipelines(states, [])
    decision = wf.decide(_delivery(pipelines), "prod", True)
    assert decision.stage == "prod" and decision.approved
    wf.decide(_delivery(pipelines), "dev", False, "no")  # the tooling env (the default): the one waiting
    assert pipelines.decisions == [(PIPELINE, "Deploy-prod", "Approve", "tok", True, "approved with sdlf cicd"),
                                   (PIPELINE, "Deploy-prod", "Approve", "tok", False, "no")]
    with pytest.raises(UsageError, match="no approval waits for environment 'test' \\(waiting: prod\\)"):
        wf.decide(_delivery(pipelines), "test", True)


def test_push_uploads_the_zip_to_the_source_key_and_starts_the_pipeline(tmp_path):
    _git_repo(tmp_path)
    stacks = {"acme-lake-dev-bootstrap": StackInfo("acme-lake-dev-bootstrap", "id", "CREATE_COMPLETE", None, {},
                                                   {"ArtifactsBucket": "bucket-a"}, {}, T0),
              "acme-lake-dev-cicd": StackInfo("acme-lake-dev-cicd", "id2", "CREATE_COMPLETE", None, {}, {}, {}, T0)}
    pipelines = FakePipelines([], [])
    d = _delivery(pipelines, stacks=stacks)
    result = wf.push(d, tmp_path)
    ((bucket, key, body),) = d.storage.put_calls
    assert (bucket, key) == ("bucket-a", "cicd/source.zip") and body == build_archive(tmp_path).body
    assert pipelines.started == [PIPELINE]
    assert result.to_dict()["execution_id"] == "e-2" and result.source == "s3://bucket-a/cicd/source.zip"


def test_push_needs_the_s3_source_and_a_deployed_pipeline(tmp_path):
    with pytest.raises(UsageError, match="push to that branch"):
        wf.push(_delivery(FakePipelines([], []), config=replace(CFG, cicd=cicd("connection"))), tmp_path)
    with pytest.raises(UsageError, match="sdlf deploy cicd --env dev"):
        wf.push(_delivery(FakePipelines([], [])), tmp_path)


def test_report_publishes_the_root_cause_of_a_failed_build(tmp_path):
    lint, deploy = tmp_path / "lint.json", tmp_path / "deploy.json"
    lint.write_text(json.dumps({"version": 1, "findings": []}))
    deploy.write_text(json.dumps(DEPLOY_FAILED))
    topic = FakeTopic()
    result = wf.report("Deploy prod", [lint, deploy], succeeded=False, otherwise=None, topic_arn="arn:t", topic=topic)
    cause = "acme-lake-prod-foundations: rRawBucket (AWS::S3::Bucket) CREATE_FAILED: bucket already exists"
    assert result.root_cause == cause
    assert topic.sent == [("arn:t", "sdlf: Deploy prod failed", f"Deploy prod failed: {cause}")]
    assert "failed    acme-lake-prod-foundations  rolled back" in result.lines


def test_a_result_naming_a_problem_is_a_failure_whatever_the_build_flag_says(tmp_path):
    lint = tmp_path / "lint.json"
    lint.write_text(json.dumps(LINT_FAILED))
    topic = FakeTopic()
    result = wf.report("Validate", [lint], succeeded=True, otherwise=None, topic_arn="arn:t", topic=topic)
    assert not result.succeeded and result.root_cause.startswith("foundations/acme-lake-dev-foundations.yaml:40 E3012")
    assert len(topic.sent) == 1


def test_report_names_a_missing_result_or_the_command_after_them(tmp_path):
    empty = tmp_path / "lint.json"
    empty.write_text("")
    missing = wf.report("Validate", [empty], succeeded=False, otherwise="unit tests failed", topic_arn=None, topic=None)
    assert missing.root_cause.startswith("lint.json: the command writing it stopped before its result")
    empty.write_text(json.dumps({"version": 1, "findings": []}))
    tests = wf.report("Validate", [empty], succeeded=False, otherwise="unit tests failed", topic_arn=None, topic=None)
    assert tests.root_cause == "unit tests failed"
    topic = FakeTopic()
    fine = wf.report("Validate", [empty], succeeded=True, otherwise=None, topic_arn="arn:t", topic=topic)
    assert fine.root_cause is None and topic.sent == []


def test_summarize_writes_the_text_plan_and_returns_the_message(tmp_path):
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(PLAN))
    digest, text = wf.summarize(plan, "prod", tmp_path / "plan.txt")
    assert digest.message.startswith("prod: 1 stack(s) to add")
    assert (tmp_path / "plan.txt").read_text() == text and "Plan of environment prod" in text
    plan.write_text("")
    with pytest.raises(SdlfError, match="no plan in it"):
        wf.summarize(plan, "prod")


# --- deploy options: an assumed role, and CloudFormation's execution role ----------------------------------------
@pytest.fixture
def aws(monkeypatch):
    for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield


def test_role_arn_makes_every_call_as_the_assumed_role(aws):
    role = "arn:aws:iam::123456789012:role/acme-lake-prod-cicd-deploy"
    clients = Clients(AwsTarget(region="us-east-1", role_arn=role))
    arn = clients.client("sts").get_caller_identity()["Arn"]
    assert arn.startswith("arn:aws:sts::123456789012:assumed-role/acme-lake-prod-cicd-deploy/sdlf")


def test_change_sets_carry_the_execution_role():
    client = boto3.client("cloudformation", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    stub = Stubber(client)
    stub.add_response("create_change_set", {"Id": "cs-1", "StackId": "st-1"}, {
        "StackName": "s", "ChangeSetName": "c", "ChangeSetType": "CREATE", "Parameters": [], "Tags": [],
        "Capabilities": ["CAPABILITY_IAM"], "TemplateBody": "{}", "RoleARN": "arn:aws:iam::1:role/cfn"})
    with stub:
        assert CloudFormationGateway(client).create_change_set(
            stack_name="s", change_set_name="c", change_set_type="CREATE", parameters={}, tags={},
            capabilities=("CAPABILITY_IAM",), template_body="{}", role_arn="arn:aws:iam::1:role/cfn") == ("cs-1", "st-1")


def test_status_of_a_pipeline_not_deployed_says_how_to_deploy_it():
    client = boto3.client("codepipeline", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    stub = Stubber(client)
    stub.add_client_error("list_pipeline_executions", "PipelineNotFoundException", "no pipeline")
    with stub:
        lake = FakeLake(Pipelines(client))
        with pytest.raises(UsageError, match="acme-lake-dev-cicd is not deployed here: `sdlf deploy cicd --env dev`"):
            wf.pipeline_status(lake)


def test_push_with_wait_follows_its_execution_until_it_waits_for_approval(tmp_path):
    _git_repo(tmp_path)
    stacks = {"acme-lake-dev-bootstrap": StackInfo("acme-lake-dev-bootstrap", "id", "CREATE_COMPLETE", None, {},
                                                   {"ArtifactsBucket": "bucket-a"}, {}, T0),
              "acme-lake-dev-cicd": StackInfo("acme-lake-dev-cicd", "id2", "CREATE_COMPLETE", None, {}, {}, {}, T0)}
    states = _states(("Deploy-prod", "Approve", "InProgress"))
    runs = [ActionRun("Deploy-prod", "Approve", "InProgress", T0, T0)]
    pipelines = FakePipelines(states, runs, [Execution("e-2", "InProgress", T0, T0)])
    seen = []
    result = wf.push(_delivery(pipelines, stacks=stacks), tmp_path, wait=True, on_change=seen.append)
    assert result.status.execution_id == "e-2" and result.status.waiting.stage == "Deploy-prod"
    assert [a.action for a in seen] == ["Approve"] and result.ok
