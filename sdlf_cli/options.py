"""Options every command accepts (before or after the command name), parsed once, and what a command gets
from them: the merged `GlobalOptions` as `opts`, the `Lake` as `lake` when it asks for one, and its returned
result printed by `ui.output.emit`, which also picks the exit code."""
from __future__ import annotations

import functools
import inspect
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import click


@dataclass(frozen=True)
class GlobalOptions:
    env: str = "dev"
    profile: str | None = None
    region: str | None = None
    local: bool = False
    endpoint_url: str | None = None
    output: str = "text"
    yes: bool = False
    verbose: int = 0
    parameters_dir: str = "parameters"
    role_arn: str | None = None

    def merged(self, **given) -> "GlobalOptions":
        return replace(self, **{k: v for k, v in given.items() if v not in (None, False, 0)})


@dataclass(frozen=True)
class Invocation:
    """The click context's object: the options given so far, and how a command's `Lake` is built from its
    options (tests pass a factory that returns a lake of their own)."""

    options: GlobalOptions
    make_lake: Callable[[GlobalOptions], Any] | None = None

    def lake(self, opts: GlobalOptions):
        if self.make_lake is not None:
            return self.make_lake(opts)
        from sdlf_cli.lake import Lake

        return Lake.from_options(opts)


_OPTIONS = [
    click.option("--env", "-e", default=None, help="Environment: parameters/<env>.yaml [env SDLF_ENV, default dev]."),
    click.option("--profile", default=None, help="AWS profile."),
    click.option("--region", default=None, help="AWS region (default: the parameters file's)."),
    click.option("--local", is_flag=True, default=False, help="Target the embedded emulator [env SDLF_LOCAL=1]."),
    click.option("--endpoint-url", default=None, help="Send every AWS call to this endpoint [env SDLF_ENDPOINT_URL]."),
    click.option("--output", "-o", type=click.Choice(["text", "json", "csv"]), default=None,
                 help="Output format (csv: for query results; elsewhere as text)."),
    click.option("--yes", "-y", is_flag=True, default=False, help="Answer yes to confirmations."),
    click.option("--verbose", "-v", count=True,
                 help="-v: log what sdlf does (sdlf.*) on stderr; -vv: every AWS call, and a traceback on error."),
    click.option("--parameters-dir", default=None, help="Folder of parameters files (default: parameters)."),
    click.option("--role-arn", default=None, envvar="SDLF_ROLE_ARN",
                 help="Make every AWS call as this role (assumed first) [env SDLF_ROLE_ARN]."),
]

_NAMES = {"env", "profile", "region", "local", "endpoint_url", "output", "yes", "verbose", "parameters_dir", "role_arn"}


def configure_logging(verbose: int) -> None:
    """`sdlf.*` loggers to stderr: INFO at -v, DEBUG at -vv; silent otherwise."""
    logger = logging.getLogger("sdlf")
    if verbose <= 0:
        return
    if not any(getattr(h, "sdlf", False) for h in logger.handlers):
        handler = logging.StreamHandler()
        handler.sdlf = True
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose >= 2 else logging.INFO)


def global_options(f):
    """Adds the shared options to a command; hands it `opts` (and `lake` when its signature asks for one);
    prints what it returns and exits with the result's code."""
    wants_lake = "lake" in inspect.signature(f).parameters

    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        given = {k: kwargs.pop(k) for k in list(kwargs) if k in _NAMES}
        ctx = click.get_current_context()
        invocation = ctx.find_object(Invocation) or Invocation(defaults())
        opts = invocation.options.merged(**given)
        configure_logging(opts.verbose)
        if wants_lake:
            kwargs["lake"] = invocation.lake(opts)
        result = f(*args, opts=opts, **kwargs)
        if result is None:
            return None
        from sdlf_cli.ui.output import emit

        code = emit(result, opts.output)
        if code:
            ctx.exit(code)
        return None

    for option in reversed(_OPTIONS):
        wrapper = option(wrapper)
    return wrapper


def defaults() -> GlobalOptions:
    return GlobalOptions(env=os.environ.get("SDLF_ENV", "dev"))
