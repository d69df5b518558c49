"""Catalog consumer: S3 events (EventBridge -> SQS) -> one object catalog row per object.

Each SQS record is handled alone (partial batch response): a malformed or failing record is
reported in `batchItemFailures` and retried / sent to the DLQ by SQS, the others are deleted.
Writes are order-safe and idempotent (see sdlf_datalake.catalog), so redelivery is harmless.

Environment (read per invocation, so the module imports without AWS or configuration):
  CATALOG_TABLE  the catalog table name
  BUCKET_STAGES  JSON object: bucket name -> "raw" | "stage" | "analytics"
"""
from __future__ import annotations

import json
import os
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from sdlf_datalake import CatalogRepository, MalformedEventError, parse_s3_event
from sdlf_datalake.catalog import STAGES

logger = Logger(service="catalog")
# All records failing is reported the same way as some failing (a list of ids), instead of
# raising: the outcome for SQS is identical and the invocation is not counted as an error.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

# Repositories by table name, kept across invocations of a warm container.
_repositories: dict[str, CatalogRepository] = {}


class ConfigurationError(RuntimeError):
    """The function's environment is wrong; every record fails until it is fixed."""


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request_id = getattr(context, "aws_request_id", None)
    if request_id:
        logger.append_keys(function_request_id=request_id)
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)


def record_handler(record: SQSRecord) -> str:
    """Apply one SQS record; raise to have it retried (and, after maxReceiveCount, dead-lettered)."""
    message_id = record.message_id
    try:
        event = parse_s3_event(record.body)
    except MalformedEventError as exc:
        logger.error("malformed S3 event", extra={"message_id": message_id, "error": str(exc)})
        raise

    details = {
        "message_id": message_id,
        "event_id": event.event_id,
        "detail_type": event.detail_type,
        "object_id": event.object_id,
        "sequencer": event.sequencer,
    }
    if not (event.is_created or event.is_deleted):
        # The rule only routes these two; anything else is not a catalog change.
        logger.warning("event ignored: not Object Created/Deleted", extra=details)
        return "ignored"
    try:
        stage = _bucket_stages().get(event.bucket)
        if stage is None:
            raise ConfigurationError(
                f"bucket {event.bucket!r} of {event.object_id} is not in BUCKET_STAGES "
                f"({', '.join(sorted(_bucket_stages())) or 'empty'})"
            )
        outcome = _repository().record_event(event, stage)
    except Exception:
        logger.exception("catalog update failed", extra=details)
        raise
    if not event.key_parts.in_layout:
        logger.warning("key is not <team>/<dataset>/<file>; cataloged without team/dataset", extra=details)
    logger.info("catalog updated", extra={**details, "stage": stage, "outcome": outcome.value})
    return outcome.value


def _bucket_stages() -> dict[str, str]:
    raw = os.environ.get("BUCKET_STAGES", "")
    try:
        stages = json.loads(raw) if raw else None
    except ValueError as exc:
        raise ConfigurationError(f"BUCKET_STAGES is not JSON: {exc}") from None
    if not isinstance(stages, dict) or not stages:
        raise ConfigurationError(f"BUCKET_STAGES must be a JSON object bucket -> stage, got {raw!r}")
    bad = {b: s for b, s in stages.items() if s not in STAGES}
    if bad:
        raise ConfigurationError(f"BUCKET_STAGES: stages must be one of {', '.join(STAGES)}; got {bad}")
    return stages


def _repository() -> CatalogRepository:
    table = os.environ.get("CATALOG_TABLE")
    if not table:
        raise ConfigurationError("CATALOG_TABLE is not set")
    if table not in _repositories:
        _repositories[table] = CatalogRepository(table)
    return _repositories[table]
