"""CodeBuild builds that really run on the emulator.

moto stores projects and fakes builds (random phases, always SUCCEEDED). Here a build started by a
pipeline's CodeBuild action runs its buildspec (`buildspec.py`) in one bash session (`build_shell.py`), in a
scratch copy of the input artifact, with a fresh Python environment (`build_python.py`), the variables
CodeBuild sets and the emulator's endpoint and credentials. Phases go INSTALL -> PRE_BUILD -> BUILD ->
POST_BUILD -> UPLOAD_ARTIFACTS as CodeBuild moves them: a failing INSTALL or PRE_BUILD skips to FINALIZING,
a failing BUILD still runs POST_BUILD, artifacts are always attempted after BUILD; `finally` commands
always run; `on-failure: CONTINUE` goes on to the next phase (the build still fails).
Output lines go to the project's CloudWatch Logs group/stream while the build runs, and the build record
(`batch_get_builds`) shows the real phases, their contexts, status, logs and exported variables.
`codebuild_api.py` puts it behind the API (BatchGetBuilds, StopBuild, StartBuild).
Not emulated: the image itself (builds run on the emulator host's tools and Python; runtime-versions and
run-as are logged and ignored; env.shell sh runs bash), Docker/privileged mode, VPC, LOCAL caches and
cache keys (S3 caches are kept: `build_cache.py`), reports, batch
builds, buildspec 0.1 and on-failure RETRY; builds inherit the emulator process's environment (as Glue
jobs and Lambda workers do) below the variables CodeBuild sets.
"""
from __future__ import annotations

import base64
import copy
import logging
import os
import shutil
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from sdlf_cli.cache_dir import CACHE_DIR_VARIABLE
from sdlf_cli.local.context import EmulatorContext
from sdlf_cli.local.runtime import build_cache, build_python
from sdlf_cli.local.runtime.build_artifacts import extract, package_outputs
from sdlf_cli.local.runtime.build_log import BuildLog, clock
from sdlf_cli.local.runtime.build_shell import ShellSession
from sdlf_cli.local.runtime.buildspec import Buildspec, BuildError, BuildspecError, parse

LOG = logging.getLogger(__name__)

DEFAULT_TIMEOUT_MINUTES = 60
# A build starts from its image and its project's settings: the host's profile, virtualenv, test context and
# sdlf cache location (a build's cache is its project's S3 cache) stay out of it.
_DROPPED_ENV = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
                "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "VIRTUAL_ENV", "PYTHONHOME", "PYTHONPATH",
                "PYTEST_CURRENT_TEST", CACHE_DIR_VARIABLE)
_PHASE_TYPES = {"install": "INSTALL", "pre_build": "PRE_BUILD", "build": "BUILD", "post_build": "POST_BUILD"}


@dataclass
class BuildRequest:
    """A build as a CodePipeline CodeBuild action starts it."""
    project: str
    initiator: str
    primary_input: Path | None  # the primary input artifact (zip)
    secondary_inputs: dict[str, Path] = field(default_factory=dict)  # artifact name -> zip
    source_version: str = ""  # CODEBUILD_SOURCE_VERSION (the input artifact's S3 ARN for a pipeline)
    resolved_source_version: str = ""
    environment_overrides: list[dict[str, str]] = field(default_factory=list)
    output_artifacts: list[str] = field(default_factory=list)  # names; the first is the primary
    on_start: Callable[[dict[str, Any]], None] | None = None  # called with the new build record
    # A build started through StartBuild fetches its own source (DOWNLOAD_SOURCE) and uploads its own
    # artifacts (UPLOAD_ARTIFACTS); both raise BuildError to fail their phase.
    fetch_source: Callable[[Path], Path | None] | None = None
    store_artifacts: Callable[[dict[str, Any], dict[str, Path]], None] | None = None


