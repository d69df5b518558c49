"""Checks a merged parameters tree and builds the LakeConfig, collecting every problem before failing.

Each check says what was expected and where (`file:line: field: message`): the sections here (root, teams,
pipelines, datasets), generic checks in `checks`, quality rules in `quality_rules`, the `cicd` section in
`cicd`. After the schema, every name the lake will create is derived with the longest account id and region
substituted and checked against AWS limits (`name_limits`), so an accepted file never yields a name AWS rejects.
"""
from __future__ import annotations

import re
from typing import Any

from sdlf_cli.config import heavy_transform
from sdlf_cli.config.checks import (ACCOUNT_RE, APP_RULE, DATASET_RULE, ENV_RULE, ORG_RULE, PARTITION_RULE,
                                    PIPELINE_RULE, TEAM_RULE, TRANSFORM_RULE, known_regions)
from sdlf_cli.config.checks import Checker as _Checker
from sdlf_cli.config.checks import describe as _describe
from sdlf_cli.config.checks import fmt as _fmt
from sdlf_cli.config.checks import is_number as _is_number
from sdlf_cli.config.checks import suggest as _suggest
from sdlf_cli.config.cicd import RETENTION_DAYS, build_cicd
from sdlf_cli.config.model import Dataset, DatasetSettings, LakeConfig, Origin, Pipeline, Team
from sdlf_cli.config.name_limits import check_names
from sdlf_cli.config.quality_rules import check_quality as _check_quality
from sdlf_cli.config.tree import Node
from sdlf_cli.errors import ConfigError, Problem
from sdlf_cli.local.runtime.schedule_expressions import ScheduleError, parse_schedule


# What a Lake Formation data lake administrator may be (the template parameter's AllowedPattern too).
LAKE_FORMATION_ADMIN_RE = re.compile(r"arn:aws[a-z-]*:iam::[0-9]{12}:(role|user)/[\w+=,.@/-]+")
ROOT_KEYS = ("org", "app", "env", "region", "account", "notification_email", "lake_formation", "lake_formation_admins",
             "termination_protection", "log_retention_days", "teams", "cicd")
ROOT_REQUIRED = ("org", "app", "region")
TEAM_KEYS = ("notification_email", "pipelines", "datasets")
PIPELINE_KEYS = ("description",)
DATASET_KEYS = ("pipeline", "description", "transform", "engine", "schedule", "batch", "partition_by", "quality",
                *heavy_transform.KEYS)
BATCH_KEYS = ("min_items", "max_items")
ENGINES = ("python", "spark")
MAX_BATCH = 10000


def dataset_defaults() -> dict[str, Any]:
    """A fresh copy of the defaults every Dataset.settings starts from, as plain values."""
    return DatasetSettings().to_dict()


# --- sections ------------------------------------------------------------------------------------
def _check_schedule(ck: _Checker, node: Node, path: tuple) -> str | None:
    value = ck.string(node, path, "a schedule expression like rate(5 minutes) or cron(0 2 * * ? *)")
    if value is None:
        return None
    try:
        parse_schedule(value)
    except ScheduleError as exc:
        ck.add(node, path, str(exc))
        return None
    return value


def _check_batch(ck: _Checker, node: Node, path: tuple) -> dict | None:
    entries = ck.mapping(node, path, BATCH_KEYS)
    if entries is None:
        return None
    batch = dataset_defaults()["batch"]
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


def _check_dataset(ck: _Checker, node: Node, path: tuple, team: str, name: str,
                   pipelines: dict[str, Node], pipeline_names_ok: set[str]) -> Dataset | None:
    entries = ck.mapping(node, path, DATASET_KEYS, ("pipeline",), null_ok=True)
    if entries is None:
        return None
    ok = "pipeline" in entries
    pipeline = description = transform = glue = None
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
        elif key == "heavy_transform":
            value = transform = heavy_transform.check_transform(
                ck, child, p, _check_columns, _check_quality, heavy_transform.project_root(ck.env_file))
        elif key == "glue":
            value = glue = heavy_transform.check_glue(ck, child, p)
        else:
            value = _check_quality(ck, child, p)
        if value is None:
            ok = False
        elif key not in ("pipeline", "description", *heavy_transform.KEYS):
            settings[key] = value
    if not ok:
        return None
    settings["stage_b"] = heavy_transform.resolve(ck, node, path, name, settings, transform, glue, "quality" in entries)
    if settings["stage_b"] is None:
        return None
    return Dataset(name=name, team=team, pipeline=pipeline, description=description or "",
                   settings=DatasetSettings.from_dict(settings))


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


def _lake_formation_admins(ck, node) -> tuple[str, ...]:
    """A list of IAM role or user ARNs (Lake Formation administrators take no groups nor assumed-role ARNs)."""
    path = ("lake_formation_admins",)
    if node.kind != "seq":
        ck.add(node, path, f"expected a list of IAM role or user ARNs, got {_describe(node)}")
        return ()
    admins = []
    for index, item in enumerate(node.value):
        arn = ck.string(item, path + (index,), "an IAM role or user ARN")
        if arn is None:
            continue
        if not LAKE_FORMATION_ADMIN_RE.fullmatch(arn):
            ck.add(item, path + (index,), f"expected an IAM role or user ARN (arn:aws:iam::<account>:role/<name> "
                                          f"or :user/<name>), got {arn!r}")
            continue
        admins.append(arn)
    return tuple(dict.fromkeys(admins))


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
    admins = _lake_formation_admins(ck, root["lake_formation_admins"]) if "lake_formation_admins" in root else ()
    protection = (ck.boolean(root["termination_protection"], ("termination_protection",))
                  if "termination_protection" in root else None)
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
                         lake_formation_admins=admins,
                         termination_protection=protection, log_retention_days=retention, teams=tuple(teams),
                         cicd=cicd, origins=origins, files=files)
        problems.extend(check_names(cfg, env_file))
    if problems:
        order = {f: i for i, f in enumerate(files)}
        problems.sort(key=lambda p: (order.get(p.file, -1), p.line or 0))
        raise ConfigError(problems)
    return cfg
