"""Runs the embedded emulator: moto's server on 127.0.0.1 plus the project's own fixes and execution parts.

`start(ctx)` is used both in-process (integration tests) and by the background process behind
`sdlf local up` (`python -m sdlf_cli.local.server --port N --state-dir D`).
"""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from typing import Callable

from sdlf_cli.local.context import EmulatorContext


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@dataclass
class RunningEmulator:
    context: EmulatorContext
    _server: object
    _stops: list[Callable[[], None]] = field(default_factory=list)

    @property
    def endpoint_url(self) -> str:
        return self.context.endpoint_url

    def stop(self) -> None:
        for stop in reversed(self._stops):
            stop()
        self._server.stop()


def start(ctx: EmulatorContext) -> RunningEmulator:
    # moto's Step Functions interpreter calls back to localhost:$MOTO_PORT; it reads the variable
    # lazily, but set it before importing moto all the same.
    os.environ["MOTO_PORT"] = str(ctx.port)
    ctx.state_dir.mkdir(parents=True, exist_ok=True)

    from moto.core.config import default_user_config
    from moto.server import ThreadedMotoServer

    default_user_config["stepfunctions"]["execute_state_machine"] = True
    default_user_config["lambda"]["use_docker"] = False

    stops: list[Callable[[], None]] = []
    server = ThreadedMotoServer(ip_address=ctx.host, port=ctx.port, verbose=False)
    server.start()
    return RunningEmulator(ctx, server, stops)
