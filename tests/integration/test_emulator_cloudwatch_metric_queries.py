"""Seam: GetMetricData reads each query's metric, a period at a time (sdlf_cli/local/runtime/
cloudwatch_metric_queries.py) - the same answers as moto's scans of the whole window for every query and every
period: values to the last bit, timestamps, order, labels, statuses and errors; metric math and Metrics
Insights as moto answers them; moto's own function back when the patch comes out.

moto's function and the patched one are called on the same backend with the same request and their answers
compared as text (`repr`: a float that differs in its last bit, or a 0.0 that is a -0.0, shows)."""
from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest
from moto.cloudwatch.models import CloudWatchBackend

from sdlf_cli.local.cfn import _patching
from sdlf_cli.local.runtime import cloudwatch_metric_queries, install
from tests.integration.test_emulator_runtime_helpers import client, unique

ACCOUNT = "000000000042"  # holds none of the emulator's data: only what a test stores
START = datetime(2026, 3, 1, 12, 0, 0, 250000)  # with microseconds, which moto drops
BASE = START.replace(microsecond=0)
NAMESPACES = ("Lake/Ingest", "Lake/Transform", "AWS/Lambda")
NAMES = ("Errors", "Duration", "Rows")  # each in every namespace
DIMENSION_SETS = (
    (),
    (("FunctionName", "fn-a"),),
    (("FunctionName", "fn-a"), ("Team", "engineering")),
    (("Team", "engineering"), ("FunctionName", "fn-a")),
    (("FunctionName", "fn-b"), ("Team", "engineering")),
    (("QueueName", "q"), ("Stage", "a"), ("Team", "marketing")),
    (("Stage", "a"), ("Team", "marketing"), ("QueueName", "q")),
    # values below the other names: moto's sort puts these two orders in one, so both lists match a query
    (("Stage", "A"), ("Team", "Marketing")),
    (("Team", "Marketing"), ("Stage", "A")),
)
UNITS = (None, "Count", "Seconds", "Milliseconds")
PERIODS = (13, 60, 300, 3600)
EDGES = (0, 13, 26, 60, 120, 299, 300, 600, 3599, 3600, 3601, -1)  # seconds after BASE
STATS = ("Sum", "Average", "Minimum", "Maximum", "SampleCount", "p99")  # moto answers None for the last


@pytest.fixture(scope="module", autouse=True)
def runtime(emulator):
    install(emulator.context)


@pytest.fixture()
def functions():
    """moto's get_metric_data and the patched one; the patch stays installed, as the runtime installed it."""
    assert cloudwatch_metric_queries.PATCH_NAME in _patching.installed_names()
    cloudwatch_metric_queries.uninstall()
    try:
        original = CloudWatchBackend.__dict__["get_metric_data"]
    finally:
        cloudwatch_metric_queries.install()
    patched = CloudWatchBackend.__dict__["get_metric_data"]
    assert (original.__module__, original.__qualname__) == ("moto.cloudwatch.models",
                                                            "CloudWatchBackend.get_metric_data")
    assert patched is not original
    return original, patched


def _answer(function, backend, queries, start, end, scan_by="TimestampAscending"):
    try:
        return "answer", repr(function(backend, queries, start, end, scan_by))
    except Exception as error:  # noqa: BLE001 - moto's errors are part of its answer
        return "error", type(error), str(error)


def _same(functions, backend, queries, start, end, scan_by="TimestampAscending"):
    """moto's answer, after checking that the patched function gives it too."""
    original, patched = functions
    answer = _answer(original, backend, queries, start, end, scan_by)
    assert _answer(patched, backend, queries, start, end, scan_by) == answer
    return answer


