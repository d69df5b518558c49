"""The CI/CD resource types through CloudFormation on the emulator, what starts an execution, and each
moto patch behind the CodePipeline and CodeBuild APIs (one seam test each)."""
from __future__ import annotations

import copy
import json

import pytest

from sdlf_cli.local.runtime import install
from tests.integration.test_emulator_cfn_helpers import delete, deploy, outputs
from tests.integration.test_emulator_cicd_helpers import (
    drain, log_lines, pipeline_template, source_zip, stage_state, wait_approval_token, wait_new_execution,
    wait_status)
from tests.integration.test_emulator_runtime_helpers import client, unique, wait_for, zip_bytes


@pytest.fixture(scope="module", autouse=True)
def runtime(emulator):
    install(emulator.context)


def test_pipeline_project_and_connections_from_cloudformation(emulator):
    name = unique("res")
    template = pipeline_template(name, poll=False)
    template["Resources"]["StarConnection"] = {"Type": "AWS::CodeStarConnections::Connection", "Properties": {
        "ConnectionName": "star", "ProviderType": "Bitbucket"}}
    template["Outputs"]["StarConnection"] = {"Value": {"Fn::GetAtt": ["StarConnection", "ConnectionArn"]}}
    out = outputs(deploy(emulator, name, template))
    cp, cb = client(emulator, "codepipeline"), client(emulator, "codebuild")

    pipeline = cp.get_pipeline(name=name)["pipeline"]
    assert out["Pipeline"] == name and out["Version"] == "1"
    assert pipeline["pipelineType"] == "V2" and pipeline["executionMode"] == "QUEUED"
    assert pipeline["variables"] == [{"name": "Target", "defaultValue": "dev", "description": "where to deploy"}]
    assert pipeline["artifactStore"] == {"type": "S3", "location": out["ArtifactBucket"],
                                         "encryptionKey": {"id": out["KeyArn"], "type": "KMS"}}
    assert [s["name"] for s in pipeline["stages"]] == ["Source", "Build", "Approve", "Deploy"]
    source = pipeline["stages"][0]["actions"][0]
    assert source["configuration"]["PollForSourceChanges"] == "false"  # the API's strings
    assert source["namespace"] == "SourceVars" and source["outputArtifacts"] == [{"name": "SourceOutput"}]

    project = cb.batch_get_projects(names=[f"{name}-build"])["projects"][0]
    assert out["BuildProjectArn"] == project["arn"]
    assert project["source"]["type"] == "CODEPIPELINE" and project["source"]["buildspec"].startswith("version: 0.2")
    assert project["environment"]["environmentVariables"] == [
        {"name": "PROJECT_VAR", "value": "from-project", "type": "PLAINTEXT"}]
    assert project["logsConfig"]["cloudWatchLogs"] == {"status": "ENABLED", "groupName": out["LogGroup"],
                                                       "streamName": f"{name}-build"}
    assert project["encryptionKey"] == out["KeyArn"] and project["timeoutInMinutes"] == 5

    assert out["Connection"].startswith("arn:aws:codeconnections:us-east-1:123456789012:connection/")
    assert out["ConnectionStatus"] == "PENDING"  # as on AWS until the handshake with the git host
    assert out["StarConnection"].startswith("arn:aws:codestar-connections:us-east-1:123456789012:connection/")

    changed = copy.deepcopy(template)
    changed["Resources"]["Pipeline"]["Properties"]["Stages"][1]["Actions"][0]["RunOrder"] = 2
    changed["Resources"]["BuildProject"]["Properties"]["TimeoutInMinutes"] = 9
    assert outputs(deploy(emulator, name, changed))["Version"] == "2"
    assert cp.get_pipeline(name=name)["pipeline"]["stages"][1]["actions"][0]["runOrder"] == 2
    assert cb.batch_get_projects(names=[f"{name}-build"])["projects"][0]["timeoutInMinutes"] == 9

    delete(emulator, name)
    assert name not in {p["name"] for p in cp.list_pipelines()["pipelines"]}
    assert f"{name}-build" not in cb.list_projects()["projects"]


def test_a_role_codepipeline_cannot_assume_fails_the_stack_with_the_reason(emulator):
    name = unique("badrole")
    template = pipeline_template(name)
    template["Resources"]["PipelineRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] = {
        "Service": "lambda.amazonaws.com"}
    assert deploy(emulator, name, template)["StackStatus"] == "ROLLBACK_COMPLETE"
    events = client(emulator, "cloudformation").describe_stack_events(StackName=name)["StackEvents"]
    reasons = [e.get("ResourceStatusReason", "") for e in events if e.get("ResourceStatus") == "CREATE_FAILED"]
    assert any("CodePipeline is not authorized to perform AssumeRole on role" in r for r in reasons), reasons


