"""Seams of `AWS::KMS::Key` and stack deletion on the emulator: a key CloudFormation made answers the KMS API
(its policy is stored as JSON text), and DeletionPolicy Retain keeps a resource when its stack is deleted."""
from __future__ import annotations

import json

from tests.integration.test_emulator_cfn_helpers import client, delete, deploy, unique

POLICY = {"Version": "2012-10-17", "Statement": [{
    "Sid": "Root", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
    "Action": "kms:*", "Resource": "*"}]}


def test_key_made_by_cloudformation_can_be_described_and_scheduled_for_deletion(emulator):
    stack = deploy(emulator, unique("key"), {"Resources": {
        "Key": {"Type": "AWS::KMS::Key", "Properties": {"Description": "seam", "KeyPolicy": POLICY}}},
        "Outputs": {"KeyId": {"Value": {"Ref": "Key"}}}})
    key_id = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}["KeyId"]
    kms = client(emulator, "kms")
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["Description"] == "seam"
    assert json.loads(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]) == POLICY
    kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "PendingDeletion"


def test_deleting_a_stack_keeps_its_retained_resources(emulator):
    kept, gone, name = unique("kept"), unique("gone"), unique("retain")
    deploy(emulator, name, {"Resources": {
        "Kept": {"Type": "AWS::S3::Bucket", "DeletionPolicy": "Retain", "Properties": {"BucketName": kept}},
        "Gone": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": gone}}}})
    delete(emulator, name)
    buckets = {b["Name"] for b in client(emulator, "s3").list_buckets()["Buckets"]}
    assert kept in buckets and gone not in buckets


def test_deleting_a_stack_deletes_its_managed_policy_so_it_can_be_created_again(emulator):
    policy, name = unique("boundary"), unique("policy")
    template = {"Resources": {"Boundary": {"Type": "AWS::IAM::ManagedPolicy", "Properties": {
        "ManagedPolicyName": policy,
        "PolicyDocument": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}}},
        "Role": {"Type": "AWS::IAM::Role", "Properties": {
            "RoleName": unique("role"), "PermissionsBoundary": {"Ref": "Boundary"}, "ManagedPolicyArns": [{"Ref": "Boundary"}],
            "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}}}}}
    deploy(emulator, name, template)
    delete(emulator, name)
    iam = client(emulator, "iam")
    assert policy not in {p["PolicyName"] for p in iam.list_policies(Scope="Local")["Policies"]}
    assert deploy(emulator, name, template)["StackStatus"] == "CREATE_COMPLETE"