def _backend(seed: int, points: int = 400) -> CloudWatchBackend:
    rng = random.Random(seed)
    backend = CloudWatchBackend("eu-west-1", ACCOUNT)
    for _ in range(points):
        datum = {"MetricName": rng.choice(NAMES),
                 "Dimensions": [{"Name": n, "Value": v} for n, v in rng.choice(DIMENSION_SETS)]}
        unit = rng.choice(UNITS)
        if unit:
            datum["Unit"] = unit
        offset = rng.choice(EDGES) if rng.random() < 0.3 else rng.uniform(-120, 3720)
        datum["Timestamp"] = BASE + timedelta(seconds=offset)
        kind = rng.random()
        if kind < 0.15:
            low, high = sorted(rng.uniform(-50, 50) for _ in range(2))
            datum["StatisticValues"] = {"Sum": rng.uniform(-1e9, 1e9), "Minimum": low, "Maximum": high,
                                        "SampleCount": float(rng.randint(1, 9))}
        elif kind < 0.3:
            datum["Values"] = [rng.uniform(-1e16, 1e16) for _ in range(3)]
            datum["Counts"] = [rng.randint(1, 3) for _ in range(3)]
        else:
            # magnitudes far apart: a sum in another order than moto's differs in its last bits
            datum["Value"] = rng.choice((1e-3, 1.0, 1e8, 1e16)) * rng.uniform(-1, 1)
        backend.put_metric_data(rng.choice(NAMESPACES), [datum])
    return backend


def _queries(seed: int, count: int = 60) -> list[dict]:
    rng = random.Random(seed)
    queries = []
    for index in range(count):
        metric = {"Namespace": rng.choice(NAMESPACES + ("Lake/Nothing",)), "MetricName": rng.choice(NAMES)}
        dimensions = rng.choice(DIMENSION_SETS)
        if dimensions:
            metric["Dimensions"] = [{"Name": n, "Value": v} for n, v in rng.sample(dimensions, len(dimensions))]
        metric_stat = {"Metric": metric, "Period": rng.choice(PERIODS), "Stat": STATS[index % len(STATS)]}
        if rng.random() < 0.2:
            metric_stat["Unit"] = rng.choice(UNITS[1:])
        query = {"Id": f"q{index}", "MetricStat": metric_stat}
        if rng.random() < 0.2:
            query["Label"] = f"label {index}"
        if rng.random() < 0.1:
            query["ReturnData"] = False
        queries.append(query)
    return queries


@pytest.mark.parametrize("seed", [1, 2])
def test_metric_stat_queries_answer_as_moto_does(functions, seed):
    backend = _backend(seed)
    queries = _queries(seed)
    queries[0] = {"Id": "unit", "Label": "with a unit", "MetricStat": {
        "Metric": {"Namespace": "Lake/Ingest", "MetricName": "Rows"}, "Period": 300, "Stat": "Sum", "Unit": "Count"}}
    windows = [(START, BASE + timedelta(seconds=3600)), (BASE + timedelta(seconds=60), BASE + timedelta(seconds=3601)),
               (BASE - timedelta(seconds=30), BASE + timedelta(seconds=299, microseconds=999999))]
    answered = []
    for start, end in windows:
        for scan_by in ("TimestampAscending", "TimestampDescending"):
            kind, text = _same(functions, backend, queries, start, end, scan_by)
            assert kind == "answer"
            answered.append(text)
    # Not an empty comparison: most queries found points, over several periods, with and without dimensions.
    results = functions[1](backend, queries, START, BASE + timedelta(seconds=3600), "TimestampAscending")
    found = [r for r in results if r["values"]]
    assert len(found) > len(results) // 2
    assert any(len(r["timestamps"]) > 10 for r in found)
    by_id = {q["Id"]: q for q in queries}
    assert any(by_id[r["id"]]["MetricStat"]["Metric"].get("Dimensions") for r in found)
    assert any(r["label"] == "with a unit" and r["values"] for r in results)
    assert any(v is None for r in results for v in r["values"])  # p99: moto has no value for it
    assert len(set(answered)) == len(answered)  # each window and order gave its own answer


