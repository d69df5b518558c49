"""Warm Lambda workers: host Python processes that stand in for Lambda containers.

A fresh interpreter per call costs ~0.7 s once the handler imports boto3; a warm process costs
milliseconds. So, like Lambda, each function version keeps a small pool of worker processes keyed by
its code hash and configuration: changing either retires the old pool, a dead or timed-out worker is
replaced, and concurrent invocations of one function get separate workers (up to a cap).
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import select
import shutil
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from sdlf_cli.local.runtime.fork_server import ForkedChild, ForkServer, ForkServerUnavailable

LOG = logging.getLogger(__name__)

BOOTSTRAP = Path(__file__).with_name("lambda_bootstrap.py")
MAX_WORKERS_PER_FUNCTION = 4
# What Lambda's Python runtime provides and a worker's fork server imports before forking it.
RUNTIME_MODULES = ("boto3",)
# The services the lake's functions make clients of: their botocore models are loaded once per fork server.
SERVICE_MODELS = ("s3", "dynamodb", "sqs", "sns", "ssm", "stepfunctions")
# A new worker's init phase (the interpreter, then the handler's module imported) is not charged to the
# function's timeout, as on Lambda, whose init has a limit of its own. This is the emulator's limit for it: far
# above Lambda's 10 s, because a loaded test machine can make a cold start of seconds several times longer.
INIT_TIMEOUT_S = 120.0
# Credentials handed to handlers whose role cannot be assumed (IAM enforcement off): the emulator's
# root; AWS accepts none of these.
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


@dataclass(frozen=True)
class FunctionSpec:
    """Everything about one function version that decides what a worker runs."""

    name: str
    arn: str
    version: str
    handler: str
    runtime: str
    timeout: int
    memory_size: int
    environment: dict[str, str]
    code_sha: str
    layers: tuple[tuple[str, str], ...]  # (layer version arn, code sha)
    region: str
    role: str = ""  # execution role: the worker signs its calls with this role's assumed-role keys

    @property
    def key(self) -> str:
        """Identity of a worker pool: any change here means a new 'container'."""
        blob = json.dumps(
            [self.arn, self.version, self.handler, self.runtime, self.timeout, self.memory_size,
             sorted(self.environment.items()), self.code_sha, list(self.layers), self.role],
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:20]


@dataclass
class InvocationResult:
    payload: str  # JSON text: the handler's result or a Lambda error object
    errored: bool
    logs: str  # what the function wrote, framed by START/END/REPORT lines
    request_id: str
    duration_ms: float
    worker_pid: int | None = None


def extract_zip(data: bytes, target: Path) -> Path:
    """Extract once per content hash. Two workers of one function (or two functions sharing a layer) start
    at the same moment: each extracts into its own folder, and the first to rename it into place wins, so
    nobody sees a half-extracted tree or trips over the other's directories."""
    marker = target / ".sdlf-extracted"
    if marker.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}")
    scratch.mkdir()
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            for info in zf.infolist():
                zf.extract(info, scratch)
                mode = (info.external_attr >> 16) & 0o777
                if mode:
                    os.chmod(scratch / info.filename, mode | 0o400)
        (scratch / marker.name).write_text("ok")
        if target.exists() and not marker.exists():
            shutil.rmtree(target, ignore_errors=True)  # a half-finished extraction of an older emulator
        try:
            os.rename(scratch, target)
        except OSError:
            if not marker.exists():
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


