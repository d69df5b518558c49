"""A V2 pipeline deployed through CloudFormation runs for real on the emulator: S3 source, CodeBuild
builds with their logs, variables and artifacts, a manual approval that waits, and failures with their
details. The tests share one pipeline (QUEUED executions); each ends the executions it starts."""
from __future__ import annotations

import io
import json
import zipfile

import pytest

from sdlf_cli.local.runtime import install
from tests.integration.test_emulator_cfn_helpers import deploy, outputs
from tests.integration.test_emulator_cicd_helpers import (
    drain, log_lines, pipeline_template, source_zip, stage_state, wait_approval_token, wait_new_execution,
    wait_status)
from tests.integration.test_emulator_runtime_helpers import client, unique


@pytest.fixture(scope="module", autouse=True)
def runtime(emulator):
    install(emulator.context)


@pytest.fixture(scope="module")
def pipeline(emulator):
    name = unique("pipe")
    stack = deploy(emulator, name, pipeline_template(name))
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack
    out = outputs(stack)
    # AWS starts an execution when a pipeline is created: with no source object yet, it fails at Source.
    first = wait_new_execution(emulator, name, set())
    failed = wait_status(emulator, name, first)
    assert failed["trigger"]["triggerType"] == "CreatePipeline"
    assert failed["status"] == "Failed" and "does not exist" in failed["statusSummary"], failed
    return name, out


def _push(emulator, pipeline, body: bytes, **kwargs) -> str:
    name, out = pipeline
    known = {e["pipelineExecutionId"] for e in client(emulator, "codepipeline").list_pipeline_executions(
        pipelineName=name)["pipelineExecutionSummaries"]}
    client(emulator, "s3").put_object(Bucket=out["SourceBucket"], Key="source.zip", Body=body, **kwargs)
    return wait_new_execution(emulator, name, known)


def _actions(emulator, name: str, execution_id: str) -> dict[str, dict]:
    details = client(emulator, "codepipeline").list_action_executions(
        pipelineName=name, filter={"pipelineExecutionId": execution_id})["actionExecutionDetails"]
    return {d["actionName"]: d for d in details}


def _build(emulator, build_id: str) -> dict:
    return client(emulator, "codebuild").batch_get_builds(ids=[build_id])["builds"][0]


def _zip_names(emulator, location: dict) -> dict[str, str]:
    body = client(emulator, "s3").get_object(Bucket=location["bucket"], Key=location["key"])["Body"].read()
    with zipfile.ZipFile(io.BytesIO(body)) as zf:
        return {n: zf.read(n).decode() for n in zf.namelist()}


