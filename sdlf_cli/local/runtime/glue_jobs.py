"""Glue job runs that really run on the emulator.

moto stores a job run and reports it SUCCEEDED on the next GetJobRun without running anything. Here
`StartJobRun` still goes through moto (argument merging, MaxConcurrentRuns ->
ConcurrentRunsExceededException), but the new run's state is pinned to RUNNING and a worker thread:
1. fetches the job's Command.ScriptLocation from the emulator's S3,
2. runs `python <script> --JOB_NAME <job> --JOB_RUN_ID <id> <arguments>` in a subprocess with the run's
   arguments (job DefaultArguments overridden by the run's, NonOverridableArguments last — moto merges
   them) minus the Glue-only ones, `AWS_ENDPOINT_URL` = the emulator and fake credentials,
3. sets SUCCEEDED, FAILED (ErrorMessage = the last line of stderr) or TIMEOUT (the run's/job's Timeout,
   in minutes), and writes stdout/stderr to CloudWatch Logs (`/aws-glue/python-jobs/output` and
   `/error`, log stream = run id), as Glue does.
Because GetJobRun shows RUNNING until the subprocess ends, `glue:startJobRun.sync` in Step Functions
waits for the real outcome. A Spark job's driver JVM starts from the class archive in the project's cache
(spark_class_archive), made by the first Spark run that finds none.
"""
from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sdlf_cli.local.context import EmulatorContext
from sdlf_cli.local.iam.credentials import ServiceClients
from sdlf_cli.local.runtime import spark_class_archive
from sdlf_cli.local.runtime.fork_server import ForkServer, ForkServerUnavailable

LOG = logging.getLogger(__name__)

OUTPUT_LOG_GROUP = "/aws-glue/python-jobs/output"
ERROR_LOG_GROUP = "/aws-glue/python-jobs/error"
DEFAULT_TIMEOUT_MINUTES = 2880  # Glue's default job timeout (48 hours)
MAX_ERROR_MESSAGE = 2048

# Arguments Glue itself consumes (module installation, Spark/monitoring switches); scripts never see them
# in a useful form off Glue, and some (`--conf`) would confuse a local argument parser.
GLUE_ONLY_ARGUMENTS = frozenset({
    "--additional-python-modules", "--python-modules-installer-option", "--job-language", "--job-bookmark-option",
    "--TempDir", "--extra-py-files", "--extra-jars", "--extra-files", "--user-jars-first", "--conf",
    "--datalake-formats", "--spark-event-logs-path", "--disable-proxy-v2", "--auto-scale-within-microbatch",
    "--library-set", "--customer-driver-env-vars", "--customer-executor-env-vars",
})
GLUE_ONLY_PREFIXES = ("--enable-", "--continuous-log-")

# Credentials the emulator accepts; a run must never pick up a real profile or session.
_DROPPED_ENV = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
                "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE")

# What Glue's Python shell provides and stage B's scripts import: the fork server of Python shell runs imports
# them once (fork_server.py). Spark jobs start a JVM whatever they import, and run as plain processes.
PYTHON_SHELL_LIBRARIES = ("boto3", "pyarrow", "pyarrow.compute", "pyarrow.json", "pyarrow.parquet", "duckdb",
                          "pandas", "cuallee")
# The services stage B's scripts make clients of: their botocore models are loaded once by the fork server.
PYTHON_SHELL_MODELS = ("s3", "dynamodb")

TERMINAL_STATES = frozenset({"SUCCEEDED", "FAILED", "TIMEOUT", "ERROR", "STOPPED"})


@dataclass
class RunOutcome:
    state: str  # SUCCEEDED | FAILED | TIMEOUT | ERROR
    error_message: str | None
    stdout: str
    stderr: str
    seconds: float


def script_arguments(arguments: dict[str, str] | None) -> list[str]:
    """Run arguments as Glue passes them to a script (`--name value`), Glue-only ones dropped."""
    out: list[str] = []
    for name, value in (arguments or {}).items():
        flag = name if name.startswith("--") else f"--{name}"
        if flag in GLUE_ONLY_ARGUMENTS or flag.startswith(GLUE_ONLY_PREFIXES):
            continue
        out += [flag, str(value)]
    return out


