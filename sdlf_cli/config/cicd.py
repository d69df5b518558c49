"""The `cicd` section of the parameters files: the delivery pipeline of the lake (`templates/cicd/`).

Written once in `parameters/base.yaml` so every environment sees the same pipeline:

    cicd:
      tooling_env: dev                     # hosts the pipeline (`sdlf deploy cicd --env dev`); default: first stage
      source:
        provider: connection               # connection (default) | s3 | codecommit
        connection_arn: arn:aws:codeconnections:us-east-1:111111111111:connection/...
        repository: acme/data-lake         # owner/name (connection) or the repository name (codecommit)
        branch: main
        object_key: cicd/source.zip        # s3 only: the zip `sdlf cicd push` uploads
      test_command: python -m pytest tests/unit -q
      log_retention_days: 30
      stages:                              # promotion order
        - env: dev
        - env: prod
          approval: true                   # default: true for every stage after the first

Each stage names an environment that has its own parameters file; its account (for the deploy role the
pipeline assumes there) and region are read from that file. Problems come back as `file:line: field: message`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sdlf_cli.config.tree import Node, format_path, load_tree
from sdlf_cli.errors import Problem

KEYS = ("tooling_env", "source", "test_command", "log_retention_days", "stages")
SOURCE_KEYS = ("provider", "connection_arn", "repository", "branch", "object_key")
STAGE_KEYS = ("env", "approval")
PROVIDERS = ("connection", "s3", "codecommit")
DEFAULT_PROVIDER = "connection"
DEFAULT_BRANCH = "main"
DEFAULT_OBJECT_KEY = "cicd/source.zip"
DEFAULT_TEST_COMMAND = "python -m pytest tests/unit -q"
DEFAULT_LOG_RETENTION = 30
# The values CloudWatch Logs accepts for RetentionInDays.
RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
                  3288, 3653)

ENV_RE = re.compile(r"[a-z][a-z0-9]{1,6}")
CONNECTION_ARN_RE = re.compile(r"arn:aws[a-z-]*:(codeconnections|codestar-connections):[a-z0-9-]+:\d{12}:connection/"
                               r"[A-Za-z0-9-]+")
REPOSITORY_RE = re.compile(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*")
BRANCH_RE = re.compile(r"[A-Za-z0-9._/-]{1,255}")
OBJECT_KEY_RE = re.compile(r"[A-Za-z0-9!_.*'()/-]{1,1024}")
ACCOUNT_RE = re.compile(r"\d{12}")


@dataclass(frozen=True)
class Source:
    provider: str = DEFAULT_PROVIDER
    connection_arn: str | None = None
    repository: str | None = None
    branch: str = DEFAULT_BRANCH
    object_key: str = DEFAULT_OBJECT_KEY


@dataclass(frozen=True)
class Stage:
    """One environment the pipeline deploys, in order. `account` None: the tooling account."""

    env: str
    approval: bool
    account: str | None = None
    region: str | None = None
    # Why the stage's own parameters file cannot be read (`file:line: field: message`); None when it can.
    # Checked when the pipeline is rendered, not on every load: an environment of the lake (or a test lake)
    # must load whether or not every promotion stage has its file yet.
    unreadable: str | None = None


@dataclass(frozen=True)
class CicdConfig:
    tooling_env: str
    source: Source
    stages: tuple[Stage, ...]
    # The account hosting the pipeline (the tooling environment's `account`); None: wherever it is deployed.
    tooling_account: str | None = None
    test_command: str = DEFAULT_TEST_COMMAND
    log_retention_days: int = DEFAULT_LOG_RETENTION

    def stage(self, env: str) -> Stage | None:
        return next((s for s in self.stages if s.env == env), None)

    @property
    def approval_envs(self) -> tuple[str, ...]:
        return tuple(s.env for s in self.stages if s.approval)


def _describe(node: Node) -> str:
    if node.kind == "map":
        return "a mapping"
    if node.kind == "seq":
        return "a list"
    if node.value is None:
        return "nothing (null)"
    if isinstance(node.value, str):
        return repr(node.value)
    return f"{node.raw} (a {type(node.value).__name__})"


class _Reader:
    def __init__(self, problems: list[Problem]):
        self.problems = problems
        self.ok = True

    def add(self, node: Node, path: tuple, message: str, *, at_key: bool = False) -> None:
        self.ok = False
        self.problems.append(Problem(node.file, node.where if at_key else node.line, format_path(path), message))

    def mapping(self, node: Node, path: tuple, known: tuple[str, ...], required: tuple[str, ...] = ()) -> dict:
        if node.kind != "map":
            self.add(node, path, f"expected a mapping (key: value lines), got {_describe(node)}")
            return {}
        for key, child in node.value.items():
            if key not in known:
                self.add(child, path + (key,), f"unknown key {key!r}; expected one of: {', '.join(known)}",
                         at_key=True)
        for key in required:
            if key not in node.value:
                self.add(node, path + (key,), f"missing required field {key!r}", at_key=True)
        return {k: v for k, v in node.value.items() if k in known}

    def text(self, node: Node, path: tuple, what: str, pattern: re.Pattern | None = None) -> str | None:
        value = node.value if node.kind == "scalar" else None
        if not isinstance(value, str) or (pattern is not None and not pattern.fullmatch(value)):
            self.add(node, path, f"expected {what}, got {_describe(node)}")
            return None
        return value

    def boolean(self, node: Node, path: tuple) -> bool | None:
        if node.kind == "scalar" and isinstance(node.value, bool):
            return node.value
        self.add(node, path, f"expected true or false, got {_describe(node)}")
        return None


def _source(rd: _Reader, node: Node, path: tuple) -> Source:
    entries = rd.mapping(node, path, SOURCE_KEYS)
    provider = DEFAULT_PROVIDER
    if "provider" in entries:
        provider = rd.text(entries["provider"], path + ("provider",), f"one of {', '.join(PROVIDERS)}") or provider
        if provider not in PROVIDERS:
            rd.add(entries["provider"], path + ("provider",), f"expected one of {', '.join(PROVIDERS)}, "
                                                              f"got {provider!r}")
    values: dict[str, Any] = {}
    checks = {
        "connection_arn": ("a CodeConnections connection ARN (arn:aws:codeconnections:<region>:<account>:"
                           "connection/<id>)", CONNECTION_ARN_RE),
        "repository": ("a repository such as owner/name", REPOSITORY_RE),
        "branch": ("a branch name", BRANCH_RE),
        "object_key": ("an S3 object key such as cicd/source.zip", OBJECT_KEY_RE),
    }
    for key, (what, pattern) in checks.items():
        if key in entries:
            values[key] = rd.text(entries[key], path + (key,), what, pattern)
    needs = {"connection": ("connection_arn", "repository"), "codecommit": ("repository",), "s3": ()}
    for key in needs.get(provider, ()):
        if key not in entries:
            rd.add(node, path + (key,), f"missing required field {key!r} (provider {provider} needs it)", at_key=True)
    unused = {"connection": ("object_key",), "codecommit": ("connection_arn", "object_key"),
              "s3": ("connection_arn", "repository", "branch")}
    for key in unused.get(provider, ()):
        if key in entries:
            rd.add(entries[key], path + (key,), f"not used by provider {provider}; remove it", at_key=True)
    return Source(provider=provider, **{k: v for k, v in values.items() if v is not None})


def _stage_target(env: str, parameters_dir: Path, node: Node, path: tuple
                  ) -> tuple[str | None, str | None, str | None]:
    """(account, region, unreadable): what the stage's own parameters file gives, or why it cannot be read."""
    tree, _, problems = load_tree(env, parameters_dir)
    if tree is None:
        detail = problems[0].message if problems else f"cannot read the parameters of {env!r}"
        return None, None, (f"{node.file}:{node.line}: {format_path(path)}: stage environment {env!r} has no "
                            f"usable parameters file: {detail}")
    account = region = None
    entries = tree.value if tree.kind == "map" else {}
    if "account" in entries and isinstance(entries["account"].value, str) and ACCOUNT_RE.fullmatch(
            entries["account"].value):
        account = entries["account"].value
    if "region" in entries and isinstance(entries["region"].value, str):
        region = entries["region"].value
    return account, region, None


