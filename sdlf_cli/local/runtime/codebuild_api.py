"""moto patches that put the CodeBuild runner behind the API: `BatchGetBuilds` and `StopBuild` see the
builds that really ran, and `StartBuild` runs S3 and NO_SOURCE projects (other source types keep moto's
stored-only builds)."""
from __future__ import annotations

import copy
import threading
from pathlib import Path
from typing import Any

from sdlf_cli.local.context import EmulatorContext
from sdlf_cli.local.runtime.buildspec import BuildError
from sdlf_cli.local.runtime.codebuild import BuildRequest, CodeBuildRunner


def _s3_location(location: str) -> tuple[str, str]:
    """A project's S3 source location: `bucket/key` or `arn:aws:s3:::bucket/key`."""
    path = location.split(":::", 1)[1] if location.startswith("arn:") else location
    bucket, _, key = path.partition("/")
    return bucket, key


def start_api_build(runner: CodeBuildRunner, project: dict[str, Any], source_version: str | None) -> dict[str, Any]:
    """Runs a StartBuild build of an S3 or NO_SOURCE project in the background; returns its new record."""
    source = project.get("source") or {}
    artifacts = project.get("artifacts") or {}
    started = threading.Event()
    record: dict[str, Any] = {}

    def fetch(scratch: Path) -> Path | None:
        if source.get("type") != "S3":
            return None
        bucket, key = _s3_location(source.get("location", ""))
        kwargs = {"VersionId": source_version} if source_version else {}
        try:
            body = runner.client("s3").get_object(Bucket=bucket, Key=key, **kwargs)["Body"].read()
        except Exception as exc:
            raise BuildError("DOWNLOAD_SOURCE", "CLIENT_ERROR",
                             f"error while downloading key {key}, error: {exc}") from exc
        target = scratch / "source.zip"
        target.write_bytes(body)
        return target

    def store(build: dict[str, Any], outputs: dict[str, Path]) -> None:
        if artifacts.get("type") != "S3" or not outputs:
            return
        name = artifacts.get("name") or project["name"]
        parts = [artifacts.get("path") or ""]
        if artifacts.get("namespaceType") == "BUILD_ID":
            parts.append(build["id"].split(":", 1)[1])
        key = "/".join(p.strip("/") for p in [*parts, name] if p and p.strip("/"))
        try:
            runner.client("s3").put_object(Bucket=artifacts["location"], Key=key,
                                           Body=next(iter(outputs.values())).read_bytes())
        except Exception as exc:
            raise BuildError("UPLOAD_ARTIFACTS", "CLIENT_ERROR",
                             f"could not upload the artifact to s3://{artifacts.get('location')}/{key}: {exc}") from exc
        build["artifacts"] = {"location": f"arn:aws:s3:::{artifacts['location']}/{key}"}

    def on_start(build: dict[str, Any]) -> None:
        record.update(id=build["id"])
        started.set()

    request = BuildRequest(project=project["name"], initiator="root", primary_input=None,
                           source_version=source_version or "", resolved_source_version=source_version or "",
                           output_artifacts=["primary"] if artifacts.get("type") == "S3" else [],
                           on_start=on_start, fetch_source=fetch, store_artifacts=store)
    threading.Thread(target=runner.run, args=(request,), name=f"sdlf-build-{project['name']}", daemon=True).start()
    started.wait(timeout=30)
    return runner.records[record["id"]].snapshot()


# --- moto patches ------------------------------------------------------------------------------------------------
_runner: dict[str, CodeBuildRunner] = {}


def _batch_get_builds(original: Any) -> Any:
    def batch_get_builds(self: Any, ids: list[str]) -> list[dict[str, Any]]:
        runner = _runner.get("runner")
        ours = {i: runner.records[i] for i in ids if runner is not None and i in runner.records}
        others = [i for i in ids if i not in ours]
        found = {b["id"]: b for b in (original(self, others) if others else [])}
        found.update({i: r.snapshot() for i, r in ours.items()})
        return [found[i] for i in ids if i in found]

    return batch_get_builds


def _stop_build(original: Any) -> Any:
    def stop_build(self: Any, build_id: str) -> Any:
        runner = _runner.get("runner")
        if runner is not None and runner.stop(build_id):
            return runner.records[build_id].snapshot()
        return original(self, build_id)

    return stop_build


def _start_build(original: Any) -> Any:
    def start_build(self: Any, project_name: str, source_version: str | None = None,
                    artifact_override: dict[str, Any] | None = None) -> dict[str, Any]:
        runner = _runner.get("runner")
        project = self.codebuild_projects.get(project_name)
        if project is None:
            from moto.codebuild.exceptions import ResourceNotFoundException

            raise ResourceNotFoundException(f"Project cannot be found: {project_name}")
        source_type = (project.project_metadata.get("source") or {}).get("type")
        if runner is None or source_type not in ("S3", "NO_SOURCE"):
            return original(self, project_name, source_version, artifact_override)
        return start_api_build(runner, copy.deepcopy(project.project_metadata), source_version)

    return start_build


def install(ctx: EmulatorContext) -> CodeBuildRunner:
    from moto.codebuild.models import CodeBuildBackend

    from sdlf_cli.local.cfn import _patching

    runner = CodeBuildRunner(ctx)
    _runner["runner"] = runner
    _patching.wrap(CodeBuildBackend, "batch_get_builds", "codebuild builds: real phases and status",
                   _batch_get_builds)
    _patching.wrap(CodeBuildBackend, "stop_build", "codebuild builds: stop a running build", _stop_build)
    _patching.wrap(CodeBuildBackend, "start_build", "codebuild builds: StartBuild runs S3 and NO_SOURCE projects",
                   _start_build)
    return runner


def uninstall(runner: CodeBuildRunner) -> None:
    if _runner.get("runner") is runner:
        _runner.pop("runner")
    runner.close()


def active_runner() -> CodeBuildRunner | None:
    return _runner.get("runner")
