"""Render the Jinja2 templates of one layer into CloudFormation YAML.

Each layer has one main template `templates/<layer>/<layer>.yaml.j2`; files starting with `_` next to it
are partials it may `{% include %}` (the loader searches the layer folder first, then `templates/`, so a
partial is named `_buckets.yaml.j2` inside its layer or `common/_x.yaml.j2` across layers).

A layer renders once (bootstrap, foundations, cicd) or once per unit of the configuration (team: per
team; pipeline: per (team, pipeline); dataset: per (team, dataset)), with that unit added to the context.

Every failure becomes a `RenderError` naming the template file and line, because a stack trace into
Jinja's compiled code tells the user nothing.
"""
from __future__ import annotations

import functools
import json
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import jinja2
import yaml
from cfn_tools import yaml_loader as cfn_yaml

from sdlf_cli import registry
from sdlf_cli.cache_dir import cache_dir
from sdlf_cli.config.model import LakeConfig
from sdlf_cli.errors import RenderError
from sdlf_cli.naming import LAYERS, Names

RUNTIME = "python3.12"
TEMPLATE_SUFFIX = ".yaml.j2"


@dataclass(frozen=True)
class RenderedTemplate:
    """One rendered stack template.

    `name` identifies the unit inside its layer: the layer itself for single-stack layers, the team
    name for "team", and "<team>/<pipeline>" or "<team>/<dataset>" for "pipeline" and "dataset".
    `region` is the lake's region (cfn-lint checks resource availability against it).
    """

    layer: str
    name: str
    stack_name: str
    source: Path
    body: str
    region: str = "us-east-1"

    @property
    def output_name(self) -> str:
        """Path of the rendered file relative to the build directory (what `write_rendered` writes)."""
        return f"{self.layer}/{self.stack_name}.yaml"


@dataclass(frozen=True)
class _Unit:
    """One stack of a layer: its unit name, stack name and the extra context it renders with."""

    name: str
    stack_name: str
    extra: dict[str, Any]


def _units(cfg: LakeConfig, layer: str) -> Iterator[_Unit]:
    names = cfg.names
    if layer == "bootstrap":
        yield _Unit("bootstrap", names.bootstrap_stack(), {})
    elif layer == "foundations":
        yield _Unit("foundations", names.foundations_stack(), {})
    elif layer == "cicd":
        # The pipeline lives in the tooling environment only; it deploys every stage from there.
        if cfg.cicd is not None and cfg.cicd.tooling_env == cfg.env:
            unreadable = [stage.unreadable for stage in cfg.cicd.stages if stage.unreadable]
            if unreadable:
                raise RenderError("the pipeline cannot deploy every stage:\n  " + "\n  ".join(unreadable))
            yield _Unit("cicd", names.cicd_stack(), {"cicd": cfg.cicd, "stages": _stage_contexts(cfg)})
    elif layer == "cicd-target":
        if cfg.cicd is not None:
            yield _Unit("cicd-target", names.cicd_target_stack(),
                        {"cicd": cfg.cicd, "tooling_names": Names(cfg.org, cfg.app, cfg.cicd.tooling_env)})
    elif layer == "team":
        for team in cfg.teams:
            yield _Unit(team.name, names.team_stack(team.name), {"team": team})
    elif layer == "pipeline":
        for team in cfg.teams:
            for pipeline in team.pipelines:
                yield _Unit(
                    f"{team.name}/{pipeline.name}",
                    names.pipeline_stack(team.name, pipeline.name),
                    {"team": team, "pipeline": pipeline},
                )
    elif layer == "dataset":
        for team in cfg.teams:
            for dataset in team.datasets:
                pipeline = next((p for p in team.pipelines if p.name == dataset.pipeline), None)
                yield _Unit(
                    f"{team.name}/{dataset.name}",
                    names.dataset_stack(team.name, dataset.name),
                    {"team": team, "dataset": dataset, "pipeline": pipeline},
                )
    else:  # pragma: no cover - guarded by render_layer
        raise AssertionError(layer)


def _stage_contexts(cfg: LakeConfig) -> list[dict[str, Any]]:
    """Per pipeline stage: its environment's names, account ("${AWS::AccountId}" when the same as the
    pipeline's) and region, for the roles the pipeline assumes there."""
    out = []
    for stage in cfg.cicd.stages:
        out.append({"env": stage.env, "approval": stage.approval, "names": Names(cfg.org, cfg.app, stage.env),
                    "account": stage.account or "${AWS::AccountId}", "region": stage.region or cfg.region})
    return out


def _tojson(value: Any) -> str:
    """JSON without HTML escaping (Jinja's own `tojson` escapes <, >, & and ' for HTML).

    JSON is valid YAML, so `{{ value | tojson }}` is the safe way to put any string, list or mapping
    from the configuration into a template.
    """
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def make_environment(templates_dir: Path, layer: str) -> jinja2.Environment:
    """The layer's Jinja environment, one per process, folder and cache: it keeps the templates it compiled (and
    reloads one whose file changed), so rendering again - every deploy, plan and test renders the layers - does
    not load and compile them again."""
    templates_dir = Path(templates_dir).resolve()
    return _environment(templates_dir, layer, _bytecode_folder(templates_dir))


@functools.lru_cache(maxsize=32)
def _environment(templates_dir: Path, layer: str, bytecode_folder: Path | None) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(templates_dir / layer), str(templates_dir)]),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
        bytecode_cache=jinja2.FileSystemBytecodeCache(str(bytecode_folder)) if bytecode_folder else None,
    )
    env.filters["tojson"] = _tojson
    return env


