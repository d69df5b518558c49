"""With enforcement on, Lambda functions, state machines, Glue jobs and crawlers act as their own roles:
what a role's policy lacks fails the way it fails on AWS."""
from __future__ import annotations

import json

import pytest

from sdlf_cli.local.iam import enforcement
from sdlf_cli.local.runtime import install
from tests.integration.test_emulator_runtime_helpers import client, unique, wait_for, zip_bytes

ACCOUNT = "123456789012"

WHO_AND_READ = """
import boto3
def handler(event, context):
    who = boto3.client("sts").get_caller_identity()["Arn"]
    try:
        boto3.client("dynamodb").get_item(TableName=event["table"], Key={"id": {"S": "x"}})
        return {"who": who, "read": "ok"}
    except Exception as exc:
        return {"who": who, "read": str(exc)}
"""


@pytest.fixture(scope="module")
def enforced(emulator):
    install(emulator.context)
    was_on = enforcement.enforced()
    enforcement.install()
    yield emulator
    if not was_on:
        enforcement.uninstall()


def make_role(emulator, service: str, statements: list[dict]) -> tuple[str, str]:
    iam = client(emulator, "iam")
    name = unique("iam-runtime")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                     "Principal": {"Service": f"{service}.amazonaws.com"}}]}
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    if statements:
        iam.put_role_policy(RoleName=name, PolicyName="runtime",
                            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}))
    return name, arn


def make_table(emulator) -> str:
    name = unique("iam-runtime-table")
    client(emulator, "dynamodb").create_table(
        TableName=name, KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
    return name


def table_arn(name: str) -> str:
    return f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/{name}"


def test_a_function_acts_as_its_role(enforced):
    allowed, refused = make_table(enforced), make_table(enforced)
    role_name, role = make_role(enforced, "lambda", [
        {"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": table_arn(allowed)}])
    name = unique("iam-fn")
    lam = client(enforced, "lambda")
    lam.create_function(FunctionName=name, Runtime="python3.12", Role=role, Handler="handler.handler", Timeout=30,
                        Code={"ZipFile": zip_bytes({"handler.py": WHO_AND_READ})})
    ok = json.loads(lam.invoke(FunctionName=name, Payload=json.dumps({"table": allowed}))["Payload"].read())
    assert ok == {"who": f"arn:aws:sts::{ACCOUNT}:assumed-role/{role_name}/{name}", "read": "ok"}
    denied = json.loads(lam.invoke(FunctionName=name, Payload=json.dumps({"table": refused}))["Payload"].read())
    assert "AccessDeniedException" in denied["read"]
    assert f"dynamodb:GetItem on resource: {table_arn(refused)}" in denied["read"]


def _state_machine(emulator, role: str, function_arn: str) -> str:
    definition = {"StartAt": "Call", "States": {"Call": {"Type": "Task", "Resource": function_arn, "End": True}}}
    return client(emulator, "stepfunctions").create_state_machine(
        name=unique("iam-sm"), definition=json.dumps(definition), roleArn=role)["stateMachineArn"]


def _run(emulator, machine: str) -> dict:
    sfn = client(emulator, "stepfunctions")
    arn = sfn.start_execution(stateMachineArn=machine, name=unique("run"), input="{}")["executionArn"]
    return wait_for(lambda: (d := sfn.describe_execution(executionArn=arn))["status"] != "RUNNING" and d,
                    timeout=60, what=f"execution {arn}")


def test_a_state_machine_calls_as_its_role(enforced):
    _, fn_role = make_role(enforced, "lambda", [])
    fn = client(enforced, "lambda").create_function(
        FunctionName=unique("iam-task"), Runtime="python3.12", Role=fn_role, Handler="handler.handler",
        Code={"ZipFile": zip_bytes({"handler.py": "def handler(e, c):\n    return {'done': True}\n"})})
    _, may_invoke = make_role(enforced, "states", [
        {"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": fn["FunctionArn"]}])
    _, may_not = make_role(enforced, "states", [
        {"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": fn["FunctionArn"] + "-other"}])
    succeeded = _run(enforced, _state_machine(enforced, may_invoke, fn["FunctionArn"]))
    assert succeeded["status"] == "SUCCEEDED", succeeded
    assert json.loads(succeeded["output"]) == {"done": True}
    failed = _run(enforced, _state_machine(enforced, may_not, fn["FunctionArn"]))
    assert failed["status"] == "FAILED"
    history = client(enforced, "stepfunctions").get_execution_history(executionArn=failed["executionArn"])["events"]
    causes = json.dumps([e for e in history if "Failed" in e["type"]], default=str)
    assert "lambda:InvokeFunction" in causes and "not authorized" in causes


JOB_SCRIPT = """
import boto3, sys
args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
print(boto3.client("sts").get_caller_identity()["Arn"])
boto3.client("dynamodb").get_item(TableName=args["--table"], Key={"id": {"S": "x"}})
"""


def test_a_glue_job_reads_its_script_and_runs_as_its_role(enforced):
    s3 = client(enforced, "s3")
    bucket = unique("iam-scripts")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="job.py", Body=JOB_SCRIPT.encode())
    allowed, refused = make_table(enforced), make_table(enforced)
    role_name, role = make_role(enforced, "glue", [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"},
        {"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": table_arn(allowed)}])
    glue = client(enforced, "glue")
    job = unique("iam-job")
    glue.create_job(Name=job, Role=role, Command={"Name": "pythonshell", "ScriptLocation": f"s3://{bucket}/job.py"})

    def finished(table: str) -> dict:
        run_id = glue.start_job_run(JobName=job, Arguments={"--table": table})["JobRunId"]
        return wait_for(lambda: (r := glue.get_job_run(JobName=job, RunId=run_id)["JobRun"])["JobRunState"]
                        not in ("STARTING", "RUNNING") and r, timeout=60, what=f"job run {run_id}")

    assert finished(allowed)["JobRunState"] == "SUCCEEDED"
    refused_run = finished(refused)
    assert refused_run["JobRunState"] == "FAILED"
    assert f"assumed-role/{role_name}/" in refused_run["ErrorMessage"]
    assert f"dynamodb:GetItem on resource: {table_arn(refused)}" in refused_run["ErrorMessage"]