def _failure_reasons(emulator, stack: str) -> list[str]:
    events = client(emulator, "cloudformation").describe_stack_events(StackName=stack)["StackEvents"]
    return [e.get("ResourceStatusReason", "") for e in events if e.get("ResourceStatus") == "CREATE_FAILED"]


def test_an_input_artifact_no_earlier_action_produces_fails_the_stack(emulator):
    name = unique("badinput")
    template = pipeline_template(name)
    template["Resources"]["Pipeline"]["Properties"]["Stages"][3]["Actions"][0]["InputArtifacts"] = [
        {"Name": "SourceOutput"}, {"Name": "PlanOutput"}]
    assert deploy(emulator, name, template)["StackStatus"] == "ROLLBACK_COMPLETE"
    assert any("stage Deploy action Apply: input artifact PlanOutput is not the output of an earlier action" in r
               for r in _failure_reasons(emulator, name))


def test_a_build_role_codebuild_cannot_assume_fails_the_stack(emulator):
    name = unique("badbuild")
    template = pipeline_template(name)
    template["Resources"]["BuildProject"]["Properties"]["ServiceRole"] = {"Fn::GetAtt": ["PipelineRole", "Arn"]}
    assert deploy(emulator, name, template)["StackStatus"] == "ROLLBACK_COMPLETE"
    assert any("CodeBuild is not authorized to perform: sts:AssumeRole" in r for r in _failure_reasons(emulator, name))


def test_an_eventbridge_rule_on_the_source_object_starts_the_pipeline_and_failures_reach_a_topic(emulator):
    name = unique("evt")
    template = pipeline_template(name, poll=False)
    resources = template["Resources"]
    resources["EventsRole"] = {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": {
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
                                                "Action": "sts:AssumeRole"}]}}}
    resources["SourceRule"] = {"Type": "AWS::Events::Rule", "Properties": {
        "EventPattern": {"source": ["aws.s3"], "detail-type": ["Object Created"],
                         "detail": {"bucket": {"name": [{"Ref": "SourceBucket"}]}, "object": {"key": ["source.zip"]}}},
        "Targets": [{"Id": "pipeline", "RoleArn": {"Fn::GetAtt": ["EventsRole", "Arn"]},
                     "Arn": {"Fn::Sub": "arn:aws:codepipeline:${AWS::Region}:${AWS::AccountId}:${Pipeline}"}}]}}
    resources["FailureRule"] = {"Type": "AWS::Events::Rule", "Properties": {
        "EventPattern": {"source": ["aws.codepipeline"], "detail-type": ["CodePipeline Action Execution State Change"],
                         "detail": {"pipeline": [{"Ref": "Pipeline"}], "state": ["FAILED"]}},
        "Targets": [{"Id": "topic", "Arn": {"Ref": "Topic"}, "InputTransformer": {
            "InputPathsMap": {"action": "$.detail.action", "stage": "$.detail.stage"},
            "InputTemplate": '"<stage>/<action> failed"'}}]}}
    resources["BuildRule"] = {"Type": "AWS::Events::Rule", "Properties": {
        "EventPattern": {"source": ["aws.codebuild"], "detail-type": ["CodeBuild Build State Change"],
                         "detail": {"project-name": [f"{name}-build"], "build-status": ["FAILED"]}},
        "Targets": [{"Id": "queue", "Arn": {"Fn::GetAtt": ["Inbox", "Arn"]}}]}}
    out = outputs(deploy(emulator, name, template))
    first = wait_new_execution(emulator, name, set())
    wait_status(emulator, name, first)  # the one CreatePipeline started (no source object yet)
    drain(emulator, out["Inbox"], timeout=2)

    client(emulator, "s3").put_object(Bucket=out["SourceBucket"], Key="source.zip", Body=source_zip(fail=True))
    execution_id = wait_new_execution(emulator, name, {first})
    done = wait_status(emulator, name, execution_id)
    assert done["status"] == "Failed"
    assert done["trigger"]["triggerType"] == "CloudWatchEvent"
    assert done["trigger"]["triggerDetail"].endswith(":rule/" + done["trigger"]["triggerDetail"].split("/")[-1])
    bodies = drain(emulator, out["Inbox"])
    assert '"Build/Compile failed"' in bodies or "Build/Compile failed" in bodies
    build_events = [json.loads(b) for b in bodies if b.startswith("{") and "CodeBuild Build State Change" in b]
    assert build_events and build_events[0]["detail"]["additional-information"]["failed-phase"] == "BUILD"
    assert build_events[0]["detail"]["build-status"] == "FAILED"


