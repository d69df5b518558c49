"""Deterministic packaging of Lambda code and its upload to the artifact bucket.

`build_artifacts` zips every function folder `lambda/<name>/` (one with a handler.py) and every
layer folder `lambda/layers/<name>/` (the zip holds `python/...`). Zips are byte-for-byte
reproducible: sorted entries, a fixed timestamp, normalised permissions, fixed compression, no
caches. The S3 key carries a hash of the *inputs* (relative paths, file contents, the pinned
requirements and the vendoring target), so unchanged code keeps its key and is never uploaded again.

Glue job scripts `glue/<name>.py` (top level only; not files starting with '_' or '.') are artifacts of
kind "glue": the file as is (Glue runs one script), key `glue/<name>/<hash[:20]>.py`, template parameter
`pGlue<Camel>Key` (glue/heavy_transform.py -> pGlueHeavyTransformKey). Datasets' heavy-transform scripts
`glue/transforms/<name>.py` are glue artifacts named `transform_<name>` (glue/transforms/legislators.py ->
pGlueTransformLegislatorsKey), which the dataset stacks that use them declare.

A layer's `requirements.txt` (every line `name==version`; pip runs with --no-deps, so it must list
the whole dependency closure) is vendored into `python/` with pip for the Lambda platform, once
per machine, into a cache keyed by the requirements hash.

No click, and no AWS except through the S3 client handed to `upload_artifacts`.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Literal, Sequence

from botocore.exceptions import ClientError

from sdlf_cli.cache_dir import cache_dir as project_cache_dir
from sdlf_cli.errors import ConfigError, Problem, SdlfError

# Bump when the zip layout or the hashing changes, so every key changes with it.
FORMAT_VERSION = "sdlf-package-1"
KEY_HASH_LENGTH = 20
ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)
COMPRESS_LEVEL = 9
FILE_MODE = 0o644
EXEC_MODE = 0o755

# The Lambda platform vendored wheels must fit (runtime python3.12 on x86_64).
PIP_TARGET = (
    "--platform", "manylinux2014_x86_64",
    "--only-binary=:all:",
    "--python-version", "3.12",
    "--implementation", "cp",
)

REQUIREMENTS_FILE = "requirements.txt"
TRANSFORMS_FOLDER = "transforms"
TRANSFORM_PREFIX = "transform_"  # as sdlf_cli.config.heavy_transform.SCRIPT_ARTIFACT_PREFIX
EXCLUDED_DIRS = {"__pycache__", ".pytest_cache", ".mypy_cache", ".git"}
EXCLUDED_FILES = {".DS_Store", "Thumbs.db"}
EXCLUDED_SUFFIXES = (".pyc", ".pyo")
# Vendored console scripts carry this machine's interpreter in their shebang: useless in Lambda.
VENDOR_EXCLUDED_TOP = {"bin"}
# pip's install record lists those scripts' hashes, so it differs from machine to machine (a laptop and a
# CodeBuild image would package different layers); nothing reads it at run time.
VENDOR_EXCLUDED_RECORD = ".dist-info/RECORD"

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[A-Za-z0-9_,.-]+\])?==([A-Za-z0-9.+!_-]+)$")

Kind = Literal["function", "layer", "glue"]
GLUE_SUFFIX = ".py"
# installer(requirements_file, target_dir) must fill target_dir with the installed packages.
Installer = Callable[[Path, Path], None]


class PackageError(SdlfError):
    """Packaging or uploading failed (pip, the file system, or S3)."""


@dataclass(frozen=True)
class Artifact:
    name: str
    kind: Kind
    source: Path  # the folder the zip was built from (for a Glue script: the script)
    zip_path: Path  # the built file: a zip, or the copied script for kind "glue"
    sha256: str  # hash of the inputs (not of the zip bytes)
    key: str  # S3 key in the artifact bucket
    parameter: str  # CloudFormation parameter that receives the key
    size: int  # file size in bytes


@dataclass(frozen=True)
class UploadResult:
    artifact: Artifact
    action: Literal["uploaded", "skipped", "would-upload"]


# --- names -------------------------------------------------------------------------------------
def camel(name: str) -> str:
    """`my-func_name` -> `MyFuncName` (split on '-' or '_', capitalise the first letter of each part)."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[-_]", name) if part)


def parameter_name(kind: Kind, name: str) -> str:
    """Template parameter: `pCode<Camel>Key` (function), `pLayer<Camel>Key` (layer), `pGlue<Camel>Key` (glue)."""
    prefix = {"function": "pCode", "layer": "pLayer", "glue": "pGlue"}[kind]
    return f"{prefix}{camel(name)}Key"


