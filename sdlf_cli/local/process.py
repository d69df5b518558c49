"""Lifecycle of the emulator's background process: `sdlf local up|down|status` and `--local`.

The state folder (default `.sdlf/local`, or `$SDLF_LOCAL_STATE_DIR`) holds:
  emulator.pid    pid of the background process (its own session, so it outlives the shell)
  emulator.port   the port it listens on (127.0.0.1 only)
  emulator.ready  written by the process once moto and every fix are installed
  emulator.log    its log
  state.pickle, blobs/   the saved state (sdlf_cli.local.persistence), restored on start
  restored.json   what the last start restored; last.port: the port the saved state's URLs name
A pid file whose process is gone (or is some other program now) is stale: it is removed and reported
as not running.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from sdlf_cli.errors import SdlfError, UsageError

DEFAULT_STATE_DIR = Path(".sdlf/local")
STATE_DIR_ENV = "SDLF_LOCAL_STATE_DIR"
DEFAULT_PORT = 4566
HOST = "127.0.0.1"
SERVER_MODULE = "sdlf_cli.local.server"

PID_FILE = "emulator.pid"
PORT_FILE = "emulator.port"
READY_FILE = "emulator.ready"
LOG_FILE = "emulator.log"
LAST_PORT_FILE = "last.port"

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class EmulatorStatus:
    running: bool
    pid: int | None
    port: int | None
    endpoint_url: str | None
    log_file: Path
    uptime: float | None  # seconds since start, when running
    state_dir: Path
    saved_state: str | None = None  # what was restored on start, or where the state was saved on stop
    stopped: int | None = None  # `down`: the pid it stopped (None: nothing was running)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["log_file"] = str(self.log_file)
        data["state_dir"] = str(self.state_dir)
        return data


def resolve_state_dir(state_dir: Path | str | None = None) -> Path:
    """`$SDLF_LOCAL_STATE_DIR` wins over the default folder; an explicit other folder wins over both."""
    env = os.environ.get(STATE_DIR_ENV)
    if state_dir is None or (env and Path(state_dir) == DEFAULT_STATE_DIR):
        state_dir = env or DEFAULT_STATE_DIR
    return Path(state_dir).expanduser().resolve()


# --- process inspection ---------------------------------------------------------------------------------
def _reap(pid: int) -> None:
    # If the emulator is our own child (tests, or `up` then `down` in one process), collect its exit
    # status so a finished process does not linger as a zombie that still "exists".
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _is_our_emulator(pid: int) -> bool:
    _reap(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False  # someone else's process reusing the pid
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists():
        try:
            return SERVER_MODULE.encode() in cmdline.read_bytes()
        except OSError:
            return False
    return True  # no /proc (macOS): a live pid from our pid file is the best evidence there is


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _remove_state_files(state_dir: Path) -> None:
    for name in (PID_FILE, PORT_FILE, READY_FILE):
        try:
            (state_dir / name).unlink()
        except FileNotFoundError:
            pass


def _not_running(state_dir: Path) -> EmulatorStatus:
    return EmulatorStatus(False, None, None, None, state_dir / LOG_FILE, None, state_dir)


def status(state_dir: Path | str | None = None) -> EmulatorStatus:
    state_dir = resolve_state_dir(state_dir)
    pid_file = state_dir / PID_FILE
    pid = _read_int(pid_file)
    if pid is None:
        return _not_running(state_dir)
    if not _is_our_emulator(pid):
        _remove_state_files(state_dir)  # stale
        return _not_running(state_dir)
    port = _read_int(state_dir / PORT_FILE)
    try:
        uptime = max(0.0, time.time() - pid_file.stat().st_mtime)
    except OSError:
        uptime = None
    return EmulatorStatus(
        running=True,
        pid=pid,
        port=port,
        endpoint_url=f"http://{HOST}:{port}" if port else None,
        log_file=state_dir / LOG_FILE,
        uptime=uptime,
        state_dir=state_dir,
    )


def resolve_endpoint(state_dir: Path | str | None = None) -> str:
    """The endpoint URL behind `--local`."""
    current = status(state_dir)
    if not current.running or not current.endpoint_url:
        raise UsageError(
            f"the local emulator is not running (state folder {current.state_dir}): run `sdlf local up` first"
        )
    return current.endpoint_url


# --- up / down ----------------------------------------------------------------------------------------------
def port_is_free(port: int, host: str = HOST) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def _pick_port(port: int | None, state_dir: Path) -> int:
    if port is not None:
        if not port_is_free(port):
            raise UsageError(f"port {port} on {HOST} is already in use: choose another with --port")
        return port
    # The saved state's queue URLs and endpoints name the port it ran on: keep it when it is free.
    last = _read_int(state_dir / LAST_PORT_FILE)
    if last and snapshot_exists(state_dir) and port_is_free(last):
        return last
    if port_is_free(DEFAULT_PORT):
        return DEFAULT_PORT
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _answers(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


def _log_tail(log_file: Path, lines: int = 15) -> str:
    try:
        return "\n".join(log_file.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def up(state_dir: Path | str | None = None, port: int | None = None,
       timeout: float = START_TIMEOUT_S, faults: str | None = None, seed: int = 0,
       iam: bool | None = None, persist: bool = True) -> EmulatorStatus:
    """Starts the emulator in the background, or returns the running one's status (no-op). `faults`
    (`kind=rate,...`, see `sdlf_cli.local.faults`) makes it fail on purpose, logged to faults.jsonl;
    `iam` turns enforcement of the lake's identity policies on or off (None: the emulator's default); `persist`
    restores the state saved in the state folder and saves every change there (sdlf_cli.local.persistence)."""
    if faults:
        from sdlf_cli.local.faults import FaultSpec, FaultSpecError

        try:
            FaultSpec.parse(faults)
        except FaultSpecError as exc:
            raise UsageError(str(exc)) from None
    current = status(state_dir)
    if current.running:
        return current
    state_dir = current.state_dir
    state_dir.mkdir(parents=True, exist_ok=True)
    _remove_state_files(state_dir)
    port = _pick_port(port, state_dir)
    log_file = state_dir / LOG_FILE
    command = [sys.executable, "-m", SERVER_MODULE, "--host", HOST, "--port", str(port), "--state-dir", str(state_dir)]
    if faults:
        command += ["--faults", faults, "--seed", str(seed)]
    if iam is not None:
        command += ["--iam", "on" if iam else "off"]
    if not persist:
        command += ["--persist", "off"]
    with open(log_file, "ab") as log:
        # Own session: the emulator survives the terminal that started it and gets no terminal signals.
        child = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, close_fds=True,
        )
    (state_dir / PID_FILE).write_text(f"{child.pid}\n")
    (state_dir / PORT_FILE).write_text(f"{port}\n")
    (state_dir / LAST_PORT_FILE).write_text(f"{port}\n")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.poll() is not None:
            _remove_state_files(state_dir)
            raise SdlfError(
                f"the local emulator exited during start-up (code {child.returncode}); last lines of "
                f"{log_file}:\n{_log_tail(log_file)}"
            )
        if (state_dir / READY_FILE).exists() and _answers(port):
            return replace(status(state_dir), saved_state=_restored_text(state_dir))
        time.sleep(0.1)
    _stop_pid(child.pid, STOP_TIMEOUT_S)
    _remove_state_files(state_dir)
    raise SdlfError(f"the local emulator did not answer on port {port} within {timeout:.0f}s; see {log_file}:\n"
                    f"{_log_tail(log_file)}")


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _is_our_emulator(pid):
            return True
        time.sleep(0.05)
    return not _is_our_emulator(pid)


def _stop_pid(pid: int, timeout: float) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    if _wait_gone(pid, timeout):
        return
    # It did not stop in time: kill its whole session (it leads it, and its Lambda workers are in it).
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return
    _wait_gone(pid, 5.0)


def down(state_dir: Path | str | None = None, timeout: float = STOP_TIMEOUT_S) -> EmulatorStatus:
    """Stops the background emulator (SIGTERM, then SIGKILL after `timeout`); a no-op when not running.
    Its state stays saved under the state folder for the next `up`."""
    current = status(state_dir)
    if current.running and current.pid is not None:
        _stop_pid(current.pid, timeout)
    _remove_state_files(current.state_dir)
    stopped = _not_running(current.state_dir)
    if current.running:
        stopped = replace(stopped, stopped=current.pid)
    if snapshot_exists(current.state_dir):
        return replace(stopped, saved_state=f"state saved in {current.state_dir} (`sdlf local up` restores it, "
                                            "`sdlf local reset` removes it)")
    return stopped


# --- saved state ---------------------------------------------------------------------------------------------
def snapshot_exists(state_dir: Path) -> bool:
    from sdlf_cli.local.persistence.snapshot import exists

    return exists(state_dir)


def _restored_text(state_dir: Path) -> str | None:
    from sdlf_cli.local.persistence import read_restored

    restored = read_restored(state_dir)
    if not restored:
        return None
    text = f"restored the state saved at {restored['saved_at']} ({len(restored['services'])} services)"
    if restored.get("restarted_executions"):
        text += f"; {restored['restarted_executions']} running Step Functions execution(s) started again"
    ended = restored.get("failed_job_runs", 0) + restored.get("failed_crawls", 0)
    if ended:
        text += f"; {ended} interrupted Glue job run(s)/crawl(s) ended FAILED"
    return text


@dataclass(frozen=True)
class ResetResult:
    state_dir: Path
    removed: list[str] = field(default_factory=list)  # files removed, relative to the state folder
    removed_bytes: int = 0
    restarted: EmulatorStatus | None = None  # it was running: started again, empty

    @property
    def summary(self) -> str:
        if not self.removed:
            return f"nothing saved in {self.state_dir}: the emulator starts empty"
        count = self.removed_bytes
        size = f"{count / 1_000_000:.1f} MB" if count >= 100_000 else f"{count} bytes"
        return f"removed the saved state from {self.state_dir}: {len(self.removed)} file(s), {size}"

    def to_dict(self) -> dict:
        return {"state_dir": str(self.state_dir), "removed": self.removed, "removed_bytes": self.removed_bytes,
                "summary": self.summary, "restarted": self.restarted.to_dict() if self.restarted else None}


def reset(state_dir: Path | str | None = None, timeout: float = STOP_TIMEOUT_S) -> ResetResult:
    """Removes the saved state. A running emulator is stopped first and started again, empty, on its port."""
    from sdlf_cli.local.persistence import RESTORED_FILE
    from sdlf_cli.local.persistence.snapshot import saved_files

    current = status(state_dir)
    state_dir = current.state_dir
    if current.running:
        down(state_dir, timeout)
    removed, size = [], 0
    for path in [*saved_files(state_dir), state_dir / RESTORED_FILE, state_dir / LAST_PORT_FILE]:
        if not path.is_file():
            continue
        size += path.stat().st_size
        path.unlink()
        removed.append(str(path.relative_to(state_dir)))
    from sdlf_cli.local.persistence.snapshot import BLOBS_DIR

    if (state_dir / BLOBS_DIR).is_dir() and not any((state_dir / BLOBS_DIR).iterdir()):
        (state_dir / BLOBS_DIR).rmdir()
    restarted = up(state_dir, port=current.port) if current.running else None
    return ResetResult(state_dir, removed, size, restarted)
