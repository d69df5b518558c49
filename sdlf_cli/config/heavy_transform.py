"""A dataset's stage-B heavy transform, output tables and Glue settings: checked, then resolved.

In the parameters file (every key optional):

    heavy_transform:
      sql: "SELECT ... FROM input"            # one output table, named after the dataset
      # sql: {history: "SELECT ...", persons: "SELECT ..."}   several output tables
      # script: glue/transforms/<name>.py     a function transform(batch, context) -> {table: rows}
      tables:                                 # per output table (a script's outputs are listed here)
        history: {partition_by: [org_name], quality: [...]}
    glue:
      worker_type: G.1X        # spark: G.1X | G.2X | G.4X | G.8X
      workers: 2               # spark: 2-1000
      dpu: 0.0625              # python: 0.0625 or 1 (what a Glue Python shell job accepts)
      timeout: 60              # minutes, 1-2880
      max_concurrency: 3       # concurrent runs of the dataset's jobs, 1-1000
      arguments: {"--conf-name": "value"}   # extra job arguments ("--" names; not the ones sdlf sets)

The dataset's own `partition_by` and `quality` are the defaults of every output table without its own.
`resolve` puts the outcome in the dataset settings under "stage_b": the transform kind, the script path and
its artifact parameter, each output table (name, partition_by, quality, SQL for DuckDB and for Spark) and
the Glue settings with the engine's defaults filled in.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any, Callable

from sdlf_cli.config.transform_sql import SqlSubsetError, translate

KEYS = ("heavy_transform", "glue")
TRANSFORM_KEYS = ("sql", "script", "tables")
TABLE_KEYS = ("partition_by", "quality")
GLUE_KEYS = ("worker_type", "workers", "dpu", "timeout", "max_concurrency", "arguments")
SPARK_ONLY = ("worker_type", "workers")
PYTHON_ONLY = ("dpu",)
WORKER_TYPES = ("G.1X", "G.2X", "G.4X", "G.8X")  # Glue 5.0 ETL jobs
MAX_WORKERS = 1000
PYTHON_SHELL_DPU = (0.0625, 1)  # the only MaxCapacity values a Glue Python shell job takes
MAX_TIMEOUT_MINUTES = 2880  # 48 hours
MAX_CONCURRENT_RUNS = 1000
GLUE_DEFAULTS = {
    "python": {"dpu": 0.0625, "timeout": 60, "max_concurrency": 3, "arguments": {}},
    "spark": {"worker_type": "G.1X", "workers": 2, "timeout": 60, "max_concurrency": 3, "arguments": {}},
}
# Arguments sdlf sets itself, and the ones Glue reserves for its own use.
RESERVED_ARGUMENTS = ("--engine", "--manifest", "--transform", "--tables", "--additional-python-modules",
                      "--python-modules-installer-option", "--JOB_NAME", "--JOB_ID", "--JOB_RUN_ID",
                      "--SECURITY_CONFIGURATION", "--scriptLocation")
ARGUMENT_RE = re.compile(r"--[A-Za-z][A-Za-z0-9_.-]{0,127}")
TABLE_RE = re.compile(r"[a-z][a-z0-9_]{0,62}")
SCRIPT_RE = re.compile(r"glue/transforms/([a-z][a-z0-9_]{0,62})\.py")
SCRIPT_ARTIFACT_PREFIX = "transform_"


def table_name(dataset: str) -> str:
    """The default output table: the dataset name as a Glue/Athena identifier."""
    return re.sub(r"[^a-z0-9_]", "_", dataset.lower())


def script_artifact(path: str) -> str:
    """glue/transforms/legislators.py -> the Glue artifact name `transform_legislators`."""
    match = SCRIPT_RE.fullmatch(path)
    return SCRIPT_ARTIFACT_PREFIX + match.group(1) if match else ""


def check_transform(ck: Any, node: Any, path: tuple, check_columns: Callable, check_quality: Callable,
                    root: Path | None) -> dict | None:
    """The `heavy_transform` mapping, checked: {"sql": {table: TranslatedSql} | None, "script", "tables"}."""
    entries = ck.mapping(node, path, TRANSFORM_KEYS, null_ok=True)
    if entries is None:
        return None
    ok = True
    out: dict[str, Any] = {"sql": None, "script": None, "tables": {}}
    if "sql" in entries and "script" in entries:
        ck.add(entries["script"], path + ("script",), "give either sql or script, not both", at_key=True)
        ok = False
    if "sql" in entries:
        out["sql"] = _check_sql(ck, entries["sql"], path + ("sql",))
        ok = ok and out["sql"] is not None
    if "script" in entries and "sql" not in entries:
        out["script"] = _check_script(ck, entries["script"], path + ("script",), root)
        ok = ok and out["script"] is not None
    if "tables" in entries:
        tables = _check_tables(ck, entries["tables"], path + ("tables",), check_columns, check_quality)
        if tables is None:
            ok = False
        else:
            out["tables"] = tables
            if isinstance(out["sql"], dict) and set(out["sql"]) != {None} and set(tables) - set(out["sql"]):
                extra = sorted(set(tables) - set(out["sql"]))
                ck.add(entries["tables"], path + ("tables",),
                       f"table(s) {', '.join(extra)} have no query under sql; expected one of: "
                       f"{', '.join(sorted(k for k in out['sql'] if k))}", at_key=True)
                ok = False
    if "sql" not in entries and "script" not in entries and entries:
        ck.add(node, path, "expected sql: \"SELECT ... FROM input\" or script: glue/transforms/<name>.py")
        ok = False
    return out if ok else None


def _check_sql(ck: Any, node: Any, path: tuple) -> dict | None:
    """{None: sql} for one statement (the dataset's table), {table: sql} for several."""
    if node.kind == "scalar" and isinstance(node.value, str):
        statements = {None: (node, path)}
    elif node.kind == "map" and node.value:
        statements = {}
        for name, child in node.value.items():
            if not TABLE_RE.fullmatch(name):
                ck.add(child, path + (name,), f"invalid table name {name!r}: expected lowercase letters, digits "
                                              "and underscores starting with a letter, 1-63 characters", at_key=True)
                return None
            statements[name] = (child, path + (name,))
    else:
        ck.add(node, path, "expected a SELECT statement reading from input, or a mapping of table name to "
                           "SELECT statement")
        return None
    out = {}
    for name, (child, where) in statements.items():
        if not (child.kind == "scalar" and isinstance(child.value, str)):
            ck.add(child, where, "expected a SELECT statement reading from input")
            return None
        try:
            out[name] = translate(child.value)
        except SqlSubsetError as exc:
            ck.add(child, where, str(exc))
            return None
    return out


def _check_script(ck: Any, node: Any, path: tuple, root: Path | None) -> str | None:
    value = ck.string(node, path, "a path like glue/transforms/<name>.py")
    if value is None:
        return None
    if not SCRIPT_RE.fullmatch(value):
        ck.add(node, path, f"expected glue/transforms/<name>.py (name: lowercase letters, digits, underscores), "
                           f"got {value!r}")
        return None
    if root is not None:
        file = root / value
        if not file.is_file():
            ck.add(node, path, f"{value} does not exist (relative to {root})")
            return None
        try:
            tree = ast.parse(file.read_text(encoding="utf-8"), filename=str(file))
        except SyntaxError as exc:
            ck.add(node, path, f"{value} line {exc.lineno}: {exc.msg}")
            return None
        functions = {f.name: f for f in tree.body if isinstance(f, ast.FunctionDef)}
        function = functions.get("transform")
        if function is None or len(function.args.args) != 2:
            ck.add(node, path, f"{value} must define transform(batch, context) at its top level")
            return None
    return value


def _check_tables(ck: Any, node: Any, path: tuple, check_columns: Callable, check_quality: Callable) -> dict | None:
    if node.kind == "seq":  # a list of names: every table with the dataset's defaults
        items = {}
        for index, item in enumerate(node.value):
            name = item.value if item.kind == "scalar" else None
            if not isinstance(name, str) or not TABLE_RE.fullmatch(name):
                ck.add(item, path + (index,), f"expected a table name (lowercase letters, digits, underscores), "
                                              f"got {item.raw if item.kind == 'scalar' else 'a ' + item.kind}")
                return None
            items[name] = {}
        return items
    if node.kind != "map" or not node.value:
        ck.add(node, path, "expected a list of table names or a mapping table: {partition_by, quality}")
        return None
    tables: dict[str, dict] = {}
    ok = True
    for name, child in node.value.items():
        where = path + (name,)
        if not TABLE_RE.fullmatch(name):
            ck.add(child, where, f"invalid table name {name!r}: expected lowercase letters, digits and "
                                 "underscores starting with a letter, 1-63 characters", at_key=True)
            ok = False
            continue
        entries = ck.mapping(child, where, TABLE_KEYS, null_ok=True)
        if entries is None:
            ok = False
            continue
        settings = {}
        if "partition_by" in entries:
            settings["partition_by"] = check_columns(ck, entries["partition_by"], where + ("partition_by",))
        if "quality" in entries:
            settings["quality"] = check_quality(ck, entries["quality"], where + ("quality",))
        if any(v is None for v in settings.values()):
            ok = False
        tables[name] = settings
    return tables if ok else None


def check_glue(ck: Any, node: Any, path: tuple) -> dict | None:
    entries = ck.mapping(node, path, GLUE_KEYS, null_ok=True)
    if entries is None:
        return None
    out: dict[str, Any] = {}
    ok = True
    for key, child in entries.items():
        where = path + (key,)
        if key == "worker_type":
            value = ck.choice(child, where, WORKER_TYPES)
        elif key == "workers":
            value = ck.integer(child, where, 2, MAX_WORKERS)
        elif key == "dpu":
            value = child.value if child.kind == "scalar" else None
            if value not in PYTHON_SHELL_DPU or isinstance(value, bool):
                ck.add(child, where, f"a Glue Python shell job takes 0.0625 or 1 DPU, got {child.raw}")
                value = None
        elif key == "timeout":
            value = ck.integer(child, where, 1, MAX_TIMEOUT_MINUTES)
        elif key == "max_concurrency":
            value = ck.integer(child, where, 1, MAX_CONCURRENT_RUNS)
        else:
            value = _check_arguments(ck, child, where)
        if value is None:
            ok = False
        else:
            out[key] = value
    return out if ok else None


def _check_arguments(ck: Any, node: Any, path: tuple) -> dict | None:
    if node.kind != "map":
        ck.add(node, path, 'expected a mapping of job arguments like {"--datalake-formats": "delta"}')
        return None
    out = {}
    for name, child in node.value.items():
        if not ARGUMENT_RE.fullmatch(name):
            ck.add(child, path + (name,), f"a Glue job argument is named --<letters, digits, _ . ->, got {name!r}",
                   at_key=True)
            return None
        if name in RESERVED_ARGUMENTS:
            ck.add(child, path + (name,), f"{name} is set by sdlf or reserved by Glue; reserved: "
                                          f"{', '.join(RESERVED_ARGUMENTS)}", at_key=True)
            return None
        value = child.value if child.kind == "scalar" else None
        if value is None or isinstance(value, bool) or not isinstance(value, (str, int, float)):
            ck.add(child, path + (name,), "expected a string value (quote it)")
            return None
        out[name] = str(value)
    return out


def _at(node: Any, *keys: str) -> Any:
    """The node at `keys` below `node` (for the line of a problem), or the deepest one that exists."""
    for key in keys:
        if node.kind != "map" or key not in node.value:
            break
        node = node.value[key]
    return node


def project_root(env_file: str) -> Path | None:
    """The project a parameters file belongs to (scripts are relative to it), when it is laid out so."""
    folder = Path(env_file).resolve().parent
    return folder.parent if folder.name == "parameters" else None


def resolve(ck: Any, node: Any, path: tuple, dataset: str, settings: dict, transform: dict | None,
            glue: dict | None, quality_given: bool) -> dict | None:
    """settings["stage_b"]: the transform and its output tables, and the Glue settings for the engine."""
    engine = settings["engine"]
    transform = transform or {"sql": None, "script": None, "tables": {}}
    glue = dict(glue or {})
    wrong = SPARK_ONLY if engine == "python" else PYTHON_ONLY
    misplaced = [key for key in wrong if key in glue]
    if misplaced:
        ck.add(_at(node, "glue", misplaced[0]), path + ("glue", misplaced[0]),
               f"{misplaced[0]} is for the {'spark' if engine == 'python' else 'python'} engine; this dataset's "
               f"engine is {engine} ({'worker_type, workers' if engine == 'spark' else 'dpu'} apply)")
        return None
    glue = {**GLUE_DEFAULTS[engine], **glue}
    sql = transform["sql"]
    declared = transform["tables"]
    if sql is not None and None not in sql:
        names = list(sql)
    elif declared:
        names = list(declared)
    else:
        names = [table_name(dataset)]
    if sql is not None and None in sql and len(names) != 1:
        ck.add(_at(node, "heavy_transform", "sql"), path + ("heavy_transform", "sql"),
               "one sql statement gives one table; name several under sql: {table: SELECT ...}")
        return None
    if len(names) > 1 and quality_given:
        ck.add(_at(node, "quality"), path + ("quality",), "with several output tables, put each table's rules under "
                                          "heavy_transform.tables.<table>.quality")
        return None
    tables = []
    for name in names:
        own = declared.get(name, {})
        query = (sql.get(name) or sql.get(None)) if sql is not None else None
        tables.append({
            "name": name,
            "partition_by": own.get("partition_by", settings["partition_by"]),
            "quality": own.get("quality", settings["quality"]),
            "sql": {"python": query.duckdb, "spark": query.spark} if query is not None else None,
        })
    script = transform["script"]
    kind = "sql" if sql is not None else "script" if script else "none"
    return {"kind": kind, "script": script, "script_artifact": script_artifact(script) if script else None,
            "tables": tables, "glue": glue}
