"""CodeBuild buildspec (version 0.2): parsed and checked the way CodeBuild does before a build runs.

A buildspec CodeBuild would refuse raises `BuildspecError`, whose message reads like CodeBuild's own
`YAML_FILE_ERROR` (the field and what was expected), so a failed build says what to fix.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

PHASES = ("install", "pre_build", "build", "post_build")
ON_FAILURE = ("ABORT", "CONTINUE")


class BuildspecError(ValueError):
    """A buildspec CodeBuild rejects with YAML_FILE_ERROR."""


class BuildError(Exception):
    """A build that failed in `phase`, with CodeBuild's status code (COMMAND_EXECUTION_ERROR, CLIENT_ERROR …)."""

    def __init__(self, phase: str, code: str, message: str):
        super().__init__(message)
        self.phase, self.code, self.message = phase, code, message


@dataclass
class Phase:
    name: str
    commands: list[str] = field(default_factory=list)
    finally_commands: list[str] = field(default_factory=list)
    on_failure: str = "ABORT"
    runtime_versions: dict[str, str] = field(default_factory=dict)


@dataclass
class ArtifactSpec:
    files: list[str]
    base_directory: str = ""
    discard_paths: bool = False
    exclude_paths: list[str] = field(default_factory=list)
    name: str | None = None


@dataclass
class Buildspec:
    variables: dict[str, str] = field(default_factory=dict)
    parameter_store: dict[str, str] = field(default_factory=dict)
    secrets_manager: dict[str, str] = field(default_factory=dict)
    exported_variables: list[str] = field(default_factory=list)
    shell: str = "bash"
    phases: list[Phase] = field(default_factory=list)
    artifacts: ArtifactSpec | None = None
    secondary_artifacts: dict[str, ArtifactSpec] = field(default_factory=dict)
    cache_paths: list[str] = field(default_factory=list)  # cache.paths: what the project's cache keeps


def _strings(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (str, int, float)):
        return [str(value)]
    if not isinstance(value, list):
        raise BuildspecError(f"YAML_FILE_ERROR: Expected {where} to be of list type")
    out = []
    for index, item in enumerate(value):
        if isinstance(item, (dict, list)) or item is None:
            raise BuildspecError(f"YAML_FILE_ERROR: Expected {where}[{index}] to be of string type: "
                                 f"found {'subkeys' if isinstance(item, dict) else type(item).__name__} instead")
        out.append(str(item))
    return out


def _string_map(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BuildspecError(f"YAML_FILE_ERROR: Expected {where} to be a map of names to values")
    out = {}
    for key, item in value.items():
        if isinstance(item, (dict, list)):
            raise BuildspecError(f"YAML_FILE_ERROR: Expected {where}.{key} to be of string type")
        out[str(key)] = "" if item is None else (("yes" if item else "no") if isinstance(item, bool) else str(item))
    return out


def _yes(value: Any) -> bool:
    return value is True or str(value).lower() in ("yes", "true")


def _artifact(value: Any, where: str) -> ArtifactSpec:
    if not isinstance(value, dict):
        raise BuildspecError(f"YAML_FILE_ERROR: Expected {where} to be a map")
    files = _strings(value.get("files"), f"{where}.files")
    if not files:
        raise BuildspecError(f"YAML_FILE_ERROR: {where}.files is required and must name at least one path")
    return ArtifactSpec(files=files, base_directory=str(value.get("base-directory") or ""),
                        discard_paths=_yes(value.get("discard-paths", False)),
                        exclude_paths=_strings(value.get("exclude-paths"), f"{where}.exclude-paths"),
                        name=None if value.get("name") is None else str(value["name"]))


def parse(text: str, source: str = "buildspec") -> Buildspec:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise BuildspecError(f"YAML_FILE_ERROR: {source} is not valid YAML{where}: "
                             f"{getattr(exc, 'problem', None) or exc}") from exc
    if not isinstance(document, dict):
        raise BuildspecError(f"YAML_FILE_ERROR: {source} must be a YAML map with version and phases")
    version = str(document.get("version", ""))
    if version != "0.2":
        raise BuildspecError(f"YAML_FILE_ERROR: {source}: version {version or '(missing)'} is not supported; "
                             "expected 0.2")
    spec = Buildspec()
    env = document.get("env") or {}
    if not isinstance(env, dict):
        raise BuildspecError(f"YAML_FILE_ERROR: Expected env in {source} to be a map")
    spec.shell = str(env.get("shell", "bash"))
    if spec.shell not in ("bash", "/bin/sh", "sh"):
        raise BuildspecError(f"YAML_FILE_ERROR: env.shell {spec.shell!r} is not supported on Linux; "
                             "expected bash or /bin/sh")
    spec.variables = _string_map(env.get("variables"), "env.variables")
    spec.parameter_store = _string_map(env.get("parameter-store"), "env.parameter-store")
    spec.secrets_manager = _string_map(env.get("secrets-manager"), "env.secrets-manager")
    spec.exported_variables = _strings(env.get("exported-variables"), "env.exported-variables")
    phases = document.get("phases")
    if not isinstance(phases, dict) or not phases:
        raise BuildspecError(f"YAML_FILE_ERROR: {source} has no phases")
    unknown = sorted(set(map(str, phases)) - set(PHASES))
    if unknown:
        raise BuildspecError(f"YAML_FILE_ERROR: unknown phase(s) {unknown} in {source}; expected {list(PHASES)}")
    for name in PHASES:
        body = phases.get(name)
        if body is None:
            continue
        if not isinstance(body, dict):
            raise BuildspecError(f"YAML_FILE_ERROR: Expected phases.{name} to be a map with commands")
        on_failure = str(body.get("on-failure", "ABORT")).upper()
        if on_failure not in ON_FAILURE:
            raise BuildspecError(f"YAML_FILE_ERROR: phases.{name}.on-failure {on_failure!r}: "
                                 f"expected one of {list(ON_FAILURE)}")
        spec.phases.append(Phase(
            name=name, commands=_strings(body.get("commands"), f"phases.{name}.commands"),
            finally_commands=_strings(body.get("finally"), f"phases.{name}.finally"), on_failure=on_failure,
            runtime_versions=_string_map(body.get("runtime-versions"), f"phases.{name}.runtime-versions")))
    artifacts = document.get("artifacts")
    if artifacts is not None:
        if not isinstance(artifacts, dict):
            raise BuildspecError("YAML_FILE_ERROR: Expected artifacts to be a map")
        if artifacts.get("files") is not None:
            spec.artifacts = _artifact(artifacts, "artifacts")
        secondary = artifacts.get("secondary-artifacts") or {}
        if not isinstance(secondary, dict):
            raise BuildspecError("YAML_FILE_ERROR: Expected artifacts.secondary-artifacts to be a map")
        spec.secondary_artifacts = {str(k): _artifact(v, f"artifacts.secondary-artifacts.{k}")
                                    for k, v in secondary.items()}
    cache = document.get("cache")
    if cache is not None:
        if not isinstance(cache, dict):
            raise BuildspecError("YAML_FILE_ERROR: Expected cache to be a map with paths")
        spec.cache_paths = _strings(cache.get("paths"), "cache.paths")
    return spec
