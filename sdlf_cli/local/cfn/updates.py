"""Stack updates applied in CloudFormation's order, with replacement and rollback.

moto's `ResourceMap.update` deletes removed resources first, updates every modified one in place (or lets
the model decide on its own), and leaves whatever it did when something fails. CloudFormation instead:

- creates added resources and updates modified ones; a modification of a create-only property (per the
  provider schema, see `replacement`) creates a new physical resource - and fails, with CloudFormation's
  message, when the resource has a custom name that stays the same;
- re-applies resources that refer to a replaced one;
- only when everything succeeded, cleans up: deletes removed resources (unless `DeletionPolicy: Retain`)
  and the old copies of replaced ones (unless `UpdateReplacePolicy: Retain`);
- when anything fails, rolls back: replaced resources get their old copy back, modified ones their previous
  properties, and added ones are deleted, before the error goes on to mark the stack
  UPDATE_ROLLBACK_COMPLETE.
"""
from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from typing import Any

from sdlf_cli.local.cfn import replacement
from sdlf_cli.local.cfn._patching import Patch, install
from sdlf_cli.local.cfn.events import resource_event, stack_of

log = logging.getLogger(__name__)

MAX_PASSES = 5  # as moto: a resource whose dependency is not ready yet is retried on the next pass
_KEEP_POLICIES = ("Retain", "RetainExceptOnCreate")


class CustomNamedReplacementError(Exception):
    """CloudFormation's refusal to replace a resource whose custom name would stay the same."""

    def __init__(self, name: str, logical_id: str, resource_type: str):
        # named as the failing resource, as stacks._tag_failure names the others
        self.sdlf_logical_id = logical_id
        self.sdlf_resource_type = resource_type
        super().__init__(f"CloudFormation cannot update a stack when a custom-named resource requires replacing. "
                         f"Rename {name} and update the stack again.")


@dataclass
class _Applied:
    kind: str  # "replace" (old copy kept until cleanup) | "modify" (moto's in-place update)
    logical_id: str
    before: Any  # the resource object before this step
    after: Any  # the resource object after it
    prior_json: dict[str, Any]  # the template resource `before` was built from


def _is_resource(value: Any) -> bool:
    return value is not None and not isinstance(value, (str, int, float, bool, list, dict))


def _identity(value: Any) -> Any:
    return getattr(value, "physical_resource_id", id(value)) if _is_resource(value) else value


