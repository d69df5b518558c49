"""Fixes to moto's stack machinery: change-set execution, failures, nested outputs (updates: see `updates`)."""
from __future__ import annotations

import logging
from typing import Any

from sdlf_cli.local.cfn._patching import Patch, install, wrap
from sdlf_cli.local.cfn.events import resource_event

log = logging.getLogger(__name__)


# --- which logical resource failed --------------------------------------------------------------
def _tag_failure(exc: BaseException, logical_id: str, resource_json: dict[str, Any]) -> None:
    # The innermost resource wins: a Ref resolved while creating B may create (and fail on) A.
    if not hasattr(exc, "sdlf_logical_id"):
        exc.sdlf_logical_id = logical_id  # type: ignore[attr-defined]
        exc.sdlf_resource_type = resource_json.get("Type", "")  # type: ignore[attr-defined]


def _make_create(original):
    def parse_and_create_resource(logical_id, resource_json, resources_map, account_id, region_name):
        # a new copy for a replacement is reported by the update as UPDATE_* events
        adding = logical_id not in getattr(resources_map, "_parsed_resources", {})
        try:
            created = original(logical_id, resource_json, resources_map, account_id, region_name)
        except Exception as exc:
            _tag_failure(exc, logical_id, resource_json)
            raise
        if adding and created is not None:
            resource_type = resource_json.get("Type", "")
            resource_event(resources_map, logical_id, resource_type, "CREATE_IN_PROGRESS")
            resource_event(resources_map, logical_id, resource_type, "CREATE_COMPLETE", created)
        return created

    return parse_and_create_resource


def _make_update(original):
    from moto.cloudformation import parsing

    def parse_and_update_resource(logical_id, resource_json, resources_map, account_id, region_name):
        try:
            resource_class = parsing.resource_class_from_type(resource_json["Type"])
            if resource_class is not None and hasattr(
                resource_class.update_from_cloudformation_json, "__isabstractmethod__"
            ):
                # moto returns None for types without an update, which then replaces the resource in the
                # map with None (Ref yields nothing). AWS replaces such resources: create new, delete old.
                return _replace(logical_id, resource_json, resources_map, account_id, region_name)
            return original(logical_id, resource_json, resources_map, account_id, region_name)
        except Exception as exc:
            _tag_failure(exc, logical_id, resource_json)
            raise

    return parse_and_update_resource


def _replace(logical_id, resource_json, resources_map, account_id, region_name):
    from moto.cloudformation import parsing

    old = resources_map._parsed_resources.get(logical_id)
    new = parsing.parse_and_create_resource(logical_id, resource_json, resources_map, account_id, region_name)
    if old is not None and old is not new and not isinstance(old, str):
        try:
            resources_map._delete_resource(old, resource_json)
        except Exception as exc:  # the old copy lingering is harmless; say so rather than fail the update
            log.warning("could not delete replaced %s: %s", logical_id, exc)
    return new


# --- change sets ------------------------------------------------------------------------------------
def _find_change_set(backend, change_set_name: str):
    return backend.describe_change_set(change_set_name)  # raises ValidationError when unknown


def _refresh_outputs_and_exports(backend, stack, change_set) -> None:
    """moto builds Outputs/Exports only in create_stack, and never applies an update's tags; redo that
    after a change set ran."""
    from moto.cloudformation.exceptions import ValidationError

    stack.template = change_set.template
    stack._parse_template()
    stack.description = stack.template_dict.get("Description")
    stack.parameters = dict(change_set.parameters or {})
    if change_set.tags:  # as on AWS: a change set's tags become the stack's (none given: unchanged)
        stack.tags = dict(change_set.tags)
    stack.output_map = stack._create_output_map()
    new_exports = stack.exports
    for name in [n for n, e in backend.exports.items() if e.exporting_stack_id == stack.stack_id]:
        del backend.exports[name]
    for export in new_exports:
        if export.name in backend.exports:
            raise ValidationError(
                stack.stack_id,
                message=f"Export with name {export.name} is already exported by stack "
                f"{backend.exports[export.name].exporting_stack_id}",
            )
        backend.exports[export.name] = export


