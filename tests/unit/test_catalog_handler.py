"""The catalog Lambda against moto's in-process DynamoDB: batches of EventBridge S3 events in SQS."""
from __future__ import annotations

import copy
import importlib.util
import io
import json
import uuid
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from tests.unit.lake_fakes import create_dataset_table

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "tests" / "events"
RAW = "acme-lake-dev-eu-west-1-123456789012-raw"
STAGE = "acme-lake-dev-eu-west-1-123456789012-stage"
TABLE = "acme-lake-dev-catalog"
KEY = "engineering/legislators/persons.json"
OBJECT_ID = f"s3://{RAW}/{KEY}"


def _load_handler():
    spec = importlib.util.spec_from_file_location("catalog_handler", ROOT / "lambda" / "catalog" / "handler.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


catalog_handler = _load_handler()


def create_catalog_table(client, name: str = TABLE) -> None:
    """The table as the foundations contract describes it (hash id, GSI by-dataset)."""
    create_dataset_table(client, name, "updated_at")


@pytest.fixture
def dynamodb(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("CATALOG_TABLE", TABLE)
    monkeypatch.setenv("BUCKET_STAGES", json.dumps({RAW: "raw", STAGE: "stage"}))
    catalog_handler._repositories.clear()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="eu-west-1")
        create_catalog_table(client)
        yield client
    catalog_handler._repositories.clear()


@pytest.fixture
def logs():
    """What the handler's powertools Logger writes (its stream is fixed when the module loads)."""
    handler = catalog_handler.logger.registered_handler
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    yield buffer
    handler.setStream(previous)


def s3_event(name: str = "s3_object_created.json", **changes) -> dict:
    """A sample event with changes: top-level keys as given, `object_*`/`detail_*` inside detail."""
    event = copy.deepcopy(json.loads((EVENTS / name).read_text()))
    for field, value in changes.items():
        if field.startswith("object_"):
            event["detail"]["object"][field[len("object_"):].replace("_", "-")] = value
        elif field.startswith("detail_"):
            event["detail"][field[len("detail_"):].replace("_", "-")] = value
        elif field == "bucket":
            event["detail"]["bucket"]["name"] = value
        else:
            event[field] = value
    return event


def sqs_batch(*bodies) -> dict:
    records = []
    for body in bodies:
        records.append(
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": "handle",
                "body": body if isinstance(body, str) else json.dumps(body),
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:acme-lake-dev-catalog",
                "awsRegion": "eu-west-1",
            }
        )
    return {"Records": records}


def invoke(*bodies) -> dict:
    return catalog_handler.handler(sqs_batch(*bodies), None)


def row(client, object_id: str = OBJECT_ID) -> dict | None:
    item = client.get_item(TableName=TABLE, Key={"id": {"S": object_id}}).get("Item")
    if item is None:
        return None
    return {k: next(iter(v.values())) for k, v in item.items()}


def test_created_event_makes_a_received_row(dynamodb):
    assert invoke(s3_event()) == {"batchItemFailures": []}
    got = row(dynamodb)
    assert got["status"] == "RECEIVED"
    assert got["bucket"] == RAW and got["key"] == KEY and got["stage"] == "raw"
    assert (got["team"], got["dataset"], got["dataset_id"]) == ("engineering", "legislators", "engineering/legislators")
    assert got["etag"] == "b1946ac92492d2347c6235b4d2611184"
    assert got["version_id"] == "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e"
    assert got["size"] == "5"
    assert got["sequencer"].endswith("00617F08299329D189") and len(got["sequencer"]) == 64
    assert got["last_event_id"] == "17793124-05d4-b198-2fde-7ededc63b103"
    assert got["created_at"] == got["updated_at"] and got["created_at"].endswith("Z")


