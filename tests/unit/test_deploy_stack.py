"""StackDeployer against a real CloudFormation client with a botocore Stubber (no network)."""
from __future__ import annotations

import json

from botocore.stub import ANY

from sdlf_cli.deploy import FINGERPRINT_TAG
from tests.unit.test_deploy_helpers import CS_ID, STACK, STACK_ID, Harness, spec

STACK_TYPE = "AWS::CloudFormation::Stack"
REVIEW = ("e0", STACK, STACK_TYPE, "REVIEW_IN_PROGRESS", "User Initiated", 0)


def test_create_path_streams_only_new_events_oldest_first():
    with Harness() as h:
        h.no_stack()
        h.create_change_set("CREATE")
        h.change_set(status="CREATE_PENDING")
        h.change_set(changes=[{"Action": "Add", "LogicalResourceId": "Queue", "ResourceType": "AWS::SQS::Queue"}])
        h.events([REVIEW])
        h.ok("execute_change_set", {"ChangeSetName": CS_ID})
        e1 = ("e1", STACK, STACK_TYPE, "CREATE_IN_PROGRESS", "User Initiated", 1)
        e2 = ("e2", "Queue", "AWS::SQS::Queue", "CREATE_IN_PROGRESS", None, 2)
        e3 = ("e3", "Queue", "AWS::SQS::Queue", "CREATE_COMPLETE", None, 3)
        e4 = ("e4", STACK, STACK_TYPE, "CREATE_COMPLETE", None, 4)
        h.stack("CREATE_IN_PROGRESS", STACK_ID)
        h.events([REVIEW, e1, e2])
        h.change_set(execution="EXECUTE_IN_PROGRESS")
        h.stack("CREATE_COMPLETE", STACK_ID, outputs={"RawBucket": "raw-bucket"})
        h.events([REVIEW, e1, e2, e3, e4])

        result = h.deployer.deploy(spec())
        h.stub.assert_no_pending_responses()

    assert result.status == "created", result.message
    assert result.outputs == {"RawBucket": "raw-bucket"}
    assert [(c.action, c.logical_id) for c in result.changes] == [("Add", "Queue")]
    assert h.reporter.events() == [
        (STACK, "CREATE_IN_PROGRESS", "User Initiated"),
        ("Queue", "CREATE_IN_PROGRESS", None),
        ("Queue", "CREATE_COMPLETE", None),
        (STACK, "CREATE_COMPLETE", None),
    ]
    assert h.reporter.calls[0] == ("started", STACK)
    assert h.reporter.calls[-1] == ("finished", STACK, "created")
    # One poll for the pending change set, one while the stack was in progress.
    assert h.clock.sleeps == [3.0, 3.0]
    assert result.duration == 6.0
    assert json.loads(json.dumps(result.to_dict()))["status"] == "created"


def test_update_path_passes_fingerprint_tag_and_reports_updated():
    s = spec()
    with Harness() as h:
        h.stack("UPDATE_COMPLETE", tags={FINGERPRINT_TAG: "old"})
        h.stub.add_response(
            "create_change_set", {"Id": CS_ID, "StackId": STACK_ID},
            {
                "StackName": STACK, "ChangeSetName": ANY,
                "ChangeSetType": "UPDATE",
                "Parameters": [{"ParameterKey": "pArtifactsBucket", "ParameterValue": "artifacts"}],
                "Tags": [{"Key": "sdlf:fingerprint", "Value": s.fingerprint()}, {"Key": "sdlf:layer", "Value": "foundations"}],
                "Capabilities": ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
                "TemplateBody": s.template_body, "Description": "sdlf foundations " + STACK,
            },
        )
        h.change_set(changes=[{"Action": "Modify", "LogicalResourceId": "Queue", "ResourceType": "AWS::SQS::Queue", "Replacement": "False"}])
        old = ("e0", STACK, STACK_TYPE, "UPDATE_COMPLETE", None, 0)
        h.events([old])
        h.ok("execute_change_set", {"ChangeSetName": CS_ID})
        h.stack("UPDATE_COMPLETE", STACK_ID, outputs={"RawBucket": "raw"})
        h.events([old, ("e1", STACK, STACK_TYPE, "UPDATE_IN_PROGRESS", "User Initiated", 1),
                  ("e2", STACK, STACK_TYPE, "UPDATE_COMPLETE", None, 2)])
        result = h.deployer.deploy(s)
        h.stub.assert_no_pending_responses()
    assert result.status == "updated"
    assert result.outputs == {"RawBucket": "raw"}
    assert h.reporter.events() == [(STACK, "UPDATE_IN_PROGRESS", "User Initiated"), (STACK, "UPDATE_COMPLETE", None)]
    assert h.clock.sleeps == []  # final state on the first poll (the emulator's shape) needs no sleep


