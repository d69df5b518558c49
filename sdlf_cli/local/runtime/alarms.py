"""CloudWatch metrics and alarms that behave: moto stores alarms but never evaluates them, and publishes no
AWS/SQS or AWS/States metrics at all.

One thread, on an injectable clock, does what AWS does in the background:
- samples the service metrics the lake's alarms watch: `AWS/SQS ApproximateNumberOfMessagesVisible` per
  queue, `AWS/States ExecutionsSucceeded` / `ExecutionsFailed` / `ExecutionsTimedOut` per state machine
  (one data point per execution that ended so, at its stop time), and `AWS/Lambda Invocations` / `Errors` /
  `Duration` per function, from every invocation the emulator's Lambda runtime runs (`observe_lambda`; the
  emulator never throttles, so `Throttles` has no data and its alarms stay OK);
- evaluates every metric alarm over its last `Period x EvaluationPeriods` seconds (statistic, comparison,
  `TreatMissingData`), moves its state, and on a change publishes AWS's alarm notification (JSON, subject
  `ALARM: "<name>" in <region>`) to the SNS topics of the matching actions - so subscribers really get it.

Queue depths and ended executions are read from moto's backends (`BackendReadings`), as CloudWatch collects
them inside AWS; metrics, alarms and notifications go through the emulator's own API (boto3 at the endpoint),
as another AWS service would. Tests call `tick()` with a fake clock instead of running the thread.
"""
from __future__ import annotations

import json
import logging
import threading
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

LOG = logging.getLogger(__name__)

# AWS evaluates a standard-resolution alarm once a minute; every 5 s keeps the emulator ahead of that while
# its work (reading queues and executions, one GetMetricData for all alarms) stays a small share of a busy
# emulator's one interpreter (at 2 s, with a request per queue and per alarm, it was ~5 % of the CPU of a
# stage-A burst).
TICK_S = 5.0
DEPTH_REFRESH_S = 30.0  # an unchanged queue depth is sampled again this often
_COMPARE = {
    "GreaterThanThreshold": lambda v, t: v > t,
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
}
_EXECUTION_METRICS = {"SUCCEEDED": "ExecutionsSucceeded", "FAILED": "ExecutionsFailed",
                      "TIMED_OUT": "ExecutionsTimedOut"}
_STATISTIC_KEYS = {"Sum": "Sum", "Maximum": "Maximum", "Minimum": "Minimum", "Average": "Average",
                   "SampleCount": "SampleCount"}


MAX_QUERIES = 500  # GetMetricData's limit of queries in one request


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def endpoint_clients(endpoint_url: str, region: str) -> Callable[[str], Any]:
    """One boto3 client per service at the emulator's endpoint, made on first use."""
    import boto3

    made: dict[str, Any] = {}
    lock = threading.Lock()

    def client(service: str):
        with lock:
            if service not in made:
                # The request log tells CloudWatch's own metric and alarm work from the lake's requests.
                from botocore.config import Config

                from sdlf_cli.local.request_log import EMULATOR_AGENT

                made[service] = boto3.client(service, endpoint_url=endpoint_url, region_name=region,
                                             aws_access_key_id="testing", aws_secret_access_key="testing",
                                             config=Config(user_agent_extra=EMULATOR_AGENT))
            return made[service]

    return client