def test_a_query_with_dimensions_reads_every_namespace_as_moto_does(functions):
    """moto's quirk, kept: with dimensions, a query compares the metric's name and dimensions, not its namespace."""
    backend = CloudWatchBackend("eu-west-1", ACCOUNT)
    dimensions = [{"Name": "FunctionName", "Value": "fn"}]
    for namespace, value in (("Lake/A", 1.0), ("Lake/B", 2.0)):
        backend.put_metric_data(namespace, [{"MetricName": "Errors", "Value": value, "Dimensions": dimensions,
                                             "Timestamp": BASE + timedelta(seconds=5)}])
    backend.put_metric_data("Lake/A", [{"MetricName": "Errors", "Value": 4.0,
                                        "Timestamp": BASE + timedelta(seconds=6)}])
    queries = [{"Id": "dims", "MetricStat": {"Metric": {"Namespace": "Lake/A", "MetricName": "Errors",
                                                        "Dimensions": dimensions}, "Period": 60, "Stat": "Sum"}},
               {"Id": "plain", "MetricStat": {"Metric": {"Namespace": "Lake/A", "MetricName": "Errors"},
                                              "Period": 60, "Stat": "Sum"}}]
    _same(functions, backend, queries, BASE, BASE + timedelta(seconds=60))
    results = functions[1](backend, queries, BASE, BASE + timedelta(seconds=60))
    assert [(r["id"], r["values"], r["label"]) for r in results] == [
        ("dims", [3.0], "Errors Sum"), ("plain", [5.0], "Errors Sum")]


def test_errors_are_moto_s(functions):
    backend = _backend(3, points=50)
    queries = _queries(3, count=5)
    errors = [_same(functions, backend, queries, start, end) for start, end in (
        (START, START), (BASE + timedelta(seconds=60), BASE),
        (BASE + timedelta(microseconds=10), BASE + timedelta(microseconds=900)))]  # equal once moto drops them
    assert [(kind, type_.__name__) for kind, type_, _ in errors] == [("error", "ValidationError")] * 3
    assert [message for *_, message in errors] == [errors[0][2], errors[1][2], errors[0][2]]
    assert "must not equal" in errors[0][2] and "must be greater" in errors[1][2]
    # moto's period loop ends by adding a period past EndTime: at the end of time, that fails
    last = datetime.max.replace(microsecond=0) - timedelta(seconds=30)
    assert _same(functions, backend, queries, last - timedelta(seconds=600), last)[:2] == ("error", OverflowError)


def test_requests_moto_answers_otherwise_are_moto_s(functions):
    """Aware times, a query missing a field, a stored dimension that is not text: moto's function answers."""
    backend = _backend(4, points=100)
    queries = _queries(4, count=10)
    end = BASE + timedelta(seconds=600)
    aware = _same(functions, backend, queries, START.replace(tzinfo=timezone.utc), end.replace(tzinfo=timezone.utc))
    assert aware[:2] == ("error", TypeError)  # moto compares them with the stored naive times
    rows = {"Namespace": "Lake/Ingest", "MetricName": "Rows"}
    broken = [{"Id": "x"},  # neither a metric nor an expression: moto leaves it out
              {"Id": "x", "MetricStat": {"Metric": {"MetricName": "Rows"}, "Period": 60, "Stat": "Sum"}},
              {"MetricStat": {"Metric": rows, "Period": 60, "Stat": "Sum"}},
              {"Id": "x", "MetricStat": {"Metric": {**rows, "Dimensions": [{"Name": "Team"}]}, "Period": 60,
                                         "Stat": "Sum"}}]
    answers = [_same(functions, backend, queries + [query], START, end) for query in broken]
    assert [answer[:2] for answer in answers] == [("answer", answers[0][1])] + [("error", KeyError)] * 3
    assert any(q["MetricStat"]["Metric"].get("Dimensions") for q in queries)
    backend.put_metric_data("Lake/Ingest", [{"MetricName": "Rows", "Value": 1.0, "Timestamp": BASE,
                                             "Dimensions": [{"Name": "Team", "Value": 7}]}])
    assert _same(functions, backend, queries, START, end)[0] == "answer"
    # moto sorts the dimensions of every point in the window, whatever its metric: this one fails its sort
    backend.put_metric_data("Lake/Ingest", [{"MetricName": "Unasked", "Value": 1.0, "Timestamp": BASE, "Dimensions": [
        {"Name": "Team", "Value": "engineering"}, {"Name": "FunctionName", "Value": None}]}])
    assert _same(functions, backend, queries, START, end)[:2] == ("error", TypeError)


