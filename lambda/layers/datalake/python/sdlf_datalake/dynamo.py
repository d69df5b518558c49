"""Plain Python values <-> DynamoDB attribute values, for modules that use the low-level client."""
from __future__ import annotations

from decimal import Decimal
from typing import Any


def to_attr(value: Any) -> dict[str, Any]:
    from boto3.dynamodb.types import TypeSerializer

    return TypeSerializer().serialize(_decimals(value))


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    from boto3.dynamodb.types import TypeDeserializer

    deserializer = TypeDeserializer()
    return {name: _plain(deserializer.deserialize(value)) for name, value in item.items()}


def _decimals(value: Any) -> Any:
    # DynamoDB numbers must be Decimal; floats are converted through str to keep their digits.
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, list):
        return [_decimals(v) for v in value]
    if isinstance(value, dict):
        return {k: _decimals(v) for k, v in value.items()}
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, set):
        return sorted(_plain(v) for v in value)
    return value


def update_expression(values: dict[str, Any], *, if_not_exists: dict[str, Any] | None = None,
                      remove: tuple[str, ...] = ()) -> tuple[str, dict[str, str], dict[str, Any]]:
    """An UpdateExpression with its names and values: SET `values` (None skipped), SET `if_not_exists` only where
    the attribute is missing, REMOVE `remove` (except what is set). Placeholders are #a/#n/#r and :a/:n, so a
    caller's own condition placeholders do not collide."""
    names: dict[str, str] = {}
    attrs: dict[str, Any] = {}
    sets: list[str] = []
    for index, (name, value) in enumerate(values.items()):
        if value is None:
            continue
        names[f"#a{index}"] = name
        attrs[f":a{index}"] = to_attr(value)
        sets.append(f"#a{index} = :a{index}")
    for index, (name, value) in enumerate((if_not_exists or {}).items()):
        names[f"#n{index}"] = name
        attrs[f":n{index}"] = to_attr(value)
        sets.append(f"#n{index} = if_not_exists(#n{index}, :n{index})")
    expression = "SET " + ", ".join(sets)
    removable = [name for name in remove if name not in values]
    if removable:
        for index, name in enumerate(removable):
            names[f"#r{index}"] = name
        expression += " REMOVE " + ", ".join(f"#r{index}" for index in range(len(removable)))
    return expression, names, attrs
