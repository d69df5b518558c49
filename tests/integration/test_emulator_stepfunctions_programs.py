"""One program per definition, shared by its executions (sdlf_cli/local/runtime/stepfunctions_parsing.py,
PROGRAM_PATCH): executions running at once keep their own retry counts and reach the same outputs and
histories as with a program each (moto's way, the patch out); Map and Parallel definitions are not shared."""
from __future__ import annotations

import json
import re
import threading

import pytest

from sdlf_cli.local.cfn import _patching
from sdlf_cli.local.runtime import install, stepfunctions_parsing
from tests.integration.test_emulator_runtime_helpers import client, create_function, role_arn, unique, wait_for

# Fails the first `fail_times` calls of each run (a marker file per run and call), then doubles the value.
FLAKY = """
import os
class Flaky(Exception):
    pass
def handler(event, context):
    base = os.path.join(os.environ["TMPDIR"], "calls-" + event["run"])
    calls = len([n for n in os.listdir(os.environ["TMPDIR"]) if n.startswith("calls-" + event["run"] + "-")])
    open(base + "-" + str(calls), "w").close()
    if calls < event["fail_times"]:
        raise Flaky("call " + str(calls + 1) + " of run " + event["run"] + " fails")
    return {"value": event["value"] * 2, "calls": calls + 1}
"""
_IDS = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@pytest.fixture(scope="module", autouse=True)
def runtime(emulator):
    install(emulator.context)


def _definition(function_arn: str) -> dict:
    return {
        "StartAt": "Call",
        "States": {
            "Call": {"Type": "Task", "Resource": function_arn, "ResultPath": "$.result",
                     "Retry": [{"ErrorEquals": ["Flaky"], "IntervalSeconds": 1, "MaxAttempts": 2, "BackoffRate": 1.0}],
                     "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Caught"}],
                     "Next": "Check"},
            "Check": {"Type": "Choice", "Choices": [{"Variable": "$.result.value", "NumericGreaterThan": 10,
                                                     "Next": "Big"}], "Default": "Small"},
            "Big": {"Type": "Wait", "Seconds": 0, "Next": "Done"},
            "Small": {"Type": "Pass", "Result": "small", "ResultPath": "$.size", "Next": "Done"},
            "Caught": {"Type": "Pass", "Result": "caught", "ResultPath": "$.size", "Next": "Done"},
            "Done": {"Type": "Succeed"},
        },
    }


def _run_all(emulator, machine: str, tag: str) -> list:
    """Twelve executions at once - 0, 1, 2 and 3 failures before success (3 exhausts the two retries) - and
    each one's output and history (event types and details, ids and times left out)."""
    sfn = client(emulator, "stepfunctions")
    inputs = [{"run": f"{tag}-{n}", "value": n, "fail_times": n % 4} for n in range(12)]
    arns: list = [None] * len(inputs)

    def start(index: int) -> None:
        arns[index] = sfn.start_execution(stateMachineArn=machine, input=json.dumps(inputs[index]))["executionArn"]

    threads = [threading.Thread(target=start, args=(i,)) for i in range(len(inputs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results = []
    for arn in arns:
        done = wait_for(lambda: (d := sfn.describe_execution(executionArn=arn))["status"] != "RUNNING" and d,
                        timeout=60, what="an execution")
        history = [(event["type"], {k: v for k, v in event.items() if k.endswith("EventDetails")})
                   for event in sfn.get_execution_history(executionArn=arn)["events"]]
        text = json.dumps([done["status"], json.loads(done["output"]), history], default=str).replace(tag, "<tag>")
        results.append(json.loads(_IDS.sub("<id>", text)))
    return results


def test_executions_share_a_program_and_answer_as_with_a_program_each(emulator):
    function = create_function(emulator, FLAKY)["FunctionArn"]
    machine = client(emulator, "stepfunctions").create_state_machine(
        name=unique("shared"), definition=json.dumps(_definition(function)), roleArn=role_arn(emulator))["stateMachineArn"]
    assert stepfunctions_parsing.PROGRAM_PATCH in _patching.installed_names()
    shared = _run_all(emulator, machine, "shared")
    stepfunctions_parsing.uninstall()
    try:
        assert stepfunctions_parsing.PROGRAM_PATCH not in _patching.installed_names()
        each = _run_all(emulator, machine, "each")
    finally:
        stepfunctions_parsing.install()
    assert shared == each
    outputs = [output for _, output, _ in shared]
    assert [o["result"]["calls"] for o in outputs if "result" in o] == [1, 2, 3] * 3  # its own retry count each
    assert [o.get("size", "big") for o in outputs] == ["small", "small", "small", "caught", "small", "small", "big",
                                                       "caught", "big", "big", "big", "caught"]


class _Worker:
    def __init__(self, definition: str):
        self._evaluation_details = type("Details", (), {"state_machine_details": type(
            "Machine", (), {"definition": definition})()})()


def test_only_definitions_without_map_or_parallel_share_a_program():
    built: list = []
    entrypoint = stepfunctions_parsing._program_once(lambda worker: built.append(object()) or built[-1])
    plain = json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}})
    assert entrypoint(_Worker(plain)) is entrypoint(_Worker(plain)) and len(built) == 1
    nested_map = json.dumps({"StartAt": "A", "States": {"A": {"Type": "Map", "ItemProcessor": {
        "StartAt": "B", "States": {"B": {"Type": "Pass", "End": True}}}, "End": True}}})
    parallel = json.dumps({"StartAt": "A", "States": {"A": {"Type": "Parallel", "Branches": [], "End": True}}})
    for definition in (nested_map, parallel):
        assert entrypoint(_Worker(definition)) is not entrypoint(_Worker(definition))
    assert not stepfunctions_parsing.shareable("not json")
