"""Lambda: invoking functions synchronously, and the versions of layers."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sdlf_cli.aws.gateway import Gateway


@dataclass(frozen=True)
class Invocation:
    payload: Any  # the function's JSON answer
    error: str | None  # Lambda's FunctionError ("Unhandled") when the function raised

    @property
    def error_message(self) -> str:
        return self.payload.get("errorMessage") if isinstance(self.payload, dict) else str(self.payload)


# Lambda's longest function timeout, and what a synchronous invoke may take beyond it (a cold start).
MAX_FUNCTION_SECONDS = 900
INVOKE_READ_TIMEOUT = MAX_FUNCTION_SECONDS + 60


class Functions(Gateway):
    """`invoker`: the client synchronous invokes go through, one that waits as long as a function may run
    and never retries (`Clients.client("lambda", read_timeout=INVOKE_READ_TIMEOUT)`); by default `client`."""

    service = "lambda"

    def __init__(self, client: Any, invoker: Any = None):
        super().__init__(client)
        self._invoker = Functions(invoker) if invoker is not None else self

    def invoke(self, name: str, event: dict) -> Invocation:
        response = self._invoker._call("invoke", FunctionName=name, Payload=json.dumps(event).encode())
        return Invocation(json.loads(response["Payload"].read() or b"null"), response.get("FunctionError"))

    def invoke_async(self, name: str, event: dict) -> None:
        """InvocationType=Event: Lambda queues the event (retries, then the function's DLQ) and answers 202."""
        self._call("invoke", FunctionName=name, InvocationType="Event", Payload=json.dumps(event).encode())

    def layer_versions(self, layer: str) -> list[str]:
        return [v["LayerVersionArn"] for v in self._pages("list_layer_versions", "LayerVersions", LayerName=layer)]

    def delete_layer_version(self, layer: str, version: int) -> None:
        self._call("delete_layer_version", LayerName=layer, VersionNumber=version)
