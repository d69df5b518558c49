"""Fault injection on the embedded emulator: the failures AWS has at scale, at given rates, on purpose.

`sdlf local up --faults lambda_error=0.05,throttle=0.05,duplicate=0.05 --seed 7` (or `injected(spec, seed)`
around an in-process emulator) makes the emulator fail the way AWS fails, so the lake's retries, DLQs and
idempotency are exercised instead of assumed:

| kind            | where                                   | what happens                                      |
|-----------------|-----------------------------------------|---------------------------------------------------|
| lambda_error    | every Lambda invoke                     | the handler does not run; the invoke fails with    |
|                 |                                         | `Lambda.ServiceException` (Step Functions retries) |
| lambda_timeout  | every Lambda invoke                     | the handler runs, then the invoke fails with       |
|                 |                                         | `Sandbox.Timedout` (its writes happened)            |
| partial_write   | S3 / DynamoDB / SQS writes from Lambda  | the write is applied, then answered 500            |
|                 |                                         | InternalError (the SDK retries it)                 |
| throttle        | S3 / DynamoDB / SQS calls from Lambda   | refused with SlowDown / ThrottlingException         |
| glue_error      | every Glue job run                      | the run FAILS before its script starts             |
| duplicate       | every SQS send (S3 events included)     | the message is stored twice (at-least-once), the    |
|                 |                                         | copy visible 0-5 s later                            |
| delay           | every SQS send                          | the message becomes visible 1-5 s later            |

HTTP faults apply to requests from Lambda functions (recognised by the `exec-env/AWS_Lambda_` part that
the SDK adds to the user agent inside Lambda), so the CLI's own calls and the test harness pass untouched.
Every injected fault is one JSON line in the log file (`faults.jsonl` in the emulator's state folder), with
its kind and what it hit; `summary()` counts them by kind, and counts as retries the invocations and job
runs that repeated one a fault had hit.

Each hook is a named, reversible patch (`sdlf_cli.local.cfn._patching`); `uninstall()` removes them all.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import random
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import parse_qs

from sdlf_cli.local.cfn import _patching

LOG = logging.getLogger(__name__)

KINDS = ("lambda_error", "lambda_timeout", "partial_write", "throttle", "glue_error", "duplicate", "delay")
LOG_FILE = "faults.jsonl"
LAMBDA_USER_AGENT = "exec-env/AWS_Lambda_"
PATCH_LAMBDA = "faults: Lambda errors and timeouts"
PATCH_HTTP = "faults: throttles and partial writes"
PATCH_SQS = "faults: duplicate and delayed SQS messages"
PATCH_GLUE = "faults: Glue job failures"
PATCHES = (PATCH_LAMBDA, PATCH_HTTP, PATCH_SQS, PATCH_GLUE)

_S3_WRITES = ("PUT", "POST", "DELETE")
_DYNAMODB_WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
_SQS_WRITES = {"SendMessage", "SendMessageBatch", "DeleteMessage", "DeleteMessageBatch",
               "ChangeMessageVisibility", "ChangeMessageVisibilityBatch"}


class FaultSpecError(ValueError):
    """A --faults value that cannot be used; the message says what was expected."""


@dataclass(frozen=True)
class FaultSpec:
    rates: dict[str, float] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> "FaultSpec":
        """`kind=rate,...` with rates in [0, 1], e.g. `lambda_error=0.2,throttle=0.05`."""
        rates: dict[str, float] = {}
        for part in (p.strip() for p in (text or "").split(",")):
            if not part:
                continue
            kind, sep, value = part.partition("=")
            kind = kind.strip()
            if not sep:
                raise FaultSpecError(f"--faults: {part!r}: expected kind=rate (e.g. lambda_error=0.2)")
            if kind not in KINDS:
                raise FaultSpecError(f"--faults: unknown fault {kind!r}; expected one of {', '.join(KINDS)}")
            try:
                rate = float(value)
            except ValueError:
                raise FaultSpecError(f"--faults: {kind}: rate {value!r} is not a number") from None
            if not 0.0 <= rate <= 1.0:
                raise FaultSpecError(f"--faults: {kind}: rate {rate} is not between 0 and 1")
            rates[kind] = rate
        return cls(rates)

    def __str__(self) -> str:
        return ",".join(f"{k}={v:g}" for k, v in self.rates.items())


class Faults:
    """Decides (seeded) which calls fail, and logs what it did."""

    def __init__(self, spec: FaultSpec, seed: int = 0, log_path: Path | None = None):
        self.spec = spec
        self.seed = seed
        self.log_path = log_path
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self.counts: dict[str, int] = {kind: 0 for kind in KINDS}
        self.retries = 0
        self._hit: set[str] = set()  # digests of invocations / job runs a fault hit
        self._suspended = threading.local()
        if log_path is not None:
            log_path.parent.mkdir(parents=True, exist_ok=True)

    def roll(self, kind: str) -> bool:
        rate = self.spec.rates.get(kind, 0.0)
        if rate <= 0.0 or getattr(self._suspended, "on", False):
            return False
        with self._lock:
            return self._random.random() < rate

    def uniform(self, low: float, high: float) -> float:
        with self._lock:
            return self._random.uniform(low, high)

    def record(self, kind: str, **detail: Any) -> None:
        with self._lock:
            self.counts[kind] += 1
            if self.log_path is not None:
                line = json.dumps({"time": time.time(), "kind": kind, **detail}, default=str, sort_keys=True)
                with self.log_path.open("a", encoding="utf-8") as log:
                    log.write(line + "\n")
        LOG.info("fault injected: %s %s", kind, detail)

    def hit(self, digest: str) -> None:
        with self._lock:
            self._hit.add(digest)

    def seen(self, digest: str) -> None:
        """Counts a retry when `digest` (an invocation or job run) is one a fault hit before."""
        with self._lock:
            if digest in self._hit:
                self.retries += 1

    @contextmanager
    def suspended(self) -> Iterator[None]:
        """No faults for what this thread does inside (e.g. the extra copy of a duplicated message)."""
        self._suspended.on = True
        try:
            yield
        finally:
            self._suspended.on = False

    def summary(self) -> dict[str, Any]:
        with self._lock:
            return {"spec": str(self.spec), "seed": self.seed, "faults": dict(self.counts),
                    "total": sum(self.counts.values()), "retries": self.retries}


def _digest(value: Any) -> str:
    if isinstance(value, dict) and isinstance(value.get("Records"), list):
        ids = sorted(str(r.get("messageId") or r.get("body")) for r in value["Records"] if isinstance(r, dict))
        if ids:
            value = ids
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


# --- Lambda -----------------------------------------------------------------------------------------------
def _lambda_invoke(faults: Faults, original: Any) -> Any:
    """Wraps `WorkerManager.invoke(spec, code, layer_codes, event)`: the one call every Lambda invocation of the
    emulator goes through (whatever wraps `LambdaRuntime.run` above it, e.g. the metrics recorder)."""
    from sdlf_cli.local.runtime.workers import InvocationResult

    def invoke(self: Any, spec: Any, code: bytes, layer_codes: Any, event: Any, *args: Any, **kwargs: Any) -> Any:
        digest = f"lambda:{spec.name}:{_digest(event)}"
        faults.seen(digest)
        if faults.roll("lambda_error"):
            faults.hit(digest)
            faults.record("lambda_error", function=spec.name)
            error = {"errorType": "Lambda.ServiceException",
                     "errorMessage": f"injected fault: the Lambda service failed to run {spec.name}"}
            return InvocationResult(json.dumps(error), True, f"[ERROR] {error['errorMessage']}\n", "", 0.0)
        result = original(self, spec, code, layer_codes, event, *args, **kwargs)
        if faults.roll("lambda_timeout"):
            faults.hit(digest)
            faults.record("lambda_timeout", function=spec.name, handler_errored=result.errored)
            message = f"Task timed out after {float(spec.timeout or 3):.2f} seconds (injected fault, after the handler ran)"
            error = {"errorType": "Sandbox.Timedout", "errorMessage": message}
            return InvocationResult(json.dumps(error), True, result.logs + f"[ERROR] {message}\n",
                                    result.request_id, result.duration_ms, result.worker_pid)
        return result

    return invoke


# --- HTTP: throttles and partial writes --------------------------------------------------------------------
@dataclass(frozen=True)
class _Request:
    service: str  # s3 | dynamodb | sqs | ...
    operation: str
    write: bool
    json_protocol: bool


def _classify(environ: dict) -> _Request | None:
    """What an HTTP request to the emulator is, from its signature's credential scope and its target."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    marker = "Credential="
    if marker not in auth:
        return None
    scope = auth.split(marker, 1)[1].split(",", 1)[0].split("/")
    if len(scope) < 5:
        return None
    service = scope[3]
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    method = environ.get("REQUEST_METHOD", "GET")
    if service == "s3":
        return _Request("s3", f"{method} {environ.get('PATH_INFO', '')}", method in _S3_WRITES, False)
    if service == "dynamodb":
        operation = target.rpartition(".")[2]
        return _Request("dynamodb", operation, operation in _DYNAMODB_WRITES, True)
    if service == "sqs":
        if target:
            operation = target.rpartition(".")[2]
            return _Request("sqs", operation, operation in _SQS_WRITES, True)
        operation = _form_action(environ)
        return _Request("sqs", operation, operation in _SQS_WRITES, False)
    return None