class _Update:
    """One `ResourceMap.update`: what it applied, so it can be finished or undone."""

    def __init__(self, resource_map, template: dict[str, Any], parameters: dict[str, Any] | None):
        self.map = resource_map
        self.template = template
        self.parameters = parameters
        self.region = resource_map._region_name
        self.account = resource_map._account_id
        self.old_template = resource_map._template
        self.old_parameters = dict(resource_map.input_parameters or {})
        self.old_json = dict(resource_map._resource_json_map or {})
        self.diff = resource_map.build_resource_diff(template, parameters)
        self.applied: list[_Applied] = []
        self.pending_json: dict[str, dict[str, Any]] = {}  # the json each resource was last built from
        self.resolved: dict[str, dict[str, Any] | None] = {
            name: self._resolve_current(name, res) for name, res in self.old_json.items()
        }

    # --- resolving ------------------------------------------------------------------------------------
    def _resolve_current(self, name: str, resource_json: dict[str, Any]) -> dict[str, Any] | None:
        """The properties `name` has now; only when every reference is already built (resolving must not
        create anything)."""
        if not _is_resource(self.map._parsed_resources.get(name)):
            return None
        for ref in replacement.references(resource_json.get("Properties") or {}):
            if ref in self.old_json and ref not in self.map._parsed_resources:
                return None
        return self._clean(resource_json)

    def _clean(self, resource_json: dict[str, Any]) -> dict[str, Any] | None:
        from moto.cloudformation import parsing

        try:
            return parsing.clean_json(copy.deepcopy(resource_json.get("Properties") or {}), self.map)
        except Exception:  # an intrinsic moto cannot resolve: fall back to the model's own judgement
            return None

    # --- applying ---------------------------------------------------------------------------------------
    def run(self) -> None:
        self.map._template = self.template
        if self.parameters:
            self.map.input_parameters = self.parameters
        self._reload()
        self.map._resource_json_map = self.template["Resources"]
        for name in self.diff["Add"]:
            _ = self.map[name]  # builds it (and whatever it refers to)
        self._apply_all(list(self.diff["Modify"]))
        self._propagate()

    def _reload(self) -> None:
        self.map.load_mapping()
        self.map.load_parameters()
        self.map.load_conditions()

    def _apply_all(self, names: list[str]) -> None:
        # Same retry shape as moto: a modification that needs another one first waits for the next pass.
        remaining, last_error = list(names), None
        for _ in range(MAX_PASSES):
            if not remaining:
                return
            for name in list(remaining):
                try:
                    self.apply(name)
                except CustomNamedReplacementError:
                    raise
                except Exception as exc:
                    last_error = exc
                else:
                    remaining.remove(name)
        if remaining and last_error is not None:
            raise last_error

    def apply(self, name: str) -> None:
        from moto.cloudformation import parsing

        resource_json = self.map._resource_json_map[name]
        before = self.map._parsed_resources.get(name)
        prior_json = self.pending_json.get(name, self.old_json.get(name, resource_json))
        prior = self.resolved.get(name)
        new_properties = self._clean(resource_json)
        resource_type = resource_json.get("Type", "")
        recreating = []
        if prior is not None and new_properties is not None:
            recreating = replacement.recreating_properties(self.region, resource_type, prior, new_properties)
        if prior_json.get("Type") != resource_type:
            recreating = recreating or ["Type"]
        if recreating and _is_resource(before):
            self._refuse_same_custom_name(name, resource_type, prior, new_properties)
            resource_event(self.map, name, resource_type, "UPDATE_IN_PROGRESS", before,
                           "Requested update requires the creation of a new physical resource; hence creating one.")
            after = parsing.parse_and_create_resource(name, resource_json, self.map, self.account, self.region)
            kind = "replace"
        else:
            resource_event(self.map, name, resource_type, "UPDATE_IN_PROGRESS", before)
            after = parsing.parse_and_update_resource(name, resource_json, self.map, self.account, self.region)
            kind = "modify"
        resource_event(self.map, name, resource_type, "UPDATE_COMPLETE", after)
        if after is not None:
            self.map._parsed_resources[name] = after
        self.applied.append(_Applied(kind, name, before, after, prior_json))
        self.pending_json[name] = resource_json
        self.resolved[name] = new_properties

    def _refuse_same_custom_name(self, logical_id: str, resource_type: str, prior: dict | None,
                                 new: dict | None) -> None:
        from moto.cloudformation import parsing

        prop = replacement.name_property(self.region, resource_type,
                                         parsing.resource_name_property_from_type(resource_type))
        if not prop or not new or prop not in new:
            return  # a generated name: the new copy gets a new one
        if prior is not None and prior.get(prop) == new[prop]:
            raise CustomNamedReplacementError(str(new[prop]), logical_id, resource_type)

    def _propagate(self) -> None:
        """CloudFormation re-resolves Ref/GetAtt of a replaced resource in every resource that uses it;
        moto only compares template text. Re-apply dependants until no identity changes."""
        changed = {a.logical_id for a in self.applied if _identity(a.before) != _identity(a.after)}
        done: set[str] = set()
        while changed:
            next_changed: set[str] = set()
            for name, resource_json in self.map._resource_json_map.items():
                if name in done or name not in self.map._parsed_resources or name in self.diff["Add"]:
                    continue
                if not (set(replacement.references(resource_json)) & changed):
                    continue
                old = _identity(self.map._parsed_resources[name])
                self.apply(name)
                done.add(name)
                if _identity(self.map._parsed_resources.get(name)) != old:
                    next_changed.add(name)
            changed = next_changed

    # --- finishing ------------------------------------------------------------------------------------
    def clean_up(self) -> None:
        """After success: removed resources and the old copies of replaced ones go, unless retained.
        As on AWS, a failure here is reported but does not fail the update."""
        doomed: list[tuple[str, Any, dict[str, Any]]] = []
        for name in self.diff["Remove"]:
            resource = self.map._parsed_resources.pop(name, None)
            resource_json = self.old_json[name]
            if not _is_resource(resource):
                continue
            if resource_json.get("DeletionPolicy") in _KEEP_POLICIES:
                resource_event(self.map, name, resource_json.get("Type", ""), "DELETE_SKIPPED", resource)
            else:
                doomed.append((name, resource, resource_json))
        for step in self.applied:
            if step.kind == "replace" and _is_resource(step.before):
                if step.prior_json.get("UpdateReplacePolicy") in _KEEP_POLICIES:
                    resource_event(self.map, step.logical_id, step.prior_json.get("Type", ""), "DELETE_SKIPPED",
                                   step.before)
                else:
                    doomed.append((step.logical_id, step.before, step.prior_json))
        for name, problem in self._delete_all(doomed):
            log.warning("the update succeeded but %s could not be deleted: %s", name, problem)

    def _delete_all(self, doomed: list[tuple[str, Any, dict[str, Any]]]) -> list[tuple[str, Exception]]:
        remaining, problems = list(doomed), {}
        for _ in range(MAX_PASSES):  # dependants first: what fails now may go once they are gone
            for item in list(remaining):
                try:
                    self.map._delete_resource(item[1], item[2])
                except Exception as exc:
                    problems[item[0]] = exc
                else:
                    remaining.remove(item)
                    problems.pop(item[0], None)
                    resource_type = item[2].get("Type", "")
                    resource_event(self.map, item[0], resource_type, "DELETE_IN_PROGRESS", item[1])
                    resource_event(self.map, item[0], resource_type, "DELETE_COMPLETE", item[1])
            if not remaining:
                break
        return [(name, problems[name]) for name, _, _ in remaining if name in problems]

    def roll_back(self) -> list[str]:
        """Puts every resource back as it was before the update; returns what could not be undone."""
        from moto.cloudformation import parsing

        self.map._template = self.old_template
        self.map.input_parameters = self.old_parameters
        if self.old_json:  # a stack born in a change set has no template to reload yet
            self._reload()
        self.map._resource_json_map = self.old_json
        doomed: list[tuple[str, Any, dict[str, Any]]] = []
        problems: list[str] = []
        # The map first points at the old copies again, so re-applied properties resolve against them.
        replaced_at: dict[str, int] = {}
        for index, step in reversed(list(enumerate(self.applied))):
            if step.kind == "replace" and _is_resource(step.after):
                doomed.append((step.logical_id, step.after, self.pending_json.get(step.logical_id, step.prior_json)))
                self.map._parsed_resources[step.logical_id] = step.before
                replaced_at[step.logical_id] = index
        for name in self.diff["Add"]:
            resource = self.map._parsed_resources.pop(name, None)
            if _is_resource(resource):
                doomed.append((name, resource, self.template["Resources"][name]))
        for index, step in reversed(list(enumerate(self.applied))):
            if step.kind != "modify" or replaced_at.get(step.logical_id, len(self.applied)) < index:
                continue  # a modification of a replacement copy goes with the copy
            self.map._parsed_resources[step.logical_id] = step.after
            try:
                restored = parsing.parse_and_update_resource(step.logical_id, step.prior_json, self.map,
                                                             self.account, self.region)
            except Exception as exc:
                problems.append(f"{step.logical_id}: {exc}")
                continue
            if restored is not None:
                self.map._parsed_resources[step.logical_id] = restored
            resource_type = step.prior_json.get("Type", "")
            resource_event(self.map, step.logical_id, resource_type, "UPDATE_IN_PROGRESS", step.after)
            resource_event(self.map, step.logical_id, resource_type, "UPDATE_COMPLETE",
                           self.map._parsed_resources.get(step.logical_id))
        problems += [f"{name}: {exc}" for name, exc in self._delete_all(doomed)]
        return problems


def update(self, template: dict[str, Any], parameters: dict[str, Any] | None = None) -> None:
    run = _Update(self, template, parameters)
    try:
        run.run()
    except Exception as exc:
        stack = stack_of(self)
        if stack is not None:
            from sdlf_cli.local.cfn.stacks import record_failure_start

            record_failure_start(stack, creating=not run.old_json, exc=exc,
                                 adding=getattr(exc, "sdlf_logical_id", None) not in run.old_json)
        problems = run.roll_back()
        if problems:
            exc.sdlf_rollback_problems = problems  # type: ignore[attr-defined]
        raise
    run.clean_up()


def install_update_fixes() -> None:
    from moto.cloudformation import parsing

    install(Patch("cfn.update-replaces-rolls-back-and-cleans-up", parsing.ResourceMap, "update", update))
