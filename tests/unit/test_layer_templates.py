"""Team, pipeline and dataset templates: lint clean, and the properties the stage-A contracts promise.

Rendered for a lake of two teams (one with a dataset on its second pipeline), with Lake Formation and
notification e-mails switched on and off. Templates are parsed with cfn-flip's loader, so short-form
tags come back as `{"Ref": ...}`, `{"Fn::Sub": ...}` mappings.
"""
from __future__ import annotations

import difflib
import json
import re
from functools import cache

import pytest
from cfn_tools import load_yaml

from sdlf_cli.config.model import Dataset, LakeConfig, Pipeline, Team
from sdlf_cli.errors import RenderError
from sdlf_cli.lint import lint_templates
from sdlf_cli.render import RenderedTemplate, render_layer
from tests.snapshots import SNAPSHOT_DIR, TEMPLATES_DIR
from tests.snapshots.layers import LAYER_CASES, SETTINGS, WITH_CICD, cicd, lake, render_layer_case

SSM_TYPE = "AWS::SSM::Parameter::Value<String>"
TEAM_PUBLISHED = ("kms-key-arn", "lambda-role-arn", "states-role-arn", "glue-role-arn", "topic-arn", "workgroup",
                  "glue-security-configuration",
                  "glue-database", "permissions-boundary-arn")
PIPELINE_PUBLISHED = ("queue-a-url", "queue-a-arn", "dlq-a-url", "state-machine-a-arn", "routing-b-arn",
                      "state-machine-b-arn", "dlq-routing-b-url")
RETRY_ERRORS = ["TransientError", "Lambda.ServiceException", "Lambda.AWSLambdaException",
                "Lambda.SdkClientException", "Lambda.TooManyRequestsException", "Lambda.ClientExecutionTimeoutException"]
TIMEOUT_RETRY = {"ErrorEquals": ["Sandbox.Timedout", "Lambda.Unknown"], "IntervalSeconds": 2, "MaxAttempts": 2,
                 "BackoffRate": 2}


@cache
def rendered(layer: str, lake_formation: bool = True, emails: bool = True) -> tuple[RenderedTemplate, ...]:
    return tuple(render_layer(lake(lake_formation, emails), layer, TEMPLATES_DIR))


@cache
def parsed(layer: str, unit: str, lake_formation: bool = True, emails: bool = True) -> dict:
    (template,) = [t for t in rendered(layer, lake_formation, emails) if t.name == unit]
    return load_yaml(template.body)


def of_type(template: dict, resource_type: str) -> dict[str, dict]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == resource_type}


def ssm_default(template: dict, ref: dict) -> str:
    """The SSM path a `{"Ref": pX}` resolves through (the parameter must be SSM-typed)."""
    parameter = template["Parameters"][ref["Ref"]]
    assert parameter["Type"] == SSM_TYPE, f"{ref['Ref']} is not read from SSM: {parameter}"
    return parameter["Default"]


def sub_text(value) -> str:
    """The template string of a `!Sub` (either form)."""
    sub = value["Fn::Sub"]
    return sub[0] if isinstance(sub, list) else sub


FULL = lake()
NAMES = FULL.names


# --- lint ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "layer,lake_formation,emails",
    [
        ("team", True, True),
        ("team", True, False),
        ("team", False, True),
        ("team", False, False),
        ("pipeline", True, True),
        ("dataset", True, True),
        ("dataset", False, False),
    ],
)
def test_layer_lints_clean(layer, lake_formation, emails):
    templates = rendered(layer, lake_formation, emails)
    expected_units = {"team": 2, "pipeline": 3, "dataset": 2}[layer]
    assert len(templates) == expected_units
    findings = lint_templates(list(templates))
    assert findings == [], "\n".join(str(f) for f in findings)


@pytest.mark.parametrize("layer,env,provider", [
    ("cicd", "dev", "connection"),
    ("cicd", "dev", "s3"),
    ("cicd", "dev", "codecommit"),
    ("cicd-target", "dev", "connection"),
    ("cicd-target", "prod", "connection"),
])
def test_delivery_layers_lint_clean(layer, env, provider):
    from dataclasses import replace

    cfg = replace(WITH_CICD, env=env, cicd=cicd(provider))
    templates = render_layer(cfg, layer, TEMPLATES_DIR)
    assert len(templates) == 1
    findings = lint_templates(templates)
    assert findings == [], "\n".join(str(f) for f in findings)