def _bytecode_folder(templates_dir: Path) -> Path | None:
    """Compiled templates kept in the project's cache (`sdlf_cli.cache_dir`): compiling the layers' templates
    and partials costs more than rendering them, and a no-change deploy renders everything. Jinja checks each
    entry against its template's source and Python version, and writes entries atomically."""
    folder = cache_dir(templates_dir.parent) / "jinja"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:  # a read-only checkout: compile every time
        return None
    return folder


def render_layer(cfg: LakeConfig, layer: str, templates_dir: Path = Path("templates")) -> list[RenderedTemplate]:
    """Render every stack template of `layer` for this configuration (an empty list if it has none)."""
    if layer not in LAYERS:
        raise RenderError(f"unknown layer {layer!r}; expected one of: {', '.join(LAYERS)}")
    templates_dir = Path(templates_dir)
    main = f"{layer}{TEMPLATE_SUFFIX}"
    source = templates_dir / layer / main
    if not source.is_file():
        raise RenderError(f"{source}: template not found (each layer has one main template {layer}/{main})")

    env = make_environment(templates_dir, layer)
    template = _load(env, main, source)
    rendered = []
    for unit in _units(cfg, layer):
        context = {"cfg": cfg, "names": cfg.names, "registry": registry, "runtime": RUNTIME, "layer": layer,
                   **unit.extra}
        body = _render(template, context, source)
        check_cloudformation_yaml(body, source, unit.stack_name)
        rendered.append(RenderedTemplate(layer, unit.name, unit.stack_name, source, body, cfg.region))
    return rendered


def write_rendered(templates: list[RenderedTemplate], build_dir: Path) -> list[Path]:
    """Write each template to `build_dir/<layer>/<stack_name>.yaml`; returns the paths written."""
    paths = []
    for t in templates:
        path = Path(build_dir) / t.output_name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(t.body, encoding="utf-8")
        paths.append(path)
    return paths


# --- rendering and its errors ---------------------------------------------------------------------


def _load(env: jinja2.Environment, name: str, source: Path) -> jinja2.Template:
    try:
        return env.get_template(name)
    except jinja2.TemplateSyntaxError as exc:
        raise RenderError(f"{_where(exc.filename, source)}:{exc.lineno}: template syntax error: {exc.message}") from exc


def _render(template: jinja2.Template, context: dict[str, Any], source: Path) -> str:
    try:
        return template.render(**context)
    except jinja2.TemplateSyntaxError as exc:  # raised lazily by an {% include %}d partial
        raise RenderError(f"{_where(exc.filename, source)}:{exc.lineno}: template syntax error: {exc.message}") from exc
    except jinja2.TemplateNotFound as exc:
        raise RenderError(f"{_template_frame(exc, source)}: included template not found: {exc.name}") from exc
    except jinja2.UndefinedError as exc:
        raise RenderError(f"{_template_frame(exc, source)}: undefined variable: {exc.message}") from exc
    except Exception as exc:  # a helper (e.g. names.bucket) rejected an argument
        raise RenderError(f"{_template_frame(exc, source)}: {type(exc).__name__}: {exc}") from exc


def _where(filename: str | None, source: Path) -> str:
    return filename or str(source)


def _template_frame(exc: BaseException, source: Path) -> str:
    """`file:line` of the innermost template frame in the traceback.

    Jinja rewrites tracebacks so that frames executing template code carry the template's file name
    and line number; the innermost one is where the error happened (an include's, not its parent's).
    """
    where = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename.endswith(".j2"):  # main templates and partials of any kind
            where = f"{frame.filename}:{frame.lineno}"
    return where or str(source)


class _CfnYamlLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """cfn-flip's CloudFormation loader (ordered mappings, short-form tags as `Fn::` mappings) on libyaml's
    parser where PyYAML has it: the same objects, parsed ~6x faster than by cfn-flip's pure-Python loader."""


_CfnYamlLoader.add_constructor(cfn_yaml.TAG_MAP, cfn_yaml.construct_mapping)
_CfnYamlLoader.add_multi_constructor("!", cfn_yaml.multi_constructor)


@functools.lru_cache(maxsize=512)
def parse_template(body: str) -> Any:
    """A rendered template's text parsed as CloudFormation YAML, once per text: render checks it and deploy
    reads its parameters, SSM inputs and exports from it. Shared between callers, so read it, never change it."""
    return yaml.load(body, Loader=_CfnYamlLoader)  # noqa: S506 - a safe loader plus CloudFormation's tags


def check_cloudformation_yaml(body: str, source: Path, stack_name: str) -> dict:
    """Parse rendered output as CloudFormation YAML (short-form tags included); return the template."""
    try:
        parsed = parse_template(body)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        lines = body.splitlines()
        shown = lines[line - 1] if 0 < line <= len(lines) else ""
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        raise RenderError(
            f"{source}: rendered YAML for stack {stack_name} is invalid at rendered line {line}: {problem}\n"
            f"  {line} | {shown}"
        ) from exc
    except yaml.YAMLError as exc:
        raise RenderError(f"{source}: rendered YAML for stack {stack_name} is invalid: {exc}") from exc
    if not isinstance(parsed, dict) or not isinstance(parsed.get("Resources"), dict) or not parsed["Resources"]:
        raise RenderError(f"{source}: rendered template for stack {stack_name} has no Resources mapping")
    return parsed
