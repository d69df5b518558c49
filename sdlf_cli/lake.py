"""The composition root: one `Lake` per command, holding what every workflow needs.

The click group builds it from the global options (tests build one from a configuration and a client factory
of their own); workflows take it as their first argument. Everything in it is built lazily and once: the
configuration on first use, the target (and with it the check that the emulator runs) only when a gateway is
first needed, the registry on its first read. So arguments and the parameters files are validated before any
AWS call, and no workflow builds a client or reads the registry twice.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING

from sdlf_cli.errors import UsageError

if TYPE_CHECKING:
    from sdlf_cli.aws.session import AwsTarget, Clients
    from sdlf_cli.config.model import LakeConfig
    from sdlf_cli.options import GlobalOptions
    from sdlf_cli.registry import Registry

log = logging.getLogger("sdlf.lake")


class Lake:
    def __init__(self, config: "LakeConfig | Callable[[], LakeConfig]",
                 clients: "Clients | Callable[[LakeConfig], Clients]"):
        self._config = config
        self._clients = clients

    @classmethod
    def from_options(cls, opts: "GlobalOptions") -> "Lake":
        from sdlf_cli.aws.session import Clients
        from sdlf_cli.config.loader import load_config
        from sdlf_cli.workflows.target import resolve_target

        def clients(cfg: "LakeConfig") -> Clients:
            return Clients(resolve_target(cfg, profile=opts.profile, region=opts.region,
                                          endpoint_url=opts.endpoint_url, local=opts.local, role_arn=opts.role_arn))

        return cls(lambda: load_config(opts.env, opts.parameters_dir), clients)

    def at_endpoint(self, endpoint_url: str) -> "Lake":
        """The same configuration, every call sent to `endpoint_url` (the emulator `sdlf demo` starts)."""
        from sdlf_cli.aws.session import Clients
        from sdlf_cli.workflows.target import resolve_target

        return Lake(self.config, Clients(resolve_target(self.config, endpoint_url=endpoint_url)))

    def with_config(self, config: "LakeConfig") -> "Lake":
        """The same target (and clients) with another configuration, e.g. after the parameters file changed."""
        return Lake(config, self.clients if "clients" in self.__dict__ else self._clients)

    # --- configuration and target ----------------------------------------------------------------------
    @cached_property
    def config(self) -> "LakeConfig":
        return self._config() if callable(self._config) else self._config

    @cached_property
    def clients(self) -> "Clients":
        clients = self._clients(self.config) if callable(self._clients) else self._clients
        target = clients.target
        log.info("target: region %s, %s", target.region,
                 f"endpoint {target.endpoint_url}" if target.endpoint_url else f"profile {target.profile or '(default)'}")
        return clients

    @property
    def target(self) -> "AwsTarget":
        return self.clients.target

    def _client(self, service: str):
        return self.clients.client(service)

    # --- gateways ---------------------------------------------------------------------------------------
    @cached_property
    def stacks(self):
        from sdlf_cli.aws.cloudformation import CloudFormationGateway

        return CloudFormationGateway(self._client("cloudformation"))

    @cached_property
    def queues(self):
        from sdlf_cli.aws.queues import Queues

        return Queues(self._client("sqs"))

    @cached_property
    def tables(self):
        from sdlf_cli.aws.tables import Tables

        return Tables(self._client("dynamodb"))

    @cached_property
    def storage(self):
        from sdlf_cli.aws.storage import Storage

        return Storage(self._client("s3"))

    @cached_property
    def parameters(self):
        from sdlf_cli.aws.parameters import Parameters

        return Parameters(self._client("ssm"))

    @cached_property
    def athena(self):
        from sdlf_cli.aws.athena import Athena

        return Athena(self._client("athena"))

    @cached_property
    def glue(self):
        from sdlf_cli.aws.glue import GlueCatalog

        return GlueCatalog(self._client("glue"))

    @cached_property
    def functions(self):
        from sdlf_cli.aws.functions import INVOKE_READ_TIMEOUT, Functions

        return Functions(self._client("lambda"), self.clients.client("lambda", read_timeout=INVOKE_READ_TIMEOUT))

    @cached_property
    def state_machines(self):
        from sdlf_cli.aws.state_machines import StateMachines

        return StateMachines(self._client("stepfunctions"))

    @cached_property
    def keys(self):
        from sdlf_cli.aws.keys import Keys

        return Keys(self._client("kms"))

    @cached_property
    def pipelines(self):
        from sdlf_cli.aws.pipelines import Pipelines

        return Pipelines(self._client("codepipeline"))

    @cached_property
    def builds(self):
        from sdlf_cli.aws.pipelines import Builds

        return Builds(self._client("codebuild"))

    @cached_property
    def build_logs(self):
        from sdlf_cli.aws.pipelines import BuildLogs

        return BuildLogs(self._client("logs"))

    @cached_property
    def identity(self):
        from sdlf_cli.aws.identity import Identity

        return Identity(self._client("sts"))

    # --- the registry -----------------------------------------------------------------------------------
    @cached_property
    def registry(self) -> "Registry":
        """What the lake's stacks published under the SSM prefix, read once."""
        from sdlf_cli.registry import Registry

        prefix = self.config.names.ssm_prefix
        values = self.parameters.below(prefix)
        log.info("registry: %d value(s) under %s", len(values), prefix)
        if not values:
            raise UsageError(
                f"foundations are not deployed for env '{self.config.env}' here (nothing under {prefix}); "
                f"run `sdlf deploy foundations --env {self.config.env}` first"
            )
        return Registry(values)

    def account(self) -> str:
        """The account of the credentials in use; refuses one the parameters file does not name."""
        cfg = self.config
        account = self.identity.account_id()
        if cfg.account and account != cfg.account:
            where = cfg.origins.get("account")
            raise UsageError(
                f"{where or 'parameters'}: account: this environment may only be deployed to account "
                f"{cfg.account}, but the credentials in use belong to {account}"
            )
        return account
