"""Create or update one stack through a change set, or plan it (same path, not executed).

[resolve deploy-time inputs] -> describe -> (wait if busy / delete a dead leftover) -> fingerprint check -> change set -> wait ->
list changes -> [plan: delete the change set | deploy: execute, stream new events, wait] -> result.

Everything slow is injected (`sleep`, `clock`), so tests run the whole flow instantly. The same
code deploys to AWS and to the embedded emulator; the emulator's quirks (final states on the first
poll, stack-level events only, synchronous "No updates are to be performed.", a failed execution
raised synchronously or left *_IN_PROGRESS) are handled here rather than special-cased by target.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timezone

from sdlf_cli.aws.cloudformation import (
    ChangeSetInfo,
    CloudFormationError,
    CloudFormationGateway,
    NoChangesError,
    StackEvent,
    StackInfo,
)
from sdlf_cli.deploy import statuses
from sdlf_cli.deploy.model import FINGERPRINT_TAG, Change, Failure, StackResult, StackSpec, is_iam_change
from sdlf_cli.deploy.reporter import Reporter
from sdlf_cli.errors import DeployError

DEFAULT_WAIT_TIMEOUT = 60 * 60.0

_CHANGE_SET_BUSY = ("CREATE_PENDING", "CREATE_IN_PROGRESS")


class WaitTimeout(DeployError):
    pass


class _Failed(Exception):
    """Internal: stop this stack with a failed result."""

    def __init__(self, message: str, failure: Failure | None = None):
        super().__init__(message)
        self.message = message
        self.failure = failure


def change_set_name(now: datetime | None = None) -> str:
    now = now or datetime.now(timezone.utc)
    return "sdlf-" + now.strftime("%Y%m%dT%H%M%S") + f"-{now.microsecond:06d}"


class StackDeployer:
    def __init__(
        self,
        cfn_gateway: CloudFormationGateway,
        reporter: Reporter,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        poll_interval: float = 3.0,
        wait_timeout: float = DEFAULT_WAIT_TIMEOUT,
        now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
        resolve: Callable[[StackSpec], StackSpec] | None = None,
    ):
        self.cfn = cfn_gateway
        # Fills in what CloudFormation will resolve (SSM values, imported exports) once the parents are done.
        self.resolve = resolve
        self.reporter = reporter
        self.sleep = sleep
        self.clock = clock
        self.poll_interval = poll_interval
        self.wait_timeout = wait_timeout
        self.now = now

    # --- public --------------------------------------------------------------------------
    def deploy(self, spec: StackSpec) -> StackResult:
        return self._run(spec, execute=True)

    def plan(self, spec: StackSpec) -> StackResult:
        return self._run(spec, execute=False)

    def delete(self, spec: StackSpec) -> StackResult:
        """Delete the stack named by `spec` (only name and layer matter), streaming its events; a stack that
        is busy is waited for first. `deleted`, `unchanged` when there was no such stack, or `failed`."""
        started = self.clock()
        self.reporter.stack_started(spec)
        try:
            result = self._delete(spec)
        except _Failed as failed:
            result = StackResult(spec.name, spec.layer, "failed", failure=failed.failure, message=failed.message)
        except DeployError as err:
            result = StackResult(spec.name, spec.layer, "failed", message=str(err))
        result = _with_duration(result, self.clock() - started)
        self.reporter.stack_finished(result)
        return result

    # --- flow ----------------------------------------------------------------------------
    def _run(self, spec: StackSpec, execute: bool) -> StackResult:
        started = self.clock()
        self.reporter.stack_started(spec)
        try:
            if self.resolve is not None:
                spec = self.resolve(spec)
            result = self._deploy(spec, execute) if execute else self._plan(spec)
            if execute and result.ok and spec.termination_protection is not None:
                self._protect(spec)
        except _Failed as failed:
            result = StackResult(spec.name, spec.layer, "failed", failure=failed.failure, message=failed.message)
        except DeployError as err:
            result = StackResult(spec.name, spec.layer, "failed", message=str(err))
        result = _with_duration(result, self.clock() - started)
        self.reporter.stack_finished(result)
        return result

    def _prepare(self, spec: StackSpec, execute: bool) -> StackInfo | None:
        """The stack as it can be changed now: busy ones waited for, dead leftovers removed."""
        stack = self.cfn.describe_stack(spec.name)
        if stack is not None and statuses.is_in_progress(stack.status):
            self.reporter.status(spec.name, f"stack is {stack.status}: waiting for that operation to finish first")
            stack, _ = self._wait_stack(spec.name, stack.stack_id, self.cfn.latest_event_id(stack.stack_id))
        if stack is None:
            return None
        if stack.status in statuses.BLOCKED:
            raise _Failed(f"stack is {stack.status} and cannot be changed: {statuses.BLOCKED[stack.status]}")
        if stack.status in statuses.RECREATE or stack.status == statuses.REVIEW:
            why = (
                "stack is ROLLBACK_COMPLETE (its first create failed)"
                if stack.status in statuses.RECREATE
                else "stack is a REVIEW_IN_PROGRESS leftover (a change set never executed)"
            )
            if not execute:
                self.reporter.status(spec.name, f"{why}: deploy will delete it and create it again")
                return stack
            self.reporter.status(spec.name, f"{why}: deleting it and creating it again")
            self._delete_and_wait(spec.name, stack)
            return None
        return stack

    def _deploy(self, spec: StackSpec, execute: bool = True) -> StackResult:
        fingerprint = spec.fingerprint()
        stack = self._prepare(spec, execute)
        if self._same_fingerprint(stack, fingerprint):
            return StackResult(
                spec.name, spec.layer, "unchanged", outputs=dict(stack.outputs),
                message="unchanged: same template, parameters and tags as deployed (no change set needed)",
            )
        reviewed = self._reviewed_change_set(spec, stack, fingerprint)
        if reviewed is None:
            return self._unchanged(spec, stack)
        change_type, change_set, stack_id, review_leftover = reviewed
        changes = _changes(change_set)

        marker = self.cfn.latest_event_id(stack_id)
        self.reporter.status(spec.name, f"executing change set {change_set.name} ({len(changes)} change(s))")
        try:
            self.cfn.execute_change_set(change_set.change_set_id)
        except CloudFormationError as err:
            # The emulator raises resource failures from ExecuteChangeSet itself.
            events = self._stream_events(spec.name, stack_id, marker)[1]
            failure = statuses.root_cause(events) or Failure(
                spec.name, "AWS::CloudFormation::Stack", f"{change_type}_FAILED", err.reason
            )
            raise _Failed(f"{change_type.lower()} failed: {failure}", failure) from err
        final, events = self._wait_stack(spec.name, stack_id, marker, change_set.change_set_id)
        if final is not None and final.status in statuses.SUCCESS:
            status = "created" if change_type == "CREATE" else "updated"
            return StackResult(
                spec.name, spec.layer, status, outputs=dict(final.outputs), changes=changes,
                message=f"{final.status} ({len(changes)} change(s))",
            )
        failure = statuses.root_cause(events) or self._fallback_failure(spec.name, final, change_set.change_set_id)
        ended = final.status if final is not None else "DELETE_COMPLETE"
        raise _Failed(f"{change_type.lower()} failed, stack is {ended}: {failure}", failure)

    def _reviewed_change_set(self, spec: StackSpec, stack, fingerprint: str):
        """Create the stack's change set: (change type, change set, stack id, the stack a discarded CREATE
        change set leaves in REVIEW or None); None when there is nothing to change (the change set, if
        any, is discarded). A change set that failed is discarded and raised as _Failed."""
        change_type = "UPDATE" if stack is not None else "CREATE"
        created = self._create_change_set(spec, change_type, fingerprint)
        if created is None:
            return None
        change_set, stack_id = created
        review_leftover = stack_id if change_type == "CREATE" else None
        if change_set.has_no_changes:
            self._discard(change_set, review_leftover)
            return None
        if change_set.status != "CREATE_COMPLETE":
            self._discard(change_set, review_leftover)
            raise _Failed(f"change set {change_set.name} {change_set.status}: {change_set.status_reason or 'no reason given'}")
        return change_type, change_set, stack_id, review_leftover

    def _plan(self, spec: StackSpec) -> StackResult:
        fingerprint = spec.fingerprint()
        stack = self._prepare(spec, execute=False)
        if self._same_fingerprint(stack, fingerprint):
            return StackResult(
                spec.name, spec.layer, "unchanged", outputs=dict(stack.outputs),
                message="unchanged: same template, parameters and tags as deployed",
            )
        if stack is not None and (stack.status in statuses.RECREATE or stack.status == statuses.REVIEW):
            # A change set cannot be made against it; deploy will recreate it from scratch.
            return StackResult(
                spec.name, spec.layer, "planned",
                message=f"stack is {stack.status}: deploy will delete it and create it again",
            )
        reviewed = self._reviewed_change_set(spec, stack, fingerprint)
        if reviewed is None:
            return self._unchanged(spec, stack)
        change_type, change_set, stack_id, review_leftover = reviewed
        changes = _changes(change_set)
        self._discard(change_set, review_leftover)
        return StackResult(
            spec.name, spec.layer, "planned", changes=changes,
            message=_plan_summary(change_type, changes),
        )

    def _delete(self, spec: StackSpec) -> StackResult:
        stack = self.cfn.describe_stack(spec.name)
        if stack is not None and statuses.is_in_progress(stack.status):
            self.reporter.status(spec.name, f"stack is {stack.status}: waiting for that operation to finish first")
            stack, _ = self._wait_stack(spec.name, stack.stack_id, self.cfn.latest_event_id(stack.stack_id))
        if stack is None:
            return StackResult(spec.name, spec.layer, "unchanged", message="not deployed: nothing to delete")
        marker = self.cfn.latest_event_id(stack.stack_id)
        self.reporter.status(spec.name, f"deleting the {stack.status} stack")
        try:
            self.cfn.delete_stack(stack.stack_id)
        except CloudFormationError as err:
            events = self._stream_events(spec.name, stack.stack_id, marker)[1]
            failure = statuses.root_cause(events) or Failure(spec.name, "AWS::CloudFormation::Stack", "DELETE_FAILED", err.reason)
            raise _Failed(f"delete failed: {failure}", failure) from err
        final, events = self._wait_stack(spec.name, stack.stack_id, marker)
        if final is None:
            return StackResult(spec.name, spec.layer, "deleted", message=f"DELETE_COMPLETE (was {stack.status})")
        failure = statuses.root_cause(events) or Failure(
            spec.name, "AWS::CloudFormation::Stack", final.status, final.status_reason or f"stack is {final.status}")
        hint = statuses.BLOCKED.get(final.status, "")
        raise _Failed(f"delete failed, stack is {final.status}: {failure}" + (f"; {hint}" if hint else ""), failure)

    # --- steps ---------------------------------------------------------------------------
    def _protect(self, spec: StackSpec) -> None:
        """Termination protection as the spec asks (change sets cannot set it)."""
        stack = self.cfn.describe_stack(spec.name)
        if stack is not None and stack.termination_protection != spec.termination_protection:
            self.cfn.update_termination_protection(stack.stack_id, bool(spec.termination_protection))
            self.reporter.status(spec.name, "termination protection " + ("on" if spec.termination_protection else "off"))

    @staticmethod
    def _same_fingerprint(stack: StackInfo | None, fingerprint: str) -> bool:
        return (
            stack is not None
            and stack.status in statuses.SUCCESS
            and stack.tags.get(FINGERPRINT_TAG) == fingerprint
        )

    def _unchanged(self, spec: StackSpec, stack: StackInfo | None) -> StackResult:
        return StackResult(
            spec.name, spec.layer, "unchanged", outputs=dict(stack.outputs) if stack else {},
            message="unchanged: CloudFormation found no changes",
        )

    def _create_change_set(
        self, spec: StackSpec, change_type: str, fingerprint: str
    ) -> tuple[ChangeSetInfo, str] | None:
        """The finished change set and the stack id; None when the emulator refused a no-op."""
        name = change_set_name(self.now())
        self.reporter.status(spec.name, f"creating {change_type} change set {name}")
        try:
            change_set_id, stack_id = self.cfn.create_change_set(
                stack_name=spec.name,
                change_set_name=name,
                change_set_type=change_type,
                parameters=spec.parameters,
                tags={**spec.tags, FINGERPRINT_TAG: fingerprint},
                capabilities=spec.capabilities,
                template_body=None if spec.template_url else spec.template_body,
                template_url=spec.template_url,
                description=f"sdlf {spec.layer} {spec.name}",
                role_arn=spec.role_arn,
            )
        except NoChangesError:
            return None
        deadline = self.clock() + self.wait_timeout
        while True:
            change_set = self.cfn.describe_change_set(change_set_id)
            if change_set.status not in _CHANGE_SET_BUSY:
                return change_set, stack_id or change_set.stack_id
            if self.clock() >= deadline:
                raise WaitTimeout(
                    f"{spec.name}: change set {name} still {change_set.status} after {_fmt_secs(self.wait_timeout)}"
                )
            self.reporter.status(spec.name, f"change set {name} {change_set.status}")
            self.sleep(self.poll_interval)

    def _discard(self, change_set: ChangeSetInfo, review_stack_id: str | None) -> None:
        """Delete a change set that will not run, and the empty REVIEW_IN_PROGRESS stack a CREATE
        change set leaves behind."""
        self.cfn.delete_change_set(change_set.change_set_id)
        if review_stack_id:
            self.cfn.delete_stack(review_stack_id)

    def _delete_and_wait(self, name: str, stack: StackInfo) -> None:
        marker = self.cfn.latest_event_id(stack.stack_id)
        self.cfn.delete_stack(stack.stack_id)
        final, events = self._wait_stack(name, stack.stack_id, marker)
        if final is not None:
            failure = statuses.root_cause(events)
            raise _Failed(f"could not delete the {stack.status} stack, it is {final.status}: {failure or final.status_reason}", failure)

    def _stream_events(
        self, name: str, stack_id: str, marker: str | None
    ) -> tuple[str | None, list[StackEvent]]:
        """Send the events newer than `marker` to the reporter, oldest first; return the new marker."""
        new = self.cfn.describe_stack_events(stack_id, stop_at_event_id=marker)
        new.reverse()
        for event in new:
            self.reporter.event(name, event)
        return (new[-1].event_id if new else marker), new

    def _wait_stack(
        self, name: str, stack_id: str, marker: str | None, change_set_id: str | None = None
    ) -> tuple[StackInfo | None, list[StackEvent]]:
        """Poll until the stack leaves *_IN_PROGRESS (None once deleted), streaming new events.
        Returns the final stack and every event seen, oldest first."""
        deadline = self.clock() + self.wait_timeout
        seen: list[StackEvent] = []
        while True:
            # Status first, then events: the events then include whatever made the status final.
            stack = self.cfn.describe_stack(stack_id)
            marker, new = self._stream_events(name, stack_id, marker)
            seen.extend(new)
            if stack is None or not statuses.is_in_progress(stack.status):
                return stack, seen
            if change_set_id and not statuses.is_rollback(stack.status):
                # The emulator can leave a failed execution *_IN_PROGRESS for good; the change
                # set says it failed. (On AWS a failed execution is already rolling back.)
                change_set = self.cfn.describe_change_set(change_set_id, include_changes=False)
                if change_set.execution_status == "EXECUTE_FAILED":
                    return stack, seen
            if self.clock() >= deadline:
                raise WaitTimeout(
                    f"{name}: still {stack.status} after {_fmt_secs(self.wait_timeout)}; stopped waiting (the "
                    "operation goes on in CloudFormation). Check the stack's events, then run the deploy again."
                )
            self.reporter.status(name, f"{stack.status}, waiting")
            self.sleep(self.poll_interval)

    def _fallback_failure(self, name: str, final: StackInfo | None, change_set_id: str) -> Failure:
        """No failed resource event (the emulator only records stack-level events): use the
        stack's or the change set's own reason."""
        reason = final.status_reason if final is not None else None
        if not reason:
            try:
                reason = self.cfn.describe_change_set(change_set_id, include_changes=False).status_reason
            except CloudFormationError:
                reason = None
        status = final.status if final is not None else "DELETE_COMPLETE"
        return Failure(name, "AWS::CloudFormation::Stack", status, reason or f"stack ended {status} with no failure event")


def _changes(change_set: ChangeSetInfo) -> list[Change]:
    return [
        Change(c.action, c.logical_id, c.resource_type, c.replacement,
               is_iam_change(c.action, c.resource_type, c.changed_properties), c.recreates)
        for c in change_set.changes
    ]


def _plan_summary(change_type: str, changes: list[Change]) -> str:
    counts: dict[str, int] = {}
    for change in changes:
        counts[change.action] = counts.get(change.action, 0) + 1
    parts = [f"{n} {action.lower()}" for action, n in sorted(counts.items())]
    destructive = sum(c.destructive for c in changes)
    iam = sum(c.is_iam for c in changes)
    at_risk = sum(c.data_at_risk for c in changes)
    if destructive:
        parts.append(f"{destructive} destructive")
    if at_risk:
        parts.append(f"{at_risk} with data at risk")
    if iam:
        parts.append(f"{iam} IAM")
    verb = "create stack" if change_type == "CREATE" else "update stack"
    return f"{verb}: " + (", ".join(parts) if parts else "no resource changes")


def _with_duration(result: StackResult, duration: float) -> StackResult:
    return StackResult(
        result.name, result.layer, result.status, result.outputs, result.changes, result.failure, duration, result.message
    )


def _fmt_secs(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
