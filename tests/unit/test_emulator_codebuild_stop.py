"""StopBuild against the emulator's build runner: a stop is never lost between a phase starting and its shell."""
from __future__ import annotations

import os
import time

from sdlf_cli.local.context import EmulatorContext
from sdlf_cli.local.runtime.codebuild import BuildRecord, CodeBuildRunner


def _runner_with_one_build(tmp_path) -> tuple[CodeBuildRunner, BuildRecord]:
    runner = CodeBuildRunner(EmulatorContext(host="127.0.0.1", port=1, state_dir=tmp_path))
    record = BuildRecord({"id": "p:1", "buildStatus": "IN_PROGRESS", "phases": [], "timeoutInMinutes": 5})
    runner.records["p:1"] = record
    return runner, record


def test_a_stop_before_the_shell_exists_ends_the_shell_as_it_starts(tmp_path):
    runner, record = _runner_with_one_build(tmp_path)
    assert runner.stop("p:1")

    session = runner._session(record, dict(os.environ), tmp_path, None)

    assert session.process.poll() is not None
    started = time.monotonic()
    result = session.run("sleep 30", time.monotonic() + 60)
    assert time.monotonic() - started < 5 and result.status != 0


def test_a_stop_after_the_shell_exists_ends_it(tmp_path):
    runner, record = _runner_with_one_build(tmp_path)
    session = runner._session(record, dict(os.environ), tmp_path, None)
    assert session.process.poll() is None

    assert runner.stop("p:1")

    assert session.process.poll() is not None
    assert not runner.stop("p:unknown")
