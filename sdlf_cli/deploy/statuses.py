"""CloudFormation stack status classes, and picking the root cause out of a failed operation's events."""
from __future__ import annotations

from collections.abc import Iterable

from sdlf_cli.aws.cloudformation import StackEvent
from sdlf_cli.deploy.model import Failure

SUCCESS = frozenset({"CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE"})
# A failed create leaves this; it cannot be updated, only deleted and created again.
RECREATE = frozenset({"ROLLBACK_COMPLETE"})
# Stable, but the last operation failed and was undone; the stack can be updated.
ROLLED_BACK = frozenset({"UPDATE_ROLLBACK_COMPLETE", "IMPORT_ROLLBACK_COMPLETE"})
# Stuck: a person must act first. Value: what to do.
BLOCKED = {
    "ROLLBACK_FAILED": "delete the stack (aws cloudformation delete-stack, retaining the resources that failed) and deploy again",
    "DELETE_FAILED": "look at the DELETE_FAILED events, remove what blocks the deletion, then delete the stack again",
    "UPDATE_ROLLBACK_FAILED": "fix the cause, then run aws cloudformation continue-update-rollback on the stack",
    "IMPORT_ROLLBACK_FAILED": "fix the cause, then run aws cloudformation continue-update-rollback on the stack",
}
REVIEW = "REVIEW_IN_PROGRESS"

# Reasons that only echo another resource's failure.
CASCADE_MARKERS = (
    "Resource creation cancelled",
    "Resource update cancelled",
    "The following resource(s) failed to",
)


def is_in_progress(status: str) -> bool:
    """Busy: wait before doing anything (REVIEW_IN_PROGRESS is a leftover, not an operation)."""
    return status.endswith("_IN_PROGRESS") and status != REVIEW


def is_rollback(status: str) -> bool:
    return "ROLLBACK" in status


def is_cascade(reason: str | None) -> bool:
    return bool(reason) and any(marker in reason for marker in CASCADE_MARKERS)


def root_cause(events: Iterable[StackEvent]) -> Failure | None:
    """The earliest *_FAILED event whose reason is its own (not a cascade); else the earliest
    failure at all; else the stack-level reason that started a rollback. Events oldest first."""
    ordered = sorted(events, key=lambda e: e.timestamp)
    failed = [e for e in ordered if e.status.endswith("_FAILED")]
    own = [e for e in failed if not is_cascade(e.reason)]
    pick = (own or failed or [None])[0]
    if pick is None:
        rollbacks = [e for e in ordered if is_rollback(e.status) and e.reason and e.reason != "User Initiated"]
        pick = rollbacks[0] if rollbacks else None
    if pick is None:
        return None
    return Failure(pick.logical_id, pick.resource_type, pick.status, pick.reason or "(no reason given)")
