"""Lambda without Docker: warm workers, environment, layers, errors, timeouts, logs."""
from __future__ import annotations

import base64
import time

import pytest

from sdlf_cli.local.runtime import install
from tests.integration.test_emulator_runtime_helpers import (
    bucket, client, create_function, invoke, s3_json, s3_keys, unique, wait_for, zip_bytes,
)


@pytest.fixture(scope="module", autouse=True)
def runtime(emulator):
    # server.start will call install itself; install is idempotent, so calling it here is safe either way.
    install(emulator.context)


ECHO = """
import os, logging
logger = logging.getLogger()
def handler(event, context):
    print("printed", event)
    logger.warning("warned %s", context.aws_request_id)
    return {"pid": os.getpid(), "event": event, "name": context.function_name,
            "arn": context.invoked_function_arn, "memory": context.memory_limit_in_mb,
            "remaining": context.get_remaining_time_in_millis(), "request_id": context.aws_request_id}
"""


def test_request_response_returns_result_and_logs_reach_cloudwatch(emulator):
    fn = create_function(emulator, ECHO)
    response, body = invoke(emulator, fn["FunctionName"], {"a": 1}, LogType="Tail")

    assert response["StatusCode"] == 200
    assert "FunctionError" not in response
    assert body["event"] == {"a": 1}
    assert body["name"] == fn["FunctionName"]
    assert body["arn"] == fn["FunctionArn"]
    assert body["memory"] == 256
    assert 0 < body["remaining"] <= 10_000
    tail = base64.b64decode(response["LogResult"]).decode()
    assert "printed {'a': 1}" in tail and f"END RequestId: {body['request_id']}" in tail

    logs = client(emulator, "logs")
    group = f"/aws/lambda/{fn['FunctionName']}"
    messages = [e["message"] for e in logs.filter_log_events(logGroupName=group)["events"]]
    assert any(m == "printed {'a': 1}" for m in messages), messages
    assert any("[WARNING]" in m and f"warned {body['request_id']}" in m for m in messages), messages
    assert any(m.startswith(f"REPORT RequestId: {body['request_id']}") for m in messages)


def test_handler_sees_its_environment_and_reaches_the_emulator(emulator):
    target = bucket(emulator)
    source = """
import json, os, boto3
def handler(event, context):
    env = {k: os.environ.get(k) for k in ("TARGET_BUCKET", "AWS_ENDPOINT_URL", "AWS_REGION",
           "AWS_DEFAULT_REGION", "AWS_LAMBDA_FUNCTION_NAME", "AWS_ACCESS_KEY_ID", "_HANDLER")}
    boto3.client("s3").put_object(Bucket=os.environ["TARGET_BUCKET"], Key="from-lambda.json",
                                  Body=json.dumps(env).encode())
    return env
"""
    fn = create_function(emulator, source, env={"TARGET_BUCKET": target})
    response, env = invoke(emulator, fn["FunctionName"])

    assert "FunctionError" not in response, env
    assert env["TARGET_BUCKET"] == target
    assert env["AWS_ENDPOINT_URL"] == emulator.endpoint_url
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "us-east-1"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == fn["FunctionName"]
    assert env["AWS_ACCESS_KEY_ID"].startswith("ASIA")  # its role's assumed-role keys, as on Lambda
    assert env["_HANDLER"] == "handler.handler"
    assert s3_json(emulator, target, "from-lambda.json") == env


def test_layer_packages_are_importable(emulator):
    lam = client(emulator, "lambda")
    layer = lam.publish_layer_version(
        LayerName=unique("layer"), CompatibleRuntimes=["python3.12"],
        Content={"ZipFile": zip_bytes({"python/sharedlib/__init__.py": "VALUE = 'from the layer'\n"})},
    )
    source = "import sharedlib\ndef handler(event, context):\n    return sharedlib.VALUE\n"
    fn = create_function(emulator, source, layers=[layer["LayerVersionArn"]])
    response, body = invoke(emulator, fn["FunctionName"])
    assert "FunctionError" not in response, body
    assert body == "from the layer"


