"""`sdlf add-team|add-pipeline|add-dataset`: add the unit to the parameters file, then deploy its stack
(and any parent stack not deployed yet). The addition is validated first (before any AWS call), then the
environment's foundations must already be deployed: both are checked before the file is touched, so a
refused command changes nothing."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sdlf_cli.config import editor
from sdlf_cli.config.loader import load_config
from sdlf_cli.config.model import LakeConfig
from sdlf_cli.errors import UsageError
from sdlf_cli.lake import Lake
from sdlf_cli.workflows.deploy import DeployOutcome, all_layers, deploy_layers


@dataclass(frozen=True)
class Addition:
    kind: str  # team | pipeline | dataset
    team: str
    name: str
    pipeline: str | None = None
    email: str | None = None
    settings: dict[str, Any] | None = None

    def stack_name(self, cfg: LakeConfig) -> str:
        names = cfg.names
        if self.kind == "team":
            return names.team_stack(self.team)
        if self.kind == "pipeline":
            return names.pipeline_stack(self.team, self.name)
        return names.dataset_stack(self.team, self.name)


def require_foundations(lake: Lake) -> None:
    cfg = lake.config
    stack = lake.stacks.describe_stack(cfg.names.foundations_stack())
    if stack is None or not stack.status.endswith("_COMPLETE") or "ROLLBACK" in stack.status:
        state = "not deployed" if stack is None else f"in state {stack.status}"
        raise UsageError(
            f"the foundations of env '{cfg.env}' are {state} on this target; "
            f"run `sdlf deploy foundations --env {cfg.env}` first"
        )


def _edit(path: Path, add: Addition, write: bool = True) -> None:
    if add.kind == "team":
        editor.add_team(path, add.team, email=add.email, write=write)
    elif add.kind == "pipeline":
        editor.add_pipeline(path, add.team, add.name, write=write)
    else:
        editor.add_dataset(path, add.team, add.name, add.pipeline, write=write, **(add.settings or {}))


def add_and_deploy(lake: Lake, parameters_dir: str | Path, add: Addition, reporter,
                   root: Path = Path(".")) -> DeployOutcome:
    cfg = lake.config
    path = Path(parameters_dir) / f"{cfg.env}.yaml"
    _edit(path, add, write=False)
    require_foundations(lake)
    _edit(path, add)
    lake = lake.with_config(load_config(cfg.env, parameters_dir))
    cfg = lake.config
    return deploy_layers(lake, reporter, all_layers(cfg, root), root=root, only={add.stack_name(cfg)})
