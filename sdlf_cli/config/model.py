"""The configuration model: one lake (org, app, env) with its teams, pipelines and datasets.

Loaded from `parameters/<env>.yaml` (over an optional `parameters/base.yaml`) by `config.loader`;
validated before any AWS call. Everything downstream (render, plan, deploy) reads only this model.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sdlf_cli.naming import Names

if TYPE_CHECKING:
    from sdlf_cli.config.cicd import CicdConfig


@dataclass(frozen=True)
class Origin:
    """Where a resolved value came from (for `sdlf config show`)."""

    file: str
    line: int | None

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


@dataclass(frozen=True)
class Pipeline:
    name: str
    team: str
    description: str = ""


@dataclass(frozen=True)
class Dataset:
    name: str
    team: str
    pipeline: str
    description: str = ""
    # Later issues read these (transform, batching, schedule, partitioning, quality rules).
    settings: dict = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class Team:
    name: str
    notification_email: str | None = None
    pipelines: tuple[Pipeline, ...] = ()
    datasets: tuple[Dataset, ...] = ()


@dataclass(frozen=True)
class LakeConfig:
    org: str
    app: str
    env: str
    region: str
    account: str | None = None  # deploy refuses any other account when set
    notification_email: str | None = None
    lake_formation: bool = False
    # CloudWatch Logs retention of the lake's functions and state machines.
    log_retention_days: int = 90
    teams: tuple[Team, ...] = ()
    # The delivery pipeline (templates/cicd/), when the parameters declare one.
    cicd: CicdConfig | None = None
    # dotted field path -> Origin, for `config show`
    origins: dict = field(default_factory=dict, hash=False, compare=False)
    # files the configuration was read from, base first
    files: tuple[str, ...] = ()

    @property
    def names(self) -> Names:
        return Names(self.org, self.app, self.env)

    def team(self, name: str) -> Team | None:
        return next((t for t in self.teams if t.name == name), None)
