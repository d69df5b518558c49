"""Team isolation on the emulator, IAM enforced: every role of one team, acting with its own assumed-role keys, is
refused the other team's prefixes in every data bucket, its queues, topic, key, state machines and Glue database,
and can use its own. (tests/unit/test_team_isolation.py proves the same on the rendered policies, with
boundaries and resource policies, which the emulator does not evaluate.)"""
from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError

from sdlf_cli import registry as keys
from sdlf_cli.aws.session import AwsTarget, Clients
from sdlf_cli.config.loader import load_config
from sdlf_cli.lake import Lake
from sdlf_cli.local.iam.credentials import RoleCredentials
from sdlf_cli.ui import make_reporter
from sdlf_cli.workflows.deploy import all_layers, deploy_layers
from tests.integration import chaos

ENV, TEAMS = "iso", ("eng", "mkt")
PARAMETERS = f"""env: {ENV}
teams:
""" + "".join(f"""  {team}:
    pipelines:
      main: {{}}
    datasets:
      people:
        pipeline: main
        schedule: rate(1 day)
""" for team in TEAMS)
DENIED = ("AccessDenied", "AccessDeniedException")


@pytest.fixture(scope="module")
def lake(emulator, tmp_path_factory):
    project = chaos.prepare_project(tmp_path_factory.mktemp("lake-isolation"), "dev")
    (project / "parameters" / f"{ENV}.yaml").write_text(PARAMETERS)
    cfg = load_config(ENV, project / "parameters")
    lake = Lake(cfg, Clients(AwsTarget(region=cfg.region, endpoint_url=emulator.endpoint_url)))
    outcome = deploy_layers(lake, make_reporter("json"), all_layers(cfg, project), root=project)
    assert outcome.ok, outcome.to_dict()
    return lake, RoleCredentials(emulator.endpoint_url, cfg.region)


def _resources(lake: Lake, team: str, kind: str) -> list[str]:
    """Physical ids of `kind` in the team's own stacks (team, pipelines, datasets)."""
    cfn, prefix = lake.clients.client("cloudformation"), lake.config.names.prefix + "-"
    # <prefix>-team-<team>, <prefix>-pipeline-<team>-<pipeline>, <prefix>-dataset-<team>-<dataset>
    stacks = [s["StackName"] for s in cfn.list_stacks()["StackSummaries"]
              if s["StackStatus"] != "DELETE_COMPLETE" and s["StackName"].startswith(prefix)
              and s["StackName"][len(prefix):].split("-")[1:2] == [team]]
    found = []
    for stack in stacks:
        for page in cfn.get_paginator("list_stack_resources").paginate(StackName=stack):
            found += [r["PhysicalResourceId"] for r in page["StackResourceSummaries"] if r["ResourceType"] == kind]
    return found


def _as(lake: Lake, credentials: RoleCredentials, role_name: str):
    role_arn = lake.clients.client("iam").get_role(RoleName=role_name)["Role"]["Arn"]
    keys = credentials.for_role(role_arn, "isolation")
    return lambda service: boto3.client(service, endpoint_url=lake.clients.target.endpoint_url,
                                        region_name=lake.config.region, **keys.client_kwargs())


def _outcome(call) -> str:
    try:
        call()
    except ClientError as exc:
        return "denied" if exc.response["Error"]["Code"] in DENIED else "allowed"  # allowed, then failed on the data
    return "allowed"


def _attempts(lake: Lake, team: str, client) -> dict[str, object]:
    """One call per kind of the team's resources, made by `client` (a role of this or the other team)."""
    registry = lake.registry
    calls: dict[str, object] = {}
    for stage in ("raw", "stage", "analytics"):
        bucket = registry.get(keys.bucket(stage))
        calls[f"s3 put {stage}/{team}/"] = lambda b=bucket: client("s3").put_object(
            Bucket=b, Key=f"{team}/people/isolation.json", Body=b"{}")
        calls[f"s3 get {stage}/{team}/"] = lambda b=bucket: client("s3").get_object(
            Bucket=b, Key=f"{team}/people/isolation.json")
    for url in _resources(lake, team, "AWS::SQS::Queue"):
        calls[f"sqs send {url.rsplit('/', 1)[-1]}"] = lambda u=url: client("sqs").send_message(QueueUrl=u, MessageBody="{}")
    for topic in _resources(lake, team, "AWS::SNS::Topic"):
        calls[f"sns publish {topic.rsplit(':', 1)[-1]}"] = lambda t=topic: client("sns").publish(TopicArn=t, Message="x")
    for key in _resources(lake, team, "AWS::KMS::Key"):
        calls[f"kms data-key {key}"] = lambda k=key: client("kms").generate_data_key(KeyId=k, KeySpec="AES_256")
    for machine in _resources(lake, team, "AWS::StepFunctions::StateMachine"):
        calls[f"states list-executions {machine.rsplit(':', 1)[-1]}"] = \
            lambda m=machine: client("stepfunctions").list_executions(stateMachineArn=m)
    for database in _resources(lake, team, "AWS::Glue::Database"):
        calls[f"glue get-database {database}"] = lambda d=database: client("glue").get_database(Name=d)
    return calls


@pytest.mark.parametrize(("team", "other"), [("eng", "mkt"), ("mkt", "eng")])
def test_every_role_of_a_team_is_refused_the_other_team_s_resources_on_the_emulator(lake, team, other):
    lake, credentials = lake
    roles = _resources(lake, team, "AWS::IAM::Role")
    assert len(roles) >= 3, roles
    tried = _attempts(lake, other, _as(lake, credentials, roles[0]))
    assert {what.split(" ")[0] for what in tried} == {"s3", "sqs", "sns", "kms", "states", "glue"}, sorted(tried)
    assert sum(what.startswith("sqs") for what in tried) >= 4 and sum(what.startswith("states") for what in tried) >= 2
    breaches = [f"{role} may {what}" for role in roles
                for what, call in _attempts(lake, other, _as(lake, credentials, role)).items()
                if _outcome(call) != "denied"]
    assert breaches == []


@pytest.mark.parametrize("team", TEAMS)
def test_each_kind_of_a_team_s_resources_is_usable_by_one_of_its_own_roles(lake, team):
    lake, credentials = lake
    clients = [_as(lake, credentials, role) for role in _resources(lake, team, "AWS::IAM::Role")]
    kinds = {}
    for client in clients:
        for what, call in _attempts(lake, team, client).items():
            kinds.setdefault(what.split(" ")[0] + " " + what.split(" ")[1], set()).add(_outcome(call))
    refused = sorted(kind for kind, outcomes in kinds.items() if "allowed" not in outcomes)
    assert refused == [], kinds