def test_newer_version_updates_the_row_and_status(dynamodb):
    invoke(s3_event())
    dynamodb.update_item(
        TableName=TABLE, Key={"id": {"S": OBJECT_ID}},
        UpdateExpression="SET #s = :s", ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": {"S": "PROCESSED"}},
    )
    first = row(dynamodb)
    newer = s3_event(id="e-2", time="2024-05-01T11:00:00Z", object_sequencer="00617F0B000000000A",
                     object_etag="aaaa", object_size=12, object_version_id="v2")
    assert invoke(newer) == {"batchItemFailures": []}
    got = row(dynamodb)
    assert (got["status"], got["etag"], got["size"], got["version_id"]) == ("RECEIVED", "aaaa", "12", "v2")
    assert got["created_at"] == first["created_at"]
    assert got["last_event_id"] == "e-2"


def test_delete_keeps_the_row_and_reupload_receives_it_again(dynamodb):
    invoke(s3_event())
    invoke(s3_event("s3_object_deleted.json"))
    deleted = row(dynamodb)
    assert deleted["status"] == "DELETED"
    assert deleted["deleted_at"] == "2024-05-01T10:05:00.000000Z"
    assert deleted["etag"] == "b1946ac92492d2347c6235b4d2611184"  # the last content is still described

    reupload = s3_event(id="e-3", time="2024-05-01T10:10:00Z", object_sequencer="00617F0C0000000001",
                        object_etag="cccc", object_size=7, object_version_id="v3")
    invoke(reupload)
    got = row(dynamodb)
    assert (got["status"], got["etag"], got["size"], got["version_id"]) == ("RECEIVED", "cccc", "7", "v3")
    assert "deleted_at" not in got


def test_reupload_of_identical_bytes_after_delete_is_received_again(dynamodb):
    # Same etag, unversioned bucket: only the DELETED status tells it is a new arrival.
    invoke(s3_event(object_version_id=None))
    invoke(s3_event("s3_object_deleted.json", object_version_id=None))
    invoke(s3_event(id="e-4", time="2024-05-01T10:20:00Z", object_sequencer="00617F0D00000000FF",
                    object_version_id=None))
    assert row(dynamodb)["status"] == "RECEIVED"


def test_older_event_arriving_late_changes_nothing(dynamodb):
    newer = s3_event(id="e-new", time="2024-05-01T11:00:00Z", object_sequencer="00617F0B000000000A",
                     object_etag="new", object_version_id="v2")
    invoke(newer)
    before = row(dynamodb)
    assert invoke(s3_event()) == {"batchItemFailures": []}  # older sequencer
    assert row(dynamodb) == before


def test_delete_seen_before_its_create_wins(dynamodb):
    assert invoke(s3_event("s3_object_deleted.json"), s3_event()) == {"batchItemFailures": []}
    got = row(dynamodb)
    assert got["status"] == "DELETED"
    assert got["sequencer"].endswith("00617F0A3FD8A2A5B1")


def test_shorter_sequencer_is_compared_after_left_padding(dynamodb):
    # "FF" < "0100" numerically; as raw strings "FF" > "0100".
    invoke(s3_event(id="a", object_sequencer="0100", object_etag="later"))
    invoke(s3_event(id="b", object_sequencer="FF", object_etag="earlier"))
    assert row(dynamodb)["etag"] == "later"


def test_duplicate_event_is_a_successful_no_op(dynamodb):
    invoke(s3_event())
    dynamodb.update_item(
        TableName=TABLE, Key={"id": {"S": OBJECT_ID}},
        UpdateExpression="SET #s = :s", ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": {"S": "RUNNING"}},
    )
    before = row(dynamodb)
    assert invoke(s3_event(), s3_event()) == {"batchItemFailures": []}
    assert row(dynamodb) == before  # not even updated_at moved; RUNNING not reset


def test_equal_sequencers_are_ordered_by_event_time(dynamodb):
    # An emulator that sends one constant sequencer must still see a re-upload as newer.
    first = s3_event("s3_object_created_moto.json", bucket=RAW)
    second = s3_event("s3_object_created_moto.json", bucket=RAW, id="other", time=1714557700.5, object_eTag="ffff")
    invoke(first)
    invoke(second)
    got = row(dynamodb)
    assert (got["status"], got["etag"], got["last_event_id"]) == ("RECEIVED", "ffff", "other")
    invoke(first)  # the older one again
    assert row(dynamodb)["etag"] == "ffff"


