"""Change sets that describe each change as CloudFormation does.

moto lists Add/Modify/Remove by comparing raw template text only: no `Replacement`, no `Details`, and a
change of parameter value alone modifies nothing. This fix rebuilds the list with `Replacement`,
`Scope`, `Details` (`RequiresRecreation`, `Evaluation`, `ChangeSource`, `CausingEntity`) and the physical
id, from the resource provider schemas (see `replacement`).
"""
from __future__ import annotations

from typing import Any

from sdlf_cli.local.cfn import replacement
from sdlf_cli.local.cfn._patching import Patch, install


def _changed_parameters(change_set) -> set[str]:
    if change_set.change_set_type != "UPDATE":
        return set()
    current = dict(change_set.stack.resource_map.input_parameters or {})
    proposed = dict(change_set.parameters or {})
    return {name for name in set(current) | set(proposed) if current.get(name) != proposed.get(name)}


def _physical_id(resource_map, logical_id: str) -> str | None:
    resource = resource_map._parsed_resources.get(logical_id)
    physical = getattr(resource, "physical_resource_id", None)
    return physical if isinstance(physical, str) else None


def _change(action: str, logical_id: str, resource_type: str, physical_id: str | None,
            found: replacement.Modification | None = None):
    from moto.cloudformation.models import Change

    change = Change(action=action, logical_resource_id=logical_id, resource_type=resource_type)
    change.physical_resource_id = physical_id
    change.replacement = found.replacement if found else None
    change.scope = list(found.scope) if found else []
    change.details = [d.to_aws() for d in found.details] if found else []
    return change


def _diff(self) -> list[Any]:
    resource_map = self.stack.resource_map
    old: dict[str, Any] = dict(getattr(resource_map, "_resource_json_map", None) or {})
    new: dict[str, Any] = dict((self.template_dict or {}).get("Resources") or {})
    region = self.stack.region_name
    found = replacement.modifications(region, old, new, _changed_parameters(self))
    changes = [_change("Add", name, res.get("Type", ""), None) for name, res in new.items() if name not in old]
    changes += [_change("Modify", name, new[name].get("Type", ""), _physical_id(resource_map, name), found[name])
                for name in new if name in found]
    changes += [_change("Remove", name, res.get("Type", ""), _physical_id(resource_map, name))
                for name, res in old.items() if name not in new]
    return changes


def install_change_set_fixes() -> None:
    from moto.cloudformation import models

    install(Patch("cfn.change-set-replacement-and-details", models.ChangeSet, "diff", _diff))
