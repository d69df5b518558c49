"""Assumed-role credentials of the lake's roles, as the Lambda, Glue and Step Functions services get them.

The emulator's own parts (the service side) assume the role with the account's root keys, so the role's
trust policy is not evaluated; what the role's code then does is signed with the role's keys.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

LOG = logging.getLogger(__name__)
ROOT_KEYS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
REFRESH_AFTER_S = 45 * 60  # STS keys last an hour by default; renew well before


@dataclass(frozen=True)
class RoleKeys:
    access_key_id: str
    secret_access_key: str
    session_token: str

    def environment(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": self.access_key_id, "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
                "AWS_SESSION_TOKEN": self.session_token}

    def client_kwargs(self) -> dict[str, str]:
        return {"aws_access_key_id": self.access_key_id, "aws_secret_access_key": self.secret_access_key,
                "aws_session_token": self.session_token}


class RoleCredentials:
    """One cache per emulator: role ARN -> keys, renewed after REFRESH_AFTER_S."""

    def __init__(self, endpoint_url: str, region: str, account_id: str = "123456789012"):
        self.endpoint_url = endpoint_url
        self.region = region
        self.account_id = account_id
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str], tuple[float, RoleKeys]] = {}
        self._sts: Any = None  # one client (they are thread-safe): every run and crawl assumes its role anew

    def for_role(self, role_arn: str, session_name: str) -> RoleKeys:
        if role_arn and not role_arn.startswith("arn:") and "/" not in role_arn:
            role_arn = f"arn:aws:iam::{self.account_id}:role/{role_arn}"  # Glue takes a role name too
        if not role_arn or ":role/" not in role_arn:
            raise ValueError(f"not an IAM role ARN: {role_arn!r}")
        key = (role_arn, session_name)
        with self._lock:
            cached = self._cache.get(key)
            if cached and time.monotonic() - cached[0] < REFRESH_AFTER_S:
                return cached[1]
        if self._sts is None:
            import boto3

            self._sts = boto3.client("sts", endpoint_url=self.endpoint_url, region_name=self.region, **ROOT_KEYS)
        found = self._sts.assume_role(RoleArn=role_arn, RoleSessionName=session_name[:64])["Credentials"]
        keys = RoleKeys(found["AccessKeyId"], found["SecretAccessKey"], found["SessionToken"])
        with self._lock:
            self._cache[key] = (time.monotonic(), keys)
        return keys


_active: dict[str, RoleCredentials] = {}


def install(endpoint_url: str, region: str, account_id: str) -> RoleCredentials:
    credentials = RoleCredentials(endpoint_url, region, account_id)
    _active["credentials"] = credentials
    return credentials


def uninstall(credentials: RoleCredentials) -> None:
    if _active.get("credentials") is credentials:
        _active.pop("credentials")


def active() -> RoleCredentials | None:
    return _active.get("credentials")


def role_keys(role_arn: str | None, session_name: str) -> RoleKeys | None:
    """The role's keys; None (act as the emulator's root) when there is no role to assume and IAM is not
    enforced. With enforcement on, a role that cannot be assumed is an error, as on AWS."""
    from sdlf_cli.local.iam import enforcement

    credentials = active()
    if credentials is None:
        return None
    try:
        return credentials.for_role(role_arn or "", session_name)
    except Exception as exc:
        if enforcement.enforced():
            raise RuntimeError(f"cannot assume role {role_arn!r}: {exc}") from exc
        LOG.debug("acting as root for %s: role %r not assumable (%s)", session_name, role_arn, exc)
        return None


def role_environment(role_arn: str | None, session_name: str) -> dict[str, str]:
    keys = role_keys(role_arn, session_name)
    return keys.environment() if keys is not None else {}


class ServiceClients:
    """Clients of an emulated service's own side (Glue jobs, crawlers): as the emulator's root - made once per
    service, boto3 clients being thread-safe - or acting as a role for one run (its session), as the service does
    with the role it was given."""

    def __init__(self, endpoint_url: str, region: str):
        self.endpoint_url = endpoint_url
        self.region = region
        self._own: dict[str, Any] = {}

    def client(self, service: str, role: str | None = None, session: str = "") -> Any:
        import boto3

        keys = role_keys(role, session) if role else None
        if keys is not None:
            return boto3.client(service, endpoint_url=self.endpoint_url, region_name=self.region,
                                **keys.client_kwargs())
        made = self._own.get(service)
        if made is None:
            made = self._own[service] = boto3.client(service, endpoint_url=self.endpoint_url,
                                                     region_name=self.region, **ROOT_KEYS)
        return made
