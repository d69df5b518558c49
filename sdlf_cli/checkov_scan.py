"""Scan rendered templates with checkov (the CloudFormation framework), pinned to one version.

checkov pins its own dependencies exactly (boto3 among them), which no boto3 the CLI and its
emulator need can satisfy, so it cannot live in the CLI's environment: it is installed in its own
virtual environment (`scripts/install_checkov.sh` creates `.venv-checkov/` from
`requirements-checkov.txt`) and runs as one subprocess per scan, over a folder holding every
template of the scan, with JSON output and no network (no guideline download, no API key).

checkov takes seconds to start. `start_scan` starts it and returns at once (the caller runs cfn-lint
meanwhile); with a cache directory, a template whose exact text checkov already judged (same checkov
version) takes its verdicts from the cache, and when every template has one, checkov is not started.

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

import dataclasses
import hashlib
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
LAUNCHER = Path(__file__).resolve().with_name("checkov_launch.py")
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
    passed_by_template: dict[str, int] = dataclasses.field(default_factory=dict, compare=False)


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


def scan_templates(templates: list[RenderedTemplate], checkov: Path, cache_dir: Path | None = None) -> ScanResult:
    """checkov's verdicts on every template, in one run. Findings are sorted by template and line."""
    with start_scan(templates, checkov, cache_dir) as scan:
        return scan.result()


def start_scan(templates: list[RenderedTemplate], checkov: Path, cache_dir: Path | None = None) -> "Scan":
    """Start checkov over the templates it has no cached verdicts for; `.result()` waits for it."""
    return Scan(templates, checkov, cache_dir)


