"""What every typed gateway shares: one boto3 client, and botocore's errors turned into the project's.

A gateway method calls `self._call(...)` or `self._pages(...)`; the caller sees `NotFound`, `AccessDenied`,
`Unreachable` or `AwsError` (all `SdlfError`s), never a botocore exception, so no workflow matches error
text or guesses what a code means.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError
from botocore.parsers import ResponseParserError

from sdlf_cli.errors import AccessDenied, AwsError, NotFound, Unreachable

log = logging.getLogger("sdlf.aws")

# Error codes that mean "no such resource", across the services the CLI calls.
NOT_FOUND_CODES = frozenset({
    "404", "NotFound", "NoSuchBucket", "NoSuchKey", "ResourceNotFoundException", "ParameterNotFound",
    "AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist", "EntityNotFoundException",
    "ExecutionDoesNotExist", "StateMachineDoesNotExist", "NotFoundException", "KMSInvalidStateException",
})
ACCESS_DENIED_CODES = frozenset({
    "403", "AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError",
    "InvalidClientTokenId", "ExpiredToken", "ExpiredTokenException", "UnrecognizedClientException",
})


def translate(service: str, operation: str, err: Exception) -> AwsError:
    """The project's error for one failed botocore call."""
    if isinstance(err, ClientError):
        error = err.response.get("Error", {})
        code = str(error.get("Code") or "Error")
        message = str(error.get("Message") or err)
        kind = NotFound if code in NOT_FOUND_CODES else AccessDenied if code in ACCESS_DENIED_CODES else AwsError
        return kind(service, operation, code, message)
    if isinstance(err, EndpointConnectionError):
        return Unreachable(service, operation, type(err).__name__, str(err))
    return AwsError(service, operation, type(err).__name__, str(err))


class Gateway:
    """Base of the typed gateways: `service` names the boto3 client it wraps."""

    service = ""

    def __init__(self, client: Any):
        self.client = client

    def _call(self, operation: str, **kwargs) -> dict:
        log.debug("%s %s %s", self.service, operation, sorted(kwargs))
        try:
            return getattr(self.client, operation)(**kwargs)
        except (ClientError, BotoCoreError, ResponseParserError) as err:
            raise translate(self.service, operation, err) from err

    def _pages(self, operation: str, key: str, **kwargs) -> Iterator[Any]:
        """Every item under `key` of every page."""
        for page in self._whole_pages(operation, **kwargs):
            yield from page.get(key, [])

    def _whole_pages(self, operation: str, **kwargs) -> Iterator[dict]:
        log.debug("%s %s (paginated) %s", self.service, operation, sorted(kwargs))
        try:
            yield from self.client.get_paginator(operation).paginate(**kwargs)
        except (ClientError, BotoCoreError, ResponseParserError) as err:
            raise translate(self.service, operation, err) from err
