"""The emulator's alarm evaluation on fakes: statistic over the window, TreatMissingData, notification on a
state change only, the AWS/Lambda data points of observed invocations."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

from sdlf_cli.local.runtime.alarms import AlarmEngine

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
TOPIC = "arn:aws:sns:us-east-1:123456789012:team"


class FakeCloudWatch:
    def __init__(self, alarm: dict):
        self.alarm = alarm
        self.points: list[tuple[str, dict]] = []

    def describe_alarms(self, **request):
        return {"MetricAlarms": [dict(self.alarm)]}

    def put_metric_data(self, Namespace, MetricData):
        self.points += [(Namespace, d) for d in MetricData]

    def get_metric_data(self, MetricDataQueries, StartTime, EndTime):
        results = []
        for query in MetricDataQueries:
            metric, stat = query["MetricStat"]["Metric"], query["MetricStat"]["Stat"]
            values = [d["Value"] for ns, d in self.points if ns == metric["Namespace"]
                      and d["MetricName"] == metric["MetricName"] and d["Dimensions"] == metric["Dimensions"]
                      and StartTime <= d["Timestamp"] < EndTime]
            statistic = {"Sum": sum, "Maximum": max, "SampleCount": len}[stat]
            results.append({"Id": query["Id"], "Values": [statistic(values)] if values else []})
        return {"MetricDataResults": results}

    def set_alarm_state(self, AlarmName, StateValue, StateReason):
        self.alarm["StateValue"] = StateValue


class FakeSns:
    def __init__(self):
        self.published: list[dict] = []

    def publish(self, TopicArn, Subject, Message):
        self.published.append({"TopicArn": TopicArn, "Subject": Subject, "Message": json.loads(Message)})


class Quiet:  # no queues, no state machines
    def list_queues(self):
        return {}

    def list_state_machines(self):
        return {"stateMachines": []}


def _engine(alarm: dict):
    cloudwatch, sns = FakeCloudWatch(alarm), FakeSns()
    clients = {"cloudwatch": cloudwatch, "sns": sns, "sqs": Quiet(), "stepfunctions": Quiet()}
    clock = SimpleNamespace(now=NOW)
    return AlarmEngine(clients.__getitem__, "us-east-1", clock=lambda: clock.now), cloudwatch, sns, clock


def _errors_alarm(**extra) -> dict:
    return {"AlarmName": "fn-errors", "AlarmArn": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:fn-errors",
            "Namespace": "AWS/Lambda", "MetricName": "Errors", "Statistic": "Sum", "Period": 300,
            "EvaluationPeriods": 1, "Threshold": 0, "ComparisonOperator": "GreaterThanThreshold",
            "Dimensions": [{"Name": "FunctionName", "Value": "fn"}], "StateValue": "INSUFFICIENT_DATA",
            "AlarmActions": [TOPIC], "OKActions": [TOPIC], **extra}


def test_an_error_raises_the_alarm_once_and_it_recovers_when_the_window_has_passed():
    engine, cloudwatch, sns, clock = _engine(_errors_alarm(TreatMissingData="notBreaching"))
    engine.tick()
    assert cloudwatch.alarm["StateValue"] == "OK" and [p["Subject"] for p in sns.published] == ['OK: "fn-errors" in us-east-1']

    runtime = SimpleNamespace(run=lambda fn, event: SimpleNamespace(errored=True, duration_ms=12.5))
    stop = engine.observe_lambda(runtime)
    runtime.run(SimpleNamespace(function_name="fn"), {})
    stop()
    clock.now = NOW + timedelta(seconds=10)
    engine.tick()
    engine.tick()  # no new state: no second notification
    assert [p["Message"]["NewStateValue"] for p in sns.published] == ["OK", "ALARM"]
    alarm = sns.published[1]["Message"]
    assert alarm["AlarmName"] == "fn-errors" and alarm["Trigger"]["MetricName"] == "Errors"
    assert {d["MetricName"] for ns, d in cloudwatch.points if ns == "AWS/Lambda"} == {"Invocations", "Errors", "Duration"}

    clock.now = NOW + timedelta(seconds=400)
    engine.tick()
    assert cloudwatch.alarm["StateValue"] == "OK" and len(sns.published) == 3


def test_missing_data_treated_as_breaching_raises_the_alarm():
    engine, cloudwatch, sns, _ = _engine(_errors_alarm(TreatMissingData="breaching"))
    engine.tick()
    assert cloudwatch.alarm["StateValue"] == "ALARM" and sns.published[0]["Subject"].startswith("ALARM")


class Queues(Quiet):
    def __init__(self, depths: dict[str, int]):
        self.depths = depths

    def list_queues(self):
        return {"QueueUrls": [f"http://emulator/123456789012/{name}" for name in self.depths]}

    def get_queue_attributes(self, QueueUrl, AttributeNames):
        return {"Attributes": {"ApproximateNumberOfMessages": str(self.depths[QueueUrl.rsplit("/", 1)[-1]])}}


def test_a_queue_depth_is_a_data_point_when_it_changes_or_has_not_been_given_for_a_while():
    engine, cloudwatch, _, clock = _engine(_errors_alarm())
    queues = Queues({"steady": 0, "busy": 0})
    engine.client = {"cloudwatch": cloudwatch, "sns": FakeSns(), "sqs": queues, "stepfunctions": Quiet()}.__getitem__

    def depth_points():
        return [(d["Dimensions"][0]["Value"], d["Value"]) for ns, d in cloudwatch.points if ns == "AWS/SQS"]

    engine.sample_queues(clock.now)
    assert depth_points() == [("steady", 0.0), ("busy", 0.0)]
    for second in (2, 4, 6):
        clock.now = NOW + timedelta(seconds=second)
        queues.depths["busy"] = second
        engine.sample_queues(clock.now)
    assert depth_points()[2:] == [("busy", 2.0), ("busy", 4.0), ("busy", 6.0)], "an unchanged depth is not repeated"
    clock.now = NOW + timedelta(seconds=31)
    engine.sample_queues(clock.now)
    assert depth_points()[5:] == [("steady", 0.0)], "every alarm period still holds a point of each queue"


class ManyAlarms(FakeCloudWatch):
    """DescribeAlarms in pages of 50, as AWS gives them; counts the GetMetricData requests."""

    def __init__(self, alarms: list[dict]):
        super().__init__(alarms[0])
        self.alarms = {a["AlarmName"]: a for a in alarms}
        self.metric_requests: list[int] = []

    def describe_alarms(self, NextToken: str = "0"):
        names = sorted(self.alarms)
        start = int(NextToken)
        page = {"MetricAlarms": [dict(self.alarms[n]) for n in names[start:start + 50]]}
        if start + 50 < len(names):
            page["NextToken"] = str(start + 50)
        return page

    def get_metric_data(self, MetricDataQueries, StartTime, EndTime):
        self.metric_requests.append(len(MetricDataQueries))
        return super().get_metric_data(MetricDataQueries, StartTime, EndTime)

    def set_alarm_state(self, AlarmName, StateValue, StateReason):
        self.alarms[AlarmName]["StateValue"] = StateValue


def test_every_alarm_on_every_page_is_evaluated_with_one_metric_request_per_window_length():
    alarms = [_errors_alarm(AlarmName=f"fn{i:03d}-errors", Dimensions=[{"Name": "FunctionName", "Value": f"fn{i:03d}"}],
                            Period=60 if i % 2 else 300, AlarmActions=[], OKActions=[])
              for i in range(120)]
    cloudwatch = ManyAlarms(alarms)
    engine, _, _, _ = _engine(alarms[0])
    engine.client = {"cloudwatch": cloudwatch, "sns": FakeSns(), "sqs": Quiet(), "stepfunctions": Quiet()}.__getitem__
    for name in ("fn007", "fn010"):  # one alarm of each window length breaches
        engine.record_invocation(name, True, 5.0, NOW)
    engine.tick()
    states = {name: a["StateValue"] for name, a in cloudwatch.alarms.items()}
    assert {n for n, s in states.items() if s == "ALARM"} == {"fn007-errors", "fn010-errors"}
    assert set(states.values()) == {"ALARM", "INSUFFICIENT_DATA"} and len(states) == 120
    assert sorted(cloudwatch.metric_requests) == [60, 60], "one GetMetricData per window length"
