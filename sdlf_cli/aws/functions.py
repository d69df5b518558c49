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


class Functions(Gateway):
    service = "lambda"

    def invoke(self, name: str, event: dict) -> Invocation:
        response = self._call("invoke", FunctionName=name, Payload=json.dumps(event).encode())
        return Invocation(json.loads(response["Payload"].read() or b"null"), response.get("FunctionError"))

    def layer_versions(self, layer: str) -> list[str]:
        return [v["LayerVersionArn"] for v in self._pages("list_layer_versions", "LayerVersions", LayerName=layer)]

    def delete_layer_version(self, layer: str, version: int) -> None:
        self._call("delete_layer_version", LayerName=layer, VersionNumber=version)
