"""The executions table (sdlf_datalake.executions): start and finish times, and what finishing costs."""
from __future__ import annotations

import collections
from datetime import datetime, timedelta, timezone

import boto3
import pytest
from moto import mock_aws

from sdlf_datalake.executions import ExecutionsRepository
from tests.unit.lake_fakes import create_dataset_table

T0 = datetime(2024, 5, 1, 10, 0, 0, 123000, tzinfo=timezone.utc)
# $$.Execution.StartTime as Step Functions gives it (milliseconds, Z), and as moto's interpreter does (an offset).
AWS_START = "2024-05-01T10:00:00.123Z"
MOTO_START = "2024-05-01T10:00:00.123000+00:00"


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def table(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        client = boto3.client("dynamodb", region_name="eu-west-1")
        create_dataset_table(client, "executions", "started_at")
        calls: collections.Counter = collections.Counter()
        client.meta.events.register("before-call", lambda model, **_: calls.update([model.name]))
        clock = Clock(T0 + timedelta(seconds=1))
        yield ExecutionsRepository("executions", client=client, clock=clock), clock, calls


@pytest.mark.parametrize("started_at", [AWS_START, MOTO_START])
def test_the_start_time_from_the_state_machine_gives_started_at_and_the_duration_without_a_read(table, started_at):
    repo, clock, calls = table
    repo.start("e-1", "t/d", "a", objects_in=1, started_at=started_at)
    clock.now = T0 + timedelta(seconds=2, milliseconds=500)
    repo.succeed("e-1", objects_out=1, records_out=3, started_at=started_at)
    assert calls == {"UpdateItem": 2}
    row = repo.get("e-1")
    assert (row["status"], row["started_at"], row["duration_ms"]) == ("SUCCEEDED", "2024-05-01T10:00:00.123000Z", 2500)
    assert (row["finished_at"], row["records_out"]) == ("2024-05-01T10:00:02.623000Z", 3)


def test_without_a_start_time_finishing_reads_the_row_for_it(table):
    # An execution started by an earlier state machine definition passes no start time.
    repo, clock, calls = table
    repo.start("e-1", "t/d", "a", objects_in=1)
    clock.now = T0 + timedelta(seconds=4)
    repo.succeed("e-1", objects_out=1, records_out=3)
    assert calls == {"UpdateItem": 2, "GetItem": 1}
    row = repo.get("e-1")
    assert (row["started_at"], row["duration_ms"]) == ("2024-05-01T10:00:01.123000Z", 3000)
    calls.clear()
    repo.fail("e-2", "boom", started_at="not a time")  # unreadable: the row is read instead (there is none)
    assert calls == {"UpdateItem": 1, "GetItem": 1}
    assert repo.get("e-2")["duration_ms"] == 0


def test_a_failure_before_any_start_records_the_execution_s_start(table):
    repo, clock, calls = table
    repo.fail("e-1", "boom", dataset_id="t/d", stage="a", started_at=AWS_START)
    assert calls == {"UpdateItem": 1}
    row = repo.get("e-1")
    assert (row["status"], row["error"], row["started_at"], row["duration_ms"]) == (
        "FAILED", "boom", "2024-05-01T10:00:00.123000Z", 1000)


def test_a_retried_start_keeps_the_first_started_at(table):
    repo, clock, _ = table
    repo.start("e-1", "t/d", "a", objects_in=1, started_at=AWS_START)
    repo.start("e-1", "t/d", "a", objects_in=1, started_at="2024-05-01T11:00:00Z")
    assert repo.get("e-1")["started_at"] == "2024-05-01T10:00:00.123000Z"
