"""Step Functions on the warm workers, and schedule rules fired by a fake clock."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from sdlf_cli.local.runtime import install
from sdlf_cli.local.runtime.scheduler import Scheduler
from sdlf_cli.local.runtime.schedule_expressions import Cron, ScheduleError, parse_schedule
from tests.integration.test_emulator_runtime_helpers import (
    bucket, client, create_function, role_arn, s3_json, s3_keys, unique, wait_for,
)


@pytest.fixture(scope="module", autouse=True)
def runtime(emulator):
    install(emulator.context)


FLAKY = """
import os
class CustomError(Exception):
    pass
def handler(event, context):
    marker = os.path.join(os.environ["TMPDIR"], "called-" + str(event["run"]))
    if not os.path.exists(marker):
        open(marker, "w").close()
        raise CustomError("first call fails")
    return {"value": event["value"] * 2}
"""
ALWAYS_FAILS = "def handler(event, context):\n    raise ValueError('bad input ' + str(event.get('value')))\n"


def _wait_execution(sfn, arn: str) -> dict:
    return wait_for(lambda: (d := sfn.describe_execution(executionArn=arn))["status"] != "RUNNING" and d,
                    timeout=30, what=f"execution {arn}")


@pytest.fixture(scope="module")
def pipeline_machine(emulator) -> str:
    flaky = create_function(emulator, FLAKY)
    failing = create_function(emulator, ALWAYS_FAILS)
    definition = {
        "StartAt": "Double",
        "States": {
            "Double": {
                "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": flaky["FunctionArn"], "Payload.$": "$"},
                "ResultSelector": {"value.$": "$.Payload.value"},
                "Retry": [{"ErrorEquals": ["CustomError"], "IntervalSeconds": 1, "MaxAttempts": 2,
                           "BackoffRate": 1.0}],
                "Next": "Check",
            },
            "Check": {"Type": "Choice",
                      "Choices": [{"Variable": "$.value", "NumericGreaterThan": 10, "Next": "Big"}],
                      "Default": "Small"},
            "Big": {"Type": "Pass", "Result": "big", "End": True},
            "Small": {
                "Type": "Task", "Resource": failing["FunctionArn"],
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Handled"}],
                "End": True,
            },
            "Handled": {"Type": "Pass", "End": True},
        },
    }
    sfn = client(emulator, "stepfunctions")
    return sfn.create_state_machine(name=unique("pipeline"), definition=json.dumps(definition),
                                    roleArn=role_arn(emulator))["stateMachineArn"]


def test_lambda_task_with_retry_and_choice_succeeds(emulator, pipeline_machine):
    sfn = client(emulator, "stepfunctions")
    arn = sfn.start_execution(stateMachineArn=pipeline_machine, name=unique("run"),
                              input=json.dumps({"run": unique("r"), "value": 6}))["executionArn"]
    result = _wait_execution(sfn, arn)
    assert result["status"] == "SUCCEEDED", result
    assert json.loads(result["output"]) == "big"
    history = sfn.get_execution_history(executionArn=arn)["events"]
    assert sum(1 for e in history if e["type"] == "TaskFailed") == 1  # the first call, retried


def test_failing_task_is_caught(emulator, pipeline_machine):
    sfn = client(emulator, "stepfunctions")
    arn = sfn.start_execution(stateMachineArn=pipeline_machine, name=unique("run"),
                              input=json.dumps({"run": unique("r"), "value": 1}))["executionArn"]
    result = _wait_execution(sfn, arn)
    assert result["status"] == "SUCCEEDED", result
    output = json.loads(result["output"])
    assert output["value"] == 2
    assert output["error"]["Error"] == "ValueError"
    assert "bad input 2" in output["error"]["Cause"]


def test_uncaught_failure_fails_the_execution(emulator):
    failing = create_function(emulator, ALWAYS_FAILS)
    definition = {"StartAt": "Go", "States": {"Go": {"Type": "Task", "Resource": failing["FunctionArn"],
                                                     "End": True}}}
    sfn = client(emulator, "stepfunctions")
    machine = sfn.create_state_machine(name=unique("fails"), definition=json.dumps(definition),
                                       roleArn=role_arn(emulator))["stateMachineArn"]
    arn = sfn.start_execution(stateMachineArn=machine, input=json.dumps({"value": 5}))["executionArn"]
    result = _wait_execution(sfn, arn)
    assert result["status"] == "FAILED"
    assert result["error"] == "ValueError"
    assert "bad input 5" in result["cause"]


SLOW_FIRST_CALL = """
import os, time
def handler(event, context):
    marker = os.path.join(os.environ["TMPDIR"], "slow-" + event["run"])
    if not os.path.exists(marker):
        open(marker, "w").close()
        time.sleep(3)  # past the function's 1 s timeout
    return {"done": event["run"]}
