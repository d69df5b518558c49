"""The one place a command's result reaches the user: text, or the versioned JSON envelope, and the exit code.

Every command returns its workflow's result; `emit` prints it and answers the exit code (0 when `result.ok`,
else 1). JSON is `{"version": JSON_VERSION, **result.to_dict()}` for every command alike.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any

from sdlf_cli.results import plain

JSON_VERSION = 1


@dataclass(frozen=True)
class Formatted:
    """A result with its own output format (`sdlf query --format`)."""

    result: Any
    output: str


def envelope(result: Any) -> dict:
    return {"version": JSON_VERSION, **plain(result)}


def emit(result: Any, output: str) -> int:
    if isinstance(result, Formatted):
        result, output = result.result, result.output
    from sdlf_cli.ui import text

    if output == "json":
        sys.stdout.write(json.dumps(envelope(result), indent=2, default=str) + "\n")
    elif output == "csv" and hasattr(result, "columns"):
        text.query_csv(result)
    else:
        text.render(result)
    return 0 if getattr(result, "ok", True) else 1


def error(message: str) -> None:
    from sdlf_cli.ui import text

    text.error(message)
