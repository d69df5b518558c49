"""The gateways turn botocore's errors into the project's: absence is NotFound (and an answer where the
question is "does it exist"), a refusal is AccessDenied (never read as absence), no answer is Unreachable."""
from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError
from botocore.stub import Stubber

from sdlf_cli.aws.queues import Queues
from sdlf_cli.aws.storage import Storage
from sdlf_cli.aws.tables import Tables
from sdlf_cli.errors import AccessDenied, AwsError, NotFound, SdlfError, Unreachable


def client(service: str):
    return boto3.client(service, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


def test_absence_answers_the_existence_questions_and_a_refusal_is_raised():
    tables, storage = Tables(client("dynamodb")), Storage(client("s3"))
    with Stubber(tables.client) as ddb, Stubber(storage.client) as s3:
        ddb.add_client_error("describe_table", "ResourceNotFoundException", "Requested resource not found")
        ddb.add_client_error("describe_table", "AccessDeniedException", "not authorized to dynamodb:DescribeTable")
        s3.add_client_error("head_bucket", "404", "Not Found", http_status_code=404)
        s3.add_client_error("head_bucket", "403", "Forbidden", http_status_code=403)
        assert tables.exists("gone") is False
        with pytest.raises(AccessDenied, match="dynamodb describe_table: AccessDeniedException: not authorized"):
            tables.exists("theirs")
        assert storage.bucket_exists("gone") is False
        with pytest.raises(AccessDenied):
            storage.bucket_exists("theirs")


def test_queue_urls_by_name_and_other_errors_keep_their_code():
    queues = Queues(client("sqs"))
    with Stubber(queues.client) as sqs:
        sqs.add_client_error("get_queue_url", "AWS.SimpleQueueService.NonExistentQueue", "no queue")
        sqs.add_client_error("get_queue_url", "QueueDoesNotExist", "no queue")
        sqs.add_client_error("get_queue_url", "ThrottlingException", "slow down")
        assert queues.url_of("a") is None and queues.url_of("b") is None
        with pytest.raises(AwsError) as raised:
            queues.url_of("c")
    assert type(raised.value) is AwsError and raised.value.code == "ThrottlingException"
    assert isinstance(raised.value, SdlfError) and raised.value.exit_code == 1


def test_no_answer_is_unreachable_with_botocores_words():
    tables = Tables(client("dynamodb"))

    def down(**kwargs):
        raise EndpointConnectionError(endpoint_url="http://127.0.0.1:9")

    tables.client.get_item = down
    with pytest.raises(Unreachable) as raised:
        tables.get("catalog", "s3://b/k")
    assert str(raised.value) == 'AWS call failed: Could not connect to the endpoint URL: "http://127.0.0.1:9"'
    assert not isinstance(raised.value, NotFound)


def test_the_stacks_of_a_name_prefix_are_listed_then_described_one_by_one():
    """A principal allowed its lake's stacks only may not DescribeStacks without a stack (that is authorized
    on every stack): the lake's stacks are found with ListStacks and described by name."""
    from sdlf_cli.aws.cloudformation import CloudFormationGateway

    client = boto3.client("cloudformation", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    when = "2026-01-01T00:00:00Z"

    def summary(name: str, status: str) -> dict:
        return {"StackName": name, "StackId": f"id-{name}", "StackStatus": status, "CreationTime": when}

    with Stubber(client) as stub:
        stub.add_response("list_stacks", {"StackSummaries": [
            summary("acme-lake-dev-foundations", "UPDATE_COMPLETE"), summary("acme-lake-dev-team-a", "DELETE_COMPLETE"),
            summary("acme-lake-prod-foundations", "CREATE_COMPLETE"), summary("someone-else", "CREATE_COMPLETE")]}, {})
        stub.add_response("describe_stacks", {"Stacks": [{**summary("acme-lake-dev-foundations", "UPDATE_COMPLETE"),
                                                          "Tags": [{"Key": "sdlf:env", "Value": "dev"}]}]},
                          {"StackName": "acme-lake-dev-foundations"})
        stacks = CloudFormationGateway(client).list_stacks(name_prefix="acme-lake-dev-")
        stub.assert_no_pending_responses()  # no DescribeStacks without a stack, none of another lake's stacks
    assert [(s.name, s.tags) for s in stacks] == [("acme-lake-dev-foundations", {"sdlf:env": "dev"})]
