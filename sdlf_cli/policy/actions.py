"""Whether an IAM action exists, from the service authorization data cfn-lint ships
(cfnlint/data/AdditionalSpecs/Policies.json: service prefix -> action -> resource types).

A typo in an action is a silent no-op on AWS: the statement grants nothing and nobody is told.
"""
from __future__ import annotations

import fnmatch
from functools import cache

from cfnlint.data import AdditionalSpecs
from cfnlint.helpers import load_resource


@cache
def _services() -> dict[str, dict]:
    return {prefix.lower(): spec for prefix, spec in load_resource(AdditionalSpecs, "Policies.json").items()}


def known(action: str) -> bool:
    """True when `service:Action` names at least one real action (wildcards match any)."""
    if action == "*":
        return True
    service, _, name = action.partition(":")
    actions = _services().get(service.lower(), {}).get("Actions", {})
    if not name:
        return False
    return any(fnmatch.fnmatchcase(a, name.lower()) for a in actions)


def resource_types(action: str) -> list[str]:
    """The resource types an action can be scoped to; [] when it supports only Resource "*"."""
    service, _, name = action.partition(":")
    entry = _services().get(service.lower(), {}).get("Actions", {}).get(name.lower())
    if entry is None:
        raise KeyError(f"unknown IAM action {action!r}")
    return list(entry.get("Resources", []))
