"""What workflows return: objects with `.ok` and `.to_dict()`; `sdlf_cli.ui.output.emit` prints any of them as
text or as the versioned JSON envelope and picks the exit code.

Most results are dataclasses of their own (DeployOutcome, RedriveResult, ...). A workflow whose answer is a list
of rows returns a `Listing` subclass instead: still a list (callers iterate and compare it as one), whose
`key` names the list in the JSON envelope.
"""
from __future__ import annotations

import dataclasses
from typing import Any


def plain(item: Any) -> Any:
    """A result's item as JSON-friendly data."""
    if hasattr(item, "to_dict"):
        return item.to_dict()
    if dataclasses.is_dataclass(item) and not isinstance(item, type):
        return dataclasses.asdict(item)
    return item


class Listing(list):
    """A list of rows as a result: always ok, `{key: [rows]}` in JSON."""

    key = "items"

    @property
    def ok(self) -> bool:
        return True

    def to_dict(self) -> dict:
        return {self.key: [plain(item) for item in self]}