class Scan:
    """One checkov process under way (or none, when the cache has every template's verdicts)."""

    def __init__(self, templates: list[RenderedTemplate], checkov: Path, cache_dir: Path | None) -> None:
        self.checkov = checkov
        self.cache = {t.output_name: _cache_file(t, cache_dir) for t in templates} if cache_dir else {}
        self.cached: dict[str, ScanResult] = {}
        pending = []
        for template in templates:
            hit = _read_cached(self.cache.get(template.output_name))
            if hit is None:
                pending.append(template)
            else:
                self.cached[template.output_name] = hit
        self.pending = [t.output_name for t in pending]
        self._folder = self._process = self._out = self._err = None
        if pending:
            self._folder = tempfile.TemporaryDirectory(prefix="sdlf-checkov-")
            for template in pending:
                path = Path(self._folder.name) / template.output_name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(template.body, encoding="utf-8")
            # Its report goes to files, not pipes: nobody reads a pipe while cfn-lint runs, and a full one
            # would stop checkov.
            self._out = tempfile.TemporaryFile("w+", encoding="utf-8")
            self._err = tempfile.TemporaryFile("w+", encoding="utf-8")
            try:
                self._process = _start(checkov, Path(self._folder.name), self._out, self._err)
            except BaseException:
                self.__exit__()
                raise

    def __enter__(self) -> "Scan":
        return self

    def __exit__(self, *_) -> None:
        """Stop a checkov whose result is no longer wanted (the caller failed meanwhile)."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        for file in (self._out, self._err):
            if file is not None:
                file.close()
        if self._folder is not None:
            self._folder.cleanup()

    def result(self) -> ScanResult:
        scanned: dict[str, ScanResult] = {}
        if self._process is not None:
            returncode = self._process.wait()
            self._folder.cleanup()
            stdout, stderr = (_read_all(f) for f in (self._out, self._err))
            per_template = _split(_parse(_report(self.checkov, returncode, stdout, stderr)))
            for name in self.pending:
                scanned[name] = per_template.get(name, ScanResult([], [], 0, CHECKOV_VERSION))
                if name in per_template and self.cache:  # judged: never cache a template checkov did not see
                    _write_cached(self.cache[name], scanned[name])
        return _merge([*self.cached.values(), *scanned.values()])


def _read_all(file) -> str:
    file.seek(0)
    return file.read()


def _start(checkov: Path, folder: Path, out, err) -> subprocess.Popen:
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false",
           "LOG_LEVEL": "WARNING"}
    env.pop("BC_API_KEY", None)  # never upload anything to a platform
    arguments = ["--directory", str(folder), "--framework", "cloudformation", "--skip-download", "--output", "json",
                 "--compact"]
    return subprocess.Popen([*checkov_command(checkov), *arguments], stdout=out, stderr=err,
                            stdin=subprocess.DEVNULL, env=env, cwd=folder)


def checkov_command(checkov: Path) -> list[str]:
    """How to start checkov: a Python script runs in its own interpreter through sdlf_cli/checkov_launch.py (which
    patches checkov's JSONPath parser to build its tables once: 40 % less CPU); anything else runs as it is."""
    python = script_interpreter(checkov)
    return [str(python), str(LAUNCHER), str(checkov)] if python else [str(checkov)]


def script_interpreter(script: Path) -> Path | None:
    """The Python interpreter a script's `#!` line names (directly or through `env`), if it exists."""
    try:
        with open(script, "rb") as file:
            first = file.readline(512)
    except OSError:
        return None
    words = first[2:].decode(errors="replace").split() if first.startswith(b"#!") else []
    if len(words) > 1 and Path(words[0]).name == "env":
        found = shutil.which(words[1])
        words = [found] if found else []
    if not words or not Path(words[0]).name.startswith("python") or not Path(words[0]).is_file():
        return None
    return Path(words[0])


def _report(checkov: Path, returncode: int, stdout: str, stderr: str) -> dict:
    # checkov exits 1 when a check failed; anything it could not run shows as unparseable output.
    try:
        report = json.loads(stdout)
    except json.JSONDecodeError:
        raise UsageError(f"checkov ({checkov}) did not report (exit {returncode}): "
                         f"{(stderr or stdout).strip()[-2000:]}") from None
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
    passed: dict[str, int] = {}
    for record in results.get("passed_checks", []):
        template = _where(record)[0]
        passed[template] = passed.get(template, 0) + 1
    summary = report.get("summary") or {}
    return ScanResult(
        findings=sorted(set(findings), key=lambda f: (f.template, f.line, f.rule, f.message)),
        skips=sorted(set(skips), key=lambda s: (s.template, s.line, s.check)),
        passed=int(summary.get("passed", sum(passed.values()))),
        version=summary.get("checkov_version", CHECKOV_VERSION),
        passed_by_template=passed,
    )


def _split(result: ScanResult) -> dict[str, ScanResult]:
    """One result per template checkov reported on (a failed, skipped or passed check)."""
    names = {f.template for f in result.findings} | {s.template for s in result.skips} | set(result.passed_by_template)
    return {name: ScanResult([f for f in result.findings if f.template == name],
                             [s for s in result.skips if s.template == name],
                             result.passed_by_template.get(name, 0), result.version)
            for name in names}


def _merge(results: list[ScanResult]) -> ScanResult:
    return ScanResult(
        findings=sorted({f for r in results for f in r.findings}, key=lambda f: (f.template, f.line, f.rule, f.message)),
        skips=sorted({s for r in results for s in r.skips}, key=lambda s: (s.template, s.line, s.check)),
        passed=sum(r.passed for r in results),
        version=CHECKOV_VERSION,
    )


def _cache_file(template: RenderedTemplate, cache_dir: Path) -> Path:
    seed = "\0".join([CHECKOV_VERSION, template.output_name, template.body])
    return Path(cache_dir) / (hashlib.sha256(seed.encode("utf-8")).hexdigest() + ".json")


def _read_cached(path: Path | None) -> ScanResult | None:
    if path is None or not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return ScanResult([Finding(**f) for f in data["findings"]], [Skip(**s) for s in data["skips"]],
                          int(data["passed"]), CHECKOV_VERSION)
    except (ValueError, KeyError, TypeError):  # a damaged entry is scanned again
        return None


def _write_cached(path: Path, result: ScanResult) -> None:
    data = {"findings": [dataclasses.asdict(f) for f in result.findings],
            "skips": [dataclasses.asdict(s) for s in result.skips], "passed": result.passed}
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written aside, then renamed: a concurrent lint reads a whole entry or none.
    partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    partial.write_text(json.dumps(data), encoding="utf-8")
    os.replace(partial, path)


def _where(record: dict) -> tuple[str, int]:
    return record["file_path"].lstrip("/"), int((record.get("file_line_range") or [0])[0])
