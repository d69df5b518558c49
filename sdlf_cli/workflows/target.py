"""Where commands point: an AWS account (profile/region) or the embedded emulator (endpoint URL)."""
from __future__ import annotations

import os
from pathlib import Path

from sdlf_cli.aws.session import AwsTarget
from sdlf_cli.config.model import LakeConfig

LOCAL_ENV = "SDLF_LOCAL"
ENDPOINT_ENV = "SDLF_ENDPOINT_URL"


def local_requested(flag: bool) -> bool:
    return flag or os.environ.get(LOCAL_ENV, "").lower() in ("1", "true", "yes")


def resolve_target(
    cfg: LakeConfig,
    *,
    profile: str | None = None,
    region: str | None = None,
    endpoint_url: str | None = None,
    local: bool = False,
    state_dir: Path | None = None,
    role_arn: str | None = None,
) -> AwsTarget:
    endpoint_url = endpoint_url or os.environ.get(ENDPOINT_ENV) or None
    if local_requested(local) and not endpoint_url:
        from sdlf_cli.local import process

        endpoint_url = process.resolve_endpoint(state_dir)
    return AwsTarget(region=region or cfg.region, profile=profile, endpoint_url=endpoint_url, role_arn=role_arn or None)

