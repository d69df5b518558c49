"""The configuration model: one lake (org, app, env) with its teams, pipelines and datasets.

Loaded from `parameters/<env>.yaml` (over an optional `parameters/base.yaml`) by `config.loader`;
validated before any AWS call. Everything downstream (render, plan, deploy) reads only this model.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

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
class Batch:
    """How many objects one stage-B batch takes: it starts from `min_items` waiting, takes at most `max_items`."""

    min_items: int = 1
    max_items: int = 100


@dataclass(frozen=True, eq=False)
class DatasetSettings(Mapping):
    """A dataset's settings, typed and frozen, every one filled in (the validator starts from these defaults).

    Also a read-only mapping of the plain values the dataset's registration JSON holds
    (`settings["batch"]["min_items"]`), which is how templates and `config show` read it.
    """

    transform: str = "default"  # stage-A light transform
    engine: str = "python"  # stage-B engine: python | spark
    schedule: str = "rate(5 minutes)"  # stage-B schedule expression
    batch: Batch = field(default_factory=Batch)
    partition_by: tuple[str, ...] = ("ingestion_date",)
    quality: tuple[dict, ...] = ()  # data-quality rules as validated: {"rule": ..., "severity": ..., ...}
    # Stage B as resolved by config/heavy_transform.py: transform kind and script, output tables, Glue
    # settings; None: the batch as it is, one table named after the dataset, default Glue settings.
    stage_b: Mapping[str, Any] | None = None

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "DatasetSettings":
        unknown = sorted(set(values) - set(SETTING_NAMES))
        if unknown:
            raise TypeError(f"unknown dataset setting(s) {', '.join(unknown)}; expected: {', '.join(SETTING_NAMES)}")
        given = dict(values)
        if "batch" in given and not isinstance(given["batch"], Batch):
            given["batch"] = Batch(**given["batch"])
        if "partition_by" in given:
            given["partition_by"] = tuple(given["partition_by"])
        if "quality" in given:
            given["quality"] = tuple(dict(rule) for rule in given["quality"])
        return cls(**given)

    def to_dict(self) -> dict[str, Any]:
        return {"transform": self.transform, "engine": self.engine, "schedule": self.schedule,
                "batch": {"min_items": self.batch.min_items, "max_items": self.batch.max_items},
                "partition_by": list(self.partition_by), "quality": [dict(rule) for rule in self.quality],
                "stage_b": self.stage_b}

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(SETTING_NAMES)

    def __len__(self) -> int:
        return len(SETTING_NAMES)


SETTING_NAMES = ("transform", "engine", "schedule", "batch", "partition_by", "quality", "stage_b")


@dataclass(frozen=True)
class Dataset:
    name: str
    team: str
    pipeline: str
    description: str = ""
    settings: DatasetSettings = field(default_factory=DatasetSettings, hash=False, compare=False)


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
    # Lake Formation data lake administrators; none given: the principal that deploys (see workflows/deploy.py).
    lake_formation_admins: tuple[str, ...] = ()
    # CloudFormation termination protection of every stack of the environment; None leaves stacks as they are.
    termination_protection: bool | None = None
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

    def dataset(self, team: str, name: str) -> Dataset | None:
        unit = self.team(team)
        return next((d for d in unit.datasets if d.name == name), None) if unit else None
