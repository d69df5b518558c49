"""A build's CloudWatch Logs stream and CodeBuild's `[Container]` line format."""
from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timezone
from typing import Any

LOG = logging.getLogger(__name__)


def _now() -> float:
    return time.time()


def clock(when: float) -> str:
    return datetime.fromtimestamp(when, tz=timezone.utc).strftime("%Y/%m/%d %H:%M:%S.%f")


class BuildLog:
    """The build's CloudWatch Logs stream, written while the build runs (flushed every half second, also
    while a command prints nothing, so a follower sees each line soon after it is printed)."""

    def __init__(self, logs: Any, group: str | None, stream: str):
        self.logs, self.group, self.stream = logs, group, stream
        self.lines: list[str] = []
        self._pending: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._stopped = threading.Event()
        if group:
            for create, kwargs in ((logs.create_log_group, {"logGroupName": group}),
                                   (logs.create_log_stream, {"logGroupName": group, "logStreamName": stream})):
                try:
                    create(**kwargs)
                except logs.exceptions.ResourceAlreadyExistsException:
                    pass
        self._flusher = threading.Thread(target=self._flush_periodically, name="sdlf-codebuild-logs", daemon=True)
        self._flusher.start()

    def container(self, text: str) -> None:
        self.write(f"[Container] {clock(_now())} {text}")

    def write(self, line: str) -> None:
        with self._lock:
            self.lines.append(line)
            self._pending.append({"timestamp": int(_now() * 1000), "message": line[:250_000] or " "})

    def _flush_periodically(self) -> None:
        while not self._stopped.wait(0.5):
            self.flush()

    def close(self) -> None:
        self._stopped.set()
        self._flusher.join(timeout=5)
        self.flush()

    def flush(self) -> None:
        with self._flush_lock:  # one batch at a time, so the stream keeps the order of the lines
            with self._lock:
                pending, self._pending = self._pending, []
            if not self.group or not pending:
                return
            for start in range(0, len(pending), 1000):
                try:
                    self.logs.put_log_events(logGroupName=self.group, logStreamName=self.stream,
                                             logEvents=pending[start:start + 1000])
                except Exception:
                    LOG.exception("could not write build log %s/%s", self.group, self.stream)
