"""The object catalog: one DynamoDB row per object (`id` = "s3://<bucket>/<key>").

Writes from S3 events are order-safe and idempotent. Every event carries S3's `sequencer`; the row
keeps the (padded) sequencer of the last event applied, and a write only happens when the incoming
event is newer (DynamoDB ConditionExpression). A redelivered or older event is therefore a no-op.
Equal sequencers (emulators) are broken by event time and content; see `_NEWER`.

Pipeline stages move the status along (RUNNING -> PROCESSED | FAILED) with `set_status`, and record
where an output came from with `add_lineage` (merged into what the row holds), or, for an output that is
one input's or one batch's own, with its `lineage` set in the status write itself (`set_lineage` when that
write finds the row DELETED). An "Object Created" event for the version a row
already describes keeps that status (a stage may write the row before S3's event arrives); only a
new version, or a re-upload after a delete, makes the row RECEIVED again.
"""
from __future__ import annotations

import enum
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from sdlf_datalake.dynamo import from_item, to_attr
from sdlf_datalake.errors import TransientError
from sdlf_datalake.events import S3ObjectEvent
from sdlf_datalake.keys import parse_object_id, split_key
from sdlf_datalake.support import lazy_client
from sdlf_datalake.timeutil import Clock, now_iso

DATASET_INDEX = "by-dataset"
STAGES = ("raw", "stage", "analytics")
_LINEAGE_RETRIES = 5
# BatchGetItem takes at most 100 keys; keys DynamoDB leaves unprocessed (throttling) are asked for again after a
# short backoff, this many times.
_BATCH_GET_KEYS = 100
_UNPROCESSED_RETRIES = 5
_UNPROCESSED_BACKOFF_SECONDS = 0.05
# Attribute names that are DynamoDB reserved words; expressions always use these placeholders.
_RESERVED = {"#bucket": "bucket", "#key": "key", "#size": "size", "#status": "status"}


class Status(str, enum.Enum):
    RECEIVED = "RECEIVED"
    RUNNING = "RUNNING"
    PROCESSED = "PROCESSED"
    FAILED = "FAILED"
    DELETED = "DELETED"


class RecordOutcome(str, enum.Enum):
    RECEIVED = "received"  # new object or new version: status RECEIVED
    REFRESHED = "refreshed"  # same version already known: metadata updated, status kept
    DELETED = "deleted"
    STALE = "stale"  # duplicate or older than what the row holds: nothing written
    IGNORED = "ignored"  # not about the row's current object (e.g. a non-current version purged)


# A row is updated by an event only when the event is newer than the last one applied: a greater
# sequencer. On AWS an equal sequencer means the same S3 operation, i.e. a redelivery. Emulators
# may send one constant sequencer (moto does, with one event id and whole-second times), so equal
# sequencers fall back to the event time, then to "the event says something different" (its
# fingerprint); a true redelivery has the same fingerprint and stays a no-op.
_NEWER = (
    "(attribute_not_exists(sequencer) OR sequencer < :seq"
    " OR (sequencer = :seq AND (attribute_not_exists(event_time) OR event_time < :etime"
    " OR (event_time = :etime AND (attribute_not_exists(event_fingerprint) OR event_fingerprint <> :fingerprint)))))"
)


@dataclass(frozen=True)
class DoneElsewhere:
    """A FAILED mark that must not land on a row another execution has PROCESSED for the same content.

    A failure handler is retried by its state machine seconds after it first ran; by then the failure it
    reported may have been redriven and the replay may have succeeded. Its second FAILED would make a done
    object FAILED again, with the DLQ message that replays it already consumed (the replay's execution
    exists, so the next replay is a no-op): a lost object. `execution_attr`/`etag_attr` name where the row
    records who processed it and which content (`execution`/`etag` for raw rows in stage A,
    `stage_b_execution`/`analytics_etag` for stage rows in stage B)."""

    execution_attr: str
    execution: str
    etag_attr: str
    etag: str


