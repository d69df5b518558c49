"""Resource-level stack events, as CloudFormation writes them while it works on each resource.

moto writes stack-level events only; the stack fixes call `resource_event` around each resource they create,
update, replace or delete, so `describe_stack_events` (and the deployer's live view) shows the resources.
"""
from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


def stack_of(resources_map) -> Any:
    """The moto Stack a resource map belongs to (None when it has none)."""
    from moto.cloudformation.models import cloudformation_backends

    try:
        backend = cloudformation_backends[resources_map._account_id][resources_map._region_name]
        return backend.stacks.get(resources_map.stack_id)
    except (AttributeError, KeyError):
        return None


def resource_event(resources_map, logical_id: str, resource_type: str, status: str, resource: Any = None,
                   reason: str | None = None) -> None:
    from moto.cloudformation.models import Event

    try:
        stack = stack_of(resources_map)
        if stack is None:
            return
        physical = getattr(resource, "physical_resource_id", "") if resource is not None else ""
        stack.events.append(Event(
            stack_id=stack.stack_id, stack_name=stack.name, logical_resource_id=logical_id,
            physical_resource_id=physical if isinstance(physical, str) else "", resource_type=resource_type,
            resource_status=status, resource_status_reason=reason, resource_properties=None,
        ))
    except Exception as exc:  # an event is a report: never let it fail the work it reports on
        log.debug("no %s event for %s: %s", status, logical_id, exc)