def test_a_new_source_version_builds_waits_for_approval_then_deploys(emulator, pipeline):
    name, out = pipeline
    cp = client(emulator, "codepipeline")
    execution_id = _push(emulator, pipeline, source_zip("release one"),
                         Metadata={"codepipeline-artifact-revision-summary": "first release"})
    token = wait_approval_token(emulator, name, execution_id)
    # Waiting for approval: the execution is in progress, Deploy has not started.
    assert cp.get_pipeline_execution(pipelineName=name, pipelineExecutionId=execution_id)[
        "pipelineExecution"]["status"] == "InProgress"
    review = stage_state(emulator, name, "Approve")
    assert review["latestExecution"] == {"pipelineExecutionId": execution_id, "status": "InProgress"}
    assert "Apply" not in _actions(emulator, name, execution_id)
    message = json.loads(drain(emulator, out["Inbox"])[-1])
    assert message["approval"]["customData"] == "release build-1 to dev"  # variables resolved
    assert message["approval"]["token"] == token
    assert message["approval"]["externalEntityLink"] == "https://example.com/plan"

    cp.put_approval_result(pipelineName=name, stageName="Approve", actionName="Review", token=token,
                           result={"summary": "looks good", "status": "Approved"})
    done = wait_status(emulator, name, execution_id)
    assert done["status"] == "Succeeded", done
    assert done["trigger"]["triggerType"] == "PollForSourceChanges"
    assert done["artifactRevisions"][0]["revisionSummary"] == "first release"

    actions = _actions(emulator, name, execution_id)
    assert {a: d["status"] for a, d in actions.items()} == {
        "Zip": "Succeeded", "Compile": "Succeeded", "Review": "Succeeded", "Apply": "Succeeded"}
    version_id = actions["Zip"]["output"]["outputVariables"]["VersionId"]
    assert actions["Compile"]["output"]["outputVariables"] == {"BUILT_NUMBER": "build-1"}
    assert actions["Review"]["output"]["executionResult"]["externalExecutionSummary"] == "looks good"
    # The build's artifact: files under out/, paths discarded, in the artifact store.
    built = actions["Compile"]["output"]["outputArtifacts"][0]
    assert built["s3location"]["bucket"] == out["ArtifactBucket"]
    assert _zip_names(emulator, built["s3location"]) == {"result.txt": f"hello dev-{version_id}\n"}

    build = _build(emulator, actions["Compile"]["output"]["executionResult"]["externalExecutionId"])
    assert build["buildStatus"] == "SUCCEEDED" and build["buildComplete"] and build["initiator"] == f"codepipeline/{name}"
    assert [p["phaseType"] for p in build["phases"]] == [
        "SUBMITTED", "QUEUED", "PROVISIONING", "DOWNLOAD_SOURCE", "INSTALL", "BUILD", "POST_BUILD",
        "UPLOAD_ARTIFACTS", "FINALIZING", "COMPLETED"]
    assert build["resolvedSourceVersion"] == version_id
    assert build["logs"]["groupName"] == out["LogGroup"]
    lines = log_lines(emulator, build["logs"]["groupName"], build["logs"]["streamName"])
    assert build["logs"]["streamName"].startswith(f"{name}-build/")
    assert "release one" in lines and "build finally ran" in lines and "post_build ran, succeeding=1" in lines
    env = dict(line.split("=", 1) for line in lines if line.startswith(("CODEBUILD_", "AWS_", "STAGE_VAR", "PROJECT_",
                                                                        "GREETING")))
    assert env["CODEBUILD_BUILD_ID"] == build["id"] and env["CODEBUILD_BUILD_ARN"] == build["arn"]
    assert env["CODEBUILD_INITIATOR"] == f"codepipeline/{name}" and env["CODEBUILD_BUILD_NUMBER"] == "1"
    assert env["CODEBUILD_RESOLVED_SOURCE_VERSION"] == version_id
    assert env["CODEBUILD_SOURCE_VERSION"].startswith(f"arn:aws:s3:::{out['ArtifactBucket']}/")
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "us-east-1"
    assert env["AWS_ENDPOINT_URL"] == emulator.endpoint_url
    assert env["CODEBUILD_KMS_KEY_ID"] == out["KeyArn"]
    assert env["STAGE_VAR"] == f"dev-{version_id}"  # the action's variable, resolved
    assert env["PROJECT_VAR"] == "from-project"  # the project's beats the buildspec's
    assert env["GREETING"] == "hello"
    assert any(line.startswith("[Container]") and "Running command cat message.txt" in line for line in lines)

    deploy_build = _build(emulator, actions["Apply"]["output"]["executionResult"]["externalExecutionId"])
    deploy_lines = log_lines(emulator, deploy_build["logs"]["groupName"], deploy_build["logs"]["streamName"])
    # The buildspec comes from the primary source; the secondary input is in CODEBUILD_SRC_DIR_BuildOutput.
    assert f"deploying hello dev-{version_id}" in deploy_lines and "source is release one" in deploy_lines
    state = client(emulator, "codepipeline").get_pipeline_state(name=name)
    assert [s["latestExecution"]["status"] for s in state["stageStates"]] == ["Succeeded"] * 4


def test_a_rejected_approval_fails_the_execution_and_skips_deploy(emulator, pipeline):
    name, _ = pipeline
    cp = client(emulator, "codepipeline")
    execution_id = _push(emulator, pipeline, source_zip("release two"))
    token = wait_approval_token(emulator, name, execution_id)
    cp.put_approval_result(pipelineName=name, stageName="Approve", actionName="Review", token=token,
                           result={"summary": "not today", "status": "Rejected"})
    done = wait_status(emulator, name, execution_id)
    assert done["status"] == "Failed" and "not today" in done["statusSummary"]
    actions = _actions(emulator, name, execution_id)
    assert actions["Review"]["status"] == "Failed" and "Apply" not in actions
    assert stage_state(emulator, name, "Approve")["latestExecution"]["status"] == "Failed"
    with pytest.raises(cp.exceptions.ClientError) as again:  # an answered approval cannot be answered twice
        cp.put_approval_result(pipelineName=name, stageName="Approve", actionName="Review", token=token,
                               result={"summary": "changed my mind", "status": "Approved"})
    assert "ApprovalAlreadyCompletedException" in str(again.value)


