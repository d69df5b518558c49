"""Scripts run as children of a fork server that has already imported the libraries they use.

Glue's Python shell jobs come with pyarrow, pandas, DuckDB and boto3. Run as `python script.py`, a stage-B job
spent ~1.2 s of its ~1.4 s of CPU importing them, on every run; a Lambda worker spent ~0.2 s importing boto3.
The fork server (fork_server_main.py) imports them once; each run is a fork of it, with its own argv, working folder, environment, stdin/stdout/stderr and
exit status, and can be killed like any process.

What a child finds imported is what a fresh interpreter would have imported from the same place: the same
interpreter and environment, the script's folder first on sys.path. A script whose folder holds a module of
one of the imported names (itself included) would import its own copy instead, so `can_run` says no and the
caller starts it as a plain process.
"""
from __future__ import annotations

import json
import logging
import os
import selectors
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Sequence

LOG = logging.getLogger(__name__)

MAIN = Path(__file__).with_name("fork_server_main.py")
MAX_MESSAGE = 1 << 20
START_TIMEOUT_S = 120.0  # importing pandas, pyarrow and DuckDB on a loaded machine


class ForkServerUnavailable(RuntimeError):
    """The server could not start or is gone: run the script as a plain process."""


class _Forked:
    """A child of a fork server: its pid, exit status once the server reaped it, and SIGKILL."""

    def __init__(self, server: "ForkServer", pid: int):
        self._server = server
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self._server.exit_code(self.pid, 0)
        return self.returncode

    def kill(self) -> None:
        if self.poll() is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


