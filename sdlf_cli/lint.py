"""Lint rendered templates with cfn-lint, in-process.

Errors and warnings are findings; informational rules are not run. Lines refer to the rendered file
(`RenderedTemplate.output_name`, i.e. what `sdlf render` writes under the build directory), because that
is what cfn-lint sees; the rendered file is one `sdlf render` away.
"""
from __future__ import annotations

import functools
import hashlib
import multiprocessing
import os
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sdlf_cli.render import RenderedTemplate

if TYPE_CHECKING:
    from cfnlint.rules import Rules

# cfn-lint (and sympy, which it imports) is imported where a template is linted, not with this module: it is
# ~0.7 s of every `sdlf` command's start, and most commands (status, query, config show, cicd report ...) only
# need `Finding` and the results' types.

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


# Worker processes start in ~3 s (an interpreter importing cfn-lint and loading its rules); a template lints
# in ~0.4 s (a dataset's) to ~1.5 s (foundations) once the rules are loaded. Fewer templates than this
# are linted in this process.
MIN_TEMPLATES_FOR_WORKERS = 8

# cfn-lint's rules, loaded once per process: loading and instantiating its ~330 rules (what cfn-lint's
# `lint()` does on every call) costs about twice as much as linting a dataset template with them. Rules keep
# per-template state while they run, so one template at a time goes through them.
_RULES_LOCK = threading.Lock()


@functools.lru_cache(maxsize=1)
def cfn_lint_rules() -> Rules:
    from cfnlint.config import ConfigMixIn
    from cfnlint.runner import Runner

    from sdlf_cli.cfn_lint_contexts import contexts_made_by_copy
    from sdlf_cli.cfn_lint_validators import validator_classes_made_once

    # Every lint goes through here first (sdlf_cli.cfn_lint_validators, sdlf_cli.cfn_lint_contexts).
    validator_classes_made_once()
    contexts_made_by_copy()
    return Runner(ConfigMixIn()).rules


def lint_template(template: RenderedTemplate) -> list[Finding]:
    """cfn-lint findings (errors and warnings) for one rendered template, in line order."""
    from cfnlint.config import ConfigMixIn
    from cfnlint.decode.decode import decode_str
    from cfnlint.runner import run_template_by_data

    body, matches = decode_str(template.body)
    if not matches and body is not None:
        with _RULES_LOCK:
            matches = list(run_template_by_data(body, ConfigMixIn(regions=[template.region]), cfn_lint_rules()))
    findings = set()
    for match in matches:
        level = str(match.rule.severity).lower()
        if level not in LEVELS:
            continue
        findings.add(Finding(template.output_name, int(match.linenumber), match.rule.id, level, match.message))
    return sorted(findings, key=lambda f: (f.line, f.rule, f.message))


def lint_templates(templates: list[RenderedTemplate], cache_dir: Path | None = None,
                   processes: int | None = None,
                   check: Callable[[RenderedTemplate], list[Finding]] | None = None) -> list[Finding]:
    """Findings of all templates, template by template (in the order given), each in line order.

    With `cache_dir`, a template whose exact text (and region, and cfn-lint version) was linted
    clean before is not linted again: linting is the slowest step of a no-change deploy. The
    templates left are linted in `processes` worker processes (default: one per usable core, from
    MIN_TEMPLATES_FOR_WORKERS templates on), since cfn-lint is pure-Python CPU work that threads would
    only queue on the GIL. `check` replaces
    `lint_template` (it must be picklable to run in workers).
    """
    markers = [_clean_marker(t, cache_dir) if cache_dir else None for t in templates]
    pending = [t for t, marker in zip(templates, markers) if marker is None or not marker.exists()]
    found = dict(zip(map(id, pending), _fan_out(check or lint_template, pending, processes)))
    findings: list[Finding] = []
    for template, marker in zip(templates, markers):
        if id(template) not in found:
            continue
        findings.extend(found[id(template)])
        if marker is not None and not found[id(template)]:
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text(template.output_name + "\n")
    return findings


def _fan_out(check: Callable[[RenderedTemplate], list[Finding]], templates: list[RenderedTemplate],
             processes: int | None) -> list[list[Finding]]:
    """`check` of each template, in order; in worker processes when there is more than one template and core
    (by default, only when there are enough templates to repay the workers' start-up)."""
    if processes is None and len(templates) < MIN_TEMPLATES_FOR_WORKERS:
        processes = 1
    processes = min(len(templates), processes or _usable_cores())
    if processes < 2:
        return [check(t) for t in templates]
    # forkserver, not fork: the caller may run threads (the embedded emulator, a deploy's workers), and a
    # forked child can inherit a lock one of them held. The server imports cfn-lint and builds its rules once
    # (sdlf_cli.lint_rules); workers fork from it.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["sdlf_cli.lint_rules" if check is lint_template else __name__])
    with ProcessPoolExecutor(max_workers=processes, mp_context=context) as pool:
        return list(pool.map(check, templates))


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _clean_marker(template: RenderedTemplate, cache_dir: Path) -> Path:
    from cfnlint.version import __version__ as cfn_lint_version

    seed = "\0".join([cfn_lint_version, template.region, template.body])
    return Path(cache_dir) / (hashlib.sha256(seed.encode("utf-8")).hexdigest() + ".clean")


def has_errors(findings: list[Finding]) -> bool:
    return any(f.level == "error" for f in findings)
