"""The one interface through which the deploy engine tells people what happens.

Implementations live in `sdlf_cli.ui` (live view, plain lines, quiet); the engine only needs
this protocol. Every method may be called from several threads at once.
"""
from __future__ import annotations

from typing import Protocol

from sdlf_cli.aws.cloudformation import StackEvent
from sdlf_cli.deploy.model import StackResult, StackSpec


class Reporter(Protocol):
    def stack_started(self, spec: StackSpec) -> None: ...

    def event(self, stack_name: str, event: StackEvent) -> None: ...

    # Called on every poll while waiting (same message repeated): reporters show changes and
    # may use the repeats as a heartbeat.
    def status(self, stack_name: str, message: str) -> None: ...

    def stack_finished(self, result: StackResult) -> None: ...


class NullReporter:
    def stack_started(self, spec: StackSpec) -> None:
        pass

    def event(self, stack_name: str, event: StackEvent) -> None:
        pass

    def status(self, stack_name: str, message: str) -> None:
        pass

    def stack_finished(self, result: StackResult) -> None:
        pass
