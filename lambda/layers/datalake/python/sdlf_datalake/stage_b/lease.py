"""One stage-B batch of a dataset at a time: a lease row in the executions table, taken by conditional writes.

Why. Routing-b recognises a duplicate stage-B hand-off by its stage object's catalog row (RUNNING in a batch, or
PROCESSED into the table, with the hand-off's etag). A batch marks its rows in its PreUpdate, seconds after
routing-b started it. SQS delivers at least once and a retried send sends twice, so two routers at once (the
schedule firing while `sdlf run-stage-b` runs, a retried invocation) could each put one copy of a duplicated
hand-off in a batch of its own in that window, and its rows would be in the table twice.

Why not only a look at the running executions (states:ListExecutions): two routers can both look, both find none
and both start; and ListExecutions is eventually consistent, so a batch started a moment ago can be missing.
DynamoDB's conditional writes are serialised per item: of two routers at once exactly one takes the lease.

How.
- The lease row `stage-b-lease:<team>/<dataset>` names its holder: first the router that took it (for its own
  run time, `router_seconds`), then the execution it started, for as long as that execution is RUNNING.
- A router finding a live holder refuses to start a batch (no error; the result says which holder). A holder is
  live while its execution is RUNNING (states:DescribeExecution), or, while the execution cannot be seen yet (it
  was just started), for `router_seconds` after it took the lease; a router holder until its time is up (a router
  that crashed cannot release).
- A lease whose holder is no longer live (its execution ended in any way: succeeded, failed, aborted, timed out)
  is taken over with a write conditional on that same holder, so two routers cannot both take it over.
- Besides, with the lease taken, a RUNNING execution of the dataset the lease does not know about (started by
  hand, or before the lease existed) also makes the router give the lease back and refuse: ListExecutions on the
  state machine, names filtered by the dataset's execution-name pattern (`is_batch_of`).

The lease does not hold messages: while a batch runs, hand-offs wait in the stage-B queue for the next period.
"""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable

from sdlf_datalake.dynamo import from_item, to_attr, update_expression
from sdlf_datalake.errors import aws_call, error_code
from sdlf_datalake.executions import NAME_LIMIT
from sdlf_datalake.manifest import BATCH_ID_LENGTH
from sdlf_datalake.support import lazy_client
from sdlf_datalake.timeutil import Clock, iso, parse_time, utc_now

RECORD = "stage-b-lease"
ROUTER, EXECUTION = "router", "execution"
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_BATCH_NAME = re.compile(rf"(.*)-b-[0-9a-f]{{{BATCH_ID_LENGTH}}}(-r[0-9a-f]{{8}})?")


def lease_id(team: str, dataset: str) -> str:
    # ':' and '/' never occur in an execution name, so the row cannot collide with an execution's.
    return f"{RECORD}:{team}/{dataset}"


def is_batch_of(name: str, dataset: str) -> bool:
    """Whether an sm-b execution name is a batch of `dataset` (see routing.execution_name_b): exactly the
    dataset's prefix, `-b-`, a batch id, and an optional redrive suffix."""
    match = _BATCH_NAME.fullmatch(name)
    if not match:
        return False
    suffix = name[match.end(1):]
    return match.group(1) == (_UNSAFE.sub("-", dataset)[: NAME_LIMIT - len(suffix)] or "dataset")


@dataclass(frozen=True)
class Busy:
    """Why no batch may start now."""

    reason: str
    execution_arn: str | None = None  # the running batch, when that is the reason


@dataclass(frozen=True)
class Lease:
    id: str
    holder: str


