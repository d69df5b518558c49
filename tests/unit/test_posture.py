"""The security posture of every resource of every lake (tests/unit/security_lakes.py), read from the
rendered templates: encryption with customer-managed keys, TLS-only resource policies, logging and
tracing, explicit deletion policies, and IAM (no "*" action, "*" resources only for the actions listed
in sdlf_cli/policy/exceptions.py, every action real, every team role under the team boundary).
"""
from __future__ import annotations

from functools import cache

import pytest
from cfn_tools import load_yaml

from sdlf_cli.policy import actions
from sdlf_cli.policy.documents import as_list, documents, statements
from sdlf_cli.policy.exceptions import ROLES_WITHOUT_BOUNDARY, UNSCOPED_ACTIONS
from tests.unit.security_lakes import all_rendered

STATEFUL = ("AWS::S3::Bucket", "AWS::DynamoDB::Table", "AWS::KMS::Key", "AWS::Logs::LogGroup", "AWS::SQS::Queue",
            "AWS::Lambda::LayerVersion")
LOG_BUCKETS = {"rLogsBucket", "rArtifactsLogsBucket"}


@cache
def templates() -> tuple[tuple[str, dict], ...]:
    return tuple((t.output_name, load_yaml(t.body)) for t in all_rendered())


def resources(*types: str):
    for name, template in templates():
        for logical_id, resource in template["Resources"].items():
            if resource["Type"] in types:
                yield f"{name}:{logical_id}", logical_id, resource, resource.get("Properties") or {}


def policy_statements(*kinds: str):
    for name, template in templates():
        for doc in documents(template):
            if doc.kind in kinds:
                for statement in statements(doc.document):
                    yield f"{name}:{doc.resource}:{statement.get('Sid', '')}", statement


def test_every_lake_renders_every_layer():
    layers = {name.split("/")[1] for name, _ in templates()}
    assert {"bootstrap", "foundations", "team", "pipeline", "dataset"} <= layers


# --- encryption ------------------------------------------------------------------------------------


def test_buckets_use_kms_versioning_access_logs_and_block_public_access():
    for where, logical_id, _, props in resources("AWS::S3::Bucket"):
        sse = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
        assert props["VersioningConfiguration"]["Status"] == "Enabled", where
        assert set(props["PublicAccessBlockConfiguration"].values()) == {True}, where
        if logical_id in LOG_BUCKETS:  # S3 access logs can only be delivered to SSE-S3 buckets
            assert sse == {"SSEAlgorithm": "AES256"} and "LoggingConfiguration" not in props, where
        else:
            assert sse["SSEAlgorithm"] == "aws:kms" and "KMSMasterKeyID" in sse, where
            assert props["LoggingConfiguration"]["DestinationBucketName"]["Ref"] in LOG_BUCKETS, where


def test_queues_topics_tables_log_groups_and_keys_are_encrypted_with_customer_managed_keys():
    for where, _, _, props in resources("AWS::SQS::Queue", "AWS::SNS::Topic"):
        assert "KmsMasterKeyId" in props and "alias/aws/" not in str(props["KmsMasterKeyId"]), where
    for where, _, _, props in resources("AWS::DynamoDB::Table"):
        sse = props["SSESpecification"]
        assert sse["SSEEnabled"] is True and sse["SSEType"] == "KMS" and "KMSMasterKeyId" in sse, where
    for where, _, _, props in resources("AWS::Logs::LogGroup"):
        assert "KmsKeyId" in props and props["RetentionInDays"] > 0, where
    for where, _, _, props in resources("AWS::KMS::Key"):
        assert props["EnableKeyRotation"] is True, where
    for where, _, _, props in resources("AWS::Athena::WorkGroup"):
        configuration = props["WorkGroupConfiguration"]
        assert configuration["EnforceWorkGroupConfiguration"] is True, where
        encryption = configuration["ResultConfiguration"]["EncryptionConfiguration"]
        assert encryption["EncryptionOption"] == "SSE_KMS" and "KmsKey" in encryption, where


def test_glue_jobs_and_crawlers_run_under_a_security_configuration_of_kms_everywhere():
    jobs = list(resources("AWS::Glue::Job", "AWS::Glue::Crawler"))
    assert jobs
    for where, _, resource, props in jobs:
        key = "SecurityConfiguration" if resource["Type"] == "AWS::Glue::Job" else "CrawlerSecurityConfiguration"
        assert props[key] == {"Ref": "pGlueSecurityConfiguration"}, where
    configurations = list(resources("AWS::Glue::SecurityConfiguration"))
    assert configurations
    for where, _, _, props in configurations:
        encryption = props["EncryptionConfiguration"]
        assert [e["S3EncryptionMode"] for e in encryption["S3Encryptions"]] == ["SSE-KMS"], where
        assert encryption["CloudWatchEncryption"]["CloudWatchEncryptionMode"] == "SSE-KMS", where
        assert encryption["JobBookmarksEncryption"]["JobBookmarksEncryptionMode"] == "CSE-KMS", where


# --- transport, logging, tracing, deletion ---------------------------------------------------------


def _denies_insecure_transport(document: dict, prefix: str) -> bool:
    return any(s["Effect"] == "Deny" and s.get("Principal") == "*"
               and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
               and any(a in (f"{prefix}:*", f"{prefix}:Publish") for a in as_list(s["Action"]))
               for s in statements(document))