def test_function_code_wins_over_a_layer_of_the_same_module(emulator):
    lam = client(emulator, "lambda")
    layer = lam.publish_layer_version(
        LayerName=unique("layer"),
        Content={"ZipFile": zip_bytes({"python/shadowed.py": "WHO = 'layer'\n"})},
    )
    source = "import shadowed\ndef handler(event, context):\n    return shadowed.WHO\n"
    fn = create_function(emulator, source, layers=[layer["LayerVersionArn"]],
                         extra_files={"shadowed.py": "WHO = 'function'\n"})
    assert invoke(emulator, fn["FunctionName"])[1] == "function"


def test_handler_exception_becomes_a_lambda_error_payload(emulator):
    source = "def handler(event, context):\n    raise KeyError('missing-thing')\n"
    fn = create_function(emulator, source)
    response, body = invoke(emulator, fn["FunctionName"])

    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "KeyError"
    assert "missing-thing" in body["errorMessage"]
    assert any("handler.py" in line and "in handler" in line for line in body["stackTrace"])
    assert body["requestId"]


def test_import_error_is_reported_as_runtime_import_error(emulator):
    fn = create_function(emulator, "import not_installed_anywhere\ndef handler(e, c):\n    return 1\n")
    response, body = invoke(emulator, fn["FunctionName"])
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.ImportModuleError"
    assert "not_installed_anywhere" in body["errorMessage"]


def test_timeout_kills_the_worker_and_the_next_invoke_gets_a_fresh_one(emulator):
    source = """
import os, time
def handler(event, context):
    if event.get("sleep"):
        time.sleep(event["sleep"])
    return os.getpid()
"""
    fn = create_function(emulator, source, timeout=1)
    first_pid = invoke(emulator, fn["FunctionName"])[1]

    started = time.monotonic()
    response, body = invoke(emulator, fn["FunctionName"], {"sleep": 30})
    elapsed = time.monotonic() - started

    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in body["errorMessage"]
    assert elapsed < 5
    second_pid = invoke(emulator, fn["FunctionName"])[1]
    assert second_pid != first_pid


def test_a_cold_start_s_init_is_not_charged_to_the_function_timeout(emulator):
    # The module takes longer to import than the function may run: on Lambda the init phase has its own limit,
    # so the first (cold) invoke still succeeds; a loaded machine slows every cold start the same way.
    source = """
import os, time
time.sleep(1.5)
print("init done")
def handler(event, context):
    return {"pid": os.getpid(), "remaining_ms": context.get_remaining_time_in_millis()}
"""
    fn = create_function(emulator, source, timeout=1)
    response, body = invoke(emulator, fn["FunctionName"], LogType="Tail")
    assert "FunctionError" not in response, body
    assert 0 < body["remaining_ms"] <= 1000  # the timeout starts with the invocation, not with the process
    assert "init done" in base64.b64decode(response["LogResult"]).decode()  # init's output in the first log
    assert invoke(emulator, fn["FunctionName"])[1]["pid"] == body["pid"]  # and the worker stays warm


def test_warm_worker_is_reused_and_code_update_starts_a_new_one(emulator):
    source = "import os\nVERSION = 'v1'\ndef handler(event, context):\n    return [VERSION, os.getpid()]\n"
    fn = create_function(emulator, source)
    name = fn["FunctionName"]

    t0 = time.monotonic()
    (v_a, pid_a) = invoke(emulator, name)[1]
    cold = time.monotonic() - t0
    t1 = time.monotonic()
    (v_b, pid_b) = invoke(emulator, name)[1]
    warm = time.monotonic() - t1
    print(f"lambda invoke: cold {cold * 1000:.0f} ms, warm {warm * 1000:.0f} ms")

    assert (v_a, v_b) == ("v1", "v1")
    assert pid_a == pid_b  # the same 'container' served both

    client(emulator, "lambda").update_function_code(
        FunctionName=name, ZipFile=zip_bytes({"handler.py": source.replace("'v1'", "'v2'")}))
    (v_c, pid_c) = invoke(emulator, name)[1]
    assert v_c == "v2" and pid_c != pid_a

    client(emulator, "lambda").update_function_configuration(
        FunctionName=name, Environment={"Variables": {"X": "1"}})
    (_, pid_d) = invoke(emulator, name)[1]
    assert pid_d != pid_c