class BatchLease:
    """The lease of one state machine's batches, per dataset. Clients are injected (tests) or made lazily."""

    def __init__(
        self,
        table_name: str,
        state_machine_arn: str,
        *,
        dynamodb: Any = None,
        sfn: Any = None,
        clock: Clock | None = None,
        token: Callable[[], str] = lambda: uuid.uuid4().hex,
    ):
        self.table_name = table_name
        self.state_machine_arn = state_machine_arn
        self._dynamodb, self._sfn = dynamodb, sfn
        self._clock = clock or utc_now
        self._token = token

    dynamodb = lazy_client("dynamodb", "_dynamodb")
    sfn = lazy_client("stepfunctions", "_sfn")

    def acquire(self, team: str, dataset: str, router_seconds: float) -> Lease | Busy:
        """The lease for this router, or why another batch holds the dataset."""
        key = lease_id(team, dataset)
        now = self._clock()
        row = self._read(key)
        previous = row.get("holder")
        if previous:
            busy = self._live(row, now, team, dataset)
            if busy:
                return busy
        holder = f"{ROUTER}:{self._token()}"
        values = {"record": RECORD, "holder": holder, "holder_kind": ROUTER, "taken_at": iso(now),
                  "live_until": iso(now + timedelta(seconds=router_seconds))}
        if previous:
            condition, condition_values = "#holder = :previous", {":previous": to_attr(previous)}
        else:
            condition, condition_values = "attribute_not_exists(#holder)", {}
        if not self._write(key, values, condition, condition_values, remove=("execution_arn",)) \
                and self._read(key).get("holder") != holder:  # (a retried write that had been applied is ours)
            return Busy(f"another stage-B router of {team}/{dataset} took the batch lease at the same moment")
        lease = Lease(key, holder)
        running = self._running_batches(dataset)
        if running:
            self.release(lease)
            return Busy(f"batch {running[0].rsplit(':', 1)[-1]} of {team}/{dataset} is RUNNING; hand-offs wait in the "
                        "stage-B queue until it ends", running[0])
        return lease

    def hand_to(self, lease: Lease, execution_arn: str) -> bool:
        """The started execution holds the lease until it ends. False if this router no longer held it."""
        name = execution_arn.rsplit(":", 1)[-1]
        values = {"holder": name, "holder_kind": EXECUTION, "execution_arn": execution_arn,
                  "taken_at": iso(self._clock())}
        return self._write(lease.id, values, "#holder = :me", {":me": to_attr(lease.holder)}, remove=("live_until",)) \
            or self._read(lease.id).get("holder") == name

    def release(self, lease: Lease) -> bool:
        """Give the lease back (no batch was started). False if this router no longer held it."""
        return self._write(lease.id, {"released_at": iso(self._clock())}, "#holder = :me",
                           {":me": to_attr(lease.holder)}, remove=("holder", "holder_kind", "live_until", "execution_arn"))

    # --- internals ----------------------------------------------------------------------------
    def _read(self, key: str) -> dict[str, Any]:
        with aws_call(f"reading the stage-B lease {key}"):
            item = self.dynamodb.get_item(TableName=self.table_name, Key={"id": {"S": key}}, ConsistentRead=True).get("Item")
        return from_item(item) if item else {}

    def _live(self, row: dict[str, Any], now, team: str, dataset: str) -> Busy | None:
        holder = str(row["holder"])
        taken_at = _time(row.get("taken_at"))
        if row.get("holder_kind") == EXECUTION and row.get("execution_arn"):
            arn = str(row["execution_arn"])
            status = self._status(arn)
            if status == "RUNNING":
                return Busy(f"batch {holder} of {team}/{dataset} is RUNNING; hand-offs wait in the stage-B queue "
                            "until it ends", arn)
            if status is None and taken_at is not None and now < taken_at + timedelta(seconds=60):
                # Just started: Step Functions may not show it yet.
                return Busy(f"batch {holder} of {team}/{dataset} was started moments ago", arn)
            return None
        live_until = _time(row.get("live_until"))
        if live_until is not None and now < live_until:
            return Busy(f"another stage-B router of {team}/{dataset} is starting a batch (it took the lease at "
                        f"{row.get('taken_at')}; it holds it until {row.get('live_until')} at most)")
        return None

    def _status(self, execution_arn: str) -> str | None:
        try:
            with aws_call(f"describing {execution_arn}"):
                return self.sfn.describe_execution(executionArn=execution_arn)["status"]
        except Exception as exc:
            if error_code(exc) == "ExecutionDoesNotExist":
                return None
            raise

    def _running_batches(self, dataset: str) -> list[str]:
        found: list[str] = []
        paginator = self.sfn.get_paginator("list_executions")
        with aws_call(f"listing the running executions of {self.state_machine_arn}"):
            for page in paginator.paginate(stateMachineArn=self.state_machine_arn, statusFilter="RUNNING"):
                found += [e["executionArn"] for e in page.get("executions", []) if is_batch_of(e["name"], dataset)]
        return found

    def _write(self, key: str, values: dict[str, Any], condition: str, condition_values: dict[str, Any],
               remove: tuple[str, ...] = ()) -> bool:
        expression, names, attrs = update_expression(values, remove=remove)
        names["#holder"] = "holder"
        attrs.update(condition_values)
        try:
            with aws_call(f"writing the stage-B lease {key}"):
                self.dynamodb.update_item(
                    TableName=self.table_name, Key={"id": {"S": key}}, UpdateExpression=expression,
                    ConditionExpression=condition, ExpressionAttributeNames=names,
                    ExpressionAttributeValues=attrs,
                )
        except Exception as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True


def _time(value: Any):
    try:
        return parse_time(value) if isinstance(value, str) and value else None
    except ValueError:
        return None
