"""Which failures stage A retries: AWS throttling/5xx become TransientError, the rest do not."""
from __future__ import annotations

import json

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from botocore.stub import Stubber

from sdlf_datalake.errors import InvalidInputError, TransientError, aws_call, is_transient
from sdlf_datalake.events import parse_s3_event
from sdlf_datalake.failures import failure_reason, salvage_object
from sdlf_datalake.registry import DatasetRegistration, RegistrationReader
from sdlf_datalake.stage_a.routing import Router
from sdlf_datalake.stage_a.steps import StageA, StageAConfig

REGION = "eu-west-1"
EVENT = {
    "version": "0",
    "id": "e-1",
    "detail-type": "Object Created",
    "source": "aws.s3",
    "time": "2024-05-01T10:00:00Z",
    "detail": {
        "bucket": {"name": "raw"},
        "object": {"key": "engineering/persons/p.csv", "size": 5, "etag": "abc", "sequencer": "0A"},
    },
}


def client_error(code: str, status: int = 400) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op")


@pytest.fixture
def credentials(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (client_error("ThrottlingException"), True),
        (client_error("ProvisionedThroughputExceededException"), True),
        (client_error("SlowDown", 503), True),
        (client_error("WhateverNew", 500), True),
        (client_error("AccessDeniedException", 403), False),
        (client_error("ValidationException"), False),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), True),
        (ValueError("x"), False),
    ],
)
def test_transient_classification(exc, transient):
    assert is_transient(exc) is transient
    raised = TransientError if transient else type(exc)
    with pytest.raises(raised):
        with aws_call("doing it"):
            raise exc


def test_aws_call_names_what_it_was_doing():
    with pytest.raises(TransientError, match="^writing s3://b/k: ClientError"):
        with aws_call("writing s3://b/k"):
            raise client_error("Throttling")


def test_router_throttled_is_transient_and_already_exists_is_success(credentials):
    client = boto3.client("stepfunctions", region_name=REGION)
    router = Router("arn:aws:states:eu-west-1:1:stateMachine:sm", "main", "engineering", client=client)
    with Stubber(client) as stub:
        stub.add_client_error("start_execution", "ThrottlingException", http_status_code=400)
        with pytest.raises(TransientError):
            router.route(parse_s3_event(EVENT))
        stub.add_client_error("start_execution", "ExecutionAlreadyExists", http_status_code=400)
        outcome = router.route(parse_s3_event(EVENT))
        assert outcome["started"] is False and outcome["execution"].startswith("persons-")
        stub.add_client_error("start_execution", "AccessDeniedException", http_status_code=400)
        with pytest.raises(ClientError):
            router.route(parse_s3_event(EVENT))


def _stage(sqs, registration: DatasetRegistration) -> StageA:
    class Registrations:
        def get(self, team, dataset):
            return registration

    config = StageAConfig("catalog", "executions", "stage", "/sdlf/a/b/c", "engineering")
    return StageA(config, sqs=sqs, registrations=Registrations())


def test_stage_b_hand_off_partial_failure_is_transient_and_sender_fault_is_not(credentials):
    from sdlf_datalake.stage_a.routing import ObjectRef

    sqs = boto3.client("sqs", region_name=REGION)
    registration = DatasetRegistration("engineering", "persons", "main", "default", "https://q/b", parameter="/p")
    stage = _stage(sqs, registration)
    ref = ObjectRef("raw", "engineering/persons/p.csv", "engineering", "persons", "main", etag="abc")
    outputs = [{"bucket": "stage", "key": f"engineering/persons/{i}.jsonl", "uri": f"s3://stage/engineering/persons/{i}.jsonl",
                "etag": "e", "records": 1} for i in range(12)]
    with Stubber(sqs) as stub:
        # 12 outputs: two batches (10 + 2); the second one partly fails.
        stub.add_response("send_message_batch", {"Successful": [], "Failed": []})
        stub.add_response(
            "send_message_batch",
            {"Successful": [], "Failed": [{"Id": "11", "SenderFault": False, "Code": "InternalError"}]},
        )
        with pytest.raises(TransientError, match="failed for 1 message"):
            stage._hand_off(ref, registration, outputs)
        stub.add_response(
            "send_message_batch",
            {"Successful": [], "Failed": [{"Id": "0", "SenderFault": True, "Code": "InvalidMessageContents"}]},
        )
        with pytest.raises(InvalidInputError, match="rejected"):
            stage._hand_off(ref, registration, outputs[:1])
        stub.assert_no_pending_responses()  # 10 + 2, then 1: every batch was sent