@dataclass
class BuildResult:
    build_id: str
    status: str  # SUCCEEDED | FAILED | FAULT | TIMED_OUT | STOPPED
    outputs: dict[str, Path]  # output artifact name -> zip
    exported: dict[str, str]
    failed_phase: str | None = None
    code: str | None = None
    message: str | None = None

    @property
    def summary(self) -> str:
        """What CodePipeline shows for a failed CodeBuild action."""
        return (f"Build terminated with state: {self.status}. Phase: {self.failed_phase}, Code: {self.code}, "
                f"Message: {self.message}")


def _now() -> float:
    return time.time()


def codebuild_backend(account_id: str, region: str):
    from moto.codebuild.models import codebuild_backends

    return codebuild_backends[account_id][region]


class BuildRecord:
    """The build as `batch_get_builds` returns it; mutated by the runner, copied under a lock when read."""

    def __init__(self, build: dict[str, Any]):
        self.build = build
        self.lock = threading.Lock()
        self.stopping = False
        self.session: ShellSession | None = None

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return copy.deepcopy(self.build)

    def start_phase(self, phase_type: str) -> None:
        with self.lock:
            now = _now()
            for phase in self.build["phases"]:
                if "endTime" not in phase:
                    phase.update(endTime=now, durationInSeconds=int(now - phase["startTime"]))
                    phase.setdefault("phaseStatus", "SUCCEEDED")
            self.build["phases"].append({"phaseType": phase_type, "startTime": now})
            self.build["currentPhase"] = phase_type

    def end_phase(self, status: str, code: str = "", message: str = "") -> None:
        with self.lock:
            phase = self.build["phases"][-1]
            now = _now()
            phase.update(phaseStatus=status, endTime=now, durationInSeconds=int(now - phase["startTime"]),
                         contexts=[{"statusCode": code, "message": message}])