# --- parameters: code keys from the deployer, everything else from SSM --------------------------


@pytest.mark.parametrize(
    "layer,unit,deployer_parameters",
    [
        ("team", "eng", set()),
        ("pipeline", "mkt/fast", {"pArtifactsBucket", "pCodeRoutingAKey", "pCodeTransformAKey", "pCodeErrorAKey",
                                  "pCodeRoutingBKey", "pCodeTransformBKey", "pCodeErrorBKey"}),
        ("dataset", "mkt/ads", {"pArtifactsBucket", "pGlueHeavyTransformKey", "pGlueQualityKey"}),
    ],
)
def test_parameters_are_code_keys_or_ssm_paths_of_the_lake(layer, unit, deployer_parameters):
    template = parsed(layer, unit)
    from_deployer = {k for k, p in template["Parameters"].items() if p["Type"] != SSM_TYPE}
    assert from_deployer == deployer_parameters
    for key, parameter in template["Parameters"].items():
        if parameter["Type"] == SSM_TYPE:
            assert parameter["Default"].startswith(NAMES.ssm_prefix + "/"), key


def test_dataset_reads_its_own_pipeline_and_team_from_ssm():
    template = parsed("dataset", "mkt/ads")
    defaults = {p["Default"] for p in template["Parameters"].values() if p["Type"] == SSM_TYPE}
    assert NAMES.ssm("pipelines", "mkt", "fast", "queue-a-arn") in defaults
    assert NAMES.ssm("teams", "mkt", "kms-key-arn") in defaults
    assert not any("/eng/" in d or "/mkt/main/" in d for d in defaults)


# --- team ----------------------------------------------------------------------------------------


def test_every_team_role_has_the_team_boundary():
    for team in ("eng", "mkt"):
        template = parsed("team", team)
        roles = of_type(template, "AWS::IAM::Role")
        assert {r["Properties"]["RoleName"] for r in roles.values()} == {
            NAMES.role(team, kind) for kind in ("lambda", "states", "glue")
        }
        (boundary_id,) = of_type(template, "AWS::IAM::ManagedPolicy")
        boundary = template["Resources"][boundary_id]
        assert boundary["Properties"]["ManagedPolicyName"] == NAMES.resource(team, "boundary")
        for logical_id, role in roles.items():
            assert role["Properties"]["PermissionsBoundary"] == {"Ref": boundary_id}, logical_id


def _policy_resources(document: dict) -> list[str]:
    """Every Resource of a policy document, as text (a !Sub's template string)."""
    out = []
    for statement in document["Statement"]:
        resources = statement.get("Resource", [])
        for resource in resources if isinstance(resources, list) else [resources]:
            out.append(sub_text(resource) if isinstance(resource, dict) and "Fn::Sub" in resource else json.dumps(resource))
    return out


