"""moto patches that put the CodePipeline executor behind the API.

- `StartPipelineExecution` runs the execution (validating its variables against the pipeline's);
- `GetPipelineExecution` / `ListPipelineExecutions` show the real status, summary, trigger, execution mode
  and source revisions;
- `GetPipelineState`, `PutApprovalResult`, `ListActionExecutions`, `StopPipelineExecution` and
  `RetryStageExecution`, which moto lacks, answer from the executor;
- `DeletePipeline` stops the pipeline's running executions;
- a new object at an S3 source action's bucket/key starts an execution when the action polls, once the
  S3 request that wrote it has finished;
- a pipeline created (through the API or CloudFormation) starts its first execution (trigger
  CreatePipeline), and a CloudFormation update with `RestartExecutionOnUpdate` starts one too.
"""
from __future__ import annotations

import json
import logging
import threading
from typing import Any, Callable

from sdlf_cli.local.runtime.codepipeline import PipelineExecutor
from sdlf_cli.local.runtime.pipeline_model import ExecutionRun

LOG = logging.getLogger(__name__)

_state: dict[str, PipelineExecutor] = {}


def _executor() -> PipelineExecutor | None:
    return _state.get("executor")


def _required_executor() -> PipelineExecutor:
    executor = _executor()
    if executor is None:
        raise RuntimeError("the emulator's pipeline executor is not installed")
    return executor


def _pipelines(account_id: str, region: str):
    from moto.codepipeline.models import codepipeline_backends

    return codepipeline_backends[account_id][region]


def _iso(when: Any) -> Any:
    from moto.core.utils import iso_8601_datetime_with_milliseconds

    return iso_8601_datetime_with_milliseconds(when) if when is not None and not isinstance(when, (int, float, str)) \
        else when


# --- the execution's own view -------------------------------------------------------------------------------------
def _run_of(execution: Any) -> ExecutionRun | None:
    executor = _executor()
    return executor.runs.get(execution.pipeline_execution_id) if executor else None


def _to_dict(original: Any) -> Any:
    def to_dict(self: Any) -> dict[str, Any]:
        data = original(self)
        run = _run_of(self)
        if run is None:
            return data
        data.update(trigger=dict(run.trigger), executionMode=run.declaration.get("executionMode", "SUPERSEDED"),
                    executionType="STANDARD",
                    artifactRevisions=[{"name": r.get("artifactName") or r["actionName"], "revisionId": r["revisionId"],
                                        "revisionSummary": r["revisionSummary"], "revisionUrl": r["revisionUrl"],
                                        "created": _iso(r.get("created"))} for r in run.revisions])
        if self.status_summary is None:
            data.pop("statusSummary", None)
        return data

    return to_dict


def _to_summary_dict(original: Any) -> Any:
    def to_summary_dict(self: Any) -> dict[str, Any]:
        data = original(self)
        run = _run_of(self)
        if run is None:
            return data
        data.update(trigger=dict(run.trigger), executionMode=run.declaration.get("executionMode", "SUPERSEDED"),
                    executionType="STANDARD",
                    sourceRevisions=[{k: r[k] for k in ("actionName", "revisionId", "revisionSummary", "revisionUrl")}
                                     for r in run.revisions])
        if self.status_summary is None:
            data.pop("statusSummary", None)
        return data

    return to_summary_dict


def _start_pipeline_execution(self: Any, name: str, variables: list[dict[str, str]] | None) -> str:
    executor = _required_executor()
    return executor.start(self, name, variables)


