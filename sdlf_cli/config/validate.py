"""Checks a merged parameters tree and builds the LakeConfig, collecting every problem before failing.

Each check says what was expected and where (`file:line: field: message`). After the schema, every
name the lake will create is derived (naming.derived_names) with the longest account id and region
substituted and checked against AWS limits, so an accepted file never yields a name AWS rejects.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sdlf_cli.config.cicd import RETENTION_DAYS, build_cicd
from sdlf_cli.config.loader import Node, format_path
from sdlf_cli.config.model import Dataset, LakeConfig, Origin, Pipeline, Team
from sdlf_cli.errors import ConfigError, Problem
from sdlf_cli.naming import derived_names


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
RATE_RE = re.compile(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)")
CRON_FIELD_RE = re.compile(r"[0-9A-Za-z*?,/#\-]+")
MAX_AGE_RE = re.compile(r"[1-9][0-9]*[mhd]")

ROOT_KEYS = ("org", "app", "env", "region", "account", "notification_email", "lake_formation",
             "log_retention_days", "teams", "cicd")
ROOT_REQUIRED = ("org", "app", "region")
TEAM_KEYS = ("notification_email", "pipelines", "datasets")
PIPELINE_KEYS = ("description",)
DATASET_KEYS = ("pipeline", "description", "transform", "engine", "schedule", "batch", "partition_by", "quality")
BATCH_KEYS = ("min_items", "max_items")
ENGINES = ("python", "spark")
SEVERITIES = ("warn", "fail")
MAX_BATCH = 10000

DATASET_DEFAULTS: dict[str, Any] = {
    "transform": "default",
    "engine": "python",
    "schedule": "rate(5 minutes)",
    "batch": {"min_items": 1, "max_items": 100},
    "partition_by": ["ingestion_date"],
    "quality": [],
}

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


def dataset_defaults() -> dict[str, Any]:
    """A fresh copy of the defaults every Dataset.settings starts from."""
    return {k: (dict(v) if isinstance(v, dict) else list(v) if isinstance(v, list) else v)
            for k, v in DATASET_DEFAULTS.items()}


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


def _suggest(word: str, choices) -> str:
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


def _describe(node: Node) -> str:
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


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _fmt(path: tuple) -> str:
    return format_path(path)


class _Checker:
    def __init__(self, env_file: str, problems: list[Problem]):
        self.env_file = env_file
        self.problems = problems

    def add(self, node: Node | None, path: tuple, message: str, *, at_key: bool = False) -> None:
        if node is None:
            self.problems.append(Problem(self.env_file, None, _fmt(path), message))
        else:
            line = node.where if at_key else node.line
            self.problems.append(Problem(node.file, line, _fmt(path), message))

    # --- shapes ----------------------------------------------------------------------------
    def mapping(self, node: Node, path: tuple, known: tuple[str, ...], required: tuple[str, ...] = (),
                *, null_ok: bool = False) -> dict[str, Node] | None:
        if node.kind == "scalar" and node.value is None and null_ok:
            entries: dict[str, Node] = {}
        elif node.kind != "map":
            self.add(node, path, f"expected a mapping (key: value lines), got {_describe(node)}")
            return None
        else:
            entries = node.value
        for key, child in entries.items():
            if key not in known:
                self.add(child, path + (key,),
                         f"unknown key {key!r}{_suggest(key, known)}; expected one of: {', '.join(known)}",
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
            self.add(node, path, f"expected a mapping of {what} names, got {_describe(node)}")
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
        self.add(node, path, f"expected {what}, got {_describe(node)}{hint}")
        return None

    def name(self, node: Node, path: tuple, rule: NameRule) -> str | None:
        if node.kind == "scalar" and isinstance(node.value, str):
            message = rule.problem(node.value)
            if message is None:
                return node.value
            self.add(node, path, message)
            return None
        self.add(node, path, f"expected {rule.describe}, {rule.min_len}-{rule.max_len} characters, "
                             f"got {_describe(node)}")
        return None

    def choice(self, node: Node, path: tuple, choices: tuple[str, ...]) -> str | None:
        value = node.value if node.kind == "scalar" else None
        if isinstance(value, str) and value in choices:
            return value
        suggestion = _suggest(value, choices) if isinstance(value, str) else ""
        self.add(node, path, f"expected one of {', '.join(choices)}, got {_describe(node)}{suggestion}")
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
        self.add(node, path, f"expected true or false, got {_describe(node)}")
        return None

    def integer(self, node: Node, path: tuple, low: int, high: int | None = None) -> int | None:
        value = node.value if node.kind == "scalar" else None
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        if not isinstance(value, int) or isinstance(value, bool):
            self.add(node, path, f"expected a whole number {bounds}, got {_describe(node)}")
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
        if not _is_number(value):
            self.add(node, path, f"expected a number{bounds}, got {_describe(node)}")
            return None
        if (low is not None and value < low) or (high is not None and value > high):
            self.add(node, path, f"expected a number{bounds}, got {value}")
            return None
        return value


# --- sections ------------------------------------------------------------------------------------
def _check_schedule(ck: _Checker, node: Node, path: tuple) -> str | None:
    value = ck.string(node, path, "a schedule expression like rate(5 minutes) or cron(0 2 * * ? *)")
    if value is None:
        return None
    expected = "expected rate(N minute[s]|hour[s]|day[s]) or cron(<6 fields>)"
    rate = RATE_RE.fullmatch(value)
    if rate:
        count, unit = int(rate.group(1)), rate.group(2)
        if count < 1:
            ck.add(node, path, f"{expected} with N >= 1, got {value!r}")
            return None
        singular = unit.rstrip("s")
        want = singular if count == 1 else singular + "s"
        if unit != want:
            ck.add(node, path, f"AWS requires 'rate({count} {want})' (singular unit for 1, plural otherwise), "
                               f"got {value!r}")
            return None
        return value
    if value.startswith("cron(") and value.endswith(")"):
        fields = value[5:-1].split()
        if len(fields) != 6:
            ck.add(node, path, "expected cron(minutes hours day-of-month month day-of-week year) with 6 fields, "
                               f"got {len(fields)} in {value!r}")
            return None
        bad = [f for f in fields if not CRON_FIELD_RE.fullmatch(f)]
        if bad:
            ck.add(node, path, f"unexpected characters in cron field {bad[0]!r} of {value!r}")
            return None
        if (fields[2] == "?") == (fields[4] == "?"):
            ck.add(node, path, f"exactly one of day-of-month and day-of-week must be '?' in {value!r}")
            return None
        return value
    ck.add(node, path, f"{expected}, got {value!r}")
    return None


def _check_batch(ck: _Checker, node: Node, path: tuple) -> dict | None:
    entries = ck.mapping(node, path, BATCH_KEYS)
    if entries is None:
        return None
    batch = dict(DATASET_DEFAULTS["batch"])
    ok = True
    for key in BATCH_KEYS:
        if key in entries:
            value = ck.integer(entries[key], path + (key,), 1, MAX_BATCH)
            if value is None:
                ok = False
            else:
                batch[key] = value
    if ok and batch["min_items"] > batch["max_items"]:
        where = entries.get("min_items") or entries.get("max_items") or node
        ck.add(where, path, f"expected min_items <= max_items, got min_items {batch['min_items']} "
                            f"and max_items {batch['max_items']}", at_key=True)
        return None
    return batch if ok else None


def _check_columns(ck: _Checker, node: Node, path: tuple) -> list[str] | None:
    if node.kind != "seq":
        ck.add(node, path, f"expected a list of column names such as [ingestion_date], got {_describe(node)}")
        return None
    columns: list[str] = []
    for i, item in enumerate(node.value):
        name = ck.name(item, path + (i,), PARTITION_RULE)
        if name is None:
            continue
        if name in columns:
            ck.add(item, path + (i,), f"column {name!r} is listed twice")
            continue
        columns.append(name)
    return columns if len(columns) == len(node.value) else None


def _check_rule(ck: _Checker, node: Node, path: tuple) -> dict | None:
    if node.kind != "map":
        ck.add(node, path, f"expected a quality rule mapping like {{rule: completeness, column: id, "
                           f"threshold: 1.0}}, got {_describe(node)}")
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
            value = _check_values(ck, child, p)
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


def _check_values(ck: _Checker, node: Node, path: tuple) -> list | None:
    if node.kind != "seq" or not node.value:
        got = "an empty list" if node.kind == "seq" else _describe(node)
        ck.add(node, path, f"expected a non-empty list of allowed values, got {got}")
        return None
    values = []
    for i, item in enumerate(node.value):
        if item.kind != "scalar" or item.value is None:
            ck.add(item, path + (i,), f"expected a string, number or boolean, got {_describe(item)}")
            return None
        values.append(item.value)
    return values


def _check_quality(ck: _Checker, node: Node, path: tuple) -> list[dict] | None:
    if node.kind == "scalar" and node.value is None:
        return []
    if node.kind != "seq":
        ck.add(node, path, f"expected a list of quality rules, got {_describe(node)}")
        return None
    rules = [_check_rule(ck, item, path + (i,)) for i, item in enumerate(node.value)]
    return None if any(r is None for r in rules) else rules


def _check_dataset(ck: _Checker, node: Node, path: tuple, team: str, name: str,
                   pipelines: dict[str, Node], pipeline_names_ok: set[str]) -> Dataset | None:
    entries = ck.mapping(node, path, DATASET_KEYS, ("pipeline",), null_ok=True)
    if entries is None:
        return None
    ok = "pipeline" in entries
    pipeline = description = None
    settings = dataset_defaults()
    for key, child in entries.items():
        p = path + (key,)
        if key == "pipeline":
            pipeline = ck.string(child, p, "the name of a pipeline of this team")
            if pipeline is not None and pipeline not in pipeline_names_ok:
                if pipeline not in pipelines:  # an invalid pipeline name is reported where it is defined
                    known = ", ".join(sorted(pipeline_names_ok)) or "(none: the team has no valid pipelines)"
                    ck.add(child, p, f"unknown pipeline {pipeline!r} of team {team!r}"
                                     f"{_suggest(pipeline, pipeline_names_ok)}; expected one of: {known}")
                pipeline = None
            value = pipeline
        elif key == "description":
            description = value = ck.string(child, p)
        elif key == "transform":
            value = ck.name(child, p, TRANSFORM_RULE)
        elif key == "engine":
            value = ck.choice(child, p, ENGINES)
        elif key == "schedule":
            value = _check_schedule(ck, child, p)
        elif key == "batch":
            value = _check_batch(ck, child, p)
        elif key == "partition_by":
            value = _check_columns(ck, child, p)
        else:
            value = _check_quality(ck, child, p)
        if value is None:
            ok = False
        elif key not in ("pipeline", "description"):
            settings[key] = value
    if not ok:
        return None
    return Dataset(name=name, team=team, pipeline=pipeline, description=description or "", settings=settings)


def _check_team(ck: _Checker, node: Node, path: tuple, name: str) -> Team | None:
    entries = ck.mapping(node, path, TEAM_KEYS, null_ok=True)
    if entries is None:
        return None
    email = None
    if "notification_email" in entries:
        email = ck.email(entries["notification_email"], path + ("notification_email",))
    pipeline_nodes = {}
    if "pipelines" in entries and entries["pipelines"].kind == "map":
        pipeline_nodes = entries["pipelines"].value
    pipelines = []
    valid_pipeline_names: set[str] = set()
    if "pipelines" in entries:
        named = ck.named_entries(entries["pipelines"], path + ("pipelines",), PIPELINE_RULE, "pipeline")
        for pname, pnode in named.items():
            ppath = path + ("pipelines", pname)
            valid_pipeline_names.add(pname)  # datasets may name it even if its body has problems
            pentries = ck.mapping(pnode, ppath, PIPELINE_KEYS, null_ok=True)
            description = ""
            if pentries is not None and "description" in pentries:
                description = ck.string(pentries["description"], ppath + ("description",))
            if pentries is None or description is None:
                continue
            pipelines.append(Pipeline(name=pname, team=name, description=description))
    datasets = []
    if "datasets" in entries:
        dnode = entries["datasets"]
        named = ck.named_entries(dnode, path + ("datasets",), DATASET_RULE, "dataset")
        for dname, child in named.items():
            dataset = _check_dataset(ck, child, path + ("datasets", dname), name, dname, pipeline_nodes,
                                     valid_pipeline_names)
            if dataset is not None:
                datasets.append(dataset)
    # A partially valid team is still returned so that its names can be length-checked; its
    # problems are already recorded, so no config is built from it.
    return Team(name=name, notification_email=email, pipelines=tuple(pipelines), datasets=tuple(datasets))


def _collect_origins(node: Node, path: tuple, origins: dict) -> None:
    if path:
        origins[_fmt(path)] = Origin(node.file, node.where)
    if node.kind == "map":
        for key, child in node.value.items():
            _collect_origins(child, path + (key,), origins)
    elif node.kind == "seq":
        for i, child in enumerate(node.value):
            _collect_origins(child, path + (i,), origins)


# --- derived names -------------------------------------------------------------------------------
def _field_label(field: str, cfg: LakeConfig) -> str:
    """'teams.eng.datasets.x' -> "the dataset name 'x' (teams.eng.datasets.x)"; 'org' -> "org 'acme'"."""
    parts = field.split(".")
    if len(parts) == 4 and parts[2] == "datasets":
        return f"the dataset name {parts[3]!r} ({field})"
    if len(parts) == 4 and parts[2] == "pipelines":
        return f"the pipeline name {parts[3]!r} ({field})"
    if len(parts) == 2 and parts[0] == "teams":
        return f"the team name {parts[1]!r} ({field})"
    return f"{field} {getattr(cfg, field)!r}"


def check_names(cfg: LakeConfig, env_file: str | None = None) -> list[Problem]:
    """Every derived name against naming.LIMITS (and for clashes); one Problem per owning field."""
    too_long: dict[str, list] = {}
    problems: list[Problem] = []
    seen: dict[tuple[str, str], str] = {}
    default_file = env_file or (cfg.files[-1] if cfg.files else "parameters")

    def origin(field: str) -> tuple[str, int | None]:
        found = cfg.origins.get(field)
        return (found.file, found.line) if found else (default_file, None)

    for derived in derived_names(cfg):
        if derived.too_long:
            too_long.setdefault(derived.fields[0], []).append(derived)
        key = (derived.kind, derived.name)
        if key in seen and seen[key] != derived.fields[0]:
            file, line = origin(derived.fields[0])
            other = "a lake-wide resource" if seen[key] in ("org", "app", "env") else seen[key]
            problems.append(Problem(file, line, derived.fields[0],
                                    f"{derived.kind} name {derived.name!r} is also the name of {other}; "
                                    f"rename {derived.fields[0]}"))
        seen.setdefault(key, derived.fields[0])
    for field, names in too_long.items():
        first = names[0]
        excess = max(len(d.name) - d.limit for d in names)
        listed = "; ".join(f"{d.kind} {d.name!r} is {len(d.name)} characters (AWS allows {d.limit})" for d in names)
        labels = [_field_label(f, cfg) for f in first.fields]
        file, line = origin(field)
        plural = "s" if excess > 1 else ""
        problems.append(Problem(file, line, field,
                                f"derived names too long: {listed}; shorten {', '.join(labels[:-1])} or {labels[-1]} "
                                f"by at least {excess} character{plural}"))
    return problems


# --- entry point ---------------------------------------------------------------------------------
def build_config(tree: Node, *, env: str, env_file: str, files: tuple[str, ...],
                 problems: list[Problem] | None = None) -> LakeConfig:
    """Validates the merged tree and returns the LakeConfig, or raises ConfigError with every problem."""
    problems = list(problems or [])
    ck = _Checker(env_file, problems)
    root = ck.mapping(tree, (), ROOT_KEYS) or {}
    for key in ROOT_REQUIRED:
        if key not in root:
            where = " or ".join(files) if files else env_file
            problems.append(Problem(env_file, None, key, f"missing required field {key!r} (set it in {where})"))

    values: dict[str, Any] = {}
    for key, rule in (("org", ORG_RULE), ("app", APP_RULE)):
        if key in root:
            values[key] = ck.name(root[key], (key,), rule)
    env_ok = True
    stem_problem = ENV_RULE.problem(env)
    if stem_problem:
        problems.append(Problem(env_file, None, "env", f"environment name from the file name: {stem_problem}"))
        env_ok = False
    if "env" in root:
        given = ck.name(root["env"], ("env",), ENV_RULE)
        if given is not None and given != env:
            ck.add(root["env"], ("env",), f"expected {env!r} (env must equal the parameters file name "
                                          f"{env}.yaml), got {given!r}")
            env_ok = False
        elif given is None:
            env_ok = False
    if "region" in root:
        region = ck.string(root["region"], ("region",), "an AWS region such as us-east-1")
        if region is not None and region not in known_regions():
            ck.add(root["region"], ("region",),
                   f"expected an AWS region such as us-east-1, got {region!r}{_suggest(region, known_regions())}")
            region = None
        values["region"] = region
    account = None
    if "account" in root:
        node = root["account"]
        if node.kind == "scalar" and _is_number(node.value):
            ck.add(node, ("account",), f"expected the 12-digit account id as a string, got {node.raw} "
                                       f"(a YAML number); quote it: account: \"{node.raw}\"")
        else:
            account = ck.string(node, ("account",), "a 12-digit account id in quotes")
            if account is not None and not ACCOUNT_RE.fullmatch(account):
                ck.add(node, ("account",), f"expected exactly 12 digits, got {account!r}")
                account = None
    email = ck.email(root["notification_email"], ("notification_email",)) if "notification_email" in root else None
    lake_formation = ck.boolean(root["lake_formation"], ("lake_formation",)) if "lake_formation" in root else False
    retention = 90
    if "log_retention_days" in root:
        node = root["log_retention_days"]
        if node.kind == "scalar" and node.value in RETENTION_DAYS and not isinstance(node.value, bool):
            retention = node.value
        else:
            ck.add(node, ("log_retention_days",), "expected one of the retention periods CloudWatch Logs accepts "
                                                  f"({', '.join(map(str, RETENTION_DAYS))}), got {_describe(node)}")
    cicd = build_cicd(root["cicd"], env_file, problems) if "cicd" in root else None

    teams: list[Team] = []
    if "teams" in root:
        named = ck.named_entries(root["teams"], ("teams",), TEAM_RULE, "team")
        for name, node in named.items():
            team = _check_team(ck, node, ("teams", name), name)
            if team is not None:
                teams.append(team)

    origins: dict[str, Origin] = {}
    _collect_origins(tree, (), origins)
    names_ok = env_ok and values.get("org") and values.get("app")
    cfg = None
    if names_ok:
        cfg = LakeConfig(org=values["org"], app=values["app"], env=env,
                         region=values.get("region") or "us-east-1", account=account,
                         notification_email=email, lake_formation=bool(lake_formation),
                         log_retention_days=retention, teams=tuple(teams),
                         cicd=cicd, origins=origins, files=files)
        problems.extend(check_names(cfg, env_file))
    if problems:
        order = {f: i for i, f in enumerate(files)}
        problems.sort(key=lambda p: (order.get(p.file, -1), p.line or 0))
        raise ConfigError(problems)
    return cfg
