"""S3 events delivered through EventBridge ("Object Created" / "Object Deleted") as typed objects.

The envelope is EventBridge's: {"id", "detail-type", "source": "aws.s3", "time",
"detail": {"bucket": {"name"}, "object": {"key", "size", "etag", "version-id", "sequencer"},
"reason", "deletion-type", ...}}. Keys in EventBridge events are not URL-encoded (unlike the
classic S3 notification format), so they are used as they come.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any, Mapping

from sdlf_datalake.keys import KeyParts, object_id, split_key
from sdlf_datalake.timeutil import iso, parse_time

OBJECT_CREATED = "Object Created"
OBJECT_DELETED = "Object Deleted"

# S3 sequencers are hex strings of varying length; AWS says to left-pad the shorter with zeros
# and compare as strings. Storing them padded to one width lets DynamoDB compare them directly.
SEQUENCER_WIDTH = 64
_HEX = re.compile(r"^[0-9A-Fa-f]+$")


class MalformedEventError(ValueError):
    """The event is not a usable S3 EventBridge event; the message names the offending field."""


@dataclass(frozen=True)
class S3ObjectEvent:
    event_id: str
    detail_type: str
    time: str  # fixed-width ISO-8601 UTC (see timeutil)
    bucket: str
    key: str
    sequencer: str  # as S3 sent it
    size: int | None = None
    etag: str | None = None
    version_id: str | None = None
    reason: str | None = None  # e.g. PutObject, CompleteMultipartUpload, DeleteObject, Lifecycle Expiration
    deletion_type: str | None = None  # "Permanently Deleted" | "Delete Marker Created"

    @property
    def is_created(self) -> bool:
        return self.detail_type == OBJECT_CREATED

    @property
    def is_deleted(self) -> bool:
        return self.detail_type == OBJECT_DELETED

    @property
    def object_id(self) -> str:
        return object_id(self.bucket, self.key)

    @property
    def key_parts(self) -> KeyParts:
        return split_key(self.key)

    @property
    def fingerprint(self) -> str:
        """Hash of what the event says; a redelivery of the same event has the same fingerprint."""
        said = [self.event_id, self.detail_type, self.time, self.etag, self.version_id, self.size,
                self.reason, self.deletion_type]
        return hashlib.sha256(json.dumps(said).encode()).hexdigest()[:32]

    @property
    def order_key(self) -> str:
        """Sequencer padded to a fixed width: later events of one key compare greater."""
        return sequencer_key(self.sequencer)


def sequencer_key(sequencer: str) -> str:
    if not isinstance(sequencer, str) or not _HEX.match(sequencer):
        raise MalformedEventError(f"detail.object.sequencer: expected a hex string, got {sequencer!r}")
    if len(sequencer) > SEQUENCER_WIDTH:
        raise MalformedEventError(
            f"detail.object.sequencer: longer than {SEQUENCER_WIDTH} characters: {sequencer!r}"
        )
    return sequencer.upper().rjust(SEQUENCER_WIDTH, "0")


def parse_s3_event(body: str | bytes | Mapping[str, Any]) -> S3ObjectEvent:
    """Parse an EventBridge S3 event (a dict, or its JSON text as found in an SQS body)."""
    if isinstance(body, (str, bytes)):
        try:
            body = json.loads(body)
        except ValueError as exc:
            raise MalformedEventError(f"body is not JSON: {exc}") from None
    if not isinstance(body, Mapping):
        raise MalformedEventError(f"event: expected a JSON object, got {type(body).__name__}")

    source = body.get("source")
    if source != "aws.s3":
        raise MalformedEventError(f"source: expected 'aws.s3', got {source!r}")
    event_id = _required_str(body, "id", "id")
    detail_type = _required_str(body, "detail-type", "detail-type")
    raw_time = body.get("time")
    try:
        time = iso(parse_time(raw_time))
    except (TypeError, ValueError):
        raise MalformedEventError(f"time: expected an ISO-8601 time, got {raw_time!r}") from None

    detail = _required_map(body, "detail", "detail")
    bucket = _required_str(_required_map(detail, "bucket", "detail.bucket"), "name", "detail.bucket.name")
    obj = _required_map(detail, "object", "detail.object")
    key = _required_str(obj, "key", "detail.object.key")
    sequencer = _required_str(obj, "sequencer", "detail.object.sequencer")
    sequencer_key(sequencer)  # validates

    size = obj.get("size")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
        raise MalformedEventError(f"detail.object.size: expected a non-negative integer, got {size!r}")
    # AWS spells it `etag`; some emulators `eTag`. Quotes are not part of the value.
    etag = obj.get("etag", obj.get("eTag"))
    if etag is not None:
        etag = str(etag).strip('"')
    version_id = obj.get("version-id")
    return S3ObjectEvent(
        event_id=event_id,
        detail_type=detail_type,
        time=time,
        bucket=bucket,
        key=key,
        sequencer=sequencer,
        size=size,
        etag=etag or None,
        version_id=str(version_id) if version_id not in (None, "", "null") else None,
        reason=_optional_str(detail.get("reason")),
        deletion_type=_optional_str(detail.get("deletion-type")),
    )


def _required_map(parent: Mapping[str, Any], name: str, path: str) -> Mapping[str, Any]:
    value = parent.get(name)
    if not isinstance(value, Mapping):
        raise MalformedEventError(f"{path}: expected an object, got {value!r}")
    return value


def _required_str(parent: Mapping[str, Any], name: str, path: str) -> str:
    value = parent.get(name)
    if not isinstance(value, str) or not value:
        raise MalformedEventError(f"{path}: expected a non-empty string, got {value!r}")
    return value


def _optional_str(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None