def test_empty_change_set_aws_shape_is_unchanged_and_deleted():
    with Harness() as h:
        h.stack("UPDATE_COMPLETE", outputs={"RawBucket": "raw"})
        h.create_change_set("UPDATE")
        h.change_set(
            status="FAILED", execution="UNAVAILABLE",
            reason="The submitted information didn't contain changes. Submit different information to create a change set.",
        )
        h.ok("delete_change_set", {"ChangeSetName": CS_ID})
        result = h.deployer.deploy(spec())
        h.stub.assert_no_pending_responses()
    assert result.status == "unchanged"
    assert result.outputs == {"RawBucket": "raw"}
    assert result.failure is None


def test_empty_change_set_emulator_shape_synchronous_validation_error_is_unchanged():
    with Harness() as h:
        h.stack("CREATE_COMPLETE")
        h.stub.add_client_error("create_change_set", "ValidationError", "No updates are to be performed.")
        result = h.deployer.deploy(spec())
        h.stub.assert_no_pending_responses()
    assert result.status == "unchanged"
    assert "no changes" in result.message


def test_same_fingerprint_skips_without_a_change_set():
    s = spec()
    with Harness() as h:
        h.stack("UPDATE_COMPLETE", tags={FINGERPRINT_TAG: s.fingerprint()}, outputs={"A": "1"})
        result = h.deployer.deploy(s)
        h.stub.assert_no_pending_responses()  # nothing but one DescribeStacks
    assert result.status == "unchanged"
    assert result.outputs == {"A": "1"}


def test_fingerprint_changes_with_template_parameters_and_tags():
    base = spec()
    assert base.fingerprint() == spec().fingerprint()
    assert base.fingerprint() != spec(template_body=base.template_body + "# x\n").fingerprint()
    assert base.fingerprint() != spec(parameters={"pArtifactsBucket": "other"}).fingerprint()
    assert base.fingerprint() != spec(tags={"sdlf:layer": "team"}).fingerprint()


def test_same_fingerprint_on_rolled_back_update_still_deploys():
    s = spec()
    with Harness() as h:
        h.stack("UPDATE_ROLLBACK_COMPLETE", tags={FINGERPRINT_TAG: s.fingerprint()})
        h.stub.add_client_error("create_change_set", "ValidationError", "No updates are to be performed.")
        result = h.deployer.deploy(s)
        h.stub.assert_no_pending_responses()
    assert result.status == "unchanged"


def test_rollback_complete_is_deleted_and_created_again():
    with Harness() as h:
        h.stack("ROLLBACK_COMPLETE")
        old = ("e0", STACK, STACK_TYPE, "ROLLBACK_COMPLETE", None, 0)
        h.events([old])
        h.ok("delete_stack", {"StackName": STACK_ID})
        h.stack("DELETE_COMPLETE", STACK_ID)
        h.events([old, ("e1", STACK, STACK_TYPE, "DELETE_COMPLETE", None, 1)])
        h.create_change_set("CREATE")
        h.change_set(changes=[{"Action": "Add", "LogicalResourceId": "Queue", "ResourceType": "AWS::SQS::Queue"}])
        h.events([REVIEW])
        h.ok("execute_change_set", {"ChangeSetName": CS_ID})
        h.stack("CREATE_COMPLETE", STACK_ID)
        h.events([REVIEW, ("e5", STACK, STACK_TYPE, "CREATE_COMPLETE", None, 5)])
        result = h.deployer.deploy(spec())
        h.stub.assert_no_pending_responses()
    assert result.status == "created"
    assert any("ROLLBACK_COMPLETE" in m and "deleting it and creating it again" in m for m in h.reporter.statuses())


