"""What `sdlf local up/down/status` print: running, stopped by this call, or not running at all."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from sdlf_cli.local.process import EmulatorStatus
from sdlf_cli.ui.text import render

STATE = Path("/lake/.sdlf/local")
IDLE = EmulatorStatus(False, None, None, None, STATE / "emulator.log", None, STATE)


@pytest.mark.parametrize("status, said", [
    (replace(IDLE, running=True, pid=41, port=4566, endpoint_url="http://127.0.0.1:4566", uptime=3.0),
     f"emulator running: http://127.0.0.1:4566 (pid 41, log {STATE / 'emulator.log'})"),
    (replace(IDLE, stopped=41, saved_state=f"state saved in {STATE}"), f"emulator stopped (pid 41)\nstate saved in {STATE}"),
    (IDLE, "emulator not running"),
])
def test_each_state_says_what_it_is(status, said, capsys):
    render(status)

    assert capsys.readouterr().out.strip() == said


def test_the_stopped_pid_is_in_the_json():
    assert replace(IDLE, stopped=41).to_dict()["stopped"] == 41 and IDLE.to_dict()["stopped"] is None
