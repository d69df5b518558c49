"""Stage-A routing: SQS batch of EventBridge S3 "Object Created" events -> one Step Functions
execution per object, named deterministically from the object's content (bucket, key, etag).

A redelivered event or an identical re-upload finds the execution already there
(ExecutionAlreadyExists): that record succeeds without a second run. Anything else fails only its
own record (partial batch response), so SQS retries it and, after maxReceiveCount, dead-letters it.
A message replayed from the stage-A DLQ (it carries "sdlf": {"execution", ...}) gets a replay
execution name of its own, so a redrive really runs again — once.

Environment (read per invocation): STATE_MACHINE_ARN, PIPELINE, TEAM.
"""
from __future__ import annotations

import json
import os
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from sdlf_datalake import MalformedEventError, parse_s3_event
from sdlf_datalake.executions import redrive_marker
from sdlf_datalake.stage_a.routing import Router, RoutingAConfig

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME") or "routing-a")
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

# Routers by (state machine, pipeline, team), kept by a warm container (one boto3 client each).
_routers: dict[RoutingAConfig, Router] = {}


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)


def record_handler(record: SQSRecord) -> dict[str, Any]:
    details: dict[str, Any] = {"message_id": record.message_id}
    try:
        body = json.loads(record.body)
    except ValueError as exc:
        logger.error("message body is not JSON", extra={**details, "error": str(exc)})
        raise MalformedEventError(f"message {record.message_id}: body is not JSON: {exc}") from None
    try:
        event = parse_s3_event(body)
        details.update(object_id=event.object_id, event_id=event.event_id)
        outcome = _router().route(event, redrive_of=redrive_marker(body))
    except Exception as exc:
        logger.exception("routing failed", extra={**details, "error": f"{type(exc).__name__}: {exc}"})
        raise
    if outcome.get("skipped"):
        message = f"skipped: {outcome['skipped']}"
    elif outcome["started"]:
        message = "execution started"
    else:
        message = "execution already exists; duplicate skipped"
    logger.info(message, extra={**details, **outcome})
    return outcome


def _router() -> Router:
    config = RoutingAConfig.from_env()
    if config not in _routers:
        _routers[config] = Router.from_config(config)
    return _routers[config]
