"""DynamoDB answers whose result is plain JSON are written with `json.dumps`, not moto's generic serializer.

moto 5.2.5 writes every response by walking the operation's output shape member by member, with a value
picker per member (~1.6 ms for a GetItem of a 19-attribute catalog row, ~0.16 s for a BatchGetItem of 100 rows,
against ~0.01 ms and ~1 ms for `json.dumps` of the same dict): the emulator's single interpreter spent ~5 % of
a stage-A burst there. For DynamoDB's JSON protocol the serializer's output is `json.dumps` of the result with its top-level keys in
the output shape's member order whenever the result holds only items (attribute-value maps: the serializer
keeps a map's order), counts and keys, with JSON types only and no binary attribute value (`B`/`BS`, which the
serializer base64-encodes). The patch takes that path for the item operations when it can tell so in one pass
over the result; anything else (consumed capacity, whose integers the serializer writes as doubles, unprocessed
keys, table descriptions, errors) is moto's. The seam test (tests/integration/test_emulator_dynamodb_responses.py)
compares both answers byte for byte for the lake's operations and values of every attribute type.
"""
from __future__ import annotations

import json
from typing import Any, Callable

PATCH_NAME = "dynamodb: plain JSON results are written with json.dumps"
_BINARY = frozenset(("B", "BS"))
_ITEM_OPERATIONS = ("GetItem", "PutItem", "UpdateItem", "DeleteItem", "BatchGetItem", "Query", "Scan")
# Members that hold items, counts or keys; the unprocessed ones only when empty.
_PLAIN_MEMBERS = frozenset(("Item", "Items", "Attributes", "Responses", "Count", "ScannedCount", "LastEvaluatedKey"))
_EMPTY_MEMBERS = frozenset(("UnprocessedKeys", "UnprocessedItems"))
_CONTENT_TYPE = "application/x-amz-json-1.0"


def plain(value: Any) -> bool:
    """Whether moto's JSON serializer would write `value` as `json.dumps` does: strings, integers, booleans,
    lists and maps only (no null), and no binary attribute value."""
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is dict:
            for key, inner in item.items():
                if type(key) is not str or key in _BINARY:
                    return False
                stack.append(inner)
        elif kind is list:
            stack.extend(item)
        elif kind not in (str, int, bool):
            return False  # None, floats, bytes, datetimes, sets, decimals: the serializer's own rules
    return True


def _json_when_plain(original: Any) -> Callable:
    from moto.core.responses import ActionResult, BaseResponse, get_service_model

    moto_serialized = original if callable(original) else BaseResponse.serialized
    orders: dict[str, tuple[str, ...]] = {}  # operation -> its output shape's member names, in order
    for action in _ITEM_OPERATIONS:
        orders[action] = tuple(get_service_model("dynamodb").operation_model(action).output_shape.members)

    def serialized(self: Any, action_result: ActionResult) -> Any:
        result = action_result.result
        order = orders.get(self._get_action()) if type(result) is dict else None
        if order is not None and all(key in _PLAIN_MEMBERS or (key in _EMPTY_MEMBERS and not value)
                                     for key, value in result.items()) and plain(result):
            ordered = {key: result[key] for key in order if key in result}
            headers = {"Content-Type": _CONTENT_TYPE}
            headers.update(self.response_headers)
            return 200, headers, json.dumps(ordered)
        return moto_serialized(self, action_result)

    return serialized


def install() -> None:
    from moto.dynamodb.responses import DynamoHandler

    from sdlf_cli.local.cfn import _patching

    _patching.wrap(DynamoHandler, "serialized", PATCH_NAME, _json_when_plain)


def uninstall() -> None:
    from sdlf_cli.local.cfn import _patching

    _patching.uninstall(PATCH_NAME)
