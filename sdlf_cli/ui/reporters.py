"""Reporters: how a deploy shows itself while it runs.

- LiveReporter: a rich live table on a terminal (stack, status, elapsed, last event) with the
  failure reasons collected underneath.
- PlainReporter: one line per event, for CI logs and pipes — no control characters — plus a
  heartbeat line at least every 30 s per waiting stack so a log is never silent.
- QuietReporter: nothing, for `--output json` (the JSON envelope is the output).

All implement `sdlf_cli.deploy.reporter.Reporter` and are safe to call from several threads.
"""
from __future__ import annotations

import atexit
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import IO

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from sdlf_cli.aws.cloudformation import StackEvent
from sdlf_cli.deploy.model import StackResult, StackSpec
from sdlf_cli.deploy.reporter import NullReporter
from sdlf_cli.deploy.statuses import is_cascade

HEARTBEAT_SECONDS = 30.0

STATUS_STYLES = {
    "created": "green",
    "updated": "green",
    "unchanged": "dim",
    "planned": "cyan",
    "failed": "bold red",
    "skipped": "yellow",
    "running": "blue",
    "deleted": "magenta",
}


def format_elapsed(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{seconds:.1f}s"


def _event_text(event: StackEvent) -> str:
    parts = [event.status, event.resource_type, event.logical_id]
    if event.reason:
        parts.append(event.reason)
    return " ".join(parts)


class QuietReporter(NullReporter):
    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class PlainReporter(QuietReporter):
    """`HH:MM:SS stack STATUS Type LogicalId reason`, one line per event."""

    def __init__(
        self,
        stream: IO[str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = datetime.now,
        tz: tzinfo | None = None,
        heartbeat: float = HEARTBEAT_SECONDS,
    ):
        self.stream = stream if stream is not None else sys.stdout
        self.clock = clock
        self.wall = wall
        self.tz = tz
        self.heartbeat = heartbeat
        self._lock = threading.Lock()
        self._started: dict[str, float] = {}
        self._last_line: dict[str, float] = {}
        self._last_status: dict[str, str] = {}

    def _stamp(self, when: datetime | None = None) -> str:
        when = when if when is not None else self.wall()
        if when.tzinfo is not None:
            when = when.astimezone(self.tz)
        return when.strftime("%H:%M:%S")

    def _write(self, stack_name: str, text: str, when: datetime | None = None) -> None:
        # Caller holds the lock: one whole line at a time, never interleaved.
        self.stream.write(f"{self._stamp(when)} {stack_name} {text}\n")
        self.stream.flush()
        self._last_line[stack_name] = self.clock()

    def stack_started(self, spec: StackSpec) -> None:
        with self._lock:
            self._started[spec.name] = self.clock()
            self._write(spec.name, f"START {spec.layer}")

    def event(self, stack_name: str, event: StackEvent) -> None:
        with self._lock:
            self._write(stack_name, _event_text(event), event.timestamp)

    def status(self, stack_name: str, message: str) -> None:
        with self._lock:
            now = self.clock()
            if self._last_status.get(stack_name) != message:
                self._last_status[stack_name] = message
                self._write(stack_name, message)
            elif now - self._last_line.get(stack_name, now) >= self.heartbeat:
                elapsed = now - self._started.get(stack_name, now)
                self._write(stack_name, f"still waiting: {message} ({format_elapsed(elapsed)} elapsed)")

    def stack_finished(self, result: StackResult) -> None:
        with self._lock:
            line = f"{result.status.upper()} in {format_elapsed(result.duration)}"
            if result.message:
                line += f": {result.message}"
            self._write(result.name, line)
            if result.failure is not None and str(result.failure) not in result.message:
                self._write(result.name, f"root cause: {result.failure}")
            self._last_status.pop(result.name, None)


@dataclass
class _Row:
    layer: str
    started: float
    status: str = "running"
    duration: float | None = None
    last: str = ""


@dataclass
class _LiveState:
    rows: dict[str, _Row] = field(default_factory=dict)
    failures: list[tuple[str, str]] = field(default_factory=list)


class LiveReporter(QuietReporter):
    """A table of stacks redrawn in place; failure reasons are collected below it."""

    def __init__(self, console: Console | None = None, clock: Callable[[], float] = time.monotonic, auto_refresh: bool = True):
        self.console = console if console is not None else Console()
        self.clock = clock
        self._lock = threading.Lock()
        self._state = _LiveState()
        self._live = Live(
            get_renderable=self.renderable, console=self.console, refresh_per_second=4,
            auto_refresh=auto_refresh, transient=False,
        )
        self._started = False
        # Separate from _lock: Live.refresh() calls renderable(), which takes _lock.
        self._start_lock = threading.Lock()

    def _ensure_started(self) -> None:
        with self._start_lock:
            if self._started:
                return
            self._started = True
            self._live.start()
            # Callers should close() (or use `with`); if one forgets, still restore the cursor
            # and leave the final table on screen when the process ends.
            atexit.register(self.close)

    def renderable(self):
        with self._lock:
            table = Table(title="sdlf deploy", expand=False)
            table.add_column("stack", no_wrap=True)
            table.add_column("layer")
            table.add_column("status")
            table.add_column("elapsed", justify="right")
            table.add_column("last event", overflow="fold")
            now = self.clock()
            for name, row in self._state.rows.items():
                elapsed = row.duration if row.duration is not None else now - row.started
                table.add_row(
                    name, row.layer, Text(row.status, style=STATUS_STYLES.get(row.status, "")),
                    format_elapsed(elapsed), row.last,
                )
            if not self._state.failures:
                return table
            lines = Text("failures:\n", style="bold red")
            for stack, reason in self._state.failures:
                lines.append(f"  {stack}: {reason}\n", style="red")
            return Group(table, lines)

    def _refresh(self) -> None:
        self._ensure_started()
        self._live.refresh()

    def stack_started(self, spec: StackSpec) -> None:
        with self._lock:
            self._state.rows[spec.name] = _Row(layer=spec.layer, started=self.clock())
        self._refresh()

    def _row(self, stack_name: str) -> _Row:
        return self._state.rows.setdefault(stack_name, _Row(layer="", started=self.clock()))

    def event(self, stack_name: str, event: StackEvent) -> None:
        with self._lock:
            self._row(stack_name).last = _event_text(event)
            if event.status.endswith("_FAILED") and event.reason and not is_cascade(event.reason):
                self._state.failures.append(
                    (stack_name, f"{event.logical_id} ({event.resource_type}) {event.status}: {event.reason}")
                )
        self._refresh()

    def status(self, stack_name: str, message: str) -> None:
        with self._lock:
            self._row(stack_name).last = message
        self._refresh()

    def stack_finished(self, result: StackResult) -> None:
        with self._lock:
            row = self._row(result.name)
            row.layer = row.layer or result.layer
            row.status = result.status
            row.duration = result.duration
            row.last = result.message
            if result.status == "failed":
                reason = str(result.failure) if result.failure else result.message
                if not any(stack == result.name and reason in text for stack, text in self._state.failures):
                    self._state.failures.append((result.name, reason))
        self._refresh()

    def close(self) -> None:
        with self._start_lock:
            if not self._started:
                return
            self._started = False
        self._live.refresh()
        self._live.stop()


def make_reporter(
    output: str = "text",
    stream: IO[str] | None = None,
    env: Mapping[str, str] | None = None,
):
    """Quiet for `--output json`; a live view on an interactive terminal; plain lines in CI
    (`CI` set), on dumb terminals and when output is piped or redirected."""
    if output == "json":
        return QuietReporter()
    stream = stream if stream is not None else sys.stdout
    env = os.environ if env is None else env
    interactive = bool(getattr(stream, "isatty", lambda: False)())
    if interactive and not env.get("CI") and env.get("TERM", "") != "dumb":
        return LiveReporter(Console(file=stream))
    return PlainReporter(stream)