def test_status_set_by_a_stage_before_the_event_is_kept(dynamodb):
    repo = catalog_handler._repository()
    repo.set_status(OBJECT_ID, "RUNNING")
    invoke(s3_event())
    got = row(dynamodb)
    assert got["status"] == "RUNNING"
    assert got["etag"] == "b1946ac92492d2347c6235b4d2611184" and got["stage"] == "raw"


def test_malformed_record_fails_alone(dynamodb):
    good = s3_event()
    other = s3_event(id="e-9", object_key="engineering/legislators/other.json")
    batch = sqs_batch(good, "this is not an event", {"source": "aws.s3", "detail-type": "Object Created"}, other)
    result = catalog_handler.handler(batch, None)
    failed = [f["itemIdentifier"] for f in result["batchItemFailures"]]
    assert failed == [batch["Records"][1]["messageId"], batch["Records"][2]["messageId"]]
    assert row(dynamodb)["status"] == "RECEIVED"
    assert row(dynamodb, f"s3://{RAW}/engineering/legislators/other.json")["status"] == "RECEIVED"


def test_sample_batch_file_reports_only_the_bad_record(dynamodb):
    batch = json.loads((EVENTS / "sqs_catalog_batch.json").read_text())
    result = catalog_handler.handler(batch, None)
    assert result == {"batchItemFailures": [{"itemIdentifier": "2e1424d4-f796-459a-8184-9c92662be6da"}]}
    assert row(dynamodb)["status"] == "RECEIVED"


def test_unknown_bucket_fails_the_record(dynamodb, logs):
    batch = sqs_batch(s3_event(bucket="somebody-elses-bucket"))
    result = catalog_handler.handler(batch, None)
    assert result["batchItemFailures"] == [{"itemIdentifier": batch["Records"][0]["messageId"]}]
    assert "somebody-elses-bucket" in logs.getvalue()  # the JSON log names the bucket


def test_key_outside_the_layout_is_cataloged_without_team(dynamodb):
    invoke(s3_event(object_key="loose.csv"))
    got = row(dynamodb, f"s3://{RAW}/loose.csv")
    assert got["status"] == "RECEIVED"
    assert "team" not in got and "dataset_id" not in got


def test_stage_comes_from_bucket_stages(dynamodb):
    invoke(s3_event(bucket=STAGE))
    assert row(dynamodb, f"s3://{STAGE}/{KEY}")["stage"] == "stage"


def test_environment_is_read_per_call(dynamodb, monkeypatch):
    create_catalog_table(dynamodb, "another-catalog")
    monkeypatch.setenv("CATALOG_TABLE", "another-catalog")
    invoke(s3_event())
    assert dynamodb.get_item(TableName="another-catalog", Key={"id": {"S": OBJECT_ID}}).get("Item")
    assert row(dynamodb) is None


def test_bad_bucket_stages_fails_every_record_with_a_clear_log(dynamodb, monkeypatch, logs):
    monkeypatch.setenv("BUCKET_STAGES", '{"x": "bronze"}')
    batch = sqs_batch(s3_event(), s3_event(id="2"))
    result = catalog_handler.handler(batch, None)
    assert len(result["batchItemFailures"]) == 2
    assert "BUCKET_STAGES" in logs.getvalue()


def test_logs_are_structured_json(dynamodb, logs):
    invoke(s3_event())
    lines = [json.loads(line) for line in logs.getvalue().splitlines()]
    updated = [entry for entry in lines if entry.get("message") == "catalog updated"]
    assert updated and updated[0]["object_id"] == OBJECT_ID and updated[0]["outcome"] == "received"
    assert updated[0]["service"] == "catalog"