def test_retrying_a_rejected_approval_stage_asks_again_then_goes_on(emulator, pipeline):
    name, _ = pipeline
    cp = client(emulator, "codepipeline")
    execution_id = _push(emulator, pipeline, source_zip("release retried"))
    first = wait_approval_token(emulator, name, execution_id)
    cp.put_approval_result(pipelineName=name, stageName="Approve", actionName="Review", token=first,
                           result={"summary": "wait for the fix", "status": "Rejected"})
    assert wait_status(emulator, name, execution_id)["status"] == "Failed"
    with pytest.raises(cp.exceptions.ClientError) as not_failed:  # only a failed stage can be retried
        cp.retry_stage_execution(pipelineName=name, stageName="Build", pipelineExecutionId=execution_id,
                                 retryMode="FAILED_ACTIONS")
    assert "StageNotRetryableException" in str(not_failed.value)
    cp.retry_stage_execution(pipelineName=name, stageName="Approve", pipelineExecutionId=execution_id,
                             retryMode="FAILED_ACTIONS")
    second = wait_approval_token(emulator, name, execution_id)
    assert second != first
    cp.put_approval_result(pipelineName=name, stageName="Approve", actionName="Review", token=second,
                           result={"summary": "fixed", "status": "Approved"})
    done = wait_status(emulator, name, execution_id)
    assert done["status"] == "Succeeded", done
    runs = client(emulator, "codepipeline").list_action_executions(
        pipelineName=name, filter={"pipelineExecutionId": execution_id})["actionExecutionDetails"]
    assert [r["status"] for r in runs if r["actionName"] == "Review"] == ["Succeeded", "Failed"]  # newest first
    assert [r["actionName"] for r in runs].count("Compile") == 1  # the build was not run again


def test_a_failing_command_fails_the_action_with_its_details(emulator, pipeline):
    name, out = pipeline
    execution_id = _push(emulator, pipeline, source_zip("broken", fail=True))
    done = wait_status(emulator, name, execution_id)
    assert done["status"] == "Failed"
    actions = _actions(emulator, name, execution_id)
    assert set(actions) == {"Zip", "Compile"}  # later stages never ran
    error = actions["Compile"]["output"]["executionResult"]["errorDetails"]
    assert error["code"] == "JobFailed"
    assert error["message"].startswith("Build terminated with state: FAILED. Phase: BUILD, Code: "
                                       "COMMAND_EXECUTION_ERROR, Message: Error while executing command: test ! -f FAIL")
    assert error["message"].endswith("Reason: exit status 3")
    assert done["statusSummary"] == error["message"]
    build_state = stage_state(emulator, name, "Build")
    assert build_state["latestExecution"] == {"pipelineExecutionId": execution_id, "status": "Failed"}
    assert build_state["actionStates"][0]["latestExecution"]["errorDetails"] == error
    build = _build(emulator, actions["Compile"]["output"]["executionResult"]["externalExecutionId"])
    assert build["buildStatus"] == "FAILED"
    phase = next(p for p in build["phases"] if p["phaseType"] == "BUILD")
    assert phase["phaseStatus"] == "FAILED" and phase["contexts"][0]["statusCode"] == "COMMAND_EXECUTION_ERROR"
    lines = log_lines(emulator, build["logs"]["groupName"], build["logs"]["streamName"])
    # finally and post_build still run after a failed BUILD, as on CodeBuild
    assert "failing on purpose" in lines and "build finally ran" in lines
    assert "post_build ran, succeeding=0" in lines
    assert any("Command did not exit successfully" in line and "exit status 3" in line for line in lines)


def _approve(emulator, name: str, execution_id: str, status: str = "Approved") -> None:
    token = wait_approval_token(emulator, name, execution_id)
    client(emulator, "codepipeline").put_approval_result(
        pipelineName=name, stageName="Approve", actionName="Review", token=token,
        result={"summary": status.lower(), "status": status})


