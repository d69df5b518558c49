"""The inside of one warm Lambda worker process (run as a script, never imported by the emulator).

It plays the part of the Lambda runtime in a container: imports the handler once, then serves
invocations one at a time. The protocol runs over a private pipe (fd passed in argv) so anything the
handler prints - including C-level writes to fd 1/2 - can never corrupt it:
  request  (stdin, one JSON line):  {"request_id", "event", "timeout_ms", "invoked_arn"}
  response (protocol fd, one line): {"ok": bool, "payload": <json text>, "logs": <captured text>}
Only the standard library is imported here, so the handler sees a clean interpreter.
"""
from __future__ import annotations

import importlib
import io
import json
import logging
import os
import sys
import threading
import time
import traceback


class _Capture(io.TextIOBase):
    """Stands in for sys.stdout/sys.stderr for the whole life of the worker.

    Log handlers created at import time (powertools binds sys.stdout then) keep a reference to this
    object, so swapping the buffer per invocation captures their output too.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._parts: list[str] = []

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        with self._lock:
            self._parts.append(s)
        return len(s)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    def take(self) -> str:
        with self._lock:
            text = "".join(self._parts)
            self._parts = []
        return text


class LambdaContext:
    """The attributes and method Lambda's Python runtime offers on `context`."""

    def __init__(self, request_id: str, invoked_arn: str, timeout_ms: int):
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.invoked_function_arn = invoked_arn
        self.aws_request_id = request_id
        self.identity = None
        self.client_context = None
        self._deadline = time.monotonic() + timeout_ms / 1000.0

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class _RequestIdFilter(logging.Filter):
    request_id = ""

    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = self.request_id
        return True


def _error(exc: BaseException, error_type: str | None = None, message: str | None = None) -> dict:
    return {
        "errorMessage": message if message is not None else str(exc),
        "errorType": error_type or type(exc).__name__,
        "requestId": "",
        "stackTrace": traceback.format_tb(exc.__traceback__) if exc.__traceback__ else [],
    }


def _load_handler(spec: str):
    module_name, _, func_name = spec.rpartition(".")
    if not module_name:
        raise ValueError(f"Bad handler '{spec}': expected <module>.<function>")
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except Exception as exc:  # an init error, reported on every invoke like Lambda does
        return None, _error(exc, "Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}")
    handler = getattr(module, func_name, None)
    if handler is None:
        err = {"errorMessage": f"Handler '{func_name}' missing on module '{module_name}'",
               "errorType": "Runtime.HandlerNotFound", "requestId": "", "stackTrace": []}
        return None, err
    return handler, None


def main() -> None:
    proto = os.fdopen(int(sys.argv[1]), "w", encoding="utf-8")
    task_root = os.environ["LAMBDA_TASK_ROOT"]
    layer_paths = [p for p in os.environ.get("SDLF_LAYER_PATHS", "").split(os.pathsep) if p]
    # Function code first, then layers (like /var/task before /opt/python), then the runtime's own.
    sys.path[:0] = [task_root, *layer_paths]
    os.chdir(task_root)

    capture = _Capture()
    sys.stdout = capture
    sys.stderr = capture
    request_filter = _RequestIdFilter()
    root_handler = logging.StreamHandler(capture)
    root_handler.setFormatter(logging.Formatter(
        "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s", "%Y-%m-%dT%H:%M:%S"))
    root_handler.formatter.converter = time.gmtime
    root_handler.addFilter(request_filter)
    logging.getLogger().addHandler(root_handler)

    # The init phase: the handler's module is imported before the first request, and its end is announced, so
    # the runtime starts the function's timeout only then (Lambda does not charge init to it). What init
    # printed goes to the first invocation's log.
    handler, init_error = _load_handler(os.environ["_HANDLER"])
    proto.write(json.dumps({"initialized": True}) + "\n")
    proto.flush()
    for line in sys.stdin:
        request = json.loads(line)
        request_id = request["request_id"]
        request_filter.request_id = request_id
        ok, payload = True, "null"
        if handler is None:
            ok, error = False, dict(init_error, requestId=request_id)
            payload = json.dumps(error)
            print(f"[ERROR] {error['errorType']}: {error['errorMessage']}", file=capture)
        else:
            context = LambdaContext(request_id, request["invoked_arn"], request["timeout_ms"])
            try:
                result = handler(request["event"], context)
                try:
                    payload = json.dumps(result)
                except (TypeError, ValueError) as exc:
                    ok = False
                    payload = json.dumps(dict(_error(exc, "Runtime.MarshalError",
                                                     f"Unable to marshal response: {exc}"), requestId=request_id))
            except Exception as exc:
                ok = False
                error = dict(_error(exc), requestId=request_id)
                payload = json.dumps(error)
                # Lambda prints the uncaught error into the function's log too.
                print(f"[ERROR] {error['errorType']}: {error['errorMessage']}", file=capture)
                print("Traceback (most recent call last):", file=capture)
                print("".join(error["stackTrace"]).rstrip(), file=capture)
        proto.write(json.dumps({"ok": ok, "payload": payload, "logs": capture.take()}) + "\n")
        proto.flush()


if __name__ == "__main__":
    main()
