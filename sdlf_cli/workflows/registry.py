"""Reads what the foundations layer published under the lake's SSM prefix."""
from __future__ import annotations

from dataclasses import dataclass

from sdlf_cli.aws.session import Clients
from sdlf_cli.config.model import LakeConfig
from sdlf_cli.errors import UsageError


@dataclass(frozen=True)
class LakeResources:
    values: dict[str, str]  # path below the prefix ("buckets/raw") -> value

    def get(self, path: str) -> str:
        try:
            return self.values[path]
        except KeyError:
            raise UsageError(f"the lake registry has no '{path}'; redeploy foundations") from None

    @property
    def raw_bucket(self) -> str:
        return self.get("buckets/raw")

    @property
    def catalog_table(self) -> str:
        return self.get("tables/catalog")


def lake_resources(cfg: LakeConfig, clients: Clients) -> LakeResources:
    prefix = cfg.names.ssm_prefix
    ssm = clients.client("ssm")
    values: dict[str, str] = {}
    for page in ssm.get_paginator("get_parameters_by_path").paginate(Path=prefix, Recursive=True):
        for param in page["Parameters"]:
            values[param["Name"][len(prefix) + 1 :]] = param["Value"]
    if not values:
        raise UsageError(
            f"foundations are not deployed for env '{cfg.env}' here (nothing under {prefix}); "
            f"run `sdlf deploy foundations --env {cfg.env}` first"
        )
    return LakeResources(values)
