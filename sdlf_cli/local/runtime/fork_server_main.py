"""The inside of a fork server (run as a script by sdlf_cli.local.runtime.fork_server, never imported by the
emulator): imports the modules its configuration names, then forks one child per request, and each child runs one
script as `python [-I] <script> <args>` would.

Only the standard library is imported before the preloads, and the server's Python code stays single-threaded,
so a child starts from a clean interpreter holding just those modules. argv: the socket's fd, then a JSON
configuration {"modules": [...], "path": [folders put first on sys.path while importing them], "models":
[services whose botocore models every child shares, _share_service_models]}; what they loaded is then frozen out
of the children's garbage collections (_freeze_preloaded). Messages are
JSON on a SOCK_SEQPACKET socket; a request carries the child's file descriptors 0, 1, 2, ... in order:
  first     {"ready": pid, "imported": [top-level names in sys.modules]}
  request   {"id", "argv": [script, *args], "cwd", "env"}  + fds (stdin, stdout, stderr, and any more)
  replies   {"started": id, "pid"} | {"failed": id, "error"}, later {"exited": pid, "code"}
When the emulator closes its end, the server kills the runs it started and exits.
"""
from __future__ import annotations

import gc
import importlib
import json
import os
import select
import signal
import socket
import sys
import time

MAX_MESSAGE = 1 << 20
MAX_FDS = 8


def main() -> int:
    channel = socket.socket(fileno=int(sys.argv[1]))
    config = json.loads(sys.argv[2])
    if not sys.flags.safe_path:
        del sys.path[0]  # this folder: a child's first path entry is its script's folder
    preload_path = list(config["path"])
    sys.path[:0] = preload_path
    for name in config["modules"]:
        try:
            importlib.import_module(name)
        except ImportError:
            pass  # not installed: a script importing it fails as it would in a fresh interpreter
    _share_service_models(config.get("models", []))
    for folder in preload_path:  # a child's sys.path is a fresh interpreter's
        sys.path.remove(folder)
    _freeze_preloaded()
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write, warn_on_full_buffer=False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    children: set[int] = set()
    imported = sorted({name.partition(".")[0] for name in sys.modules})
    channel.send(json.dumps({"ready": os.getpid(), "imported": imported}).encode())
    while True:
        ready, _, _ = select.select([channel, wake_read], [], [])
        if wake_read in ready:
            os.read(wake_read, 4096)
            _reap(channel, children)
        if channel not in ready:
            continue
        message, fds, _, _ = socket.recv_fds(channel, MAX_MESSAGE, MAX_FDS)
        if not message:  # the emulator is gone: so are its runs
            for pid in children:
                _kill(pid)
            for pid in children:  # reaped here: whatever runs as process 1 may never reap an orphan
                try:
                    os.waitpid(pid, 0)
                except ChildProcessError:
                    pass
            return 0
        request = json.loads(message)
        try:
            pid = os.fork()
        except OSError as exc:
            for fd in fds:
                os.close(fd)
            channel.send(json.dumps({"failed": request["id"], "error": str(exc)}).encode())
            continue
        if pid == 0:
            for fd in (channel.detach(), wake_read, wake_write):
                os.close(fd)
            return _child(request, fds)
        for fd in fds:
            os.close(fd)
        children.add(pid)
        channel.send(json.dumps({"started": request["id"], "pid": pid}).encode())


def _share_service_models(services: list[str]) -> None:
    """Every botocore session of a child reads the service models (JSON files of megabytes) from one loader this
    server has filled by creating a client of each service, as a child's first client would: a child's clients
    of the six services the lake's functions call take 0.06 s of CPU instead of 0.29. The models are read-only;
    a session given its own AWS_DATA_PATH keeps a loader of its own, as botocore would."""
    if not services:
        return
    try:
        import botocore.loaders
        import botocore.session
    except ImportError:
        return  # no botocore here: a child loads what it imports itself
    loader = botocore.loaders.create_loader()

    def register_data_loader(session: botocore.session.Session) -> None:
        def create() -> botocore.loaders.Loader:
            data_path = session.get_config_variable("data_path")
            return botocore.loaders.create_loader(data_path) if data_path else loader

        session._components.lazy_register_component("data_loader", create)

    botocore.session.Session._register_data_loader = register_data_loader
    session = botocore.session.Session()
    for service in services:
        try:  # made, not called: no credentials are looked up, nothing is sent
            session.create_client(service, region_name="us-east-1", aws_access_key_id="model",
                                  aws_secret_access_key="model")
        except Exception:  # noqa: BLE001 - an unknown service: a child asking for it fails as it would anyway
            pass


def _freeze_preloaded() -> None:
    """The preloaded modules' objects go to the collector's permanent generation (what `gc.freeze` is for, before
    forking): a child's collections - the last one at its interpreter's exit included - no longer walk them, and
    so no longer copy the pages holding them. A Glue run's exit took ~0.28 s of CPU with pyarrow, DuckDB and pandas
    loaded, ~0.09 s frozen; a Lambda worker's ~0.08 s, ~0.03 s. A child's own objects are collected as before."""
    gc.collect()
    gc.freeze()


def _reap(channel: socket.socket, children: set[int]) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        children.discard(pid)
        channel.send(json.dumps({"exited": pid, "code": os.waitstatus_to_exitcode(status)}).encode())


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _child(request: dict, fds: list[int]) -> int:
    """Becomes `python <script> <args>` in the request's folder and environment; returns its exit code."""
    import runpy

    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    import fcntl

    high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 100) for fd in fds]  # out of the way of the targets
    for fd in fds:
        os.close(fd)
    for target, fd in enumerate(high):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    time.tzset()
    script = os.path.abspath(request["argv"][0])
    sys.argv = [request["argv"][0], *request["argv"][1:]]
    if not sys.flags.safe_path:  # `python -I` (or -P) puts no script folder first
        sys.path.insert(0, os.path.dirname(script))
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as exc:
        return _exit_code(exc)
    except BaseException as exc:  # noqa: BLE001 - what the interpreter does with an uncaught exception
        tb = exc.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename != script:
            tb = tb.tb_next  # the traceback starts at the script, as it would without this server
        if tb is not None:
            exc.__traceback__ = tb
        sys.excepthook(type(exc), exc, exc.__traceback__)
        return 1
    return 0


def _exit_code(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
