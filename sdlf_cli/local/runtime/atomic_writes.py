"""DynamoDB item writes atomic and item reads isolated from them, as they are on AWS.

moto's server answers requests on many threads, and its `update_item` checks a ConditionExpression
and then writes without a lock. Two writers can both pass their condition - e.g. the catalog consumer
("row absent -> RECEIVED") and a stage's post-update ("-> PROCESSED") - and the later write wins,
leaving a row in a state AWS could never produce. Worse for readers: `update_item` on a new key first
stores an item holding only its key, then applies the SET actions one by one, so a `GetItem`, `Query`
or `Scan` answered meanwhile returns a row no write ever produced (the catalog row without its
`status`). One lock around every item write of the backend, and around every read request until its
answer is copied out, restores AWS's per-item atomicity (at the cost of serialising table access,
which the emulator can afford).
"""
from __future__ import annotations

import functools
import threading

# Backend methods that change items.
_WRITES = ("put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item")
# Request handlers that read items: DynamoResult copies the items into plain dicts inside the handler,
# so holding the lock for the handler's duration covers the whole read.
_READS = ("get_item", "batch_get_item", "query", "scan", "transact_get_items")
_lock = threading.RLock()
_originals: dict[tuple[type, str], object] = {}


def _targets() -> list[tuple[type, tuple[str, ...]]]:
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.responses import DynamoHandler

    return [(DynamoDBBackend, _WRITES), (DynamoHandler, _READS)]


def install() -> None:
    for owner, names in _targets():
        for name in names:
            if (owner, name) in _originals or not hasattr(owner, name):
                continue
            original = owner.__dict__.get(name, getattr(owner, name))
            _originals[(owner, name)] = original

            @functools.wraps(original)
            def locked(self, *args, __original=original, **kwargs):
                with _lock:
                    return __original(self, *args, **kwargs)

            setattr(owner, name, locked)


def uninstall() -> None:
    for (owner, name), original in _originals.items():
        setattr(owner, name, original)
    _originals.clear()
