"""Everything CloudFormation resolves at deploy time, so that a stack's fingerprint sees it.

A stack's template and the parameters the deployer passes are not all it depends on: a parameter of
type `AWS::SSM::Parameter::Value<…>` takes whatever value the SSM parameter holds when the change set
is made (a new layer version, a new role), and a parent stack's outputs may change under an unchanged
child. Two parts cover that:

- `upstream` (static, known before anything is deployed): for each SSM parameter a stack reads, the
  deployer inputs of the stack that publishes it which reach the published value - through `Ref`,
  `Fn::GetAtt` and `Fn::Sub`, and through the properties that make CloudFormation replace a resource
  (a new physical id means a new value). A new layer zip changes the layer version's ARN, so the
  pipelines reading it change with it, in `sdlf status` before the deploy as in the deploy itself.
- `resolved` (read just before the stack is deployed, after its parents): the SSM values and the
  other stacks' outputs it imports (`Fn::ImportValue`) as they are then - changes made out of band, or
  by a parent in the same run. Outputs a stack does not import are left out: a parent's new output must
  not make a change set for a child that never reads it.

Pure functions over parsed templates, plus `InputResolver` with its reads injected.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from functools import lru_cache
from typing import Any

SSM_TYPE_PREFIX = "AWS::SSM::Parameter::Value<"
_SUB_VARIABLE = re.compile(r"\$\{([^!}][^}]*)\}")


def ssm_parameters(template: Mapping, passed: Mapping[str, str]) -> dict[str, str]:
    """Logical id -> SSM parameter name, for every parameter of an SSM type (passed value, else default)."""
    found = {}
    for logical_id, definition in (template.get("Parameters") or {}).items():
        if str(definition.get("Type", "")).startswith(SSM_TYPE_PREFIX):
            name = passed.get(logical_id, definition.get("Default"))
            if name:
                found[logical_id] = str(name)
    return found


def imported_exports(template: Mapping) -> list[str]:
    """Export names the template imports by a literal name (`Fn::ImportValue: name`)."""
    found: set[str] = set()
    pending: list[Any] = [template.get("Resources"), template.get("Outputs"), template.get("Conditions")]
    while pending:
        item = pending.pop()
        if isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, Mapping):
            for key, value in item.items():
                if key == "Fn::ImportValue" and isinstance(value, str):
                    found.add(value)
                else:
                    pending.append(value)
    return sorted(found)


def published_sources(template: Mapping, passed: Mapping[str, str],
                      known: Mapping[str, Any] | None = None) -> dict[str, dict]:
    """SSM parameter name -> the inputs its value comes from, for every `AWS::SSM::Parameter` the template
    creates under a literal name. `known` holds the sources of SSM parameters published upstream, so a value
    derived from a parameter that reads SSM carries what that value came from."""
    known = known or {}
    parameters = template.get("Parameters") or {}
    resources = template.get("Resources") or {}
    ssm = ssm_parameters(template, passed)
    sources = {}
    for resource in resources.values():
        properties = resource.get("Properties") or {}
        if resource.get("Type") != "AWS::SSM::Parameter" or not isinstance(properties.get("Name"), str):
            continue
        reached = _reached_parameters(properties.get("Value"), parameters, resources)
        sources[properties["Name"]] = {
            "parameters": {p: str(passed.get(p, parameters[p].get("Default", ""))) for p in sorted(reached) if p not in ssm},
            "ssm": {ssm[p]: known.get(ssm[p]) for p in sorted(reached) if p in ssm},
        }
    return sources


def upstream_of(template: Mapping, passed: Mapping[str, str], sources: Mapping[str, Any]) -> dict[str, Any]:
    """For each SSM parameter this template reads that a stack of the lake publishes: where its value comes from."""
    names = ssm_parameters(template, passed).values()
    return {name: sources[name] for name in sorted(set(names)) if name in sources}


def _reached_parameters(expression: Any, parameters: Mapping, resources: Mapping) -> set[str]:
    reached: set[str] = set()
    seen: set[str] = set()
    pending = [expression]
    while pending:
        for name in _references(pending.pop()):
            if name in parameters:
                reached.add(name)
            elif name in resources and name not in seen:
                seen.add(name)
                pending.extend(_identity_properties(resources[name]))
    return reached


def _identity_properties(resource: Mapping) -> list[Any]:
    """The property values that decide the resource's physical id: those whose change replaces it
    (cfn-lint's resource schemas), or all of them for a type without a schema."""
    properties = resource.get("Properties") or {}
    create_only = _create_only(str(resource.get("Type", "")))
    if create_only is None:
        return list(properties.values())
    return [value for key, value in properties.items() if key in create_only]


@lru_cache(maxsize=None)
def _create_only(resource_type: str) -> frozenset[str] | None:
    from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

    try:
        schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema("us-east-1", resource_type).schema
    except Exception:  # cfn-lint raises its own not-found types; an unknown type is treated conservatively
        return None
    return frozenset(p.split("/")[2] for p in schema.get("createOnlyProperties", []) if p.count("/") >= 2)


def _references(expression: Any) -> Iterable[str]:
    """Logical ids and parameter names an expression refers to (`Ref`, `Fn::GetAtt`, `Fn::Sub`)."""
    if isinstance(expression, list):
        for item in expression:
            yield from _references(item)
        return
    if not isinstance(expression, Mapping):
        return
    for key, value in expression.items():
        if key == "Ref" and isinstance(value, str):
            yield value
        elif key == "Fn::GetAtt":
            target = value[0] if isinstance(value, list) and value else str(value).split(".")[0]
            yield str(target)
        elif key == "Fn::Sub":
            text, variables = (value[0], value[1] if len(value) > 1 else {}) if isinstance(value, list) else (value, {})
            for name in _SUB_VARIABLE.findall(str(text)):
                name = name.split(".")[0]
                if name not in (variables or {}) and not name.startswith("AWS::"):
                    yield name
            yield from _references(list((variables or {}).values()))
        else:
            yield from _references(value)


class InputResolver:
    """Fills a spec's `resolved` part just before it is deployed (or compared, by `sdlf status`)."""

    def __init__(self, read_ssm: Callable[[Iterable[str]], Mapping[str, str | None]],
                 read_exports: Callable[[], Mapping[str, str]]):
        self.read_ssm = read_ssm
        self.read_exports = read_exports

    def __call__(self, spec):
        names = spec.ssm_parameters
        values = self.read_ssm(names.values()) if names else {}
        exports = self.read_exports() if spec.imports else {}
        return replace(spec, resolved={
            "ssm": {logical_id: values.get(name) for logical_id, name in sorted(names.items())},
            "imports": {name: exports.get(name) for name in spec.imports},
        })
