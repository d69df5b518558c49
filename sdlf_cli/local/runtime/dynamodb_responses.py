"""DynamoDB answers whose result is plain JSON are written with `json.dumps`, not moto's generic serializer.

moto 5.2.5 writes every response by walking the operation's output shape member by member, with a value
picker per member (~1.6 ms for a GetItem of a 19-attribute catalog row, ~0.16 s for a BatchGetItem of 100 rows,
against ~0.01 ms and ~1 ms for `json.dumps` of the same dict): the emulator's single interpreter spent ~5 % of
a stage-A burst there. For DynamoDB's JSON protocol the serializer's output is `json.dumps` of the result with its top-level keys in
the output shape's member order whenever the result holds only items (attribute-value maps: the serializer
keeps a map's order), counts and keys, with JSON types only and no binary attribute value (`B`/`BS`, which the
serializer base64-encodes), and the consumed capacity moto adds to every write and batch read (a structure of
a table name and numbers, which the serializer writes as doubles in its shape's order: so does the patch). The
patch takes that path for the item operations when it can tell so in one pass over the result; anything else
(unprocessed keys, per-index capacity, table descriptions, errors) is moto's. The seam test
(tests/integration/test_emulator_dynamodb_responses.py) compares both answers byte for byte for the lake's
operations and values of every attribute type.
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
_PLAIN_CAPACITY = frozenset(("TableName", "CapacityUnits", "ReadCapacityUnits", "WriteCapacityUnits"))
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
    model = get_service_model("dynamodb")
    orders = {action: tuple(model.operation_model(action).output_shape.members) for action in _ITEM_OPERATIONS}
    capacity_order = tuple(model.shape_for("ConsumedCapacity").members)

    def capacity(value: Any) -> Any:
        """The serializer's ConsumedCapacity (numbers as doubles, shape order), or None for anything else."""
        if type(value) is not dict or not _PLAIN_CAPACITY.issuperset(value) or type(value.get("TableName", "")) is not str:
            return None
        out = {}
        for key in capacity_order:
            if key in value:
                number = value[key]
                if key != "TableName":
                    if type(number) not in (int, float):
                        return None
                    number = float(number)
                out[key] = number
        return out

    def serialized(self: Any, action_result: ActionResult) -> Any:
        result = action_result.result
        order = orders.get(self._get_action()) if type(result) is dict else None
        if order is not None and all(key in _PLAIN_MEMBERS or (key in _EMPTY_MEMBERS and not value)
                                     or key == "ConsumedCapacity" for key, value in result.items()):
            ordered = {key: result[key] for key in order if key in result}
            used = ordered.get("ConsumedCapacity")
            if used is not None:
                used = [capacity(one) for one in used] if type(used) is list else capacity(used)
                if used is None or (type(used) is list and None in used):
                    return moto_serialized(self, action_result)
                ordered["ConsumedCapacity"] = used
                checked = {key: value for key, value in ordered.items() if key != "ConsumedCapacity"}
            else:
                checked = ordered
            if plain(checked):
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
