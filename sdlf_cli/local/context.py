"""What every part of the embedded emulator needs to know about the running server."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sdlf_cli.cache_dir import cache_dir as project_cache_dir

ACCOUNT_ID = "123456789012"  # moto's default account
DEFAULT_REGION = "us-east-1"
# Whether the emulator enforces the identity policies of the lake's roles unless told otherwise.
IAM_ENFORCED_BY_DEFAULT = True


@dataclass(frozen=True)
class EmulatorContext:
    host: str
    port: int
    state_dir: Path  # pid, port, log and worker scratch space live here
    region: str = DEFAULT_REGION
    account_id: str = ACCOUNT_ID
    iam: bool = IAM_ENFORCED_BY_DEFAULT  # enforce the identity policies of the lake's roles (sdlf_cli.local.iam)
    persist: bool = False  # restore the saved state on start, save every change (sdlf_cli.local.persistence)
    # The project's cache (sdlf_cli.cache_dir: Spark job runs start from the class archive kept there); by default
    # that of the project in the current folder, where `sdlf local up` runs.
    cache_dir: Path = field(default_factory=lambda: project_cache_dir(Path.cwd()))

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"
