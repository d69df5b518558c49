"""Plugs the warm workers into moto's Lambda in place of Docker.

moto's seam is `LambdaFunction._invoke_lambda(event) -> (result, errored, logs)`. We also replace
`LambdaFunction.invoke` because moto runs `InvocationType=Event` synchronously and hard-codes the
error header, and `LambdaSimpleBackend.invoke` (the backend moto serves when `use_docker` is off)
because it returns canned answers instead of running anything.

Asynchronous invokes (InvocationType=Event, EventBridge and schedule targets) behave as Lambda's: a failed one
is retried twice, and then the event goes to the function's `DeadLetterConfig` target (an SQS queue: the
event as the body, `RequestID`, `ErrorCode` and `ErrorMessage` attributes), which moto would drop: the named
patch "lambda: functions keep their DeadLetterConfig" keeps it on the function and in its configuration.
"""
from __future__ import annotations

import base64
import json
import logging
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sdlf_cli.local.runtime.workers import FunctionSpec, InvocationResult, WorkerManager

LOG = logging.getLogger(__name__)

# Lambda retries a failed asynchronous invoke twice (after about 1 and 2 minutes); the emulator waits seconds.
ASYNC_RETRY_DELAYS = (1.0, 2.0)
PATCH_DEAD_LETTER_CONFIG = "lambda: functions keep their DeadLetterConfig"


class LambdaRuntime:
    """Runs moto LambdaFunction objects on warm workers; also used by the poller, events and schedules."""

    def __init__(self, manager: WorkerManager, region: str):
        self.manager = manager
        self.region = region
        # Async invocations (Event type, EventBridge targets) run here, off the request thread.
        self.async_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="sdlf-lambda-async")
        self._closed = False
        self._lock = threading.Lock()

    # --- moto objects -> what a worker needs -----------------------------------------------------
    @staticmethod
    def _layer_codes(fn: Any) -> tuple[tuple[tuple[str, str], ...], list[bytes]]:
        from moto.awslambda.utils import get_backend

        backend = get_backend(fn.account_id, fn.region)
        refs, codes = [], []
        for layer in fn.layers or []:
            arn = layer["Arn"] if isinstance(layer, dict) else str(layer)
            version = backend.layers_versions_by_arn(arn)
            if version is None:
                raise LookupError(f"layer version {arn} of function {fn.function_name} does not exist")
            refs.append((arn, version.code_sha_256 or ""))
            codes.append(version.code_bytes)
        return tuple(refs), codes

    def spec_for(self, fn: Any) -> tuple[FunctionSpec, bytes, list[bytes]]:
        layers, layer_codes = self._layer_codes(fn)
        spec = FunctionSpec(
            name=fn.function_name,
            arn=fn.function_arn,
            version=str(fn.version),
            handler=fn.handler or "handler.handler",
            runtime=fn.run_time or "python3.12",
            timeout=int(fn.timeout or 3),
            memory_size=int(fn.memory_size or 128),
            environment=dict(fn.environment_vars or {}),
            code_sha=fn.code_sha_256 or "",
            layers=layers,
            region=fn.region,
            role=fn.role or "",
        )
        return spec, fn.code_bytes or b"", layer_codes

    def run(self, fn: Any, event: Any) -> InvocationResult:
        """Invoke synchronously and write the logs to CloudWatch, as Lambda does for every invoke."""
        fn.logs_backend.ensure_log_group(fn.logs_group_name)
        try:
            if not (fn.run_time or "python").startswith("python"):
                raise ValueError(f"runtime {fn.run_time} is not supported by the local emulator (Python only)")
            spec, code, layer_codes = self.spec_for(fn)
            if not code:
                raise ValueError(f"function {fn.function_name} has no code package")
            result = self.manager.invoke(spec, code, layer_codes, event)
        except Exception as exc:  # a broken package must look like a failed invoke, not a 500
            LOG.exception("could not run Lambda function %s", fn.function_name)
            error = {"errorMessage": f"{fn.function_name}: {exc}", "errorType": "Runtime.InvalidEntrypoint"}
            result = InvocationResult(json.dumps(error), True, f"[ERROR] {error['errorMessage']}\n", "", 0.0)
        fn.save_logs(result.logs)
        return result

    def invoke_async(self, fn: Any, event: Any) -> None:
        """Fire and forget, like InvocationType=Event; failures end up in the function's logs."""
        if self._closed:
            return
        self.async_pool.submit(self._run_quietly, fn, event)

    def _run_quietly(self, fn: Any, event: Any) -> None:
        try:
            result = self.run(fn, event)
            for delay in ASYNC_RETRY_DELAYS:
                if not result.errored or self._closed:
                    return
                time.sleep(delay)
                result = self.run(fn, event)
            if result.errored and not self._closed:
                _dead_letter(fn, event, result)
        except Exception:
            LOG.exception("async invoke of %s failed", getattr(fn, "function_name", fn))

    def close(self) -> None:
        self._closed = True
        self.async_pool.shutdown(wait=False, cancel_futures=True)
        self.manager.close()


