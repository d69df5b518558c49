"""Plumbing the stage modules share: lazily made boto3 clients, the environment a function needs,
the `action` dispatch of a step function's task, and SQS batches."""
from __future__ import annotations

from typing import Any, Callable, Iterator, Mapping, Sequence, TypeVar

from sdlf_datalake.errors import InvalidInputError

# SQS takes at most 10 entries per batch call (send, delete, change visibility, receive).
SQS_BATCH = 10

T = TypeVar("T")


def lazy_client(service: str, attr: str) -> property:
    """A property returning `self.<attr>`, a boto3 client for `service` made on first use (so
    importing a module needs no AWS configuration, and tests inject their own)."""

    def get(self: Any) -> Any:
        if getattr(self, attr) is None:
            import boto3

            setattr(self, attr, boto3.client(service))
        return getattr(self, attr)

    return property(get)


def required_env(env: Mapping[str, str], names: Sequence[str], function: str) -> list[str]:
    """The values of `names` in `env`; RuntimeError naming every one not set."""
    missing = [n for n in names if not env.get(n)]
    if missing:
        raise RuntimeError(f"{function}: environment variables not set: {', '.join(missing)}")
    return [env[n] for n in names]


def run_action(event: Any, actions: Mapping[str, Callable[[Mapping[str, Any]], Any]]) -> Any:
    """Call the step named by the event's `action` with the event."""
    action = event.get("action") if isinstance(event, Mapping) else None
    if isinstance(action, str) and action in actions:
        return actions[action](event)
    names = [repr(name) for name in actions]
    expected = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
    raise InvalidInputError(f"$.action: expected {expected}, got {action!r}")


def sqs_chunks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    """`items` in slices of at most SQS_BATCH."""
    for start in range(0, len(items), SQS_BATCH):
        yield items[start : start + SQS_BATCH]


def failed_entries(failed: list[Mapping[str, Any]]) -> str:
    """The `Failed` entries of an SQS batch response, as one line."""
    return "; ".join(f"{f.get('Id')}: {f.get('Code')} {f.get('Message', '')}".strip() for f in failed)