def _form_action(environ: dict) -> str:
    """The Action of a query-protocol request; the body is read and put back for the application."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    query = parse_qs(environ.get("QUERY_STRING", "")) | parse_qs(body.decode("utf-8", "replace"))
    return (query.get("Action") or [""])[0]


def _error_response(request: _Request, status: int, code: str, message: str) -> tuple[str, list, bytes]:
    reason = {400: "Bad Request", 500: "Internal Server Error", 503: "Slow Down"}[status]
    if request.json_protocol:
        prefix = "com.amazonaws.dynamodb.v20120810" if request.service == "dynamodb" else "com.amazonaws.sqs"
        body = json.dumps({"__type": f"{prefix}#{code}", "message": message}).encode()
        headers = [("Content-Type", "application/x-amz-json-1.0"), ("x-amzn-ErrorType", code)]
        if request.service == "sqs":
            headers.append(("x-amzn-query-error", f"{code};{'Sender' if status < 500 else 'Receiver'}"))
    elif request.service == "s3":
        body = f"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>{message}</Message></Error>".encode()
        headers = [("Content-Type", "application/xml")]
    else:
        body = (f"<ErrorResponse><Error><Type>{'Sender' if status < 500 else 'Receiver'}</Type><Code>{code}</Code>"
                f"<Message>{message}</Message></Error><RequestId>fault</RequestId></ErrorResponse>").encode()
        headers = [("Content-Type", "text/xml")]
    headers.append(("Content-Length", str(len(body))))
    return f"{status} {reason}", headers, body


_THROTTLE = {"s3": (503, "SlowDown", "Please reduce your request rate."),
             "dynamodb": (400, "ThrottlingException", "Rate of requests exceeds the allowed throughput."),
             "sqs": (400, "ThrottlingException", "Rate exceeded")}


def _dispatch(faults: Faults, original: Any) -> Any:
    def call(self: Any, environ: dict, start_response: Any) -> Any:
        if LAMBDA_USER_AGENT not in environ.get("HTTP_USER_AGENT", ""):
            return original(self, environ, start_response)
        request = _classify(environ)
        if request is None:
            return original(self, environ, start_response)
        if faults.roll("throttle"):
            faults.record("throttle", service=request.service, operation=request.operation)
            status, headers, body = _error_response(request, *_THROTTLE[request.service])
            start_response(status, headers)
            return [body]
        if request.write and faults.roll("partial_write"):
            # Applied, then answered as failed: the caller cannot tell, and retries.
            answered: list = []
            chunks = original(self, environ, lambda status, headers, exc_info=None: answered.append(status))
            try:
                for _ in chunks:
                    pass
            finally:
                if hasattr(chunks, "close"):
                    chunks.close()
            faults.record("partial_write", service=request.service, operation=request.operation,
                          applied=answered[0] if answered else None)
            status, headers, body = _error_response(request, 500, "InternalError",
                                                    "We encountered an internal error. Please try again.")
            start_response(status, headers)
            return [body]
        return original(self, environ, start_response)

    return call


# --- SQS: duplicates and delays ----------------------------------------------------------------------------
def _send_message(faults: Faults, original: Any) -> Any:
    def send_message(self: Any, queue_name: str, message_body: str, *args: Any, **kwargs: Any) -> Any:
        fifo = queue_name.endswith(".fifo")
        if not fifo and faults.roll("delay") and not kwargs.get("delay_seconds"):
            delay = int(round(faults.uniform(1, 5)))
            kwargs["delay_seconds"] = delay
            faults.record("delay", queue=queue_name, seconds=delay)
        message = original(self, queue_name, message_body, *args, **kwargs)
        if not fifo and faults.roll("duplicate"):
            late = int(round(faults.uniform(0, 5)))
            with faults.suspended():
                copy = original(self, queue_name, message_body, *args, **{**kwargs, "delay_seconds": late})
            faults.record("duplicate", queue=queue_name, message=message.id, copy=copy.id, copy_delay=late)
        return message

    return send_message


# --- Glue --------------------------------------------------------------------------------------------------
def _glue_execute(faults: Faults, original: Any) -> Any:
    from sdlf_cli.local.runtime.glue_jobs import RunOutcome

    def execute(self: Any, job_name: str, run_id: str, script_location: Any, arguments: Any, *args: Any,
                **kwargs: Any) -> Any:
        digest = f"glue:{job_name}:{_digest(arguments)}"
        faults.seen(digest)
        if faults.roll("glue_error"):
            faults.hit(digest)
            faults.record("glue_error", job=job_name, run=run_id)
            message = f"injected fault: job run {run_id} of {job_name} failed before its script started"
            return RunOutcome("FAILED", message, "", message + "\n", 0.0)
        return original(self, job_name, run_id, script_location, arguments, *args, **kwargs)

    return execute


# --- wiring ------------------------------------------------------------------------------------------------
_active: dict[str, Faults] = {}


def install(faults: Faults) -> Faults:
    """Puts the hooks in; only one set of faults at a time (a second install replaces the first)."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication
    from moto.sqs.models import SQSBackend

    from sdlf_cli.local.runtime.glue_jobs import GlueJobRunner
    from sdlf_cli.local.runtime.workers import WorkerManager

    uninstall()
    _active["faults"] = faults
    _patching.wrap(WorkerManager, "invoke", PATCH_LAMBDA, lambda original: _lambda_invoke(faults, original))
    _patching.wrap(DomainDispatcherApplication, "__call__", PATCH_HTTP, lambda original: _dispatch(faults, original))
    _patching.wrap(SQSBackend, "send_message", PATCH_SQS, lambda original: _send_message(faults, original))
    _patching.wrap(GlueJobRunner, "execute", PATCH_GLUE, lambda original: _glue_execute(faults, original))
    LOG.info("fault injection on: %s (seed %s)", faults.spec, faults.seed)
    return faults


def uninstall() -> None:
    for name in PATCHES:
        _patching.uninstall(name)
    _active.pop("faults", None)


def active() -> Faults | None:
    return _active.get("faults")


@contextmanager
def injected(spec: FaultSpec | str, seed: int = 0, log_path: Path | None = None) -> Iterator[Faults]:
    """Faults on the in-process emulator for the duration of the block."""
    faults = install(Faults(FaultSpec.parse(spec) if isinstance(spec, str) else spec, seed, log_path))
    try:
        yield faults
    finally:
        uninstall()


def read_log(path: Path) -> list[dict]:
    """The fault log's entries (a run's explanation), oldest first."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