def test_a_connection_source_fails_its_action_with_the_reason(emulator):
    name = unique("conn")
    template = pipeline_template(name)
    source = template["Resources"]["Pipeline"]["Properties"]["Stages"][0]["Actions"][0]
    source["ActionTypeId"]["Provider"] = "CodeStarSourceConnection"
    source["Configuration"] = {"ConnectionArn": {"Ref": "Connection"}, "FullRepositoryId": "team/lake",
                               "BranchName": "main"}
    out = outputs(deploy(emulator, name, template))
    first = wait_new_execution(emulator, name, set())
    done = wait_status(emulator, name, first)
    assert done["status"] == "Failed"
    error = stage_state(emulator, name, "Source")["actionStates"][0]["latestExecution"]["errorDetails"]
    assert error["message"].startswith(f"Unable to use Connection: {out['Connection']} (status PENDING)")
    assert "team/lake" in error["message"] and "use an S3 source" in error["message"]


# --- one seam test per moto patch ------------------------------------------------------------------------------
def _park(emulator) -> tuple[str, dict, str, str]:
    """A pipeline of its own parked at its approval (its build done)."""
    name = unique("seam")
    out = outputs(deploy(emulator, name, pipeline_template(name)))
    first = wait_new_execution(emulator, name, set())
    wait_status(emulator, name, first)
    client(emulator, "s3").put_object(Bucket=out["SourceBucket"], Key="source.zip", Body=source_zip())
    execution_id = wait_new_execution(emulator, name, {first})
    token = wait_approval_token(emulator, name, execution_id)
    return name, out, execution_id, token


@pytest.fixture(scope="module")
def parked(emulator):
    """For the seams that only read: what they see must not move under them."""
    return _park(emulator)


def test_seam_start_pipeline_execution_checks_variables_and_runs(emulator):
    # Its own pipeline: an execution it starts may reach Build before it is stopped, and would then be the Build
    # stage's latest execution that the read-only seams look at.
    name, _, _, _ = _park(emulator)
    cp = client(emulator, "codepipeline")
    with pytest.raises(cp.exceptions.ClientError) as undeclared:
        cp.start_pipeline_execution(name=name, variables=[{"name": "Nope", "value": "x"}])
    assert "Variable 'Nope' is not declared" in str(undeclared.value)
    execution_id = cp.start_pipeline_execution(name=name, variables=[{"name": "Target", "value": "prod"}])[
        "pipelineExecutionId"]
    execution = cp.get_pipeline_execution(pipelineName=name, pipelineExecutionId=execution_id)["pipelineExecution"]
    assert execution["status"] == "InProgress"  # not moto's instant Succeeded
    assert execution["variables"] == [{"name": "Target", "resolvedValue": "prod"}]
    assert execution["trigger"]["triggerType"] == "StartPipelineExecution"
    cp.stop_pipeline_execution(pipelineName=name, pipelineExecutionId=execution_id, abandon=True)
    assert wait_status(emulator, name, execution_id)["status"] in ("Stopped", "Failed")


def test_seam_get_pipeline_state_shows_the_waiting_approval(emulator, parked):
    name, _, execution_id, token = parked
    state = client(emulator, "codepipeline").get_pipeline_state(name=name)
    stages = {s["stageName"]: s for s in state["stageStates"]}
    assert stages["Build"]["latestExecution"] == {"pipelineExecutionId": execution_id, "status": "Succeeded"}
    review = stages["Approve"]["actionStates"][0]["latestExecution"]
    assert review["status"] == "InProgress" and review["token"] == token
    assert "latestExecution" not in stages["Deploy"]  # never reached yet


def test_seam_put_approval_result_refuses_a_wrong_token(emulator, parked):
    name = parked[0]
    cp = client(emulator, "codepipeline")
    with pytest.raises(cp.exceptions.ClientError) as wrong:
        cp.put_approval_result(pipelineName=name, stageName="Approve", actionName="Review",
                               token="00000000-0000-0000-0000-000000000000",
                               result={"summary": "x", "status": "Approved"})
    assert "InvalidApprovalTokenException" in str(wrong.value)


def test_seam_list_action_executions_and_batch_get_builds(emulator, parked):
    name, out, execution_id, _ = parked
    details = client(emulator, "codepipeline").list_action_executions(
        pipelineName=name, filter={"pipelineExecutionId": execution_id})["actionExecutionDetails"]
    compile_ = next(d for d in details if d["actionName"] == "Compile")
    build_id = compile_["output"]["executionResult"]["externalExecutionId"]
    build = client(emulator, "codebuild").batch_get_builds(ids=[build_id])["builds"][0]
    assert build["buildStatus"] == "SUCCEEDED"  # and stays so: not moto's random phases on every call
    again = client(emulator, "codebuild").batch_get_builds(ids=[build_id])["builds"][0]
    assert again["phases"] == build["phases"]
    assert build_id in client(emulator, "codebuild").list_builds_for_project(projectName=f"{name}-build")["ids"]
    assert "release one" in log_lines(emulator, out["LogGroup"], build["logs"]["streamName"])