def _create_pipeline(self: Any, pipeline: dict[str, Any], tags: list[dict[str, str]] | None) -> tuple[Any, Any]:
    """moto's CreatePipeline, with the role check AWS makes (a Principal.Service list is fine too) and the
    first execution AWS starts when a pipeline is created."""
    from moto.codepipeline.exceptions import InvalidStructureException
    from moto.codepipeline.models import CodePipeline

    from sdlf_cli.local.cfn.cicd import _trusts

    name = pipeline["name"]
    if name in self.pipelines:
        raise InvalidStructureException(f"A pipeline with the name '{name}' already exists in account "
                                        f"'{self.account_id}'")
    if not _trusts(self.account_id, self.region_name, pipeline.get("roleArn", ""), "codepipeline.amazonaws.com"):
        raise InvalidStructureException(
            f"CodePipeline is not authorized to perform AssumeRole on role {pipeline.get('roleArn')}")
    if len(pipeline.get("stages") or []) < 2:
        raise InvalidStructureException(
            f"Pipeline has only {len(pipeline.get('stages') or [])} stage(s). There should be a minimum of 2 stages "
            "in a pipeline")
    created = CodePipeline(self.account_id, self.region_name, pipeline)
    created.validate_tags(tags or [])
    created.tags.update({t["key"]: t["value"] for t in tags or []})
    self.pipelines[name] = created
    _created(self.account_id, self.region_name, name)
    return pipeline, sorted(tags or [], key=lambda t: t["key"])


def _delete_pipeline(original: Any) -> Any:
    def delete_pipeline(self: Any, name: str) -> None:
        executor = _executor()
        if executor is not None:
            for run in list(executor.runs.values()):
                if run.pipeline == name and run.execution.status == "InProgress":
                    executor.stop(name, run.execution_id, abandon=True)
        original(self, name)

    return delete_pipeline


# --- new API operations ---------------------------------------------------------------------------------------------
def get_pipeline_state(self: Any) -> str:
    name = self._get_param("name")
    backend = self.codepipeline_backend
    declaration, metadata = backend.get_pipeline(name)
    executor = _executor()
    stage_states = []
    for stage in declaration["stages"]:
        stage_run = executor.latest_stage.get((name, stage["name"])) if executor else None
        runs = executor.action_runs.get(name, []) if executor else []
        actions = []
        for action in stage["actions"]:
            state: dict[str, Any] = {"actionName": action["name"]}
            latest = next((a for a in reversed(runs) if a.stage == stage["name"] and a.name == action["name"]), None)
            if latest is not None:
                state["latestExecution"] = latest.latest_execution()
                if latest.declaration["actionTypeId"]["category"] == "Source" and latest.external_id:
                    state["currentRevision"] = {"revisionId": latest.external_id}
                if latest.external_url:
                    state["entityUrl"] = latest.external_url
            actions.append(state)
        entry: dict[str, Any] = {"stageName": stage["name"], "inboundTransitionState": {"enabled": True},
                                 "actionStates": actions}
        if stage_run is not None:
            entry["latestExecution"] = {"pipelineExecutionId": stage_run.execution_id, "status": stage_run.status}
        inbound = executor.waiting_for(name, stage["name"]) if executor else []
        if inbound:  # waiting at the stage's entrance (QUEUED / SUPERSEDED), the newest as inboundExecution
            entry["inboundExecutions"] = [{"pipelineExecutionId": i, "status": "InProgress"} for i in inbound]
            entry["inboundExecution"] = entry["inboundExecutions"][-1]
        stage_states.append(entry)
    return json.dumps({"pipelineName": name, "pipelineVersion": declaration["version"], "stageStates": stage_states,
                       "created": metadata["created"], "updated": metadata["updated"]})


def put_approval_result(self: Any) -> str:
    name = self._get_param("pipelineName")
    self.codepipeline_backend.get_pipeline(name)  # PipelineNotFoundException as AWS
    executor = _required_executor()
    approved_at = executor.approve(name, self._get_param("stageName"), self._get_param("actionName"),
                                   self._get_param("token"), self._get_param("result") or {})
    return json.dumps({"approvedAt": approved_at})


def _artifact(location: Any) -> dict[str, Any]:
    return {"name": location.name, "s3location": {"bucket": location.bucket, "key": location.key}}


