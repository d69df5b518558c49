"""CodePipeline executions that really run on the emulator.

moto stores pipelines and reports every execution Succeeded at once. Here an execution runs in a
background thread the way CodePipeline runs it:
- it starts from `StartPipelineExecution`, from the pipeline's creation through CloudFormation (AWS starts
  a first execution then), from a new object version at an S3 source action's bucket/key when the action
  polls (`PollForSourceChanges` true, the S3 default; the emulator notices at once where AWS polls), and
  from an EventBridge rule whose target is the pipeline (what AWS recommends with `PollForSourceChanges`
  false: an "Object Created" rule on a bucket sending events to EventBridge);
- stages run in order, each stage's actions by runOrder (same runOrder: in parallel); an execution holds a
  stage while it runs in it, and waits for an older one to leave it: SUPERSEDED (a newer waiting execution
  replaces an older waiting one), QUEUED (in order) or PARALLEL;
- artifacts are zips in the artifact store bucket (`<pipeline[:20]>/<artifact[:10]>/<id>`, SSE-KMS with the
  store's key) passed from output to input artifacts; variables `#{codepipeline.PipelineExecutionId}`,
  `#{variables.NAME}` and `#{Namespace.NAME}` resolve in action configurations;
- Source/S3 copies the object version (VersionId and ETag as output variables); a connection source
  (CodeStarSourceConnection) and CodeCommit fail with the reason (no git host here);
- Build/Test CodeBuild runs the project's buildspec for real (`codebuild.py`); exported variables become
  the action's output variables;
- Approval/Manual publishes the approval message to its NotificationArn and waits for
  `PutApprovalResult` (token from `GetPipelineState`);
- a failed action fails its stage and the execution, with the error details AWS shows; later stages do
  not run. Other action providers fail with a message that names them.
The execution's records and stage locks are in `pipeline_model.py`, the action providers in
`pipeline_actions.py`. State changes are sent to the default event bus as "CodePipeline Pipeline/Stage/Action Execution State
Change" and "CodeBuild Build State Change" events.

Not emulated (an action of another provider fails saying so; the rest is accepted and ignored): Deploy,
Invoke and third-party/custom action providers, stage conditions (BeforeEntry, OnSuccess, OnFailure and
rollbacks), action TimeoutInMinutes, DisableInboundStageTransitions and the stage transition APIs, V2 git
triggers, cross-region actions, and executions across an emulator restart (they live in memory).
"""
from __future__ import annotations

import json
import logging
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sdlf_cli.local.context import EmulatorContext
from sdlf_cli.local.iam.credentials import ServiceClients
from sdlf_cli.local.runtime.codebuild import CodeBuildRunner
from sdlf_cli.local.runtime.pipeline_actions import PipelineActions
from sdlf_cli.local.runtime.pipeline_model import (ActionFailed, ActionRun, ExecutionRun, StageRun, now,
                                                   StageLocks)

LOG = logging.getLogger(__name__)