def test_worker_that_exits_is_replaced(emulator):
    source = "import os, sys\ndef handler(event, context):\n    if event.get('exit'):\n        sys.exit(3)\n    return os.getpid()\n"
    fn = create_function(emulator, source)
    response, body = invoke(emulator, fn["FunctionName"], {"exit": True})
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.ExitError"
    response, pid = invoke(emulator, fn["FunctionName"])
    assert "FunctionError" not in response and isinstance(pid, int)


def test_event_invocation_returns_at_once_and_runs_in_the_background(emulator):
    target = bucket(emulator)
    source = """
import os, time, boto3
def handler(event, context):
    time.sleep(1)
    boto3.client("s3").put_object(Bucket=os.environ["TARGET_BUCKET"], Key=event["key"], Body=b"done")
"""
    fn = create_function(emulator, source, env={"TARGET_BUCKET": target})
    started = time.monotonic()
    response = client(emulator, "lambda").invoke(FunctionName=fn["FunctionName"], InvocationType="Event",
                                                  Payload=b'{"key": "async-done"}')
    assert response["StatusCode"] == 202
    assert time.monotonic() - started < 0.9
    wait_for(lambda: s3_keys(emulator, target) == ["async-done"], what="the async invoke's object")


def _layer_with_a_marked_copy_of(package: str) -> dict[str, str]:
    """The host's copy of `package` as a layer's python/ folder, with LAYER_COPY = True in its __init__."""
    import importlib
    from pathlib import Path

    root = Path(importlib.import_module(package).__file__).parent
    files = {f"python/{package}/{p.relative_to(root)}": p.read_text() for p in root.rglob("*.py")}
    files[f"python/{package}/__init__.py"] += "\nLAYER_COPY = True\n"
    return files


def test_a_worker_forks_from_its_layers_server_and_gets_the_layer_s_copy_of_what_boto3_imports(emulator):
    """Workers are forks of a server that imported boto3 with the function's layers first on sys.path
    (workers.RUNTIME_MODULES): botocore's jmespath is the layer's copy, as in a worker started from scratch."""
    import os

    from sdlf_cli.local.runtime import installed_part

    lam = client(emulator, "lambda")
    layer = lam.publish_layer_version(LayerName=unique("layer"),
                                      Content={"ZipFile": zip_bytes(_layer_with_a_marked_copy_of("jmespath"))})
    source = ("import os, sys, boto3, jmespath\n"
              "def handler(event, context):\n"
              "    return {'ppid': os.getppid(), 'layer_copy': getattr(jmespath, 'LAYER_COPY', False),\n"
              "            'botocore_sees_it': sys.modules['jmespath'] is jmespath}\n")
    fn = create_function(emulator, source, layers=[layer["LayerVersionArn"]])
    response, body = invoke(emulator, fn["FunctionName"])
    assert "FunctionError" not in response, body
    servers = {s._process.pid for s in installed_part("runtime").manager._servers.values() if s._process}
    assert body["layer_copy"] is True and body["botocore_sees_it"] is True
    assert body["ppid"] in servers and body["ppid"] != os.getpid()


def test_a_function_shipping_a_module_the_server_imported_gets_a_worker_of_its_own(emulator):
    import os

    source = "import os, boto3\ndef handler(event, context):\n    return {'ppid': os.getppid(), 'who': boto3.WHO}\n"
    fn = create_function(emulator, source, extra_files={"boto3/__init__.py": "WHO = 'the function'\n"})
    response, body = invoke(emulator, fn["FunctionName"])
    assert "FunctionError" not in response, body
    assert body == {"ppid": os.getpid(), "who": "the function"}  # a plain process of the emulator's
