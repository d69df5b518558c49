"""What the emulator records of a pipeline execution (its stages, action runs, artifacts and variables)
and the per-stage locks that order executions (SUPERSEDED, QUEUED, PARALLEL)."""
from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any


class ActionFailed(Exception):
    def __init__(self, message: str, code: str = "JobFailed", summary: str | None = None):
        super().__init__(message)
        self.message, self.code, self.summary = message, code, summary


def now() -> float:
    return time.time()


@dataclass
class ArtifactLocation:
    name: str
    bucket: str
    key: str
    revision_id: str = ""


@dataclass
class ActionRun:
    execution_id: str
    stage: str
    declaration: dict[str, Any]
    action_execution_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    status: str = "InProgress"
    start: float = field(default_factory=now)
    last_update: float = field(default_factory=now)
    summary: str | None = None
    token: str | None = None
    external_id: str | None = None
    external_url: str | None = None
    error: dict[str, str] | None = None
    resolved_configuration: dict[str, str] = field(default_factory=dict)
    inputs: list[ArtifactLocation] = field(default_factory=list)
    outputs: list[ArtifactLocation] = field(default_factory=list)
    output_variables: dict[str, str] = field(default_factory=dict)
    approval: threading.Event = field(default_factory=threading.Event)
    approval_result: dict[str, str] | None = None
    updated_by: str = ""

    @property
    def name(self) -> str:
        return self.declaration["name"]

    def latest_execution(self) -> dict[str, Any]:
        out: dict[str, Any] = {"actionExecutionId": self.action_execution_id, "status": self.status,
                               "lastStatusChange": self.last_update}
        for key, value in (("summary", self.summary), ("token", self.token if self.status == "InProgress" else None),
                           ("externalExecutionId", self.external_id), ("externalExecutionUrl", self.external_url),
                           ("errorDetails", self.error), ("lastUpdatedBy", self.updated_by or None)):
            if value is not None:
                out[key] = value
        return out


@dataclass
class StageRun:
    name: str
    execution_id: str
    status: str = "InProgress"
    actions: list[ActionRun] = field(default_factory=list)


@dataclass
class ExecutionRun:
    account_id: str
    region: str
    pipeline: str
    execution: Any  # moto's PipelineExecution (its status is what the API returns)
    declaration: dict[str, Any]
    trigger: dict[str, str]
    variables: dict[str, str]
    artifacts: dict[str, ArtifactLocation] = field(default_factory=dict)
    namespaces: dict[str, dict[str, str]] = field(default_factory=dict)
    stages: list[StageRun] = field(default_factory=list)
    revisions: list[dict[str, Any]] = field(default_factory=list)
    superseded: bool = False
    stopping: bool = False

    @property
    def execution_id(self) -> str:
        return self.execution.pipeline_execution_id


class StageLocks:
    """Which execution holds each stage of one pipeline, and which wait for it."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.holder: dict[str, str] = {}
        self.waiting: dict[str, list[ExecutionRun]] = {}

    def enter(self, run: ExecutionRun, stage: str, mode: str) -> bool:
        if mode == "PARALLEL":
            return True
        with self.cond:
            queue = self.waiting.setdefault(stage, [])
            if mode == "SUPERSEDED":
                for older in queue:
                    older.superseded = True
            queue.append(run)
            self.cond.notify_all()
            while True:
                if run.superseded or run.stopping:
                    queue.remove(run)
                    self.cond.notify_all()
                    return False
                first = next((r for r in queue if not r.superseded), None)
                if stage not in self.holder and first is run:
                    queue.remove(run)
                    self.holder[stage] = run.execution_id
                    return True
                self.cond.wait(timeout=1.0)

    def leave(self, run: ExecutionRun, stage: str) -> None:
        with self.cond:
            if self.holder.get(stage) == run.execution_id:
                del self.holder[stage]
            self.cond.notify_all()
