"""The sdlf_datalake library: event parsing, key layout, time helpers, CatalogRepository."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import boto3
import pytest
from moto import mock_aws
from sdlf_datalake import (
    CatalogRepository,
    MalformedEventError,
    RecordOutcome,
    dataset_id,
    iso,
    object_id,
    parse_object_id,
    parse_s3_event,
    parse_time,
    sequencer_key,
    split_key,
)

from tests.unit.test_catalog_handler import create_catalog_table

EVENTS = Path(__file__).resolve().parents[1] / "events"
BUCKET = "acme-lake-dev-eu-west-1-123456789012-raw"


def sample(name: str = "s3_object_created.json") -> dict:
    return json.loads((EVENTS / name).read_text())


# --- events ------------------------------------------------------------------------------------
def test_parse_created_event():
    event = parse_s3_event(json.dumps(sample()))
    assert event.is_created and not event.is_deleted
    assert event.object_id == f"s3://{BUCKET}/engineering/legislators/persons.json"
    assert (event.size, event.etag, event.version_id) == (5, "b1946ac92492d2347c6235b4d2611184", "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e")
    assert event.time == "2024-05-01T10:00:00.000000Z"
    assert event.reason == "PutObject"
    assert event.key_parts.dataset_id == "engineering/legislators"


def test_parse_deleted_event():
    event = parse_s3_event(sample("s3_object_deleted.json"))
    assert event.is_deleted and event.deletion_type == "Delete Marker Created"
    assert event.size is None and event.etag is None


def test_parse_emulator_flavour():
    event = parse_s3_event(sample("s3_object_created_moto.json"))
    assert event.etag == "b1946ac92492d2347c6235b4d2611184"  # from eTag
    assert event.version_id is None  # JSON null
    assert event.time == "2024-05-01T10:00:00.123456Z"  # epoch seconds


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda e: e.pop("id"), "id"),
        (lambda e: e.update(source="aws.sqs"), "source"),
        (lambda e: e.update(time="yesterday"), "time"),
        (lambda e: e["detail"].pop("bucket"), "detail.bucket"),
        (lambda e: e["detail"]["object"].update(key=""), "detail.object.key"),
        (lambda e: e["detail"]["object"].update(size="5"), "detail.object.size"),
        (lambda e: e["detail"]["object"].pop("sequencer"), "detail.object.sequencer"),
        (lambda e: e["detail"]["object"].update(sequencer="not-hex"), "detail.object.sequencer"),
    ],
)
def test_malformed_events_name_the_field(mutate, field):
    event = sample()
    mutate(event)
    with pytest.raises(MalformedEventError, match=rf"^{field}"):
        parse_s3_event(event)


def test_non_json_and_non_object_bodies():
    with pytest.raises(MalformedEventError, match="not JSON"):
        parse_s3_event("{")
    with pytest.raises(MalformedEventError, match="expected a JSON object, got list"):
        parse_s3_event("[]")


def test_sequencer_key_left_pads():
    assert sequencer_key("ff") < sequencer_key("0100")
    assert len(sequencer_key("00617F08299329D189")) == 64
    assert sequencer_key("abc") == sequencer_key("0ABC")


# --- keys and time -----------------------------------------------------------------------------
def test_split_key():
    parts = split_key("team/ds/year=2024/file.csv")
    assert (parts.team, parts.dataset, parts.rest, parts.dataset_id) == ("team", "ds", "year=2024/file.csv", "team/ds")
    for key in ("file.csv", "team/file.csv", "team//file.csv", "/ds/file.csv"):
        assert split_key(key).team is None and split_key(key).dataset_id is None


def test_ids_round_trip():
    assert object_id("b", "t/d/f") == "s3://b/t/d/f"
    assert parse_object_id("s3://b/t/d/f") == ("b", "t/d/f")
    assert dataset_id("t", "d") == "t/d"
    with pytest.raises(ValueError, match="not of the form"):
        parse_object_id("s3://bucket-only")
    with pytest.raises(ValueError, match="does not start with"):
        parse_object_id("b/k")


def test_time_helpers():
    assert iso(datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)) == "2024-01-02T03:04:05.000000Z"
    assert iso(parse_time("2024-01-02T04:04:05+01:00")) == "2024-01-02T03:04:05.000000Z"
    assert iso(parse_time("2024-01-02T03:04:05.5Z")) == "2024-01-02T03:04:05.500000Z"
    assert iso(parse_time(0)) == "1970-01-01T00:00:00.000000Z"
    with pytest.raises(ValueError):
        parse_time(True)


# --- repository --------------------------------------------------------------------------------
class Clock:
    def __init__(self):
        self.minute = 0

    def __call__(self) -> datetime:
        self.minute += 1
        return datetime(2024, 6, 1, 0, self.minute, tzinfo=timezone.utc)


@pytest.fixture
def repo(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        client = boto3.client("dynamodb", region_name="eu-west-1")
        create_catalog_table(client, "catalog")
        yield CatalogRepository("catalog", client=client, clock=Clock())


OID = f"s3://{BUCKET}/engineering/legislators/persons.json"


def test_status_lifecycle(repo):
    assert repo.record_event(parse_s3_event(sample()), "raw") is RecordOutcome.RECEIVED
    assert repo.set_status(OID, "RUNNING", extra={"execution_id": "exec-1"})
    assert repo.get(OID)["status"] == "RUNNING" and repo.get(OID)["execution_id"] == "exec-1"
    assert repo.set_status(OID, "FAILED", "transform raised ValueError: bad row 3")
    assert repo.get(OID)["reason"] == "transform raised ValueError: bad row 3"
    assert repo.set_status(OID, "PROCESSED")  # a redrive succeeded
    row = repo.get(OID)
    assert row["status"] == "PROCESSED" and "reason" not in row
    assert row["size"] == 5 and isinstance(row["size"], int)


def test_failed_needs_a_reason_and_statuses_are_checked(repo):
    with pytest.raises(ValueError, match="reason is required"):
        repo.set_status(OID, "FAILED")
    with pytest.raises(ValueError, match="RUNNING, PROCESSED or FAILED"):
        repo.set_status(OID, "DELETED")
    with pytest.raises(ValueError):
        repo.set_status(OID, "DONE")


def test_set_status_creates_a_row_with_its_layout(repo):
    repo.set_status(OID, "RUNNING", stage="raw")
    row = repo.get(OID)
    assert (row["bucket"], row["key"], row["team"], row["dataset_id"], row["stage"]) == (
        BUCKET, "engineering/legislators/persons.json", "engineering", "engineering/legislators", "raw"
    )


def test_set_status_never_resurrects_a_deleted_row(repo):
    repo.record_event(parse_s3_event(sample("s3_object_deleted.json")), "raw")
    assert repo.set_status(OID, "PROCESSED") is False
    assert repo.get(OID)["status"] == "DELETED"


def test_stage_written_version_is_not_reset_by_its_own_event(repo):
    event = parse_s3_event(sample())
    repo.set_status(OID, "PROCESSED", stage="raw", etag=event.etag, version_id=event.version_id)
    assert repo.record_event(event, "raw") is RecordOutcome.REFRESHED
    assert repo.get(OID)["status"] == "PROCESSED"
    assert repo.record_event(event, "raw") is RecordOutcome.STALE


def test_lineage_is_a_list_without_duplicates(repo):
    assert repo.add_lineage(OID, ["s3://raw/a", "s3://raw/b"]) == ["s3://raw/a", "s3://raw/b"]
    assert repo.add_lineage(OID, ["s3://raw/b", "s3://raw/c", "s3://raw/c"]) == ["s3://raw/a", "s3://raw/b", "s3://raw/c"]
    assert repo.get(OID)["lineage"] == ["s3://raw/a", "s3://raw/b", "s3://raw/c"]
    repo.record_event(parse_s3_event(sample()), "raw")  # a catalog event keeps lineage
    assert repo.get(OID)["lineage"] == ["s3://raw/a", "s3://raw/b", "s3://raw/c"]


def test_purging_a_non_current_version_keeps_the_object(repo):
    repo.record_event(parse_s3_event(sample()), "raw")
    purge = sample("s3_object_deleted.json")
    purge["detail"]["deletion-type"] = "Permanently Deleted"
    purge["detail"]["object"]["version-id"] = "some-old-version"
    assert repo.record_event(parse_s3_event(purge), "raw") is RecordOutcome.IGNORED
    assert repo.get(OID)["status"] == "RECEIVED"
    purge["detail"]["object"]["version-id"] = "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e"
    assert repo.record_event(parse_s3_event(purge), "raw") is RecordOutcome.DELETED


def test_list_dataset_newest_first(repo):
    for index, name in enumerate(["a.json", "b.json", "c.json"]):
        event = sample()
        event["detail"]["object"]["key"] = f"engineering/legislators/{name}"
        event["id"] = f"e{index}"
        repo.record_event(parse_s3_event(event), "raw")
    other = sample()
    other["detail"]["object"]["key"] = "marketing/leads/x.json"
    repo.record_event(parse_s3_event(other), "raw")
    rows = repo.list_dataset("engineering/legislators")
    assert [r["key"].rsplit("/", 1)[1] for r in rows] == ["c.json", "b.json", "a.json"]
    assert len(repo.list_dataset("engineering/legislators", limit=2)) == 2


def test_unknown_stage_is_rejected(repo):
    with pytest.raises(ValueError, match="stage must be one of"):
        repo.record_event(parse_s3_event(sample()), "bronze")


def test_repository_module_imports_without_aws():
    # The client is only made on first use.
    assert CatalogRepository("t")._client is None


def test_one_source_is_appended_once_in_order(repo):
    assert repo.add_lineage(OID, ["s3://raw/a"]) == ["s3://raw/a"]
    assert repo.add_lineage(OID, ["s3://raw/a"]) == ["s3://raw/a"]  # already there: unchanged
    assert repo.add_lineage(OID, ["s3://raw/b"]) == ["s3://raw/a", "s3://raw/b"]
    assert repo.add_lineage(OID, ["s3://raw/b", "s3://raw/c"]) == ["s3://raw/a", "s3://raw/b", "s3://raw/c"]
    assert repo.get(OID)["lineage"] == ["s3://raw/a", "s3://raw/b", "s3://raw/c"]


def test_lineage_set_with_the_status_replaces_it_and_a_deleted_row_keeps_its_status(repo):
    assert repo.set_status(OID, "PROCESSED", extra={"lineage": ["s3://raw/a"]})
    assert repo.set_status(OID, "PROCESSED", extra={"lineage": ["s3://raw/a"]})  # a replay: still one entry
    assert repo.get(OID)["lineage"] == ["s3://raw/a"]
    repo.record_event(parse_s3_event(sample("s3_object_deleted.json")), "raw")
    assert repo.set_status(OID, "PROCESSED", extra={"lineage": ["s3://raw/b"]}) is False
    assert repo.set_lineage(OID, ["s3://raw/b", "s3://raw/b"]) == ["s3://raw/b"]
    row = repo.get(OID)
    assert (row["status"], row["lineage"]) == ("DELETED", ["s3://raw/b"])


def _keys(*ids):
    return [{"id": {"S": i}} for i in ids]


def test_get_many_reads_consistently_in_batches_of_100_and_asks_again_for_unprocessed_keys():
    from botocore.stub import Stubber

    client = boto3.client("dynamodb", region_name="eu-west-1", aws_access_key_id="k", aws_secret_access_key="s")
    slept = []
    repo = CatalogRepository("catalog", client=client, sleep=slept.append)
    ids = [f"s3://b/t/d/{i}" for i in range(101)]
    row = {"id": {"S": ids[0]}, "status": {"S": "DELETED"}, "lineage": {"L": [{"S": "s3://raw/a"}]}}
    with Stubber(client) as stub:
        stub.add_response("batch_get_item", {"Responses": {"catalog": [row]},
                                             "UnprocessedKeys": {"catalog": {"Keys": _keys(ids[5]), "ConsistentRead": True}}},
                          {"RequestItems": {"catalog": {"Keys": _keys(*ids[:100]), "ConsistentRead": True}}})
        stub.add_response("batch_get_item", {"Responses": {"catalog": [{"id": {"S": ids[5]}, "status": {"S": "PROCESSED"}}]}},
                          {"RequestItems": {"catalog": {"Keys": _keys(ids[5]), "ConsistentRead": True}}})
        stub.add_response("batch_get_item", {"Responses": {"catalog": []}},
                          {"RequestItems": {"catalog": {"Keys": _keys(ids[100]), "ConsistentRead": True}}})
        rows = repo.get_many(ids + [ids[0]])  # a repeated id is asked for once
        stub.assert_no_pending_responses()
    assert rows == {ids[0]: {"id": ids[0], "status": "DELETED", "lineage": ["s3://raw/a"]},
                    ids[5]: {"id": ids[5], "status": "PROCESSED"}}
    assert slept == [0.05]


def test_get_many_gives_up_with_a_transient_error_when_keys_stay_unprocessed():
    from botocore.stub import Stubber
    from sdlf_datalake.errors import TransientError

    client = boto3.client("dynamodb", region_name="eu-west-1", aws_access_key_id="k", aws_secret_access_key="s")
    slept = []
    repo = CatalogRepository("catalog", client=client, sleep=slept.append)
    with Stubber(client) as stub:
        for _ in range(6):
            stub.add_response("batch_get_item", {"Responses": {"catalog": []},
                                                 "UnprocessedKeys": {"catalog": {"Keys": _keys("s3://b/k")}}})
        with pytest.raises(TransientError, match="1 catalog row.*still unprocessed after 5 retries"):
            repo.get_many(["s3://b/k"])
        stub.assert_no_pending_responses()
    assert slept == [0.05, 0.1, 0.2, 0.4, 0.8]


def test_get_many_on_the_table(repo):
    repo.set_status(OID, "RUNNING")
    assert repo.get_many([OID, "s3://b/missing"]) == {OID: repo.get(OID)}
