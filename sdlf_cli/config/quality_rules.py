"""Data-quality rules of a dataset (`quality:`): each rule's kind, its parameters and their types."""
from __future__ import annotations

import re
from typing import Any

from sdlf_cli.config.checks import COLUMN_RULE, Checker, describe
from sdlf_cli.config.tree import Node

SEVERITIES = ("warn", "fail")
MAX_AGE_RE = re.compile(r"[1-9][0-9]*[mhd]")

# rule kind -> (required parameters, optional parameters). range and row_count need min or max.
QUALITY_RULES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "completeness": (("column", "threshold"), ()),
    "uniqueness": (("column",), ()),
    "range": (("column",), ("min", "max")),
    "allowed_values": (("column", "values"), ()),
    "pattern": (("column", "regex"), ()),
    "row_count": ((), ("min", "max")),
    "freshness": (("column", "max_age"), ()),
}


def check_rule(ck: Checker, node: Node, path: tuple) -> dict | None:
    if node.kind != "map":
        ck.add(node, path, f"expected a quality rule mapping like {{rule: completeness, column: id, "
                           f"threshold: 1.0}}, got {describe(node)}")
        return None
    if "rule" not in node.value:
        ck.add(node, path + ("rule",), f"missing required field 'rule' (one of: {', '.join(QUALITY_RULES)})")
        return None
    kind = ck.choice(node.value["rule"], path + ("rule",), tuple(QUALITY_RULES))
    if kind is None:
        return None
    required, optional = QUALITY_RULES[kind]
    known = ("rule", *required, *optional, "severity")
    entries = ck.mapping(node, path, known, required)
    if entries is None:
        return None
    ok = all(k in entries for k in required)
    rule: dict[str, Any] = {"rule": kind}
    for key, child in entries.items():
        p = path + (key,)
        if key == "rule":
            continue
        if key == "column":
            value = ck.name(child, p, COLUMN_RULE)
        elif key == "threshold":
            value = ck.number(child, p, 0, 1)
        elif key in ("min", "max") and kind == "row_count":
            value = ck.integer(child, p, 0)
        elif key in ("min", "max"):
            value = ck.number(child, p)
        elif key == "values":
            value = check_values(ck, child, p)
        elif key == "regex":
            value = ck.string(child, p, "a regular expression")
            if value is not None:
                try:
                    re.compile(value)
                except re.error as exc:
                    ck.add(child, p, f"expected a regular expression that compiles, got {value!r}: {exc}")
                    value = None
        elif key == "max_age":
            value = ck.string(child, p, "a duration like 30m, 24h or 7d")
            if value is not None and not MAX_AGE_RE.fullmatch(value):
                ck.add(child, p, f"expected a duration like 30m, 24h or 7d, got {value!r}")
                value = None
        else:  # severity
            value = ck.choice(child, p, SEVERITIES)
        if value is None:
            ok = False
        else:
            rule[key] = value
    if optional and not any(k in entries for k in optional):
        ck.add(node, path, f"rule {kind!r} needs at least one of: {', '.join(optional)}")
        ok = False
    if ok and "min" in rule and "max" in rule and rule["min"] > rule["max"]:
        ck.add(entries["min"], path + ("min",), f"expected min <= max, got min {rule['min']} and max {rule['max']}")
        ok = False
    rule.setdefault("severity", "fail")
    return rule if ok else None


def check_values(ck: Checker, node: Node, path: tuple) -> list | None:
    if node.kind != "seq" or not node.value:
        got = "an empty list" if node.kind == "seq" else describe(node)
        ck.add(node, path, f"expected a non-empty list of allowed values, got {got}")
        return None
    values = []
    for i, item in enumerate(node.value):
        if item.kind != "scalar" or item.value is None:
            ck.add(item, path + (i,), f"expected a string, number or boolean, got {describe(item)}")
            return None
        values.append(item.value)
    return values


def check_quality(ck: Checker, node: Node, path: tuple) -> list[dict] | None:
    if node.kind == "scalar" and node.value is None:
        return []
    if node.kind != "seq":
        ck.add(node, path, f"expected a list of quality rules, got {describe(node)}")
        return None
    rules = [check_rule(ck, item, path + (i,)) for i, item in enumerate(node.value)]
    return None if any(r is None for r in rules) else rules
