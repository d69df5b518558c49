"""Adds teams, pipelines and datasets to a `parameters/<env>.yaml` file, keeping its comments and layout.

Used by `sdlf add-team/add-pipeline/add-dataset`. Edits are text insertions guided by the marks of
the composed YAML nodes (the only YAML library pinned, PyYAML, cannot round-trip comments): the new
entry is written at the end of its parent mapping, indented like its siblings. The edited text is
loaded and validated together with base.yaml before it replaces the file, so a failed edit leaves
the file untouched.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

from sdlf_cli.config.loader import load_config
from sdlf_cli.config.tree import Node, parse_text
from sdlf_cli.config.checks import DATASET_RULE, PIPELINE_RULE, TEAM_RULE, NameRule
from sdlf_cli.config.validate import DATASET_KEYS
from sdlf_cli.errors import ConfigError, Problem, UsageError

INDENT = 2


def add_team(path: Path | str, team: str, email: str | None = None, *, write: bool = True) -> None:
    """Adds `teams.<team>` (with its notification_email when given). `write=False` only checks the addition."""
    path, lines, root = _open(path)
    _check_name(path, "team", team, TEAM_RULE)
    teams = root.value.get("teams")
    if teams is not None and teams.kind == "map" and team in teams.value:
        raise UsageError(f"{path}:{teams.value[team].where}: team {team!r} already exists")
    body = {"notification_email": email} if email else {}
    _insert(path, lines, root, ["teams"], team, body)
    _commit(path, lines, f"team {team!r}", write)


def add_pipeline(path: Path | str, team: str, pipeline: str, description: str | None = None, *,
                 write: bool = True) -> None:
    """Adds `teams.<team>.pipelines.<pipeline>`; the team must be defined in this file."""
    path, lines, root = _open(path)
    _check_name(path, "pipeline", pipeline, PIPELINE_RULE)
    team_node = _team(path, root, team)
    existing = _child(team_node, "pipelines")
    if existing is not None and existing.kind == "map" and pipeline in existing.value:
        raise UsageError(f"{path}:{existing.value[pipeline].where}: pipeline {pipeline!r} of team {team!r} "
                         "already exists")
    body = {"description": description} if description else {}
    _insert(path, lines, team_node, ["pipelines"], pipeline, body)
    _commit(path, lines, f"pipeline {team}/{pipeline}", write)


def add_dataset(path: Path | str, team: str, dataset: str, pipeline: str, *, write: bool = True,
                **settings: Any) -> None:
    """Adds `teams.<team>.datasets.<dataset>` bound to `pipeline` (a pipeline of the team in this file).

    `settings` are dataset fields (description, transform, engine, schedule, batch, partition_by,
    quality); None values are left out so the defaults apply.
    """
    path, lines, root = _open(path)
    _check_name(path, "dataset", dataset, DATASET_RULE)
    unknown = sorted(set(settings) - set(DATASET_KEYS) | ({"pipeline"} & set(settings)))
    if unknown:
        allowed = ", ".join(k for k in DATASET_KEYS if k != "pipeline")
        raise UsageError(f"{path}: unknown dataset setting(s) {', '.join(unknown)}; expected: {allowed}")
    team_node = _team(path, root, team)
    pipelines = _child(team_node, "pipelines")
    known = list(pipelines.value) if pipelines is not None and pipelines.kind == "map" else []
    if pipeline not in known:
        raise UsageError(f"{path}: team {team!r} has no pipeline {pipeline!r}; "
                         f"pipelines defined there: {', '.join(known) or '(none)'}")
    existing = _child(team_node, "datasets")
    if existing is not None and existing.kind == "map" and dataset in existing.value:
        raise UsageError(f"{path}:{existing.value[dataset].where}: dataset {dataset!r} of team {team!r} "
                         "already exists")
    body: dict[str, Any] = {"pipeline": pipeline}
    body.update({k: settings[k] for k in DATASET_KEYS if k in settings and settings[k] is not None})
    _insert(path, lines, team_node, ["datasets"], dataset, body)
    _commit(path, lines, f"dataset {team}/{dataset}", write)


# --- helpers -------------------------------------------------------------------------------------
def _open(path: Path | str) -> tuple[Path, list[str], Node]:
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: no such parameters file")
    text = path.read_text(encoding="utf-8")
    problems: list[Problem] = []
    root = parse_text(text, str(path), problems)
    if problems:
        raise ConfigError(problems)
    if root.kind != "map":
        raise ConfigError([Problem(str(path), root.line, "yaml", "expected a mapping of settings at the top level")])
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    return path, lines, root


def _check_name(path: Path, what: str, name: str, rule: NameRule) -> None:
    message = rule.problem(name)
    if message:
        raise UsageError(f"{path}: invalid {what} name: {message}")


def _child(node: Node, key: str) -> Node | None:
    return node.value.get(key) if node.kind == "map" else None


def _team(path: Path, root: Node, team: str) -> Node:
    teams = _child(root, "teams")
    known = list(teams.value) if teams is not None and teams.kind == "map" else []
    if team not in known:
        raise UsageError(f"{path}: team {team!r} is not defined in this file; teams defined there: "
                         f"{', '.join(known) or '(none)'}")
    return teams.value[team]


def _flow(value: Any) -> str:
    """A value as one line of YAML (flow style), e.g. {min_items: 1, max_items: 10}."""
    text = yaml.safe_dump({"v": value}, default_flow_style=True, sort_keys=False, width=10**9).strip()
    return text[len("{v: "):-1]


def _render(chain: list[str], body: dict, indent: int) -> list[str]:
    """Lines for `chain[0]: chain[1]: ... chain[-1]: body` as nested block mappings; the body's values
    are written one per line in flow style, an empty body as `{}`."""
    out = [f"{' ' * (indent + INDENT * i)}{part}:\n" for i, part in enumerate(chain[:-1])]
    pad = " " * (indent + INDENT * (len(chain) - 1))
    if not body:
        return out + [f"{pad}{chain[-1]}: {{}}\n"]
    out.append(f"{pad}{chain[-1]}:\n")
    out.extend(f"{pad}{' ' * INDENT}{k}: {_flow(v)}\n" for k, v in body.items())
    return out


def _last_line(node: yaml.Node) -> int:
    """0-based index of the last line holding this node's text."""
    if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and not node.flow_style and node.value:
        last = node.value[-1]
        if isinstance(node, yaml.MappingNode):
            return max(last[0].end_mark.line, _last_line(last[1]))
        return _last_line(last)
    end = node.end_mark
    if end.column == 0 and end.line > node.start_mark.line:  # block scalars end at the next line's start
        return end.line - 1
    return end.line


