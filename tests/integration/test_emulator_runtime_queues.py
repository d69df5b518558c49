"""SQS -> Lambda mappings (batches, partial failures, DLQ) and EventBridge delivery."""
from __future__ import annotations

import json
import time

import pytest

from sdlf_cli.local.runtime import install, installed_part
from tests.integration.test_emulator_runtime_helpers import (
    bucket, client, create_function, s3_json, s3_keys, unique, wait_for,
)


@pytest.fixture(scope="module", autouse=True)
def runtime(emulator):
    install(emulator.context)


def _queue_with_dlq(emulator, max_receive: int = 2, visibility: int = 1) -> tuple[str, str, str]:
    sqs = client(emulator, "sqs")
    dlq_url = sqs.create_queue(QueueName=unique("dlq"))["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    url = sqs.create_queue(QueueName=unique("queue"), Attributes={
        "VisibilityTimeout": str(visibility),
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive)}),
    })["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn, dlq_url


def _drain(emulator, url: str) -> list[str]:
    sqs = client(emulator, "sqs")
    bodies = []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return bodies
        for m in messages:
            bodies.append(m["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def _count(emulator, url: str) -> int:
    attrs = client(emulator, "sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])
    a = attrs["Attributes"]
    return int(a["ApproximateNumberOfMessages"]) + int(a["ApproximateNumberOfMessagesNotVisible"])


BATCH_HANDLER = """
import json, os, boto3
s3 = boto3.client("s3")
def handler(event, context):
    failures = []
    records = event["Records"]
    s3.put_object(Bucket=os.environ["OUT"], Key=f"batches/{context.aws_request_id}",
                  Body=json.dumps([r["body"] for r in records]).encode())
    for record in records:
        assert record["eventSource"] == "aws:sqs" and record["eventSourceARN"].startswith("arn:aws:sqs:")
        assert int(record["attributes"]["ApproximateReceiveCount"]) >= 1
        if record["body"] == "poison":
            failures.append({"itemIdentifier": record["messageId"]})
        else:
            s3.put_object(Bucket=os.environ["OUT"], Key=f"done/{record['body']}", Body=b"ok")
    return {"batchItemFailures": failures}
"""


def test_mapping_batches_partial_failures_and_dead_letters(emulator):
    out = bucket(emulator)
    url, arn, dlq_url = _queue_with_dlq(emulator, max_receive=2, visibility=1)
    sqs = client(emulator, "sqs")
    bodies = [f"m{i:02d}" for i in range(24)] + ["poison"]
    for start in range(0, 25, 10):
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": b}
                                                      for i, b in enumerate(bodies[start:start + 10])])
    fn = create_function(emulator, BATCH_HANDLER, env={"OUT": out})
    # Created after the messages are queued, so the poller finds a full backlog to batch.
    esm = client(emulator, "lambda").create_event_source_mapping(
        EventSourceArn=arn, FunctionName=fn["FunctionName"], BatchSize=10,
        FunctionResponseTypes=["ReportBatchItemFailures"])

    wait_for(lambda: len(s3_keys(emulator, out, "done/")) == 24, what="24 processed messages")
    dead = wait_for(lambda: _drain(emulator, dlq_url), timeout=30, what="the poison message in the DLQ")
    assert dead == ["poison"]
    assert _count(emulator, url) == 0

    batches = [json.loads(client(emulator, "s3").get_object(Bucket=out, Key=k)["Body"].read())
               for k in s3_keys(emulator, out, "batches/")]
    assert max(len(b) for b in batches) == 10
    assert all(len(b) <= 10 for b in batches)
    first_round = sorted(len(b) for b in batches if "m00" in b or "m10" in b or "m20" in b)
    assert first_round[-1] == 10  # the backlog went out in full batches, not one message per invoke
    # The poison message was retried (delivered twice: maxReceiveCount) and nothing else was replayed.
    seen = [body for b in batches for body in b]
    assert seen.count("poison") == 2
    assert all(seen.count(b) == 1 for b in bodies if b != "poison")
    poller = installed_part("poller")
    assert any(uuid == esm["UUID"] and size == 10 for uuid, size in poller.batches)


def test_function_error_keeps_the_whole_batch_and_dead_letters_it(emulator):
    url, arn, dlq_url = _queue_with_dlq(emulator, max_receive=2, visibility=1)
    fn = create_function(emulator, "def handler(event, context):\n    raise RuntimeError('boom')\n")
    sqs = client(emulator, "sqs")
    for body in ("a", "b", "c"):
        sqs.send_message(QueueUrl=url, MessageBody=body)
    client(emulator, "lambda").create_event_source_mapping(EventSourceArn=arn, FunctionName=fn["FunctionName"],
                                                           BatchSize=10)
    dead: list[str] = []
    wait_for(lambda: dead.extend(_drain(emulator, dlq_url)) or len(dead) == 3, timeout=30,
             what="all three messages in the DLQ")
    assert sorted(dead) == ["a", "b", "c"]


def test_mappings_created_disabled_and_deleted_at_any_time_are_followed(emulator):
    out = bucket(emulator)
    url, arn, _ = _queue_with_dlq(emulator, max_receive=5, visibility=30)
    fn = create_function(emulator, BATCH_HANDLER, env={"OUT": out})
    lam = client(emulator, "lambda")
    esm = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=fn["FunctionName"], Enabled=False)
    sqs = client(emulator, "sqs")
    sqs.send_message(QueueUrl=url, MessageBody="while-disabled")
    time.sleep(0.6)
    assert s3_keys(emulator, out, "done/") == []  # disabled: nobody polls, and SendMessage runs nothing
    lam.update_event_source_mapping(UUID=esm["UUID"], Enabled=True)
    wait_for(lambda: s3_keys(emulator, out, "done/") == ["done/while-disabled"], what="processing after enable")
    lam.delete_event_source_mapping(UUID=esm["UUID"])
    sqs.send_message(QueueUrl=url, MessageBody="after-delete")
    time.sleep(0.6)
    assert s3_keys(emulator, out, "done/") == ["done/while-disabled"]
    assert _drain(emulator, url) == ["after-delete"]


HELD_HANDLER = """
import os, time, boto3
s3 = boto3.client("s3")
def handler(event, context):
    s3.put_object(Bucket=os.environ["OUT"], Key="held/started", Body=b"")
    while context.get_remaining_time_in_millis() > 2000:
        if s3.list_objects_v2(Bucket=os.environ["OUT"], Prefix="release").get("KeyCount"):
            break
        time.sleep(0.2)
    for record in event["Records"]:
        s3.put_object(Bucket=os.environ["OUT"], Key=f"held/{record['body']}", Body=b"ok")
"""


def test_a_function_that_holds_its_batch_does_not_hold_up_other_mappings(emulator):
    out = bucket(emulator)
    sqs, lam = client(emulator, "sqs"), client(emulator, "lambda")
    held_url, held_arn, _ = _queue_with_dlq(emulator, max_receive=5, visibility=120)
    url, arn, _ = _queue_with_dlq(emulator, max_receive=5, visibility=120)
    held = create_function(emulator, HELD_HANDLER, env={"OUT": out}, timeout=90)
    other = create_function(emulator, BATCH_HANDLER, env={"OUT": out})
    lam.create_event_source_mapping(EventSourceArn=held_arn, FunctionName=held["FunctionName"], BatchSize=1)
    lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=other["FunctionName"], BatchSize=1)
    sqs.send_message(QueueUrl=held_url, MessageBody="first")
    wait_for(lambda: "held/started" in s3_keys(emulator, out, "held/"), timeout=60, what="the held batch running")
    sqs.send_message(QueueUrl=url, MessageBody="meanwhile")
    # Served while the other function still holds its batch (it lets go only once "release" exists).
    wait_for(lambda: s3_keys(emulator, out, "done/") == ["done/meanwhile"], timeout=60,
             what="the other mapping's message processed")
    assert s3_keys(emulator, out, "held/") == ["held/started"]
    client(emulator, "s3").put_object(Bucket=out, Key="release", Body=b"")
    wait_for(lambda: "held/first" in s3_keys(emulator, out, "held/"), timeout=60, what="the held batch done")


