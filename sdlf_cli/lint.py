"""Lint rendered templates with cfn-lint, in-process.

Errors and warnings are findings; informational rules are not run. Lines refer to the rendered file
(`RenderedTemplate.output_name`, i.e. what `sdlf render` writes under the build directory), because that
is what cfn-lint sees; the rendered file is one `sdlf render` away.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from cfnlint.api import ManualArgs, lint

from sdlf_cli.render import RenderedTemplate

# cfn-lint severities we report, and the order findings are listed in.
LEVELS = ("error", "warning")


@dataclass(frozen=True)
class Finding:
    template: str  # rendered file, relative to the build directory: "<layer>/<stack_name>.yaml"
    line: int
    rule: str  # cfn-lint rule id, e.g. "E3002"
    level: str  # "error" or "warning"
    message: str

    def __str__(self) -> str:
        return f"{self.template}:{self.line} {self.rule} {self.message}"


def lint_template(template: RenderedTemplate) -> list[Finding]:
    """cfn-lint findings (errors and warnings) for one rendered template, in line order."""
    matches = lint(template.body, config=ManualArgs(regions=[template.region]))
    findings = set()
    for match in matches:
        level = str(match.rule.severity).lower()
        if level not in LEVELS:
            continue
        findings.add(Finding(template.output_name, int(match.linenumber), match.rule.id, level, match.message))
    return sorted(findings, key=lambda f: (f.line, f.rule, f.message))


def lint_templates(templates: list[RenderedTemplate], cache_dir: Path | None = None) -> list[Finding]:
    """Findings of all templates, template by template (in the order given), each in line order.

    With `cache_dir`, a template whose exact text (and region, and cfn-lint version) was linted
    clean before is not linted again: linting is the slowest step of a no-change deploy.
    """
    findings: list[Finding] = []
    for template in templates:
        marker = _clean_marker(template, cache_dir) if cache_dir else None
        if marker is not None and marker.exists():
            continue
        found = lint_template(template)
        findings.extend(found)
        if marker is not None and not found:
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text(template.output_name + "\n")
    return findings


def _clean_marker(template: RenderedTemplate, cache_dir: Path) -> Path:
    from cfnlint.version import __version__ as cfn_lint_version

    seed = "\0".join([cfn_lint_version, template.region, template.body])
    return Path(cache_dir) / (hashlib.sha256(seed.encode("utf-8")).hexdigest() + ".clean")


def has_errors(findings: list[Finding]) -> bool:
    return any(f.level == "error" for f in findings)