def artifact_key(kind: Kind, name: str, sha256: str) -> str:
    if kind == "glue":
        return f"glue/{name}/{sha256[:KEY_HASH_LENGTH]}{GLUE_SUFFIX}"
    folder = {"function": "functions", "layer": "layers"}[kind]
    return f"{folder}/{name}/{sha256[:KEY_HASH_LENGTH]}.zip"


# --- discovery ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Source:
    name: str
    kind: Kind
    folder: Path  # for kind "glue": the script file


def discover(root: Path) -> list[_Source]:
    """Function folders `lambda/<name>/` with a handler.py, layer folders `lambda/layers/<name>/`, then
    Glue scripts `glue/<name>.py`."""
    base = root / "lambda"
    sources: list[_Source] = []
    if base.is_dir():
        sources += _lambda_sources(base)
    glue = root / "glue"
    if glue.is_dir():
        for script in sorted(glue.iterdir()):
            if script.is_file() and script.suffix == GLUE_SUFFIX and _visible(script.name):
                sources.append(_Source(script.stem, "glue", script))
        transforms = glue / TRANSFORMS_FOLDER
        if transforms.is_dir():  # datasets' heavy-transform scripts: artifact transform_<name>
            for script in sorted(transforms.iterdir()):
                if script.is_file() and script.suffix == GLUE_SUFFIX and _visible(script.name):
                    sources.append(_Source(TRANSFORM_PREFIX + script.stem, "glue", script))
    names: dict[str, Path] = {}
    for source in sources:
        parameter = parameter_name(source.kind, source.name)
        if parameter in names:
            raise PackageError(
                f"{source.folder} and {names[parameter]} both map to the parameter {parameter}; rename one"
            )
        names[parameter] = source.folder
    return sources


def _lambda_sources(base: Path) -> list[_Source]:
    sources: list[_Source] = []
    for folder in sorted(base.iterdir()):
        if folder.is_dir() and folder.name != "layers" and _visible(folder.name) and (folder / "handler.py").is_file():
            sources.append(_Source(folder.name, "function", folder))
    layers = base / "layers"
    if layers.is_dir():
        for folder in sorted(layers.iterdir()):
            if folder.is_dir() and _visible(folder.name):
                sources.append(_Source(folder.name, "layer", folder))
    return sources


def _visible(name: str) -> bool:
    return not name.startswith((".", "_"))


def _source_files(folder: Path) -> list[tuple[str, Path]]:
    """(zip path, file) for every packaged file below `folder`, sorted; requirements.txt excluded."""
    files: list[tuple[str, Path]] = []
    for current, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in EXCLUDED_DIRS and not d.endswith(".egg-info"))
        for name in names:
            if name in EXCLUDED_FILES or name.endswith(EXCLUDED_SUFFIXES):
                continue
            path = Path(current) / name
            relative = path.relative_to(folder).as_posix()
            if relative == REQUIREMENTS_FILE:
                continue
            if path.is_symlink() and not path.exists():
                raise PackageError(f"{path}: broken symbolic link")
            files.append((relative, path))
    return sorted(files)


# --- requirements ------------------------------------------------------------------------------
def read_requirements(path: Path) -> list[str]:
    """Exact pins from a requirements file, normalised and sorted; errors name file and line."""
    problems: list[Problem] = []
    pins: list[str] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        match = _PIN.match(text.replace(" ", ""))
        if not match:
            problems.append(
                Problem(str(path), number, text, "expected an exact pin 'name==version' (no ranges, URLs or options)")
            )
            continue
        name = re.sub(r"[-_.]+", "-", match.group(1)).lower()
        pins.append(f"{name}{match.group(2) or ''}=={match.group(3)}")
    if problems:
        raise ConfigError(problems)
    seen: set[str] = set()
    duplicates = sorted({n for n in (p.split("[")[0].split("==")[0] for p in pins) if n in seen or seen.add(n)})
    if duplicates:
        raise ConfigError([Problem(str(path), None, d, "listed more than once") for d in duplicates])
    return sorted(pins)