def test_in_progress_stack_is_waited_for_first():
    with Harness() as h:
        h.stack("UPDATE_IN_PROGRESS")
        h.events([("e0", STACK, STACK_TYPE, "UPDATE_IN_PROGRESS", "User Initiated", 0)])
        h.stack("UPDATE_IN_PROGRESS", STACK_ID)
        h.events([("e0", STACK, STACK_TYPE, "UPDATE_IN_PROGRESS", "User Initiated", 0)])
        h.stack("UPDATE_COMPLETE", STACK_ID)
        h.events([("e0", STACK, STACK_TYPE, "UPDATE_IN_PROGRESS", "User Initiated", 0),
                  ("e1", STACK, STACK_TYPE, "UPDATE_COMPLETE", None, 9)])
        h.stub.add_client_error("create_change_set", "ValidationError", "No updates are to be performed.")
        result = h.deployer.deploy(spec())
        h.stub.assert_no_pending_responses()
    assert result.status == "unchanged"
    assert h.reporter.statuses()[0].startswith("stack is UPDATE_IN_PROGRESS: waiting")
    assert h.reporter.events() == [(STACK, "UPDATE_COMPLETE", None)]


def test_failure_root_cause_ignores_cascade_events():
    queue_reason = (
        'Resource handler returned message: "Value 700 for parameter MessageRetentionPeriod is invalid." '
        "(Service: Sqs, Status Code: 400)"
    )
    with Harness() as h:
        h.no_stack()
        h.create_change_set("CREATE")
        h.change_set(changes=[{"Action": "Add", "LogicalResourceId": "Queue", "ResourceType": "AWS::SQS::Queue"}])
        h.events([REVIEW])
        h.ok("execute_change_set", {"ChangeSetName": CS_ID})
        history = [
            REVIEW,
            ("e1", STACK, STACK_TYPE, "CREATE_IN_PROGRESS", "User Initiated", 1),
            ("e2", "Role", "AWS::IAM::Role", "CREATE_IN_PROGRESS", None, 2),
            ("e3", "Queue", "AWS::SQS::Queue", "CREATE_IN_PROGRESS", None, 2),
            # a cancellation can carry an earlier timestamp than the real cause
            ("e4", "Bucket", "AWS::S3::Bucket", "CREATE_FAILED", "Resource creation cancelled", 3),
            ("e5", "Queue", "AWS::SQS::Queue", "CREATE_FAILED", queue_reason, 4),
            ("e6", "Role", "AWS::IAM::Role", "CREATE_FAILED", "Resource creation cancelled", 5),
            ("e7", STACK, STACK_TYPE, "ROLLBACK_IN_PROGRESS",
             "The following resource(s) failed to create: [Queue, Bucket, Role]. Rollback requested by user.", 6),
            ("e8", "Role", "AWS::IAM::Role", "DELETE_COMPLETE", None, 7),
            ("e9", STACK, STACK_TYPE, "ROLLBACK_COMPLETE", None, 8),
        ]
        h.stack("ROLLBACK_IN_PROGRESS", STACK_ID)
        h.events(history[:8])
        h.stack("ROLLBACK_COMPLETE", STACK_ID)
        h.events(history)
        result = h.deployer.deploy(spec())
        h.stub.assert_no_pending_responses()
    assert result.status == "failed"
    assert result.failure.logical_id == "Queue"
    assert result.failure.resource_type == "AWS::SQS::Queue"
    assert result.failure.status == "CREATE_FAILED"
    assert result.failure.reason == queue_reason
    assert "ROLLBACK_COMPLETE" in result.message and "MessageRetentionPeriod" in result.message
    assert len(h.reporter.events()) == 9  # every new event shown, none of the old


def test_emulator_execute_error_is_a_failure_with_its_reason():
    with Harness() as h:
        h.no_stack()
        h.create_change_set("CREATE")
        h.change_set(changes=[{"Action": "Add", "LogicalResourceId": "F", "ResourceType": "AWS::Lambda::Function"}])
        h.events([REVIEW])
        h.stub.add_client_error(
            "execute_change_set", "InvalidParameterValueException",
            "Error occurred while GetObject. S3 Error Code: NoSuchBucket.", http_status_code=400,
        )
        h.events([REVIEW, ("e1", STACK, STACK_TYPE, "CREATE_IN_PROGRESS", "User Initiated", 1)])
        result = h.deployer.deploy(spec())
        h.stub.assert_no_pending_responses()
    assert result.status == "failed"
    assert result.failure.status == "CREATE_FAILED"
    assert "NoSuchBucket" in result.failure.reason


