"""Catalog consumer: S3 events (EventBridge -> SQS) -> one object catalog row per object.

Each SQS record is handled alone (partial batch response): a malformed or failing record is
reported in `batchItemFailures` and retried / sent to the DLQ by SQS, the others are deleted.
Writes are order-safe and idempotent (see sdlf_datalake.catalog), so redelivery is harmless.

A new raw object that no dataset claims (its key is not `<team>/<dataset>/...`, or no dataset is
registered for that prefix) would otherwise sit RECEIVED forever: it is marked FAILED with the
reason, and a replayable copy of its event goes to the DLQ.

Environment (read per invocation, so the module imports without AWS or configuration):
  CATALOG_TABLE     the catalog table name
  BUCKET_STAGES     JSON object: bucket name -> "raw" | "stage" | "analytics"
  SSM_PREFIX        the lake's SSM prefix (dataset registrations live below it); optional
  UNROUTED_DLQ_URL  where unclaimed raw objects are parked; optional (both or neither)
"""
from __future__ import annotations

import json
import os
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from sdlf_datalake import CatalogRepository, MalformedEventError, parse_s3_event
from sdlf_datalake.catalog import STAGES, RecordOutcome, Status
from sdlf_datalake.errors import InvalidInputError
from sdlf_datalake.events import S3ObjectEvent
from sdlf_datalake.failures import FailedObject, replayable_event
from sdlf_datalake.registry import RegistrationReader
from sdlf_datalake.timeutil import now_iso

logger = Logger(service="catalog")
# All records failing is reported the same way as some failing (a list of ids), instead of
# raising: the outcome for SQS is identical and the invocation is not counted as an error.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

# Repositories by table name, kept across invocations of a warm container.
_repositories: dict[str, CatalogRepository] = {}
_registrations: dict[str, RegistrationReader] = {}
_sqs: list[Any] = []


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
        if stage != "raw" and is_pipeline_metadata(event.key):
            logger.debug("pipeline metadata, not a data object: not cataloged", extra=details)
            return "ignored"
        outcome = _repository().record_event(event, stage)
        if stage == "raw" and outcome is RecordOutcome.RECEIVED:
            _park_if_unclaimed(event)
    except Exception:
        logger.exception("catalog update failed", extra=details)
        raise
    if not event.key_parts.in_layout:
        logger.warning("key is not <team>/<dataset>/<file>; cataloged without team/dataset", extra=details)
    logger.info("catalog updated", extra={**details, "stage": stage, "outcome": outcome.value})
    return outcome.value


def is_pipeline_metadata(key: str) -> bool:
    """Batch manifests, job results and quality reports live under `_`-prefixed folders (`_batches/`,
    `_quality/`, Spark's `_SUCCESS`): the pipelines' own bookkeeping, recorded elsewhere, not data objects."""
    return any(part.startswith("_") for part in key.split("/"))


def _unclaimed_reason(event: S3ObjectEvent, ssm_prefix: str) -> str | None:
    parts = event.key_parts
    if not parts.in_layout:
        return (f"key {event.key!r} is not <team>/<dataset>/<file>: no dataset can claim it "
                "(upload under the prefix of a registered dataset)")
    if ssm_prefix not in _registrations:
        _registrations[ssm_prefix] = RegistrationReader(ssm_prefix)
    try:
        _registrations[ssm_prefix].get(parts.team, parts.dataset)
    except InvalidInputError as exc:
        return f"{exc}; register it with `sdlf add-dataset {parts.team} {parts.dataset} --pipeline <pipeline>`"
    return None


def _park_if_unclaimed(event: S3ObjectEvent) -> None:
    """FAILED row + replayable DLQ message for a raw object no dataset claims."""
    ssm_prefix, dlq_url = os.environ.get("SSM_PREFIX"), os.environ.get("UNROUTED_DLQ_URL")
    if not (ssm_prefix and dlq_url):
        return
    reason = _unclaimed_reason(event, ssm_prefix)
    if reason is None:
        return
    parts = event.key_parts
    failed_at = now_iso()
    obj = FailedObject(bucket=event.bucket, key=event.key, team=parts.team, dataset=parts.dataset,
                       etag=event.etag, version_id=event.version_id, size=event.size, sequencer=event.sequencer)
    message = replayable_event(obj, reason=reason, execution=None, failed_at=failed_at,
                               account=None, region=os.environ.get("AWS_REGION"))
    if not _sqs:
        import boto3

        _sqs.append(boto3.client("sqs"))
    # DLQ first: if marking the row fails, the retry finds the row RECEIVED and parks it again.
    _sqs[0].send_message(QueueUrl=dlq_url, MessageBody=json.dumps(message))
    _repository().set_status(event.object_id, Status.FAILED, reason, etag=event.etag, version_id=event.version_id)
    logger.warning("raw object claimed by no dataset: FAILED and parked in the DLQ",
                   extra={"object_id": event.object_id, "reason": reason})


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
