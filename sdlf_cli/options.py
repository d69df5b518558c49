"""Options every command accepts (before or after the command name), parsed once."""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass, replace

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

    def merged(self, **given) -> "GlobalOptions":
        return replace(self, **{k: v for k, v in given.items() if v not in (None, False, 0)})


_OPTIONS = [
    click.option("--env", "-e", default=None, help="Environment: parameters/<env>.yaml [env SDLF_ENV, default dev]."),
    click.option("--profile", default=None, help="AWS profile."),
    click.option("--region", default=None, help="AWS region (default: the parameters file's)."),
    click.option("--local", is_flag=True, default=False, help="Target the embedded emulator [env SDLF_LOCAL=1]."),
    click.option("--endpoint-url", default=None, help="Send every AWS call to this endpoint [env SDLF_ENDPOINT_URL]."),
    click.option("--output", "-o", type=click.Choice(["text", "json", "csv"]), default=None,
                 help="Output format (csv: for query results; elsewhere as text)."),
    click.option("--yes", "-y", is_flag=True, default=False, help="Answer yes to confirmations."),
    click.option("--verbose", "-v", count=True, help="More detail (repeatable)."),
    click.option("--parameters-dir", default=None, help="Folder of parameters files (default: parameters)."),
]


def global_options(f):
    """Adds the shared options to a command and hands it the merged GlobalOptions as `opts`."""

    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        given = {k: kwargs.pop(k) for k in list(kwargs) if k in _NAMES}
        ctx = click.get_current_context()
        base = ctx.find_object(GlobalOptions) or defaults()
        return f(*args, opts=base.merged(**given), **kwargs)

    for option in reversed(_OPTIONS):
        wrapper = option(wrapper)
    return wrapper


_NAMES = {"env", "profile", "region", "local", "endpoint_url", "output", "yes", "verbose", "parameters_dir"}


def defaults() -> GlobalOptions:
    return GlobalOptions(env=os.environ.get("SDLF_ENV", "dev"))