def _compiled(emulator, name: str, execution_id: str) -> bool:
    return _actions(emulator, name, execution_id).get("Compile", {}).get("status") == "Succeeded"


def test_queued_executions_wait_for_a_stage_an_older_one_holds(emulator, pipeline):
    from tests.integration.test_emulator_runtime_helpers import wait_for

    name, _ = pipeline
    older = _push(emulator, pipeline, source_zip("older"))
    wait_approval_token(emulator, name, older)
    newer = _push(emulator, pipeline, source_zip("newer"))
    wait_for(lambda: _compiled(emulator, name, newer), timeout=60, what="the newer build")
    # The newer one has built but waits before Approve, which the older one holds.
    approve = wait_for(lambda: (s := stage_state(emulator, name, "Approve")).get("inboundExecutions") and s,
                       what="the newer execution at Approve's entrance")
    assert approve["latestExecution"]["pipelineExecutionId"] == older
    assert approve["inboundExecutions"] == [{"pipelineExecutionId": newer, "status": "InProgress"}]
    assert "Review" not in _actions(emulator, name, newer)
    _approve(emulator, name, older)
    assert wait_status(emulator, name, older)["status"] == "Succeeded"
    _approve(emulator, name, newer, "Rejected")
    assert wait_status(emulator, name, newer)["status"] == "Failed"


def test_superseded_mode_replaces_a_waiting_execution_with_a_newer_one(emulator):
    from tests.integration.test_emulator_runtime_helpers import wait_for

    name = unique("sup")
    template = pipeline_template(name)
    template["Resources"]["Pipeline"]["Properties"]["ExecutionMode"] = "SUPERSEDED"
    out = outputs(deploy(emulator, name, template))
    wait_status(emulator, name, wait_new_execution(emulator, name, set()))
    runs = [_push(emulator, (name, out), source_zip("revision 0"))]
    wait_approval_token(emulator, name, runs[0])
    runs.append(_push(emulator, (name, out), source_zip("revision 1")))
    wait_for(lambda: _compiled(emulator, name, runs[1]), timeout=60, what="the second build")
    runs.append(_push(emulator, (name, out), source_zip("revision 2")))
    superseded = wait_status(emulator, name, runs[1], ("Superseded",), timeout=60)
    assert superseded["status"] == "Superseded"
    _approve(emulator, name, runs[0], "Rejected")
    _approve(emulator, name, runs[2], "Rejected")
    assert wait_status(emulator, name, runs[2])["status"] == "Failed"


def test_the_aws_cli_shows_real_statuses_and_output(emulator, pipeline):
    import os
    import subprocess
    import sys
    from pathlib import Path

    name, out = pipeline
    execution_id = _push(emulator, pipeline, source_zip("seen by the cli"))
    _approve(emulator, name, execution_id)
    wait_status(emulator, name, execution_id)
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1"}
    aws = str(Path(sys.executable).parent / "aws")

    def cli(*args: str) -> dict:
        done = subprocess.run([aws, "--endpoint-url", emulator.endpoint_url, *args, "--output", "json"],
                              capture_output=True, text=True, env=env, timeout=60)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    state = cli("codepipeline", "get-pipeline-state", "--name", name)
    assert [s["stageName"] for s in state["stageStates"]] == ["Source", "Build", "Approve", "Deploy"]
    latest = cli("codepipeline", "list-pipeline-executions", "--pipeline-name", name)["pipelineExecutionSummaries"][0]
    assert latest["pipelineExecutionId"] == execution_id
    assert latest["status"] == "Succeeded" and latest["trigger"]["triggerType"] == "PollForSourceChanges"
    actions = cli("codepipeline", "list-action-executions", "--pipeline-name", name, "--filter",
                  f"pipelineExecutionId={latest['pipelineExecutionId']}")["actionExecutionDetails"]
    build_id = next(a for a in actions if a["actionName"] == "Compile")["output"]["executionResult"][
        "externalExecutionId"]
    build = cli("codebuild", "batch-get-builds", "--ids", build_id)["builds"][0]
    assert build["buildStatus"] == "SUCCEEDED" and build["currentPhase"] == "COMPLETED"
    events = cli("logs", "get-log-events", "--log-group-name", build["logs"]["groupName"], "--log-stream-name",
                 build["logs"]["streamName"], "--start-from-head")["events"]
    assert "seen by the cli" in [e["message"] for e in events]
