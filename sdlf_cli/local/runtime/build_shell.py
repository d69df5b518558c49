"""One build's shell: every buildspec command runs in the same bash instance, as CodeBuild (buildspec
0.2) runs them, so `cd`, variables and functions carry from one command (and phase) to the next.

bash reads NUL-separated commands from a pipe (its stdin is /dev/null, so a command that reads stdin
cannot swallow the next ones), `eval`s each and prints a marker line with the exit status; stdout and
stderr share one pipe, so a command's output always comes before its marker. A command that exits the
shell ends this session; the caller starts a fresh one for what follows.
"""
from __future__ import annotations

import os
import queue
import signal
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

_DRIVER = r"""exec 3<&0 0</dev/null
while IFS= read -r -d '' __codebuild_command <&3; do
  eval "$__codebuild_command"
  __codebuild_status=$?
  printf '\036%s %d\n' "$__CODEBUILD_MARK" "$__codebuild_status"
done
"""


@dataclass
class CommandResult:
    status: int | None  # None: the deadline passed first
    shell_exited: bool = False


class ShellSession:
    def __init__(self, cwd: Path, env: dict[str, str], on_line: Callable[[str], None]):
        self.mark = f"CODEBUILD-{uuid.uuid4().hex}"
        self.on_line = on_line
        self._lines: queue.Queue[str | None] = queue.Queue()
        self.process = subprocess.Popen(
            ["bash", "--noprofile", "--norc", "-c", _DRIVER], cwd=cwd, env={**env, "__CODEBUILD_MARK": self.mark},
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        self._reader = threading.Thread(target=self._read, name="sdlf-codebuild-output", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            self._lines.put(raw.decode("utf-8", errors="replace").rstrip("\r\n"))
        self._lines.put(None)

    def run(self, command: str, deadline: float) -> CommandResult:
        """Runs one command to its end (or the deadline); its output lines go to `on_line`."""
        try:
            assert self.process.stdin is not None
            self.process.stdin.write(command.encode() + b"\0")
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            return CommandResult(self.process.wait(), shell_exited=True)
        marker = f"\x1e{self.mark} "
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return CommandResult(None)
            try:
                line = self._lines.get(timeout=min(remaining, 1.0))
            except queue.Empty:
                continue
            if line is None:  # the command ended the shell (exit, exec, a fatal signal)
                return CommandResult(self.process.wait(), shell_exited=True)
            before, found, status = line.partition(marker)
            if before:
                self.on_line(before)
            if found:
                return CommandResult(int(status.strip() or 1))

    def kill(self) -> None:
        """Ends the shell and everything it started (its own process group)."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait()

    def close(self) -> None:
        if self.process.poll() is None and self.process.stdin is not None:
            try:
                self.process.stdin.close()
                self.process.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self.kill()
        self._reader.join(timeout=5)
