"""Typed gateways of the delivery pipeline: CodePipeline executions and approvals, CodeBuild builds, build logs
and the lake topic. The only readers of those services' response shapes; botocore errors come out as the
project's (`NotFound`, `AccessDenied`, `AwsError`), as from every gateway.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sdlf_cli.aws.gateway import Gateway
from sdlf_cli.errors import AwsError, NotFound

# --- CodePipeline ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Execution:
    execution_id: str
    status: str  # InProgress | Stopped | Stopping | Succeeded | Superseded | Failed | Cancelled
    started: datetime | None
    updated: datetime | None
    revision: str | None = None  # the source revision (an S3 version id or a commit)


@dataclass(frozen=True)
class ActionRun:
    """One action of one execution (ListActionExecutions)."""

    stage: str
    action: str
    status: str  # InProgress | Succeeded | Failed | Abandoned
    started: datetime | None
    updated: datetime | None
    external_id: str | None = None  # a CodeBuild build id
    summary: str | None = None
    error: str | None = None
    variables: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ActionState:
    """The latest state of one action of the pipeline (GetPipelineState)."""

    stage: str
    action: str
    status: str | None
    execution_id: str | None  # the pipeline execution the stage is on
    token: str | None = None  # set while an approval waits
    error: str | None = None
    external_id: str | None = None


class Pipelines(Gateway):
    service = "codepipeline"

    def _call(self, operation: str, **kwargs) -> dict:
        try:
            return super()._call(operation, **kwargs)
        except AwsError as err:
            if err.code == "PipelineNotFoundException" and not isinstance(err, NotFound):
                raise NotFound(err.service, err.operation, err.code, err.reason) from err
            raise

    def start(self, name: str) -> str:
        return self._call("start_pipeline_execution", name=name)["pipelineExecutionId"]

    def latest(self, name: str) -> Execution | None:
        found = self._call("list_pipeline_executions", pipelineName=name, maxResults=1)
        summaries = found.get("pipelineExecutionSummaries") or []
        return _execution(summaries[0]) if summaries else None

    def execution(self, name: str, execution_id: str) -> Execution:
        raw = self._call("get_pipeline_execution", pipelineName=name,
                    pipelineExecutionId=execution_id)["pipelineExecution"]
        revisions = raw.get("artifactRevisions") or []
        return Execution(raw["pipelineExecutionId"], raw.get("status", "?"), None, None,
                         revisions[0].get("revisionId") if revisions else None)

    def action_runs(self, name: str, execution_id: str) -> list[ActionRun]:
        runs, token = [], None
        while True:
            kwargs = {"pipelineName": name, "filter": {"pipelineExecutionId": execution_id}}
            if token:
                kwargs["nextToken"] = token
            page = self._call("list_action_executions", **kwargs)
            for raw in page.get("actionExecutionDetails") or []:
                output = raw.get("output") or {}
                result = output.get("executionResult") or {}
                error = result.get("errorDetails") or {}
                runs.append(ActionRun(
                    stage=raw.get("stageName", ""), action=raw.get("actionName", ""), status=raw.get("status", "?"),
                    started=raw.get("startTime"), updated=raw.get("lastUpdateTime"),
                    external_id=result.get("externalExecutionId"), summary=result.get("externalExecutionSummary"),
                    error=error.get("message"), variables=dict(output.get("outputVariables") or {})))
            token = page.get("nextToken")
            if not token:
                return runs

    def state(self, name: str) -> list[ActionState]:
        raw = self._call("get_pipeline_state", name=name)
        out = []
        for stage in raw.get("stageStates") or []:
            execution_id = (stage.get("latestExecution") or {}).get("pipelineExecutionId")
            for action in stage.get("actionStates") or []:
                latest = action.get("latestExecution") or {}
                out.append(ActionState(
                    stage=stage.get("stageName", ""), action=action.get("actionName", ""), status=latest.get("status"),
                    execution_id=execution_id, token=latest.get("token"),
                    error=(latest.get("errorDetails") or {}).get("message"),
                    external_id=latest.get("externalExecutionId")))
        return out

    def decide(self, name: str, stage: str, action: str, token: str, approve: bool, summary: str) -> None:
        self._call("put_approval_result", pipelineName=name, stageName=stage, actionName=action, token=token,
              result={"summary": summary, "status": "Approved" if approve else "Rejected"})


def _execution(raw: dict) -> Execution:
    revisions = raw.get("sourceRevisions") or []
    return Execution(raw["pipelineExecutionId"], raw.get("status", "?"), raw.get("startTime"),
                     raw.get("lastUpdateTime"), revisions[0].get("revisionId") if revisions else None)


# --- CodeBuild and its logs ------------------------------------------------------------------------
@dataclass(frozen=True)
class Build:
    build_id: str
    status: str
    log_group: str | None
    log_stream: str | None
    log_link: str | None


class Builds(Gateway):
    service = "codebuild"

    def get(self, build_id: str) -> Build | None:
        builds = self._call("batch_get_builds", ids=[build_id]).get("builds") or []
        if not builds:
            return None
        raw = builds[0]
        logs = raw.get("logs") or {}
        return Build(raw["id"], raw.get("buildStatus", "?"), logs.get("groupName"), logs.get("streamName"),
                     logs.get("deepLink"))


class BuildLogs(Gateway):
    service = "logs"

    def lines(self, group: str, stream: str, limit: int = 10_000) -> list[str]:
        """The stream's messages from its start (at most `limit`)."""
        out: list[str] = []
        token = None
        while len(out) < limit:
            kwargs = {"logGroupName": group, "logStreamName": stream, "startFromHead": True}
            if token:
                kwargs["nextToken"] = token
            page = self._call("get_log_events", **kwargs)
            out.extend(e.get("message", "").rstrip("\n") for e in page.get("events") or [])
            following = page.get("nextForwardToken")
            if not page.get("events") or following == token:
                return out
            token = following
        return out


# --- the lake topic ----------------------------------------------------------
class Topic(Gateway):
    service = "sns"

    @classmethod
    def at(cls, topic_arn: str, profile: str | None = None, endpoint_url: str | None = None) -> "Topic":
        """The gateway for one topic, in its region, with the caller's own credentials: a failed build reports
        through it even when the parameters files it would read are what broke."""
        from sdlf_cli.aws.session import AwsTarget, Clients

        region = topic_arn.split(":")[3]
        return cls(Clients(AwsTarget(region=region, profile=profile, endpoint_url=endpoint_url)).client("sns"))

    def publish(self, topic_arn: str, subject: str, message: str) -> str:
        return self._call("publish", TopicArn=topic_arn, Subject=subject[:100], Message=message)["MessageId"]