def _rule_to_queue(emulator, pattern: dict) -> tuple[str, str]:
    events = client(emulator, "events")
    sqs = client(emulator, "sqs")
    url = sqs.create_queue(QueueName=unique("events-q"))["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    rule = unique("to-queue")
    events.put_rule(Name=rule, EventPattern=json.dumps(pattern))
    events.put_targets(Rule=rule, Targets=[{"Id": "q", "Arn": arn}])
    return rule, url


def test_schedule_only_rule_does_not_break_s3_to_eventbridge_to_sqs(emulator):
    events = client(emulator, "events")
    fn = create_function(emulator, "def handler(event, context):\n    return None\n")
    schedule_rule = unique("every-hour")
    events.put_rule(Name=schedule_rule, ScheduleExpression="rate(1 hour)")
    events.put_targets(Rule=schedule_rule, Targets=[{"Id": "fn", "Arn": fn["FunctionArn"]}])

    raw = bucket(emulator)
    client(emulator, "s3").put_bucket_notification_configuration(
        Bucket=raw, NotificationConfiguration={"EventBridgeConfiguration": {}})
    _, url = _rule_to_queue(emulator, {"source": ["aws.s3"], "detail-type": ["Object Created"],
                                       "detail": {"bucket": {"name": [raw]}}})
    s3 = client(emulator, "s3")
    s3.put_object(Bucket=raw, Key="team/ds/one.json", Body=b"{}")
    s3.put_object(Bucket=raw, Key="team/ds/two.json", Body=b"{}")

    bodies = [json.loads(b) for b in wait_for(lambda: _drain(emulator, url), what="S3 events in the queue")]
    bodies += [json.loads(b) for b in _drain(emulator, url)]
    assert sorted(b["detail"]["object"]["key"] for b in bodies) == ["team/ds/one.json", "team/ds/two.json"]
    one, two = sorted(bodies, key=lambda b: b["detail"]["object"]["key"])
    assert one["id"] != two["id"]
    assert one["detail"]["object"]["sequencer"] < two["detail"]["object"]["sequencer"]
    assert "etag" in one["detail"]["object"]
    assert one["time"].endswith("Z")

    # put_events survives the schedule-only rule too.
    response = events.put_events(Entries=[{"Source": "custom", "DetailType": "x", "Detail": "{}"}])
    assert response["FailedEntryCount"] == 0


def test_pattern_rule_delivers_to_lambda_with_input_path_and_transformer(emulator):
    out = bucket(emulator)
    source = """
import json, os, uuid, boto3
def handler(event, context):
    boto3.client("s3").put_object(Bucket=os.environ["OUT"], Key=f"got/{uuid.uuid4()}", Body=json.dumps(event).encode())
"""
    fn = create_function(emulator, source, env={"OUT": out})
    events = client(emulator, "events")
    rule = unique("to-lambda")
    events.put_rule(Name=rule, EventPattern=json.dumps({"source": ["sdlf.test"], "detail-type": ["Ping"]}))
    events.put_targets(Rule=rule, Targets=[
        {"Id": "whole", "Arn": fn["FunctionArn"]},
        {"Id": "detail", "Arn": fn["FunctionArn"], "InputPath": "$.detail"},
        {"Id": "constant", "Arn": fn["FunctionArn"], "Input": json.dumps({"constant": True})},
        {"Id": "shaped", "Arn": fn["FunctionArn"], "InputTransformer": {
            "InputPathsMap": {"n": "$.detail.n"}, "InputTemplate": '{"number": <n>}'}},
    ])
    events.put_events(Entries=[{"Source": "sdlf.test", "DetailType": "Ping", "Detail": json.dumps({"n": 7})},
                               {"Source": "sdlf.test", "DetailType": "Other", "Detail": "{}"}])

    keys = wait_for(lambda: (k := s3_keys(emulator, out, "got/")) and len(k) >= 4 and k, what="4 deliveries")
    time.sleep(0.3)
    received = [s3_json(emulator, out, k) for k in s3_keys(emulator, out, "got/")]
    assert len(received) == 4 == len(keys)
    whole = next(r for r in received if r.get("detail-type") == "Ping")
    assert whole["source"] == "sdlf.test" and whole["detail"] == {"n": 7} and whole["time"].endswith("Z")
    assert {"n": 7} in received
    assert {"constant": True} in received
    assert {"number": 7} in received