def record_failure_start(stack, creating: bool, exc: BaseException, adding: bool = False) -> None:
    """The failed resource's event and the stack's *ROLLBACK_IN_PROGRESS, once: before anything is undone,
    as CloudFormation orders them. `adding`: the failed resource was new in this update (CREATE_FAILED)."""
    from moto.cloudformation.models import Event

    if getattr(exc, "sdlf_failure_recorded", False):
        return
    exc.sdlf_failure_recorded = True  # type: ignore[attr-defined]
    reason = str(exc) or exc.__class__.__name__
    logical_id = getattr(exc, "sdlf_logical_id", None)
    if logical_id:
        stack.events.append(
            Event(
                stack_id=stack.stack_id,
                stack_name=stack.name,
                logical_resource_id=logical_id,
                physical_resource_id="",
                resource_type=getattr(exc, "sdlf_resource_type", ""),
                resource_status="CREATE_FAILED" if creating or adding else "UPDATE_FAILED",
                resource_status_reason=reason,
                resource_properties=None,
            )
        )
    if creating:
        stack._add_stack_event("ROLLBACK_IN_PROGRESS", resource_status_reason=f"The following resource(s) failed to create: [{logical_id or '?'}]. Rollback requested by user.")
    else:
        stack._add_stack_event(
            "UPDATE_ROLLBACK_IN_PROGRESS",
            resource_status_reason=f"The following resource(s) failed to update: [{logical_id}]. " if logical_id else reason,
        )


def _record_failure(stack, change_set, exc: BaseException) -> None:
    creating = change_set.change_set_type == "CREATE"
    reason = str(exc) or exc.__class__.__name__
    record_failure_start(stack, creating, exc)
    if creating:
        try:
            stack.resource_map.delete()
        except Exception as cleanup:  # keep the original failure as the story; note the leftover
            log.warning("rollback of %s left resources behind: %s", stack.name, cleanup)
        stack._add_stack_event("ROLLBACK_COMPLETE")
        stack.status = "ROLLBACK_COMPLETE"
    else:
        # The resources were already put back (see `updates`); what could not be undone is said here.
        problems = getattr(exc, "sdlf_rollback_problems", None)
        if problems:
            stack._add_stack_event("UPDATE_ROLLBACK_FAILED",
                                   resource_status_reason="could not undo: " + "; ".join(problems))
            stack.status = "UPDATE_ROLLBACK_FAILED"
        else:
            stack._add_stack_event("UPDATE_ROLLBACK_COMPLETE")
            stack.status = "UPDATE_ROLLBACK_COMPLETE"
    change_set.execution_status = "EXECUTE_FAILED"
    change_set.status_reason = reason


def _make_execute_change_set(original):
    def execute_change_set(self, change_set_name, stack_name=None):
        change_set = _find_change_set(self, change_set_name)
        stack = self.stacks[change_set.stack_id]
        # A stack born in create_change_set got its own empty export map; Fn::ImportValue must see the
        # region's exports, as create_stack gives them.
        stack.cross_stack_resources = self.exports
        stack.resource_map.cross_stack_resources = self.exports
        try:
            original(self, change_set_name, stack_name)
        except Exception as exc:
            # AWS runs change sets asynchronously: the API call succeeds and the stack shows the failure.
            log.warning("change set %s on %s failed: %s", change_set.change_set_name, stack.name, exc)
            _record_failure(stack, change_set, exc)
            return
        _refresh_outputs_and_exports(self, stack, change_set)

    return execute_change_set


# --- Fn::GetAtt on a nested stack's outputs ---------------------------------------------------------
def _stack_get_cfn_attribute(self, attribute_name: str) -> Any:
    from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

    if attribute_name.startswith("Outputs."):
        key = attribute_name[len("Outputs."):]
        output = self.output_map[key] if key in self.output_map.outputs else None
        if output is None:
            raise UnformattedGetAttTemplateException()
        return output.value
    raise UnformattedGetAttTemplateException()


def install_stack_fixes() -> None:
    from moto.cloudformation import models, parsing

    wrap(parsing, "parse_and_create_resource", "cfn.failed-resource-name.create", _make_create)
    wrap(parsing, "parse_and_update_resource", "cfn.update-replaces-types-without-update", _make_update)
    wrap(models.CloudFormationBackend, "execute_change_set", "cfn.change-set-outputs-and-exports", _make_execute_change_set)
    install(Patch("cfn.nested-stack-getatt-outputs", models.Stack, "get_cfn_attribute", _stack_get_cfn_attribute))
