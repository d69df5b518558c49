"""Lambda tasks invoked in the process (sdlf_cli/local/runtime/stepfunctions_lambda.py): the same outputs,
histories, failures and request counts as moto's path through the Lambda API, and the patch comes out again.
(The execution role's refusal is tested in test_emulator_iam_runtime::test_a_state_machine_calls_as_its_role.)"""
from __future__ import annotations

import json
import re

import pytest

from sdlf_cli.local import request_log
from sdlf_cli.local.cfn import _patching
from sdlf_cli.local.runtime import install, stepfunctions_lambda
from tests.integration.test_emulator_runtime_helpers import client, create_function, role_arn, unique, wait_for


@pytest.fixture(scope="module", autouse=True)
def runtime(emulator):
    install(emulator.context)


DOUBLES = "def handler(event, context):\n    return {'value': event['value'] * 2, 'seen': event}\n"
TEXT = "def handler(event, context):\n    return 'plain text, not JSON'\n"
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
FAILS = "def handler(event, context):\n    raise ValueError('bad value ' + str(event['value']))\n"


def _machine(emulator) -> str:
    doubles, text, fails = (create_function(emulator, source)["FunctionArn"] for source in (DOUBLES, TEXT, FAILS))
    missing = doubles.rsplit(":", 1)[0] + ":" + unique("missing")
    catch = [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Missing"}]
    definition = {
        "StartAt": "Double",
        "States": {
            "Double": {"Type": "Task", "Resource": doubles, "ResultPath": "$.doubled", "Next": "Text"},
            "Text": {"Type": "Task", "Resource": text, "ResultPath": "$.text", "Next": "Fails"},
            "Fails": {"Type": "Task", "Resource": fails, "Parameters": {"value.$": "$.value"},
                      "ResultPath": "$.failed", "Catch": catch, "Next": "Missing"},
            "Missing": {"Type": "Task", "Resource": missing, "ResultPath": "$.missing",
                        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.missing_error", "Next": "Done"}],
                        "Next": "Done"},
            "Done": {"Type": "Pass", "End": True},
        },
    }
    return client(emulator, "stepfunctions").create_state_machine(
        name=unique("in-process"), definition=json.dumps(definition), roleArn=role_arn(emulator))["stateMachineArn"]


def _run(emulator, machine: str) -> tuple[dict, list, int]:
    """The execution's output, its history (event types and details, without times and ids), and the Lambda
    Invoke requests the request log counted for it."""
    sfn = client(emulator, "stepfunctions")
    before = request_log.snapshot()[("lambda", "Invoke")]
    arn = sfn.start_execution(stateMachineArn=machine, input=json.dumps({"value": 21}))["executionArn"]
    done = wait_for(lambda: (d := sfn.describe_execution(executionArn=arn))["status"] != "RUNNING" and d,
                    timeout=60, what="the execution")
    invokes = request_log.snapshot()[("lambda", "Invoke")] - before
    history = []
    for event in sfn.get_execution_history(executionArn=arn)["events"]:
        details = {key: value for key, value in event.items() if key.endswith("EventDetails")}
        history.append((event["type"], json.loads(json.dumps(details, default=str))))
    # Request ids are new on every invocation.
    output = json.loads(_UUID.sub("<request id>", done["output"]))
    history = json.loads(_UUID.sub("<request id>", json.dumps(history)))
    return {"status": done["status"], "output": output}, history, invokes


def test_tasks_answer_as_through_the_lambda_api_and_the_patch_comes_out(emulator):
    stop_logging = request_log.install()
    try:
        machine = _machine(emulator)
        assert stepfunctions_lambda.PATCH_NAME in _patching.installed_names()
        in_process = _run(emulator, machine)
        stepfunctions_lambda.uninstall()
        try:
            assert stepfunctions_lambda.PATCH_NAME not in _patching.installed_names()
            through_api = _run(emulator, machine)
        finally:
            stepfunctions_lambda.install()
    finally:
        stop_logging()
    assert in_process == through_api
    result, history, invokes = in_process
    output = result["output"]
    assert result["status"] == "SUCCEEDED" and output["doubled"]["value"] == 42 and output["text"] == "plain text, not JSON"
    assert output["error"]["Error"] == "ValueError" and "bad value 21" in output["error"]["Cause"]
    assert output["missing_error"]["Error"] == "Exception" and "Function not found" in output["missing_error"]["Cause"]
    assert invokes == 4  # one request per task, as the Lambda API counts them, the refused one included
    assert [t for t, _ in history].count("LambdaFunctionSucceeded") == 2
    assert [t for t, _ in history].count("LambdaFunctionFailed") == 2
