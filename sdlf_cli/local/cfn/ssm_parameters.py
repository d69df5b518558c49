"""CloudFormation re-resolves SSM-typed parameters on every update, as AWS does.

A parameter of type `AWS::SSM::Parameter::Value<…>` takes the SSM parameter's value at the time of the
change set. On AWS a stack whose template and parameters are unchanged still changes when such a value
did (a new layer version published by another stack): the change set lists the resources that use it
and executing it updates them. moto compares only the template and the parameters as passed (the SSM
names), so it answers "No updates are to be performed." / an empty change set and keeps the old value.

Four named patches: the update validation and the change set's "nothing changed" test also look at the
resolved values, the resource diff modifies every resource that refers to a parameter whose resolved
value changed, and the change set lists those resources (a `ParameterReference` change, as on AWS).
"""
from __future__ import annotations

import re
from typing import Any

from sdlf_cli.local.cfn._patching import wrap

_SSM_TYPE = "AWS::SSM::Parameter::"
_SUB_NAME = re.compile(r"\$\{([^!}][^}]*)\}")


def changed_ssm_parameters(resource_map: Any, template: dict | None = None) -> set[str]:
    """Names of the SSM-typed parameters of `template` (default: the stack's) whose value in SSM now differs
    from the value the stack resolved when it was last created or updated."""
    from moto.ssm.models import ssm_backends

    template = template if template is not None else resource_map._template
    ssm = ssm_backends[resource_map._account_id][resource_map._region_name]
    changed = set()
    for name, slot in (template.get("Parameters") or {}).items():
        value_type = str(slot.get("Type", ""))
        if not value_type.startswith(_SSM_TYPE) or name not in resource_map.resolved_parameters:
            continue
        path = resource_map.input_parameters.get(name, slot.get("Default"))
        parameter = ssm.get_parameter(path) if path else None
        if parameter is None:
            continue  # the update itself will fail on the missing parameter, as on AWS
        value: Any = parameter.value.split(",") if "List" in value_type else parameter.value
        if value != resource_map.resolved_parameters[name]:
            changed.add(name)
    return changed


def _stack_values_changed(stack: Any) -> bool:
    resource_map = getattr(stack, "resource_map", None)
    return resource_map is not None and bool(changed_ssm_parameters(resource_map))


def _make_validate_different_update(original):
    def _validate_different_update(self, incoming_params, stack_body, old_stack):
        if _stack_values_changed(old_stack):
            return None
        return original(self, incoming_params, stack_body, old_stack)

    return _validate_different_update


def _make_has_parameters(original):
    def has_parameters(self, other_parameters):
        return original(self, other_parameters) and not _stack_values_changed(self)

    return has_parameters


def _referenced_names(node: Any) -> set[str]:
    """Parameter and resource names a resource refers to through `Ref` and `Fn::Sub` (moto's own helper
    sees only `Ref`)."""
    found: set[str] = set()
    pending = [node]
    while pending:
        item = pending.pop()
        if isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, dict):
            for key, value in item.items():
                if key == "Ref" and isinstance(value, str):
                    found.add(value)
                elif key == "Fn::Sub":
                    text = value[0] if isinstance(value, list) and value else value
                    if isinstance(text, str):
                        found.update(m.split(".")[0] for m in _SUB_NAME.findall(text))
                    pending.append(value)
                else:
                    pending.append(value)
    return found


def _make_build_resource_diff(original):
    def build_resource_diff(self, other_template, parameters=None):
        actions = original(self, other_template, parameters)
        changed = changed_ssm_parameters(self, other_template)
        if not changed:
            return actions
        for name, resource_json in other_template.get("Resources", {}).items():
            if name in actions["Add"] or name in actions["Modify"]:
                continue
            if changed & _referenced_names(resource_json):
                actions["Modify"].append(name)
        return actions

    return build_resource_diff


def _make_change_set_diff(original):
    def diff(self):
        changes = original(self)
        if self.change_set_type != "UPDATE":
            return changes
        resource_map = self.stack.resource_map
        changed = changed_ssm_parameters(resource_map, self.template_dict or {})
        if not changed:
            return changes
        from moto.cloudformation.models import Change

        from sdlf_cli.local.cfn import replacement

        listed = {c.logical_resource_id for c in changes}
        old = dict(getattr(resource_map, "_resource_json_map", None) or {})
        new = dict((self.template_dict or {}).get("Resources") or {})
        for name, found in replacement.modifications(self.stack.region_name, old, new, changed).items():
            if name in listed:
                continue
            change = Change(action="Modify", logical_resource_id=name, resource_type=new[name].get("Type", ""))
            physical = getattr(resource_map._parsed_resources.get(name), "physical_resource_id", None)
            change.physical_resource_id = physical if isinstance(physical, str) else None
            change.replacement = found.replacement
            change.scope = list(found.scope)
            change.details = [d.to_aws() for d in found.details]
            changes.append(change)
        return changes

    return diff


def install_ssm_parameter_fixes() -> None:
    from moto.cloudformation import models, parsing, responses

    wrap(responses.CloudFormationResponse, "_validate_different_update", "cfn.ssm-values-make-an-update",
         _make_validate_different_update)
    wrap(models.Stack, "has_parameters", "cfn.ssm-values-make-a-change-set", _make_has_parameters)
    wrap(parsing.ResourceMap, "build_resource_diff", "cfn.ssm-values-modify-their-users", _make_build_resource_diff)
    wrap(models.ChangeSet, "diff", "cfn.ssm-values-listed-in-change-sets", _make_change_set_diff)
