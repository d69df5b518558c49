"""Where commands point: an AWS account (profile/region) or the embedded emulator (endpoint URL)."""
from __future__ import annotations

import os
from pathlib import Path

from sdlf_cli.aws.session import AwsTarget, Clients
from sdlf_cli.config.model import LakeConfig
from sdlf_cli.errors import UsageError

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
) -> AwsTarget:
    endpoint_url = endpoint_url or os.environ.get(ENDPOINT_ENV) or None
    if local_requested(local) and not endpoint_url:
        from sdlf_cli.local import process

        endpoint_url = process.resolve_endpoint(state_dir)
    return AwsTarget(region=region or cfg.region, profile=profile, endpoint_url=endpoint_url)


def check_account(cfg: LakeConfig, clients: Clients) -> str:
    """The account guard: refuse to touch an account the parameters file does not name."""
    account = clients.account_id()
    if cfg.account and account != cfg.account:
        where = cfg.origins.get("account")
        raise UsageError(
            f"{where or 'parameters'}: account: this environment may only be deployed to account "
            f"{cfg.account}, but the credentials in use belong to {account}"
        )
    return account