def _stages(rd: _Reader, node: Node, path: tuple, parameters_dir: Path) -> list[Stage]:
    if node.kind != "seq" or not node.value:
        rd.add(node, path, f"expected a non-empty list of stages such as [{{env: dev}}, {{env: prod, approval: true}}], "
                           f"got {_describe(node) if node.kind != 'seq' else 'an empty list'}")
        return []
    stages: list[Stage] = []
    for i, item in enumerate(node.value):
        p = path + (i,)
        entries = rd.mapping(item, p, STAGE_KEYS, ("env",))
        if "env" not in entries:
            continue
        env = rd.text(entries["env"], p + ("env",), "an environment name (lowercase letters and digits, 2-7)",
                      ENV_RE)
        if env is None:
            continue
        if any(s.env == env for s in stages):
            rd.add(entries["env"], p + ("env",), f"environment {env!r} is listed twice; each is deployed once")
            continue
        approval = i > 0
        if "approval" in entries:
            given = rd.boolean(entries["approval"], p + ("approval",))
            approval = approval if given is None else given
        account, region, unreadable = _stage_target(env, parameters_dir, entries["env"], p + ("env",))
        stages.append(Stage(env=env, approval=approval, account=account, region=region, unreadable=unreadable))
    return stages


def build_cicd(node: Node, env_file: str, problems: list[Problem]) -> CicdConfig | None:
    """Checks the `cicd` section; appends to `problems` and returns None when it is wrong."""
    rd = _Reader(problems)
    path = ("cicd",)
    entries = rd.mapping(node, path, KEYS, ("source", "stages"))
    parameters_dir = Path(env_file).parent
    source = _source(rd, entries["source"], path + ("source",)) if "source" in entries else Source()
    stages = _stages(rd, entries["stages"], path + ("stages",), parameters_dir) if "stages" in entries else []
    test_command = DEFAULT_TEST_COMMAND
    if "test_command" in entries:
        test_command = rd.text(entries["test_command"], path + ("test_command",), "a shell command") or test_command
    retention = DEFAULT_LOG_RETENTION
    if "log_retention_days" in entries:
        child = entries["log_retention_days"]
        if child.kind == "scalar" and child.value in RETENTION_DAYS and not isinstance(child.value, bool):
            retention = child.value
        else:
            rd.add(child, path + ("log_retention_days",),
                   f"expected one of the retention periods CloudWatch Logs accepts "
                   f"({', '.join(map(str, RETENTION_DAYS))}), got {_describe(child)}")
    tooling = stages[0].env if stages else None
    if "tooling_env" in entries:
        tooling = rd.text(entries["tooling_env"], path + ("tooling_env",),
                          "an environment name (lowercase letters and digits, 2-7)", ENV_RE) or tooling
        if tooling and not Path(parameters_dir, f"{tooling}.yaml").is_file():
            rd.add(entries["tooling_env"], path + ("tooling_env",),
                   f"no parameters file for the tooling environment {tooling!r} in {parameters_dir}")
    if not rd.ok or tooling is None:
        return None
    tooling_account = next((s.account for s in stages if s.env == tooling), None)
    if tooling_account is None and "tooling_env" in entries:
        tooling_account, _ = _stage_target(tooling, parameters_dir, rd, entries["tooling_env"], path + ("tooling_env",))
    return CicdConfig(tooling_env=tooling, source=source, stages=tuple(stages), tooling_account=tooling_account,
                      test_command=test_command, log_retention_days=retention)


def show_rows(cicd: CicdConfig | None) -> list[tuple[str, Any]]:
    """(field path, resolved value) of the section, for `sdlf config show`."""
    if cicd is None:
        return []
    rows: list[tuple[str, Any]] = [("cicd.tooling_env", cicd.tooling_env)]
    for key in SOURCE_KEYS:
        value = getattr(cicd.source, key)
        used = {"connection": ("provider", "connection_arn", "repository", "branch"),
                "codecommit": ("provider", "repository", "branch"), "s3": ("provider", "object_key")}
        if key in used[cicd.source.provider]:
            rows.append((f"cicd.source.{key}", value))
    rows.append(("cicd.test_command", cicd.test_command))
    rows.append(("cicd.log_retention_days", cicd.log_retention_days))
    for i, stage in enumerate(cicd.stages):
        rows.append((f"cicd.stages[{i}].env", stage.env))
        rows.append((f"cicd.stages[{i}].approval", stage.approval))
    return rows
