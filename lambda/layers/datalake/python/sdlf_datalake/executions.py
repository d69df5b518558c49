"""The executions table: one row per pipeline execution (stage A: one per raw object).

Row: {id: execution name, dataset_id "T/D", stage, status RUNNING|SUCCEEDED|FAILED, started_at,
finished_at, duration_ms, objects_in, objects_out, records_out, error, expires_at (epoch seconds,
TTL, 30 days after the last write)}. Writes are idempotent updates, so a retried task is harmless.
"""
from __future__ import annotations

import hashlib
import re
from datetime import datetime, timedelta
from typing import Any, Mapping

from sdlf_datalake.dynamo import from_item, update_expression
from sdlf_datalake.support import lazy_client
from sdlf_datalake.timeutil import Clock, iso, parse_time, utc_now

RETENTION = timedelta(days=30)
RUNNING = "RUNNING"
SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"

# Step Functions execution names: at most 80 characters of [A-Za-z0-9-_].
NAME_LIMIT = 80
_HASH_LENGTH = 32
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def execution_name(dataset: str, bucket: str, key: str, etag: str, redrive_of: str | None = None) -> str:
    """`<dataset>-<sha256(bucket/key@etag)[:32]>`: the same object content always gets the same name,
    so a redelivered event or an identical re-upload cannot start a second execution.

    `redrive_of` (the failed execution being replayed) gives a replay its own name, still
    deterministic: replaying the same failure twice runs once.
    """
    seed = f"{bucket}/{key}@{etag}"
    if redrive_of:
        seed += f"#redrive:{redrive_of}"
    digest = hashlib.sha256(seed.encode("utf-8")).hexdigest()[:_HASH_LENGTH]
    prefix = _UNSAFE.sub("-", dataset)[: NAME_LIMIT - _HASH_LENGTH - 1] or "dataset"
    return f"{prefix}-{digest}"


class ExecutionsRepository:
    def __init__(self, table_name: str, client: Any = None, clock: Clock | None = None):
        if not table_name:
            raise ValueError("ExecutionsRepository needs a table name")
        self.table_name = table_name
        self._client = client
        self._clock = clock or utc_now

    client = lazy_client("dynamodb", "_client")

    def get(self, execution_id: str) -> dict[str, Any] | None:
        item = self.client.get_item(
            TableName=self.table_name, Key={"id": {"S": execution_id}}, ConsistentRead=True
        ).get("Item")
        return from_item(item) if item else None

    def start(
        self, execution_id: str, dataset_id: str, stage: str, objects_in: int, extra: dict[str, Any] | None = None,
        started_at: str | None = None,
    ) -> None:
        """RUNNING; a repeated start (a retried task) keeps the first started_at. `started_at` is when the
        execution started (Step Functions' `$$.Execution.StartTime`); without it, now."""
        now = self._clock()
        self._update(
            execution_id,
            {
                "dataset_id": dataset_id,
                "stage": stage,
                "status": RUNNING,
                "objects_in": objects_in,
                "expires_at": _expiry(now),
                **(extra or {}),
            },
            if_not_exists={"started_at": iso(_time_or(started_at, now))},
            remove=("finished_at", "duration_ms", "error"),
        )

    def succeed(
        self, execution_id: str, objects_out: int, records_out: int, extra: dict[str, Any] | None = None,
        started_at: str | None = None,
    ) -> dict[str, Any]:
        """SUCCEEDED with the counts; `extra` adds attributes (stage B: the quality status). `started_at` (when
        the execution started, `$$.Execution.StartTime`) gives the duration without reading the row."""
        return self._finish(
            execution_id, SUCCEEDED, {"objects_out": objects_out, "records_out": records_out, **(extra or {})},
            started_at,
        )

    def fail(self, execution_id: str, error: str, dataset_id: str | None = None, stage: str | None = None,
             started_at: str | None = None) -> dict[str, Any]:
        """FAILED with the error; creates the row when the execution failed before it started one."""
        fields: dict[str, Any] = {"error": error}
        if dataset_id:
            fields["dataset_id"] = dataset_id
        if stage:
            fields["stage"] = stage
        return self._finish(execution_id, FAILED, fields, started_at)

    def _finish(self, execution_id: str, status: str, fields: dict[str, Any],
                started_at: str | None = None) -> dict[str, Any]:
        now = self._clock()
        started = _time_or(started_at, None)
        row: dict[str, Any] = {}
        if started is None:
            # An execution started by a state machine that does not pass its start time: the row has it.
            row = self.get(execution_id) or {}
            started = _time_or(row.get("started_at"), None)
        duration = max(0, int((now - started).total_seconds() * 1000)) if started else 0
        values = {
            "status": status,
            "finished_at": iso(now),
            "duration_ms": duration,
            "expires_at": _expiry(now),
            **fields,
        }
        self._update(execution_id, values, if_not_exists={"started_at": iso(started or now)})
        return {**row, **values}

    def _update(
        self,
        execution_id: str,
        values: dict[str, Any],
        if_not_exists: dict[str, Any] | None = None,
        remove: tuple[str, ...] = (),
    ) -> None:
        expression, names, attrs = update_expression(values, if_not_exists=if_not_exists, remove=remove)
        self.client.update_item(
            TableName=self.table_name,
            Key={"id": {"S": execution_id}},
            UpdateExpression=expression,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=attrs,
        )


def started_at_of(event: Mapping[str, Any]) -> str | None:
    """When the execution started: the state machine passes `$$.Execution.StartTime` to its tasks as `started_at`
    (an execution started by an earlier definition does not; its row is read instead)."""
    value = event.get("started_at") if isinstance(event, Mapping) else None
    return value if isinstance(value, str) and value else None


def _time_or(value: Any, default: datetime | None) -> datetime | None:
    """`value` as a time (ISO-8601, as Step Functions and this table write it), else `default`."""
    if not value:
        return default
    try:
        return parse_time(value)
    except (TypeError, ValueError):
        return default


def _expiry(moment) -> int:
    return int((moment + RETENTION).timestamp())


def redrive_marker(body: Mapping[str, Any] | None) -> str | None:
    """The failed execution a replayed message (from a stage's DLQ) names, else None."""
    marker = body.get("sdlf") if isinstance(body, Mapping) else None
    if isinstance(marker, Mapping) and isinstance(marker.get("execution"), str) and marker["execution"]:
        return marker["execution"]
    return None
