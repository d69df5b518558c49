"""The Spark engine's staging clean-up: a key S3 refuses to delete is reported, never dropped silently."""
from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from tests.unit.test_glue_helpers import load_script

heavy = load_script("heavy_transform")
STAGING = "s3://stage-bucket/sales/orders/_batches/b1/_spark_output/"


def _s3():
    return boto3.client("s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


def _listing(stub, keys):
    stub.add_response("list_objects_v2", {"Contents": [{"Key": k} for k in keys], "IsTruncated": False},
                      {"Bucket": "stage-bucket", "Prefix": "sales/orders/_batches/b1/_spark_output/"})


def test_a_refused_delete_fails_the_job_naming_the_keys_and_the_reason():
    s3 = _s3()
    keys = ["sales/orders/_batches/b1/_spark_output/part-0.parquet", "sales/orders/_batches/b1/_spark_output/_SUCCESS"]
    with Stubber(s3) as stub:
        _listing(stub, keys)
        stub.add_response("delete_objects", {"Errors": [{"Key": keys[0], "Code": "AccessDenied", "Message": "Access Denied"}]},
                          {"Bucket": "stage-bucket", "Delete": {"Objects": [{"Key": k} for k in keys], "Quiet": True}})
        with pytest.raises(heavy.JobError) as failed:
            heavy._delete_prefix(s3, STAGING)
    message = str(failed.value)
    assert STAGING in message and keys[0] in message and "AccessDenied" in message and "s3:DeleteObject" in message


def test_a_complete_delete_is_quiet():
    s3 = _s3()
    keys = ["sales/orders/_batches/b1/_spark_output/part-0.parquet"]
    with Stubber(s3) as stub:
        _listing(stub, keys)
        stub.add_response("delete_objects", {},
                          {"Bucket": "stage-bucket", "Delete": {"Objects": [{"Key": k} for k in keys], "Quiet": True}})
        heavy._delete_prefix(s3, STAGING)