def test_a_glue_job_whose_role_cannot_read_its_script_fails(enforced):
    s3 = client(enforced, "s3")
    bucket = unique("iam-scripts")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="job.py", Body=b"print('never runs')\n")
    _, role = make_role(enforced, "glue", [])
    glue = client(enforced, "glue")
    job = unique("iam-job")
    glue.create_job(Name=job, Role=role, Command={"Name": "pythonshell", "ScriptLocation": f"s3://{bucket}/job.py"})
    run_id = glue.start_job_run(JobName=job)["JobRunId"]
    run = wait_for(lambda: (r := glue.get_job_run(JobName=job, RunId=run_id)["JobRun"])["JobRunState"]
                   not in ("STARTING", "RUNNING") and r, timeout=60, what=f"job run {run_id}")
    assert run["JobRunState"] == "FAILED"
    assert f"cannot read the script s3://{bucket}/job.py" in run["ErrorMessage"] and "AccessDenied" in run["ErrorMessage"]


def test_a_crawler_whose_role_cannot_list_its_target_fails(enforced):
    s3 = client(enforced, "s3")
    bucket = unique("iam-crawl")
    s3.create_bucket(Bucket=bucket)
    glue = client(enforced, "glue")
    db = unique("iam_db").replace("-", "_")
    glue.create_database(DatabaseInput={"Name": db})
    role_name, role = make_role(enforced, "glue", [])
    crawler = unique("iam-crawler")
    glue.create_crawler(Name=crawler, Role=role, DatabaseName=db, Targets={"S3Targets": [{"Path": f"s3://{bucket}/t/"}]})
    glue.start_crawler(Name=crawler)
    last = wait_for(lambda: (c := glue.get_crawler(Name=crawler)["Crawler"]).get("State") == "READY"
                    and c.get("LastCrawl"), timeout=60, what=f"crawler {crawler}")
    assert last["Status"] == "FAILED"
    assert "AccessDenied" in last["ErrorMessage"]


def test_off_again_the_same_role_is_not_checked(enforced):
    allowed = make_table(enforced)
    _, role = make_role(enforced, "lambda", [])
    name = unique("iam-fn")
    lam = client(enforced, "lambda")
    lam.create_function(FunctionName=name, Runtime="python3.12", Role=role, Handler="handler.handler", Timeout=30,
                        Code={"ZipFile": zip_bytes({"handler.py": WHO_AND_READ})})
    enforcement.uninstall()
    try:
        result = json.loads(lam.invoke(FunctionName=name, Payload=json.dumps({"table": allowed}))["Payload"].read())
        assert result["read"] == "ok"
    finally:
        enforcement.install()
    denied = json.loads(lam.invoke(FunctionName=name, Payload=json.dumps({"table": allowed}))["Payload"].read())
    assert "AccessDeniedException" in denied["read"]
