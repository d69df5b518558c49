"""Runs a checkov script in checkov's own interpreter, with one named patch: `jsonpath_parser_built_once`.

`python checkov_launch.py <checkov script> <checkov arguments...>`. This file is run by checkov's interpreter
(its own virtual environment, see sdlf_cli/checkov_scan.py), so it imports nothing from sdlf_cli.

checkov's graph builder parses a JSONPath expression for every attribute it renders (each `Fn::Sub` with a
pseudo parameter, each edge between resources), and its JSONPath parser (bc_jsonpath_ng) builds PLY's LALR
tables again on every parse: more than half of checkov's CPU on a lake's templates (10.3 -> 6.0 s on the dev
lake, the same 279 results). The tables depend only on the parser's grammar, so the patch builds one parser per
grammar (and thread: a PLY parser keeps its stacks on itself while it parses) and hands it to every later parse.
The grammar's actions build nodes from their arguments only, so which instance's bound actions are kept does
not matter. The seam test (tests/unit/test_checkov_launch.py) parses the same expressions with and without it.
"""
from __future__ import annotations

import gc
import os
import runpy
import sys
import threading
from collections.abc import Callable


def jsonpath_parser_built_once() -> Callable[[], None] | None:
    """Applies the patch; returns the function that removes it, or None when checkov's JSONPath parser is not the
    one this patch knows (another checkov version): checkov then runs as it is."""
    try:
        import ply.yacc
        from bc_jsonpath_ng.parser import JsonPathParser
    except ImportError:
        return None
    build = ply.yacc.yacc
    built = threading.local()

    def yacc(*args, **kwargs):
        grammar = kwargs.get("module")
        if args or not isinstance(grammar, JsonPathParser):
            return build(*args, **kwargs)
        key = (type(grammar), *sorted((name, repr(value)) for name, value in kwargs.items() if name != "module"))
        parsers = built.__dict__.setdefault("parsers", {})
        if key not in parsers:
            parsers[key] = build(*args, **kwargs)
        return parsers[key]

    ply.yacc.yacc = yacc

    def remove() -> None:
        ply.yacc.yacc = build

    return remove


def main(argv: list[str]) -> None:
    if len(argv) < 2:
        sys.exit("usage: checkov_launch.py CHECKOV_SCRIPT [ARGUMENTS...]")
    jsonpath_parser_built_once()
    sys.argv = argv[1:]
    # What `python <script>` puts first on the path is the script's folder, not this one (sdlf_cli's modules
    # must not shadow checkov's imports).
    sys.path[0] = os.path.dirname(os.path.abspath(argv[1]))
    runpy.run_path(argv[1], run_name="__main__")


if __name__ == "__main__":
    try:
        main(sys.argv)
    finally:
        gc.freeze()  # checkov's results are out: its graphs and checks need no last collection (sdlf_cli.cli)
