"""A build's input and output artifacts: zips unpacked into the scratch source directory, and the
buildspec's artifact sections (files globs, base-directory, discard-paths, exclude-paths) zipped back."""
from __future__ import annotations

import re
import zipfile
from pathlib import Path

from sdlf_cli.local.runtime.buildspec import ArtifactSpec, Buildspec, BuildError


def extract(archive: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    try:
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(target)
            for info in zf.infolist():  # keep executable bits, as CodeBuild's unzip does
                mode = info.external_attr >> 16
                if mode & 0o111:
                    (target / info.filename).chmod(mode & 0o7777)
    except zipfile.BadZipFile as exc:
        raise BuildError("DOWNLOAD_SOURCE", "CLIENT_ERROR",
                         f"the input artifact is not a zip archive ({archive.name}): {exc}") from exc


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """CodeBuild's artifact globs: `**` crosses directories, `*` and `?` stay within one."""
    pattern = pattern.strip()
    if pattern.startswith("./"):
        pattern = pattern[2:]
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    if pattern.endswith("/"):  # a directory: everything under it
        out += ".*"
    return re.compile(out + r"\Z")


def matches(relative: str, patterns: list[str]) -> bool:
    return any(_glob_regex(p).match(relative) for p in patterns if p.strip())


def select_files(root: Path, spec: ArtifactSpec) -> list[tuple[Path, str]]:
    """(file, name in the zip) for an artifact section's files / base-directory / discard-paths / exclude-paths."""
    base = root / spec.base_directory if spec.base_directory else root
    if not base.is_dir():
        return []
    chosen = []
    for path in sorted(p for p in base.rglob("*") if p.is_file()):
        relative = path.relative_to(base).as_posix()
        if matches(relative, spec.files) and not matches(relative, spec.exclude_paths):
            chosen.append((path, path.name if spec.discard_paths else relative))
    return chosen


def package_outputs(spec: Buildspec, names: list[str], src: Path, out: Path) -> dict[str, Path]:
    """Zips each output artifact a pipeline action declares from the buildspec's artifact sections."""
    outputs: dict[str, Path] = {}
    if not names:
        return outputs
    out.mkdir(parents=True, exist_ok=True)
    for index, name in enumerate(names):
        section = spec.secondary_artifacts.get(name)
        if section is None and (index == 0 or len(names) == 1):
            section = spec.artifacts
        if section is None:
            raise BuildError("UPLOAD_ARTIFACTS", "CLIENT_ERROR",
                             f"no definition for {'primary' if index == 0 else 'secondary'} artifact {name} in "
                             "buildspec (artifacts.files, or artifacts.secondary-artifacts." + name + ")")
        files = select_files(src, section)
        if not files:
            raise BuildError("UPLOAD_ARTIFACTS", "CLIENT_ERROR",
                             f"no matching artifact paths found for {name} (files {section.files}"
                             f"{', base-directory ' + section.base_directory if section.base_directory else ''})")
        target = out / f"{name}.zip"
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
            for path, arcname in files:
                zf.write(path, arcname)
        outputs[name] = target
    return outputs
