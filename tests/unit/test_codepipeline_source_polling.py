"""The emulator's S3 source polling (and a rule's pipeline target, which S3's own events reach from inside the S3
request) starts a pipeline only once the S3 request that wrote the source object has finished: moto sets the
object's metadata after S3Backend.put_object returns, and the execution's revision summary comes from that
metadata."""
from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from sdlf_cli.local.cfn import _patching
from sdlf_cli.local.runtime import codepipeline_api

BUCKET, KEY = "source-bucket", "source.zip"
PATCHES = ("codepipeline: s3 source polling", "codepipeline: s3 source polling after key_response",
           "codepipeline: s3 source polling after bucket_response")


class SeesTheObject:
    """A pipeline executor that records, as each execution starts, what the source object looks like then."""

    def __init__(self):
        self.starts: list[tuple[str, str, str | None]] = []

    def start(self, backend, name, variables, trigger, source):
        from moto.s3.models import s3_backends

        if trigger != "PollForSourceChanges":  # an in-process emulator that ran before leaves its creation hook
            return
        key = s3_backends[backend.account_id]["global"].get_object(BUCKET, KEY)
        self.starts.append((name, source, key.metadata.get("x-amz-meta-codepipeline-artifact-revision-summary")))


@pytest.fixture
def polling():
    """The polling patches with a recording executor; put back as they were afterwards (an in-process emulator
    that ran earlier in this worker leaves its patches installed)."""
    from moto.s3.models import S3Backend
    from moto.s3.responses import S3Response

    before = set(_patching.installed_names())
    previous = codepipeline_api._state.get("executor")
    executor = SeesTheObject()
    codepipeline_api._state["executor"] = executor
    _patching.wrap(S3Backend, "put_object", PATCHES[0], codepipeline_api._put_object)
    for patch, handler in zip(PATCHES[1:], ("key_response", "bucket_response")):
        _patching.wrap(S3Response, handler, patch, codepipeline_api._s3_handler)
    try:
        with mock_aws():
            yield executor
    finally:
        for patch in set(PATCHES) - before:
            _patching.uninstall(patch)
        if previous is None:
            codepipeline_api._state.pop("executor", None)
        else:
            codepipeline_api._state["executor"] = previous


def _pipeline_polling_the_bucket(region="us-east-1", poll="true"):
    role = boto3.client("iam", region_name=region).create_role(
        RoleName="pipeline", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Service": "codepipeline.amazonaws.com"}, "Action": "sts:AssumeRole"}]}))
    s3 = boto3.client("s3", region_name=region)
    s3.create_bucket(Bucket=BUCKET)
    s3.create_bucket(Bucket="artifacts")
    source = {"name": "Zip", "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"},
              "configuration": {"S3Bucket": BUCKET, "S3ObjectKey": KEY, "PollForSourceChanges": poll},
              "outputArtifacts": [{"name": "Src"}]}
    build = {"name": "Compile", "actionTypeId": {"category": "Build", "owner": "AWS", "provider": "CodeBuild",
                                                 "version": "1"},
             "configuration": {"ProjectName": "p"}, "inputArtifacts": [{"name": "Src"}]}
    boto3.client("codepipeline", region_name=region).create_pipeline(pipeline={
        "name": "pipe", "roleArn": role["Role"]["Arn"], "artifactStore": {"type": "S3", "location": "artifacts"},
        "stages": [{"name": "Source", "actions": [source]}, {"name": "Build", "actions": [build]}]})
    return s3


def test_a_put_starts_the_polling_pipeline_with_the_object_whole(polling):
    s3 = _pipeline_polling_the_bucket()

    s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"zip", Metadata={"codepipeline-artifact-revision-summary":
                                                                  "first release"})

    assert polling.starts == [("pipe", "Zip", "first release")]


def test_other_keys_and_pipelines_that_do_not_poll_start_nothing(polling):
    s3 = _pipeline_polling_the_bucket(poll="false")

    s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"zip")
    s3.put_object(Bucket=BUCKET, Key="other.zip", Body=b"zip")

    assert polling.starts == []


def test_a_write_outside_any_request_starts_at_once(polling):
    from moto.s3.models import s3_backends

    _pipeline_polling_the_bucket()
    s3_backends["123456789012"]["global"].put_object(BUCKET, KEY, b"zip")

    assert polling.starts == [("pipe", "Zip", None)]


def test_a_rule_target_reached_during_an_s3_request_starts_the_pipeline_after_it(polling):
    from moto.s3.responses import S3Response

    class Starts(SeesTheObject):
        def start(self, backend, name, variables, trigger, source):
            self.starts.append((name, trigger, source))

    codepipeline_api._state["executor"] = rule_starts = Starts()
    seen_inside = []

    def request(self, *args, **kwargs):  # an S3 request during which S3's event reaches a rule
        codepipeline_api._start_from_rule("123456789012", "us-east-1", "pipe", "arn:rule")
        seen_inside.append(list(rule_starts.starts))
        return 200, {}, b""

    codepipeline_api._s3_handler(request)(S3Response())
    codepipeline_api._start_from_rule("123456789012", "us-east-1", "pipe", "arn:rule")  # outside any request

    assert seen_inside == [[]]
    assert rule_starts.starts == [("pipe", "CloudWatchEvent", "arn:rule")] * 2
