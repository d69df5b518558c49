"""One embedded emulator per test process: moto's backends are process-global, so two would share state."""
import pytest

from sdlf_cli.local.context import EmulatorContext
from sdlf_cli.local.server import PortUnavailable, free_port, start

PORT_ATTEMPTS = 5


@pytest.fixture(scope="session")
def emulator(tmp_path_factory):
    state_dir = tmp_path_factory.mktemp("emulator")
    for attempt in range(1, PORT_ATTEMPTS + 1):
        # Another process (the other test worker, anything on the machine) may take the free port before the
        # emulator binds it: take another one.
        try:
            running = start(EmulatorContext(host="127.0.0.1", port=free_port(), state_dir=state_dir))
            break
        except PortUnavailable:
            if attempt == PORT_ATTEMPTS:
                raise
    yield running
    running.stop()