def _dead_letter(fn: Any, event: Any, result: InvocationResult) -> None:
    """The event of an async invoke that failed every attempt, to the function's DLQ (if it has one)."""
    target = (getattr(fn, "dead_letter_config", None) or {}).get("TargetArn") or ""
    if not target:
        LOG.warning("async invoke of %s failed after its retries; it has no DeadLetterConfig", fn.function_name)
        return
    if not target.startswith("arn:aws:sqs:"):
        LOG.warning("%s: dead-letter target %s is not an SQS queue; the emulator delivers only to SQS",
                    fn.function_name, target)
        return
    from moto.sqs.models import sqs_backends

    _, _, _, region, account, queue_name = target.split(":", 5)
    try:
        message = json.loads(result.payload).get("errorMessage") or ""
    except (ValueError, AttributeError):
        message = str(result.payload)
    attributes = {
        "RequestID": {"DataType": "String", "StringValue": str(uuid.uuid4())},
        "ErrorCode": {"DataType": "Number", "StringValue": "200"},
        "ErrorMessage": {"DataType": "String", "StringValue": message[:1000] or "Unhandled"},
    }
    sqs_backends[account][region].send_message(queue_name, json.dumps(event), message_attributes=attributes)
    LOG.info("async invoke of %s failed after its retries: event sent to %s", fn.function_name, target)


def _keep_dead_letter_config(original: Any) -> Any:
    def __init__(self: Any, account_id: str, spec: dict, region: str, version: Any = 1) -> None:
        original(self, account_id, spec, region, version)
        self.dead_letter_config = dict(spec.get("DeadLetterConfig") or {})

    return __init__


def _configuration_with_dead_letters(original: Any) -> Any:
    def get_configuration(self: Any, on_create: bool = False) -> dict:
        config = original(self, on_create)
        if getattr(self, "dead_letter_config", None):
            config["DeadLetterConfig"] = dict(self.dead_letter_config)
        return config

    return get_configuration


_active: dict[str, LambdaRuntime] = {}
_originals: dict[str, Any] = {}


def active_runtime() -> LambdaRuntime:
    runtime = _active.get("runtime")
    if runtime is None:
        raise RuntimeError("the emulator's Lambda runtime is not installed")
    return runtime


def _invoke_lambda(self: Any, event: Any = None) -> tuple[str, bool, str]:
    result = active_runtime().run(self, {} if event is None else event)
    return result.payload, result.errored, result.logs


def _function_invoke(self: Any, body: Any, request_headers: Any, response_headers: Any) -> str | bytes:
    if isinstance(body, (bytes, str)) and body:
        event = json.loads(body)
    elif body and not isinstance(body, (bytes, str)):
        event = body
    else:
        event = {}
    headers = {str(k).lower(): v for k, v in (request_headers or {}).items()}
    inv_type = headers.get("x-amz-invocation-type", "RequestResponse")
    if inv_type == "DryRun":
        return b""
    if inv_type == "Event":
        active_runtime().invoke_async(self, event)
        return b""
    result = active_runtime().run(self, event)
    response_headers["x-amz-executed-version"] = str(self.version)
    if result.errored:
        response_headers["x-amz-function-error"] = "Unhandled"
    # Lambda returns the last 4 KB of the log when LogType=Tail; moto's response drops it otherwise.
    response_headers["x-amz-log-result"] = base64.b64encode(result.logs.encode()[-4096:]).decode()
    return result.payload.encode("utf-8")


def _backend_invoke(self: Any, function_name: str, qualifier: str | None, body: Any, headers: Any,
                    response_headers: Any) -> bytes:
    fn = self.get_function(function_name, qualifier)
    payload = fn.invoke(body, headers, response_headers)
    response_headers["Content-Length"] = str(len(payload))
    return payload


def install_lambda_hooks(runtime: LambdaRuntime) -> None:
    from moto.awslambda.models import LambdaFunction
    from moto.awslambda_simple.models import LambdaSimpleBackend

    from sdlf_cli.local.cfn import _patching

    _patching.wrap(LambdaFunction, "__init__", PATCH_DEAD_LETTER_CONFIG, _keep_dead_letter_config)
    _patching.wrap(LambdaFunction, "get_configuration", PATCH_DEAD_LETTER_CONFIG + " (configuration)",
                   _configuration_with_dead_letters)
    _active["runtime"] = runtime
    if not _originals:
        _originals["_invoke_lambda"] = LambdaFunction._invoke_lambda
        _originals["invoke"] = LambdaFunction.invoke
        _originals["simple_invoke"] = LambdaSimpleBackend.invoke
        LambdaFunction._invoke_lambda = _invoke_lambda
        LambdaFunction.invoke = _function_invoke
        LambdaSimpleBackend.invoke = _backend_invoke


def uninstall_lambda_hooks() -> None:
    from moto.awslambda.models import LambdaFunction
    from moto.awslambda_simple.models import LambdaSimpleBackend

    if _originals:
        LambdaFunction._invoke_lambda = _originals.pop("_invoke_lambda")
        LambdaFunction.invoke = _originals.pop("invoke")
        LambdaSimpleBackend.invoke = _originals.pop("simple_invoke")
    _active.pop("runtime", None)
