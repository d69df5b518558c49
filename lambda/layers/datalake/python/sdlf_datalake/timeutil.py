"""ISO-8601 UTC time helpers.

Every timestamp the lake writes has the same fixed-width form `YYYY-MM-DDTHH:MM:SS.ffffffZ`, so
timestamps compare correctly as strings (DynamoDB range keys such as `updated_at` rely on that).
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable

_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def iso(moment: datetime) -> str:
    """Fixed-width ISO-8601 UTC string; a naive datetime is taken to be UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime(_FORMAT)


def now_iso(clock: Clock | None = None) -> str:
    return iso((clock or utc_now)())


def parse_time(value: str | int | float) -> datetime:
    """Parse an event time: ISO-8601 (`Z` or offset, optional fraction) or epoch seconds.

    EventBridge sends ISO-8601 (`2024-05-01T10:00:00Z`); some emulators send epoch seconds.
    Raises ValueError for anything else.
    """
    if isinstance(value, bool):
        raise ValueError(f"not a time: {value!r}")
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(float(value), timezone.utc)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"not a time: {value!r}")
    text = value.strip()
    try:
        return datetime.fromtimestamp(float(text), timezone.utc)
    except ValueError:
        pass
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)
