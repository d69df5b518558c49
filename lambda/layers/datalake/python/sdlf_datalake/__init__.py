"""sdlf_datalake: the small library every sdlf Lambda uses (shipped as the `datalake` layer).

- `events`   : S3 EventBridge events ("Object Created" / "Object Deleted") as typed objects
- `keys`     : `<team>/<dataset>/<rest>` key layout and catalog ids
- `catalog`  : `CatalogRepository`, the object catalog in DynamoDB (order-safe, idempotent writes)
- `timeutil` : ISO-8601 UTC timestamps that sort as strings
"""
from __future__ import annotations

from sdlf_datalake.catalog import CatalogRepository, RecordOutcome, Status
from sdlf_datalake.events import MalformedEventError, S3ObjectEvent, parse_s3_event, sequencer_key
from sdlf_datalake.keys import KeyParts, dataset_id, object_id, parse_object_id, split_key
from sdlf_datalake.timeutil import iso, now_iso, parse_time, utc_now

__all__ = [
    "CatalogRepository",
    "KeyParts",
    "MalformedEventError",
    "RecordOutcome",
    "S3ObjectEvent",
    "Status",
    "dataset_id",
    "iso",
    "now_iso",
    "object_id",
    "parse_object_id",
    "parse_s3_event",
    "parse_time",
    "sequencer_key",
    "split_key",
    "utc_now",
]
