"""Seam: an asynchronous invoke that fails is retried twice, then its event goes to the function's DeadLetterConfig
queue with Lambda's attributes (moto drops DeadLetterConfig; the patch keeps it, in the configuration too)."""
from __future__ import annotations

import json

from tests.integration.test_emulator_runtime_helpers import client, role_arn, unique, wait_for, zip_bytes

FAILING = """
import os, boto3
def handler(event, context):
    boto3.client("sqs").send_message(QueueUrl=os.environ["ATTEMPTS"], MessageBody=json_dumps(event))
    raise RuntimeError("the router is broken")
def json_dumps(value):
    import json
    return json.dumps(value)
"""


def test_a_failed_async_invoke_is_retried_then_parked_in_the_functions_dlq(emulator):
    sqs, lam = client(emulator, "sqs"), client(emulator, "lambda")
    dlq = sqs.create_queue(QueueName=unique("async-dlq"))["QueueUrl"]
    attempts = sqs.create_queue(QueueName=unique("attempts"))["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    name = unique("fn")
    lam.create_function(FunctionName=name, Runtime="python3.12", Role=role_arn(emulator), Handler="handler.handler",
                        Timeout=10, Code={"ZipFile": zip_bytes({"handler.py": FAILING})},
                        Environment={"Variables": {"ATTEMPTS": attempts}}, DeadLetterConfig={"TargetArn": dlq_arn})
    assert lam.get_function_configuration(FunctionName=name)["DeadLetterConfig"] == {"TargetArn": dlq_arn}

    event = {"team": "engineering", "dataset": "legislators"}
    assert lam.invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps(event).encode())["StatusCode"] == 202
    parked = wait_for(lambda: sqs.receive_message(QueueUrl=dlq, MessageAttributeNames=["All"]).get("Messages"),
                      timeout=60, what="the event in the DLQ")
    assert json.loads(parked[0]["Body"]) == event
    attributes = parked[0]["MessageAttributes"]
    assert "the router is broken" in attributes["ErrorMessage"]["StringValue"]
    assert attributes["ErrorCode"]["DataType"] == "Number" and attributes["RequestID"]["StringValue"]
    tried = 0
    while batch := sqs.receive_message(QueueUrl=attempts, MaxNumberOfMessages=10, VisibilityTimeout=60).get("Messages"):
        tried += len(batch)
    assert tried == 3, "the first attempt and two retries"