class Worker:
    """One warm process serving one invocation at a time."""

    def __init__(self, spec: FunctionSpec, task_root: Path, layer_paths: list[Path], env: dict[str, str],
                 log_path: Path, server: ForkServer | None = None):
        read_fd, write_fd = os.pipe()
        self._log_file = open(log_path, "ab")
        env = {**env, "SDLF_LAYER_PATHS": os.pathsep.join(str(p) for p in layer_paths)}
        try:
            self.proc = (self._fork(server, task_root, env, write_fd) or subprocess.Popen(
                [sys.executable, "-I", str(BOOTSTRAP), str(write_fd)],
                stdin=subprocess.PIPE,
                stdout=self._log_file,
                stderr=self._log_file,
                env=env,
                cwd=str(task_root),
                pass_fds=(write_fd,),
                close_fds=True,
            ))
        finally:
            os.close(write_fd)
        self._proto_fd = read_fd
        self._buffer = b""
        self.spec = spec
        self.invocations = 0
        self._initialized = False  # the worker's first line, once its init phase is over, says so

    def _fork(self, server: ForkServer | None, task_root: Path, env: dict[str, str], proto: int) -> ForkedChild | None:
        """The worker as a child of its layers' fork server (boto3 already imported, from where the function
        would import it), or None: no server, or the function's code holds a module the server imported."""
        if server is None:
            return None
        try:
            if not server.can_run(task_root):
                return None
            stdin_read, stdin_write = os.pipe()
            log = self._log_file.fileno()
            try:
                pid = server.spawn([str(BOOTSTRAP), "3"], task_root, env, [stdin_read, log, log, proto])
            except ForkServerUnavailable:
                os.close(stdin_write)
                raise
            finally:
                os.close(stdin_read)
        except ForkServerUnavailable as exc:
            LOG.debug("Lambda worker of %s started as a plain process: %s", env.get("AWS_LAMBDA_FUNCTION_NAME"), exc)
            return None
        return ForkedChild(server, pid, stdin_write)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def invoke(self, request: dict, timeout_s: float) -> tuple[dict | None, str]:
        """Send one request: (response, "ok"), or (None, "timeout" | "exit") - the caller then kills us. The
        function's timeout runs from the request; a new worker's init phase comes first, under INIT_TIMEOUT_S."""
        self.invocations += 1
        if not self._initialized:
            ready, outcome = self._read_line(time.monotonic() + INIT_TIMEOUT_S)
            if ready is None:
                return None, outcome
            self._initialized = True
        try:
            self.proc.stdin.write((json.dumps(request) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            return None, "exit"
        return self._read_line(time.monotonic() + timeout_s)

    def _read_line(self, deadline: float) -> tuple[dict | None, str]:
        """The worker's next line on its protocol pipe: (message, "ok"), or (None, "timeout" | "exit")."""
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None, "timeout"
            ready, _, _ = select.select([self._proto_fd], [], [], remaining)
            if not ready:
                return None, "timeout"
            chunk = os.read(self._proto_fd, 1 << 16)
            if not chunk:  # the worker exited (sys.exit, os._exit, a crash)
                try:
                    self.proc.wait(timeout=2)
                except subprocess.TimeoutExpired:
                    pass
                return None, "exit"
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return json.loads(line), "ok"

    def kill(self) -> None:
        if self.alive():
            self.proc.kill()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            LOG.warning("Lambda worker %s did not exit after SIGKILL", self.pid)
        for closer in (self.proc.stdin.close, self._log_file.close, lambda: os.close(self._proto_fd)):
            try:
                closer()
            except OSError:
                pass


@dataclass
class _Pool:
    spec: FunctionSpec
    # Waiters for this pool's workers, on the manager's lock: a released worker wakes one of them (the
    # longest waiting), not every thread waiting for any function (a burst of executions left ~200 threads
    # waking and going back to sleep on every release).
    freed: threading.Condition
    idle: list[Worker] = field(default_factory=list)
    busy: int = 0
    retired: bool = False


class WorkerManager:
    """Owns every worker process; safe to call from many threads (server threads, poller, scheduler)."""

    def __init__(self, scratch_dir: Path, endpoint_url: str, role_credentials: Callable[[str, str], dict[str, str]] | None = None):
        self.scratch_dir = scratch_dir
        self.endpoint_url = endpoint_url
        # (role arn, session name) -> AWS_* credential variables of the role; None: the emulator's root
        self.role_credentials = role_credentials
        self._lock = threading.Lock()  # each pool waits on it with its own condition
        self._pools: dict[str, _Pool] = {}  # pool key -> pool
        self._current: dict[str, str] = {}  # function arn (with version) -> pool key
        self._closed = False
        # One fork server per set of layers, started at its first worker: it has imported boto3 (~0.2 s of a
        # worker's start) with the layers first on sys.path, so a layer's own copy of what boto3 imports
        # (jmespath, ...) is the one imported, as in a worker started from scratch.
        self._servers: dict[tuple[str, ...], ForkServer] = {}

    # --- code on disk ----------------------------------------------------------------------------
    def _task_root(self, spec: FunctionSpec, code: bytes) -> Path:
        return extract_zip(code, self.scratch_dir / "functions" / spec.name / spec.code_sha[:24] / "task")

    def _layer_path(self, layer_arn: str, sha: str, code: bytes) -> Path:
        safe = hashlib.sha256(layer_arn.encode()).hexdigest()[:12]
        root = extract_zip(code, self.scratch_dir / "layers" / f"{safe}-{sha[:16]}")
        return root / "python"

    def _environment(self, spec: FunctionSpec, log_stream: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")}
        env.update({str(k): str(v) for k, v in spec.environment.items()})
        env.setdefault("AWS_ENDPOINT_URL", self.endpoint_url)
        # Reserved variables: a function's own settings cannot override them (as on Lambda).
        env.update(FAKE_CREDENTIALS)
        if self.role_credentials is not None and spec.role:
            env.update(self.role_credentials(spec.role, spec.name))
        env.update({
            "_HANDLER": spec.handler,
            "AWS_REGION": spec.region,
            "AWS_DEFAULT_REGION": spec.region,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_VERSION": spec.version,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_size),
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(spec.timeout),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": log_stream,
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "NO_PROXY": "127.0.0.1,localhost",
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "TZ": "UTC",
        })
        return env

    def _spawn(self, spec: FunctionSpec, code: bytes, layer_codes: list[bytes]) -> Worker:
        task_root = self._task_root(spec, code)
        env_root = task_root.parent
        layer_paths = [self._layer_path(arn, sha, data) for (arn, sha), data in zip(spec.layers, layer_codes)]
        env = self._environment(spec, f"{time.strftime('%Y/%m/%d')}/[{spec.version}]{uuid.uuid4().hex}")
        env["LAMBDA_TASK_ROOT"] = str(task_root)
        env["LAMBDA_RUNTIME_DIR"] = str(BOOTSTRAP.parent)
        tmp = env_root / "tmp"
        tmp.mkdir(exist_ok=True)
        env["TMPDIR"] = str(tmp)
        return Worker(spec, task_root, layer_paths, env, env_root / "worker.log", self._server(layer_paths))

    def _server(self, layer_paths: list[Path]) -> ForkServer | None:
        key = tuple(str(p) for p in layer_paths)
        with self._lock:
            if self._closed:
                return None
            server = self._servers.get(key)
            if server is None:
                name = hashlib.sha256("\0".join(key).encode()).hexdigest()[:16]
                base = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")}
                server = self._servers[key] = ForkServer(
                    sys.executable, RUNTIME_MODULES, base, self.scratch_dir / "fork-servers" / f"{name}.log",
                    isolated=True, path=key, models=SERVICE_MODELS)
            return server

    # --- pools -----------------------------------------------------------------------------------
    def _acquire(self, spec: FunctionSpec) -> tuple[_Pool, Worker | None]:
        with self._lock:
            self._check_open()
            old_key = self._current.get(spec.arn)
            if old_key and old_key != spec.key and old_key in self._pools:
                # New code or configuration: the old 'containers' are never used again.
                old = self._pools.pop(old_key)
                old.retired = True
                for w in old.idle:
                    w.kill()
                old.idle.clear()
            self._current[spec.arn] = spec.key
            pool = self._pools.get(spec.key)
            if pool is None:
                pool = self._pools[spec.key] = _Pool(spec, threading.Condition(self._lock))
            while True:
                while pool.idle:
                    worker = pool.idle.pop()
                    if worker.alive():
                        pool.busy += 1
                        return pool, worker
                    worker.kill()
                if pool.busy < MAX_WORKERS_PER_FUNCTION:
                    pool.busy += 1
                    return pool, None  # the caller spawns outside the lock
                pool.freed.wait(timeout=1.0)
                self._check_open()  # stopped while this thread waited: it must not start a worker

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("the Lambda runtime is stopped")

    def _release(self, pool: _Pool, worker: Worker | None, healthy: bool) -> None:
        with self._lock:
            pool.busy -= 1
            if worker is not None:
                if healthy and not pool.retired and not self._closed and worker.alive():
                    pool.idle.append(worker)
                else:
                    worker.kill()
            pool.freed.notify()

    def invoke(self, spec: FunctionSpec, code: bytes, layer_codes: list[bytes], event: object,
               invoked_arn: str | None = None) -> InvocationResult:
        request_id = str(uuid.uuid4())
        started = time.monotonic()
        pool, worker = self._acquire(spec)
        healthy = False
        cold = worker is None
        try:
            if worker is None:
                worker = self._spawn(spec, code, layer_codes)
            request = {"request_id": request_id, "event": event, "timeout_ms": spec.timeout * 1000,
                       "invoked_arn": invoked_arn or spec.arn}
            response, outcome = worker.invoke(request, timeout_s=float(spec.timeout))
            duration_ms = (time.monotonic() - started) * 1000
            if response is None:
                if outcome == "timeout":
                    message = f"Task timed out after {spec.timeout:.2f} seconds"
                    error = {"errorMessage": f"{request_id} {message}", "errorType": "Sandbox.Timedout"}
                    body = f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {request_id} {message}"
                else:
                    error = {"errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: "
                                             f"exit status {worker.proc.returncode}",
                             "errorType": "Runtime.ExitError"}
                    body = error["errorMessage"]
                payload, errored, body_logs = json.dumps(error), True, body + "\n"
            else:
                healthy = True
                payload, errored, body_logs = response["payload"], not response["ok"], response["logs"]
            logs = _frame_logs(spec, request_id, body_logs, duration_ms, cold)
            return InvocationResult(payload, errored, logs, request_id, duration_ms, worker.pid)
        finally:
            self._release(pool, worker, healthy)

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {key: len(pool.idle) + pool.busy for key, pool in self._pools.items()}

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pools = list(self._pools.values())
            self._pools.clear()
            for pool in pools:
                pool.retired = True
                for w in pool.idle:
                    w.kill()
                pool.idle.clear()
                pool.freed.notify_all()
            servers = list(self._servers.values())
            self._servers.clear()
        for server in servers:  # a server ends the workers still running with it
            server.close()


def _frame_logs(spec: FunctionSpec, request_id: str, body: str, duration_ms: float, cold: bool) -> str:
    lines = [f"START RequestId: {request_id} Version: {spec.version}"]
    if body:
        lines.append(body.rstrip("\n"))
    lines.append(f"END RequestId: {request_id}")
    report = (f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\t"
              f"Billed Duration: {int(duration_ms) + 1} ms\tMemory Size: {spec.memory_size} MB")
    if cold:
        report += "\tInit: cold start"
    lines.append(report)
    return "\n".join(lines) + "\n"
