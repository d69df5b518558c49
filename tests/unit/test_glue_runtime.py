"""The Glue scripts fit the Glue runtimes they run on, and the jobs install exactly what they import.

- vermin (pinned in setup.py) finds nothing in glue/*.py and glue/transforms/*.py that needs a newer
  Python than 3.9 (Glue Python shell 3.9; Glue 5.0 ETL runs 3.11).
- The modules the dataset template installs (`--additional-python-modules`) are exactly the third-party
  modules the scripts import, less what the runtime brings, plus the libraries their imports need at
  run time; each pinned as in setup.py.
- Every pin has a binary wheel for its runtime's Python and platform: checked offline against the file
  names pip picked when tests/fixtures/glue_wheels.json was recorded (scripts/record_glue_wheels.py).
"""
from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

from packaging.tags import compatible_tags, cpython_tags
from packaging.utils import parse_wheel_filename

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "templates" / "dataset" / "dataset.yaml.j2"
WHEELS = ROOT / "tests" / "fixtures" / "glue_wheels.json"
SCRIPTS = sorted((ROOT / "glue").glob("*.py")) + sorted((ROOT / "glue" / "transforms").glob("*.py"))
# runtime -> (template variable of its pins, Python version, platform)
RUNTIMES = {"pythonshell-3.9": ("python_modules", "3.9", "manylinux2014_x86_64"),
            "glueetl-5.0": ("spark_modules", "3.11", "manylinux2014_x86_64")}
# What each runtime already has (Glue's own set); everything else the scripts import must be installed.
PROVIDED = {"python_modules": {"boto3", "botocore"},
            "spark_modules": {"boto3", "botocore", "pyspark", "pyarrow", "pandas", "numpy", "duckdb"}}
# Installed though no script imports it: what an import needs at run time.
NEEDED_BY_IMPORTS = {"pandas": "cuallee's DuckDB checks return pandas frames",
                     "numpy": "pandas and pyarrow's conversions"}
SPARK_ONLY = {"pyspark"}


def template_pins() -> dict[str, list[str]]:
    text = TEMPLATE.read_text()
    return {name: re.search(rf'set {name} = "([^"]+)"', text).group(1).split(",") for name in ("python_modules", "spark_modules")}


def _imports() -> set[str]:
    modules = set()
    for script in SCRIPTS:
        for node in ast.walk(ast.parse(script.read_text(), filename=str(script))):
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    return {m for m in modules if m not in sys.stdlib_module_names}


def test_the_scripts_need_no_newer_python_than_the_glue_runtimes():
    completed = subprocess.run(
        [str(Path(sys.executable).parent / "vermin"), "--no-tips", "--violations", "--target=3.9-", "--eval-annotations",
         "--backport", "typing", *map(str, SCRIPTS)],
        capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert len(SCRIPTS) >= 3 and ROOT / "glue" / "transforms" / "legislators.py" in SCRIPTS


def test_the_jobs_install_exactly_what_the_scripts_import_pinned_as_in_setup_py():
    pins = template_pins()
    setup = dict(re.findall(r'"([A-Za-z0-9_.-]+)==([^"]+)"', (ROOT / "setup.py").read_text()))
    imports = _imports()
    for job, modules in pins.items():
        names = {pin.split("==")[0] for pin in modules}
        for pin in modules:
            name, version = pin.split("==")
            assert setup.get(name) == version, f"{job}: {pin} is not setup.py's pin ({name}=={setup.get(name)})"
        wanted = imports - PROVIDED[job] - (SPARK_ONLY if job == "python_modules" else set())
        assert wanted <= names, f"{job} misses {sorted(wanted - names)}, which the scripts import"
        extra = names - imports - set(NEEDED_BY_IMPORTS)
        assert not extra, f"{job} installs {sorted(extra)}, which no script imports"
    assert {"pyarrow", "duckdb", "cuallee", "boto3", "pyspark"} <= imports


def test_every_pin_has_a_wheel_for_its_runtime():
    pins = template_pins()
    recorded = json.loads(WHEELS.read_text())["runtimes"]
    assert set(recorded) == set(RUNTIMES)
    for runtime, (job, version, platform) in RUNTIMES.items():
        major, minor = map(int, version.split("."))
        platforms = [f"manylinux_2_{glibc}_x86_64" for glibc in range(17, 4, -1)] + [platform, "linux_x86_64"]
        supported = set(cpython_tags((major, minor), platforms=platforms)) | \
            set(compatible_tags((major, minor), platforms=platforms))
        wheels = {parse_wheel_filename(name)[0]: parse_wheel_filename(name) for name in recorded[runtime]["wheels"]}
        for pin in pins[job]:
            name, version_pin = pin.split("==")
            assert name in wheels, f"{runtime}: no wheel recorded for {pin}; run scripts/record_glue_wheels.py"
            _, wheel_version, _, tags = wheels[name]
            assert str(wheel_version) == version_pin, f"{runtime}: recorded {name} {wheel_version}, pinned {version_pin}"
            assert tags & supported, f"{runtime}: {name} {wheel_version} has no wheel for Python {version} on {platform}"
