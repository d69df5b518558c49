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


class AwsError(SdlfError):
    """An AWS call failed: names the service, the operation, AWS's error code and its reason."""

    exit_code = 1

    def __init__(self, service: str, operation: str, code: str, message: str):
        self.service = service
        self.operation = operation
        self.code = code
        self.reason = message
        super().__init__(f"AWS call failed: {service} {operation}: {code}: {message}")


class NotFound(AwsError):
    """The resource the call named does not exist."""


class AccessDenied(AwsError):
    """The credentials in use may not make this call (the resource may well exist)."""


class Unreachable(AwsError):
    """No answer from the endpoint (network, endpoint URL, or the emulator is not running)."""

    def __str__(self) -> str:
        return f"AWS call failed: {self.reason}"
