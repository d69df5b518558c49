"""`sdlf local up|down|status` against a real background process on 127.0.0.1."""
from __future__ import annotations

import os
import subprocess
import sys

import boto3
import pytest

from sdlf_cli.errors import UsageError
from sdlf_cli.local import process
from sdlf_cli.local.server import free_port


def test_up_status_second_up_down(tmp_path):
    state = tmp_path / "local"
    assert process.status(state).running is False
    with pytest.raises(UsageError, match="sdlf local up"):
        process.resolve_endpoint(state)

    # an explicit free port: 4566 (the default) may be taken by another test run on this machine
    started = process.up(state, port=free_port())
    try:
        assert started.running and started.pid and started.port
        assert started.endpoint_url == f"http://127.0.0.1:{started.port}"
        assert (state / "emulator.pid").read_text().strip() == str(started.pid)
        assert (state / "emulator.port").read_text().strip() == str(started.port)
        again = process.up(state)  # no-op: same process
        assert again.pid == started.pid and again.port == started.port
        current = process.status(state)
        assert current.running and current.uptime is not None and current.uptime >= 0
        assert process.resolve_endpoint(state) == started.endpoint_url
        s3 = boto3.client("s3", endpoint_url=started.endpoint_url, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
        s3.create_bucket(Bucket="process-test")
        assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["process-test"]
    finally:
        stopped = process.down(state)
    assert stopped.running is False
    assert not (state / "emulator.pid").exists()
    assert process.status(state).running is False
    assert "emulator stopped" in (state / "emulator.log").read_text()
    assert process.down(state).running is False  # no-op when not running


def test_stale_pid_file_is_detected_and_removed(tmp_path):
    state = tmp_path / "local"
    state.mkdir()
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (state / "emulator.pid").write_text(finished.stdout)  # a pid whose process has exited
    (state / "emulator.port").write_text("4566\n")
    assert process.status(state).running is False
    assert not (state / "emulator.pid").exists()
    # a live process that is not the emulator (pid reuse) is stale too
    (state / "emulator.pid").write_text(f"{subprocess.os.getpid()}\n")
    assert process.status(state).running is False


def test_state_dir_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(process.STATE_DIR_ENV, str(tmp_path / "from-env"))
    assert process.resolve_state_dir() == (tmp_path / "from-env").resolve()
    assert process.resolve_state_dir(process.DEFAULT_STATE_DIR) == (tmp_path / "from-env").resolve()
    assert process.resolve_state_dir(tmp_path / "explicit") == (tmp_path / "explicit").resolve()


def test_busy_port_is_a_usage_error(tmp_path):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        with pytest.raises(UsageError, match="already in use"):
            process.up(tmp_path / "local", port=busy.getsockname()[1])


def test_a_port_taken_before_the_server_binds_is_raised_not_waited_for(tmp_path, monkeypatch):
    import socket
    import threading

    from sdlf_cli.local.context import EmulatorContext
    from sdlf_cli.local.server import PortUnavailable, start

    monkeypatch.setenv("MOTO_PORT", "4999")
    outcome: list[BaseException] = []
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        ctx = EmulatorContext(host="127.0.0.1", port=busy.getsockname()[1], state_dir=tmp_path / "local")

        def attempt() -> None:
            try:
                start(ctx).stop()
            except BaseException as exc:  # noqa: BLE001 - examined below
                outcome.append(exc)

        worker = threading.Thread(target=attempt, daemon=True)
        worker.start()
        worker.join(60)
    assert not worker.is_alive(), "start() waited for a server that could not bind"
    [error] = outcome
    assert isinstance(error, PortUnavailable) and str(ctx.port) in str(error) and "--port" in str(error)
    assert os.environ["MOTO_PORT"] == "4999", "the port of an emulator already running is left as it was"
