"""Errors a pipeline Lambda raises on purpose, named for what Step Functions should do with them.

Step Functions sees a Lambda exception as its class name (`errorType`), and the state machines
match on those names: `TransientError` is retried (with backoff), `InvalidInputError` is not (it
goes straight to the Catch -> error handler -> FAILED row + DLQ). Keep the class names stable.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

# Error codes AWS uses for throttling and for its own failures; all worth retrying.
_TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "SlowDown",
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "InternalServerErrorException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "KMSInternalException",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)


class InvalidInputError(Exception):
    """The input (object, event, registration) cannot be processed; retrying will not help."""


class TransientError(Exception):
    """A temporary failure (throttling, a 5xx, a dropped connection); the caller should retry."""


def is_transient(exc: BaseException) -> bool:
    """True for botocore errors that a retry may cure: throttling, 5xx, connection problems."""
    try:
        from botocore.exceptions import ClientError, ConnectionError as BotoConnectionError, HTTPClientError
    except ImportError:  # pragma: no cover - botocore is always there in Lambda
        return False
    if isinstance(exc, (BotoConnectionError, HTTPClientError)):
        return True
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return error.get("Code") in _TRANSIENT_CODES or int(status) >= 500
    return False


def error_code(exc: BaseException) -> str | None:
    """The AWS error code of a botocore ClientError, else None."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return response.get("Error", {}).get("Code")
    return None


@contextlib.contextmanager
def aws_call(what: str) -> Iterator[None]:
    """Turn a transient botocore failure inside the block into `TransientError` naming `what`.

    Other exceptions pass through unchanged (a permission error is not transient: it fails the
    object with a message an operator can act on).
    """
    try:
        yield
    except (InvalidInputError, TransientError):
        raise
    except Exception as exc:
        if is_transient(exc):
            raise TransientError(f"{what}: {type(exc).__name__}: {exc}") from exc
        raise