def test_every_bucket_queue_and_topic_has_a_tls_only_resource_policy():
    for types, policy_type, key, prefix in (
        (("AWS::S3::Bucket",), "AWS::S3::BucketPolicy", "Bucket", "s3"),
        (("AWS::SQS::Queue",), "AWS::SQS::QueuePolicy", "Queues", "sqs"),
        (("AWS::SNS::Topic",), "AWS::SNS::TopicPolicy", "Topics", "sns"),
    ):
        for name, template in templates():
            covered = set()
            for resource in template["Resources"].values():
                if resource["Type"] == policy_type and _denies_insecure_transport(
                        resource["Properties"]["PolicyDocument"], prefix):
                    covered |= {ref["Ref"] for ref in as_list(resource["Properties"][key])}
            owned = {i for i, r in template["Resources"].items() if r["Type"] in types}
            assert owned <= covered, f"{name}: {sorted(owned - covered)} accept plain HTTP"


def test_functions_are_traced_and_state_machines_log_without_data_and_trace():
    functions = list(resources("AWS::Lambda::Function"))
    assert functions
    for where, _, _, props in functions:
        assert props["TracingConfig"] == {"Mode": "Active"}, where
    for where, _, _, props in resources("AWS::StepFunctions::StateMachine"):
        logging = props["LoggingConfiguration"]
        assert logging["Level"] in ("ALL", "ERROR") and logging["IncludeExecutionData"] is False, where
        assert props["TracingConfiguration"] == {"Enabled": True}, where


def test_asynchronously_invoked_functions_have_a_dead_letter_queue():
    """Functions a schedule (EventBridge) invokes run asynchronously: their failures need a DLQ."""
    for name, template in templates():
        scheduled = {str(t["Arn"]) for r in template["Resources"].values() if r["Type"] == "AWS::Events::Rule"
                     and "ScheduleExpression" in r["Properties"] for t in r["Properties"]["Targets"]}
        for logical_id, resource in template["Resources"].items():
            if resource["Type"] == "AWS::Lambda::Function" and logical_id == "rRoutingBFunction":
                assert "TargetArn" in resource["Properties"]["DeadLetterConfig"], f"{name}:{logical_id}"
        # Dataset schedules invoke the pipeline's routing-b, which the check above covers.
        assert all("RoutingB" in arn or "routing-b" in arn for arn in scheduled), (name, scheduled)


def test_stateful_resources_have_explicit_deletion_and_replacement_policies():
    for where, _, resource, _ in resources(*STATEFUL):
        assert resource.get("DeletionPolicy") in ("Retain", "Delete", "Snapshot", "RetainExceptOnCreate"), where
        assert resource.get("UpdateReplacePolicy") in ("Retain", "Delete", "Snapshot"), where
    for where, _, resource, _ in resources("AWS::S3::Bucket", "AWS::DynamoDB::Table"):
        assert resource["DeletionPolicy"] == "Retain", where  # data stays


# --- IAM -------------------------------------------------------------------------------------------


def test_every_action_of_every_policy_exists():
    unknown = [(where, a) for where, s in policy_statements("identity", "resource", "key", "trust")
               for a in as_list(s.get("Action", [])) + as_list(s.get("NotAction", [])) if not actions.known(a)]
    assert unknown == []


def test_no_action_star_and_resource_star_only_for_listed_unscoped_actions():
    for where, statement in policy_statements("identity", "resource"):
        assert "*" not in as_list(statement.get("Action", [])), where
        if statement["Effect"] == "Allow":
            assert "NotAction" not in statement and "NotResource" not in statement, where
            if "*" in as_list(statement["Resource"]):
                unlisted = set(as_list(statement["Action"])) - set(UNSCOPED_ACTIONS)
                assert not unlisted, f"{where}: {sorted(unlisted)} on Resource \"*\" (not in exceptions.py)"


@pytest.mark.parametrize("action", sorted(UNSCOPED_ACTIONS))
def test_listed_unscoped_actions_truly_have_no_resource_level_permission(action):
    assert actions.resource_types(action) == []
    assert len(UNSCOPED_ACTIONS[action]) > 30


def test_every_role_carries_its_team_or_lake_boundary_or_a_written_reason():
    roles = list(resources("AWS::IAM::Role"))
    assert roles
    for where, logical_id, resource, props in roles:
        assert not [arn for arn in props.get("ManagedPolicyArns", []) if ":aws:policy/" in str(arn)], where
        if logical_id in ROLES_WITHOUT_BOUNDARY:
            assert "PermissionsBoundary" not in props and len(ROLES_WITHOUT_BOUNDARY[logical_id]) > 40, where
            continue
        layer = where.split("/")[1]
        expected = {"team": "rBoundary", "foundations": "rLakeBoundary"}[layer]
        assert props["PermissionsBoundary"] == {"Ref": expected}, where


def test_action_names_are_checked_against_real_data():
    assert actions.known("s3:GetObject") and actions.known("kms:GenerateDataKey*") and actions.known("sqs:*")
    assert not actions.known("s3:GetObjects") and not actions.known("dynamodb:PutItems")
    assert not actions.known("s4:GetObject") and not actions.known("s3")
    assert actions.resource_types("xray:PutTraceSegments") == []
    assert "object" in actions.resource_types("s3:GetObject")
