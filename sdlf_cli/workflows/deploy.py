"""Deploy (or plan) layers: render -> lint -> package -> bootstrap -> upload -> stacks in dependency order.

`dry_run=True` walks the same path; the stack step plans change sets instead of executing them and
nothing is uploaded.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path

from cfn_tools import load_yaml

from sdlf_cli.aws.partition import s3_object_url
from sdlf_cli.cache_dir import cache_dir
from sdlf_cli.config.model import LakeConfig
from sdlf_cli.deploy import StackDeployer, StackResult, StackSpec, run_stacks
from sdlf_cli.deploy.inputs import InputResolver, imported_exports, published_sources, ssm_parameters, upstream_of
from sdlf_cli.errors import SdlfError, UsageError
from sdlf_cli.lake import Lake
from sdlf_cli.lint import Finding, lint_templates
from sdlf_cli.package import UploadResult, build_artifacts, parameter_values
from sdlf_cli.render import RenderedTemplate, parse_template, render_layer

log = logging.getLogger("sdlf.deploy")

# CloudFormation takes a template body up to this size inline; larger ones go through S3.
MAX_TEMPLATE_BODY = 51_200

# Parent layer of each layer; a stack waits for its parent stacks only.
PARENT_LAYER = {"foundations": None, "team": "foundations", "pipeline": "team", "dataset": "pipeline"}
# The delivery pipeline and its per-environment roles need only bootstrap. They are deployed by people
# (`sdlf deploy cicd|cicd-target`), never by `--all`, which is what the pipeline itself runs.
DELIVERY_LAYERS = ("cicd", "cicd-target")


class LintFailed(SdlfError):
    exit_code = 1

    def __init__(self, findings: list[Finding]):
        self.findings = findings
        super().__init__(
            f"cfn-lint found {len(findings)} problem(s); nothing was deployed:\n" + "\n".join(map(str, findings))
        )


@dataclass
class DeployOutcome:
    results: list[StackResult] = field(default_factory=list)
    uploads: list[UploadResult] = field(default_factory=list)
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        return all(r.status not in ("failed", "skipped") for r in self.results)

    def to_dict(self) -> dict:
        return {
            "dry_run": self.dry_run,
            "ok": self.ok,
            "results": [r.to_dict() for r in self.results],
            "uploads": [
                {"artifact": u.artifact.name, "key": u.artifact.key, "action": u.action} for u in self.uploads
            ],
        }


def render_and_lint(cfg: LakeConfig, layers: list[str], root: Path) -> list[RenderedTemplate]:
    templates = [t for layer in layers for t in render_layer(cfg, layer, root / "templates")]
    findings = lint_templates(templates, cache_dir=cache_dir(root) / "lint")
    if findings:
        raise LintFailed(findings)
    return templates


def parsed(template: RenderedTemplate) -> dict:
    return parse_template(template.body) or {}


def parent_stacks(cfg: LakeConfig, template: RenderedTemplate) -> tuple[str, ...]:
    """The stacks this one reads values from (through SSM), so they must be deployed first."""
    names = cfg.names
    if template.layer == "team":
        return (names.foundations_stack(),)
    if template.layer == "pipeline":
        team, _ = template.name.split("/")
        return (names.team_stack(team),)
    if template.layer == "dataset":
        team_name, dataset_name = template.name.split("/")
        return (names.pipeline_stack(team_name, cfg.dataset(team_name, dataset_name).pipeline),)
    return ()


def unit_tags(template: RenderedTemplate) -> dict[str, str]:
    parts = template.name.split("/")
    if template.layer == "team":
        return {"team": parts[0]}
    if template.layer in ("pipeline", "dataset"):
        return {"team": parts[0], template.layer: parts[1]}
    return {}


def build_spec(cfg: LakeConfig, template: RenderedTemplate, params: dict,
               depends_on: tuple[str, ...] = ()) -> StackSpec:
    return StackSpec(
        name=template.stack_name,
        layer=template.layer,
        template_body=template.body,
        parameters=params,
        tags=cfg.names.tags(template.layer, **unit_tags(template)),
        depends_on=depends_on,
        termination_protection=cfg.termination_protection,
    )


def passed_parameters(template: RenderedTemplate, body: dict, bucket: str, code: dict[str, str]) -> dict[str, str]:
    declared = set(body.get("Parameters", {}) or {})
    return {k: v for k, v in {"pArtifactsBucket": bucket, **code}.items() if k in declared}


def lake_sources(templates: list[RenderedTemplate], bucket: str, code: dict[str, str]) -> dict:
    """SSM parameter name -> the deployer inputs its value comes from, over every stack of the lake
    (parents first), whichever of them this run deploys: a stack's fingerprint must not depend on
    which layers were asked for."""
    sources: dict = {}
    for template in templates:
        body = parsed(template)
        sources.update(published_sources(body, passed_parameters(template, body, bucket, code), sources))
    return sources


def stack_spec(cfg: LakeConfig, template: RenderedTemplate, bucket: str, code: dict[str, str],
               in_run: set[str], sources: dict | None = None) -> StackSpec:
    """The spec deploy gives a (non-bootstrap) stack: the artifact bucket and code keys its template declares,
    its parents among `in_run`, and what it reads at deploy time (SSM parameters, imported exports, and where
    the lake's SSM values come from). `sdlf status` builds the same spec to compare fingerprints."""
    body = parsed(template)
    params = passed_parameters(template, body, bucket, code)
    parents = tuple(p for p in parent_stacks(cfg, template) if p in in_run)
    return replace(build_spec(cfg, template, params, parents), ssm_parameters=ssm_parameters(body, params),
                   imports=tuple(imported_exports(body)), upstream=upstream_of(body, params, sources or {}))


def deployer_values(lake: Lake, cfn_role_arn: str | None = None) -> dict[str, str]:
    """Template parameters the deployer fills besides the artifact keys: the Lake Formation administrator when
    lake_formation is on and the parameters name none - the principal CloudFormation acts as, which must be an
    administrator to make the team and dataset grants."""
    cfg = lake.config
    if not cfg.lake_formation or cfg.lake_formation_admins:
        return {}
    return {"pLakeFormationAdmin": cfn_role_arn or lake.identity.principal_arn()}


class LayerDeployer:
    """Wires the steps together for one lake and one target."""

    def __init__(self, lake: Lake, reporter, root: Path = Path("."), build_dir: Path | None = None,
                 cfn_role_arn: str | None = None):
        self.lake = lake
        self.cfg = lake.config
        self.cfn_role_arn = cfn_role_arn
        self.reporter = reporter
        self.root = root
        self.build_dir = build_dir or root / ".sdlf" / "build" / self.cfg.env

    @cached_property
    def gateway(self):
        return self.lake.stacks

    @cached_property
    def stacks(self) -> StackDeployer:
        # What CloudFormation will resolve (SSM values, imported exports) is read just before each stack.
        resolver = InputResolver(self.lake.parameters.values, self.gateway.exports)
        return StackDeployer(self.gateway, self.reporter, resolve=resolver)

    def run(self, layers: list[str], dry_run: bool = False, only: set[str] | None = None) -> DeployOutcome:
        """Deploy every stack of `layers`; with `only`, just those stacks plus parents not deployed yet."""
        templates = render_and_lint(self.cfg, ["bootstrap", *layers], self.root)
        log.info("rendered and linted %d template(s) of %s", len(templates), ", ".join(["bootstrap", *layers]))
        account = self.lake.account()
        log.info("account %s, region %s", account, self.lake.target.region)
        bootstrap, rest = templates[0], templates[1:]
        if only is not None:
            rest = self._with_missing_parents(rest, only)
        artifacts = build_artifacts(self.root, self.build_dir / "artifacts")
        outcome = DeployOutcome(dry_run=dry_run)

        boot = self._action(dry_run)(self._spec(bootstrap, {}))
        outcome.results.append(boot)
        if boot.status == "failed":
            return outcome
        bucket = boot.outputs.get("ArtifactsBucket") or self.cfg.names.resolve(
            self.cfg.names.bucket("artifacts"), account, self.lake.target.region
        )
        bucket_exists = "ArtifactsBucket" in boot.outputs
        outcome.uploads = self.lake.storage.upload_artifacts(artifacts, bucket, dry_run=dry_run or not bucket_exists)

        code = {**parameter_values(artifacts), **deployer_values(self.lake, self.cfn_role_arn)}
        in_run = {t.stack_name for t in rest}
        sources = lake_sources(self._lake_templates(templates), bucket, code)
        specs = []
        for template in rest:
            spec = stack_spec(self.cfg, template, bucket, code, in_run, sources)
            if len(template.body.encode()) > MAX_TEMPLATE_BODY:
                if not bucket_exists:
                    outcome.results.append(_planned_from_template(template, "template too large to plan before the artifact bucket exists"))
                    continue
                spec = self._with_template_url(spec, bucket, dry_run)
            specs.append(spec)
        outcome.results.extend(run_stacks(specs, self._action(dry_run), reporter=self.reporter))
        return outcome

    def _with_missing_parents(self, templates: list[RenderedTemplate], only: set[str]) -> list[RenderedTemplate]:
        by_name = {t.stack_name: t for t in templates}
        unknown = sorted(only - set(by_name))
        if unknown:
            raise UsageError(f"no such stack in this configuration: {', '.join(unknown)}")
        wanted, frontier = set(only), list(only)
        while frontier:
            for parent in parent_stacks(self.cfg, by_name[frontier.pop()]):
                if parent in by_name and parent not in wanted and not self._healthy(parent):
                    wanted.add(parent)
                    frontier.append(parent)
        return [t for t in templates if t.stack_name in wanted]

    def _lake_templates(self, rendered: list[RenderedTemplate]) -> list[RenderedTemplate]:
        """Every stack template of the lake, parents first: those rendered for this run, the rest rendered now."""
        done = {t.layer for t in rendered}
        by_layer = {layer: [t for t in rendered if t.layer == layer] if layer in done
                    else render_layer(self.cfg, layer, self.root / "templates")
                    for layer in all_layers(self.cfg, self.root)}
        return [t for layer in by_layer.values() for t in layer]

    def _healthy(self, stack_name: str) -> bool:
        stack = self.gateway.describe_stack(stack_name)
        return stack is not None and stack.status.endswith("_COMPLETE") and "ROLLBACK" not in stack.status

    def _action(self, dry_run: bool):
        act = self.stacks.plan if dry_run else self.stacks.deploy
        if not self.cfn_role_arn:
            return act
        from dataclasses import replace

        return lambda spec: act(replace(spec, role_arn=self.cfn_role_arn))

    def _spec(self, template: RenderedTemplate, params: dict, depends_on: tuple[str, ...] = ()) -> StackSpec:
        return build_spec(self.cfg, template, params, depends_on)

    def _with_template_url(self, spec: StackSpec, bucket: str, dry_run: bool) -> StackSpec:
        body = spec.template_body.encode()
        key = f"templates/{spec.name}/{hashlib.sha256(body).hexdigest()[:20]}.yaml"
        self.lake.storage.put_bytes(bucket, key, body)
        region = self.lake.target.region
        url = s3_object_url(bucket, key, region)
        return replace(spec, template_url=url)


def _planned_from_template(template: RenderedTemplate, message: str) -> StackResult:
    from sdlf_cli.deploy import Change
    from sdlf_cli.deploy.model import is_iam_change

    resources = (load_yaml(template.body) or {}).get("Resources", {}) or {}
    changes = [
        Change(action="Add", logical_id=lid, resource_type=res.get("Type", ""), replacement=None,
               is_iam=is_iam_change("Add", res.get("Type", "")))
        for lid, res in resources.items()
    ]
    return StackResult(name=template.stack_name, layer=template.layer, status="planned", outputs={},
                       changes=changes, failure=None, duration=0.0, message=message)


def all_layers(cfg: LakeConfig, root: Path = Path(".")) -> list[str]:
    """Layers that have at least one stack in this configuration (and templates), parents first."""
    wanted = {
        "foundations": True,
        "team": bool(cfg.teams),
        "pipeline": any(t.pipelines for t in cfg.teams),
        "dataset": any(t.datasets for t in cfg.teams),
    }
    return [layer for layer, want in wanted.items() if want and _has_templates(root, layer)]


def delivery_layers(cfg: LakeConfig) -> list[str]:
    """The delivery layers this environment has stacks of: its target roles, and the pipeline where it is hosted."""
    if cfg.cicd is None:
        return []
    return (["cicd"] if cfg.cicd.tooling_env == cfg.env else []) + ["cicd-target"]


def _has_templates(root: Path, layer: str) -> bool:
    return any(not p.name.startswith("_") for p in (root / "templates" / layer).glob("*.yaml.j2"))


def layers_to_deploy(cfg: LakeConfig, requested: list[str], everything: bool) -> list[str]:
    known = all_layers(cfg)
    if everything or not requested:
        return known if everything else ["foundations"]
    unknown = [l for l in requested if l not in PARENT_LAYER and l not in DELIVERY_LAYERS]
    if unknown:
        raise UsageError(f"unknown layer(s) {', '.join(unknown)}; expected one of "
                         f"{', '.join([*PARENT_LAYER, *DELIVERY_LAYERS])}")
    for layer in (l for l in DELIVERY_LAYERS if l in requested):
        if layer not in delivery_layers(cfg):
            raise UsageError(_no_delivery_stack(cfg, layer))
    return [l for l in [*PARENT_LAYER, *DELIVERY_LAYERS] if l in requested]


def _no_delivery_stack(cfg: LakeConfig, layer: str) -> str:
    files = " / ".join(cfg.files) or "the parameters"
    if cfg.cicd is None:
        return f"{layer}: {files} declare no `cicd` section (see parameters/base.yaml of the project)"
    return (f"{layer}: the pipeline is hosted by environment {cfg.cicd.tooling_env!r} (cicd.tooling_env): "
            f"run `sdlf deploy cicd --env {cfg.cicd.tooling_env}`")


def deploy_layers(lake: Lake, reporter, layers: list[str], *, dry_run: bool = False,
                  root: Path = Path("."), only: set[str] | None = None, cfn_role_arn: str | None = None) -> DeployOutcome:
    return LayerDeployer(lake, reporter, root, cfn_role_arn=cfn_role_arn).run(layers, dry_run=dry_run, only=only)
