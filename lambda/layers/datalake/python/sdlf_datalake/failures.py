"""What every stage's error handler shares: running its steps so one failing does not stop the others,
reading a failure's reason and type from whatever the state machine passed, salvaging the object's identity
from a malformed input, and the replayable event a DLQ message carries (stage_a.failures, stage_b.failures,
and the catalog consumer's unclaimed objects).

The DLQ message body is the EventBridge "Object Created" event the pipeline rule delivers for the
raw object, plus "sdlf": {"reason", "execution", "failed_at"}; sending it back to the stage-A queue
replays the object (routing gives a replay its own execution name; see executions.execution_name).
"""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from sdlf_datalake.errors import TransientError
from sdlf_datalake.keys import object_id, parse_object_id, split_key

REASON_LIMIT = 2000
UNKNOWN_REASON = "unknown error (the state machine passed no error details)"


class ErrorHandlingIncomplete(RuntimeError):
    """Some of the error handler's steps failed (named in the message); the others were done."""


class Steps:
    """An error handler's steps: each is attempted even if others fail; `finish` raises at the end
    naming the ones that failed (TransientError when a retry may cure all of them)."""

    def __init__(self, logger: Any = None):
        self.logger = logger
        self.problems: list[tuple[str, bool]] = []  # (what failed, whether a retry may cure it)

    def run(self, name: str, action: Callable[[], Any]) -> None:
        try:
            action()
        except Exception as exc:  # every step is attempted; failures are reported together
            if self.logger is not None:
                self.logger.exception(f"error handler step {name} failed")
            self.problems.append((f"{name}: {type(exc).__name__}: {exc}", isinstance(exc, TransientError)))

    def finish(self, what: str) -> None:
        if self.problems:
            text = f"error handling of {what} incomplete: " + "; ".join(problem for problem, _ in self.problems)
            # Step Functions matches error names exactly: only a TransientError is retried.
            if all(transient for _, transient in self.problems):
                raise TransientError(text)
            raise ErrorHandlingIncomplete(text)


@dataclass(frozen=True)
class FailedObject:
    """As much of the object's identity as the input carried (bucket/key may be None if it was odd)."""

    bucket: str | None
    key: str | None
    team: str | None = None
    dataset: str | None = None
    pipeline: str | None = None
    etag: str | None = None
    version_id: str | None = None
    size: int | None = None
    sequencer: str | None = None

    @property
    def uri(self) -> str | None:
        return object_id(self.bucket, self.key) if self.bucket and self.key else None

    @property
    def dataset_id(self) -> str | None:
        return f"{self.team}/{self.dataset}" if self.team and self.dataset else None


def salvage_object(value: Any) -> FailedObject:
    """Read the object from whatever the input holds: a dict, its JSON text, or a bare s3:// uri."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("s3://"):
            value = {"uri": text}
        else:
            try:
                value = json.loads(text)
            except ValueError:
                value = {}
    if not isinstance(value, Mapping):
        value = {}

    def text_of(name: str) -> str | None:
        item = value.get(name)
        return str(item) if item not in (None, "") and not isinstance(item, (dict, list)) else None

    bucket, key = text_of("bucket"), text_of("key")
    uri = text_of("uri")
    if (not bucket or not key) and uri:
        try:
            bucket, key = parse_object_id(uri)
        except ValueError:
            pass
    team, dataset = text_of("team"), text_of("dataset")
    if key and (not team or not dataset):
        parts = split_key(key)
        team, dataset = team or parts.team, dataset or parts.dataset
    size = value.get("size")
    if isinstance(size, str) and size.isdigit():
        size = int(size)
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        size = None
    return FailedObject(
        bucket=bucket,
        key=key,
        team=team,
        dataset=dataset,
        pipeline=text_of("pipeline"),
        etag=text_of("etag"),
        version_id=text_of("version_id"),
        size=size,
        sequencer=text_of("sequencer"),
    )


def failure_reason(error: Any) -> str:
    """The errorMessage of a Lambda error in `Cause`, else "Error: Cause", else whatever there is."""
    if isinstance(error, str):
        try:
            error = json.loads(error)
        except ValueError:
            return _clip(error) if error.strip() else UNKNOWN_REASON
    if not isinstance(error, Mapping):
        return _clip(json.dumps(error, default=str)) if error not in (None, "", {}, []) else UNKNOWN_REASON
    name = error.get("Error")
    cause = error.get("Cause")
    if isinstance(cause, str):
        try:
            parsed = json.loads(cause)
        except ValueError:
            parsed = None
        if isinstance(parsed, Mapping):
            cause = parsed
    if isinstance(cause, Mapping):
        message = cause.get("errorMessage")
        if isinstance(message, str) and message.strip():
            return _clip(message)
        cause = json.dumps(cause, default=str, sort_keys=True)
    parts = [str(p) for p in (name, cause) if p not in (None, "")]
    return _clip(": ".join(parts)) if parts else UNKNOWN_REASON


def error_type(error: Any) -> str | None:
    if isinstance(error, Mapping) and isinstance(error.get("Error"), str):
        return error["Error"]
    return None


def replayable_event(
    obj: FailedObject,
    *,
    reason: str,
    execution: str | None,
    failed_at: str,
    account: str | None,
    region: str | None,
    original_input: Any = None,
) -> dict[str, Any]:
    """The EventBridge "Object Created" event for the raw object (+ the "sdlf" failure marker)."""
    detail_object: dict[str, Any] = {"key": obj.key}
    if obj.size is not None:
        detail_object["size"] = obj.size
    if obj.etag:
        detail_object["etag"] = obj.etag
    if obj.version_id:
        detail_object["version-id"] = obj.version_id
    # The sequencer orders catalog writes; a replay of the same upload keeps the original one.
    detail_object["sequencer"] = obj.sequencer or "0"
    marker: dict[str, Any] = {"reason": reason, "execution": execution, "failed_at": failed_at}
    if obj.uri is None:
        # Identity incomplete: keep the whole input so an operator can still tell what failed.
        marker["input"] = original_input
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": account or "",
        "time": failed_at[:19] + "Z",
        "region": region or "",
        "resources": [f"arn:aws:s3:::{obj.bucket}"] if obj.bucket else [],
        "detail": {
            "version": "0",
            "bucket": {"name": obj.bucket},
            "object": detail_object,
            "reason": "PutObject",
        },
        "sdlf": marker,
    }

def _clip(text: str) -> str:
    text = text.strip()
    return text if len(text) <= REASON_LIMIT else text[: REASON_LIMIT - 3] + "..."