"""


def test_a_task_that_timed_out_is_retried_on_the_lambda_time_out_error(emulator):
    # The lake's state machines retry Sandbox.Timedout: the emulator reports a time-out under that name, as
    # Lambda does, so the retry completes the run.
    slow = create_function(emulator, SLOW_FIRST_CALL, timeout=1)
    definition = {"StartAt": "Go", "States": {"Go": {
        "Type": "Task", "Resource": slow["FunctionArn"],
        "Retry": [{"ErrorEquals": ["Sandbox.Timedout", "Lambda.Unknown"], "IntervalSeconds": 1, "MaxAttempts": 2,
                   "BackoffRate": 2}],
        "End": True}}}
    sfn = client(emulator, "stepfunctions")
    machine = sfn.create_state_machine(name=unique("slow"), definition=json.dumps(definition),
                                       roleArn=role_arn(emulator))["stateMachineArn"]
    run = unique("r")
    arn = sfn.start_execution(stateMachineArn=machine, input=json.dumps({"run": run}))["executionArn"]
    result = _wait_execution(sfn, arn)
    assert result["status"] == "SUCCEEDED", result
    assert json.loads(result["output"]) == {"done": run}
    failed = [e for e in sfn.get_execution_history(executionArn=arn)["events"] if e["type"].endswith("Failed")]
    assert len(failed) == 1 and "Sandbox.Timedout" in json.dumps(failed[0], default=str), failed


def test_two_executions_without_names_both_start(emulator, pipeline_machine):
    sfn = client(emulator, "stepfunctions")
    first = sfn.start_execution(stateMachineArn=pipeline_machine,
                                input=json.dumps({"run": unique("r"), "value": 6}))["executionArn"]
    second = sfn.start_execution(stateMachineArn=pipeline_machine,
                                 input=json.dumps({"run": unique("r"), "value": 7}))["executionArn"]
    assert first != second
    assert _wait_execution(sfn, first)["status"] == "SUCCEEDED"
    assert _wait_execution(sfn, second)["status"] == "SUCCEEDED"


def test_glue_start_job_run_sync_completes_and_output_is_json(emulator):
    glue = client(emulator, "glue")
    job = unique("job")
    scripts = bucket(emulator)  # job runs execute their script (runtime.glue_jobs): give it one
    client(emulator, "s3").put_object(Bucket=scripts, Key="script.py", Body=b"print('ok')\n")
    glue.create_job(Name=job, Role=role_arn(emulator),
                    Command={"Name": "glueetl", "ScriptLocation": f"s3://{scripts}/script.py"})
    definition = {"StartAt": "Run", "States": {"Run": {
        "Type": "Task", "Resource": "arn:aws:states:::glue:startJobRun.sync",
        "Parameters": {"JobName": job}, "End": True}}}
    sfn = client(emulator, "stepfunctions")
    machine = sfn.create_state_machine(name=unique("glue"), definition=json.dumps(definition),
                                       roleArn=role_arn(emulator))["stateMachineArn"]
    arn = sfn.start_execution(stateMachineArn=machine)["executionArn"]
    result = _wait_execution(sfn, arn)
    assert result["status"] == "SUCCEEDED", result
    output = json.loads(result["output"])  # GetJobRun's datetimes arrive as ISO strings
    assert output["JobName"] == job and output["JobRunState"] == "SUCCEEDED"
    assert isinstance(output["StartedOn"], str)


def test_event_rule_starts_a_state_machine_with_a_deterministic_name(emulator, pipeline_machine):
    events = client(emulator, "events")
    rule = unique("to-sfn")
    events.put_rule(Name=rule, EventPattern=json.dumps({"source": ["sdlf.sfn-test"]}))
    events.put_targets(Rule=rule, Targets=[{"Id": "machine", "Arn": pipeline_machine, "InputPath": "$.detail"}])
    run = unique("r")
    events.put_events(Entries=[{"Source": "sdlf.sfn-test", "DetailType": "go",
                                "Detail": json.dumps({"run": run, "value": 9})}])
    sfn = client(emulator, "stepfunctions")

    def started():
        for e in sfn.list_executions(stateMachineArn=pipeline_machine)["executions"]:
            d = sfn.describe_execution(executionArn=e["executionArn"])
            if json.loads(d["input"]).get("run") == run:
                return d
        return None

    execution = wait_for(started, what="the execution started by the rule")
    assert execution["name"].startswith("machine-")
    assert _wait_execution(sfn, execution["executionArn"])["status"] == "SUCCEEDED"


# --- schedules ------------------------------------------------------------------------------------
class FakeClock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def test_schedule_rules_fire_on_a_fake_clock(emulator):
    out = bucket(emulator)
    source = """
