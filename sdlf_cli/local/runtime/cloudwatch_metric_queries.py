"""moto's GetMetricData without rescanning the window for every query and every period.

moto 5.2.5 answers GetMetricData by keeping a region's data points that fall in the request's window, then,
for every MetricStat query and every period of it, scanning the whole window again - and for a query with
dimensions, sorting both dimension lists of every point it passes. The alarm engine asks for all of an
emulator's alarms in one request every 5 s (a query per alarm, dozens per lake, several lakes in a test
emulator): the cost is queries x periods x points, and in a profile of the test suite these scans and moto's
`Dimension.__eq__` were ~6 % of the test workers' CPU, the emulator's largest hot spot. A request with 60
alarms' queries over 5,000 points in a 300 s window took ~215 ms of CPU in moto, ~7.3 ms here.

Named patch (`sdlf_cli.local.cfn._patching`), the same answers as moto's (values, timestamps, order, labels,
statuses, errors):
- the window's points are grouped once per request by metric name, which every query's filter requires, and
  a query reads only its name's points: those of its namespace, or, when it has dimensions, those whose
  sorted dimension list moto's own comparison finds equal to the query's - whatever their namespace, as
  moto does - compared once per distinct dimension list instead of once per point and period;
- a point's period is worked out from its time (moto's periods start at StartTime + k x Period, and the
  request's times are naive, so the arithmetic is exact), and each period's points keep the window's order,
  so sums and averages come out of moto's `Statistics` to the last bit;
- metric-math expressions are answered from these results by moto's parser. A request moto would answer
  otherwise - a Metrics Insights query, a period that is not positive (moto never ends), aware times, a
  query or a stored dimension that is not text, a query missing a field - goes to moto's function whole.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from operator import attrgetter
from typing import Any

PATCH_NAME = "cloudwatch: GetMetricData reads each query's metric, a period at a time"

_NAME_VALUE = attrgetter("name", "value")


def _usual(queries: Any, start_time: Any, end_time: Any) -> bool:
    """Whether every part of the request is one the grouped reading answers as moto does."""
    if not isinstance(queries, list) or not all(
            isinstance(time, datetime) and time.tzinfo is None for time in (start_time, end_time)):
        return False
    try:
        for query in queries:
            if not isinstance(query, dict):
                return False
            if "Expression" in query:
                expression = query["Expression"]
                if not isinstance(expression, str) or expression.startswith("SELECT"):
                    return False
                query["Id"]  # noqa: B018 - a missing field: moto's function raises its own KeyError
            if "MetricStat" in query:
                metric_stat = query["MetricStat"]
                metric = metric_stat["Metric"]
                if type(metric["Namespace"]) is not str or type(metric["MetricName"]) is not str:
                    return False
                if int(metric_stat["Period"]) <= 0:
                    return False
                for dimension in metric.get("Dimensions", []):
                    if type(dimension["Name"]) is not str or type(dimension["Value"]) is not str:
                        return False
                metric_stat["Stat"], metric_stat.get("Unit"), query["Id"]  # noqa: B018
    except Exception:
        return False
    return True


def _text(groups: dict) -> bool:
    """moto sorts every window point's dimensions for a query with dimensions, and its sort and comparison of
    `Dimension`s only act as a function of the names and values (and never raise) when both are text."""
    return all(type(part) is str for by_key in groups.values() for key in by_key for pair in key for part in pair)


def _grouped(original: Any) -> Any:
    from moto.cloudwatch import models

    def get_metric_data(self: Any, queries: list[dict[str, Any]], start_time: Any, end_time: Any,
                        scan_by: str = "TimestampAscending") -> list[dict[str, Any]]:
        if not _usual(queries, start_time, end_time):
            return original(self, queries, start_time, end_time, scan_by)
        start_time = start_time.replace(microsecond=0)
        end_time = end_time.replace(microsecond=0)
        if start_time > end_time:
            raise models.ValidationError("The parameter EndTime must be greater than StartTime.")
        if start_time == end_time:
            raise models.ValidationError("The parameter StartTime must not equal parameter EndTime.")

        period_data = [md for md in self.get_all_metrics() if start_time <= md.timestamp < end_time]
        stat_queries = [q for q in queries if "MetricStat" in q]
        with_dimensions = any(q["MetricStat"]["Metric"].get("Dimensions") for q in stat_queries)
        by_name: dict[str, list[int]] = {}
        by_dimensions: dict[str, dict[tuple, list[int]]] = {}  # name -> (name, value) pairs as stored -> points
        try:
            for index, md in enumerate(period_data):
                by_name.setdefault(md.name, []).append(index)
                if with_dimensions:
                    by_dimensions.setdefault(md.name, {}).setdefault(
                        tuple(map(_NAME_VALUE, md.dimensions)), []).append(index)
        except TypeError:  # a name or dimension that is no dictionary key: moto's comparisons read them
            return original(self, queries, start_time, end_time, scan_by)
        if with_dimensions and not _text(by_dimensions):
            return original(self, queries, start_time, end_time, scan_by)

        by_namespace: dict[tuple[str, str], list[int]] = {}
        same_dimensions: dict[tuple[tuple, tuple], bool] = {}
        periods_checked: set[timedelta] = set()

        def in_namespace(name: str, namespace: str) -> list[int]:
            key = (name, namespace)
            if key not in by_namespace:
                by_namespace[key] = [i for i in by_name.get(name, ()) if period_data[i].namespace == namespace]
            return by_namespace[key]

        def of_dimensions(name: str, dimensions: list) -> list[int]:
            wanted = tuple(map(_NAME_VALUE, dimensions))
            matched = []
            for key, indexes in by_dimensions.get(name, {}).items():
                if (key, wanted) not in same_dimensions:
                    same_dimensions[key, wanted] = (
                        sorted(period_data[indexes[0]].dimensions) == sorted(dimensions))
                if same_dimensions[key, wanted]:
                    matched.append(indexes)
            if len(matched) == 1:
                return matched[0]
            return sorted(i for indexes in matched for i in indexes)

        results = []
        results_to_return = []
        for query in stat_queries:
            metric_stat = query["MetricStat"]
            query_ns = metric_stat["Metric"]["Namespace"]
            query_name = metric_stat["Metric"]["MetricName"]
            delta = timedelta(seconds=int(metric_stat["Period"]))
            dimensions = [models.Dimension(name=d["Name"], value=d["Value"])
                          for d in metric_stat["Metric"].get("Dimensions", [])]
            unit = metric_stat.get("Unit")
            stat = metric_stat["Stat"]
            if delta not in periods_checked:
                # moto's loop ends by adding a period past EndTime: a window at the end of time fails there.
                last_start = start_time + (end_time - start_time) // delta * delta
                last_start + delta  # noqa: B018
                periods_checked.add(delta)

            indexes = of_dimensions(query_name, dimensions) if dimensions else in_namespace(query_name, query_ns)
            periods: dict[int, list] = {}
            for i in indexes:
                md = period_data[i]
                if unit and md.unit != unit:
                    continue
                k = (md.timestamp - start_time) // delta
                if k in periods:
                    periods[k].append(md)
                else:
                    periods[k] = [md]
            result_vals: list = []
            timestamps: list = []
            for k in sorted(periods):
                stats = models.Statistics([stat], start_time + k * delta)
                stats.metric_data = periods[k]
                result_vals.append(stats.get_statistics_for_type(stat))
                timestamps.append(stats.timestamp)
            if scan_by == "TimestampDescending" and len(timestamps) > 0:
                timestamps.reverse()
                result_vals.reverse()

            label = query.get("Label") or f"{query_name} {stat}"
            result = {"id": query["Id"], "label": label, "values": result_vals, "timestamps": timestamps,
                      "status_code": "Complete"}
            results.append(result)
            if query.get("ReturnData", True):
                results_to_return.append(dict(result))
        for query in queries:
            if "Expression" in query:
                label = query.get("Label") or query["Id"]
                result_vals, timestamps = models.parse_expression(query["Expression"], results)
                results_to_return.append({"id": query["Id"], "label": label, "values": result_vals,
                                          "timestamps": timestamps, "status_code": "Complete"})
        return results_to_return

    return get_metric_data


def install() -> None:
    from moto.cloudwatch.models import CloudWatchBackend

    from sdlf_cli.local.cfn import _patching

    _patching.wrap(CloudWatchBackend, "get_metric_data", PATCH_NAME, _grouped)


def uninstall() -> None:
    from sdlf_cli.local.cfn import _patching

    _patching.uninstall(PATCH_NAME)
