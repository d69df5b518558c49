"""The build steps on their own: render, lint, package (what `sdlf render|lint|package` run)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from sdlf_cli.cache_dir import cache_dir
from sdlf_cli.checkov_scan import Skip, find_checkov, start_scan
from sdlf_cli.config.model import LakeConfig
from sdlf_cli.lake import Lake
from sdlf_cli.lint import lint_templates
from sdlf_cli.package import Artifact, UploadResult, build_artifacts
from sdlf_cli.render import RenderedTemplate, render_layer, write_rendered
from sdlf_cli.results import Listing


class Written(Listing):
    key = "written"

    def to_dict(self) -> dict:
        return {"written": [str(p) for p in self]}


class Findings(Listing):
    """cfn-lint's findings; not ok when there is any."""

    key = "findings"

    @property
    def ok(self) -> bool:
        return not self


def layers_of(cfg: LakeConfig, layer: str | None) -> list[str]:
    from sdlf_cli.workflows.deploy import all_layers, delivery_layers

    return [layer] if layer else ["bootstrap", *all_layers(cfg), *delivery_layers(cfg)]


def render_templates(cfg: LakeConfig, layer: str | None, root: Path = Path(".")) -> list[RenderedTemplate]:
    return [t for name in layers_of(cfg, layer) for t in render_layer(cfg, name, root / "templates")]


def render_to(cfg: LakeConfig, layer: str | None, build_dir: Path, root: Path = Path(".")) -> Written:
    return Written(write_rendered(render_templates(cfg, layer, root), build_dir))


@dataclass
class LintOutcome:
    """cfn-lint's and checkov's findings, and the checks the templates skip with their reasons.

    Not ok when either scanner found anything; the skips are counted, and listed with `show_skips`."""

    findings: list[Finding]
    skips: list[Skip]
    passed_checks: int
    show_skips: bool = False

    @property
    def ok(self) -> bool:
        return not self.findings

    def to_dict(self) -> dict:
        return {"findings": [dataclasses.asdict(f) for f in self.findings], "passed_checks": self.passed_checks,
                "skips": [dataclasses.asdict(s) for s in self.skips]}


def lint_layers(cfg: LakeConfig, layer: str | None, root: Path = Path("."), show_skips: bool = False) -> LintOutcome:
    """cfn-lint and checkov on every rendered template of LAYER (or of the whole lake), side by side: checkov
    runs in its own process while cfn-lint's workers lint. Both skip templates whose exact text they judged
    before (the project's cache, `sdlf_cli.cache_dir`), so a second lint of the same templates starts neither."""
    templates = render_templates(cfg, layer, root)
    cache = cache_dir(root)
    with start_scan(templates, find_checkov(root), cache / "checkov") as scan:
        findings = lint_templates(templates, cache_dir=cache / "lint")
        checked = scan.result()
    return LintOutcome(findings + checked.findings, checked.skips, checked.passed, show_skips)


@dataclass
class PackageOutcome:
    artifacts: list[Artifact]
    uploads: list[UploadResult] = field(default_factory=list)
    bucket: str | None = None
    message: str = ""
    ok = True

    def actions(self) -> dict[str, str]:
        return {u.artifact.key: u.action for u in self.uploads}

    def to_dict(self) -> dict:
        actions = self.actions()
        return {"bucket": self.bucket, "message": self.message, "artifacts": [
            {"name": a.name, "kind": a.kind, "key": a.key, "sha256": a.sha256, "size": a.size,
             "action": actions.get(a.key, "built")} for a in self.artifacts]}


def package_artifacts(lake: Lake, root: Path = Path(".")) -> PackageOutcome:
    """Build every artifact; upload the missing ones when the bootstrap stack exists."""
    cfg = lake.config
    artifacts = build_artifacts(root, root / ".sdlf" / "build" / cfg.env / "artifacts")
    stack = lake.stacks.describe_stack(cfg.names.bootstrap_stack())
    bucket = stack.outputs.get("ArtifactsBucket") if stack else None
    if not bucket:
        return PackageOutcome(artifacts, message="built only: the artifact bucket does not exist yet "
                              f"(`sdlf deploy foundations --env {cfg.env}` creates it)")
    return PackageOutcome(artifacts, lake.storage.upload_artifacts(artifacts, bucket), bucket)