def last_error_line(stderr: str, returncode: int) -> str:
    """What Glue shows as ErrorMessage: the exception line a failing script ends with."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    message = lines[-1] if lines else f"script exited with code {returncode} and wrote nothing to stderr"
    return message[:MAX_ERROR_MESSAGE]


def parse_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise ValueError(f"not an s3://bucket/key location: {uri!r}")
    bucket, _, key = uri[5:].partition("/")
    if not bucket or not key:
        raise ValueError(f"not an s3://bucket/key location: {uri!r}")
    return bucket, key


class GlueJobRunner:
    """Runs job scripts in subprocesses on worker threads; one per emulator."""

    def __init__(self, ctx: EmulatorContext, python: str = sys.executable, max_workers: int = 4):
        self.ctx = ctx
        self.python = python
        self.work_dir = ctx.state_dir / "glue"
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="sdlf-glue-job")
        self._processes: dict[str, Any] = {}  # run id -> its process (a Popen or a ForkedProcess)
        self._lock = threading.Lock()
        self._closed = False
        self._service_clients = ServiceClients(ctx.endpoint_url, ctx.region)
        self.class_archive = spark_class_archive.for_cache(ctx.cache_dir)
        self.forks = ForkServer(python, PYTHON_SHELL_LIBRARIES, self.environment(), self.work_dir / "fork-server.log",
                                models=PYTHON_SHELL_MODELS)

    # --- clients into the emulator (same path a script takes) -------------------------------
    def _client(self, service: str, role: str | None = None, session: str = ""):
        """A client of the Glue service itself, or, with `role`, one acting as the job's role."""
        return self._service_clients.client(service, role, session)

    def environment(self, role: str | None = None, session: str = "") -> dict[str, str]:
        """The script's environment: it acts as the job's role (assumed-role keys), as on Glue."""
        from sdlf_cli.local.iam.credentials import role_environment

        env = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV}
        env.update({
            "AWS_ENDPOINT_URL": self.ctx.endpoint_url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": self.ctx.region,
            "AWS_REGION": self.ctx.region,
            "PYTHONUNBUFFERED": "1",
        })
        if role:
            env.update(role_environment(role, session))
        return env

    # --- one run ------------------------------------------------------------------------------
    def submit(self, job: Any, run: Any) -> None:
        if self._closed:
            _finish(run, RunOutcome("ERROR", "the emulator is stopping", "", "", 0.0))
            return
        self._pool.submit(self._run_and_record, job, run)

    def _run_and_record(self, job: Any, run: Any) -> None:
        try:
            command = job.command or {}
            outcome = self.execute(job.name, run.job_run_id, command.get("ScriptLocation"), run.arguments,
                                   run.timeout or job.timeout, role=job.role,
                                   python_shell=command.get("Name") == "pythonshell")
        except Exception as exc:  # our own failure must still end the run, or .sync waits forever
            LOG.exception("Glue job run %s of %s could not run", run.job_run_id, job.name)
            outcome = RunOutcome("ERROR", f"{type(exc).__name__}: {exc}"[:MAX_ERROR_MESSAGE], "", "", 0.0)
        try:
            self._write_logs(run.job_run_id, outcome)
        except Exception:
            LOG.exception("could not write the logs of Glue job run %s", run.job_run_id)
        _finish(run, outcome)

    def execute(self, job_name: str, run_id: str, script_location: str | None, arguments: dict[str, str] | None,
                timeout_minutes: float | None, role: str | None = None, python_shell: bool = False) -> RunOutcome:
        """Runs one script to its end (or its timeout), reading it and running it as `role` when given;
        the caller records the outcome on the run. A Python shell job's script is a child of the fork server."""
        started = time.monotonic()
        if not script_location:
            return RunOutcome("FAILED", f"job {job_name} has no Command.ScriptLocation", "", "", 0.0)
        try:
            bucket, key = parse_s3_uri(script_location)
            body = self._client("s3", role, run_id).get_object(Bucket=bucket, Key=key)["Body"].read()
        except Exception as exc:
            message = f"cannot read the script {script_location} of job {job_name}: {exc}"
            return RunOutcome("FAILED", message[:MAX_ERROR_MESSAGE], "", "", time.monotonic() - started)
        run_dir = self.work_dir / job_name / run_id
        run_dir.mkdir(parents=True, exist_ok=True)
        script = run_dir / (Path(key).name or "script.py")
        script.write_bytes(body)
        command = [self.python, str(script), "--JOB_NAME", job_name, "--JOB_RUN_ID", run_id,
                   *script_arguments(arguments)]
        timeout = 60 * float(timeout_minutes or DEFAULT_TIMEOUT_MINUTES)
        LOG.info("Glue job %s run %s: %s", job_name, run_id, " ".join(command[1:]))
        env = self.environment(role, run_id)
        archive_use = spark_class_archive.NO_ARCHIVE if python_shell else self.class_archive.for_run(env)
        succeeded = False
        try:
            process = self._start(command, run_dir, archive_use.environment(env), python_shell)
            with self._lock:
                self._processes[run_id] = process
            try:
                stdout, stderr = process.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                stdout, stderr = process.communicate()
                message = f"job run {run_id} timed out after {timeout_minutes or DEFAULT_TIMEOUT_MINUTES} minute(s)"
                return RunOutcome("TIMEOUT", message, stdout, stderr, time.monotonic() - started)
            finally:
                with self._lock:
                    self._processes.pop(run_id, None)
            succeeded = process.returncode == 0
        finally:
            # After communicate: the script's JVM has exited (it holds the pipes too), its archive written.
            if archive_use.finish(succeeded) is not None:
                LOG.info("Glue job %s run %s made the Spark class archive", job_name, run_id)
        seconds = time.monotonic() - started
        if process.returncode == 0:
            return RunOutcome("SUCCEEDED", None, stdout, stderr, seconds)
        if self._closed:
            return RunOutcome("STOPPED", "the emulator stopped while the job was running", stdout, stderr, seconds)
        return RunOutcome("FAILED", last_error_line(stderr, process.returncode), stdout, stderr, seconds)

    def _start(self, command: list[str], run_dir: Path, env: dict[str, str], python_shell: bool) -> Any:
        if python_shell:
            try:
                if self.forks.can_run(Path(command[1]).parent):
                    return self.forks.start(command[1:], run_dir, env)
            except ForkServerUnavailable as exc:
                LOG.debug("Glue job run as a plain process: %s", exc)
        return subprocess.Popen(command, cwd=run_dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, errors="replace")

    def _write_logs(self, run_id: str, outcome: RunOutcome) -> None:
        logs = self._client("logs")
        for group, text in ((OUTPUT_LOG_GROUP, outcome.stdout), (ERROR_LOG_GROUP, outcome.stderr)):
            if outcome.error_message and group == ERROR_LOG_GROUP and outcome.error_message not in text:
                text = f"{text}\n{outcome.error_message}" if text else outcome.error_message
            _put_log_text(logs, group, run_id, text)

    def close(self) -> None:
        self._closed = True
        with self._lock:
            processes = list(self._processes.values())
        for process in processes:  # our children only; each is a job run we started
            process.kill()
        self.forks.close()
        self._pool.shutdown(wait=False, cancel_futures=True)


