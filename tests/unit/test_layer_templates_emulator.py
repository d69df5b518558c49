"""Team, pipeline and dataset stacks create on the emulator's CloudFormation (moto + our providers).

The deploy runs in a child process: it installs the emulator's CloudFormation fixes into moto and
uses `mock_aws`, both process-global, so they must not leak into (or be undone under) other tests.
The child prints one JSON report; the test asserts on it. The foundations values the templates read
from SSM are pre-created, as the foundations stack would publish them.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REGION = "eu-west-1"


def deploy_layers_on_moto() -> dict:
    """Create every team, pipeline and dataset stack of the test lake; report what came out."""
    import io
    import zipfile

    import boto3
    from cfn_tools import load_yaml
    from moto import mock_aws

    from sdlf_cli.local import cfn as emulator_cfn
    from sdlf_cli.render import render_layer
    from tests.snapshots import TEMPLATES_DIR
    from tests.snapshots.layers import FULL

    names = FULL.names
    report: dict = {"stacks": {}, "warnings": []}

    def tiny_zip(path: str) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr(path, "def handler(event, context):\n    return {}\n")
        return buffer.getvalue()

    with mock_aws():
        emulator_cfn.install()
        client = lambda service: boto3.client(service, region_name=REGION)  # noqa: E731
        s3, ssm, cfn = client("s3"), client("ssm"), client("cloudformation")
        location = {"LocationConstraint": REGION}

        # What bootstrap and foundations would have created and published.
        s3.create_bucket(Bucket="artifacts", CreateBucketConfiguration=location)
        s3.put_object(Bucket="artifacts", Key="code.zip", Body=tiny_zip("handler.py"))
        s3.put_object(Bucket="artifacts", Key="layer.zip", Body=tiny_zip("python/sdlf_datalake/__init__.py"))
        layer_arn = client("lambda").publish_layer_version(
            LayerName=names.layer("datalake"), Content={"S3Bucket": "artifacts", "S3Key": "layer.zip"}
        )["LayerVersionArn"]
        lake_key = client("kms").create_key()["KeyMetadata"]["Arn"]
        published = {"kms/key-arn": lake_key, "tables/catalog": names.table("catalog"),
                     "tables/executions": names.table("executions"), "tables/quality": names.table("quality"),
                     "layers/datalake": layer_arn}
        for kind in ("raw", "stage", "analytics", "athena"):
            bucket = f"lake-{kind}"
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration=location)
            published[f"buckets/{kind}"] = bucket
        for path, value in published.items():
            ssm.put_parameter(Name=names.ssm(path), Value=value, Type="String")

        code = {"pArtifactsBucket": "artifacts", "pCodeRoutingAKey": "code.zip",
                "pCodeTransformAKey": "code.zip", "pCodeErrorAKey": "code.zip", "pCodeRoutingBKey": "code.zip",
                "pCodeTransformBKey": "code.zip", "pCodeErrorBKey": "code.zip",
                "pGlueHeavyTransformKey": "glue/heavy_transform.py", "pGlueQualityKey": "glue/quality.py"}
        for layer in ("team", "pipeline", "dataset"):
            for template in render_layer(FULL, layer, TEMPLATES_DIR):
                declared = set(load_yaml(template.body).get("Parameters", {}))
                cfn.create_stack(
                    StackName=template.stack_name,
                    TemplateBody=template.body,
                    Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in code.items() if k in declared],
                    Capabilities=["CAPABILITY_NAMED_IAM"],
                )
                stack = cfn.describe_stacks(StackName=template.stack_name)["Stacks"][0]
                resources = cfn.list_stack_resources(StackName=template.stack_name)["StackResourceSummaries"]
                report["stacks"][template.stack_name] = {
                    "status": stack["StackStatus"],
                    "outputs": {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])},
                    "resources": sorted(r["LogicalResourceId"] for r in resources),
                }

        # An "Object Created" event of each dataset reaches the stage-A queue of its own pipeline.
        events, sqs = client("events"), client("sqs")
        # Plain moto matches schedule-only rules against every event and cannot invoke their Lambda
        # target (the emulator's runtime/events.py fixes both); this check only needs the rules "a".
        for rule in events.list_rules()["Rules"]:
            if rule.get("ScheduleExpression"):
                ids = [t["Id"] for t in events.list_targets_by_rule(Rule=rule["Name"])["Targets"]]
                events.remove_targets(Rule=rule["Name"], Ids=ids)
        for team, dataset, pipeline in (("eng", "legislators", "main"), ("mkt", "ads", "fast")):
            detail = {"bucket": {"name": "lake-raw"}, "object": {"key": f"{team}/{dataset}/file.json", "size": 1}}
            events.put_events(Entries=[{"Source": "aws.s3", "DetailType": "Object Created",
                                        "Detail": json.dumps(detail)}])
        delivered = {}
        for url in sqs.list_queues()["QueueUrls"]:
            messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            keys = [json.loads(m["Body"])["detail"]["object"]["key"] for m in messages]
            delivered[url.rsplit("/", 1)[-1]] = keys
        report["delivered"] = delivered

        queue_a = sqs.get_queue_url(QueueName=names.queue("eng", "main", "a"))["QueueUrl"]
        attributes = sqs.get_queue_attributes(QueueUrl=queue_a, AttributeNames=["All"])["Attributes"]
        report["queue_a"] = {k: attributes.get(k) for k in ("Policy", "RedrivePolicy", "VisibilityTimeout")}
        report["registration"] = json.loads(
            ssm.get_parameter(Name=names.ssm("datasets", "eng", "legislators"))["Parameter"]["Value"]
        )
        report["team_registry"] = sorted(
            p["Name"] for p in ssm.get_parameters_by_path(Path=names.ssm("teams", "eng"))["Parameters"]
        )
        routing = client("lambda").get_function(FunctionName=names.function("eng", "main", "routing-a"))
        report["routing_a"] = {"environment": routing["Configuration"]["Environment"]["Variables"],
                               "layers": [x["Arn"] for x in routing["Configuration"].get("Layers", [])]}
        machine = client("stepfunctions").describe_state_machine(
            stateMachineArn=report["stacks"][names.pipeline_stack("eng", "main")]["outputs"]["StateMachineAArn"]
        )
        report["definition"] = json.loads(machine["definition"])
        report["glue_databases"] = sorted(d["Name"] for d in client("glue").get_databases()["DatabaseList"])
        report["workgroups"] = sorted(w["Name"] for w in client("athena").list_work_groups()["WorkGroups"])
    return report


@pytest.fixture(scope="module")
def report() -> dict:
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": REGION, "PYTHONPATH": str(ROOT)}
    for var in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        env.pop(var, None)
    done = subprocess.run([sys.executable, __file__], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"deploy on moto failed:\n{done.stderr[-4000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_every_stack_creates(report):
    from tests.snapshots.layers import FULL

    names = FULL.names
    expected = {names.team_stack("eng"), names.team_stack("mkt"), names.pipeline_stack("eng", "main"),
                names.pipeline_stack("mkt", "main"), names.pipeline_stack("mkt", "fast"),
                names.dataset_stack("eng", "legislators"), names.dataset_stack("mkt", "ads")}
    assert set(report["stacks"]) == expected
    for name, stack in report["stacks"].items():
        assert stack["status"] == "CREATE_COMPLETE", name
    team = report["stacks"][names.team_stack("eng")]["outputs"]
    assert team["LambdaRoleArn"].endswith(":role/" + names.role("eng", "lambda"))
    assert team["Workgroup"] == names.workgroup("eng")


def test_team_registry_and_analytics_resources_exist(report):
    from tests.snapshots.layers import FULL

    names = FULL.names
    from sdlf_cli.registry import TEAM_KEYS

    # Every key of the one registry vocabulary, and nothing else.
    assert report["team_registry"] == sorted(names.ssm("teams", "eng", x) for x in TEAM_KEYS)
    assert set(report["glue_databases"]) >= {names.glue_database("eng"), names.glue_database("mkt"),
                                             names.glue_database("eng", "legislators"),
                                             names.glue_database("mkt", "ads")}
    assert set(report["workgroups"]) >= {names.workgroup("eng"), names.workgroup("mkt")}


def test_events_reach_the_queue_of_the_datasets_pipeline(report):
    from tests.snapshots.layers import FULL

    names = FULL.names
    delivered = {queue: keys for queue, keys in report["delivered"].items() if keys}
    assert delivered == {
        names.queue("eng", "main", "a"): ["eng/legislators/file.json"],
        names.queue("mkt", "fast", "a"): ["mkt/ads/file.json"],
    }


def test_stage_a_wiring_on_the_emulator(report):
    from tests.snapshots.layers import FULL

    names = FULL.names
    queue = report["queue_a"]
    assert json.loads(queue["RedrivePolicy"])["maxReceiveCount"] == 3
    assert int(queue["VisibilityTimeout"]) == 360
    policy = json.loads(queue["Policy"])
    assert any(s["Principal"] == {"Service": "events.amazonaws.com"} for s in policy["Statement"])
    routing = report["routing_a"]
    assert routing["environment"]["STATE_MACHINE_ARN"].endswith(":stateMachine:" + names.state_machine("eng", "main", "sm-a"))
    assert len(routing["layers"]) == 1 and ":layer:" + names.layer("datalake") in routing["layers"][0]
    states = report["definition"]["States"]
    assert states["PreUpdate"]["Resource"].endswith(":function:" + names.function("eng", "main", "transform-a"))
    assert states["HandleError"]["Resource"].endswith(":function:" + names.function("eng", "main", "error-a"))
    registration = report["registration"]
    assert registration["stage_b_queue_url"].endswith("/" + names.queue("eng", "legislators", "b"))
    assert registration["stage_b_dlq_url"].endswith("/" + names.dlq("eng", "legislators", "b"))


if __name__ == "__main__":
    # Child process of the `report` fixture: stdout's last line is the JSON report.
    sys.path.insert(0, str(ROOT))
    print(json.dumps(deploy_layers_on_moto(), default=str))
