"""The emulator's request log: how many AWS requests it answered, by service and operation.

One named patch on moto's WSGI dispatcher counts every request it routes (from the CLI, from Lambda workers,
from the Step Functions interpreter calling Lambda), which is what AWS would bill. The service is the one the
request was signed for (SigV4 credential scope); the operation is the JSON protocols' X-Amz-Target, the query
protocols' Action, or for the REST services (S3, Lambda) the operation their method and path stand for.
`snapshot()` returns the counts so far; the difference of two snapshots is what happened in between.
Requests the emulator makes to itself standing in for AWS's own work (publishing queue and execution metrics,
evaluating alarms; their clients' user agent carries EMULATOR_AGENT) are counted apart: `snapshot(internal=True)`.
"""
from __future__ import annotations

import io
import re
import threading
from collections import Counter
from typing import Any, Callable
from urllib.parse import parse_qs

PATCH_NAME = "request log: count each request moto's dispatcher routes, by service and operation"

_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")
_LAMBDA_PATHS = ((re.compile(r"/functions/[^/]+/invocations$"), "Invoke"),
                 (re.compile(r"/event-source-mappings"), "EventSourceMappings"))
_S3_OPERATIONS = {("GET", True): "GetObject", ("PUT", True): "PutObject", ("HEAD", True): "HeadObject",
                  ("DELETE", True): "DeleteObject", ("POST", True): "PostObject", ("GET", False): "ListObjects",
                  ("PUT", False): "CreateBucket", ("HEAD", False): "HeadBucket", ("DELETE", False): "DeleteBucket",
                  ("POST", False): "DeleteObjects"}

EMULATOR_AGENT = "sdlf-emulator-internal"

_lock = threading.Lock()
_counts: Counter = Counter()
_internal: Counter = Counter()


def snapshot(internal: bool = False) -> Counter:
    """(service, operation) -> requests answered since the emulator started in this process (with `internal`,
    the ones the emulator made to itself in AWS's stead)."""
    with _lock:
        return Counter(_internal if internal else _counts)


def record(service: str, operation: str) -> None:
    """Counts a request the emulator answered without HTTP (a Step Functions task's Lambda invoke), when the log
    is on."""
    from sdlf_cli.local.cfn import _patching

    if PATCH_NAME in _patching.installed_names():
        with _lock:
            _counts[(service, operation)] += 1


def describe(environ: dict[str, Any]) -> tuple[str, str]:
    """(service, operation) of one WSGI request; ("unsigned", path) for what no SDK signed (moto's own API)."""
    scope = _CREDENTIAL_SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    service = scope.group(1) if scope else "unsigned"
    method, path = environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", "")
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return service, target.rsplit(".", 1)[-1]
    action = parse_qs(environ.get("QUERY_STRING", "")).get("Action") or _form_action(environ)
    if action:
        return service, action[0]
    if service == "s3":
        has_key = len([p for p in path.split("/") if p]) > 1
        if has_key and method == "PUT" and environ.get("HTTP_X_AMZ_COPY_SOURCE"):
            return service, "CopyObject"
        return service, _S3_OPERATIONS.get((method, has_key), f"{method} {'object' if has_key else 'bucket'}")
    if service == "lambda":
        for pattern, operation in _LAMBDA_PATHS:
            if pattern.search(path):
                return service, operation
    return service, f"{method} {path}" if service == "unsigned" else method


def _form_action(environ: dict[str, Any]) -> list[str]:
    if not environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        return []
    try:
        size = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return []
    body = environ["wsgi.input"].read(size) if size else b""
    environ["wsgi.input"] = io.BytesIO(body)  # moto reads the body again
    return parse_qs(body.decode("utf-8", "replace")).get("Action", [])


def _counting(original: Callable) -> Callable:
    def __call__(self, environ, start_response):
        key = describe(environ)
        counts = _internal if EMULATOR_AGENT in environ.get("HTTP_USER_AGENT", "") else _counts
        with _lock:
            counts[key] += 1
        return original(self, environ, start_response)
    return __call__


def install() -> Callable[[], None]:
    """Installs the counting patch (idempotent); returns what takes it out again."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    from sdlf_cli.local.cfn import _patching

    _patching.wrap(DomainDispatcherApplication, "__call__", PATCH_NAME, _counting)

    return lambda: _patching.uninstall(PATCH_NAME)