class ForkedProcess(_Forked):
    """One run: the parts of `subprocess.Popen` the Glue job runner uses (text mode, both pipes read)."""

    def __init__(self, server: "ForkServer", pid: int, stdout: int, stderr: int):
        super().__init__(server, pid)
        self._chunks: dict[int, list[bytes]] = {stdout: [], stderr: []}
        self._selector = selectors.DefaultSelector()
        for fd in (stdout, stderr):
            self._selector.register(fd, selectors.EVENT_READ)
        self._stdout, self._stderr = stdout, stderr

    def communicate(self, timeout: float | None = None) -> tuple[str, str]:
        """Both pipes to their end, then the exit status; raises subprocess.TimeoutExpired like Popen (and may
        be called again after a kill)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._selector.get_map():
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise subprocess.TimeoutExpired(str(self.pid), timeout)
            for key, _ in self._selector.select(remaining):
                chunk = os.read(key.fd, 1 << 16)
                if chunk:
                    self._chunks[key.fd].append(chunk)
                else:
                    self._selector.unregister(key.fd)
                    os.close(key.fd)
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        code = self._server.exit_code(self.pid, remaining)
        if code is None:
            raise subprocess.TimeoutExpired(str(self.pid), timeout)
        self.returncode = code
        self._selector.close()
        return tuple(b"".join(self._chunks[fd]).decode("utf-8", errors="replace")  # type: ignore[return-value]
                     for fd in (self._stdout, self._stderr))


class ForkedChild(_Forked):
    """A child with a pipe on its stdin: the parts of `subprocess.Popen` a Lambda worker uses."""

    def __init__(self, server: "ForkServer", pid: int, stdin: int):
        super().__init__(server, pid)
        self.stdin = os.fdopen(stdin, "wb")

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            self.returncode = self._server.exit_code(self.pid, timeout)
            if self.returncode is None:
                raise subprocess.TimeoutExpired(str(self.pid), timeout)
        return self.returncode


class ForkServer:
    """Started on the first run: one per Glue job runner, one per set of layers of a Lambda worker manager.
    Safe to use from several threads."""

    def __init__(self, python: str, modules: Sequence[str], env: dict[str, str], log_path: Path, *,
                 isolated: bool = False, path: Sequence[str] = (), models: Sequence[str] = ()):
        """`isolated`: children run as `python -I` would; `path`: folders first on sys.path while the modules are
        imported (a Lambda function's layers), and not in a child's; `models`: services whose botocore models the
        server loads once for every child (fork_server_main._share_service_models)."""
        self.python, self.modules, self.env, self.log_path = python, tuple(modules), dict(env), log_path
        self.isolated, self.path, self.models = isolated, tuple(str(p) for p in path), tuple(models)
        self._lock = threading.Lock()
        self._exits = threading.Condition()
        self._exit_codes: dict[int, int] = {}
        self._replies: dict[int, dict] = {}
        self._next_id = 0
        self._process: subprocess.Popen | None = None
        self._channel: socket.socket | None = None
        self._imported: frozenset[str] = frozenset()
        self._broken = False
        self._closed = False

    # --- lifecycle ----------------------------------------------------------------------------------
    def _ensure_started(self) -> None:
        with self._lock:
            if self._closed or self._broken:
                raise ForkServerUnavailable("the fork server is stopped" if self._closed else "the fork server failed")
            if self._channel is not None:
                return
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.log_path, "ab") as log:
                config = json.dumps({"modules": list(self.modules), "path": list(self.path),
                                     "models": list(self.models)})
                flags = ["-I"] if self.isolated else []
                self._process = subprocess.Popen(
                    [self.python, *flags, str(MAIN), str(theirs.fileno()), config], env=self.env,
                    stdin=subprocess.DEVNULL, stdout=log, stderr=log, pass_fds=(theirs.fileno(),), close_fds=True)
            theirs.close()
            ours.settimeout(START_TIMEOUT_S)
            try:
                ready = ours.recv(MAX_MESSAGE)
            except OSError:
                ready = b""
            if not ready:
                self._broken = True
                ours.close()
                self._stop_process()
                raise ForkServerUnavailable(f"the fork server did not start (see {self.log_path})")
            self._imported = frozenset(json.loads(ready)["imported"])
            ours.settimeout(None)
            self._channel = ours
            threading.Thread(target=self._read_replies, name="sdlf-fork-server", daemon=True).start()

    def close(self) -> None:
        """Stops the server; it kills the runs still going."""
        with self._lock:
            self._closed = True
            channel, self._channel = self._channel, None
        if channel is not None:
            try:
                channel.shutdown(socket.SHUT_RDWR)  # wakes the reply reader; the server sees the end too
            except OSError:
                pass
            channel.close()
        self._stop_process()

    def _stop_process(self) -> None:
        if self._process is None:
            return
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    # --- runs ---------------------------------------------------------------------------------------
    def can_run(self, folder: Path) -> bool:
        """False when `folder` (a child's first sys.path entry) holds a module named like one the server imported."""
        self._ensure_started()
        names = {entry.split(".", 1)[0] for entry in os.listdir(folder)}
        return not (names & self._imported)

    def start(self, argv: Sequence[str], cwd: Path, env: dict[str, str]) -> ForkedProcess:
        """`python <argv...>` in `cwd` with `env`, as a child of the server; its output comes back on pipes."""
        out_read, out_write = os.pipe()
        err_read, err_write = os.pipe()
        null = os.open(os.devnull, os.O_RDONLY)
        try:
            pid = self.spawn(argv, cwd, env, [null, out_write, err_write])
        except BaseException:
            for fd in (out_read, err_read):
                os.close(fd)
            raise
        finally:
            for fd in (null, out_write, err_write):
                os.close(fd)
        return ForkedProcess(self, pid, out_read, err_read)

    def spawn(self, argv: Sequence[str], cwd: Path, env: dict[str, str], fds: Sequence[int]) -> int:
        """Starts `python <argv...>` with `fds` as its descriptors 0, 1, 2, ... (the caller keeps and closes its
        own copies); returns its pid."""
        self._ensure_started()
        with self._lock:
            if self._channel is None:
                raise ForkServerUnavailable("the fork server is stopped")
            self._next_id += 1
            request_id = self._next_id
            message = json.dumps({"id": request_id, "argv": list(argv), "cwd": str(cwd), "env": env}).encode()
            try:
                socket.send_fds(self._channel, [message], list(fds))
            except OSError as exc:
                raise ForkServerUnavailable(f"the fork server is gone: {exc}") from exc
        reply = self._reply(request_id)
        if "pid" not in reply:
            raise ForkServerUnavailable(f"the fork server could not start the run: {reply.get('error')}")
        return reply["pid"]

    def exit_code(self, pid: int, timeout: float | None) -> int | None:
        """The run's exit status once the server has reaped it (None: still running after `timeout`)."""
        with self._exits:
            self._exits.wait_for(lambda: pid in self._exit_codes or self._channel is None, timeout)
            if pid in self._exit_codes:
                return self._exit_codes[pid]
            if self._channel is None:  # the server is gone, and its runs with it
                return -signal.SIGKILL
            return None

    def _reply(self, request_id: int) -> dict:
        with self._exits:
            self._exits.wait_for(lambda: request_id in self._replies or self._channel is None)
            return self._replies.pop(request_id, {"error": "the fork server exited"})

    def _read_replies(self) -> None:
        channel = self._channel
        while True:
            try:
                message = channel.recv(MAX_MESSAGE) if channel is not None else b""
            except OSError:
                message = b""
            with self._exits:
                if not message:
                    if not self._closed:
                        LOG.warning("the fork server of Glue job runs exited; runs start as plain processes")
                    self._broken = True
                    self._channel = None
                    self._exits.notify_all()
                    return
                reply = json.loads(message)
                if "exited" in reply:
                    self._exit_codes[reply["exited"]] = reply["code"]
                else:
                    self._replies[reply.get("started") or reply.get("failed")] = reply
                self._exits.notify_all()