class CodeBuildRunner:
    def __init__(self, ctx: EmulatorContext, max_parallel: int = 2):
        self.ctx = ctx
        self.work_dir = ctx.state_dir / "codebuild"
        self.records: dict[str, BuildRecord] = {}
        self._numbers: dict[str, int] = {}
        self._lock = threading.Lock()
        self._slots = threading.Semaphore(max_parallel)  # the machine's cores, not a CodeBuild quota
        self._closed = False

    def client(self, service: str, credentials: dict[str, str] | None = None):
        """The emulator's own client, or with `credentials` (`_role_credentials`) one acting as the build's
        service role, as CodeBuild itself does with the role (the project's S3 cache)."""
        import boto3

        keys = ({"aws_access_key_id": credentials["AWS_ACCESS_KEY_ID"],
                 "aws_secret_access_key": credentials["AWS_SECRET_ACCESS_KEY"],
                 "aws_session_token": credentials["AWS_SESSION_TOKEN"]} if credentials
                else {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"})
        return boto3.client(service, endpoint_url=self.ctx.endpoint_url, region_name=self.ctx.region, **keys)

    # --- the build record -----------------------------------------------------------------------------------
    def _project(self, name: str) -> dict[str, Any]:
        backend = codebuild_backend(self.ctx.account_id, self.ctx.region)
        project = backend.codebuild_projects.get(name)
        if project is None:
            raise BuildError("SUBMITTED", "CLIENT_ERROR", f"Project cannot be found: {name}")
        return copy.deepcopy(project.project_metadata)

    def create_record(self, request: BuildRequest, project: dict[str, Any]) -> BuildRecord:
        backend = codebuild_backend(self.ctx.account_id, self.ctx.region)
        build_uuid = str(uuid.uuid4())
        build_id = f"{request.project}:{build_uuid}"
        with self._lock:
            number = self._numbers.get(request.project, len(backend.build_history.get(request.project, []))) + 1
            self._numbers[request.project] = number
        region, account = self.ctx.region, self.ctx.account_id
        cw = ((project.get("logsConfig") or {}).get("cloudWatchLogs") or {"status": "ENABLED"})
        group = cw.get("groupName") or f"/aws/codebuild/{request.project}"
        stream = f"{cw['streamName']}/{build_uuid}" if cw.get("streamName") else build_uuid
        enabled = cw.get("status", "ENABLED") == "ENABLED"
        logs: dict[str, Any] = {"cloudWatchLogs": dict(cw)}
        if enabled:
            logs.update(groupName=group, streamName=stream,
                        deepLink=(f"https://console.aws.amazon.com/cloudwatch/home?region={region}#logsV2:"
                                  f"log-groups/log-group/{group.replace('/', '$252F')}/log-events/"
                                  f"{stream.replace('/', '$252F')}"),
                        cloudWatchLogsArn=f"arn:aws:logs:{region}:{account}:log-group:{group}:log-stream:{stream}")
        now = _now()
        build = {
            "id": build_id, "arn": f"arn:aws:codebuild:{region}:{account}:build/{build_id}", "buildNumber": number,
            "startTime": now, "currentPhase": "SUBMITTED", "buildStatus": "IN_PROGRESS",
            "sourceVersion": request.source_version, "resolvedSourceVersion": request.resolved_source_version,
            "projectName": request.project,
            "phases": [{"phaseType": "SUBMITTED", "phaseStatus": "SUCCEEDED", "startTime": now, "endTime": now,
                        "durationInSeconds": 0}],
            "source": project.get("source", {}), "secondarySources": [], "secondarySourceVersions": [],
            "artifacts": {}, "secondaryArtifacts": [], "cache": project.get("cache", {"type": "NO_CACHE"}),
            "environment": project.get("environment", {}), "serviceRole": project.get("serviceRole"),
            "logs": logs, "timeoutInMinutes": int(project.get("timeoutInMinutes") or DEFAULT_TIMEOUT_MINUTES),
            "queuedTimeoutInMinutes": int(project.get("queuedTimeoutInMinutes") or 480), "buildComplete": False,
            "initiator": request.initiator, "encryptionKey": project.get("encryptionKey"),
        }
        record = BuildRecord(build)
        with self._lock:
            self.records[build_id] = record
        backend.build_history.setdefault(request.project, []).append(build_id)
        return record

    # --- one build --------------------------------------------------------------------------------------------
    def run(self, request: BuildRequest) -> BuildResult:
        """Runs a build to its end; the caller (a pipeline action) waits for it."""
        project = self._project(request.project)
        record = self.create_record(request, project)
        build = record.build
        build_id = build["id"]
        log = BuildLog(self.client("logs"), build["logs"].get("groupName"), build["logs"].get("streamName", ""))
        scratch = self.work_dir / build_id.replace(":", "-")
        outcome = BuildResult(build_id, "FAILED", {}, {})
        record.start_phase("QUEUED")
        if request.on_start is not None:
            request.on_start(build)
        self._event(build)
        with self._slots:
            try:
                outcome = self._run(request, project, record, log, scratch)
            except Exception as exc:  # our own failure must still end the build
                LOG.exception("build %s could not run", build_id)
                outcome = BuildResult(build_id, "FAULT", {}, {}, build.get("currentPhase"), "CLIENT_ERROR",
                                      f"{type(exc).__name__}: {exc}")
                record.end_phase("FAILED", "CLIENT_ERROR", outcome.message or "")
            finally:
                if record.session is not None:
                    record.session.close()
                log.close()
        with record.lock:
            now = _now()
            for phase in build["phases"]:
                if "endTime" not in phase:
                    phase.update(endTime=now, durationInSeconds=int(now - phase["startTime"]),
                                 phaseStatus=phase.get("phaseStatus", "SUCCEEDED"))
            build["phases"].append({"phaseType": "COMPLETED", "startTime": now})
            build.update(currentPhase="COMPLETED", endTime=now, buildComplete=True)
            if outcome.exported:
                build["exportedEnvironmentVariables"] = [{"name": k, "value": v} for k, v in outcome.exported.items()]
            build["buildStatus"] = outcome.status
        shutil.rmtree(scratch / "python", ignore_errors=True)
        self._event(record.snapshot())
        return outcome

    def _event(self, build: dict[str, Any]) -> None:
        """The "CodeBuild Build State Change" event EventBridge receives when a build starts and ends."""
        from sdlf_cli.local.runtime.cicd_events import put_event

        failed = next((p for p in build["phases"] if p.get("phaseStatus") not in (None, "SUCCEEDED")), None)
        info: dict[str, Any] = {
            "initiator": build["initiator"], "build-complete": build["buildComplete"],
            "build-number": build["buildNumber"], "build-start-time": clock(build["startTime"]),
            "logs": {k: build["logs"][k] for k in ("groupName", "streamName", "deepLink") if k in build["logs"]},
            "phases": build["phases"], "timeout-in-minutes": build["timeoutInMinutes"],
        }
        if failed is not None:
            info["failed-phase"] = failed["phaseType"]
            info["failed-phase-context"] = failed.get("contexts", [])
        detail = {"build-status": build["buildStatus"], "project-name": build["projectName"],
                  "build-id": build["arn"], "current-phase": build["currentPhase"], "version": "1",
                  "current-phase-context": "[]", "additional-information": info}
        try:
            put_event(self.ctx.account_id, self.ctx.region, "aws.codebuild", "CodeBuild Build State Change", detail,
                      [build["arn"]])
        except Exception:
            LOG.exception("could not send the state change event of build %s", build["id"])

    def _run(self, request: BuildRequest, project: dict[str, Any], record: BuildRecord, log: BuildLog,
             scratch: Path) -> BuildResult:
        build = record.build
        build_id = build["id"]
        deadline = time.monotonic() + 60 * build["timeoutInMinutes"]
        record.start_phase("PROVISIONING")
        log.container(f"Waiting for agent ping")
        log.container("Waiting for DOWNLOAD_SOURCE")
        src = scratch / "src"
        shutil.rmtree(scratch, ignore_errors=True)
        src.mkdir(parents=True)
        bin_dir = build_python.create(scratch / "python")
        try:
            credentials = self._role_credentials(build)
        except BuildError as exc:
            log.container(f"Phase complete: PROVISIONING State: FAILED")
            log.container(f"Phase context status code: {exc.code} Message: {exc.message}")
            record.end_phase("FAILED", exc.code, exc.message)
            return BuildResult(build_id, "FAILED", {}, {}, "PROVISIONING", exc.code, exc.message)
        record.end_phase("SUCCEEDED")
        record.start_phase("DOWNLOAD_SOURCE")
        try:
            primary = request.primary_input
            if primary is None and request.fetch_source is not None:
                primary = request.fetch_source(scratch)
            if primary is not None:
                extract(primary, src)
            secondary_dirs = {}
            for name, path in request.secondary_inputs.items():
                secondary_dirs[name] = scratch / f"src_{name}"
                extract(path, secondary_dirs[name])
            spec = self._buildspec(project, src)
        except BuildError as exc:
            log.container(f"Phase complete: DOWNLOAD_SOURCE State: FAILED")
            log.container(f"Phase context status code: {exc.code} Message: {exc.message}")
            record.end_phase("FAILED", exc.code, exc.message)
            return BuildResult(build_id, "FAILED", {}, {}, "DOWNLOAD_SOURCE", exc.code, exc.message)
        cache_at = build_cache.location(project)
        cache_paths = build_cache.relative_paths(spec.cache_paths, log.container) if cache_at else []
        cache_s3 = self.client("s3", credentials) if cache_at is not None and cache_paths else None
        if cache_s3 is not None:
            build_cache.restore(cache_s3, cache_at, src, log.container)
        log.container(f"CODEBUILD_SRC_DIR={src}")
        log.container("Phase complete: DOWNLOAD_SOURCE State: SUCCEEDED")
        log.container("Phase context status code:  Message: ")
        record.end_phase("SUCCEEDED")

        env = self._environment(request, project, spec, build, src, secondary_dirs, bin_dir)
        env.update(credentials)
        session_env = env
        failure: BuildError | None = None
        skip_to_finalizing = False
        for phase in spec.phases:
            phase_type = _PHASE_TYPES[phase.name]
            if skip_to_finalizing:
                break
            if record.stopping:
                break
            record.start_phase(phase_type)
            log.container(f"Entering phase {phase_type}")
            for runtime, version in phase.runtime_versions.items():
                log.container(f"Runtime version {runtime}={version}: using the emulator host's runtime")
            phase_error = self._commands(record, log, phase.commands, session_env, src, deadline)
            if phase.finally_commands:
                finally_error = self._commands(record, log, phase.finally_commands, session_env, src, deadline,
                                               always=True)
                phase_error = phase_error or finally_error
            if phase_error is not None:
                if phase_error.code in ("BUILD_TIMED_OUT", "STOPPED"):
                    record.end_phase(phase_error.code.replace("BUILD_", ""), phase_error.code, phase_error.message)
                    log.container(f"Phase complete: {phase_type} State: {phase_error.code.replace('BUILD_', '')}")
                    return self._ended(build_id, phase_type, phase_error)
                log.container(f"Phase complete: {phase_type} State: FAILED")
                log.container(f"Phase context status code: {phase_error.code} Message: {phase_error.message}")
                record.end_phase("FAILED", phase_error.code, phase_error.message)
                failure = failure or BuildError(phase_type, phase_error.code, phase_error.message)
                self._hidden(record, "export CODEBUILD_BUILD_SUCCEEDING=0", session_env, src, deadline)
                if phase.on_failure == "ABORT" and phase.name in ("install", "pre_build"):
                    skip_to_finalizing = True
                elif phase.on_failure == "ABORT" and phase.name == "post_build":
                    break
            else:
                log.container(f"Phase complete: {phase_type} State: SUCCEEDED")
                log.container("Phase context status code:  Message: ")
                record.end_phase("SUCCEEDED")
        if record.stopping:
            return self._ended(build_id, build["currentPhase"], BuildError(build["currentPhase"], "STOPPED",
                                                                              "The build was stopped"))
        exported = self._exported(record, spec, session_env, src, deadline, scratch)
        outputs: dict[str, Path] = {}
        if not skip_to_finalizing:
            record.start_phase("UPLOAD_ARTIFACTS")
            log.container("Entering phase UPLOAD_ARTIFACTS")
            try:
                outputs = package_outputs(spec, request.output_artifacts, src, scratch / "out")
                if request.store_artifacts is not None and failure is None:
                    request.store_artifacts(build, outputs)
                for name, path in outputs.items():
                    log.container(f"Artifact {name}: {path.stat().st_size} bytes zipped")
                log.container("Phase complete: UPLOAD_ARTIFACTS State: SUCCEEDED")
                record.end_phase("SUCCEEDED")
            except BuildError as exc:
                log.container("Phase complete: UPLOAD_ARTIFACTS State: FAILED")
                log.container(f"Phase context status code: {exc.code} Message: {exc.message}")
                record.end_phase("FAILED", exc.code, exc.message)
                failure = failure or exc
            if cache_s3 is not None:
                build_cache.save(cache_s3, cache_at, src, cache_paths, log.container)
        record.start_phase("FINALIZING")
        record.end_phase("SUCCEEDED")
        if failure is not None:
            return BuildResult(build_id, "FAILED", {}, exported, failure.phase, failure.code, failure.message)
        return BuildResult(build_id, "SUCCEEDED", outputs, exported)

    @staticmethod
    def _ended(build_id: str, phase: str, error: BuildError) -> BuildResult:
        status = "TIMED_OUT" if error.code == "BUILD_TIMED_OUT" else "STOPPED"
        return BuildResult(build_id, status, {}, {}, phase, error.code, error.message)

    def _buildspec(self, project: dict[str, Any], src: Path) -> Buildspec:
        text = (project.get("source") or {}).get("buildspec") or "buildspec.yml"
        where = "the project's inline buildspec"
        if "\n" not in text.strip() and text.strip().endswith((".yml", ".yaml")):
            path = src / text.strip()
            if not path.is_file():
                raise BuildError("DOWNLOAD_SOURCE", "YAML_FILE_ERROR",
                                 f"YAML_FILE_ERROR: stat {path}: no such file or directory")
            where, text = text.strip(), path.read_text()
        try:
            return parse(text, where)
        except BuildspecError as exc:
            raise BuildError("DOWNLOAD_SOURCE", "YAML_FILE_ERROR", str(exc)) from exc

    def _environment(self, request: BuildRequest, project: dict[str, Any], spec: Buildspec, build: dict[str, Any],
                     src: Path, secondary_dirs: dict[str, Path], bin_dir: Path) -> dict[str, str]:
        region, account = self.ctx.region, self.ctx.account_id
        env = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV}
        env["PATH"] = build_python.path_variable(bin_dir, env.get("PATH", "/usr/bin:/bin"))
        env["VIRTUAL_ENV"] = str(bin_dir.parent)
        build_uuid = build["id"].split(":", 1)[1]
        env.update({
            "AWS_ENDPOINT_URL": self.ctx.endpoint_url, "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": region, "AWS_DEFAULT_REGION": region,
            "CODEBUILD_BUILD_ID": build["id"], "CODEBUILD_BUILD_ARN": build["arn"],
            "CODEBUILD_BUILD_NUMBER": str(build["buildNumber"]), "CODEBUILD_INITIATOR": request.initiator,
            "CODEBUILD_SRC_DIR": str(src), "CODEBUILD_SOURCE_VERSION": request.source_version,
            "CODEBUILD_RESOLVED_SOURCE_VERSION": request.resolved_source_version,
            "CODEBUILD_BUILD_IMAGE": (project.get("environment") or {}).get("image", ""),
            "CODEBUILD_KMS_KEY_ID": project.get("encryptionKey") or "",
            "CODEBUILD_LOG_PATH": build["logs"].get("streamName", ""), "CODEBUILD_START_TIME": str(int(build["startTime"] * 1000)),
            "CODEBUILD_BUILD_SUCCEEDING": "1", "CODEBUILD_PROJECT_UUID": build_uuid,
            "CODEBUILD_BUILD_URL": (f"https://{region}.console.aws.amazon.com/codebuild/home?region={region}"
                                    f"#/builds/{build['id']}/view/new"),
            "PYTHONUNBUFFERED": "1",
        })
        for name, path in secondary_dirs.items():
            env[f"CODEBUILD_SRC_DIR_{name}"] = str(path)
        # Precedence as CodeBuild documents it: the start-build call, then the project, then the buildspec.
        env.update(spec.variables)
        for name, parameter in spec.parameter_store.items():
            env[name] = self._parameter(parameter)
        for name, reference in spec.secrets_manager.items():
            env[name] = self._secret(reference)
        for variable in [*((project.get("environment") or {}).get("environmentVariables") or []),
                         *request.environment_overrides]:
            value = str(variable.get("value", ""))
            kind = variable.get("type", "PLAINTEXT")
            env[variable["name"]] = (self._parameter(value) if kind == "PARAMETER_STORE"
                                     else self._secret(value) if kind == "SECRETS_MANAGER" else value)
        return env

    def _role_credentials(self, build: dict[str, Any]) -> dict[str, str]:
        """The build acts as the project's service role (assumed-role keys from the emulator's STS), as on
        CodeBuild: `aws sts get-caller-identity` in a build names the role."""
        role = build.get("serviceRole") or ""
        try:
            credentials = self.client("sts").assume_role(
                RoleArn=role, RoleSessionName=build["id"].split(":", 1)[1][:64])["Credentials"]
        except Exception as exc:
            raise BuildError("PROVISIONING", "CLIENT_ERROR",
                             f"CodeBuild is not authorized to perform: sts:AssumeRole on {role}: {exc}") from exc
        return {"AWS_ACCESS_KEY_ID": credentials["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
                "AWS_SESSION_TOKEN": credentials["SessionToken"]}

    def _parameter(self, name: str) -> str:
        try:
            return self.client("ssm").get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
        except Exception as exc:
            raise BuildError("DOWNLOAD_SOURCE", "CLIENT_ERROR",
                             f"Parameter Store parameter {name} could not be read: {exc}") from exc

    def _secret(self, reference: str) -> str:
        import json

        secret_id, _, rest = reference.partition(":") if not reference.startswith("arn:") else (
            ":".join(reference.split(":")[:7]), ":", ":".join(reference.split(":")[7:]))
        json_key, _, stage = rest.partition(":")
        try:
            kwargs = {"SecretId": secret_id}
            if stage.split(":")[0]:
                kwargs["VersionStage"] = stage.split(":")[0]
            value = self.client("secretsmanager").get_secret_value(**kwargs)["SecretString"]
            return str(json.loads(value)[json_key]) if json_key else value
        except Exception as exc:
            raise BuildError("DOWNLOAD_SOURCE", "CLIENT_ERROR",
                             f"Secrets Manager secret {reference} could not be read: {exc}") from exc

    def _session(self, record: BuildRecord, env: dict[str, str], src: Path, log: BuildLog | None) -> ShellSession:
        # Under the record's lock, so a StopBuild that arrives before the shell exists finds it or is seen here:
        # otherwise a stop between the phase starting and its first command would let that command run to its end.
        with record.lock:
            if record.session is None or record.session.process.poll() is not None:
                record.session = ShellSession(src, env, log.write if log is not None else (lambda line: None))
            session = record.session
            if record.stopping:
                session.kill()
        return session

    def _commands(self, record: BuildRecord, log: BuildLog, commands: list[str], env: dict[str, str], src: Path,
                  deadline: float, always: bool = False) -> BuildError | None:
        for command in commands:
            if record.stopping:
                return BuildError("", "STOPPED", "The build was stopped")
            log.container(f"Running command {command}")
            session = self._session(record, env, src, log)
            session.on_line = log.write
            result = session.run(command, deadline)
            if result.status is None:
                session.kill()
                timeout = record.build["timeoutInMinutes"]
                log.container(f"Build timed out after {timeout} minute(s) during: {command}")
                return BuildError("", "BUILD_TIMED_OUT", f"Build has timed out after {timeout} minute(s)")
            if record.stopping:
                return BuildError("", "STOPPED", "The build was stopped")
            if result.status != 0:
                log.container(f"Command did not exit successfully {command} exit status {result.status}")
                return BuildError("", "COMMAND_EXECUTION_ERROR",
                                  f"Error while executing command: {command}. Reason: exit status {result.status}")
        return None

    def _hidden(self, record: BuildRecord, command: str, env: dict[str, str], src: Path, deadline: float) -> int | None:
        session = self._session(record, env, src, None)
        previous, session.on_line = session.on_line, (lambda line: None)
        try:
            return session.run(command, deadline).status
        finally:
            session.on_line = previous

    def _exported(self, record: BuildRecord, spec: Buildspec, env: dict[str, str], src: Path, deadline: float,
                  scratch: Path) -> dict[str, str]:
        if not spec.exported_variables:
            return {}
        target = scratch / "exported"
        names = " ".join(spec.exported_variables)
        self._hidden(record, f'for __v in {names}; do printf "%s %s\\n" "$__v" "$(printf %s "${{!__v-}}" | '
                             f'base64 -w0)"; done > {target}', env, src, deadline)
        exported = {}
        if target.is_file():
            for line in target.read_text().splitlines():
                name, _, value = line.partition(" ")
                exported[name] = base64.b64decode(value).decode("utf-8", errors="replace")
        return exported

    def stop(self, build_id: str) -> bool:
        record = self.records.get(build_id)
        if record is None:
            return False
        with record.lock:
            record.stopping = True
            session = record.session
        if session is not None:
            session.kill()
        return True

    def close(self) -> None:
        self._closed = True
        for record in list(self.records.values()):
            if record.build.get("buildStatus") == "IN_PROGRESS":
                record.stopping = True
                if record.session is not None:
                    record.session.kill()