class PipelineExecutor(PipelineActions):
    def __init__(self, ctx: EmulatorContext, builds: CodeBuildRunner):
        self.ctx = ctx
        self.builds = builds
        self.runs: dict[str, ExecutionRun] = {}  # execution id -> run
        self.latest_stage: dict[tuple[str, str], StageRun] = {}  # (pipeline, stage) -> its latest run
        self.action_runs: dict[str, list[ActionRun]] = {}  # pipeline -> every action run, oldest first
        self._locks: dict[str, StageLocks] = {}
        self._lock = threading.RLock()
        self._threads: list[threading.Thread] = []
        self._clients = ServiceClients(ctx.endpoint_url, ctx.region)
        self._closed = False
        self.work_dir = ctx.state_dir / "codepipeline"

    def client(self, service: str):
        """The service's own client of `service`, made once: actions and their polls ask for one at every step."""
        return self._clients.client(service)

    # --- starting -----------------------------------------------------------------------------------------
    def start(self, backend: Any, name: str, variables: list[dict[str, str]] | None,
              trigger_type: str = "StartPipelineExecution", trigger_detail: str = "") -> str:
        from moto.codepipeline.exceptions import InvalidStructureException, PipelineNotFoundException
        from moto.codepipeline.models import PipelineExecution

        pipeline = backend.pipelines.get(name)
        if pipeline is None:
            raise PipelineNotFoundException(f"Account '{backend.account_id}' does not have a pipeline with name '{name}'")
        declared = {v["name"]: v.get("defaultValue", "") for v in (pipeline.pipeline.get("variables") or [])}
        for variable in variables or []:
            if variable["name"] not in declared:
                raise InvalidStructureException(
                    f"Variable '{variable['name']}' is not declared in pipeline '{name}'; declared: {sorted(declared)}")
        execution = PipelineExecution(name, pipeline.pipeline["version"], variables)
        execution_id = execution.pipeline_execution_id
        pipeline.executions[execution_id] = execution
        resolved = {**declared, **{v["name"]: v["value"] for v in variables or []}}
        execution.variables = [{"name": k, "value": v} for k, v in resolved.items()]
        execution.status = "InProgress"
        declaration = json.loads(json.dumps(backend.pipelines[name].pipeline))
        run = ExecutionRun(backend.account_id, backend.region_name, name, execution, declaration,
                           {"triggerType": trigger_type, "triggerDetail": trigger_detail}, resolved)
        with self._lock:
            self.runs[execution_id] = run
            if self._closed:
                execution.status = "Stopped"
                return execution_id
            thread = threading.Thread(target=self._execute, args=(run,), name=f"sdlf-pipeline-{name}", daemon=True)
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        self._event_pipeline(run, "STARTED")
        thread.start()
        return execution_id

    # --- running ------------------------------------------------------------------------------------------
    def _execute(self, run: ExecutionRun, resume: str | None = None, retry_mode: str = "FAILED_ACTIONS") -> None:
        """Runs the execution's stages in order (from stage `resume` when a stage is retried)."""
        mode = run.declaration.get("executionMode", "SUPERSEDED")
        locks = self._locks.setdefault(f"{run.account_id}/{run.region}/{run.pipeline}", StageLocks())
        stages = run.declaration["stages"]
        if resume is not None:
            stages = stages[[s["name"] for s in stages].index(resume):]
        try:
            for stage in stages:
                if not locks.enter(run, stage["name"], mode):
                    self._end(run, "Superseded" if run.superseded else "Stopped",
                              f"Superseded by a newer execution at stage {stage['name']}" if run.superseded else None)
                    return
                try:
                    retried = run.stages[-1] if resume == stage["name"] and run.stages else None
                    ok = self._run_stage(run, stage, retried, retry_mode)
                finally:
                    locks.leave(run, stage["name"])
                if not ok:
                    failed = next((a for a in run.stages[-1].actions if a.status == "Failed"), None)
                    self._end(run, "Stopped" if run.stopping else "Failed",
                              None if failed is None else (failed.error or {}).get("message"))
                    return
            self._end(run, "Succeeded", None)
        except Exception as exc:  # our own failure must still end the execution
            LOG.exception("pipeline %s execution %s could not run", run.pipeline, run.execution_id)
            self._end(run, "Failed", f"{type(exc).__name__}: {exc}")

    def retry(self, pipeline: str, stage: str, execution_id: str, retry_mode: str) -> None:
        """RetryStageExecution: the failed stage of the latest execution in it runs again (its failed actions,
        or all of them), then the stages after it."""
        from moto.core.exceptions import JsonRESTError

        run = self.runs.get(execution_id)
        latest = self.latest_stage.get((pipeline, stage))
        if run is None or run.pipeline != pipeline:
            from moto.codepipeline.exceptions import PipelineExecutionNotFoundException

            raise PipelineExecutionNotFoundException(f"Execution {execution_id} of {pipeline} not found")
        if retry_mode not in ("FAILED_ACTIONS", "ALL_ACTIONS"):
            raise JsonRESTError("ValidationException", "retryMode must be FAILED_ACTIONS or ALL_ACTIONS")
        if latest is None or latest.execution_id != execution_id or latest.status not in ("Failed", "Stopped") or \
                run.execution.status in ("InProgress", "Stopping"):
            raise JsonRESTError("StageNotRetryableException",
                                f"Stage {stage} of execution {execution_id} cannot be retried: it is not the "
                                "latest execution of the stage, or the stage has not failed")
        run.stopping = False
        run.superseded = False
        run.execution.status = "InProgress"
        run.execution.status_summary = None
        thread = threading.Thread(target=self._execute, args=(run, stage, retry_mode), daemon=True,
                                  name=f"sdlf-pipeline-{pipeline}")
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        self._event_pipeline(run, "RESUMED")
        thread.start()

    def _end(self, run: ExecutionRun, status: str, summary: str | None) -> None:
        run.execution.status = status
        run.execution.status_summary = summary
        run.execution.last_update_time = datetime.now(timezone.utc).replace(tzinfo=None)
        self._event_pipeline(run, status.upper())

    def _run_stage(self, run: ExecutionRun, stage: dict[str, Any], retried: StageRun | None = None,
                   retry_mode: str = "FAILED_ACTIONS") -> bool:
        stage_run = StageRun(stage["name"], run.execution_id)
        # A retry of failed actions keeps the stage's actions that succeeded (and their outputs).
        kept = {a.name: a for a in (retried.actions if retried else []) if a.status == "Succeeded"} \
            if retry_mode == "FAILED_ACTIONS" else {}
        with self._lock:
            run.stages.append(stage_run)
            self.latest_stage[(run.pipeline, stage["name"])] = stage_run
        self._event(run, "CodePipeline Stage Execution State Change", {"stage": stage["name"], "state": "STARTED"})
        orders = sorted({int(a.get("runOrder", 1)) for a in stage["actions"]})
        ok = True
        for order in orders:
            batch = [a for a in stage["actions"] if int(a.get("runOrder", 1)) == order]
            with self._lock:
                stage_run.actions.extend(kept[a["name"]] for a in batch if a["name"] in kept)
            action_runs = [ActionRun(run.execution_id, stage["name"], a) for a in batch if a["name"] not in kept]
            with self._lock:
                stage_run.actions.extend(action_runs)
                self.action_runs.setdefault(run.pipeline, []).extend(action_runs)
            threads = [threading.Thread(target=self._run_action, args=(run, a), daemon=True,
                                        name=f"sdlf-action-{a.name}") for a in action_runs]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            if any(a.status != "Succeeded" for a in action_runs) or run.stopping:
                ok = False
                break
        stage_run.status = "Succeeded" if ok else ("Stopped" if run.stopping else "Failed")
        self._event(run, "CodePipeline Stage Execution State Change",
                    {"stage": stage["name"], "state": stage_run.status.upper()})
        return ok

    def _run_action(self, run: ExecutionRun, action: ActionRun) -> None:
        type_id = action.declaration["actionTypeId"]
        run.execution.last_update_time = datetime.now(timezone.utc).replace(tzinfo=None)
        self._event_action(run, action, "STARTED")
        try:
            action.resolved_configuration = self._resolve(run, action.declaration.get("configuration") or {})
            action.inputs = [self._input(run, a["name"]) for a in action.declaration.get("inputArtifacts") or []]
            handler = {
                ("Source", "AWS", "S3"): self._source_s3,
                ("Source", "AWS", "CodeStarSourceConnection"): self._source_connection,
                ("Source", "AWS", "CodeCommit"): self._source_codecommit,
                ("Build", "AWS", "CodeBuild"): self._codebuild,
                ("Test", "AWS", "CodeBuild"): self._codebuild,
                ("Approval", "AWS", "Manual"): self._approval,
            }.get((type_id["category"], type_id["owner"], type_id["provider"]))
            if handler is None:
                raise ActionFailed(f"Action provider {type_id['owner']}/{type_id['category']}/{type_id['provider']} "
                                   "does not run on the embedded emulator; supported: Source S3, Build/Test "
                                   "CodeBuild, Approval Manual", code="ConfigurationError")
            handler(run, action)
            action.status = "Succeeded"
        except ActionFailed as exc:
            action.status = "Abandoned" if run.stopping else "Failed"
            action.error = {"code": exc.code, "message": exc.message[:5000]}
            action.summary = exc.summary
        except Exception as exc:
            LOG.exception("action %s of pipeline %s failed", action.name, run.pipeline)
            action.status = "Failed"
            action.error = {"code": "JobFailed", "message": f"{type(exc).__name__}: {exc}"[:5000]}
        action.last_update = now()
        namespace = action.declaration.get("namespace")
        if namespace and action.status == "Succeeded":
            run.namespaces[namespace] = dict(action.output_variables)
        self._event_action(run, action, action.status.upper())

    # --- approvals and stops ---------------------------------------------------------------------------------
    def approve(self, pipeline: str, stage: str, action: str, token: str, result: dict[str, str]) -> float:
        from moto.core.exceptions import JsonRESTError

        stage_run = self.latest_stage.get((pipeline, stage))
        candidates = [a for a in (stage_run.actions if stage_run else []) if a.name == action]
        if not candidates:
            raise JsonRESTError("ActionNotFoundException",
                                f"Action {action} in stage {stage} of pipeline {pipeline} has no execution")
        target = candidates[-1]
        if target.token != token:
            raise JsonRESTError("InvalidApprovalTokenException",
                                f"The approval token {token} is not valid for {pipeline}/{stage}/{action}")
        if target.status != "InProgress" or target.approval.is_set():
            raise JsonRESTError("ApprovalAlreadyCompletedException",
                                f"The approval of {pipeline}/{stage}/{action} has already been completed")
        if result.get("status") not in ("Approved", "Rejected"):
            raise JsonRESTError("ValidationException", "result.status must be Approved or Rejected")
        target.approval_result = result
        target.updated_by = f"arn:aws:iam::{self.ctx.account_id}:root"
        target.approval.set()
        return now()

    def stop(self, pipeline: str, execution_id: str, abandon: bool) -> None:
        run = self.runs.get(execution_id)
        if run is None or run.pipeline != pipeline:
            from moto.codepipeline.exceptions import PipelineExecutionNotFoundException

            raise PipelineExecutionNotFoundException(f"Execution {execution_id} of {pipeline} not found")
        if run.execution.status != "InProgress":
            from moto.core.exceptions import JsonRESTError

            raise JsonRESTError("PipelineExecutionNotStoppableException",
                                f"Execution {execution_id} is {run.execution.status}")
        run.stopping = True
        run.execution.status = "Stopping"
        if abandon:
            for stage in run.stages:
                for action in stage.actions:
                    if action.status == "InProgress" and action.external_id:
                        self.builds.stop(action.external_id)

    def close(self) -> None:
        self._closed = True
        for run in list(self.runs.values()):
            run.stopping = True
        for thread in list(self._threads):
            thread.join(timeout=5)

    def waiting_for(self, pipeline: str, stage: str) -> list[str]:
        """Executions waiting to enter a stage another execution holds (oldest first)."""
        locks = self._locks.get(f"{self.ctx.account_id}/{self.ctx.region}/{pipeline}")
        if locks is None:
            return []
        with locks.cond:
            return [r.execution_id for r in locks.waiting.get(stage, []) if not r.superseded]

    def _scratch(self) -> Path:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        return self.work_dir

    # --- events ------------------------------------------------------------------------------------------------
    def _event(self, run: ExecutionRun, detail_type: str, detail: dict[str, Any], source: str = "aws.codepipeline",
               resources: list[str] | None = None) -> None:
        from sdlf_cli.local.runtime.cicd_events import put_event

        full = {"pipeline": run.pipeline, "execution-id": run.execution_id,
                "version": run.declaration.get("version", 1), **detail} if source == "aws.codepipeline" else detail
        arn = f"arn:aws:codepipeline:{run.region}:{run.account_id}:{run.pipeline}"
        put_event(run.account_id, run.region, source, detail_type, full, resources or [arn])

    def _event_pipeline(self, run: ExecutionRun, state: str) -> None:
        detail: dict[str, Any] = {"state": state, "execution-trigger": {
            "trigger-type": run.trigger["triggerType"], "trigger-detail": run.trigger.get("triggerDetail", "")}}
        self._event(run, "CodePipeline Pipeline Execution State Change", detail)

    def _event_action(self, run: ExecutionRun, action: ActionRun, state: str) -> None:
        type_id = action.declaration["actionTypeId"]
        detail: dict[str, Any] = {"stage": action.stage, "action": action.name, "state": state, "region": run.region,
                                  "type": {k: type_id[k] for k in ("owner", "provider", "category", "version")
                                           if k in type_id}}
        if state != "STARTED":
            result: dict[str, Any] = {}
            if action.external_id:
                result["external-execution-id"] = action.external_id
            if action.summary:
                result["external-execution-summary"] = action.summary
            if action.error:
                result["error-code"] = action.error["code"]
            detail["execution-result"] = result
        self._event(run, "CodePipeline Action Execution State Change", detail)
