"""Stage B's batch lease (one batch of a dataset at a time) on moto's DynamoDB and Step Functions: two routers at
once, a router that crashed, a batch that runs or ended, a batch the lease does not know about."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import boto3
import pytest
from moto import mock_aws

from tests.unit.lake_fakes import create_dataset_table

from sdlf_datalake.stage_b.lease import BatchLease, Busy, Lease, is_batch_of, lease_id
from sdlf_datalake.stage_b.routing import execution_name_b

# moto runs no execution here, whatever an emulator started earlier in this process set (its
# `execute_state_machine`): a started batch stays RUNNING until the test ends it.
NO_EXECUTIONS = {"stepfunctions": {"execute_state_machine": False}}

REGION = "eu-west-1"
TABLE = "lake-executions"
TEAM, DATASET = "engineering", "sales"
BATCH = "0123456789abcdef01234567"


class Clock:
    def __init__(self):
        self.now = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class StaleReads:
    """A DynamoDB client whose reads miss the lease (as if read before the other router wrote it): only the
    conditional write can tell that another router took it."""

    def __init__(self, client):
        self._client = client

    def get_item(self, **kwargs):
        return {}

    def __getattr__(self, name):
        return getattr(self._client, name)


@pytest.fixture
def aws(monkeypatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws(config=NO_EXECUTIONS):
        ddb = boto3.client("dynamodb", region_name=REGION)
        sfn = boto3.client("stepfunctions", region_name=REGION)
        create_dataset_table(ddb, TABLE, "started_at")
        machine = sfn.create_state_machine(
            name="lake-engineering-main-sm-b", roleArn="arn:aws:iam::123456789012:role/states",
            definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
        )["stateMachineArn"]
        yield ddb, sfn, machine


def _lease(aws, clock, dynamodb=None) -> BatchLease:
    ddb, sfn, machine = aws
    return BatchLease(TABLE, machine, dynamodb=dynamodb or ddb, sfn=sfn, clock=clock)


def _start(aws, name: str) -> str:
    _, sfn, machine = aws
    return sfn.start_execution(stateMachineArn=machine, name=name, input="{}")["executionArn"]


def test_of_two_routers_at_once_only_one_gets_the_lease(aws):
    clock = Clock()
    first = _lease(aws, clock).acquire(TEAM, DATASET, 90)
    assert isinstance(first, Lease)
    second = _lease(aws, clock).acquire(TEAM, DATASET, 90)
    assert isinstance(second, Busy) and "another stage-B router of engineering/sales is starting a batch" in second.reason
    # Both read "no lease" at the same moment: the conditional write lets only the first one in.
    raced = _lease(aws, clock, dynamodb=StaleReads(aws[0])).acquire(TEAM, DATASET, 90)
    assert isinstance(raced, Busy) and "at the same moment" in raced.reason


def test_the_started_batch_holds_the_lease_until_it_ends(aws):
    clock = Clock()
    leases = _lease(aws, clock)
    lease = leases.acquire(TEAM, DATASET, 90)
    arn = _start(aws, execution_name_b(DATASET, BATCH))
    assert leases.hand_to(lease, arn) is True
    clock.advance(3600)  # far beyond the router's time: the batch, not the clock, decides
    busy = leases.acquire(TEAM, DATASET, 90)
    assert isinstance(busy, Busy) and busy.execution_arn == arn and "is RUNNING" in busy.reason

    aws[1].stop_execution(executionArn=arn)  # ended (aborted: no error handler ran)
    taken = leases.acquire(TEAM, DATASET, 90)
    assert isinstance(taken, Lease) and taken.holder != lease.holder
    assert leases.hand_to(lease, arn) is False, "the first router no longer holds it"


def test_a_crashed_router_s_lease_lapses_after_its_time(aws):
    clock = Clock()
    _lease(aws, clock).acquire(TEAM, DATASET, 90)  # then the router dies without giving it back
    clock.advance(89)
    assert isinstance(_lease(aws, clock).acquire(TEAM, DATASET, 90), Busy)
    clock.advance(2)
    assert isinstance(_lease(aws, clock).acquire(TEAM, DATASET, 90), Lease)


def test_a_released_lease_is_free_at_once(aws):
    clock = Clock()
    leases = _lease(aws, clock)
    lease = leases.acquire(TEAM, DATASET, 90)
    assert leases.release(lease) is True
    row = aws[0].get_item(TableName=TABLE, Key={"id": {"S": lease_id(TEAM, DATASET)}})["Item"]
    assert "holder" not in row and row["record"]["S"] == "stage-b-lease"
    assert isinstance(leases.acquire(TEAM, DATASET, 90), Lease)


def test_a_batch_just_started_but_not_yet_visible_still_holds_the_lease(aws):
    clock = Clock()
    leases = _lease(aws, clock)
    lease = leases.acquire(TEAM, DATASET, 90)
    unseen = aws[2].replace(":stateMachine:", ":execution:") + ":" + execution_name_b(DATASET, BATCH)
    leases.hand_to(lease, unseen)
    assert isinstance(leases.acquire(TEAM, DATASET, 90), Busy)
    clock.advance(61)
    assert isinstance(leases.acquire(TEAM, DATASET, 90), Lease)


def test_a_running_batch_the_lease_does_not_know_refuses_and_frees_the_lease(aws):
    clock = Clock()
    arn = _start(aws, execution_name_b(DATASET, BATCH, ["sales-b-" + "f" * 24]))
    _start(aws, execution_name_b("sales-b-x", BATCH))  # another dataset's batch does not count
    busy = _lease(aws, clock).acquire(TEAM, DATASET, 90)
    assert isinstance(busy, Busy) and busy.execution_arn == arn
    assert isinstance(_lease(aws, clock).acquire(TEAM, "sales-b-x-other", 90), Lease)
    row = aws[0].get_item(TableName=TABLE, Key={"id": {"S": lease_id(TEAM, DATASET)}})["Item"]
    assert "holder" not in row, "the lease was given back"


def test_batch_names_are_recognised_per_dataset():
    assert is_batch_of(execution_name_b(DATASET, BATCH), DATASET)
    assert is_batch_of(execution_name_b(DATASET, BATCH, ["x"]), DATASET)
    long_name = "d" * 90
    assert is_batch_of(execution_name_b(long_name, BATCH), long_name)
    assert is_batch_of(execution_name_b(long_name, BATCH, ["x"]), long_name)
    assert not is_batch_of(execution_name_b("sales-b-x", BATCH), DATASET)
    assert not is_batch_of(execution_name_b("sales2", BATCH), DATASET)
    assert not is_batch_of(f"{DATASET}-b-{BATCH}-rerun", DATASET)
    assert not is_batch_of("sales-0123", DATASET)


class AppliedThenFailed:
    """A DynamoDB client whose first conditional write is applied and then answered with an error, so the SDK's
    retry of it meets its own write (as a 500 after the write does)."""

    def __init__(self, client):
        self._client = client
        self.failed = False

    def update_item(self, **kwargs):
        response = self._client.update_item(**kwargs)
        if not self.failed:
            self.failed = True
            return self._client.update_item(**kwargs)  # the retry: its condition no longer holds
        return response

    def __getattr__(self, name):
        return getattr(self._client, name)


def test_a_retried_write_that_had_been_applied_keeps_the_lease(aws):
    clock = Clock()
    leases = _lease(aws, clock, dynamodb=AppliedThenFailed(aws[0]))
    lease = leases.acquire(TEAM, DATASET, 90)
    assert isinstance(lease, Lease)
    arn = _start(aws, execution_name_b(DATASET, BATCH))
    flaky_hand = _lease(aws, clock, dynamodb=AppliedThenFailed(aws[0]))
    assert flaky_hand.hand_to(lease, arn) is True
    assert isinstance(leases.acquire(TEAM, DATASET, 90), Busy)
