"""Reads `parameters/<env>.yaml` over an optional `parameters/base.yaml` into one tree of `Node`s.

The files are read with PyYAML's composer rather than `safe_load`, so every key and value keeps the
line it was written on: problems are reported as `file:line: field: message`, and `config show`
can say which file supplied each value. Duplicate keys (which `safe_load` silently collapses) are
caught here. The tree becomes a LakeConfig in `validate` (through `loader.load_config`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor

from sdlf_cli.errors import Problem

BASE_FILE = "base.yaml"
MERGE_TAG = "tag:yaml.org,2002:merge"
# Guards against an alias that points at one of its own ancestors.
MAX_DEPTH = 64


@dataclass
class Node:
    """A parsed YAML value with the place it was written.

    `value` is a dict[str, Node] for mappings, a list[Node] for sequences and the constructed
    Python value (str, int, bool, ...) for scalars. `key_line` is the line of the key holding the
    value (None for the document root and list items).
    """

    kind: str  # "map" | "seq" | "scalar"
    value: Any
    file: str
    line: int
    key_line: int | None = None
    key_col: int | None = None  # 0-based column of that key (the editor indents new entries by it)
    raw: str | None = None  # source text of a scalar, e.g. '123456789012' for an unquoted number
    tag: str = ""
    flow: bool = False
    yaml_node: Any = field(default=None, repr=False, compare=False)

    @property
    def where(self) -> int:
        """The line to point at for this value: its key when it has one."""
        return self.key_line or self.line

    def plain(self) -> Any:
        """The value as plain Python data (dicts, lists, scalars)."""
        if self.kind == "map":
            return {k: v.plain() for k, v in self.value.items()}
        if self.kind == "seq":
            return [v.plain() for v in self.value]
        return self.value


def format_path(parts: tuple | list) -> str:
    """('teams', 'eng', 'quality', 0, 'column') -> 'teams.eng.quality[0].column'."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


class _Converter:
    """Turns a composed yaml node graph into Node trees, collecting problems instead of raising."""

    def __init__(self, file: str, problems: list[Problem]):
        self.file = file
        self.problems = problems
        self.constructor = SafeConstructor()

    def convert(self, node: yaml.Node, path: tuple, key_line: int | None = None, depth: int = 0) -> Node:
        line = node.start_mark.line + 1
        if depth > MAX_DEPTH:
            self.problems.append(Problem(self.file, line, format_path(path) or "yaml",
                                         "nesting too deep (a recursive alias?)"))
            return Node("scalar", None, self.file, line, key_line)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path, key_line, depth)
        if isinstance(node, yaml.SequenceNode):
            items = [self.convert(item, path + (i,), None, depth + 1) for i, item in enumerate(node.value)]
            return Node("seq", items, self.file, line, key_line, tag=node.tag, flow=bool(node.flow_style),
                        yaml_node=node)
        try:
            value = self.constructor.construct_object(node, deep=True)
        except ConstructorError as exc:
            self.problems.append(Problem(self.file, line, format_path(path) or "yaml",
                                         f"cannot read value {node.value!r}: {exc.problem}"))
            value = None
        return Node("scalar", value, self.file, line, key_line, raw=node.value, tag=node.tag, yaml_node=node)

    def _mapping(self, node: yaml.MappingNode, path: tuple, key_line: int | None, depth: int) -> Node:
        entries: dict[str, Node] = {}
        first_line: dict[str, int] = {}
        merged: dict[str, Node] = {}
        for key_node, value_node in node.value:
            kline = key_node.start_mark.line + 1
            if key_node.tag == MERGE_TAG:
                # `<<: *anchor` — explicit keys of this mapping win over merged ones.
                for source in (value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]):
                    part = self.convert(source, path, kline, depth + 1)
                    if part.kind != "map":
                        self.problems.append(Problem(self.file, kline, format_path(path) or "yaml",
                                                     "'<<' merge expects a mapping or a list of mappings"))
                        continue
                    for k, v in part.value.items():
                        merged.setdefault(k, v)
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.problems.append(Problem(self.file, kline, format_path(path) or "yaml",
                                             "expected a plain name as key, got a mapping or list"))
                continue
            key = key_node.value
            child_path = path + (key,)
            if key in entries:
                self.problems.append(Problem(self.file, kline, format_path(child_path),
                                             f"duplicate key {key!r} (first defined at line {first_line[key]}); "
                                             "a key may appear only once in a mapping"))
                continue
            first_line[key] = kline
            entries[key] = self.convert(value_node, child_path, kline, depth + 1)
            entries[key].key_col = key_node.start_mark.column
        for k, v in merged.items():
            entries.setdefault(k, v)
        return Node("map", entries, self.file, node.start_mark.line + 1, key_line, tag=node.tag,
                    flow=bool(node.flow_style), yaml_node=node)


