"""Seam: the emulator refuses S3 keys longer than 1,024 bytes of UTF-8 as AWS does (KeyTooLongError); moto
alone stores them, so code that would fail on AWS passed on the emulator."""
from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError

from sdlf_cli.local.cfn import _patching
from sdlf_cli.local.cfn.buckets import S3_KEY_LIMIT


@pytest.fixture(scope="module")
def s3(emulator):
    client = boto3.client("s3", endpoint_url=emulator.endpoint_url, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    client.create_bucket(Bucket="key-limit")
    return client


def test_a_key_of_exactly_the_limit_is_stored_and_one_byte_more_is_refused(s3):
    longest = "k" * (S3_KEY_LIMIT - len("ü".encode())) + "ü"
    s3.put_object(Bucket="key-limit", Key=longest, Body=b"x")
    assert s3.get_object(Bucket="key-limit", Key=longest)["Body"].read() == b"x"
    for call in (lambda key: s3.put_object(Bucket="key-limit", Key=key, Body=b"x"),
                 lambda key: s3.copy_object(Bucket="key-limit", Key=key, CopySource={"Bucket": "key-limit", "Key": longest}),
                 lambda key: s3.create_multipart_upload(Bucket="key-limit", Key=key)):
        with pytest.raises(ClientError) as refused:
            call(longest + "k")
        assert refused.value.response["Error"]["Code"] == "KeyTooLongError"
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_the_patches_are_named_and_installed():
    assert {"s3.key-length-limit.put", "s3.key-length-limit.copy", "s3.key-length-limit.multipart"} <= \
        set(_patching.installed_names())