import json, os, boto3
def handler(event, context):
    key = "fired/" + event["resources"][0].rsplit("/", 1)[-1] + "/" + event["time"]
    boto3.client("s3").put_object(Bucket=os.environ["OUT"], Key=key, Body=json.dumps(event).encode())
"""
    fn = create_function(emulator, source, env={"OUT": out})
    events = client(emulator, "events")
    rate_rule, cron_rule, off_rule = unique("rate"), unique("cron"), unique("off")
    events.put_rule(Name=rate_rule, ScheduleExpression="rate(5 minutes)")
    events.put_rule(Name=cron_rule, ScheduleExpression="cron(0 6 * * ? *)")
    events.put_rule(Name=off_rule, ScheduleExpression="rate(1 minute)", State="DISABLED")
    for rule in (rate_rule, cron_rule, off_rule):
        events.put_targets(Rule=rule, Targets=[{"Id": "fn", "Arn": fn["FunctionArn"]}])

    clock = FakeClock(datetime(2030, 1, 1, 5, 58, 30, tzinfo=timezone.utc))
    scheduler = Scheduler("123456789012", clock=clock)
    mine = {rule for rule in (rate_rule, cron_rule, off_rule)}

    def fired_now() -> set[str]:
        return {arn.rsplit("/", 1)[-1] for arn in scheduler.tick()} & mine

    assert fired_now() == set()  # first sight: nothing is due yet
    clock.now += timedelta(minutes=1, seconds=30)  # 06:00:00
    assert fired_now() == {cron_rule}
    clock.now += timedelta(minutes=3, seconds=30)  # 06:03:30: rate due at 06:03:30
    assert fired_now() == {rate_rule}
    clock.now += timedelta(minutes=1)
    assert fired_now() == set()
    clock.now += timedelta(hours=3)  # a long pause fires once, not once per missed period
    assert fired_now() == {rate_rule}

    keys = wait_for(lambda: (k := s3_keys(emulator, out, "fired/")) and len(k) == 3 and k,
                    what="three scheduled invocations")
    cron_event = s3_json(emulator, out, next(k for k in keys if cron_rule in k))
    assert cron_event["detail-type"] == "Scheduled Event"
    assert cron_event["source"] == "aws.events"
    assert cron_event["time"] == "2030-01-01T06:00:00Z"
    assert cron_event["resources"][0].endswith(f"rule/{cron_rule}")
    assert not any(off_rule in k for k in keys)


def test_schedule_expressions():
    utc = timezone.utc
    at = datetime(2030, 1, 1, 5, 58, tzinfo=utc)  # a Tuesday
    assert parse_schedule("rate(1 day)").seconds == 86400
    assert parse_schedule("rate(2 hours)").seconds == 7200
    assert parse_schedule("cron(0/15 * * * ? *)").next_after(at) == datetime(2030, 1, 1, 6, 0, tzinfo=utc)
    assert parse_schedule("cron(0 12 ? * MON-FRI *)").next_after(at) == datetime(2030, 1, 1, 12, 0, tzinfo=utc)
    assert parse_schedule("cron(0 9 ? * SAT *)").next_after(at) == datetime(2030, 1, 5, 9, 0, tzinfo=utc)
    assert parse_schedule("cron(30 1 L * ? *)").next_after(at) == datetime(2030, 1, 31, 1, 30, tzinfo=utc)
    assert parse_schedule("cron(0 8 ? * 2#1 *)").next_after(at) == datetime(2030, 1, 7, 8, 0, tzinfo=utc)
    assert parse_schedule("cron(0 0 1 JAN ? 2031)").next_after(at) == datetime(2031, 1, 1, 0, 0, tzinfo=utc)
    assert parse_schedule("cron(0 0 ? * FRI-MON *)").next_after(at) == datetime(2030, 1, 4, 0, 0, tzinfo=utc)
    assert isinstance(parse_schedule("cron(15 10 ? * 6L 2030-2035)"), Cron)
    for bad in ("rate(0 minutes)", "rate(5 weeks)", "cron(0 12 * * * *)", "cron(0 12 * *)", "every day",
                "cron(61 * * * ? *)"):
        with pytest.raises(ScheduleError):
            parse_schedule(bad)
