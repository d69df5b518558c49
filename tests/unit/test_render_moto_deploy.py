"""The rendered bootstrap and foundations templates deploy on moto (in-process, no network).

This guards against template features moto cannot parse at all. Resource types moto skips (bucket,
queue and topic policies, subscriptions, Athena, Lake Formation) are the emulator's business
(sdlf_cli/local/); here we check what plain moto does build.
"""
from __future__ import annotations

import io
import json
import zipfile

import boto3
import pytest
from moto import mock_aws

from sdlf_cli.render import render_layer
from tests.snapshots import FULL, TEMPLATES_DIR
from tests.unit.test_render import FOUNDATIONS_OUTPUTS

REGION = "eu-west-1"
ACCOUNT = "123456789012"  # moto's default account


def tiny_zip(path: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(path, "def handler(event, context):\n    return {}\n")
    return buffer.getvalue()


@pytest.fixture
def deployed(monkeypatch):
    for var, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(var, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        cfn = boto3.client("cloudformation", region_name=REGION)
        (bootstrap,) = render_layer(FULL, "bootstrap", TEMPLATES_DIR)
        cfn.create_stack(StackName=bootstrap.stack_name, TemplateBody=bootstrap.body)
        boot_outputs = outputs(cfn, bootstrap.stack_name)

        s3 = boto3.client("s3", region_name=REGION)
        artifacts = boot_outputs["ArtifactsBucket"]
        s3.put_object(Bucket=artifacts, Key="lambda/catalog.zip", Body=tiny_zip("handler.py"))
        s3.put_object(Bucket=artifacts, Key="layers/datalake.zip", Body=tiny_zip("python/sdlf_datalake/__init__.py"))

        (foundations,) = render_layer(FULL, "foundations", TEMPLATES_DIR)
        cfn.create_stack(
            StackName=foundations.stack_name,
            TemplateBody=foundations.body,
            Capabilities=["CAPABILITY_NAMED_IAM"],
            Parameters=[
                {"ParameterKey": "pArtifactsBucket", "ParameterValue": artifacts},
                {"ParameterKey": "pCodeCatalogKey", "ParameterValue": "lambda/catalog.zip"},
                {"ParameterKey": "pLayerDatalakeKey", "ParameterValue": "layers/datalake.zip"},
                # Lake Formation is on in FULL: the deployer passes the principal CloudFormation acts as.
                {"ParameterKey": "pLakeFormationAdmin",
                 "ParameterValue": f"arn:aws:iam::{ACCOUNT}:role/deployer"},
            ],
        )
        yield cfn, boot_outputs, foundations.stack_name


def outputs(cfn, stack_name: str) -> dict[str, str]:
    (stack,) = cfn.describe_stacks(StackName=stack_name)["Stacks"]
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


@pytest.mark.filterwarnings("ignore:Tried to parse AWS::")  # types moto skips, see module docstring
def test_bootstrap_and_foundations_deploy_on_moto(deployed):
    cfn, boot_outputs, stack_name = deployed
    names = FULL.names
    assert boot_outputs["ArtifactsBucket"] == names.resolve(names.bucket("artifacts"), ACCOUNT, REGION)
    assert boot_outputs["ArtifactsKeyArn"].startswith(f"arn:aws:kms:{REGION}:{ACCOUNT}:key/")

    found = outputs(cfn, stack_name)
    assert set(found) == set(FOUNDATIONS_OUTPUTS)
    for kind in ("raw", "stage", "analytics", "athena", "logs"):
        assert found[f"{kind.capitalize()}Bucket"] == names.resolve(names.bucket(kind), ACCOUNT, REGION)
    assert found["CatalogTable"] == names.table("catalog")
    assert found["CatalogFunction"] == names.function("catalog")
    assert found["AthenaWorkgroup"] == names.workgroup("primary")

    # every output is also in SSM, under the contract path
    ssm = boto3.client("ssm", region_name=REGION)
    params = {}
    for page in ssm.get_paginator("get_parameters_by_path").paginate(Path=names.ssm_prefix, Recursive=True):
        params.update({p["Name"]: p["Value"] for p in page["Parameters"]})
    assert set(params) == {names.ssm(path) for path in FOUNDATIONS_OUTPUTS.values()}
    for key, path in FOUNDATIONS_OUTPUTS.items():
        assert params[names.ssm(path)] == found[key], key

    s3 = boto3.client("s3", region_name=REGION)
    rule = s3.get_bucket_encryption(Bucket=found["RawBucket"])["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms", "KMSMasterKeyID": found["KmsKeyArn"]}
    # (moto's bucket model applies only BucketEncryption and Tags from the template; versioning,
    # lifecycle, logging, public access block and notifications are left to the emulator.)

    table = boto3.client("dynamodb", region_name=REGION).describe_table(TableName=found["CatalogTable"])["Table"]
    assert [i["IndexName"] for i in table["GlobalSecondaryIndexes"]] == ["by-dataset"]

    sqs = boto3.client("sqs", region_name=REGION)
    attrs = sqs.get_queue_attributes(QueueUrl=found["CatalogQueueUrl"], AttributeNames=["All"])["Attributes"]
    assert attrs["VisibilityTimeout"] == "180"
    assert json.loads(attrs["RedrivePolicy"])["maxReceiveCount"] == 5

    function = boto3.client("lambda", region_name=REGION).get_function_configuration(
        FunctionName=found["CatalogFunction"])
    assert function["Environment"]["Variables"]["CATALOG_TABLE"] == found["CatalogTable"]
    assert json.loads(function["Environment"]["Variables"]["BUCKET_STAGES"]) == {
        found["RawBucket"]: "raw", found["StageBucket"]: "stage", found["AnalyticsBucket"]: "analytics"}
    mappings = boto3.client("lambda", region_name=REGION).list_event_source_mappings(
        FunctionName=found["CatalogFunction"])["EventSourceMappings"]
    assert [m["BatchSize"] for m in mappings] == [10]