def list_action_executions(self: Any) -> str:
    name = self._get_param("pipelineName")
    declaration, _ = self.codepipeline_backend.get_pipeline(name)
    wanted = (self._get_param("filter") or {}).get("pipelineExecutionId")
    executor = _executor()
    runs = [a for a in (executor.action_runs.get(name, []) if executor else [])
            if wanted is None or a.execution_id == wanted]
    if wanted is not None and not runs and (executor is None or wanted not in executor.runs):
        from moto.codepipeline.exceptions import PipelineExecutionNotFoundException

        raise PipelineExecutionNotFoundException(f"Execution {wanted} of pipeline {name} not found")
    details = []
    for action in reversed(runs):
        run = executor.runs[action.execution_id]
        result: dict[str, Any] = {}
        for key, value in (("externalExecutionId", action.external_id), ("externalExecutionUrl", action.external_url),
                           ("externalExecutionSummary", action.summary), ("errorDetails", action.error)):
            if value is not None:
                result[key] = value
        decl = action.declaration
        details.append({
            "pipelineExecutionId": action.execution_id, "actionExecutionId": action.action_execution_id,
            "pipelineVersion": run.declaration.get("version", 1), "stageName": action.stage, "actionName": action.name,
            "startTime": action.start, "lastUpdateTime": action.last_update, "status": action.status,
            **({"updatedBy": action.updated_by} if action.updated_by else {}),
            "input": {"actionTypeId": decl["actionTypeId"], "configuration": decl.get("configuration") or {},
                      "resolvedConfiguration": action.resolved_configuration,
                      "inputArtifacts": [_artifact(a) for a in action.inputs],
                      **({"roleArn": decl["roleArn"]} if decl.get("roleArn") else {}),
                      **({"namespace": decl["namespace"]} if decl.get("namespace") else {}),
                      "region": decl.get("region") or run.region},
            "output": {"outputArtifacts": [_artifact(a) for a in action.outputs], "executionResult": result,
                       "outputVariables": action.output_variables},
        })
    max_results = self._get_param("maxResults")
    if max_results:
        details = details[:int(max_results)]
    return json.dumps({"actionExecutionDetails": details})


def _execution_of(self: Any) -> tuple[str, str]:
    name = self._get_param("pipelineName")
    self.codepipeline_backend.get_pipeline(name)  # NotFound for an unknown pipeline, as on AWS
    return name, self._get_param("pipelineExecutionId")


def stop_pipeline_execution(self: Any) -> str:
    name, execution_id = _execution_of(self)
    _required_executor().stop(name, execution_id, bool(self._get_param("abandon")))
    return json.dumps({"pipelineExecutionId": execution_id})


def retry_stage_execution(self: Any) -> str:
    name, execution_id = _execution_of(self)
    _required_executor().retry(name, self._get_param("stageName"), execution_id,
                               self._get_param("retryMode") or "FAILED_ACTIONS")
    return json.dumps({"pipelineExecutionId": execution_id})