class AlarmEngine:
    def __init__(self, client: Callable[[str], Any], region: str, clock: Callable[[], datetime] = utc_now,
                 tick_s: float = TICK_S, readings: "Readings | None" = None):
        self.client = client
        self.readings = readings if readings is not None else ApiReadings(lambda service: self.client(service))
        self.region = region
        self.clock = clock
        self.tick_s = tick_s
        self._seen_executions: set[str] = set()
        self._last_depth: dict[str, tuple[float, datetime]] = {}  # queue name -> (value, when) of its last data point
        self._invocations: list[dict] = []  # Lambda data points waiting for the next tick
        self._invocations_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.notifications: list[tuple[str, str, str]] = []  # (alarm, new state, topic arn), most recent last

    # --- thread -----------------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="sdlf-alarms", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.tick_s):
            try:
                self.tick()
            except Exception:  # the emulator may be shutting down; the next tick tries again
                LOG.debug("alarm tick failed", exc_info=True)

    def observe_lambda(self, runtime: Any) -> Callable[[], None]:
        """Record every invocation `runtime.run(fn, event)` makes; returns the function that stops recording."""
        original = runtime.run

        def run(fn: Any, event: Any):
            result = original(fn, event)
            self.record_invocation(fn.function_name, bool(result.errored), float(getattr(result, "duration_ms", 0) or 0),
                                   self.clock())
            return result

        runtime.run = run
        return lambda: runtime.__dict__.pop("run", None)

    def record_invocation(self, function_name: str, errored: bool, duration_ms: float, when: datetime) -> None:
        dimensions = [{"Name": "FunctionName", "Value": function_name}]
        with self._invocations_lock:
            self._invocations += [
                {"MetricName": "Invocations", "Timestamp": when, "Unit": "Count", "Value": 1.0, "Dimensions": dimensions},
                {"MetricName": "Errors", "Timestamp": when, "Unit": "Count", "Value": float(errored),
                 "Dimensions": dimensions},
                {"MetricName": "Duration", "Timestamp": when, "Unit": "Milliseconds", "Value": duration_ms,
                 "Dimensions": dimensions},
            ]

    def tick(self) -> None:
        now = self.clock()
        with self._invocations_lock:
            invocations, self._invocations = self._invocations, []
        self._put("AWS/Lambda", invocations)
        self.sample_queues(now)
        self.sample_executions(now)
        self.evaluate(now)

    # --- metrics ----------------------------------------------------------------------------------------
    def sample_queues(self, now: datetime) -> None:
        """A depth data point when it changed, or when the last is DEPTH_REFRESH_S old: every alarm period (60 s
        at least) still holds one, and a long-running emulator does not keep (and save) a point per queue per tick."""
        data = []
        for name, value in self.readings.queue_depths().items():
            last = self._last_depth.get(name)
            if last is not None and last[0] == value and (now - last[1]).total_seconds() < DEPTH_REFRESH_S:
                continue
            self._last_depth[name] = (value, now)
            data.append({"MetricName": "ApproximateNumberOfMessagesVisible", "Timestamp": now, "Unit": "Count",
                         "Dimensions": [{"Name": "QueueName", "Value": name}], "Value": value})
        self._put("AWS/SQS", data)

    def sample_executions(self, now: datetime) -> None:
        data = []
        for machine, execution, status, stopped in self.readings.finished_executions():
            if execution in self._seen_executions or status not in _EXECUTION_METRICS:
                continue
            self._seen_executions.add(execution)
            data.append({"MetricName": _EXECUTION_METRICS[status], "Timestamp": stopped or now, "Unit": "Count",
                         "Value": 1.0, "Dimensions": [{"Name": "StateMachineArn", "Value": machine}]})
        self._put("AWS/States", data)

    def _put(self, namespace: str, data: list[dict]) -> None:
        cloudwatch = self.client("cloudwatch")
        for start in range(0, len(data), 20):
            cloudwatch.put_metric_data(Namespace=namespace, MetricData=data[start:start + 20])

    # --- alarms -----------------------------------------------------------------------------------------
    def evaluate(self, now: datetime) -> None:
        cloudwatch = self.client("cloudwatch")
        alarms = [a for a in self._metric_alarms(cloudwatch)
                  if a.get("MetricName") and a.get("Statistic") in _STATISTIC_KEYS]
        values = self._window_values(cloudwatch, alarms, now)
        for index, alarm in enumerate(alarms):
            state, reason = self._state(alarm, values.get(_query_id(index), []))
            if state == alarm.get("StateValue"):
                continue
            cloudwatch.set_alarm_state(AlarmName=alarm["AlarmName"], StateValue=state, StateReason=reason)
            self._notify(alarm, state, reason, now)

    @staticmethod
    def _metric_alarms(cloudwatch) -> list[dict]:
        """Every metric alarm, over DescribeAlarms' pages (AWS gives 50 to a page)."""
        alarms, request = [], {}
        while True:
            page = cloudwatch.describe_alarms(**request)
            alarms += page.get("MetricAlarms", [])
            if not page.get("NextToken"):
                return alarms
            request = {"NextToken": page["NextToken"]}

    @staticmethod
    def _window_values(cloudwatch, alarms: list[dict], now: datetime) -> dict[str, list[float]]:
        """Each alarm's statistic over its last `Period x EvaluationPeriods` seconds, by query id: one
        GetMetricData per window length (up to 500 alarms a call) rather than a GetMetricStatistics per alarm,
        whose every call made the emulator scan all of its metric data again (a tick's cost grew with the
        lakes an emulator holds)."""
        by_window: dict[int, list[dict]] = {}
        for index, alarm in enumerate(alarms):
            window = _window(alarm)
            by_window.setdefault(window, []).append({
                "Id": _query_id(index), "ReturnData": True,
                "MetricStat": {"Metric": {"Namespace": alarm["Namespace"], "MetricName": alarm["MetricName"],
                                          "Dimensions": alarm.get("Dimensions", [])},
                               "Period": window, "Stat": alarm["Statistic"]}})
        values: dict[str, list[float]] = {}
        for window, queries in by_window.items():
            for start in range(0, len(queries), MAX_QUERIES):
                request = {"MetricDataQueries": queries[start:start + MAX_QUERIES],
                           "StartTime": now - timedelta(seconds=window), "EndTime": now + timedelta(seconds=1)}
                while True:
                    page = cloudwatch.get_metric_data(**request)
                    for result in page.get("MetricDataResults", []):
                        values.setdefault(result["Id"], []).extend(float(v) for v in result.get("Values", []))
                    if not page.get("NextToken"):
                        break
                    request["NextToken"] = page["NextToken"]
        return values

    @staticmethod
    def _state(alarm: dict, values: list[float]) -> tuple[str, str]:
        window = _window(alarm)
        threshold = float(alarm.get("Threshold", 0))
        if not values:
            missing = alarm.get("TreatMissingData") or "missing"
            state = {"breaching": "ALARM", "notBreaching": "OK"}.get(missing, alarm.get("StateValue") or "INSUFFICIENT_DATA")
            return state, f"no datapoints in the last {window} s (treated as {missing})"
        value = max(values) if alarm["Statistic"] != "Minimum" else min(values)
        if alarm["Statistic"] == "Sum":
            value = sum(values)
        breaching = _COMPARE[alarm["ComparisonOperator"]](value, threshold)
        verb = "crossed" if breaching else "did not cross"
        return ("ALARM" if breaching else "OK"), (
            f"Threshold {verb}: {alarm['Statistic']} {value:g} over the last {window} s "
            f"({alarm['ComparisonOperator']} {threshold:g})")

    def _notify(self, alarm: dict, state: str, reason: str, now: datetime) -> None:
        actions = {"ALARM": "AlarmActions", "OK": "OKActions", "INSUFFICIENT_DATA": "InsufficientDataActions"}[state]
        if not alarm.get("ActionsEnabled", True):
            return
        message = {
            "AlarmName": alarm["AlarmName"], "AlarmDescription": alarm.get("AlarmDescription"),
            "AWSAccountId": alarm.get("AlarmArn", "::::").split(":")[4], "NewStateValue": state,
            "NewStateReason": reason, "StateChangeTime": now.isoformat(), "Region": self.region,
            "AlarmArn": alarm.get("AlarmArn"), "OldStateValue": alarm.get("StateValue"),
            "Trigger": {"MetricName": alarm["MetricName"], "Namespace": alarm["Namespace"],
                        "Statistic": alarm["Statistic"].upper(), "Dimensions": [
                            {"name": d["Name"], "value": d["Value"]} for d in alarm.get("Dimensions", [])],
                        "Period": alarm.get("Period"), "EvaluationPeriods": alarm.get("EvaluationPeriods"),
                        "ComparisonOperator": alarm["ComparisonOperator"], "Threshold": alarm.get("Threshold"),
                        "TreatMissingData": alarm.get("TreatMissingData")},
        }
        sns = self.client("sns")
        for arn in alarm.get(actions, []):
            if ":sns:" not in arn:
                continue
            sns.publish(TopicArn=arn, Subject=f'{state}: "{alarm["AlarmName"]}" in {self.region}'[:100],
                        Message=json.dumps(message))
            self.notifications.append((alarm["AlarmName"], state, arn))


