"""What every `sdlf` command pays before it runs: the CLI and its output renderers import no linter or graph
library (cfn-lint with sympy ~0.7 s, networkx ~0.14 s); the commands that lint or deploy import them."""
from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("cfnlint", "sympy", "networkx")


def _imported_after(statement: str) -> list[str]:
    code = f"{statement}\nimport json, sys\nprint(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_the_cli_and_its_renderers_start_without_the_linter_or_the_graph_library():
    assert _imported_after("import sdlf_cli.cli, sdlf_cli.ui.text, sdlf_cli.ui.output, sdlf_cli.workflows.status") == []


def test_linting_and_building_a_deploy_graph_still_import_them():
    assert _imported_after(
        "from sdlf_cli.lint import cfn_lint_rules; cfn_lint_rules()\n"
        "from sdlf_cli.deploy.dag import build_graph; build_graph([])") == ["cfnlint", "networkx", "sympy"]
