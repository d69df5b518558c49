"""`sdlf demo`: start the embedded emulator, deploy the lake, ingest the bundled samples, show the catalog."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from sdlf_cli.aws.session import Clients
from sdlf_cli.config.loader import load_config
from sdlf_cli.workflows.deploy import DeployOutcome, deploy_layers
from sdlf_cli.workflows.ingest import Tracked, ingest_and_track
from sdlf_cli.workflows.target import resolve_target

SAMPLES = Path("samples")
DEMO_TEAM = "engineering"
DEMO_DATASET = "legislators"


@dataclass
class DemoResult:
    endpoint_url: str
    deploy: DeployOutcome
    tracked: list[Tracked] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.deploy.ok and bool(self.tracked) and all(t.row for t in self.tracked)

    def to_dict(self) -> dict:
        return {
            "version": 1,
            "ok": self.ok,
            "endpoint_url": self.endpoint_url,
            "seconds": round(self.seconds, 2),
            "deploy": self.deploy.to_dict(),
            "objects": [{"uri": t.ingested.uri, "row": t.row} for t in self.tracked],
        }


def sample_files(root: Path = Path(".")) -> list[Path]:
    return sorted(p for p in (root / SAMPLES / DEMO_TEAM / DEMO_DATASET).iterdir() if p.is_file())


def run_demo(env: str, parameters_dir: str, reporter, root: Path = Path(".")) -> DemoResult:
    from sdlf_cli.local import process

    started = time.monotonic()
    status = process.up(None)
    cfg = load_config(env, parameters_dir)
    clients = Clients(resolve_target(cfg, endpoint_url=status.endpoint_url))
    outcome = deploy_layers(cfg, clients, reporter, ["foundations"], root=root)
    result = DemoResult(status.endpoint_url, outcome)
    if outcome.ok:
        result.tracked = ingest_and_track(cfg, clients, sample_files(root), DEMO_TEAM, DEMO_DATASET)
    result.seconds = time.monotonic() - started
    return result