def _window(alarm: dict) -> int:
    return int(alarm.get("Period") or 60) * int(alarm.get("EvaluationPeriods") or 1)


def _query_id(index: int) -> str:
    return f"a{index}"  # GetMetricData ids start with a lower-case letter


class Readings:
    """What the engine samples: each queue's visible messages, and the executions that have ended."""

    def queue_depths(self) -> dict[str, float]:
        raise NotImplementedError

    def finished_executions(self) -> list[tuple[str, str, str, datetime | None]]:
        """(state machine arn, execution arn, status, stop time) of every execution that has ended."""
        raise NotImplementedError


class ApiReadings(Readings):
    """Through the public API: ListQueues and a GetQueueAttributes per queue; ListExecutions per state machine and
    ending status (the first page of each)."""

    def __init__(self, client: Callable[[str], Any]):
        self.client = client

    def queue_depths(self) -> dict[str, float]:
        sqs, depths = self.client("sqs"), {}
        for url in sqs.list_queues().get("QueueUrls", []):
            attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
            depths[url.rsplit("/", 1)[-1]] = float(attributes["Attributes"].get("ApproximateNumberOfMessages", 0))
        return depths

    def finished_executions(self) -> list[tuple[str, str, str, datetime | None]]:
        sfn, ended = self.client("stepfunctions"), []
        for machine in sfn.list_state_machines().get("stateMachines", []):
            for status in _EXECUTION_METRICS:
                for execution in sfn.list_executions(stateMachineArn=machine["stateMachineArn"],
                                                     statusFilter=status).get("executions", []):
                    ended.append((machine["stateMachineArn"], execution["executionArn"], status,
                                  execution.get("stopDate")))
        return ended


class BackendReadings(Readings):
    """From moto's SQS and Step Functions backends, as CloudWatch gets these metrics inside AWS rather than
    through the public API. Through the API, each tick made a request per queue and three per state machine,
    so an emulator's idle CPU grew with every lake it held."""

    def __init__(self, account_id: str, region: str):
        self.account_id, self.region = account_id, region

    def queue_depths(self) -> dict[str, float]:
        from moto.sqs.models import sqs_backends

        queues = list(sqs_backends[self.account_id][self.region].queues.items())
        return {name: float(queue.approximate_number_of_messages) for name, queue in queues}

    def finished_executions(self) -> list[tuple[str, str, str, datetime | None]]:
        from moto.stepfunctions.responses import get_backend

        ended = []
        for machine in list(get_backend(self.account_id, self.region).state_machines):
            for execution in list(machine.executions):
                status = str(getattr(execution.status, "value", execution.status))
                if status in _EXECUTION_METRICS:
                    ended.append((machine.arn, execution.execution_arn, status, _utc(execution.stop_date)))
        return ended


def _utc(moment: Any) -> datetime | None:
    if moment is None or not isinstance(moment, datetime):
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)