def test_emulator_stuck_in_progress_uses_change_set_reason():
    with Harness() as h:
        h.no_stack()
        h.create_change_set("CREATE")
        h.change_set(changes=[{"Action": "Add", "LogicalResourceId": "Queue", "ResourceType": "AWS::SQS::Queue"}])
        h.events([REVIEW])
        h.ok("execute_change_set", {"ChangeSetName": CS_ID})
        h.stack("CREATE_IN_PROGRESS", STACK_ID)
        h.events([REVIEW, ("e1", STACK, STACK_TYPE, "CREATE_IN_PROGRESS", "User Initiated", 1)])
        h.change_set(execution="EXECUTE_FAILED", reason="Queue: invalid attribute")
        h.change_set(execution="EXECUTE_FAILED", reason="Queue: invalid attribute")
        result = h.deployer.deploy(spec())
        h.stub.assert_no_pending_responses()
    assert result.status == "failed"
    assert result.failure.reason == "Queue: invalid attribute"
    assert h.clock.sleeps == []


def test_wait_timeout_gives_a_clear_message():
    with Harness(wait_timeout=5.0, poll_interval=2.0) as h:
        h.stack("CREATE_COMPLETE")
        h.create_change_set("UPDATE")
        h.change_set(changes=[{"Action": "Modify", "LogicalResourceId": "Queue", "ResourceType": "AWS::SQS::Queue"}])
        h.events([("e0", STACK, STACK_TYPE, "CREATE_COMPLETE", None, 0)])
        h.ok("execute_change_set", {"ChangeSetName": CS_ID})
        for _ in range(4):
            h.stack("UPDATE_IN_PROGRESS", STACK_ID)
            h.events([("e0", STACK, STACK_TYPE, "CREATE_COMPLETE", None, 0)])
            h.change_set(execution="EXECUTE_IN_PROGRESS")
        result = h.deployer.deploy(spec())
        h.stub.assert_no_pending_responses()
    assert result.status == "failed"
    assert "still UPDATE_IN_PROGRESS after 5s" in result.message
    assert "run the deploy again" in result.message
    assert h.clock.sleeps == [2.0, 2.0, 2.0]


def test_blocked_stack_status_fails_with_next_step():
    with Harness() as h:
        h.stack("UPDATE_ROLLBACK_FAILED")
        result = h.deployer.deploy(spec())
    assert result.status == "failed"
    assert "continue-update-rollback" in result.message


def test_plan_create_lists_changes_and_removes_change_set_and_review_stack():
    changes = [
        {"Action": "Add", "LogicalResourceId": "Queue", "ResourceType": "AWS::SQS::Queue"},
        {"Action": "Add", "LogicalResourceId": "Role", "ResourceType": "AWS::IAM::Role"},
    ]
    with Harness() as h:
        h.no_stack()
        h.create_change_set("CREATE")
        h.change_set(changes=changes)
        h.ok("delete_change_set", {"ChangeSetName": CS_ID})
        h.ok("delete_stack", {"StackName": STACK_ID})
        result = h.deployer.plan(spec())
        h.stub.assert_no_pending_responses()  # never executed
    assert result.status == "planned"
    assert [(c.logical_id, c.is_iam, c.destructive) for c in result.changes] == [("Queue", False, False), ("Role", True, False)]
    assert result.message == "create stack: 2 add, 1 IAM"


