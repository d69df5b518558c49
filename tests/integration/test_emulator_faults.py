"""Fault injection seams: each fault does to the lake's code what AWS would, is logged, and goes away."""
from __future__ import annotations

import json

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from sdlf_cli.local import faults
from sdlf_cli.local.cfn import _patching
from sdlf_cli.local.runtime import install
from tests.integration.test_emulator_glue_jobs import _job
from tests.integration.test_emulator_runtime_helpers import (
    REGION, bucket, client, create_function, invoke, s3_keys, unique, wait_for,
)

WRITES = """
import os, boto3
def handler(event, context):
    boto3.client("s3").put_object(Bucket=os.environ["TARGET"], Key=event["key"], Body=b"x")
    return {"wrote": event["key"]}
"""


@pytest.fixture(scope="module", autouse=True)
def runtime(emulator):
    install(emulator.context)


def as_lambda(emulator, service: str):
    """A client whose requests look like a Lambda function's (the SDK adds exec-env there); no retries."""
    return boto3.client(service, endpoint_url=emulator.endpoint_url, region_name=REGION,
                        aws_access_key_id="testing", aws_secret_access_key="testing",
                        config=Config(user_agent_extra="exec-env/AWS_Lambda_python3.12",
                                      retries={"total_max_attempts": 1, "mode": "standard"}))


def _code(exc: pytest.ExceptionInfo) -> str:
    return exc.value.response["Error"]["Code"]


def test_a_lambda_error_skips_the_handler_and_a_timeout_comes_after_it_ran(emulator, tmp_path):
    target = bucket(emulator)
    fn = create_function(emulator, WRITES, env={"TARGET": target})
    log = tmp_path / "faults.jsonl"
    with faults.injected("lambda_error=1", seed=1, log_path=log) as injected:
        response, body = invoke(emulator, fn["FunctionName"], {"key": "error"})
        assert response["FunctionError"] == "Unhandled" and body["errorType"] == "Lambda.ServiceException"
        assert s3_keys(emulator, target) == []  # the handler never ran
        invoke(emulator, fn["FunctionName"], {"key": "error"})
        assert injected.retries == 1  # the same invocation again
    with faults.injected("lambda_timeout=1", seed=1, log_path=log):
        response, body = invoke(emulator, fn["FunctionName"], {"key": "timeout"})
        assert body["errorType"] == "Sandbox.Timedout" and "Task timed out after 10.00 seconds" in body["errorMessage"]
        assert s3_keys(emulator, target) == ["timeout"]  # its write happened
    response, body = invoke(emulator, fn["FunctionName"], {"key": "after"})
    assert "FunctionError" not in response and body == {"wrote": "after"}
    kinds = [entry["kind"] for entry in faults.read_log(log)]
    assert kinds == ["lambda_error", "lambda_error", "lambda_timeout"]
    assert faults.read_log(log)[0]["function"] == fn["FunctionName"]


def test_throttles_refuse_lambda_calls_to_s3_dynamodb_and_sqs_and_spare_everyone_else(emulator, tmp_path):
    target = bucket(emulator)
    table = unique("faults-table")
    client(emulator, "dynamodb").create_table(
        TableName=table, BillingMode="PAY_PER_REQUEST", KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}])
    queue = client(emulator, "sqs").create_queue(QueueName=unique("faults-q"))["QueueUrl"]
    with faults.injected("throttle=1", seed=2, log_path=tmp_path / "f.jsonl") as injected:
        with pytest.raises(ClientError) as s3_error:
            as_lambda(emulator, "s3").put_object(Bucket=target, Key="k", Body=b"x")
        assert _code(s3_error) == "SlowDown" and s3_error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
        with pytest.raises(ClientError) as ddb_error:
            as_lambda(emulator, "dynamodb").get_item(TableName=table, Key={"id": {"S": "a"}})
        assert _code(ddb_error) == "ThrottlingException"
        with pytest.raises(ClientError) as sqs_error:
            as_lambda(emulator, "sqs").send_message(QueueUrl=queue, MessageBody="m")
        assert _code(sqs_error) == "ThrottlingException"
        client(emulator, "s3").put_object(Bucket=target, Key="cli", Body=b"x")  # not from Lambda: untouched
        assert injected.counts["throttle"] == 3, faults.read_log(tmp_path / "f.jsonl")
    assert s3_keys(emulator, target) == ["cli"]
    as_lambda(emulator, "s3").put_object(Bucket=target, Key="k", Body=b"x")