def test_seam_stop_build_stops_a_running_build(emulator):
    from sdlf_cli.local.runtime import installed_part
    from sdlf_cli.local.runtime.codebuild import BuildRequest

    name = unique("slow")
    cb = client(emulator, "codebuild")
    # (moto's CreateProject wants a location even where AWS does not)
    cb.create_project(name=name, source={"type": "S3", "location": "bucket/key.zip", "buildspec": "version: 0.2\nphases:\n  build:\n"
                                                                             "    commands:\n      - sleep 30\n"},
                      artifacts={"type": "NO_ARTIFACTS"}, serviceRole="arn:aws:iam::123456789012:role/x",
                      environment={"type": "LINUX_CONTAINER", "image": "aws/codebuild/standard:7.0",
                                   "computeType": "BUILD_GENERAL1_SMALL"})
    runner = installed_part("codebuild")
    started: dict = {}
    import threading

    request = BuildRequest(project=name, initiator="test", primary_input=None,
                           on_start=lambda build: started.setdefault("id", build["id"]))
    thread = threading.Thread(target=lambda: started.setdefault("result", runner.run(request)))
    thread.start()
    build_id = wait_for(lambda: started.get("id"), what="the build to start")
    wait_for(lambda: cb.batch_get_builds(ids=[build_id])["builds"][0]["currentPhase"] == "BUILD", what="BUILD")
    cb.stop_build(id=build_id)
    thread.join(timeout=20)
    assert started["result"].status == "STOPPED"
    assert cb.batch_get_builds(ids=[build_id])["builds"][0]["buildStatus"] == "STOPPED"


def test_seam_delete_pipeline_stops_its_executions(emulator, parked):
    name, _, execution_id, _ = parked
    cp = client(emulator, "codepipeline")
    execution = cp.get_pipeline_execution(pipelineName=name, pipelineExecutionId=execution_id)["pipelineExecution"]
    assert execution["status"] == "InProgress"
    from sdlf_cli.local.runtime import installed_part

    run = installed_part("codepipeline").runs[execution_id]
    cp.delete_pipeline(name=name)
    wait_for(lambda: run.execution.status in ("Stopped", "Failed"), what="the execution to stop")


def test_seam_create_pipeline_through_the_api_starts_its_first_execution(emulator):
    from tests.integration.test_emulator_runtime_helpers import bucket

    iam, s3, cp = client(emulator, "iam"), client(emulator, "s3"), client(emulator, "codepipeline")
    role = iam.create_role(RoleName=unique("cp"), AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                "Principal": {"Service": ["codepipeline.amazonaws.com"]}}]}))["Role"]["Arn"]
    source, store = bucket(emulator), bucket(emulator)
    s3.put_bucket_versioning(Bucket=source, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=source, Key="src.zip", Body=zip_bytes({"hello.txt": "hi"}))
    project = unique("apiproj")
    client(emulator, "codebuild").create_project(
        name=project, source={"type": "CODEPIPELINE", "location": "n/a",
                              "buildspec": "version: 0.2\nphases:\n  build:\n    commands: [cat hello.txt]\n"},
        artifacts={"type": "CODEPIPELINE", "location": "n/a"}, serviceRole=role,
        environment={"type": "LINUX_CONTAINER", "image": "aws/codebuild/standard:7.0",
                     "computeType": "BUILD_GENERAL1_SMALL"})
    name = unique("apipipe")
    cp.create_pipeline(pipeline={
        "name": name, "roleArn": role, "pipelineType": "V2",  # (moto refused a Principal.Service list here)
        "artifactStore": {"type": "S3", "location": store},
        "stages": [
            {"name": "Source", "actions": [{
                "name": "Zip", "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"},
                "configuration": {"S3Bucket": source, "S3ObjectKey": "src.zip", "PollForSourceChanges": "false"},
                "outputArtifacts": [{"name": "Src"}]}]},
            {"name": "Build", "actions": [{
                "name": "Cat", "actionTypeId": {"category": "Build", "owner": "AWS", "provider": "CodeBuild",
                                                "version": "1"},
                "configuration": {"ProjectName": project}, "inputArtifacts": [{"name": "Src"}]}]}]})
    first = wait_new_execution(emulator, name, set())
    done = wait_status(emulator, name, first)
    assert done["status"] == "Succeeded" and done["trigger"]["triggerType"] == "CreatePipeline", done
