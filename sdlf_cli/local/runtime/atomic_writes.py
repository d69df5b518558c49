"""DynamoDB conditional writes made atomic, as they are on AWS.

moto's server answers requests on many threads, and its `update_item` checks a ConditionExpression
and then writes without a lock. Two writers can both pass their condition - e.g. the catalog consumer
("row absent -> RECEIVED") and a stage's post-update ("-> PROCESSED") - and the later write wins,
leaving a row in a state AWS could never produce. One lock around every item write of the backend
restores AWS's per-request atomicity (at the cost of serialising writes, which the emulator can afford).
"""
from __future__ import annotations

import functools
import threading

_WRITES = ("put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item")
_lock = threading.RLock()
_originals: dict[str, object] = {}


def install() -> None:
    from moto.dynamodb.models import DynamoDBBackend

    for name in _WRITES:
        if name in _originals or not hasattr(DynamoDBBackend, name):
            continue
        original = getattr(DynamoDBBackend, name)
        _originals[name] = original

        @functools.wraps(original)
        def locked(self, *args, __original=original, **kwargs):
            with _lock:
                return __original(self, *args, **kwargs)

        setattr(DynamoDBBackend, name, locked)


def uninstall() -> None:
    from moto.dynamodb.models import DynamoDBBackend

    for name, original in _originals.items():
        setattr(DynamoDBBackend, name, original)
    _originals.clear()