class CatalogRepository:
    """Object catalog access. Pass a boto3 DynamoDB client, or let it create one lazily."""

    def __init__(self, table_name: str, client: Any = None, clock: Clock | None = None,
                 sleep: Callable[[float], None] = time.sleep):
        if not table_name:
            raise ValueError("CatalogRepository needs a table name")
        self.table_name = table_name
        self._client = client
        self._clock = clock
        self._sleep = sleep

    client = lazy_client("dynamodb", "_client")

    # --- reads ------------------------------------------------------------------------------
    def get(self, object_id: str) -> dict[str, Any] | None:
        response = self.client.get_item(
            TableName=self.table_name, Key={"id": {"S": object_id}}, ConsistentRead=True
        )
        item = response.get("Item")
        return from_item(item) if item else None

    def get_many(self, object_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The rows of several objects, read consistently with BatchGetItem (one request per 100 ids): id -> row,
        ids without a row left out. Keys DynamoDB returns unprocessed are asked for again with backoff; still
        unprocessed after that raises TransientError."""
        ids = list(dict.fromkeys(object_ids))
        rows: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), _BATCH_GET_KEYS):
            keys = [{"id": {"S": object_id}} for object_id in ids[start:start + _BATCH_GET_KEYS]]
            request: dict[str, Any] = {self.table_name: {"Keys": keys, "ConsistentRead": True}}
            for attempt in range(_UNPROCESSED_RETRIES + 1):
                if attempt:
                    self._sleep(_UNPROCESSED_BACKOFF_SECONDS * 2 ** (attempt - 1))
                response = self.client.batch_get_item(RequestItems=request)
                for item in response.get("Responses", {}).get(self.table_name, []):
                    row = from_item(item)
                    rows[row["id"]] = row
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
            else:
                left = len(request.get(self.table_name, {}).get("Keys", []))
                raise TransientError(f"reading {left} catalog row(s) from {self.table_name}: still unprocessed after"
                                     f" {_UNPROCESSED_RETRIES} retries (throttled)")
        return rows

    def list_dataset(self, dataset_id: str, limit: int | None = None) -> list[dict[str, Any]]:
        """Rows of one dataset (`<team>/<dataset>`), most recently updated first."""
        rows: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": DATASET_INDEX,
            "KeyConditionExpression": "dataset_id = :d",
            "ExpressionAttributeValues": {":d": {"S": dataset_id}},
            "ScanIndexForward": False,
        }
        while True:
            response = self.client.query(**kwargs)
            rows.extend(from_item(item) for item in response.get("Items", []))
            if (limit is not None and len(rows) >= limit) or "LastEvaluatedKey" not in response:
                break
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        return rows[:limit] if limit is not None else rows

    # --- writes from S3 events --------------------------------------------------------------
    def record_event(self, event: S3ObjectEvent, stage: str) -> RecordOutcome:
        if event.is_created:
            return self.record_created(event, stage)
        if event.is_deleted:
            return self.record_deleted(event, stage)
        raise ValueError(f"event {event.event_id}: cannot record detail-type {event.detail_type!r}")

    def record_created(self, event: S3ObjectEvent, stage: str) -> RecordOutcome:
        _check_stage(stage)
        now = now_iso(self._clock)
        sets, values = self._event_fields(event, stage, now)
        removes: list[str] = []
        for attr, value in (("etag", event.etag), ("version_id", event.version_id), ("size", event.size)):
            if value is None:
                removes.append(_attr(attr))
            else:
                sets.append(f"{_attr(attr)} = :{attr}")
                values[f":{attr}"] = to_attr(value)
        sets.append("created_at = if_not_exists(created_at, :now)")

        # A: a new object, new content, or a re-upload after a delete -> RECEIVED. A row with a
        # status but no etag was written by a stage before S3's event arrived: the same version.
        # A new version with the same content (same etag) keeps the status: the pipelines key
        # their executions on content, so an identical re-upload is not processed again and the
        # row must not wait in RECEIVED for a run that will never come.
        same_version = []
        if event.etag is not None:
            same_version.append("etag = :etag")
        elif event.version_id is not None:
            same_version.append("(attribute_not_exists(version_id) OR version_id = :version_id)")
        new_version = "attribute_not_exists(#status) OR #status = :deleted"
        if same_version:
            new_version += " OR (attribute_exists(etag) AND NOT (" + " AND ".join(same_version) + "))"
        else:
            new_version += " OR attribute_exists(etag)"
        values_a = dict(values)
        values_a[":received"] = to_attr(Status.RECEIVED.value)
        values_a[":deleted"] = to_attr(Status.DELETED.value)
        expression_a = "SET " + ", ".join(sets + ["#status = :received"]) + " REMOVE " + ", ".join(
            removes + ["reason", "deleted_at"]
        )
        if self._update(event, expression_a, f"{_NEWER} AND ({new_version})", values_a):
            return RecordOutcome.RECEIVED

        # B: the version the row already describes -> keep the status, refresh the metadata.
        expression_b = "SET " + ", ".join(sets)
        if self._update(event, expression_b, f"attribute_exists(id) AND {_NEWER}", values):
            return RecordOutcome.REFRESHED
        return RecordOutcome.STALE

    def record_deleted(self, event: S3ObjectEvent, stage: str) -> RecordOutcome:
        _check_stage(stage)
        now = now_iso(self._clock)
        sets, values = self._event_fields(event, stage, now)
        sets += ["#status = :deleted", "deleted_at = :etime", "created_at = if_not_exists(created_at, :now)"]
        values[":deleted"] = to_attr(Status.DELETED.value)
        condition = _NEWER
        purge_of_version = event.deletion_type == "Permanently Deleted" and event.version_id is not None
        if purge_of_version:
            # Purging one version only deletes the object if it is the version the row describes.
            condition += " AND (attribute_not_exists(version_id) OR version_id = :version_id)"
            values[":version_id"] = to_attr(event.version_id)
        if self._update(event, "SET " + ", ".join(sets), condition, values):
            return RecordOutcome.DELETED
        if purge_of_version and self._is_newer_than_row(event):
            return RecordOutcome.IGNORED
        return RecordOutcome.STALE

    # --- writes from pipeline stages --------------------------------------------------------
    def set_status(
        self,
        object_id: str,
        status: Status | str,
        reason: str | None = None,
        *,
        stage: str | None = None,
        etag: str | None = None,
        version_id: str | None = None,
        extra: dict[str, Any] | None = None,
        unless_done: DoneElsewhere | None = None,
    ) -> bool:
        """Move an object to RUNNING, PROCESSED or FAILED (FAILED needs a reason).

        Creates the row if the catalog has not seen the object yet. Pass the object's etag and
        version_id when you know them (a stage that just wrote the object does), so the S3 event
        that follows is recognised as the same version and does not reset the status.
        `extra` sets further attributes (for example an execution id). Returns False, writing
        nothing, when the row says DELETED, or (with `unless_done`) PROCESSED by another execution for
        the same content.
        """
        status = Status(status)
        if status not in (Status.RUNNING, Status.PROCESSED, Status.FAILED):
            raise ValueError(f"set_status: status must be RUNNING, PROCESSED or FAILED, got {status.value}")
        if status is Status.FAILED and not reason:
            raise ValueError(f"set_status({object_id!r}, FAILED): a reason is required")
        bucket, key = parse_object_id(object_id)
        now = now_iso(self._clock)
        sets = [
            "#status = :status",
            "updated_at = :now",
            "created_at = if_not_exists(created_at, :now)",
            "#bucket = if_not_exists(#bucket, :bucket)",
            "#key = if_not_exists(#key, :key)",
        ]
        values: dict[str, Any] = {
            ":status": to_attr(status.value),
            ":now": to_attr(now),
            ":bucket": to_attr(bucket),
            ":key": to_attr(key),
            ":deleted": to_attr(Status.DELETED.value),
        }
        names: dict[str, str] = {}
        parts = split_key(key)
        if parts.in_layout:
            for attr, value in (("team", parts.team), ("dataset", parts.dataset), ("dataset_id", parts.dataset_id)):
                sets.append(f"{attr} = if_not_exists({attr}, :{attr})")
                values[f":{attr}"] = to_attr(value)
        optional = {"stage": stage, "etag": etag, "version_id": version_id, **(extra or {})}
        for index, (attr, value) in enumerate(sorted(optional.items())):
            if value is None:
                continue
            names[f"#x{index}"] = attr
            sets.append(f"#x{index} = :x{index}")
            values[f":x{index}"] = to_attr(value)
        if status is Status.FAILED:
            sets.append("reason = :reason")
            values[":reason"] = to_attr(reason)
            expression = "SET " + ", ".join(sets)
        else:
            expression = "SET " + ", ".join(sets) + " REMOVE reason"
        condition = "attribute_not_exists(#status) OR #status <> :deleted"
        if unless_done is not None:
            # A missing attribute makes a comparison false, so a row without them is written.
            condition = (f"attribute_not_exists(#status) OR (#status <> :deleted AND NOT (#status = :processed"
                         " AND #done_etag = :done_etag AND #done_execution <> :done_execution))")
            names.update({"#done_etag": unless_done.etag_attr, "#done_execution": unless_done.execution_attr})
            values.update({":processed": to_attr(Status.PROCESSED.value), ":done_etag": to_attr(unless_done.etag),
                           ":done_execution": to_attr(unless_done.execution)})
        return self._write(object_id, expression, condition, values, names)

    def add_lineage(self, object_id: str, sources: Iterable[str]) -> list[str]:
        """Add source ids to the row's lineage (a list without duplicates, order kept). Returns it."""
        new = [s for s in dict.fromkeys(sources) if s]
        if len(new) == 1:
            appended = self._append_lineage(object_id, new[0])
            if appended is not None:
                return appended
        for _ in range(_LINEAGE_RETRIES):
            row = self.get(object_id) or {}
            current = list(row.get("lineage") or [])
            merged = current + [s for s in new if s not in current]
            if merged == current and row:
                return current
            values = {":lineage": to_attr(merged), ":now": to_attr(now_iso(self._clock))}
            if current:
                condition = "lineage = :current"
                values[":current"] = to_attr(current)
            else:
                condition = "attribute_not_exists(lineage)"
            bucket, key = parse_object_id(object_id)
            values.update({":bucket": to_attr(bucket), ":key": to_attr(key)})
            if self._write(
                object_id,
                "SET lineage = :lineage, updated_at = :now, #bucket = if_not_exists(#bucket, :bucket),"
                " #key = if_not_exists(#key, :key), created_at = if_not_exists(created_at, :now)",
                condition,
                values,
                {},
            ):
                return merged
        raise RuntimeError(f"add_lineage({object_id!r}): lineage kept changing under us; gave up")

    def set_lineage(self, object_id: str, sources: Iterable[str]) -> list[str]:
        """Make the row's lineage exactly `sources` (without duplicates, order kept), whatever its status, in one
        write. For an output that is its inputs' own, where `set_status` (which carries the lineage otherwise)
        wrote nothing because the row says DELETED: the object those inputs just wrote still came from them."""
        lineage = [s for s in dict.fromkeys(sources) if s]
        bucket, key = parse_object_id(object_id)
        self.client.update_item(
            TableName=self.table_name,
            Key={"id": {"S": object_id}},
            UpdateExpression="SET lineage = :lineage, updated_at = :now, #bucket = if_not_exists(#bucket, :bucket),"
            " #key = if_not_exists(#key, :key), created_at = if_not_exists(created_at, :now)",
            ExpressionAttributeNames={"#bucket": "bucket", "#key": "key"},
            ExpressionAttributeValues={
                ":lineage": to_attr(lineage), ":now": to_attr(now_iso(self._clock)),
                ":bucket": to_attr(bucket), ":key": to_attr(key),
            },
        )
        return lineage

    def _append_lineage(self, object_id: str, source: str) -> list[str] | None:
        """One source (a stage object and the object it came from) is appended in one conditional write,
        without reading the row first. Returns the lineage, or None when it holds the source already."""
        bucket, key = parse_object_id(object_id)
        try:
            response = self.client.update_item(
                TableName=self.table_name,
                Key={"id": {"S": object_id}},
                UpdateExpression="SET lineage = list_append(if_not_exists(lineage, :empty), :new), updated_at = :now,"
                " #bucket = if_not_exists(#bucket, :bucket), #key = if_not_exists(#key, :key),"
                " created_at = if_not_exists(created_at, :now)",
                ConditionExpression="attribute_not_exists(lineage) OR NOT contains(lineage, :source)",
                ExpressionAttributeNames={"#bucket": "bucket", "#key": "key"},
                ExpressionAttributeValues={
                    ":empty": {"L": []}, ":new": to_attr([source]), ":source": to_attr(source),
                    ":now": to_attr(now_iso(self._clock)), ":bucket": to_attr(bucket), ":key": to_attr(key),
                },
                ReturnValues="UPDATED_NEW",
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return None
        return from_item(response["Attributes"])["lineage"]

    # --- internals --------------------------------------------------------------------------
    def _event_fields(self, event: S3ObjectEvent, stage: str, now: str) -> tuple[list[str], dict[str, Any]]:
        sets = [
            "#bucket = :bucket",
            "#key = :key",
            "stage = :stage",
            "sequencer = :seq",
            "event_time = :etime",
            "last_event_id = :event_id",
            "event_fingerprint = :fingerprint",
            "updated_at = :now",
        ]
        values: dict[str, Any] = {
            ":bucket": to_attr(event.bucket),
            ":key": to_attr(event.key),
            ":stage": to_attr(stage),
            ":seq": to_attr(event.order_key),
            ":etime": to_attr(event.time),
            ":event_id": to_attr(event.event_id),
            ":fingerprint": to_attr(event.fingerprint),
            ":now": to_attr(now),
        }
        parts = event.key_parts
        if parts.in_layout:
            sets += ["team = :team", "dataset = :dataset", "dataset_id = :dataset_id"]
            values.update(
                {
                    ":team": to_attr(parts.team),
                    ":dataset": to_attr(parts.dataset),
                    ":dataset_id": to_attr(parts.dataset_id),
                }
            )
        return sets, values

    def _update(self, event: S3ObjectEvent, expression: str, condition: str, values: dict[str, Any]) -> bool:
        return self._write(event.object_id, expression, condition, values, {})

    def _write(
        self, object_id: str, expression: str, condition: str, values: dict[str, Any], names: dict[str, str]
    ) -> bool:
        used = expression + " " + condition
        names = {**_RESERVED, **names}
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key={"id": {"S": object_id}},
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeNames={k: v for k, v in names.items() if _mentions(used, k)},
                ExpressionAttributeValues={k: v for k, v in values.items() if _mentions(used, k)},
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def _is_newer_than_row(self, event: S3ObjectEvent) -> bool:
        row = self.get(event.object_id)
        if row is None or "sequencer" not in row:
            return True
        return (event.order_key, event.time) > (row["sequencer"], row.get("event_time", ""))


def _attr(name: str) -> str:
    """Attribute name as written in an expression (reserved words go through a placeholder)."""
    return f"#{name}" if f"#{name}" in _RESERVED else name


def _check_stage(stage: str) -> None:
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {', '.join(STAGES)}, got {stage!r}")


def _mentions(text: str, placeholder: str) -> bool:
    # ":seq" must not match ":sequencer"-like longer placeholders.
    start = 0
    while (index := text.find(placeholder, start)) != -1:
        end = index + len(placeholder)
        if end == len(text) or not (text[end].isalnum() or text[end] == "_"):
            return True
        start = end
    return False
