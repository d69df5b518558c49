"""What the rendered templates declare for monitoring, and the Glue role's clean-up permission."""
from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from cfn_tools import load_yaml

from sdlf_cli.render import render_layer
from tests.snapshots.layers import lake

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


@cache
def _template(layer: str, unit: str) -> dict:
    (template,) = [t for t in render_layer(lake(), layer, TEMPLATES) if t.name == unit]
    return load_yaml(template.body)


def _alarms(template: dict) -> dict[str, dict]:
    return {r["Properties"]["AlarmName"]: r["Properties"] for r in template["Resources"].values()
            if r["Type"] == "AWS::CloudWatch::Alarm"}


def test_the_glue_role_may_delete_the_spark_staging_output():
    role = _template("team", "eng")["Resources"]["rGlueRole"]
    statements = [s for p in role["Properties"]["Policies"] for s in p["PolicyDocument"]["Statement"]]
    deleting = [s for s in statements if "s3:DeleteObject" in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])]
    resources = [json.dumps(s["Resource"]) for s in deleting]
    assert any("${pStageBucket}/eng/*/_batches/*" in r for r in resources), resources


def test_the_pipeline_alarms_cover_failed_and_timed_out_executions_and_every_function():
    alarms = _alarms(_template("pipeline", "eng/main"))
    names = lake().names
    for stage in ("a", "b"):
        for what, metric in (("failed", "ExecutionsFailed"), ("timed-out", "ExecutionsTimedOut")):
            alarm = alarms[names.resource("eng", "main", f"stage-{stage}-{what}")]
            assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/States", metric)
            assert alarm["AlarmActions"] == [{"Ref": "pTeamTopicArn"}]
    for kind in ("routing-a", "transform-a", "error-a", "routing-b", "transform-b", "error-b"):
        for metric in ("errors", "throttles"):
            alarm = alarms[names.resource("eng", "main", f"{kind}-{metric}")]
            assert alarm["Namespace"] == "AWS/Lambda" and alarm["Dimensions"][0]["Name"] == "FunctionName"


def test_the_lake_topic_hears_about_the_catalog():
    alarms = _alarms(_template("foundations", "foundations"))
    names = lake().names
    dlq = alarms[names.resource("catalog-dlq-not-empty")]
    assert dlq["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert dlq["AlarmActions"] == [{"Ref": "rNotificationsTopic"}] == dlq["OKActions"]
    assert {names.resource("catalog-errors"), names.resource("catalog-throttles")} <= set(alarms)


def test_each_team_has_a_dashboard_and_hears_about_failed_glue_jobs():
    resources = _template("team", "mkt")["Resources"]
    body = resources["rDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    widgets = json.loads(body)["widgets"]
    titles = {w["properties"]["title"] for w in widgets}
    team = next(t for t in lake().teams if t.name == "mkt")
    for pipeline in team.pipelines:
        assert f"Pipeline {pipeline.name}, stage B: executions" in titles
    for dataset in team.datasets:
        assert f"Dataset {dataset.name}: Glue job duration (ms)" in titles
    rule = resources["rGlueJobFailedRule"]["Properties"]
    assert rule["EventPattern"]["detail"]["jobName"] == [{"prefix": lake().names.resource("mkt") + "-"}]
    assert rule["Targets"][0]["Arn"] == {"Ref": "rTopic"}
