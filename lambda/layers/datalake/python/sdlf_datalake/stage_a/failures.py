"""Stage A's failures (lambda/error-a): whatever failed, the object ends FAILED with a reason, a replayable
message waits in the stage-A DLQ (sdlf redrive), the team is told, and the execution is marked FAILED.

Input (the state machine's Catch): {"object": {...}, "error": {"Error", "Cause"}, "execution", "started_at"}.
Nothing here trusts the input's shape: an odd object or error still yields a DLQ message that
carries everything received, so the object's identity is never lost.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Mapping

from sdlf_datalake.catalog import CatalogRepository, DoneElsewhere, Status
from sdlf_datalake.errors import aws_call
from sdlf_datalake.executions import ExecutionsRepository, started_at_of
from sdlf_datalake.failures import (
    FailedObject, Steps, error_type, failure_reason, replayable_event, salvage_object,
)
from sdlf_datalake.notify import Notifier
from sdlf_datalake.support import lazy_client, required_env
from sdlf_datalake.timeutil import Clock, now_iso


@dataclass(frozen=True)
class ErrorHandlerAConfig:
    catalog_table: str
    executions_table: str
    dlq_url: str
    topic_arn: str
    team: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "ErrorHandlerAConfig":
        env = os.environ if env is None else env
        names = ("CATALOG_TABLE", "EXECUTIONS_TABLE", "DLQ_URL", "TOPIC_ARN", "TEAM")
        return cls(*required_env(env, names, "error-a"))


class ErrorHandlerA:
    def __init__(
        self,
        config: ErrorHandlerAConfig,
        *,
        sqs: Any = None,
        sns: Any = None,
        dynamodb: Any = None,
        clock: Clock | None = None,
        logger: Any = None,
    ):
        self.config = config
        self._sqs = sqs
        self._clock = clock
        self._logger = logger
        self.catalog = CatalogRepository(config.catalog_table, client=dynamodb, clock=clock)
        self.executions = ExecutionsRepository(config.executions_table, client=dynamodb, clock=clock)
        self.notifier = Notifier(config.topic_arn, client=sns)

    sqs = lazy_client("sqs", "_sqs")

    def handle(self, event: Any, account: str | None = None, region: str | None = None) -> dict[str, Any]:
        """Run every step even if one fails (the DLQ message first: it is what keeps the data);
        raise ErrorHandlingIncomplete at the end naming the steps that failed."""
        event = event if isinstance(event, Mapping) else {"object": None, "error": event}
        obj = salvage_object(event.get("object"))
        error = event.get("error")
        reason = failure_reason(error)
        execution = event.get("execution") if isinstance(event.get("execution"), str) else None
        # $$.Execution.StartTime, which the state machine passes: the execution's duration without reading its row.
        started_at = started_at_of(event)
        failed_at = now_iso(self._clock)
        result: dict[str, Any] = {"status": Status.FAILED.value, "reason": reason, "object": obj.uri}
        steps = Steps(self._logger)

        message = replayable_event(
            obj,
            reason=reason,
            execution=execution,
            failed_at=failed_at,
            account=account,
            region=region,
            original_input=dict(event),
        )
        steps.run("dlq", lambda: result.update(dlq_message_id=self._send_to_dlq(message)))
        if obj.uri:
            steps.run("catalog", lambda: result.update(catalog=self._mark_failed(obj, reason, execution, error)))
        else:
            # Retrying cannot help; the DLQ message carries the whole input for an operator.
            result["catalog"] = "skipped: the input did not identify the object (no bucket/key or uri)"
        if execution:
            steps.run(
                "executions",
                lambda: self.executions.fail(execution, reason, dataset_id=obj.dataset_id, stage="a",
                                             started_at=started_at),
            )
        steps.run("notify", lambda: result.update(notification_id=self._notify(obj, reason, execution, failed_at, error)))
        steps.finish(obj.uri or "an unidentified object")
        return result

    def _send_to_dlq(self, message: dict[str, Any]) -> str:
        with aws_call(f"sending to {self.config.dlq_url}"):
            response = self.sqs.send_message(QueueUrl=self.config.dlq_url, MessageBody=json.dumps(message))
        return response["MessageId"]

    def _mark_failed(self, obj: FailedObject, reason: str, execution: str | None, error: Any) -> str:
        extra: dict[str, Any] = {}
        if execution:
            extra["execution"] = execution
        if error_type(error):
            extra["error_type"] = error_type(error)
        unless_done = DoneElsewhere("execution", execution, "etag", obj.etag) if execution and obj.etag else None
        with aws_call(f"marking {obj.uri} FAILED"):
            written = self.catalog.set_status(obj.uri, Status.FAILED, reason, stage="raw", extra=extra,
                                              unless_done=unless_done)
        if written:
            return "FAILED"
        # This failure is stale (a replay of it already succeeded) or the object was deleted; the DLQ
        # message sent above replays to a no-op.
        if self._logger is not None:
            self._logger.info("catalog row kept: processed by another execution, or deleted",
                              extra={"object": obj.uri, "execution": execution})
        return "kept: processed by another execution, or deleted"

    def _notify(self, obj: FailedObject, reason: str, execution: str | None, failed_at: str, error: Any) -> str:
        what = f"{obj.dataset_id} {obj.key.rsplit('/', 1)[-1]}" if obj.dataset_id and obj.key else (obj.uri or "unknown object")
        message = {
            "event": "object-failed",
            "team": obj.team or self.config.team,
            "dataset": obj.dataset,
            "pipeline": obj.pipeline,
            "stage": "a",
            "object": obj.uri,
            "execution": execution,
            "reason": reason,
            "error_type": error_type(error),
            "failed_at": failed_at,
            "dlq": self.config.dlq_url,
            "next_step": "fix the cause, then redrive the stage-A DLQ (sdlf redrive)",
        }
        return self.notifier.publish(f"sdlf FAILED {what}", message, event="object-failed")
