"""Builds boto3 clients for one target (an AWS account, or the embedded emulator).

Every client the CLI makes comes from `Clients.client()`, so `--profile`, `--region` and
`--endpoint-url`/`--local` reach CloudFormation, S3, SSM, STS and the rest alike.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, cached_property

import boto3
import botocore.loaders
import botocore.session
from botocore.config import Config

# Credentials the emulator accepts; never valid on AWS.
LOCAL_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


# How long assumed-role credentials last: long enough for a full deploy of the lake.
ASSUMED_SESSION_SECONDS = 3600


@dataclass(frozen=True)
class AwsTarget:
    region: str
    profile: str | None = None
    endpoint_url: str | None = None
    # Every call is made as this role (assumed with the profile's or the environment's credentials).
    role_arn: str | None = None

    @property
    def is_local(self) -> bool:
        return self.endpoint_url is not None


class _SearchPaths(list):
    """boto3 adds its own data folder to the loader of every session it makes: once is enough for a shared one."""

    def append(self, path: str) -> None:
        if path not in self:
            super().append(path)


@cache
def shared_loader() -> botocore.loaders.Loader:
    """One loader of botocore's service models for every session this process makes. Each new session would
    read and parse the models (JSON of several MB for DynamoDB, S3, CloudFormation) again: a `--role-arn` run
    made two sessions, and each test and workflow its own. AWS_DATA_PATH is honoured as botocore does."""
    data_path = os.environ.get("AWS_DATA_PATH")
    extra = [os.path.expanduser(os.path.expandvars(p)) for p in data_path.split(os.pathsep)] if data_path else []
    return botocore.loaders.Loader(extra_search_paths=_SearchPaths(extra))


def share_models_with_every_session() -> Callable[[], None]:
    """From now on every botocore session of this process reads the models from `shared_loader()`, unless it has
    a data path of its own (AWS_DATA_PATH or its `data_path` setting: then its own loader, as botocore does). For
    processes whose libraries make sessions of their own: the emulator (moto makes one per service it serves, to
    list that service's regions: 0.4 of the 1.8 s of CPU `sdlf local up` took to start) and the tests (moto's
    `mock_aws` makes one per test). Returns what undoes it."""
    original = botocore.session.Session._register_data_loader

    def register_data_loader(session: botocore.session.Session) -> None:
        def loader() -> botocore.loaders.Loader:
            data_path = session.get_config_variable("data_path")
            return botocore.loaders.create_loader(data_path) if data_path else shared_loader()

        session._components.lazy_register_component("data_loader", loader)

    botocore.session.Session._register_data_loader = register_data_loader

    def undo() -> None:
        botocore.session.Session._register_data_loader = original

    return undo


def new_session(**kwargs) -> boto3.session.Session:
    """A boto3 session (credentials, profile, region as `boto3.session.Session` takes them) sharing the
    process's loaded service models (and User-Agent components sanitized once: sdlf_cli.aws.user_agent)."""
    from sdlf_cli.aws.user_agent import sanitized_once

    sanitized_once()
    core = botocore.session.get_session()
    core.register_component("data_loader", shared_loader())
    return boto3.session.Session(botocore_session=core, **kwargs)


class Clients:
    """Client factory with an injectable boto3 session (tests pass their own)."""

    def __init__(self, target: AwsTarget, session: boto3.session.Session | None = None):
        self.target = target
        self._session = session
        self._cache: dict[str, object] = {}

    @cached_property
    def session(self) -> boto3.session.Session:
        if self._session is not None:
            return self._session
        base = self._base_session()
        if not self.target.role_arn:
            return base
        return self._assumed(base, self.target.role_arn)

    def _assumed(self, base: boto3.session.Session, role_arn: str) -> boto3.session.Session:
        """A session with the credentials of `role_arn`, assumed through the same endpoint as every other call."""
        from botocore.exceptions import BotoCoreError, ClientError

        from sdlf_cli.errors import SdlfError

        kwargs = {"region_name": self.target.region}
        if self.target.endpoint_url:
            kwargs["endpoint_url"] = self.target.endpoint_url
        try:
            credentials = base.client("sts", **kwargs).assume_role(
                RoleArn=role_arn, RoleSessionName="sdlf", DurationSeconds=ASSUMED_SESSION_SECONDS)["Credentials"]
        except (BotoCoreError, ClientError) as err:
            raise SdlfError(f"--role-arn {role_arn}: cannot assume the role: {err}") from err
        return new_session(
            aws_access_key_id=credentials["AccessKeyId"], aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"], region_name=self.target.region)

    def _base_session(self) -> boto3.session.Session:
        if self.target.is_local and not self.target.profile:
            creds = dict(LOCAL_CREDENTIALS)
            if os.environ.get("AWS_ACCESS_KEY_ID"):
                # Keys the environment gives (a build or a function acting as its role on the emulator) come
                # with their session token; without it the emulator, as AWS, refuses assumed-role keys.
                creds = {"aws_access_key_id": os.environ["AWS_ACCESS_KEY_ID"],
                         "aws_secret_access_key": os.environ.get("AWS_SECRET_ACCESS_KEY",
                                                                 LOCAL_CREDENTIALS["aws_secret_access_key"]),
                         "aws_session_token": os.environ.get("AWS_SESSION_TOKEN") or None}
            return new_session(region_name=self.target.region, **creds)
        return new_session(profile_name=self.target.profile, region_name=self.target.region)

    def client(self, service: str, *, read_timeout: float | None = None):
        """The service's client, one per service (its threads share it, so they back off together).

        `read_timeout`: for calls that run as long as the work they start (a synchronous Lambda invoke lasts
        up to the function's timeout, past botocore's 60 s): such a client waits that long and never retries,
        since a retried invoke would run the function a second time while the first still runs."""
        key = service if read_timeout is None else f"{service}@{read_timeout}"
        if key not in self._cache:
            # AWS throttles control-plane calls under load, so retry generously there; the emulator never
            # throttles, and an unreachable one should fail fast instead of backing off for a minute.
            retries = {"max_attempts": 3, "mode": "standard"} if self.target.is_local else {
                "max_attempts": 10, "mode": "adaptive"}
            config = Config(retries=retries) if read_timeout is None else Config(
                read_timeout=read_timeout, retries={"total_max_attempts": 1, "mode": "standard"})
            kwargs = {"region_name": self.target.region, "config": config}
            if self.target.endpoint_url:
                kwargs["endpoint_url"] = self.target.endpoint_url
            self._cache[key] = self.session.client(service, **kwargs)
        return self._cache[key]