def test_a_partial_write_is_applied_then_answered_as_failed(emulator):
    target = bucket(emulator)
    queue = client(emulator, "sqs").create_queue(QueueName=unique("faults-q"))["QueueUrl"]
    with faults.injected("partial_write=1", seed=3) as injected:
        with pytest.raises(ClientError) as s3_error:
            as_lambda(emulator, "s3").put_object(Bucket=target, Key="half", Body=b"x")
        assert _code(s3_error) == "InternalError"
        with pytest.raises(ClientError) as sqs_error:
            as_lambda(emulator, "sqs").send_message(QueueUrl=queue, MessageBody="m")
        assert _code(sqs_error) == "InternalError"
        as_lambda(emulator, "s3").get_object(Bucket=target, Key="half")  # reads are not writes
        assert injected.counts["partial_write"] == 2
    assert s3_keys(emulator, target) == ["half"]
    attrs = client(emulator, "sqs").get_queue_attributes(QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"])
    assert attrs["Attributes"]["ApproximateNumberOfMessages"] == "1"


def test_duplicate_stores_a_message_twice_and_delay_hides_it_for_a_while(emulator, tmp_path):
    sqs = client(emulator, "sqs")
    queue = sqs.create_queue(QueueName=unique("faults-q"))["QueueUrl"]
    with faults.injected("duplicate=1", seed=4, log_path=tmp_path / "f.jsonl") as injected:
        sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"n": 1}))
        assert injected.counts["duplicate"] == 1
    [entry] = faults.read_log(tmp_path / "f.jsonl")
    assert entry["kind"] == "duplicate" and 0 <= entry["copy_delay"] <= 5  # the copy comes a little later
    bodies: list[str] = []
    wait_for(lambda: bodies.extend(m["Body"] for m in sqs.receive_message(
        QueueUrl=queue, MaxNumberOfMessages=10, VisibilityTimeout=60).get("Messages", [])) or len(bodies) >= 2,
        timeout=8)
    assert bodies == ['{"n": 1}', '{"n": 1}']

    delayed = sqs.create_queue(QueueName=unique("faults-q"))["QueueUrl"]
    with faults.injected("delay=1", seed=4, log_path=None) as injected:
        sqs.send_message(QueueUrl=delayed, MessageBody="late")
        assert injected.counts["delay"] == 1
    assert "Messages" not in sqs.receive_message(QueueUrl=delayed, MaxNumberOfMessages=10)
    late = wait_for(lambda: sqs.receive_message(QueueUrl=delayed, MaxNumberOfMessages=10).get("Messages"), timeout=8)
    assert [m["Body"] for m in late] == ["late"]


def test_a_glue_failure_fails_the_run_before_its_script_starts(emulator):
    name, data_bucket = _job(emulator, "raise SystemExit('the script ran')\n")
    glue = client(emulator, "glue")
    with faults.injected("glue_error=1", seed=5) as injected:
        run_id = glue.start_job_run(JobName=name)["JobRunId"]
        run = wait_for(lambda: (r := glue.get_job_run(JobName=name, RunId=run_id)["JobRun"])
                       and r["JobRunState"] not in ("STARTING", "RUNNING") and r, timeout=20)
        assert run["JobRunState"] == "FAILED" and "injected fault" in run["ErrorMessage"]
        assert injected.counts["glue_error"] == 1


def test_uninstall_puts_every_hook_back():
    with faults.injected("lambda_error=0.5", seed=6):
        assert set(faults.PATCHES) <= set(_patching.installed_names())
        assert faults.active() is not None
    assert not set(faults.PATCHES) & set(_patching.installed_names())
    assert faults.active() is None


def test_a_spec_names_known_faults_with_rates_between_0_and_1():
    spec = faults.FaultSpec.parse("lambda_error=0.2, throttle=0.05,duplicate=0.1")
    assert spec.rates == {"lambda_error": 0.2, "throttle": 0.05, "duplicate": 0.1}
    assert str(spec) == "lambda_error=0.2,throttle=0.05,duplicate=0.1"
    for bad, expected in (("lambda_eror=0.1", "unknown fault 'lambda_eror'"), ("throttle", "expected kind=rate"),
                          ("throttle=x", "is not a number"), ("throttle=1.5", "not between 0 and 1")):
        with pytest.raises(faults.FaultSpecError, match=expected):
            faults.FaultSpec.parse(bad)