def _indent_of(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _end_of_block(lines: list[str], last: int, child_indent: int) -> int:
    """Index after the block ending at `last`, including trailing comments indented like its children."""
    end = last + 1
    probe = end
    while probe < len(lines):
        stripped = lines[probe].strip()
        if not stripped:
            probe += 1
            continue
        if stripped.startswith("#") and _indent_of(lines[probe]) >= child_indent:
            probe += 1
            end = probe
            continue
        break
    return end


def _insert(path: Path, lines: list[str], parent: Node, container: list[str], key: str, body: dict) -> None:
    """Inserts `key: body` under parent[container...], creating the container mappings it lacks."""
    node = parent
    missing: list[str] = []
    for part in container:
        child = None if missing else _child(node, part)
        if child is None:
            missing.append(part)
        else:
            node = child
    _insert_into(path, lines, node, [*missing, key], body)


def _insert_into(path: Path, lines: list[str], node: Node, chain: list[str], body: dict) -> None:
    key = chain[0]
    ynode = node.yaml_node
    if node.kind == "map" and ynode is not None and node.value and not node.flow:
        indent = ynode.value[0][0].start_mark.column
        at = _end_of_block(lines, _last_line(ynode), indent)
        lines[at:at] = _render(chain, body, indent)
        return
    if node.kind == "map" and ynode is None:  # empty document
        lines.extend(_render(chain, body, 0))
        return
    if node.key_line is None:  # the top level of a file that is only '{}' or similar
        raise UsageError(f"{path}:{node.line}: cannot add {key!r} to a flow-style top level; "
                         "write the file in block style (key: value lines)")
    empty_map = node.kind == "map" and not node.value
    empty = node.kind == "scalar" and node.value is None
    if not (empty_map or empty):
        raise UsageError(f"{path}:{node.line}: cannot add {key!r} here: expected a block mapping (key: value "
                         f"lines) or an empty value; rewrite the flow-style value in block style")
    # `name: {}` / `name: ~` / `name:` -> `name:` followed by the new block.
    row = node.key_line - 1
    if ynode is not None and ynode.start_mark.line == row and ynode.end_mark.line == row:
        text = lines[row]
        lines[row] = text[:ynode.start_mark.column].rstrip() + text[ynode.end_mark.column:].rstrip(" ")
        if not lines[row].endswith("\n"):
            lines[row] += "\n"
    elif ynode is not None:
        raise UsageError(f"{path}:{node.line}: cannot add {key!r}: the empty value spans several lines")
    lines[row + 1:row + 1] = _render(chain, body, (node.key_col or 0) + INDENT)


def _commit(path: Path, lines: list[str], what: str, write: bool = True) -> None:
    """Validates the edited text with the rest of the configuration, then (with `write`) replaces the file
    atomically."""
    text = "".join(lines)
    try:
        load_config(path.stem, path.parent, env_text=text)
    except ConfigError as exc:
        details = "\n".join(f"  {p}" for p in exc.problems)
        raise UsageError(f"{path}: adding {what} would leave the configuration invalid; the file was not "
                         f"changed:\n{details}") from exc
    if not write:
        return
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