def test_team_policies_are_scoped_to_the_team():
    template = parsed("team", "eng")
    documents = [r["Properties"]["PolicyDocument"] for r in of_type(template, "AWS::IAM::ManagedPolicy").values()]
    for role in of_type(template, "AWS::IAM::Role").values():
        documents += [p["PolicyDocument"] for p in role["Properties"]["Policies"]]
    for document in documents:
        for statement in document["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            assert "*" not in actions and not any(a.endswith(":*") for a in actions), statement
        for resource in _policy_resources(document):
            assert "mkt" not in resource, resource
            # Object ARNs of the data buckets stay under the team's prefix.
            if re.search(r"s3:::\$\{p\w+Bucket\}/", resource):
                assert "/eng/*" in resource, resource
            # Named resources (functions, queues, state machines, topics, jobs) are the team's.
            for kind in (":function:", ":sqs:", ":stateMachine:", ":execution:", "job/", "crawler/"):
                if kind in resource:
                    assert NAMES.resource("eng") + "-*" in resource, resource


def test_team_key_topic_workgroup_and_database():
    template = parsed("team", "eng")
    (key,) = of_type(template, "AWS::KMS::Key").values()
    assert key["Properties"]["EnableKeyRotation"] is True
    assert key["DeletionPolicy"] == key["UpdateReplacePolicy"] == "Retain"
    (alias,) = of_type(template, "AWS::KMS::Alias").values()
    assert alias["Properties"]["AliasName"] == NAMES.kms_alias("eng")
    (topic,) = of_type(template, "AWS::SNS::Topic").values()
    assert topic["Properties"]["TopicName"] == NAMES.topic("eng", "notifications")
    assert topic["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": ["rTeamKey", "Arn"]}
    (workgroup,) = of_type(template, "AWS::Athena::WorkGroup").values()
    configuration = workgroup["Properties"]["WorkGroupConfiguration"]
    assert workgroup["Properties"]["Name"] == NAMES.workgroup("eng")
    assert configuration["EnforceWorkGroupConfiguration"] is True
    assert sub_text(configuration["ResultConfiguration"]["OutputLocation"]) == "s3://${pAthenaBucket}/eng/"
    encryption = configuration["ResultConfiguration"]["EncryptionConfiguration"]
    assert encryption["EncryptionOption"] == "SSE_KMS"
    # The athena bucket's policy accepts only the lake key.
    assert ssm_default(template, encryption["KmsKey"]) == NAMES.ssm("kms/key-arn")
    (database,) = of_type(template, "AWS::Glue::Database").values()
    assert database["Properties"]["DatabaseInput"]["Name"] == NAMES.glue_database("eng")


@pytest.mark.parametrize("emails", [True, False])
def test_team_email_subscription_only_with_an_address(emails):
    eng = of_type(parsed("team", "eng", emails=emails), "AWS::SNS::Subscription")
    mkt = of_type(parsed("team", "mkt", emails=emails), "AWS::SNS::Subscription")
    assert mkt == {}  # mkt has no address in either lake
    if emails:
        (subscription,) = eng.values()
        assert subscription["Properties"]["Protocol"] == "email"
        assert subscription["Properties"]["Endpoint"] == "eng@example.com"
    else:
        assert eng == {}


@pytest.mark.parametrize("lake_formation", [True, False])
def test_lake_formation_grants_only_when_enabled(lake_formation):
    team = of_type(parsed("team", "eng", lake_formation=lake_formation), "AWS::LakeFormation::Permissions")
    dataset = of_type(parsed("dataset", "eng/legislators", lake_formation=lake_formation),
                      "AWS::LakeFormation::Permissions")
    if lake_formation:
        principals = {json.dumps(p["Properties"]["DataLakePrincipal"]["DataLakePrincipalIdentifier"])
                      for p in team.values()}
        assert principals == {json.dumps({"Fn::GetAtt": [r, "Arn"]}) for r in ("rGlueRole", "rLambdaRole")}
        assert len(dataset) == 3
    else:
        assert team == {} and dataset == {}


def test_team_publishes_its_registry():
    template = parsed("team", "mkt")
    names = {p["Properties"]["Name"] for p in of_type(template, "AWS::SSM::Parameter").values()}
    assert names == {NAMES.ssm("teams", "mkt", x) for x in TEAM_PUBLISHED}


# --- pipeline ------------------------------------------------------------------------------------


def test_stage_a_queue_redrive_and_visibility():
    template = parsed("pipeline", "eng/main")
    queues = {q["Properties"]["QueueName"]: q for q in of_type(template, "AWS::SQS::Queue").values()}
    queue = queues[NAMES.queue("eng", "main", "a")]
    dlq = queues[NAMES.dlq("eng", "main", "a")]
    for q in (queue, dlq):
        assert ssm_default(template, q["Properties"]["KmsMasterKeyId"]) == NAMES.ssm("teams", "eng", "kms-key-arn")
    assert queue["Properties"]["RedrivePolicy"]["maxReceiveCount"] >= 3
    assert queue["Properties"]["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["rDlqA", "Arn"]}
    functions = {f["Properties"]["FunctionName"]: f for f in of_type(template, "AWS::Lambda::Function").values()}
    routing = functions[NAMES.function("eng", "main", "routing-a")]
    assert queue["Properties"]["VisibilityTimeout"] >= 6 * routing["Properties"]["Timeout"]


@pytest.mark.parametrize("layer, unit", [("pipeline", "eng/main"), ("dataset", "eng/legislators")])
def test_every_dead_letter_queue_has_a_depth_alarm_to_the_team(layer, unit):
    """A DLQ (a queue's redrive target or a function's dead-letter target) nobody is told about loses nothing but
    is forgotten: each has an alarm on its visible messages that notifies the team's topic."""
    template = parsed(layer, unit)
    targets = {q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
               for q in of_type(template, "AWS::SQS::Queue").values() if "RedrivePolicy" in q["Properties"]}
    targets |= {f["Properties"]["DeadLetterConfig"]["TargetArn"]["Fn::GetAtt"][0]
                for f in of_type(template, "AWS::Lambda::Function").values() if "DeadLetterConfig" in f["Properties"]}
    assert targets, "the layer declares dead-letter queues"
    watched = {}
    for alarm in of_type(template, "AWS::CloudWatch::Alarm").values():
        props = alarm["Properties"]
        if props["Namespace"] == "AWS/SQS" and props["MetricName"] == "ApproximateNumberOfMessagesVisible":
            (dimension,) = props["Dimensions"]
            watched[dimension["Value"]["Fn::GetAtt"][0]] = props
    assert targets <= set(watched), f"DLQs without an alarm: {sorted(targets - set(watched))}"
    for queue in targets:
        props = watched[queue]
        assert (props["Threshold"], props["ComparisonOperator"]) == (0, "GreaterThanThreshold")
        assert props["AlarmActions"] == props["OKActions"] == [{"Ref": "pTeamTopicArn"}]
        assert "sdlf redrive" in props["AlarmDescription"]


def test_stage_a_queue_policy_admits_the_team_rules_only():
    template = parsed("pipeline", "eng/main")
    (policy,) = of_type(template, "AWS::SQS::QueuePolicy").values()
    (allow,) = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "events.amazonaws.com"}
    assert allow["Action"] == "sqs:SendMessage"
    source = sub_text(allow["Condition"]["ArnLike"]["aws:SourceArn"])
    assert source == (
        "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:rule/" + NAMES.rule("eng", "*")
    )


def test_routing_mapping_reports_batch_item_failures():
    template = parsed("pipeline", "eng/main")
    (mapping,) = of_type(template, "AWS::Lambda::EventSourceMapping").values()
    props = mapping["Properties"]
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["BatchSize"] == 10
    assert props["EventSourceArn"] == {"Fn::GetAtt": ["rQueueA", "Arn"]}
    assert props["FunctionName"] == {"Ref": "rRoutingAFunction"}


@pytest.mark.parametrize(
    "kind,code_parameter,environment",
    [
        ("routing-a", "pCodeRoutingAKey", {"STATE_MACHINE_ARN", "PIPELINE", "TEAM"}),
        ("transform-a", "pCodeTransformAKey",
         {"CATALOG_TABLE", "EXECUTIONS_TABLE", "STAGE_BUCKET", "SSM_PREFIX", "TEAM"}),
        ("error-a", "pCodeErrorAKey", {"CATALOG_TABLE", "EXECUTIONS_TABLE", "DLQ_URL", "TOPIC_ARN", "TEAM"}),
    ],
)
def test_stage_a_functions(kind, code_parameter, environment):
    template = parsed("pipeline", "mkt/fast")
    functions = {f["Properties"]["FunctionName"]: (k, f) for k, f in of_type(template, "AWS::Lambda::Function").items()}
    logical_id, function = functions[NAMES.function("mkt", "fast", kind)]
    props = function["Properties"]
    assert props["Runtime"] == "python3.12"
    assert props["Handler"] == "handler.handler"
    assert props["Code"] == {"S3Bucket": {"Ref": "pArtifactsBucket"}, "S3Key": {"Ref": code_parameter}}
    (layer,) = props["Layers"]
    assert ssm_default(template, layer) == NAMES.ssm("layers/datalake")
    assert ssm_default(template, props["Role"]) == NAMES.ssm("teams", "mkt", "lambda-role-arn")
    variables = props["Environment"]["Variables"]
    assert set(variables) == environment | {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_LOG_LEVEL"}
    assert variables["TEAM"] == "mkt"
    if kind == "routing-a":
        assert variables["PIPELINE"] == "fast"
        assert variables["STATE_MACHINE_ARN"] == {"Ref": "rStateMachineA"}
    if kind == "transform-a":
        assert variables["SSM_PREFIX"] == NAMES.ssm_prefix
        assert ssm_default(template, variables["STAGE_BUCKET"]) == NAMES.ssm("buckets/stage")
    if kind == "error-a":
        assert variables["DLQ_URL"] == {"Ref": "rDlqA"}
        assert ssm_default(template, variables["TOPIC_ARN"]) == NAMES.ssm("teams", "mkt", "topic-arn")
    # An explicit, encrypted log group with retention exists before the function.
    log_groups = {g["Properties"]["LogGroupName"]: (k, g) for k, g in of_type(template, "AWS::Logs::LogGroup").items()}
    group_id, group = log_groups[NAMES.log_group("lambda", props["FunctionName"])]
    assert function["DependsOn"] == group_id
    assert group["Properties"]["RetentionInDays"] > 0 and group["Properties"]["KmsKeyId"]


def _definition(template: dict, kind: str = "sm-a") -> tuple[dict, dict]:
    (machine,) = [m for m in of_type(template, "AWS::StepFunctions::StateMachine").values()
                  if m["Properties"]["StateMachineName"].endswith("-" + kind)]
    return machine, json.loads(sub_text(machine["Properties"]["DefinitionString"]))


def test_state_machine_logging_and_role():
    template = parsed("pipeline", "eng/main")
    machine, _ = _definition(template)
    props = machine["Properties"]
    assert props["StateMachineName"] == NAMES.state_machine("eng", "main", "sm-a")
    assert ssm_default(template, props["RoleArn"]) == NAMES.ssm("teams", "eng", "states-role-arn")
    logging = props["LoggingConfiguration"]
    assert logging["Level"] == "ALL" and logging["IncludeExecutionData"] is False
    (destination,) = logging["Destinations"]
    group_id = destination["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0]
    group = template["Resources"][group_id]["Properties"]
    assert group["LogGroupName"] == NAMES.log_group("states", props["StateMachineName"])
    assert group["RetentionInDays"] > 0 and group["KmsKeyId"]


def test_state_machine_definition_follows_the_contract():
    _, definition = _definition(parsed("pipeline", "eng/main"))
    states = definition["States"]
    assert definition["StartAt"] == "PreUpdate"
    chain = [("PreUpdate", "pre", "$.pre", "Transform"), ("Transform", "transform", "$.outputs", "PostUpdate"),
             ("PostUpdate", "post", "$.post", None)]
    for name, action, result_path, next_state in chain:
        state = states[name]
        assert state["Type"] == "Task"
        assert state["Resource"] == "${rTransformAFunction.Arn}"
        assert state["Parameters"]["action"] == action
        assert state["Parameters"]["object.$"] == "$.object"
        assert state["Parameters"]["execution.$"] == "$.execution"
        assert state["ResultPath"] == result_path
        assert state.get("Next") == next_state and state.get("End", False) is (next_state is None)
        assert state["Retry"] == [{"ErrorEquals": RETRY_ERRORS, "IntervalSeconds": 2, "MaxAttempts": 3, "BackoffRate": 2},
                                  TIMEOUT_RETRY]
        assert state["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "HandleError"}]
    assert states["PostUpdate"]["Parameters"]["outputs.$"] == "$.outputs"
    # The execution's start time: the executions row's started_at, and a duration computed without reading the row.
    for name in ("PreUpdate", "PostUpdate"):
        assert states[name]["Parameters"]["started_at.$"] == "$$.Execution.StartTime"
    assert "started_at.$" not in states["Transform"]["Parameters"]
    handle = states["HandleError"]
    assert handle["Resource"] == "${rErrorAFunction.Arn}"
    assert handle["Parameters"] == {"object.$": "$.object", "error.$": "$.error", "execution.$": "$.execution",
                                    "started_at.$": "$$.Execution.StartTime"}
    assert handle["ResultPath"] == "$.handled" and handle["Next"] == "Failed"
    assert states["Failed"]["Type"] == "Fail"


def test_every_lambda_task_of_both_state_machines_retries_service_errors_and_a_time_out():
    # A time-out is retried (twice at most) because every step is idempotent; the failure handlers too, so a
    # handler cut short still records the failure instead of leaving the object RUNNING.
    for kind, lambda_states in (("sm-a", ("PreUpdate", "Transform", "PostUpdate", "HandleError")),
                                ("sm-b", ("PreUpdate", "PostUpdate", "HandleError"))):
        _, definition = _definition(parsed("pipeline", "eng/main"), kind)
        tasks = {name: state for name, state in definition["States"].items()
                 if state["Type"] == "Task" and "Function.Arn}" in state["Resource"]}
        assert sorted(tasks) == sorted(lambda_states), kind
        for name, state in tasks.items():
            assert state["Retry"] == [{"ErrorEquals": RETRY_ERRORS, "IntervalSeconds": 2, "MaxAttempts": 3,
                                       "BackoffRate": 2}, TIMEOUT_RETRY], (kind, name)


def test_pipeline_publishes_its_registry():
    template = parsed("pipeline", "mkt/fast")
    names = {p["Properties"]["Name"] for p in of_type(template, "AWS::SSM::Parameter").values()}
    assert names == {NAMES.ssm("pipelines", "mkt", "fast", x) for x in PIPELINE_PUBLISHED}


# --- dataset -------------------------------------------------------------------------------------


@pytest.mark.parametrize("team,dataset,pipeline", [("eng", "legislators", "main"), ("mkt", "ads", "fast")])
def test_dataset_rule_routes_its_prefix_to_its_pipeline(team, dataset, pipeline):
    template = parsed("dataset", f"{team}/{dataset}")
    rule = template["Resources"]["rRuleA"]
    props = rule["Properties"]
    assert props["Name"] == NAMES.rule(team, dataset, "a")
    pattern = props["EventPattern"]
    assert pattern["source"] == ["aws.s3"] and pattern["detail-type"] == ["Object Created"]
    (bucket,) = pattern["detail"]["bucket"]["name"]
    assert ssm_default(template, bucket) == NAMES.ssm("buckets/raw")
    assert pattern["detail"]["object"]["key"] == [{"prefix": f"{team}/{dataset}/"}]
    (target,) = props["Targets"]
    assert ssm_default(template, target["Arn"]) == NAMES.ssm("pipelines", team, pipeline, "queue-a-arn")
    assert sub_text(target["DeadLetterConfig"]["Arn"]).endswith(":" + NAMES.dlq(team, pipeline, "a"))
    # The pipeline's queue policy admits this rule by name.
    assert re.fullmatch(NAMES.rule(team, "*").replace("*", ".*"), props["Name"])


def test_dataset_stage_b_queues():
    template = parsed("dataset", "eng/legislators")
    queues = {q["Properties"]["QueueName"]: q for q in of_type(template, "AWS::SQS::Queue").values()}
    queue = queues[NAMES.queue("eng", "legislators", "b")]
    assert NAMES.dlq("eng", "legislators", "b") in queues
    assert queue["Properties"]["RedrivePolicy"]["maxReceiveCount"] == 3
    assert queue["Properties"]["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["rDlqB", "Arn"]}
    for q in queues.values():
        assert ssm_default(template, q["Properties"]["KmsMasterKeyId"]) == NAMES.ssm("teams", "eng", "kms-key-arn")
    (database,) = of_type(template, "AWS::Glue::Database").values()
    assert database["Properties"]["DatabaseInput"]["Name"] == NAMES.glue_database("eng", "legislators")


def _registration(cfg: LakeConfig, unit: str) -> tuple[dict, dict]:
    (template,) = [t for t in render_layer(cfg, "dataset", TEMPLATES_DIR) if t.name == unit]
    body = load_yaml(template.body)
    (parameter,) = of_type(body, "AWS::SSM::Parameter").values()
    text = sub_text(parameter["Properties"]["Value"])
    # What CloudFormation's !Sub does: fill the variables, turn "${!" into a literal "${".
    filled = text.replace("${rQueueB}", "https://queue-b").replace("${rDlqB}", "https://dlq-b").replace("${!", "${")
    assert "${" not in filled.replace("${literal}", ""), f"unresolved !Sub variable in {text}"
    return parameter, json.loads(filled)


def test_dataset_registration_json():
    parameter, registration = _registration(FULL, "mkt/ads")
    assert parameter["Properties"]["Name"] == NAMES.ssm("datasets", "mkt", "ads")
    assert parameter["Properties"]["Type"] == "String"
    assert registration == {
        "team": "mkt",
        "dataset": "ads",
        "pipeline": "fast",
        "transform": "default",
        "engine": "spark",
        "schedule": "rate(5 minutes)",
        "batch": {"min_items": 1, "max_items": 100},
        "partition_by": ["ingestion_date"],
        "quality": SETTINGS["quality"],
        "stage_b_queue_url": "https://queue-b",
        "stage_b_dlq_url": "https://dlq-b",
        "glue_database": NAMES.glue_database("mkt", "ads"),
        "job": NAMES.resource("mkt", "ads", "job"),
        "quality_job": NAMES.resource("mkt", "ads", "dq"),
        "crawler": NAMES.resource("mkt", "ads", "crawler"),
        "table": "ads",
    }


def test_dataset_registration_keeps_dollar_braces_of_the_configuration_literal():
    settings = {**SETTINGS, "transform": "copy-${literal}"}
    cfg = LakeConfig(org="acme", app="lake", env="dev", region="eu-west-1", teams=(
        Team("eng", pipelines=(Pipeline("main", "eng"),), datasets=(Dataset("d1", "eng", "main", settings=settings),)),
    ))
    _, registration = _registration(cfg, "eng/d1")
    assert registration["transform"] == "copy-${literal}"


def test_dataset_without_a_setting_fails_naming_the_template():
    settings = {k: v for k, v in SETTINGS.items() if k != "schedule"}
    cfg = LakeConfig(org="acme", app="lake", env="dev", region="eu-west-1", teams=(
        Team("eng", pipelines=(Pipeline("main", "eng"),), datasets=(Dataset("d1", "eng", "main", settings=settings),)),
    ))
    with pytest.raises(RenderError, match=r"dataset/_\w+\.yaml\.j2:\d+: undefined variable.*schedule"):
        render_layer(cfg, "dataset", TEMPLATES_DIR)


# --- data-holding resources and snapshots ------------------------------------------------------------


@pytest.mark.parametrize("layer,unit", [("team", "eng"), ("pipeline", "eng/main"), ("dataset", "eng/legislators")])
def test_stateful_resources_declare_deletion_policies(layer, unit):
    template = parsed(layer, unit)
    stateful = {"AWS::KMS::Key", "AWS::SQS::Queue", "AWS::Logs::LogGroup"}
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] in stateful:
            assert resource.get("DeletionPolicy") and resource.get("UpdateReplacePolicy"), logical_id
        if resource["Type"] == "AWS::KMS::Key":
            assert resource["DeletionPolicy"] == "Retain", logical_id


@pytest.mark.parametrize("file_name", sorted(LAYER_CASES))
def test_rendered_layer_matches_snapshot(file_name):
    path = SNAPSHOT_DIR / file_name
    assert path.exists(), f"{path} missing: run scripts/update_snapshots.py"
    expected = path.read_text(encoding="utf-8")
    actual = render_layer_case(file_name)
    if actual != expected:
        diff = "".join(difflib.unified_diff(
            expected.splitlines(keepends=True), actual.splitlines(keepends=True),
            fromfile=f"tests/snapshots/{file_name} (stored)", tofile=f"{file_name} (rendered now)",
        ))
        pytest.fail(
            f"rendered {file_name} differs from its snapshot; if the change is intended run "
            f"`.venv/bin/python scripts/update_snapshots.py` and review the diff:\n{diff}",
            pytrace=False,
        )


def test_a_team_without_pipelines_lints_clean():
    """The smallest lake a delivery pipeline promotes (a team not yet given a pipeline)."""
    from dataclasses import replace

    cfg = replace(lake(), teams=(Team(name="eng"),))
    templates = render_layer(cfg, "team", TEMPLATES_DIR)
    findings = lint_templates(templates)
    assert findings == [], "\n".join(str(f) for f in findings)


# --- a dataset's own heavy transform, output tables and Glue settings ----------------------------------
def _transform_lake() -> LakeConfig:
    sql = {"name": "members", "partition_by": ["org"], "quality": [{"rule": "uniqueness", "column": "id", "severity": "fail"}],
           "sql": {"python": "SELECT id, org FROM input", "spark": "SELECT id, org FROM input"}}
    totals = {"name": "totals", "partition_by": [], "quality": [], "sql": {"python": "SELECT 1 AS n", "spark": "SELECT 1 AS n"}}
    spark_sql = {**SETTINGS, "engine": "spark", "stage_b": {
        "kind": "sql", "script": None, "script_artifact": None, "tables": [sql, totals],
        "glue": {"worker_type": "G.2X", "workers": 10, "timeout": 120, "max_concurrency": 5,
                 "arguments": {"--enable-metrics": "true"}}}}
    script = {**SETTINGS, "stage_b": {
        "kind": "script", "script": "glue/transforms/legislators.py", "script_artifact": "transform_legislators",
        "tables": [{"name": "history", "partition_by": ["org_name"], "quality": [], "sql": None},
                   {"name": "persons", "partition_by": [], "quality": [], "sql": None}],
        "glue": {"dpu": 1, "timeout": 30, "max_concurrency": 1, "arguments": {}}}}
    return LakeConfig(org="acme", app="lake", env="dev", region="eu-west-1", teams=(
        Team("eng", pipelines=(Pipeline("main", "eng"),), datasets=(
            Dataset("sums", "eng", "main", settings=spark_sql), Dataset("history", "eng", "main", settings=script))),
    ))


def test_dataset_transforms_tables_and_glue_settings_render_and_lint_clean():
    templates = render_layer(_transform_lake(), "dataset", TEMPLATES_DIR)
    assert [f for f in lint_templates(templates)] == []
    bodies = {t.name: load_yaml(t.body) for t in templates}
    sums, history = bodies["eng/sums"], bodies["eng/history"]

    job = sums["Resources"]["rJob"]["Properties"]
    assert (job["WorkerType"], job["NumberOfWorkers"], job["Timeout"]) == ("G.2X", 10, 120)
    assert job["ExecutionProperty"] == {"MaxConcurrentRuns": 5}
    arguments = job["DefaultArguments"]
    assert json.loads(arguments["--transform"]) == {"kind": "sql", "sql": {"members": "SELECT id, org FROM input",
                                                                          "totals": "SELECT 1 AS n"}}
    assert json.loads(arguments["--tables"]) == [{"name": "members", "partition_by": ["org"]},
                                                 {"name": "totals", "partition_by": []}]
    assert arguments["--enable-metrics"] == "true"
    quality = json.loads(sums["Resources"]["rQualityJob"]["Properties"]["DefaultArguments"]["--tables"])
    assert quality == [{"name": "members", "quality": [{"rule": "uniqueness", "column": "id", "severity": "fail"}]},
                       {"name": "totals", "quality": []}]
    targets = sums["Resources"]["rCrawler"]["Properties"]["Targets"]["S3Targets"]
    assert [sub_text(t["Path"]) for t in targets] == ["s3://${pAnalyticsBucket}/eng/sums/members/",
                                                      "s3://${pAnalyticsBucket}/eng/sums/totals/"]

    job = history["Resources"]["rJob"]["Properties"]
    assert (job["MaxCapacity"], job["Timeout"], job["ExecutionProperty"]["MaxConcurrentRuns"]) == (1, 30, 1)
    assert json.loads(job["DefaultArguments"]["--transform"]) == {"kind": "script"}
    assert sub_text(job["DefaultArguments"]["--transform-script"]) == "s3://${pArtifactsBucket}/${pGlueTransformLegislatorsKey}"
    assert "pGlueTransformLegislatorsKey" in history["Parameters"]
    assert "pGlueTransformLegislatorsKey" not in sums["Parameters"]