def test_metric_math_and_metrics_insights_answer_as_moto_does(functions):
    backend = _backend(5)
    queries = _queries(5, count=12)
    queries[1]["ReturnData"] = False
    queries += [{"Id": "m1", "Expression": queries[0]["Id"]},
                {"Id": "m2", "Expression": queries[1]["Id"], "Label": "hidden one"},
                {"Id": "m3", "Expression": "nothing"}]
    end = BASE + timedelta(seconds=3600)
    for scan_by in ("TimestampAscending", "TimestampDescending"):
        assert _same(functions, backend, queries, START, end, scan_by)[0] == "answer"
    results = {r["id"]: r for r in functions[1](backend, queries, START, end, "TimestampDescending")}
    assert queries[1]["Id"] not in results and results["m2"]["label"] == "hidden one"
    assert (results["m1"]["values"], results["m1"]["timestamps"]) == (results[queries[0]["Id"]]["values"],
                                                                      results[queries[0]["Id"]]["timestamps"])
    assert results["m3"]["values"] == []
    insights = queries + [{"Id": "s1", "Expression": 'SELECT SUM("Rows") FROM "Lake/Ingest"', "Period": 300}]
    assert _same(functions, backend, insights, START, end, "TimestampDescending")[0] == "answer"


def test_uninstall_puts_moto_s_function_back_and_a_second_install_changes_nothing(functions):
    original, _ = functions
    cloudwatch_metric_queries.uninstall()
    try:
        assert CloudWatchBackend.__dict__["get_metric_data"] is original
        assert cloudwatch_metric_queries.PATCH_NAME not in _patching.installed_names()
        cloudwatch_metric_queries.install()
        installed = CloudWatchBackend.__dict__["get_metric_data"]
        cloudwatch_metric_queries.install()
        assert CloudWatchBackend.__dict__["get_metric_data"] is installed is not original
        assert _patching.installed_names().count(cloudwatch_metric_queries.PATCH_NAME) == 1
        cloudwatch_metric_queries.uninstall()
        assert CloudWatchBackend.__dict__["get_metric_data"] is original
    finally:
        cloudwatch_metric_queries.install()


def test_the_emulator_s_api_answers_as_moto_does(emulator):
    cloudwatch = client(emulator, "cloudwatch")
    namespace = unique("Lake/Api")
    now = datetime.now(timezone.utc).replace(microsecond=0)
    for index in range(40):
        cloudwatch.put_metric_data(Namespace=namespace, MetricData=[{
            "MetricName": ("Errors", "Rows")[index % 2], "Value": float(index), "Unit": "Count",
            "Dimensions": [{"Name": "FunctionName", "Value": f"fn-{index % 3}"}],
            "Timestamp": now - timedelta(seconds=index * 7)}])
    queries = [{"Id": f"q{i}", "MetricStat": {"Metric": {"Namespace": namespace, "MetricName": name, **dims},
                                              "Period": period, "Stat": stat}}
               for i, (name, dims, period, stat) in enumerate([
                   ("Errors", {}, 60, "Sum"), ("Rows", {"Dimensions": [{"Name": "FunctionName", "Value": "fn-1"}]},
                                                   30, "Average"), ("Rows", {}, 300, "SampleCount"),
                   ("Errors", {"Dimensions": [{"Name": "FunctionName", "Value": "fn-2"}]}, 60, "Maximum")])]
    request = {"MetricDataQueries": queries, "StartTime": now - timedelta(seconds=300),
               "EndTime": now + timedelta(seconds=1)}
    assert cloudwatch_metric_queries.PATCH_NAME in _patching.installed_names()
    patched = cloudwatch.get_metric_data(**request)["MetricDataResults"]
    cloudwatch_metric_queries.uninstall()
    try:
        original = cloudwatch.get_metric_data(**request)["MetricDataResults"]
    finally:
        cloudwatch_metric_queries.install()
    assert patched == original
    assert all(r["Values"] for r in patched)