def test_plan_update_flags_destructive_and_iam_changes():
    changes = [
        {"Action": "Modify", "LogicalResourceId": "Table", "ResourceType": "AWS::DynamoDB::Table", "Replacement": "True"},
        {"Action": "Modify", "LogicalResourceId": "Queue", "ResourceType": "AWS::SQS::Queue", "Replacement": "False"},
        {"Action": "Modify", "LogicalResourceId": "Fn", "ResourceType": "AWS::Lambda::Function", "Replacement": "Conditional"},
        {"Action": "Remove", "LogicalResourceId": "OldBucket", "ResourceType": "AWS::S3::Bucket"},
        {"Action": "Modify", "LogicalResourceId": "Policy", "ResourceType": "AWS::IAM::ManagedPolicy", "Replacement": "False"},
        {"Action": "Add", "LogicalResourceId": "Perm", "ResourceType": "AWS::Lambda::Permission"},
    ]
    with Harness() as h:
        h.stack("UPDATE_COMPLETE")
        h.create_change_set("UPDATE")
        h.change_set(changes=changes)
        h.ok("delete_change_set", {"ChangeSetName": CS_ID})
        result = h.deployer.plan(spec())
        h.stub.assert_no_pending_responses()
    flags = {c.logical_id: (c.destructive, c.is_iam, c.may_replace) for c in result.changes}
    assert flags == {
        "Table": (True, False, False),
        "Queue": (False, False, False),
        "Fn": (False, False, True),
        "OldBucket": (True, False, False),
        "Policy": (False, True, False),
        "Perm": (False, True, False),
    }
    assert result.status == "planned"
    assert "2 destructive" in result.message and "2 IAM" in result.message
    assert result.to_dict()["changes"][0]["destructive"] is True


def test_plan_reads_aws_details_for_replacement_causes_data_at_risk_and_key_policy_changes():
    def detail(name, recreation, evaluation="Static", source="DirectModification"):
        return {"Target": {"Attribute": "Properties", "Name": name, "RequiresRecreation": recreation},
                "Evaluation": evaluation, "ChangeSource": source}

    changes = [
        {"Action": "Modify", "LogicalResourceId": "Table", "ResourceType": "AWS::DynamoDB::Table", "Replacement": "True",
         "Scope": ["Properties"], "Details": [detail("TableName", "Always"), detail("BillingMode", "Never")]},
        {"Action": "Modify", "LogicalResourceId": "Key", "ResourceType": "AWS::KMS::Key", "Replacement": "False",
         "Scope": ["Properties"], "Details": [detail("KeyPolicy", "Never")]},
        {"Action": "Modify", "LogicalResourceId": "Other", "ResourceType": "AWS::KMS::Key", "Replacement": "False",
         "Scope": ["Properties"], "Details": [detail("Description", "Never")]},
        {"Action": "Modify", "LogicalResourceId": "Db", "ResourceType": "AWS::Glue::Database", "Replacement": "Conditional",
         "Scope": ["Properties"], "Details": [detail("DatabaseName", "Always", "Dynamic", "ResourceReference")]},
    ]
    with Harness() as h:
        h.stack("UPDATE_COMPLETE")
        h.create_change_set("UPDATE")
        h.change_set(changes=changes)
        h.ok("delete_change_set", {"ChangeSetName": CS_ID})
        result = h.deployer.plan(spec())
        h.stub.assert_no_pending_responses()
    flags = {c.logical_id: (c.destructive, c.data_at_risk, c.is_iam, c.recreates) for c in result.changes}
    assert flags == {
        "Table": (True, True, False, ("TableName",)),
        "Key": (False, False, True, ()),
        "Other": (False, False, False, ()),
        "Db": (False, True, False, ("DatabaseName",)),
    }
    assert "1 destructive" in result.message and "2 with data at risk" in result.message and "1 IAM" in result.message


def test_plan_of_unchanged_stack_on_the_emulator():
    with Harness() as h:
        h.stack("UPDATE_COMPLETE")
        h.stub.add_client_error("create_change_set", "ValidationError", "No updates are to be performed.")
        result = h.deployer.plan(spec())
    assert result.status == "unchanged"


def test_plan_change_set_failure_is_reported():
    with Harness() as h:
        h.no_stack()
        h.create_change_set("CREATE")
        h.change_set(status="FAILED", execution="UNAVAILABLE", reason="No export named acme-raw found")
        h.ok("delete_change_set", {"ChangeSetName": CS_ID})
        h.ok("delete_stack", {"StackName": STACK_ID})
        result = h.deployer.plan(spec())
        h.stub.assert_no_pending_responses()
    assert result.status == "failed"
    assert "No export named acme-raw found" in result.message


def test_access_denied_becomes_failed_result_naming_operation():
    with Harness() as h:
        h.stub.add_client_error("describe_stacks", "AccessDenied", "User is not authorized to perform cloudformation:DescribeStacks")
        result = h.deployer.deploy(spec())
    assert result.status == "failed"
    assert result.message.startswith(f"DescribeStacks {STACK}: AccessDenied")
