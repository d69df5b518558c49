"""checkov runs through sdlf_cli/checkov_launch.py in its own interpreter, with its JSONPath parser's tables built
once (the patch `jsonpath_parser_built_once`): the patch's seam, and how the command is chosen."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sdlf_cli.checkov_scan import LAUNCHER, checkov_command, find_checkov, script_interpreter
from tests.snapshots import ROOT

# The expressions checkov's graph builder parses (attribute paths, wildcards, indexes, filters) and a few more.
SEAM = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
import ply.yacc
from bc_jsonpath_ng.ext import parse
from checkov_launch import jsonpath_parser_built_once

EXPRESSIONS = ["$..Properties", "$..Tags[*].Key", "Resources.rBucket.Properties.BucketName", "$..Statement[0]",
               "$..Policies[?(@.PolicyName == 'lake')]", "$..`this`", "a.b.c", "$..*", "Outputs.*.Value",
               "$..['Fn::Sub']", "$..Environment.Variables.TABLE", "x[1:3]"]
DATA = {"Resources": {"rBucket": {"Properties": {"BucketName": "raw", "Tags": [{"Key": "k", "Value": "v"}]}}},
        "Policies": [{"PolicyName": "lake", "Statement": [{"Effect": "Allow"}]}], "a": {"b": {"c": 1}},
        "x": [0, 1, 2, 3], "Outputs": {"o": {"Value": {"Fn::Sub": "${AWS::Region}"}}},
        "Environment": {"Variables": {"TABLE": "t"}}}
tables = 0
generate = ply.yacc.LRGeneratedTable.__init__
def counted(self, *args, **kwargs):
    global tables
    tables += 1
    generate(self, *args, **kwargs)
ply.yacc.LRGeneratedTable.__init__ = counted

def run():
    global tables
    tables, out = 0, []
    for text in EXPRESSIONS:
        path = parse(text)
        out.append([str(path), repr(path), sorted(map(str, (m.value for m in path.find(DATA))))])
    return out, tables

plain = run()
remove = jsonpath_parser_built_once()
patched = run()
remove()
after = run()
print(json.dumps({"plain": plain, "patched": patched, "removed": after}))
"""


@pytest.fixture(scope="module")
def checkov_python() -> Path:
    python = script_interpreter(find_checkov(ROOT))
    assert python is not None, "checkov's script names no Python interpreter"
    return python


def test_with_the_patch_every_expression_parses_the_same_and_the_tables_are_built_once(checkov_python):
    done = subprocess.run([str(checkov_python), "-c", SEAM, str(LAUNCHER.parent)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    runs = json.loads(done.stdout)
    (plain, plain_tables), (patched, patched_tables) = runs["plain"], runs["patched"]
    assert patched == plain
    assert [found for *_, found in plain][:3] == [
        ['{\'BucketName\': \'raw\', \'Tags\': [{\'Key\': \'k\', \'Value\': \'v\'}]}'], ["k"], ["raw"]]
    assert plain_tables == len(plain)  # checkov's parser as it ships: the tables again for every expression
    assert patched_tables == 1
    assert runs["removed"] == [plain, plain_tables]  # removed, the parser is checkov's own again


def test_the_launcher_runs_the_script_as_python_would(tmp_path):
    script = tmp_path / "tool"
    script.write_text("import json, sys\nprint(json.dumps([sys.argv, sys.path[0], __name__]))\n")
    done = subprocess.run([sys.executable, str(LAUNCHER), str(script), "--flag", "value"], capture_output=True,
                          text=True, timeout=60, check=True)
    # not this environment's checkov (there is none here): the script runs as it is
    assert json.loads(done.stdout) == [[str(script), "--flag", "value"], str(tmp_path), "__main__"]


def test_a_python_script_runs_through_the_launcher_and_anything_else_as_it_is(tmp_path):
    python = Path(sys.executable)
    script = tmp_path / "checkov"
    script.write_text(f"#!{python}\nprint('checkov')\n")
    assert checkov_command(script) == [str(python), str(LAUNCHER), str(script)]
    script.write_text(f"#!/usr/bin/env {python.name}\nprint('checkov')\n")
    assert script_interpreter(script) is not None
    for first in ("#!/bin/sh", "#!/nowhere/python3", "", "#!/usr/bin/env nosuchpython"):
        script.write_text(f"{first}\nexec checkov\n")
        assert checkov_command(script) == [str(script)], first
