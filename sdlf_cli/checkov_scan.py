"""Scan rendered templates with checkov (the CloudFormation framework), pinned to one version.

checkov pins its own dependencies exactly (boto3 among them), which no boto3 the CLI and its
emulator need can satisfy, so it cannot live in the CLI's environment: it is installed in its own
virtual environment (`scripts/install_checkov.sh` creates `.venv-checkov/` from
`requirements-checkov.txt`) and runs as one subprocess per scan, over a folder holding every
template of the scan, with JSON output and no network (no guideline download, no API key).

A check that does not apply to a resource is skipped in that resource's own metadata, with the
reason written down:

    Metadata:
      checkov:
        skip:
          - id: CKV_AWS_117
            comment: Why this check does not apply here

A skip without a comment is a finding: every exception to a check carries its reason.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sdlf_cli.errors import UsageError
from sdlf_cli.lint import Finding
from sdlf_cli.render import RenderedTemplate

CHECKOV_VERSION = "3.3.30"
# What checkov writes as the comment of a skip that gave none.
_NO_COMMENT = {"", "no comment provided"}
INSTALL_HINT = ("install it with `scripts/install_checkov.sh` (a virtual environment in .venv-checkov/), "
                "or point SDLF_CHECKOV at a checkov " + CHECKOV_VERSION + " executable")


@dataclass(frozen=True)
class Skip:
    """A check a resource's metadata skips, and the reason written there."""

    template: str  # rendered file, relative to the build directory
    line: int
    check: str  # checkov check id, e.g. "CKV_AWS_117"
    resource: str  # "<type>.<logical id>"
    reason: str

    def __str__(self) -> str:
        return f"{self.template}:{self.line} {self.check} {self.resource}: {self.reason}"


@dataclass(frozen=True)
class ScanResult:
    findings: list[Finding]  # failed checks (and skips without a reason), template by template
    skips: list[Skip]
    passed: int
    version: str


def find_checkov(root: Path = Path("."), environ: dict[str, str] | None = None) -> Path:
    """The checkov executable: $SDLF_CHECKOV, else `<root>/.venv-checkov/bin/checkov`, else on PATH."""
    environ = os.environ if environ is None else environ
    if environ.get("SDLF_CHECKOV"):
        path = Path(environ["SDLF_CHECKOV"])
        if not path.is_file():
            raise UsageError(f"SDLF_CHECKOV={path}: no such file; {INSTALL_HINT}")
        return path.resolve()
    for candidate in (Path(root) / ".venv-checkov" / "bin" / "checkov",
                      Path(__file__).resolve().parent.parent / ".venv-checkov" / "bin" / "checkov"):
        if candidate.is_file():
            return candidate.resolve()
    on_path = shutil.which("checkov", path=environ.get("PATH"))
    if on_path:
        return Path(on_path).resolve()
    raise UsageError(f"checkov {CHECKOV_VERSION} is not installed: {INSTALL_HINT}")


def scan_templates(templates: list[RenderedTemplate], checkov: Path) -> ScanResult:
    """checkov's verdicts on every template, in one run. Findings are sorted by template and line."""
    if not templates:
        return ScanResult([], [], 0, CHECKOV_VERSION)
    with tempfile.TemporaryDirectory(prefix="sdlf-checkov-") as folder:
        for template in templates:
            path = Path(folder) / template.output_name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(template.body, encoding="utf-8")
        report = _run(checkov, Path(folder))
    return _parse(report)


def _run(checkov: Path, folder: Path) -> dict:
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false",
           "LOG_LEVEL": "WARNING"}
    env.pop("BC_API_KEY", None)  # never upload anything to a platform
    command = [str(checkov), "--directory", str(folder), "--framework", "cloudformation", "--skip-download",
               "--output", "json", "--compact"]
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=folder, check=False)
    # checkov exits 1 when a check failed; anything it could not run shows as unparseable output.
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        raise UsageError(f"checkov ({checkov}) did not report (exit {done.returncode}): "
                         f"{(done.stderr or done.stdout).strip()[-2000:]}") from None
    if isinstance(report, list):  # one report per framework; we ask for one
        report = next((r for r in report if r.get("check_type") == "cloudformation"), {})
    version = (report.get("summary") or {}).get("checkov_version") or report.get("checkov_version")
    if "results" in report and version != CHECKOV_VERSION:
        raise UsageError(f"{checkov} is checkov {version}, the lake is checked with {CHECKOV_VERSION}; "
                         + INSTALL_HINT)
    return report


def _parse(report: dict) -> ScanResult:
    results = report.get("results") or {}
    findings: list[Finding] = []
    skips: list[Skip] = []
    for record in results.get("failed_checks", []):
        template, line = _where(record)
        findings.append(Finding(template, line, record["check_id"], "error",
                                f"{record['resource']}: {record['check_name']}"))
    for record in results.get("skipped_checks", []):
        template, line = _where(record)
        reason = (record.get("check_result") or {}).get("suppress_comment") or ""
        if reason.strip().lower() in _NO_COMMENT:
            findings.append(Finding(template, line, record["check_id"], "error",
                                    f"{record['resource']}: skipped without a reason (give the skip a comment)"))
            continue
        skips.append(Skip(template, line, record["check_id"], record["resource"], reason.strip()))
    summary = report.get("summary") or {}
    return ScanResult(
        findings=sorted(set(findings), key=lambda f: (f.template, f.line, f.rule, f.message)),
        skips=sorted(set(skips), key=lambda s: (s.template, s.line, s.check)),
        passed=int(summary.get("passed", len(results.get("passed_checks", [])))),
        version=summary.get("checkov_version", CHECKOV_VERSION),
    )


def _where(record: dict) -> tuple[str, int]:
    return record["file_path"].lstrip("/"), int((record.get("file_line_range") or [0])[0])
