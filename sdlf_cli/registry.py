"""The lake's registry: what the stacks publish under the SSM prefix `/sdlf/<org>/<app>/<env>/`, and the
one place its keys are spelled.

Templates name their parameters through `names.ssm(registry.<key>(...))` (the render context carries this
module as `registry`), workflows read them through `Registry`, and the Lambda layer, which cannot import
the CLI, spells the few keys it reads in `sdlf_datalake.registry`; tests/unit/test_registry_keys.py checks
that both spellings agree.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from sdlf_cli.errors import UsageError

# --- the keys, relative to the prefix -----------------------------------------------------------------
# What foundations publishes (lake-wide), what each team stack publishes under teams/<team>/, and what each
# pipeline stack publishes under pipelines/<team>/<pipeline>/. A key outside these is a typo: the functions
# below refuse it, so a template naming it fails to render.
LAKE_KEYS = (
    "kms/key-arn",
    "buckets/raw", "buckets/stage", "buckets/analytics", "buckets/athena", "buckets/logs",
    "tables/catalog", "tables/executions", "tables/quality",
    "topics/notifications", "athena/workgroup",
    "queues/catalog", "queues/catalog-dlq",
    "functions/catalog", "layers/datalake",
)
TEAM_KEYS = (
    "kms-key-arn", "lambda-role-arn", "states-role-arn", "glue-role-arn", "topic-arn", "workgroup", "glue-database",
    "permissions-boundary-arn", "glue-security-configuration",
)
PIPELINE_KEYS = (
    "queue-a-url", "queue-a-arn", "dlq-a-url", "state-machine-a-arn", "routing-b-arn", "state-machine-b-arn",
    "dlq-routing-b-url",
)
# Dataset registrations: one JSON String per dataset, below this folder (the Lambda layer reads them).
DATASETS = "datasets"


def _known(key: str, known: tuple[str, ...], where: str) -> str:
    if key not in known:
        raise ValueError(f"{key!r} is not a registry key {where}; known: {', '.join(known)}")
    return key


def lake(key: str) -> str:
    """A lake-wide key, e.g. `kms/key-arn`."""
    return _known(key, LAKE_KEYS, "of the lake")


def bucket(kind: str) -> str:
    """`raw`, `stage`, `analytics`, `athena`, `logs`."""
    return lake(f"buckets/{kind}")


def table(kind: str) -> str:
    """`catalog`, `executions`, `quality`, `datasets`, `pipelines`."""
    return lake(f"tables/{kind}")


CATALOG_QUEUE = lake("queues/catalog")
CATALOG_DLQ = lake("queues/catalog-dlq")


def team(team_name: str, key: str) -> str:
    return f"teams/{team_name}/{_known(key, TEAM_KEYS, 'of a team')}"


def pipeline(team_name: str, pipeline_name: str, key: str) -> str:
    return f"pipelines/{team_name}/{pipeline_name}/{_known(key, PIPELINE_KEYS, 'of a pipeline')}"


def stage_a_queue(team_name: str, pipeline_name: str) -> str:
    return pipeline(team_name, pipeline_name, "queue-a-url")


def stage_a_dlq(team_name: str, pipeline_name: str) -> str:
    return pipeline(team_name, pipeline_name, "dlq-a-url")


def routing_b(team_name: str, pipeline_name: str) -> str:
    return pipeline(team_name, pipeline_name, "routing-b-arn")


def routing_b_dlq(team_name: str, pipeline_name: str) -> str:
    return pipeline(team_name, pipeline_name, "dlq-routing-b-url")


def dataset(team_name: str, dataset_name: str) -> str:
    """A dataset's registration (pipeline, transform, stage-B queues, ...)."""
    return f"{DATASETS}/{team_name}/{dataset_name}"


# --- reading it -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Registry:
    """Everything published under the prefix, read once: key ("buckets/raw") -> value."""

    values: dict[str, str]

    def get(self, key: str) -> str:
        try:
            return self.values[key]
        except KeyError:
            raise UsageError(f"the lake registry has no '{key}'; redeploy foundations") from None

    def find(self, key: str) -> str | None:
        return self.values.get(key)

    @property
    def raw_bucket(self) -> str:
        return self.get(bucket("raw"))

    def table(self, kind: str) -> str:
        return self.get(table(kind))

    @property
    def catalog_table(self) -> str:
        return self.table("catalog")

    def pipelines(self) -> set[tuple[str, str]]:
        """(team, pipeline) of every pipeline that published something."""
        return {(parts[1], parts[2]) for parts in self._split() if len(parts) == 4 and parts[0] == "pipelines"}

    def datasets(self) -> set[tuple[str, str]]:
        """(team, dataset) of every registered dataset."""
        return {(parts[1], parts[2]) for parts in self._split() if len(parts) == 3 and parts[0] == "datasets"}

    def registration(self, team_name: str, dataset_name: str) -> dict | None:
        """A dataset's registration, or None when it is not registered (or not a JSON object)."""
        raw = self.values.get(dataset(team_name, dataset_name))
        if raw is None:
            return None
        try:
            value = json.loads(raw)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    def _split(self) -> list[list[str]]:
        return [key.split("/") for key in self.values]
