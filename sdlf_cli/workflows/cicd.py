"""`sdlf cicd`: push a source revision, follow the pipeline, approve or reject a promotion, and the two steps
the pipeline's builds run around `sdlf` commands (summarize a plan for its approval, report a failure).

The pipeline lives in the tooling environment (`cicd.tooling_env`), whatever `--env` says; `--env` picks the
stage of `approve`/`reject`. Everything goes through the lake's gateways (`lake.pipelines`, `lake.builds`,
`lake.build_logs`, `lake.stacks`, `lake.storage`), so the same code runs against AWS and the emulator.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from sdlf_cli.aws.pipelines import ActionRun, ActionState, Topic
from sdlf_cli.config.model import LakeConfig
from sdlf_cli.delivery.archive import build_archive
from sdlf_cli.delivery.results import ROOT_CAUSE_MARK, plan_summary, read_result, root_cause, summary_lines
from sdlf_cli.errors import NotFound, SdlfError, UsageError
from sdlf_cli.naming import Names

RUNNING = ("InProgress", "Stopping")
APPROVAL_ACTION = "Approve"
STAGE_PREFIX = "Deploy-"


def tooling_names(cfg: LakeConfig) -> Names:
    if cfg.cicd is None:
        raise UsageError(f"{' / '.join(cfg.files) or 'parameters'}: no `cicd` section: this lake has no delivery "
                         "pipeline (see parameters/base.yaml of the project)")
    return Names(cfg.org, cfg.app, cfg.cicd.tooling_env)


# --- status -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ActionStatus:
    stage: str
    action: str
    status: str  # Succeeded | Failed | InProgress | Abandoned | not run
    started: datetime | None = None
    duration: float | None = None
    root_cause: str | None = None
    log: str | None = None  # "<group> <stream>" of the build, or a console link
    message: str | None = None  # the plan summary (Plan and Approve actions)

    @property
    def waiting(self) -> bool:
        return self.action == APPROVAL_ACTION and self.status == "InProgress"

    def to_dict(self) -> dict:
        return {"stage": self.stage, "action": self.action, "status": self.status,
                "started": self.started.isoformat() if self.started else None,
                "duration": round(self.duration, 1) if self.duration is not None else None,
                "root_cause": self.root_cause, "log": self.log, "message": self.message}


@dataclass
class PipelineStatus:
    pipeline: str
    execution_id: str | None
    status: str  # the execution's, or "never run"
    revision: str | None = None
    actions: list[ActionStatus] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status not in ("Failed", "Stopped", "Cancelled")

    @property
    def waiting(self) -> ActionStatus | None:
        return next((a for a in self.actions if a.waiting), None)

    @property
    def settled(self) -> bool:
        """Nothing more happens without someone: finished, or waiting for an approval."""
        return self.status not in RUNNING or self.waiting is not None

    @property
    def failure(self) -> ActionStatus | None:
        return next((a for a in self.actions if a.status == "Failed"), None)

    def to_dict(self) -> dict:
        waiting = self.waiting
        failure = self.failure
        return {"pipeline": self.pipeline, "execution_id": self.execution_id, "status": self.status,
                "revision": self.revision, "ok": self.ok,
                "waiting_for_approval": waiting.stage if waiting else None,
                "root_cause": failure.root_cause if failure else None,
                "actions": [a.to_dict() for a in self.actions]}


def _duration(run: ActionRun, now: datetime) -> float | None:
    if run.started is None:
        return None
    end = run.updated if run.status not in RUNNING and run.updated else now
    return max(0.0, (end - run.started).total_seconds())


def build_root_cause(lake, build_id: str) -> tuple[str | None, str | None]:
    """(root cause line `sdlf cicd report` printed, log location) of a build."""
    build = lake.builds.get(build_id)
    if build is None or not build.log_group or not build.log_stream:
        return None, None
    where = build.log_link or f"{build.log_group} {build.log_stream}"
    cause = None
    for line in lake.build_logs.lines(build.log_group, build.log_stream):
        at = line.find(ROOT_CAUSE_MARK)
        if at >= 0 and not line.lstrip().startswith("[Container]"):
            cause = line[at + len(ROOT_CAUSE_MARK):].strip()
    return cause, where


def pipeline_status(lake, execution_id: str | None = None,
                    now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> PipelineStatus:
    names = tooling_names(lake.config)
    name = names.pipeline()
    if execution_id is None:
        try:
            latest = lake.pipelines.latest(name)
        except NotFound as err:
            raise UsageError(f"{name} is not deployed here: `sdlf deploy cicd --env {lake.config.cicd.tooling_env}` "
                             "creates it") from err
        if latest is None:
            return PipelineStatus(name, None, "never run")
        execution_id, status, revision = latest.execution_id, latest.status, latest.revision
    else:
        execution = lake.pipelines.execution(name, execution_id)
        status, revision = execution.status, execution.revision
    states = lake.pipelines.state(name)
    runs: dict[tuple[str, str], ActionRun] = {}
    for run in lake.pipelines.action_runs(name, execution_id):
        key = (run.stage, run.action)
        if key not in runs or (run.started and runs[key].started and run.started > runs[key].started):
            runs[key] = run
    summaries = {run.stage: run.variables.get("SDLF_PLAN_SUMMARY") for run in runs.values() if run.action == "Plan"}
    clock = now()
    actions = []
    for state in states:
        run = runs.get((state.stage, state.action))
        if run is None:
            actions.append(ActionStatus(state.stage, state.action, "not run"))
            continue
        cause = where = None
        if run.status == "Failed":
            if run.external_id:
                cause, where = build_root_cause(lake, run.external_id)
            cause = cause or run.error or run.summary or "failed (no reason given)"
        message = summaries.get(state.stage) if state.action in (APPROVAL_ACTION, "Plan") else None
        actions.append(ActionStatus(state.stage, state.action, run.status, run.started, _duration(run, clock), cause,
                                    where, message))
    return PipelineStatus(name, execution_id, status, revision, actions)


def follow(lake, execution_id: str | None = None, *,
           on_change: Callable[[ActionStatus], None] = lambda a: None, sleep: Callable[[float], None] = time.sleep,
           clock: Callable[[], float] = time.monotonic, interval: float = 2.0, timeout: float = 3600.0) -> PipelineStatus:
    """Polls until the execution finishes or waits for an approval; `on_change` gets each action whose status
    changed. Raises SdlfError after `timeout` seconds."""
    seen: dict[tuple[str, str], str] = {}
    deadline = clock() + timeout
    while True:
        status = pipeline_status(lake, execution_id)
        execution_id = status.execution_id
        for action in status.actions:
            key = (action.stage, action.action)
            if action.status != "not run" and seen.get(key) != action.status:
                seen[key] = action.status
                on_change(action)
        if status.settled and status.execution_id is not None:
            return status
        if clock() >= deadline:
            raise SdlfError(f"{status.pipeline}: execution {execution_id} still {status.status} after "
                            f"{int(timeout)}s; `sdlf cicd status` shows where it is")
        sleep(interval)


# --- push -----------------------------------------------------------------------------------------------------
@dataclass
class PushResult:
    pipeline: str
    source: str  # s3://bucket/key
    version: str | None
    files: int
    digest: str
    execution_id: str
    status: PipelineStatus | None = None

    @property
    def ok(self) -> bool:
        return self.status is None or self.status.ok

    def to_dict(self) -> dict:
        return {"pipeline": self.pipeline, "source": self.source, "source_version": self.version,
                "files": self.files, "sha256": self.digest, "execution_id": self.execution_id, "ok": self.ok,
                "status": self.status.to_dict() if self.status else None}


def push(lake, root: Path = Path("."), *, wait: bool = False,
         on_change: Callable[[ActionStatus], None] = lambda a: None) -> PushResult:
    """Uploads the working tree as the S3 source revision and starts an execution; with `wait`, follows it until
    it ends or waits for an approval."""
    cfg = lake.config
    names = tooling_names(cfg)
    source = cfg.cicd.source
    if source.provider != "s3":
        raise UsageError(f"cicd.source.provider is {source.provider}: the pipeline reads {source.repository} "
                         f"({source.branch}); push to that branch to start it (`sdlf cicd push` uploads an S3 source)")
    boot = lake.stacks.describe_stack(names.bootstrap_stack())
    pipeline = lake.stacks.describe_stack(names.cicd_stack())
    if boot is None or "ArtifactsBucket" not in boot.outputs or pipeline is None:
        raise UsageError(f"the pipeline of {names.prefix} is not deployed: run "
                         f"`sdlf deploy cicd --env {cfg.cicd.tooling_env}` first")
    bucket = boot.outputs["ArtifactsBucket"]
    archive = build_archive(root)
    put = lake.storage.put_bytes(bucket, source.object_key, archive.body)
    execution_id = lake.pipelines.start(names.pipeline())
    result = PushResult(names.pipeline(), f"s3://{bucket}/{source.object_key}", put.version_id, archive.files,
                        archive.digest, execution_id)
    if wait:
        result.status = follow(lake, execution_id, on_change=on_change)
    return result


# --- approvals ---------------------------------------------------------------------------------------------
@dataclass
class Decision:
    pipeline: str
    stage: str
    approved: bool
    execution_id: str | None
    ok: bool = True

    def to_dict(self) -> dict:
        return {"pipeline": self.pipeline, "stage": self.stage,
                "decision": "approved" if self.approved else "rejected", "execution_id": self.execution_id, "ok": True}


def decide(lake, env: str | None, approve: bool, summary: str = "") -> Decision:
    """Approves or rejects the waiting promotion to `env` (or the only one waiting when `env` has none)."""
    cfg = lake.config
    name = tooling_names(cfg).pipeline()
    waiting: list[ActionState] = [s for s in lake.pipelines.state(name)
                                  if s.action == APPROVAL_ACTION and s.status == "InProgress" and s.token]
    chosen = [s for s in waiting if env and s.stage == f"{STAGE_PREFIX}{env}"]
    if not chosen and len(waiting) == 1 and (env is None or env == cfg.cicd.tooling_env):
        chosen = waiting
    if not chosen:
        where = ", ".join(s.stage.removeprefix(STAGE_PREFIX) for s in waiting) or "none"
        raise UsageError(f"{name}: no approval waits for environment {env!r} (waiting: {where})")
    state = chosen[0]
    verb = "approved" if approve else "rejected"
    lake.pipelines.decide(name, state.stage, state.action, state.token, approve, summary or f"{verb} with sdlf cicd")
    return Decision(name, state.stage.removeprefix(STAGE_PREFIX), approve, state.execution_id)


# --- the builds' own steps -------------------------------------------------------------------------------
@dataclass
class Report:
    action: str
    succeeded: bool
    lines: list[str]
    root_cause: str | None = None
    published: str | None = None  # message id
    publish_error: str | None = None
    ok: bool = True  # reporting never fails the build: the command before it decides

    def to_dict(self) -> dict:
        return {"action": self.action, "succeeded": self.succeeded, "root_cause": self.root_cause,
                "published": self.published, "publish_error": self.publish_error, "lines": self.lines}


def report(action: str, results: list[Path], *, succeeded: bool, otherwise: str | None, topic_arn: str | None,
           topic: Topic | None, subject_prefix: str = "sdlf") -> Report:
    """What a build did (one line per stack or finding); when it failed, the root cause, published to the lake
    topic: the first problem the result files report, else `otherwise` (the command after them failed)."""
    lines: list[str] = []
    cause = None
    reported = False  # a result itself names a problem (a failure whatever the build's flag says)
    # The commands ran in this order and a build stops at the first failing one: the first result that is
    # missing or reports a problem names it.
    for path in results:
        data = read_result(path)
        if data is None:
            cause = cause or f"{path.name}: the command writing it stopped before its result (its error is in the log)"
            continue
        lines.extend(summary_lines(data))
        found = root_cause(data)
        if found and cause is None:
            cause, reported = found, True
    if succeeded and not reported:
        return Report(action, True, lines)
    cause = cause or otherwise or "failed (no result file named the problem; see the log)"
    result = Report(action, False, lines, cause)
    if topic is not None and topic_arn:
        try:
            result.published = topic.publish(topic_arn, f"{subject_prefix}: {action} failed", f"{action} failed: {cause}")
        except SdlfError as err:
            result.publish_error = str(err)
    return result


@dataclass
class PlanDigest:
    env: str
    message: str
    text_path: Path | None
    ok: bool = True

    def to_dict(self) -> dict:
        return {"env": self.env, "message": self.message, "text": str(self.text_path) if self.text_path else None}


def summarize(plan_path: Path, env: str, text_path: Path | None = None,
              status_path: Path | None = None) -> tuple[PlanDigest, str]:
    """(the approval message, the full text plan) of `sdlf plan --output json` and, with `status_path`, of the
    stacks to remove that `sdlf status --output json` lists; writes the text to `text_path`."""
    data = read_result(plan_path)
    if data is None:
        raise SdlfError(f"{plan_path}: no plan in it (did `sdlf plan` fail? its error is in the log above)")
    status = None
    if status_path is not None:
        status = read_result(status_path)
        if status is None:
            raise SdlfError(f"{status_path}: no status in it (did `sdlf status` fail? its error is in the log above)")
    summary, text = plan_summary(env, data, status)
    if text_path is not None:
        text_path.write_text(text, encoding="utf-8")
    return PlanDigest(env, summary.message(), text_path), text

