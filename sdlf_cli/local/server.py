"""Runs the embedded emulator: moto's server on 127.0.0.1 plus the project's own fixes and execution parts.

`start(ctx)` is used both in-process (integration tests) and by the background process behind
`sdlf local up` (`python -m sdlf_cli.local.server --host 127.0.0.1 --port N --state-dir D`), which logs to
`D/emulator.log` and stops cleanly on SIGTERM/SIGINT (runtime workers first, then the HTTP server).
"""
from __future__ import annotations

import argparse
import gc
import logging
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from sdlf_cli.local.context import IAM_ENFORCED_BY_DEFAULT, EmulatorContext
from sdlf_cli.local.process import LOG_FILE as LOG_FILE_NAME
from sdlf_cli.local.process import READY_FILE

LOG = logging.getLogger("sdlf.local.server")
RUNTIME_MODULE = "sdlf_cli.local.runtime"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@dataclass
class RunningEmulator:
    context: EmulatorContext
    _server: object
    _stops: list[Callable[[], None]] = field(default_factory=list)
    started_at: float = field(default_factory=time.time)
    _stopped: bool = False

    @property
    def endpoint_url(self) -> str:
        return self.context.endpoint_url

    def stop(self) -> None:
        """Stops the execution parts (last installed first), then the HTTP server. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        for stop in reversed(self._stops):
            try:
                stop()
            except Exception:  # keep stopping the rest; the log says what failed
                LOG.exception("stopping an emulator part failed")
        self._server.stop()


def _install_runtime(ctx: EmulatorContext) -> Callable[[], None] | None:
    try:
        import importlib

        runtime = importlib.import_module(RUNTIME_MODULE)
    except ImportError as exc:
        # Only a missing runtime package is tolerated; a broken import inside it must surface.
        if exc.name != RUNTIME_MODULE:
            raise
        LOG.warning("no %s: Lambda, queues and schedules will not execute", RUNTIME_MODULE)
        return None
    return runtime.install(ctx)


def _install_iam(ctx: EmulatorContext) -> Callable[[], None]:
    """Role credentials for the lake's compute always; identity-policy enforcement when `ctx.iam`."""
    from sdlf_cli.local.iam import credentials, enforcement

    role_credentials = credentials.install(ctx.endpoint_url, ctx.region, ctx.account_id)
    if ctx.iam:
        enforcement.install()

    def stop() -> None:
        enforcement.uninstall()
        credentials.uninstall(role_credentials)

    return stop


class PortUnavailable(RuntimeError):
    """The emulator's port could not be bound (taken since it was chosen, or by another program)."""


def _moto_server(host: str, port: int) -> Any:
    """moto's threaded server, started; a port it cannot bind is raised here (moto's own `start()` would
    wait for ever for a server that never came up)."""
    from moto.server import ThreadedMotoServer

    from sdlf_cli.local import http_keep_alive

    http_keep_alive.install()  # before the server is built: it takes the request handler then

    class Server(ThreadedMotoServer):
        failure: BaseException | None = None

        def stop(self) -> None:
            super().stop()
            if self._server is not None:
                http_keep_alive.close_connections(self._server)

        def _server_entry(self) -> None:
            try:
                super()._server_entry()
            except BaseException as exc:  # noqa: BLE001 - handed to start(), in the caller's thread
                if not self._server_ready_event.is_set():
                    self.failure = exc
                    self._server_ready_event.set()
                else:
                    raise

    server = Server(ip_address=host, port=port, verbose=False)
    server.start()
    if server.failure is not None:
        raise PortUnavailable(f"the emulator cannot listen on {host}:{port}: {server.failure} (is another emulator "
                              "or program using it? choose another with --port)") from server.failure
    return server


def start(ctx: EmulatorContext) -> RunningEmulator:
    # moto's Step Functions interpreter calls back to localhost:$MOTO_PORT; it reads the variable
    # lazily, but set it before importing moto all the same.
    previous_port = os.environ.get("MOTO_PORT")
    os.environ["MOTO_PORT"] = str(ctx.port)
    ctx.state_dir.mkdir(parents=True, exist_ok=True)

    from moto.core.config import default_user_config

    from sdlf_cli.local import cfn, request_log

    default_user_config["stepfunctions"]["execute_state_machine"] = True
    default_user_config["lambda"]["use_docker"] = False

    # werkzeug logs a line per request at INFO; keep it for real problems only.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    stops: list[Callable[[], None]] = []
    try:
        server = _moto_server(ctx.host, ctx.port)
    except PortUnavailable:
        if previous_port is None:
            os.environ.pop("MOTO_PORT", None)
        else:
            os.environ["MOTO_PORT"] = previous_port
        raise
    running = RunningEmulator(ctx, server, stops)
    try:
        stops.append(cfn.install(ctx))
        restored = None
        if ctx.persist:
            from sdlf_cli.local import persistence

            restored = persistence.restore(ctx)
            # Stopped after the execution parts (they are stopped first): the final save sees them at rest.
            stops.append(persistence.install(ctx))
        stops.append(request_log.install())
        stops.append(_install_iam(ctx))
        runtime_stop = _install_runtime(ctx)
        if runtime_stop is not None:
            stops.append(runtime_stop)
        if ctx.persist:
            persistence.recover(ctx, restored)
    except BaseException:
        running.stop()
        raise
    LOG.info("emulator listening on %s (state in %s)", ctx.endpoint_url, ctx.state_dir)
    return running


# --- background process ----------------------------------------------------------------------------------
def _configure_logging(state_dir: Path) -> None:
    handler = logging.FileHandler(state_dir / LOG_FILE_NAME, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m sdlf_cli.local.server", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--faults", default=None, help="Faults to inject, kind=rate,... (sdlf_cli.local.faults).")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--iam", choices=("on", "off"), default="on" if IAM_ENFORCED_BY_DEFAULT else "off",
                        help="Enforce the identity policies of the lake's roles.")
    parser.add_argument("--persist", choices=("on", "off"), default="on",
                        help="Restore the state saved in --state-dir, and save every change there.")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    state_dir: Path = args.state_dir.resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    _configure_logging(state_dir)
    # Lambda handlers and Glue scripts run in child processes that inherit this environment.
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    from sdlf_cli.aws.session import share_models_with_every_session
    from sdlf_cli.aws.user_agent import sanitized_once

    share_models_with_every_session()  # before moto is imported: it makes a session per service it serves
    sanitized_once()  # the clients of its own parts (alarms, Glue, crawlers, pipelines) make many requests
    done = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        LOG.info("received %s, stopping", signal.Signals(signum).name)
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        running = start(EmulatorContext(host=args.host, port=args.port, state_dir=state_dir,
                                        iam=args.iam == "on", persist=args.persist == "on"))
    except Exception:
        LOG.exception("emulator failed to start")
        return 1
    if args.faults:
        from sdlf_cli.local import faults

        faults.install(faults.Faults(faults.FaultSpec.parse(args.faults), args.seed, state_dir / faults.LOG_FILE))
    # `sdlf local up` waits for this file: the port answering is not enough, the fixes must be in too.
    ready = state_dir / READY_FILE
    ready.write_text(f"{args.port}\n")
    while not done.wait(0.2):
        pass
    ready.unlink(missing_ok=True)
    running.stop()
    LOG.info("emulator stopped")
    logging.shutdown()
    return 0


if __name__ == "__main__":
    exit_code = main()
    gc.freeze()  # the state is saved: the interpreter's last collection need not walk moto's backends (sdlf_cli.cli)
    sys.exit(exit_code)
