"""One embedded emulator per test process: moto's backends are process-global, so two would share state."""
import pytest

from sdlf_cli.local.context import EmulatorContext
from sdlf_cli.local.server import free_port, start


@pytest.fixture(scope="session")
def emulator(tmp_path_factory):
    ctx = EmulatorContext(host="127.0.0.1", port=free_port(), state_dir=tmp_path_factory.mktemp("emulator"))
    running = start(ctx)
    yield running
    running.stop()
