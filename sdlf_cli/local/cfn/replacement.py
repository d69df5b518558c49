"""Whether CloudFormation replaces a changed resource or updates it in place.

Decided as CloudFormation decides it: from the resource provider schemas' `createOnlyProperties`, which
cfn-lint ships. A change to a create-only property (or to a part of one, e.g. `TableInput/Name`) requires
recreation `Always`; any other property change `Never`. The result has the shape of a change set's
`ResourceChange` (`Replacement`, `Scope`, `Details`), so the emulator's change sets say what AWS says.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any

_MISSING = object()  # a path the properties do not reach
_SUB_NAME = re.compile(r"\$\{([A-Za-z0-9_:]+)(?:\.[^}]*)?\}")
# Resource attributes that, changed on their own, make a Modify without touching the physical resource.
_RESOURCE_ATTRIBUTES = ("Metadata", "DeletionPolicy", "UpdateReplacePolicy", "UpdatePolicy", "CreationPolicy")


@functools.lru_cache(maxsize=None)
def _schema(region: str, resource_type: str) -> dict[str, Any]:
    from cfnlint.schema import PROVIDER_SCHEMA_MANAGER, ResourceNotFoundError

    try:
        return PROVIDER_SCHEMA_MANAGER.get_resource_schema(region, resource_type).schema
    except ResourceNotFoundError:  # a type unknown to the region (or a custom one): nothing is create-only
        return {}


def _property_paths(pointers: list[str] | None) -> tuple[tuple[str, ...], ...]:
    paths = []
    for pointer in pointers or []:
        parts = pointer.split("/")[1:]  # "/properties/TableInput/Name" -> properties, TableInput, Name
        if len(parts) > 1 and parts[0] == "properties":
            paths.append(tuple(parts[1:]))
    return tuple(paths)


def create_only_paths(region: str, resource_type: str) -> tuple[tuple[str, ...], ...]:
    return _property_paths(_schema(region, resource_type).get("createOnlyProperties"))


def name_property(region: str, resource_type: str, candidate: str | None = None) -> str | None:
    """The property that names the physical resource, so a new copy under the same name would collide.

    The schema's single primary identifier when it is create-only (TableName, BucketName, RoleName,
    DatabaseName...); else `candidate` (the emulator's idea of the name, e.g. QueueName) when create-only,
    unless every property is: an immutable, versioned resource (a layer version) takes a new version
    under the same name."""
    schema = _schema(region, resource_type)
    create_only = create_only_paths(region, resource_type)
    identifiers = _property_paths(schema.get("primaryIdentifier"))
    if len(identifiers) == 1 and len(identifiers[0]) == 1 and identifiers[0] in create_only:
        return identifiers[0][0]
    if candidate and (candidate,) in create_only:
        mutable = set(schema.get("properties") or {}) - {p[0] for p in create_only}
        readonly = {p[0] for p in _property_paths(schema.get("readOnlyProperties"))}
        if mutable - readonly:
            return candidate
    return None


def _values_at(node: Any, path: tuple[str, ...]) -> list[Any]:
    if not path:
        return [node]
    head, rest = path[0], path[1:]
    if head == "*":
        if not isinstance(node, list):
            return [_MISSING]
        return [value for item in node for value in _values_at(item, rest)]
    if isinstance(node, dict) and head in node:
        return _values_at(node[head], rest)
    return [_MISSING]


def recreating_properties(region: str, resource_type: str, before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Top-level properties whose create-only part differs between two sets of (resolved) properties."""
    names = []
    for path in create_only_paths(region, resource_type):
        if _values_at(before, path) != _values_at(after, path) and path[0] not in names:
            names.append(path[0])
    return names


def references(node: Any) -> dict[str, str]:
    """Names a template fragment refers to -> "Ref" or "GetAtt" (Fn::Sub variables count as either)."""
    found: dict[str, str] = {}

    def walk(item: Any) -> None:
        if isinstance(item, dict):
            for key, value in item.items():
                if key == "Ref" and isinstance(value, str):
                    found.setdefault(value, "Ref")
                elif key == "Fn::GetAtt":
                    target = value[0] if isinstance(value, list) else str(value).split(".")[0]
                    found[target] = "GetAtt"
                elif key == "Fn::Sub":
                    text = value[0] if isinstance(value, list) else value
                    if isinstance(text, str):
                        for match in _SUB_NAME.finditer(text):
                            found.setdefault(match.group(1), "GetAtt" if "." in match.group(0) else "Ref")
                    walk(value)
                else:
                    walk(value)
        elif isinstance(item, list):
            for element in item:
                walk(element)

    walk(node)
    return found


@dataclass(frozen=True)
class Detail:
    attribute: str  # Properties | Tags | Metadata | DeletionPolicy | ...
    name: str | None  # the property, for Properties
    requires_recreation: str  # Always | Conditionally | Never
    evaluation: str  # Static | Dynamic
    change_source: str  # DirectModification | ParameterReference | ResourceReference | ResourceAttribute
    causing_entity: str | None = None

    def to_aws(self) -> dict[str, Any]:
        target: dict[str, Any] = {"Attribute": self.attribute, "RequiresRecreation": self.requires_recreation}
        if self.name:
            target["Name"] = self.name
        detail: dict[str, Any] = {"Target": target, "Evaluation": self.evaluation, "ChangeSource": self.change_source}
        if self.causing_entity:
            detail["CausingEntity"] = self.causing_entity
        return detail


@dataclass(frozen=True)
class Modification:
    replacement: str  # True | Conditional | False
    scope: tuple[str, ...]
    details: tuple[Detail, ...] = field(default=())


def _cause(fragment: Any, changed_parameters: set[str], replaced: set[str]) -> tuple[str, str, str | None] | None:
    """(evaluation, change source, causing entity) when an unchanged fragment still changes value."""
    refs = references(fragment)
    for name in sorted(refs):
        if name in changed_parameters:
            return "Static", "ParameterReference", name
    for name in sorted(refs):
        if name in replaced:
            if refs[name] == "GetAtt":
                return "Dynamic", "ResourceAttribute", name
            return "Dynamic", "ResourceReference", name
    return None


def modification(region: str, before: dict[str, Any], after: dict[str, Any], changed_parameters: set[str],
                 replaced: set[str]) -> Modification | None:
    """What changing resource `before` into `after` (raw template resources) does, or None for nothing.

    `changed_parameters` are the stack parameters whose value changes; `replaced` the logical ids of
    resources this change set may replace: a property that refers to one changes value only at execution
    (Evaluation Dynamic), so a create-only one makes the replacement `Conditional`, as on AWS."""
    resource_type = after.get("Type", "")
    if before.get("Type") != resource_type:
        return Modification("True", ("Properties",))
    old_props, new_props = before.get("Properties") or {}, after.get("Properties") or {}
    create_only = create_only_paths(region, resource_type)
    details: list[Detail] = []
    for name in list(dict.fromkeys([*old_props, *new_props])):
        old_value, new_value = old_props.get(name, _MISSING), new_props.get(name, _MISSING)
        paths = [p for p in create_only if p[0] == name]
        if old_value != new_value:
            evaluation, source, entity = "Static", "DirectModification", None
            recreates = any(_values_at(old_props, p) != _values_at(new_props, p) for p in paths)
        else:
            cause = _cause(new_value, changed_parameters, replaced)
            if cause is None:
                continue
            evaluation, source, entity = cause
            recreates = any(_cause(_values_at(new_props, p), changed_parameters, replaced) for p in paths)
        attribute = "Tags" if name == "Tags" else "Properties"
        details.append(Detail(attribute, None if attribute == "Tags" else name,
                              "Always" if recreates else "Never", evaluation, source, entity))
    for attribute in _RESOURCE_ATTRIBUTES:
        if before.get(attribute) != after.get(attribute):
            details.append(Detail(attribute, None, "Never", "Static", "DirectModification"))
    if not details:
        return None
    if any(d.requires_recreation == "Always" and d.evaluation == "Static" for d in details):
        replacement = "True"
    elif any(d.requires_recreation != "Never" for d in details):
        replacement = "Conditional"
    else:
        replacement = "False"
    scope = tuple(dict.fromkeys(d.attribute for d in details))
    return Modification(replacement, scope, tuple(details))


def modifications(region: str, old_resources: dict[str, Any], new_resources: dict[str, Any],
                  changed_parameters: set[str]) -> dict[str, Modification]:
    """Every resource kept by the change set that changes, with replacements followed through references:
    a resource that refers to a replaced one changes too (Dynamic), and may itself be replaced."""
    replaced: set[str] = set()
    while True:
        result = {}
        for name, after in new_resources.items():
            if name in old_resources:
                found = modification(region, old_resources[name], after, changed_parameters, replaced)
                if found is not None:
                    result[name] = found
        now_replaced = {name for name, m in result.items() if m.replacement != "False"}
        if now_replaced <= replaced:
            return result
        replaced |= now_replaced
