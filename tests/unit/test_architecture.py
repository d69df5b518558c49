"""The shape the README's "Where things go" describes, checked so it stays true as commands are added."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / "sdlf_cli" / "workflows").glob("*.py"))


def _imports(tree: ast.AST) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module.split(".")[0])
    return found


def _calls(tree: ast.AST, name: str) -> list[int]:
    return [node.lineno for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == name]


def test_workflows_reach_aws_only_through_the_gateways():
    offenders = {}
    for path in WORKFLOWS:
        tree = ast.parse(path.read_text())
        found = sorted(_imports(tree) & {"boto3", "botocore", "click"})
        clients = _calls(tree, "client")
        if found or clients:
            offenders[path.name] = (found, clients)
    assert offenders == {}, "workflows import boto3/botocore/click or build clients: " + repr(offenders)


def test_only_main_picks_an_exit_code():
    """Commands return their result; ui.output.emit picks the code, main() is the error boundary."""
    tree = ast.parse((ROOT / "sdlf_cli" / "cli.py").read_text())
    main = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "main")
    exits = [line for node in tree.body if node is not main for line in _calls(node, "exit")]
    assert exits == [], f"cli.py exits outside main(): lines {exits}"
