"""Alarms that really notify, on the emulator: the metrics AWS publishes for queues, state machines and
functions are published, every metric alarm is evaluated, and a state change is published to the alarm's SNS topic.

First the seam (a queue, an alarm on its depth, a topic with a queue subscribed), then the lake: a broken
object raises its pipeline's alarms on the team topic, an object no dataset claims raises the catalog DLQ
alarm on the lake topic, and every team has its dashboard."""
from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import boto3
import pytest

from sdlf_cli.aws.session import AwsTarget, Clients
from sdlf_cli.config.loader import load_config
from sdlf_cli.lake import Lake
from sdlf_cli.ui import make_reporter
from sdlf_cli.workflows.deploy import all_layers, deploy_layers
from sdlf_cli.workflows.ingest import ingest_files

from tests.integration.helpers import wait_for

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples" / "engineering" / "legislators"
ENV = "alrm"
TEAM = "engineering"


def _client(emulator, service):
    return boto3.client(service, endpoint_url=emulator.endpoint_url, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def _inbox(emulator, topic_arn: str) -> str:
    """A queue subscribed to the topic; its URL."""
    sqs = _client(emulator, "sqs")
    url = sqs.create_queue(QueueName=f"inbox-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    _client(emulator, "sns").subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn)
    return url


def _alarm_notifications(emulator, inbox: str, seen: list[dict]) -> list[dict]:
    """Every ALARM notification received so far (SNS envelopes' messages, parsed)."""
    sqs = _client(emulator, "sqs")
    for message in sqs.receive_message(QueueUrl=inbox, MaxNumberOfMessages=10).get("Messages", []):
        envelope = json.loads(message["Body"])
        sqs.delete_message(QueueUrl=inbox, ReceiptHandle=message["ReceiptHandle"])
        if envelope.get("Subject", "").startswith("ALARM"):
            seen.append(json.loads(envelope["Message"]))
    return seen


def test_seam_a_queue_depth_alarm_publishes_its_notification(emulator):
    sqs, cloudwatch, sns = (_client(emulator, s) for s in ("sqs", "cloudwatch", "sns"))
    name = f"seam-dlq-{uuid.uuid4().hex[:8]}"
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    topic = sns.create_topic(Name=f"seam-topic-{uuid.uuid4().hex[:8]}")["TopicArn"]
    inbox = _inbox(emulator, topic)
    cloudwatch.put_metric_alarm(
        AlarmName=name, Namespace="AWS/SQS", MetricName="ApproximateNumberOfMessagesVisible",
        Dimensions=[{"Name": "QueueName", "Value": name}], Statistic="Maximum", Period=300, EvaluationPeriods=1,
        Threshold=0, ComparisonOperator="GreaterThanThreshold", TreatMissingData="notBreaching",
        AlarmActions=[topic])
    assert wait_for(lambda: cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]["StateValue"] == "OK", 20)

    sqs.send_message(QueueUrl=url, MessageBody="a dead letter")
    seen: list[dict] = []
    assert wait_for(lambda: _alarm_notifications(emulator, inbox, seen), 20), "no ALARM notification"
    assert seen[0]["AlarmName"] == name and seen[0]["NewStateValue"] == "ALARM"
    assert seen[0]["Trigger"]["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]["StateValue"] == "ALARM"


@pytest.fixture(scope="module")
def lake(emulator, tmp_path_factory):
    project = tmp_path_factory.mktemp("lake-alarms")
    for part in ("templates", "lambda", "glue", "parameters"):
        shutil.copytree(ROOT / part, project / part, ignore=shutil.ignore_patterns("__pycache__"))
    dev = (project / "parameters" / "dev.yaml").read_text()
    (project / "parameters" / f"{ENV}.yaml").write_text(dev.replace("env: dev", f"env: {ENV}", 1))
    cfg = load_config(ENV, project / "parameters")
    clients = Clients(AwsTarget(region=cfg.region, endpoint_url=emulator.endpoint_url))
    outcome = deploy_layers(Lake(cfg, clients), make_reporter("json"), all_layers(cfg, project), root=project)
    assert outcome.ok, outcome.to_dict()
    return cfg, clients


def test_a_failing_object_raises_its_alarms_on_the_team_and_lake_topics(lake, emulator):
    cfg, clients = lake
    names = cfg.names
    ssm = clients.client("ssm")
    team_topic = ssm.get_parameter(Name=names.ssm("teams", TEAM, "topic-arn"))["Parameter"]["Value"]
    lake_topic = next(t["TopicArn"] for t in clients.client("sns").list_topics()["Topics"]
                      if t["TopicArn"].endswith(":" + names.topic("notifications")))
    team_inbox, lake_inbox = _inbox(emulator, team_topic), _inbox(emulator, lake_topic)

    ingest_files(Lake(cfg, clients), [SAMPLES / "persons-broken.json"], TEAM, "legislators")
    ingest_files(Lake(cfg, clients), [SAMPLES / "persons-1.json"], TEAM, "unregistered")

    team_seen: list[dict] = []
    wanted = {names.resource(TEAM, "main", "stage-a-failed"), names.resource(TEAM, "main", "dlq-a-not-empty"),
              names.resource(TEAM, "main", "transform-a-errors")}
    assert wait_for(lambda: wanted <= {n["AlarmName"] for n in _alarm_notifications(emulator, team_inbox, team_seen)},
                    60), team_seen
    lake_seen: list[dict] = []
    assert wait_for(lambda: any(n["AlarmName"] == names.resource("catalog-dlq-not-empty")
                                for n in _alarm_notifications(emulator, lake_inbox, lake_seen)), 60), lake_seen

    # The pipeline's other alarms exist and stay quiet; the team has its dashboard.
    cloudwatch = clients.client("cloudwatch")
    quiet = cloudwatch.describe_alarms(AlarmNames=[names.resource(TEAM, "main", "stage-b-timed-out"),
                                                   names.resource(TEAM, "main", "transform-a-throttles")])
    assert [a["StateValue"] for a in quiet["MetricAlarms"]] == ["OK", "OK"]
    body = json.loads(cloudwatch.get_dashboard(DashboardName=names.resource(TEAM))["DashboardBody"])
    titles = [w["properties"].get("title") for w in body["widgets"]]
    assert "Pipeline main, stage A: executions" in titles and "Dataset legislators: Glue job duration (ms)" in titles


def test_the_engine_reads_from_moto_what_the_api_reports(lake, emulator):
    """Seam: the alarm engine samples queue depths and ended executions from moto's backends
    (alarms.BackendReadings); what it reads is what ListQueues/GetQueueAttributes and ListExecutions answer."""
    from sdlf_cli.local.runtime.alarms import ApiReadings, BackendReadings, endpoint_clients

    cfg, _ = lake
    ended = wait_for(lambda: BackendReadings(emulator.context.account_id, cfg.region).finished_executions(), 60)
    assert any(status == "FAILED" for _, _, status, _ in ended)  # the failing object's execution, at least
    api = ApiReadings(endpoint_clients(emulator.endpoint_url, cfg.region))
    backend = BackendReadings(emulator.context.account_id, cfg.region)
    ours = cfg.names.prefix + "-"  # the emulator also holds other test files' lakes, some with more
    # executions than ListExecutions' first page

    def depths(readings) -> dict:
        return {name: depth for name, depth in readings.queue_depths().items() if name.startswith(ours)}

    def ended(readings) -> dict:
        return {(m, e, s): stopped for m, e, s, stopped in readings.finished_executions()
                if m.rsplit(":", 1)[-1].startswith(ours)}

    def agree() -> bool:  # a moment when both views hold the same (the lake's queues may still move)
        by_api, by_backend = ended(api), ended(backend)
        return (depths(backend) == depths(api) and by_backend.keys() == by_api.keys()
                and all(abs((by_backend[k] - by_api[k]).total_seconds()) < 1 for k in by_api))

    assert depths(backend) and ended(backend)
    assert wait_for(agree, 20)