def _put_log_text(logs: Any, group: str, stream: str, text: str) -> None:
    try:
        logs.create_log_group(logGroupName=group)
    except logs.exceptions.ResourceAlreadyExistsException:
        pass
    try:
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
    except logs.exceptions.ResourceAlreadyExistsException:
        pass
    now = int(time.time() * 1000)
    events = [{"timestamp": now, "message": line[:200_000]} for line in text.splitlines() if line.strip()]
    for start in range(0, len(events), 1000):  # PutLogEvents takes at most 10,000 events / 1 MB
        logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events[start:start + 1000])


def _finish(run: Any, outcome: RunOutcome) -> None:
    run.sdlf_error_message = outcome.error_message
    run.sdlf_execution_seconds = outcome.seconds
    run.completed_on = datetime.now(timezone.utc).replace(tzinfo=None)
    run.modified_on = run.completed_on
    run.sdlf_state = outcome.state  # last: a poller seeing the final state sees everything else too


# --- moto patches --------------------------------------------------------------------------------
_runner: dict[str, GlueJobRunner] = {}


def _pinned_status_property(original: property) -> property:
    """Runs we started report the state we set; moto's own transitions apply to the rest."""

    def getter(self: Any) -> Any:
        state = self.__dict__.get("sdlf_state")
        return state if state is not None else original.fget(self)

    def setter(self: Any, value: Any) -> None:
        if self.__dict__.get("sdlf_state") is not None:
            self.sdlf_state = value
        original.fset(self, value)

    return property(getter, setter)


def _job_run_as_dict(original: Any) -> Any:
    def as_dict(self: Any) -> dict[str, Any]:
        data = original(self)
        if self.__dict__.get("sdlf_state") is None:
            return data
        data["LogGroupName"] = "/aws-glue/python-jobs"
        if self.sdlf_state in TERMINAL_STATES:
            data["ExecutionTime"] = int(round(getattr(self, "sdlf_execution_seconds", 0) or 0))
            if getattr(self, "sdlf_error_message", None):
                data["ErrorMessage"] = self.sdlf_error_message
        else:
            data.pop("CompletedOn", None)
            data["ExecutionTime"] = 0
        return data

    return as_dict


def _start_job_run(original: Any) -> Any:
    def start_job_run(self: Any, *args: Any, **kwargs: Any) -> str:
        run_id = original(self, *args, **kwargs)
        runner = _runner.get("runner")
        if runner is None:  # not installed: moto's behaviour
            return run_id
        run = next(r for r in self.job_runs if r.job_run_id == run_id)
        run.sdlf_state = "RUNNING"
        runner.submit(self, run)
        return run_id

    return start_job_run


def install(ctx: EmulatorContext) -> GlueJobRunner:
    """Patches moto's Glue job runs (once per process) and makes them run with a new runner."""
    from moto.glue.models import FakeJob, FakeJobRun

    from sdlf_cli.local.cfn import _patching

    runner = GlueJobRunner(ctx)
    _runner["runner"] = runner
    _patching.install(_patching.Patch("glue job runs: pinned state", FakeJobRun, "status",
                                      _pinned_status_property(FakeJobRun.status)))
    _patching.wrap(FakeJobRun, "as_dict", "glue job runs: real outcome", _job_run_as_dict)
    _patching.wrap(FakeJob, "start_job_run", "glue job runs: run the script", _start_job_run)
    return runner


def uninstall(runner: GlueJobRunner) -> None:
    if _runner.get("runner") is runner:
        _runner.pop("runner")
    runner.close()