def test_events_as_moto_emits_them_end_to_end(dynamodb):
    """put/overwrite/delete in (moto) S3 -> EventBridge -> SQS -> the handler, with moto's own envelopes."""
    s3 = boto3.client("s3", region_name="eu-west-1")
    sqs = boto3.client("sqs", region_name="eu-west-1")
    events = boto3.client("events", region_name="eu-west-1")
    s3.create_bucket(Bucket=RAW, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_bucket_notification_configuration(
        Bucket=RAW, NotificationConfiguration={"EventBridgeConfiguration": {}}
    )
    queue_url = sqs.create_queue(QueueName="catalog")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(
        Name="catalog",
        EventPattern=json.dumps({"source": ["aws.s3"], "detail-type": ["Object Created", "Object Deleted"],
                                 "detail": {"bucket": {"name": [RAW]}}}),
    )
    events.put_targets(Rule="catalog", Targets=[{"Id": "q", "Arn": queue_arn}])

    def drain() -> dict:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        batch = {"Records": [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
                              "attributes": {}, "messageAttributes": {}, "eventSource": "aws:sqs"} for m in messages]}
        assert batch["Records"], "moto delivered no event"
        return catalog_handler.handler(batch, None)

    s3.put_object(Bucket=RAW, Key=KEY, Body=b"hello")
    assert drain() == {"batchItemFailures": []}
    assert (row(dynamodb)["status"], row(dynamodb)["size"]) == ("RECEIVED", "5")

    s3.put_object(Bucket=RAW, Key=KEY, Body=b"hello, world")
    assert drain() == {"batchItemFailures": []}
    assert row(dynamodb)["size"] == "12"

    s3.delete_object(Bucket=RAW, Key=KEY)
    assert drain() == {"batchItemFailures": []}
    assert row(dynamodb)["status"] == "DELETED"



def test_pipeline_metadata_in_stage_is_not_cataloged(dynamodb):
    manifest = f"s3://{STAGE}/engineering/legislators/_batches/abc/manifest.json"
    event = s3_event(bucket=STAGE, object_key=manifest.split(f"{STAGE}/", 1)[1])
    assert invoke(event) == {"batchItemFailures": []}
    assert row(dynamodb, manifest) is None


def test_raw_object_no_dataset_claims_fails_with_reason_and_waits_in_the_dlq(dynamodb, monkeypatch):
    catalog_handler._registrations.clear()
    catalog_handler._sqs.clear()
    sqs = boto3.client("sqs", region_name="eu-west-1")
    dlq = sqs.create_queue(QueueName="acme-lake-dev-catalog-dlq")["QueueUrl"]
    ssm = boto3.client("ssm", region_name="eu-west-1")
    ssm.put_parameter(Name="/sdlf/acme/lake/dev/datasets/engineering/other", Type="String",
                      Value=json.dumps({"team": "engineering", "dataset": "other"}))
    monkeypatch.setenv("SSM_PREFIX", "/sdlf/acme/lake/dev")
    monkeypatch.setenv("UNROUTED_DLQ_URL", dlq)

    assert invoke(s3_event()) == {"batchItemFailures": []}
    failed = row(dynamodb)
    assert failed["status"] == "FAILED"
    assert "engineering/legislators is not registered" in failed["reason"]
    assert "sdlf add-dataset engineering legislators" in failed["reason"]
    body = json.loads(sqs.receive_message(QueueUrl=dlq)["Messages"][0]["Body"])
    assert body["detail-type"] == "Object Created" and body["detail"]["object"]["key"] == KEY
    assert body["sdlf"]["reason"] == failed["reason"]

    # A registered dataset's objects stay RECEIVED for their pipeline.
    ssm.put_parameter(Name="/sdlf/acme/lake/dev/datasets/engineering/legislators", Type="String",
                      Value=json.dumps({"team": "engineering", "dataset": "legislators"}))
    catalog_handler._registrations.clear()
    other = "engineering/legislators/second.json"
    assert invoke(s3_event(object_key=other, object_etag="e2")) == {"batchItemFailures": []}
    assert row(dynamodb, f"s3://{RAW}/{other}")["status"] == "RECEIVED"
