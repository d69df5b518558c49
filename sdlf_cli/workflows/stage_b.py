"""`sdlf run-stage-b` and `sdlf quality`: trigger a stage-B batch now, and read data-quality results."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from sdlf_cli.config.model import LakeConfig
from sdlf_cli.errors import SdlfError, UsageError
from sdlf_cli.lake import Lake
from sdlf_cli.results import Listing

FINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}


@dataclass
class StageBRun:
    started: bool
    reason: str = ""
    batch_id: str | None = None
    objects: int = 0
    execution_arn: str | None = None
    status: str | None = None
    error: str | None = None
    seconds: float = 0.0
    waited_for: list[str] = field(default_factory=list)  # batches of the dataset that ran first
    # Inputs the heavy transform rejected ({"uri", "reason"}): FAILED, each waiting in the stage-B DLQ.
    rejected: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.started or self.status in (None, "SUCCEEDED", "RUNNING")

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _pipeline_of(cfg: LakeConfig, team: str, dataset: str) -> str:
    found = cfg.dataset(team, dataset)
    if found is None:
        raise UsageError(f"no dataset {team}/{dataset} in parameters/{cfg.env}.yaml")
    return found.pipeline


def run_stage_b(lake: Lake, team: str, dataset: str, *, wait: bool = True,
                timeout: float = 600.0, sleep=time.sleep, clock=time.monotonic) -> StageBRun:
    """Invoke the pipeline's stage-B router for this dataset now (ignoring min_items), then wait. The router
    starts one batch of a dataset at a time: while another one runs (the schedule's), this waits for it to end
    and asks again (with `wait`, until `timeout`)."""
    cfg = lake.config
    function = cfg.names.function(team, _pipeline_of(cfg, team, dataset), "routing-b")
    started_at = clock()
    deadline = started_at + timeout
    sfn = lake.state_machines
    waited: list[str] = []
    while True:
        invocation = lake.functions.invoke(function, {"team": team, "dataset": dataset, "force": True})
        if invocation.error:
            raise SdlfError(f"{function} failed: {invocation.error_message}")
        payload = invocation.payload
        if payload.get("started") or not payload.get("busy") or not wait or clock() >= deadline:
            break
        running = payload.get("running_execution")
        if running:
            waited.append(running)
            _wait_for(sfn, running, deadline, sleep, clock)
        else:
            sleep(1.0)  # another router is starting a batch: it holds the lease for seconds at most
    run = StageBRun(started=bool(payload.get("started")), reason=payload.get("reason", ""),
                    batch_id=payload.get("batch_id"), objects=int(payload.get("objects") or 0),
                    execution_arn=payload.get("execution_arn"), waited_for=waited)
    if run.started and wait and run.execution_arn:
        described = _wait_for(sfn, run.execution_arn, deadline, sleep, clock)
        run.status = described["status"]
        if run.status != "SUCCEEDED":
            run.error = _failure_of(sfn, run.execution_arn, described)
        else:
            run.rejected = _rejected(described)
    run.seconds = clock() - started_at
    return run


def _wait_for(sfn, execution_arn: str, deadline: float, sleep, clock) -> dict:
    while True:
        described = sfn.describe_execution(execution_arn)
        if described["status"] in FINAL or clock() >= deadline:
            return described
        sleep(1.0)


def _rejected(described: dict) -> list[dict]:
    """The inputs the batch's post-update failed for the heavy transform's reasons (its output's post.rejected)."""
    try:
        rejected = json.loads(described.get("output") or "{}").get("post", {}).get("rejected") or []
    except (ValueError, AttributeError):
        return []
    return [r for r in rejected if isinstance(r, dict) and isinstance(r.get("uri"), str)] \
        if isinstance(rejected, list) else []


def _failure_of(sfn, execution_arn: str, described: dict) -> str:
    if described.get("status") == "RUNNING":
        return "still running when the wait ended"
    cause = described.get("cause") or described.get("error") or ""
    for event in sfn.newest_events(execution_arn):
        for key in ("taskFailedEventDetails", "executionFailedEventDetails", "lambdaFunctionFailedEventDetails"):
            details = event.get(key)
            if details and details.get("error") not in (None, "StageBFailed"):
                return f"{details.get('error')}: {details.get('cause', '')}"[:2000]
    return cause or described.get("status", "unknown")


class QualityRuns(Listing):
    key = "runs"


def latest_quality(lake: Lake, team: str, dataset: str, runs: int = 1) -> QualityRuns:
    return QualityRuns(lake.tables.newest(lake.registry.table("quality"), f"{team}/{dataset}", runs))