def pip_installer(requirements: Path, target: Path) -> None:
    """Vendor exact pins for the Lambda platform with this interpreter's pip (no deps, no .pyc)."""
    command = [
        sys.executable, "-m", "pip", "install",
        "--quiet", "--disable-pip-version-check", "--no-input",
        "--target", str(target),
        "--no-compile", "--no-deps",
        *PIP_TARGET,
        "--requirement", str(requirements),
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        output = (result.stderr or result.stdout).strip()
        raise PackageError(f"pip could not vendor {requirements}:\n{output}")


def vendor(requirements: Path, cache_dir: Path, installer: Installer = pip_installer) -> tuple[str, Path]:
    """Install a requirements file once per cache; returns (requirements hash, installed folder).

    pip installs into a temporary folder next to the final one, which is renamed into place only
    when pip succeeded: an interrupted run leaves no half-filled cache entry behind.
    """
    pins = read_requirements(requirements)
    digest = hashlib.sha256("\n".join([*pins, *PIP_TARGET]).encode()).hexdigest()
    final = cache_dir / "vendor" / digest
    if final.is_dir():
        return digest, final
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{digest[:12]}-", dir=final.parent))
    try:
        pinned = staging / REQUIREMENTS_FILE
        pinned.write_text("\n".join(pins) + "\n", encoding="utf-8")
        installed = staging / "site"
        installed.mkdir()
        installer(pinned, installed)
        try:
            os.rename(installed, final)
        except OSError:
            if not final.is_dir():  # not "another process finished first"
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return digest, final


# --- zips --------------------------------------------------------------------------------------
def _entries(source: _Source, vendored: Path | None) -> list[tuple[str, Path]]:
    entries = dict(_source_files(source.folder))
    if vendored is not None:
        prefix = "python/" if source.kind == "layer" else ""
        for relative, path in _source_files(vendored):
            if relative.split("/", 1)[0] in VENDOR_EXCLUDED_TOP or relative.endswith(VENDOR_EXCLUDED_RECORD):
                continue
            name = prefix + relative
            if name in entries:
                raise PackageError(
                    f"{source.folder / name}: also installed from {source.folder / REQUIREMENTS_FILE}; remove one"
                )
            entries[name] = path
    return sorted(entries.items())


def _input_hash(source: _Source, entries: Sequence[tuple[str, Path]], requirements_hash: str | None) -> str:
    digest = hashlib.sha256()
    digest.update(f"{FORMAT_VERSION}\0{source.kind}\0".encode())
    digest.update(f"requirements\0{requirements_hash or ''}\0".encode())
    for name, path in entries:
        content = hashlib.sha256(path.read_bytes()).hexdigest()
        digest.update(f"{name}\0{_mode(path):o}\0{content}\0".encode())
    return digest.hexdigest()


def _mode(path: Path) -> int:
    """Only "executable or not" survives from the source file's permissions."""
    return EXEC_MODE if os.stat(path).st_mode & stat.S_IXUSR else FILE_MODE


def _directories(names: Iterable[str]) -> list[str]:
    dirs = set()
    for name in names:
        parts = name.split("/")[:-1]
        for index in range(1, len(parts) + 1):
            dirs.add("/".join(parts[:index]) + "/")
    return sorted(dirs)


def write_zip(entries: Sequence[tuple[str, Path]], destination: Path) -> None:
    """Write a reproducible zip (directory entries included, so layers extract with sane modes)."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    temporary = destination.with_name(f".{destination.name}.{os.getpid()}.tmp")
    items = [(d, None) for d in _directories(n for n, _ in entries)] + list(entries)
    try:
        with zipfile.ZipFile(temporary, "w") as archive:
            for name, path in sorted(items, key=lambda item: item[0]):
                info = zipfile.ZipInfo(name, date_time=ZIP_TIMESTAMP)
                info.create_system = 3  # unix, so external_attr carries the permissions
                if path is None:
                    info.external_attr = (stat.S_IFDIR | EXEC_MODE) << 16 | 0x10
                    archive.writestr(info, b"", compress_type=zipfile.ZIP_STORED)
                else:
                    info.external_attr = (stat.S_IFREG | _mode(path)) << 16
                    info.compress_type = zipfile.ZIP_DEFLATED
                    archive.writestr(info, path.read_bytes(), compress_type=zipfile.ZIP_DEFLATED,
                                     compresslevel=COMPRESS_LEVEL)
        os.replace(temporary, destination)
    finally:
        if temporary.exists():
            temporary.unlink()


def build_artifacts(
    root: Path = Path("."),
    build_dir: Path = Path(".sdlf/build/artifacts"),
    *,
    cache_dir: Path | None = None,
    installer: Installer = pip_installer,
) -> list[Artifact]:
    """Build every function and layer zip under `build_dir` (a relative one is taken under `root`).

    The zip of an artifact lives at `build_dir/<its S3 key>`; older zips of the same artifact are
    removed. `cache_dir` (default: the project's, `sdlf_cli.cache_dir`) holds vendored requirements.
    """
    root = Path(root)
    build_dir = build_dir if build_dir.is_absolute() else root / build_dir
    cache_dir = cache_dir if cache_dir is not None else project_cache_dir(root)
    artifacts: list[Artifact] = []
    for source in discover(root):
        if source.kind == "glue":
            artifacts.append(_build_glue_script(source, build_dir))
            continue
        requirements = source.folder / REQUIREMENTS_FILE
        requirements_hash, vendored = None, None
        if requirements.is_file():
            requirements_hash, vendored = vendor(requirements, cache_dir, installer)
        entries = _entries(source, vendored)
        if not entries:
            raise PackageError(f"{source.folder}: nothing to package")
        if source.kind == "layer" and not any(name.startswith("python/") for name, _ in entries):
            raise PackageError(f"{source.folder}: a layer needs a python/ folder (or a requirements.txt)")
        sha256 = _input_hash(source, entries, requirements_hash)
        key = artifact_key(source.kind, source.name, sha256)
        zip_path = build_dir / key
        if not zip_path.is_file():  # same key, same inputs: an existing zip (written atomically) is the same bytes
            write_zip(entries, zip_path)
        for stale in zip_path.parent.glob("*.zip"):
            if stale != zip_path:
                stale.unlink()
        artifacts.append(
            Artifact(
                name=source.name,
                kind=source.kind,
                source=source.folder,
                zip_path=zip_path,
                sha256=sha256,
                key=key,
                parameter=parameter_name(source.kind, source.name),
                size=zip_path.stat().st_size,
            )
        )
    return artifacts


def _build_glue_script(source: _Source, build_dir: Path) -> Artifact:
    """A Glue script is uploaded as is; its key hashes the format, the kind, the name and the bytes."""
    entries = [(source.folder.name, source.folder)]
    sha256 = _input_hash(source, entries, None)
    key = artifact_key("glue", source.name, sha256)
    path = build_dir / key
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        shutil.copyfile(source.folder, temporary)
        os.replace(temporary, path)
    for stale in path.parent.glob(f"*{GLUE_SUFFIX}"):
        if stale != path:
            stale.unlink()
    return Artifact(name=source.name, kind="glue", source=source.folder, zip_path=path, sha256=sha256, key=key,
                    parameter=parameter_name("glue", source.name), size=path.stat().st_size)


# --- upload ------------------------------------------------------------------------------------
# Artifacts checked and uploaded at once: each is a HEAD (and maybe a PUT) that waits on S3, and the
# uploads stand between the bootstrap stack and the first stack of the lake.
UPLOAD_WORKERS = 8


def upload_artifacts(
    artifacts: Iterable[Artifact], s3_client, bucket: str, dry_run: bool = False
) -> list[UploadResult]:
    """Upload each artifact whose key is not in the bucket yet (keys are content hashes), several at once
    (boto3 clients are thread-safe); results in the order given, the first failure in that order raised."""
    items = list(artifacts)

    def upload(artifact: Artifact) -> UploadResult:
        return _upload(artifact, s3_client, bucket, dry_run)

    if len(items) < 2:
        return [upload(a) for a in items]
    with ThreadPoolExecutor(max_workers=min(UPLOAD_WORKERS, len(items)), thread_name_prefix="sdlf-upload") as pool:
        return list(pool.map(upload, items))


def _upload(artifact: Artifact, s3_client, bucket: str, dry_run: bool) -> UploadResult:
    if _exists(s3_client, bucket, artifact):
        return UploadResult(artifact, "skipped")
    if dry_run:
        return UploadResult(artifact, "would-upload")
    try:
        with open(artifact.zip_path, "rb") as body:
            s3_client.put_object(
                Bucket=bucket,
                Key=artifact.key,
                Body=body,
                ContentType="text/x-python" if artifact.kind == "glue" else "application/zip",
                Metadata={"sdlf-input-sha256": artifact.sha256},
            )
    except ClientError as exc:
        raise PackageError(f"uploading {artifact.zip_path} to s3://{bucket}/{artifact.key}: {_describe(exc)}") from exc
    except OSError as exc:
        raise PackageError(f"reading {artifact.zip_path}: {exc}; run the build again") from exc
    return UploadResult(artifact, "uploaded")


def _exists(s3_client, bucket: str, artifact: Artifact) -> bool:
    try:
        s3_client.head_object(Bucket=bucket, Key=artifact.key)
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in ("404", "NoSuchKey", "NotFound"):
            return False
        raise PackageError(f"checking s3://{bucket}/{artifact.key}: {_describe(exc)}") from exc
    return True


def _describe(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    return f"{error.get('Code', 'error')}: {error.get('Message') or exc}"


def parameter_values(artifacts: Iterable[Artifact]) -> dict[str, str]:
    """Template parameter name -> S3 key, for every artifact."""
    return {artifact.parameter: artifact.key for artifact in artifacts}
