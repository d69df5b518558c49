"""User-facing errors. Each carries the exit code the CLI returns for it."""
from __future__ import annotations

from dataclasses import dataclass


class SdlfError(Exception):
    """An error the user can act on; printed without a traceback."""

    exit_code = 1


class UsageError(SdlfError):
    exit_code = 2


@dataclass(frozen=True)
class Problem:
    """One finding in a configuration file: where it is and what was expected."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.field}: {self.message}"


class ConfigError(SdlfError):
    exit_code = 2

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class RenderError(SdlfError):
    exit_code = 2


class DeployError(SdlfError):
    exit_code = 1
