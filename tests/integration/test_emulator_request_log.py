"""The emulator's request log counts what it answered by service and operation, for every protocol the lake
uses (JSON target, query Action, S3 and Lambda REST), and its patch comes out again."""
from __future__ import annotations

import boto3

from sdlf_cli.local import request_log
from sdlf_cli.local.cfn import _patching


def client(emulator, service):
    return boto3.client(service, endpoint_url=emulator.endpoint_url, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def test_requests_are_counted_by_service_and_operation(emulator):
    before = request_log.snapshot()
    ssm, s3, sqs, cfn = (client(emulator, s) for s in ("ssm", "s3", "sqs", "cloudformation"))
    ssm.put_parameter(Name="/request-log/a", Value="1", Type="String")
    ssm.get_parameter(Name="/request-log/a")
    ssm.get_parameter(Name="/request-log/a")
    s3.create_bucket(Bucket="request-log-bucket")
    s3.put_object(Bucket="request-log-bucket", Key="k/x.json", Body=b"{}")
    s3.get_object(Bucket="request-log-bucket", Key="k/x.json")
    s3.copy_object(Bucket="request-log-bucket", Key="k/y.json", CopySource="request-log-bucket/k/x.json")
    sqs.create_queue(QueueName="request-log-queue")
    cfn.list_stacks()

    counted = request_log.snapshot() - before
    assert counted[("ssm", "PutParameter")] == 1
    assert counted[("ssm", "GetParameter")] == 2
    assert counted[("s3", "CreateBucket")] == 1
    assert counted[("s3", "PutObject")] == 1
    assert counted[("s3", "GetObject")] == 1
    assert counted[("s3", "CopyObject")] == 1
    assert counted[("sqs", "CreateQueue")] == 1
    assert counted[("cloudformation", "ListStacks")] == 1  # query protocol: Action in the form body
    assert sum(counted.values()) == 9


def test_the_patch_is_named_and_comes_out_again(emulator):
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    assert request_log.PATCH_NAME in _patching.installed_names()
    counting = DomainDispatcherApplication.__call__
    uninstall = request_log.install()  # idempotent: the same patch stays
    assert DomainDispatcherApplication.__call__ is counting
    uninstall()
    try:
        assert request_log.PATCH_NAME not in _patching.installed_names()
        assert DomainDispatcherApplication.__call__ is not counting
    finally:
        request_log.install()


def test_the_emulators_own_requests_in_awss_stead_are_counted_apart(emulator):
    from botocore.config import Config

    before, internal_before = request_log.snapshot(), request_log.snapshot(internal=True)
    own = boto3.client("cloudwatch", endpoint_url=emulator.endpoint_url, region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing",
                       config=Config(user_agent_extra=request_log.EMULATOR_AGENT))
    own.describe_alarms()
    assert (request_log.snapshot(internal=True) - internal_before)[("monitoring", "DescribeAlarms")] == 1
    assert ("monitoring", "DescribeAlarms") not in request_log.snapshot() - before
