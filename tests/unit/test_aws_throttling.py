"""CloudFormation throttles a busy account ("Rate exceeded"); a deploy with many stacks in flight backs off and
goes on instead of failing a stack, and a throttle that outlasts the retries fails with AWS's own words."""
from __future__ import annotations

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.stub import Stubber

from sdlf_cli.aws.cloudformation import CloudFormationError, CloudFormationGateway
from sdlf_cli.aws.session import AwsTarget, Clients

THROTTLED = b"""<ErrorResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/">
  <Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error>
  <RequestId>throttled</RequestId></ErrorResponse>"""

FOUND = b"""<DescribeStacksResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/">
  <DescribeStacksResult><Stacks><member>
    <StackId>arn:aws:cloudformation:us-east-1:123456789012:stack/sdlf-dev-foundations/1</StackId>
    <StackName>sdlf-dev-foundations</StackName><StackStatus>CREATE_COMPLETE</StackStatus>
    <CreationTime>2026-01-01T00:00:00Z</CreationTime>
  </member></Stacks></DescribeStacksResult>
  <ResponseMetadata><RequestId>ok</RequestId></ResponseMetadata></DescribeStacksResponse>"""


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_):
        yield self.data


class CloudFormationAnswers:
    """Answers each request sent (so nothing reaches the network) with the next canned HTTP response."""

    def __init__(self, *answers: tuple[int, bytes]) -> None:
        self.answers = list(answers)
        self.sent = 0

    def __call__(self, request, **_):
        self.sent += 1
        status, body = self.answers.pop(0)
        return AWSResponse(request.url, status, {"Content-Type": "text/xml"}, _Body(body))


def aws_clients() -> Clients:
    session = boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1")
    return Clients(AwsTarget(region="us-east-1"), session=session)


def test_throttled_calls_are_retried_with_backoff_on_aws():
    client = aws_clients().client("cloudformation")
    answers = CloudFormationAnswers((400, THROTTLED), (400, THROTTLED), (200, FOUND))
    client.meta.events.register("before-send.cloudformation.DescribeStacks", answers)

    stack = CloudFormationGateway(client).describe_stack("sdlf-dev-foundations")

    assert stack is not None and stack.status == "CREATE_COMPLETE"
    assert answers.sent == 3  # two throttled attempts, then the answer
    retries = client.meta.config.retries
    assert retries["mode"] == "adaptive"  # one client-side rate for every thread sharing the client
    assert retries["total_max_attempts"] >= 5


def test_the_clients_threads_share_one_client_so_they_back_off_together():
    clients = aws_clients()
    assert clients.client("cloudformation") is clients.client("cloudformation")


def test_a_throttle_that_outlasts_the_retries_names_the_call_and_awss_reason():
    client = aws_clients().client("cloudformation")
    gateway = CloudFormationGateway(client)
    with Stubber(client) as stub:
        stub.add_client_error("describe_stacks", "Throttling", "Rate exceeded", http_status_code=400)
        with pytest.raises(CloudFormationError, match="DescribeStacks sdlf-dev-team-a: Throttling: Rate exceeded"):
            gateway.describe_stack("sdlf-dev-team-a")


class TimesOut:
    """Every request sent times out reading the answer (a synchronous invoke still running), counted."""

    def __init__(self) -> None:
        self.sent = 0

    def __call__(self, request, **_):
        from botocore.exceptions import ReadTimeoutError

        self.sent += 1
        raise ReadTimeoutError(endpoint_url=request.url)


@pytest.mark.parametrize("target", [AwsTarget(region="us-east-1"),
                                    AwsTarget(region="us-east-1", endpoint_url="http://127.0.0.1:4566")])
def test_a_synchronous_invoke_waits_as_long_as_a_function_runs_and_is_never_sent_twice(target):
    from sdlf_cli.aws.functions import INVOKE_READ_TIMEOUT, MAX_FUNCTION_SECONDS, Functions
    from sdlf_cli.errors import AwsError

    session = boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1")
    clients = Clients(target, session=session)
    invoker = clients.client("lambda", read_timeout=INVOKE_READ_TIMEOUT)
    assert invoker.meta.config.read_timeout > MAX_FUNCTION_SECONDS
    assert invoker is not clients.client("lambda")  # other Lambda calls keep their retries
    timing_out = TimesOut()
    invoker.meta.events.register("before-send.lambda.Invoke", timing_out)

    with pytest.raises(AwsError, match="ReadTimeoutError"):
        Functions(clients.client("lambda"), invoker).invoke("acme-lake-dev-routing-b", {"force": True})
    # a second attempt would run the function again while the first still runs
    assert timing_out.sent == 1