def parse_text(text: str, file: str, problems: list[Problem]) -> Node | None:
    """Parses one YAML document; syntax errors become a Problem with the line and None is returned."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        detail = exc.problem or "syntax error"
        if exc.context:
            detail = f"{detail} ({exc.context}"
            if exc.context_mark is not None and exc.context_mark is not mark:
                detail += f" at line {exc.context_mark.line + 1}"
            detail += ")"
        problems.append(Problem(file, mark.line + 1 if mark else None, "yaml", f"invalid YAML: {detail}"))
        return None
    except yaml.YAMLError as exc:  # reader errors (e.g. control characters) carry no mark
        problems.append(Problem(file, None, "yaml", f"invalid YAML: {exc}"))
        return None
    if root is None:  # an empty file (or only comments) is an empty mapping
        return Node("map", {}, file, 1)
    return _Converter(file, problems).convert(root, ())


def read_file(path: Path, display: str, problems: list[Problem]) -> Node | None:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        problems.append(Problem(display, None, "yaml", f"file is not UTF-8 text: {exc.reason} at byte {exc.start}"))
        return None
    except OSError as exc:
        problems.append(Problem(display, None, "yaml", f"cannot read file: {exc.strerror}"))
        return None
    return _top_level(parse_text(text, display, problems), display, problems)


def _top_level(tree: Node | None, display: str, problems: list[Problem]) -> Node | None:
    if tree is not None and tree.kind != "map":
        problems.append(Problem(display, tree.line, "yaml",
                                "expected a mapping of settings (key: value lines) at the top level"))
        return None
    return tree


def merge(base: Node, over: Node) -> Node:
    """Deep merge of mappings; anything else in `over` replaces the base value (lists included)."""
    if base.kind == "map" and over.kind == "map":
        entries = dict(base.value)
        for key, value in over.value.items():
            entries[key] = merge(base.value[key], value) if key in base.value else value
        return Node("map", entries, over.file, over.line, over.key_line, tag=over.tag, flow=over.flow,
                    yaml_node=over.yaml_node)
    return over


def available_envs(parameters_dir: Path) -> list[str]:
    if not parameters_dir.is_dir():
        return []
    return sorted(p.stem for p in parameters_dir.glob("*.yaml") if p.name != BASE_FILE)


def env_file(env: str, parameters_dir: Path | str = "parameters") -> Path:
    return Path(parameters_dir) / f"{env}.yaml"


def load_tree(env: str, parameters_dir: Path | str = "parameters", *,
              env_text: str | None = None) -> tuple[Node | None, tuple[str, ...], list[Problem]]:
    """Reads and merges base + env files. Returns (merged tree or None, files read, problems).

    `env_text` replaces the env file's content (the editor validates an edit before writing it).
    """
    directory = Path(parameters_dir)
    problems: list[Problem] = []
    path = env_file(env, directory)
    if env_text is None and not path.is_file():
        envs = available_envs(directory)
        found = f"environments found: {', '.join(envs)}" if envs else f"no <env>.yaml files in {directory}"
        problems.append(Problem(str(path), None, "env",
                                f"no parameters file for environment {env!r} (expected {path}); {found}"))
        return None, (), problems
    files: list[str] = []
    base_tree = None
    base_path = directory / BASE_FILE
    if base_path.is_file():
        files.append(str(base_path))
        base_tree = read_file(base_path, str(base_path), problems)
    files.append(str(path))
    if env_text is None:
        env_tree = read_file(path, str(path), problems)
    else:
        env_tree = _top_level(parse_text(env_text, str(path), problems), str(path), problems)
    if env_tree is None:
        return None, tuple(files), problems
    tree = merge(base_tree, env_tree) if base_tree is not None else env_tree
    return tree, tuple(files), problems
