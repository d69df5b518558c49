"""A template too large to pass inline is uploaded and named by a URL in the region's own partition."""
from __future__ import annotations

import boto3
import pytest
from botocore.stub import ANY, Stubber

from sdlf_cli.aws.partition import dns_suffix, s3_object_url
from sdlf_cli.aws.session import AwsTarget, Clients
from sdlf_cli.deploy import NullReporter, StackSpec
from sdlf_cli.lake import Lake
from sdlf_cli.workflows.deploy import LayerDeployer
from tests.snapshots.layers import lake


@pytest.mark.parametrize("region, suffix", [
    ("us-east-1", "amazonaws.com"), ("cn-north-1", "amazonaws.com.cn"), ("cn-northwest-1", "amazonaws.com.cn"),
    ("us-gov-west-1", "amazonaws.com"), ("eu-west-1", "amazonaws.com"),
])
def test_the_dns_suffix_is_the_partitions(region, suffix):
    assert dns_suffix(region) == suffix
    assert s3_object_url("b", "k/t.yaml", region) == f"https://b.s3.{region}.{suffix}/k/t.yaml"


def test_the_deployer_names_an_uploaded_template_in_the_china_partition():
    session = boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name="cn-north-1")
    clients = Clients(AwsTarget(region="cn-north-1"), session)
    deployer = LayerDeployer(Lake(lake(), clients), NullReporter())
    spec = StackSpec("acme-lake-dev-pipeline-eng-main", "pipeline", "x" * 60_000, {}, {})
    with Stubber(clients.client("s3")) as stub:
        stub.add_response("put_object", {"ETag": "\"e\""}, {"Bucket": "artifacts", "Key": ANY, "Body": ANY})
        uploaded = deployer._with_template_url(spec, "artifacts", dry_run=False)
    assert uploaded.template_url.startswith("https://artifacts.s3.cn-north-1.amazonaws.com.cn/templates/")
