"""Fixes to moto 5.2.5's Step Functions interpreter (`execute_state_machine` on).

(State machines created by CloudFormation landing in the wrong backend is fixed on the CloudFormation
side, `sdlf_cli.local.cfn.statemachines`, together with the other definition properties.)
1. `start_execution` without a name uses the literal name "None", so the second call collides:
   generate a unique name, as AWS does.
2. `.sync` tasks of services without `.waitForTaskToken` support (glue:startJobRun.sync) crash on
   `callback_endpoint.interrupt_all()` because no callback endpoint was set up: give them one.
3. Execution output holding datetimes (e.g. Glue's GetJobRun) breaks DescribeExecution's json.dumps,
   and a string output is returned unquoted (not JSON): store the output as its JSON text.
4. Tasks call services with fixed keys ("ak"): they call as the execution's role instead (its assumed-role
   keys), as Step Functions does, so the role's identity policy decides (one named patch per interpreter
   module that imported `boto_client_for`). moto builds a new boto3 client for every task (~10-30 ms of
   CPU each, and a new connection); the clients are kept per (region, service, keys) instead - botocore
   clients are thread-safe - so a task's call reuses a warm client and a kept-alive connection.
Lambda tasks invoke their function in the process, authorized as the execution role (stepfunctions_lambda.py).
"""
from __future__ import annotations

import copy
import logging
import threading
import uuid
from typing import Any

from sdlf_cli.local.context import EmulatorContext

LOG = logging.getLogger(__name__)


NAMES_PATCH = "states: start_execution without a name gets a unique one"
SYNC_PATCH = "states: a .sync task of a service without .waitForTaskToken gets a callback endpoint"
OUTPUT_PATCH = "states: an execution's output is stored as its JSON text"


def _unique_execution_names(original: Any) -> Any:
    def start_execution(self: Any, state_machine_arn: str, name: Any = None, execution_input: Any = None,
                        trace_header: Any = None) -> Any:
        if not name:
            name = str(uuid.uuid4())
        return original(self, state_machine_arn, name, execution_input, trace_header)

    return start_execution


def _sync_without_task_token(original: Any) -> Any:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (
        ResourceCondition,
    )

    wait_for_token = ResourceCondition.WaitForTaskToken

    def _eval_integration_pattern(self: Any, env: Any, *args: Any, **kwargs: Any) -> Any:
        if wait_for_token in self._supported_integration_patterns:
            return original(self, env, *args, **kwargs)
        # Give the task a token and an endpoint so moto's cleanup has something to interrupt. The component
        # may be shared by executions running at once (one program per definition): what this evaluation
        # needs goes on a copy of it, never on the component itself.
        token = env.states.context_object.update_task_token()
        env.callback_pool_manager.add(token)
        task = copy.copy(self)
        task._supported_integration_patterns = set(self._supported_integration_patterns) | {wait_for_token}
        try:
            return original(task, env, *args, **kwargs)
        finally:
            env.states.context_object.context_object_data.pop("Task", None)

    return _eval_integration_pattern


def _json_safe_output(original: Any) -> Any:
    from moto.stepfunctions.parser.asl.utils.encoding import to_json_str

    def _reflect_execution_status(self: Any) -> None:
        original(self)
        # DescribeExecution returns a str output verbatim, so the JSON text is what it must hold.
        if self.execution.output is not None:
            self.execution.output = to_json_str(self.execution.output)

    return _reflect_execution_status


# Interpreter modules that made their own reference to `boto_client_for` (moto 5.2.5).
_CLIENT_MODULES = tuple("moto.stepfunctions.parser.asl." + name for name in (
    "component.state.exec.state_map.result_writer.resource_eval.resource_eval_s3",
    "component.state.exec.state_map.item_reader.eval.resource_eval_s3",
    "component.state.exec.state_task.lambda_eval_utils",
    *(f"component.state.exec.state_task.service.state_task_service_{service}" for service in (
        "unsupported", "glue", "events", "ecs", "sqs", "sfn", "dynamodb", "batch", "sns", "aws_sdk")),
))


_clients: dict[tuple, Any] = {}
_clients_lock = threading.Lock()
MAX_CACHED_CLIENTS = 256  # keys are renewed every 45 min: old entries are dropped wholesale past this


def _clients_as_execution_role(original: Any) -> Any:
    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        from sdlf_cli.local.iam.credentials import role_keys

        keys = role_keys(getattr(state_credentials, "role_arn", None), "states-execution")
        cache_key = (region, service, keys, _endpoint_marker())
        client = _clients.get(cache_key)
        if client is not None:
            return client
        # boto3's default session is not safe to create clients from concurrently: one at a time.
        with _clients_lock:
            client = _clients.get(cache_key)
            if client is None:
                client = original(region=region, service=service, state_credentials=state_credentials)
                if keys is not None:
                    import boto3

                    from botocore.config import Config

                    # Many executions share the client: room for a connection each (botocore's default is 10).
                    config = client.meta.config.merge(Config(max_pool_connections=64))
                    client = boto3.client(service, region_name=region, endpoint_url=client.meta.endpoint_url,
                                          config=config, **keys.client_kwargs())
                if len(_clients) >= MAX_CACHED_CLIENTS:
                    _clients.clear()
                _clients[cache_key] = client
        return client

    return boto_client_for


def _endpoint_marker() -> Any:
    """What moto's endpoint choice depends on: the server port, and whether calls are intercepted in-process."""
    import os

    from moto.core.models import botocore_stubber

    return os.environ.get("MOTO_PORT"), bool(botocore_stubber.enabled)


def _tasks_as_execution_role() -> None:
    import importlib

    from sdlf_cli.local.cfn import _patching

    for name in _CLIENT_MODULES:
        module = importlib.import_module(name)
        _patching.wrap(module, "boto_client_for", f"states: tasks act as the execution role ({'.'.join(name.split('.')[-2:])})",
                       _clients_as_execution_role)


def install(ctx: EmulatorContext) -> None:
    """Named patches on classes shared by every emulator in the process: installing twice is a no-op, and
    `uninstall_all` puts moto's originals back."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (
        StateTaskServiceCallback,
    )
    from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    from sdlf_cli.local.cfn import _patching

    _tasks_as_execution_role()
    _patching.wrap(StepFunctionsParserBackend, "start_execution", NAMES_PATCH, _unique_execution_names)
    _patching.wrap(StateTaskServiceCallback, "_eval_integration_pattern", SYNC_PATCH, _sync_without_task_token)
    _patching.wrap(BaseExecutionWorkerCommunication, "_reflect_execution_status", OUTPUT_PATCH, _json_safe_output)
