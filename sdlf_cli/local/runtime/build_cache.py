"""A CodeBuild project's Amazon S3 cache: the files a buildspec's `cache.paths` name, kept between builds.

As on CodeBuild (a project with `Cache: {Type: S3, Location: bucket/prefix}` and a buildspec without a cache
key): the cache is downloaded into the source directory during DOWNLOAD_SOURCE and the paths' files are
uploaded again when the build ends (UPLOAD_ARTIFACTS is always attempted, so a failed build's cache is kept
too: CodeBuild's documentation does not say either way, and what the lake caches is keyed by content), as
the project's service role, so its policy must allow s3:GetObject and s3:PutObject on the location. A cache
that cannot be read or written is a warning in the build's log, never a failed build: a build without its
cache is only slower.
Only paths inside the source directory are emulated; an absolute path (e.g. /root/.cache/pip) is logged and
left out, because a build here runs on the emulator host, not in a container of its own.
"""
from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from sdlf_cli.local.runtime.build_artifacts import matches

OBJECT_NAME = "codebuild-cache.zip"


@dataclass(frozen=True)
class CacheLocation:
    bucket: str
    key: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def location(project: dict[str, Any]) -> CacheLocation | None:
    """Where a project's S3 cache lives (`cache.location` is "bucket" or "bucket/prefix"), or None without one."""
    cache = project.get("cache") or {}
    if str(cache.get("type", "NO_CACHE")).upper() != "S3" or not cache.get("location"):
        return None
    bucket, _, prefix = str(cache["location"]).strip("/").partition("/")
    return CacheLocation(bucket, f"{prefix}/{OBJECT_NAME}" if prefix else OBJECT_NAME)


def relative_paths(paths: list[str], log: Callable[[str], None]) -> list[str]:
    """The cache paths a build here can keep: those inside the source directory."""
    kept = []
    for path in paths:
        if path.strip().startswith(("/", "~")):
            log(f"Cache path {path} is outside the source directory: not kept by the emulator")
        else:
            kept.append(path)
    return kept


def pack(src: Path, paths: list[str]) -> tuple[bytes, int]:
    """A zip of the files under `src` that `paths` match, and how many there are."""
    buffer, count = io.BytesIO(), 0
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(p for p in src.rglob("*") if p.is_file()):
            relative = path.relative_to(src).as_posix()
            if matches(relative, paths):
                zf.write(path, relative)
                count += 1
    return buffer.getvalue(), count


def unpack(body: bytes, src: Path) -> int:
    """Puts a cache's files back under `src` (never outside it); returns how many."""
    root = src.resolve()
    with zipfile.ZipFile(io.BytesIO(body)) as zf:
        members = [m for m in zf.infolist() if not m.is_dir()]
        for member in members:
            target = (root / member.filename).resolve()
            if not target.is_relative_to(root):
                raise ValueError(f"cache entry {member.filename} is outside the source directory")
        zf.extractall(root, members)
    return len(members)


def restore(s3: Any, where: CacheLocation, src: Path, log: Callable[[str], None]) -> None:
    log(f"Downloading S3 cache from {where.uri}")
    try:
        body = s3.get_object(Bucket=where.bucket, Key=where.key)["Body"].read()
    except Exception as exc:  # botocore ClientError, or the endpoint unreachable
        code = getattr(exc, "response", {}).get("Error", {}).get("Code")
        if code in ("NoSuchKey", "404"):
            log("No cache found: the build runs without one")
        else:
            log(f"Warning: could not download the cache from {where.uri}: {exc}")
        return
    try:
        log(f"Cache restored: {unpack(body, src)} file(s)")
    except (zipfile.BadZipFile, ValueError) as exc:
        log(f"Warning: the cache at {where.uri} was not used: {exc}")


def save(s3: Any, where: CacheLocation, src: Path, paths: list[str], log: Callable[[str], None]) -> None:
    body, count = pack(src, paths)
    if not count:
        log(f"No files match the cache paths {paths}: the cache is not updated")
        return
    try:
        s3.put_object(Bucket=where.bucket, Key=where.key, Body=body)
    except Exception as exc:
        log(f"Warning: could not upload the cache to {where.uri}: {exc}")
        return
    log(f"Uploaded S3 cache to {where.uri}: {count} file(s), {len(body)} bytes")