# --- triggers ------------------------------------------------------------------------------------------------------
def polling_s3_sources(declaration: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(bucket, key, action name) of a pipeline's S3 source actions that poll for changes."""
    found = []
    for action in declaration["stages"][0]["actions"]:
        type_id = action["actionTypeId"]
        config = action.get("configuration") or {}
        if (type_id["category"], type_id["provider"]) == ("Source", "S3") and \
                str(config.get("PollForSourceChanges", "true")).lower() != "false":
            found.append((config.get("S3Bucket", ""), config.get("S3ObjectKey", ""), action["name"]))
    return found


# moto's S3Backend.put_object stores the new version before its request handler sets the object's metadata, ACL
# and tags, so an execution started from inside put_object could read the object half written (no revision
# summary). AWS's poll only ever sees whole objects: starts asked for during an S3 request wait for its end.
_s3_request = threading.local()


def _after_the_s3_request(start: Callable[[], None]) -> None:
    pending = getattr(_s3_request, "pending", None)
    if pending is None:
        start()
    else:
        pending.append(start)


def _s3_handler(original: Any) -> Any:
    def handler(self: Any, *args: Any, **kwargs: Any) -> Any:
        if getattr(_s3_request, "pending", None) is not None:  # ambiguous_response calls the key/bucket handler
            return original(self, *args, **kwargs)
        _s3_request.pending = []
        try:
            return original(self, *args, **kwargs)
        finally:
            pending, _s3_request.pending = _s3_request.pending, None
            for start in pending:
                start()

    return handler


def _put_object(original: Any) -> Any:
    def put_object(self: Any, bucket_name: str, key_name: str, *args: Any, **kwargs: Any) -> Any:
        key = original(self, bucket_name, key_name, *args, **kwargs)
        if _executor() is not None:
            account_id, region = self.account_id, self.get_bucket(bucket_name).region_name
            _after_the_s3_request(lambda: _start_polling_pipelines(account_id, region, bucket_name, key_name))
        return key

    return put_object


def _start_polling_pipelines(account_id: str, region: str, bucket_name: str, key_name: str) -> None:
    executor = _executor()
    if executor is None:
        return
    try:
        backend = _pipelines(account_id, region)
        for name, pipeline in list(backend.pipelines.items()):
            for bucket, object_key, action in polling_s3_sources(pipeline.pipeline):
                if (bucket, object_key) == (bucket_name, key_name):
                    executor.start(backend, name, None, "PollForSourceChanges", action)
    except Exception:
        LOG.exception("could not start the pipelines polling s3://%s/%s", bucket_name, key_name)


def _created(account_id: str, region: str, name: str, kind: str = "create") -> None:
    executor = _executor()
    if executor is None:
        return
    backend = _pipelines(account_id, region)
    trigger = "CreatePipeline" if kind == "create" else "StartPipelineExecution"
    executor.start(backend, name, None, trigger, f"arn:aws:iam::{account_id}:root")


def _start_from_rule(account_id: str, region: str, name: str, rule_arn: str) -> None:
    """A rule's pipeline target. S3's own events (an object created) reach the rules from inside the S3 request
    that wrote the object: the start waits for the request's end, as a polling start does."""
    def start() -> None:
        executor = _executor()
        if executor is not None:
            executor.start(_pipelines(account_id, region), name, None, "CloudWatchEvent", rule_arn)

    _after_the_s3_request(start)


def install(executor: PipelineExecutor) -> None:
    from moto.codepipeline.models import CodePipelineBackend, PipelineExecution
    from moto.codepipeline.responses import CodePipelineResponse
    from moto.s3.models import S3Backend
    from moto.s3.responses import S3Response

    from sdlf_cli.local.cfn import _patching, cicd
    from sdlf_cli.local.runtime import cicd_events

    _state["executor"] = executor
    _patching.install(_patching.Patch("codepipeline executions: run the stages", CodePipelineBackend,
                                      "start_pipeline_execution", _start_pipeline_execution))
    _patching.wrap(PipelineExecution, "to_dict", "codepipeline executions: real details", _to_dict)
    _patching.wrap(PipelineExecution, "to_summary_dict", "codepipeline executions: real summaries", _to_summary_dict)
    _patching.install(_patching.Patch("codepipeline: CreatePipeline starts an execution", CodePipelineBackend,
                                      "create_pipeline", _create_pipeline))
    _patching.wrap(CodePipelineBackend, "delete_pipeline", "codepipeline: deleting stops executions", _delete_pipeline)
    for operation in (get_pipeline_state, put_approval_result, list_action_executions, stop_pipeline_execution,
                      retry_stage_execution):
        _patching.install(_patching.Patch(f"codepipeline api: {operation.__name__}", CodePipelineResponse,
                                          operation.__name__, operation))
    _patching.wrap(S3Backend, "put_object", "codepipeline: s3 source polling", _put_object)
    for handler in ("key_response", "bucket_response"):
        _patching.wrap(S3Response, handler, f"codepipeline: s3 source polling after {handler}", _s3_handler)
    if _created not in cicd.PIPELINE_CREATED_HOOKS:
        cicd.PIPELINE_CREATED_HOOKS.append(_created)
    cicd_events.install_targets(_start_from_rule)


def uninstall(executor: PipelineExecutor) -> None:
    from sdlf_cli.local.cfn import cicd
    from sdlf_cli.local.runtime import cicd_events

    if _state.get("executor") is executor:
        _state.pop("executor")
    if _created in cicd.PIPELINE_CREATED_HOOKS:
        cicd.PIPELINE_CREATED_HOOKS.remove(_created)
    cicd_events.uninstall_targets()
    executor.close()