def test_registration_json_problems_name_the_parameter(credentials):
    with pytest.raises(InvalidInputError, match="^SSM parameter /p: registration is not JSON"):
        DatasetRegistration.from_json("{", "/p")
    with pytest.raises(InvalidInputError, match="field 'dataset' must be a non-empty string"):
        DatasetRegistration.from_json('{"team": "t"}', "/p")
    assert DatasetRegistration.from_json('{"team": "t", "dataset": "d", "transform": null}', "/p").transform == "default"

    ssm = boto3.client("ssm", region_name=REGION)
    reader = RegistrationReader("/sdlf/a/b/c", client=ssm)
    with Stubber(ssm) as stub:
        stub.add_response("get_parameter", {"Parameter": {"Value": json.dumps({"team": "t", "dataset": "other"})}})
        with pytest.raises(InvalidInputError, match="registers t/other, not t/d"):
            reader.get("t", "d")
        stub.add_client_error("get_parameter", "ThrottlingException")
        with pytest.raises(TransientError, match="/sdlf/a/b/c/datasets/t/d"):
            reader.get("t", "d")


def test_failure_reason_is_clipped():
    reason = failure_reason({"Error": "E", "Cause": json.dumps({"errorMessage": "x" * 5000})})
    assert len(reason) == 2000 and reason.endswith("...")


def test_salvage_object_fills_team_and_dataset_from_the_key():
    obj = salvage_object({"bucket": "raw", "key": "t/d/f.csv", "size": True, "etag": {"odd": 1}})
    assert (obj.uri, obj.team, obj.dataset, obj.size, obj.etag) == ("s3://raw/t/d/f.csv", "t", "d", None, None)
    assert salvage_object(12).uri is None


def test_error_handler_raises_transient_error_only_when_every_failed_step_was_transient(credentials):
    from sdlf_datalake.failures import ErrorHandlingIncomplete
    from sdlf_datalake.stage_a.failures import ErrorHandlerA, ErrorHandlerAConfig

    clients = {name: boto3.client(name, region_name=REGION) for name in ("sqs", "sns", "dynamodb")}
    config = ErrorHandlerAConfig("catalog", "executions", "https://q/dlq", "arn:aws:sns:eu-west-1:1:t", "engineering")
    handler = ErrorHandlerA(config, sqs=clients["sqs"], sns=clients["sns"], dynamodb=clients["dynamodb"])
    event = {"object": {"bucket": "raw", "key": "engineering/persons/p.csv"}, "error": {"Error": "E", "Cause": "c"}}
    with Stubber(clients["sqs"]) as sqs, Stubber(clients["sns"]) as sns, Stubber(clients["dynamodb"]) as ddb:
        sqs.add_response("send_message", {"MessageId": "m1"})
        ddb.add_client_error("update_item", "ProvisionedThroughputExceededException")
        sns.add_client_error("publish", "Throttling")
        with pytest.raises(TransientError, match="incomplete: catalog: .*; notify: "):
            handler.handle(event)
        sqs.add_client_error("send_message", "ThrottlingException")
        ddb.add_response("update_item", {})
        sns.add_client_error("publish", "AuthorizationError", http_status_code=403)
        with pytest.raises(ErrorHandlingIncomplete, match="incomplete: dlq: .*; notify: "):
            handler.handle(event)
