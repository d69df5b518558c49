"""The checks every section of a parameters file is made of: name rules, and a `Checker` that reads one node
as the type expected and records a `file:line: field: message` problem when it is not."""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sdlf_cli.config.tree import Node, format_path
from sdlf_cli.errors import Problem


# --- name rules ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class NameRule:
    pattern: str
    describe: str
    min_len: int
    max_len: int

    def problem(self, value: str) -> str | None:
        """None when `value` obeys the rule, else the message saying what was expected."""
        if re.fullmatch(self.pattern, value) and self.min_len <= len(value) <= self.max_len:
            return None
        return f"expected {self.describe}, {self.min_len}-{self.max_len} characters, got {value!r}"


_LOWER = "lowercase letters and digits starting with a letter"
_LOWER_US = "lowercase letters, digits and underscores starting with a letter"
ORG_RULE = NameRule(r"[a-z][a-z0-9]*", _LOWER, 2, 8)
APP_RULE = ORG_RULE
ENV_RULE = NameRule(r"[a-z][a-z0-9]*", _LOWER, 2, 7)
TEAM_RULE = NameRule(r"[a-z][a-z0-9]*", _LOWER, 2, 12)
PIPELINE_RULE = TEAM_RULE
DATASET_RULE = NameRule(r"[a-z][a-z0-9_]*", _LOWER_US, 2, 32)
TRANSFORM_RULE = NameRule(r"[a-z][a-z0-9_]*", _LOWER_US, 1, 64)
COLUMN_RULE = NameRule(r"[A-Za-z_][A-Za-z0-9_]*", "letters, digits and underscores, not starting with a digit", 1, 255)
# Partition columns become Hive path segments and Glue columns, which Glue lowercases.
PARTITION_RULE = NameRule(r"[a-z_][a-z0-9_]*", "lowercase letters, digits and underscores, not starting with a digit",
                          1, 128)

EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
ACCOUNT_RE = re.compile(r"\d{12}")


@lru_cache(maxsize=1)
def known_regions() -> frozenset[str]:
    """Regions from botocore's bundled partition data (offline); '*-global' pseudo-regions excluded."""
    from botocore.loaders import Loader

    loader = Loader()
    regions: set[str] = set()
    for partition in loader.load_data("partitions")["partitions"]:
        regions.update(r for r in partition.get("regions", {}) if not r.endswith("-global"))
    for partition in loader.load_data("endpoints")["partitions"]:
        regions.update(partition.get("regions", {}))
    return frozenset(regions)


def suggest(word: str, choices) -> str:
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


def describe(node: Node) -> str:
    """How a wrong value looks, for 'got ...' in messages."""
    if node.kind == "map":
        return "a mapping"
    if node.kind == "seq":
        return "a list"
    value = node.value
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"{node.raw} (a boolean)"
    if isinstance(value, (int, float)):
        return f"{node.raw} (a number)"
    if isinstance(value, str):
        return repr(value)
    return f"{node.raw!r} (a {type(value).__name__})"


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def fmt(path: tuple) -> str:
    return format_path(path)


class Checker:
    def __init__(self, env_file: str, problems: list[Problem]):
        self.env_file = env_file
        self.problems = problems

    def add(self, node: Node | None, path: tuple, message: str, *, at_key: bool = False) -> None:
        if node is None:
            self.problems.append(Problem(self.env_file, None, fmt(path), message))
        else:
            line = node.where if at_key else node.line
            self.problems.append(Problem(node.file, line, fmt(path), message))

    # --- shapes ----------------------------------------------------------------------------
    def mapping(self, node: Node, path: tuple, known: tuple[str, ...], required: tuple[str, ...] = (),
                *, null_ok: bool = False) -> dict[str, Node] | None:
        if node.kind == "scalar" and node.value is None and null_ok:
            entries: dict[str, Node] = {}
        elif node.kind != "map":
            self.add(node, path, f"expected a mapping (key: value lines), got {describe(node)}")
            return None
        else:
            entries = node.value
        for key, child in entries.items():
            if key not in known:
                self.add(child, path + (key,),
                         f"unknown key {key!r}{suggest(key, known)}; expected one of: {', '.join(known)}",
                         at_key=True)
        for key in required:
            if key not in entries:
                self.add(node, path + (key,), f"missing required field {key!r}", at_key=True)
        return {k: v for k, v in entries.items() if k in known}

    def named_entries(self, node: Node, path: tuple, rule: NameRule, what: str) -> dict[str, Node]:
        """A mapping whose keys are names (teams, pipelines, datasets); invalid names are dropped."""
        if node.kind == "scalar" and node.value is None:
            return {}
        if node.kind != "map":
            self.add(node, path, f"expected a mapping of {what} names, got {describe(node)}")
            return {}
        out = {}
        for key, child in node.value.items():
            message = rule.problem(key)
            if message:
                self.add(child, path + (key,), f"invalid {what} name: {message}", at_key=True)
            else:
                out[key] = child
        return out

    def string(self, node: Node, path: tuple, what: str = "a string") -> str | None:
        if node.kind == "scalar" and isinstance(node.value, str):
            return node.value
        # A number or date where free text belongs (description: 2024) only needs quotes.
        hint = "; quote it" if what == "a string" and node.kind == "scalar" and node.value is not None else ""
        self.add(node, path, f"expected {what}, got {describe(node)}{hint}")
        return None

    def name(self, node: Node, path: tuple, rule: NameRule) -> str | None:
        if node.kind == "scalar" and isinstance(node.value, str):
            message = rule.problem(node.value)
            if message is None:
                return node.value
            self.add(node, path, message)
            return None
        self.add(node, path, f"expected {rule.describe}, {rule.min_len}-{rule.max_len} characters, "
                             f"got {describe(node)}")
        return None

    def choice(self, node: Node, path: tuple, choices: tuple[str, ...]) -> str | None:
        value = node.value if node.kind == "scalar" else None
        if isinstance(value, str) and value in choices:
            return value
        suggestion = suggest(value, choices) if isinstance(value, str) else ""
        self.add(node, path, f"expected one of {', '.join(choices)}, got {describe(node)}{suggestion}")
        return None

    def email(self, node: Node, path: tuple) -> str | None:
        value = self.string(node, path, "an email address such as ops@example.com")
        if value is not None and not EMAIL_RE.fullmatch(value):
            self.add(node, path, f"expected an email address such as ops@example.com, got {value!r}")
            return None
        return value

    def boolean(self, node: Node, path: tuple) -> bool | None:
        if node.kind == "scalar" and isinstance(node.value, bool):
            return node.value
        self.add(node, path, f"expected true or false, got {describe(node)}")
        return None

    def integer(self, node: Node, path: tuple, low: int, high: int | None = None) -> int | None:
        value = node.value if node.kind == "scalar" else None
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        if not isinstance(value, int) or isinstance(value, bool):
            self.add(node, path, f"expected a whole number {bounds}, got {describe(node)}")
            return None
        if value < low or (high is not None and value > high):
            self.add(node, path, f"expected a whole number {bounds}, got {value}")
            return None
        return value

    def number(self, node: Node, path: tuple, low: float | None = None, high: float | None = None) -> float | None:
        value = node.value if node.kind == "scalar" else None
        if low is not None and high is not None:
            bounds = f" between {low} and {high}"
        else:
            bounds = ""
        if not is_number(value):
            self.add(node, path, f"expected a number{bounds}, got {describe(node)}")
            return None
        if (low is not None and value < low) or (high is not None and value > high):
            self.add(node, path, f"expected a number{bounds}, got {value}")
            return None
        return value
