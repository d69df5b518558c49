"""The stage-B Glue steps on the emulator with the project's real script (glue/heavy_transform.py):
startJobRun.sync -> startCrawler -> wait for READY -> query the crawled table with DuckDB."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from sdlf_cli.aws.session import AwsTarget, Clients
from sdlf_cli.config.model import LakeConfig, Team
from sdlf_cli.lake import Lake
from sdlf_cli.local.runtime import install
from sdlf_cli.workflows.query import run_query
from tests.integration.test_emulator_runtime_helpers import bucket, client, role_arn, unique, wait_for

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "stage_b"
CFG = LakeConfig(org="acme", app="lake", env="dev", region="us-east-1", teams=(Team("sales"),))

# The part of sm-b that drives Glue (the Lambda steps around it are the pipeline's own tests).
DEFINITION = {
    "StartAt": "RunJob",
    "States": {
        "RunJob": {"Type": "Task", "Resource": "arn:aws:states:::glue:startJobRun.sync",
                   "Parameters": {"JobName.$": "$.job",
                                  "Arguments": {"--manifest.$": "$.manifest", "--engine.$": "$.engine"}},
                   "ResultPath": "$.job_run", "Next": "StartCrawler"},
        "StartCrawler": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:glue:startCrawler",
                         "Parameters": {"Name.$": "$.crawler"}, "ResultPath": None,
                         "Catch": [{"ErrorEquals": ["Glue.CrawlerRunningException"], "ResultPath": None,
                                    "Next": "WaitCrawler"}],
                         "Next": "WaitCrawler"},
        "WaitCrawler": {"Type": "Wait", "Seconds": 1, "Next": "GetCrawler"},
        "GetCrawler": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:glue:getCrawler",
                       "Parameters": {"Name.$": "$.crawler"}, "ResultPath": "$.crawler_state",
                       "Next": "CrawlerDone"},
        "CrawlerDone": {"Type": "Choice",
                        "Choices": [{"Variable": "$.crawler_state.Crawler.State", "StringEquals": "READY",
                                     "Next": "Done"}],
                        "Default": "WaitCrawler"},
        "Done": {"Type": "Pass", "End": True},
    },
}


@pytest.fixture(scope="module", autouse=True)
def runtime(emulator):
    install(emulator.context)


def test_heavy_transform_job_then_crawler_then_query(emulator, tmp_path):
    s3, glue, sfn = client(emulator, "s3"), client(emulator, "glue"), client(emulator, "stepfunctions")
    stage, analytics, artifacts = bucket(emulator), bucket(emulator), bucket(emulator)
    s3.put_object(Bucket=artifacts, Key="glue/heavy_transform/x.py",
                  Body=(ROOT / "glue" / "heavy_transform.py").read_bytes())
    inputs = []
    for name in ("orders-1.jsonl", "orders-2.jsonl"):
        key = f"sales/orders/{name}"
        etag = s3.put_object(Bucket=stage, Key=key, Body=(FIXTURES / name).read_bytes())["ETag"].strip('"')
        inputs.append({"uri": f"s3://{stage}/{key}", "etag": etag, "source": f"s3://raw/sales/orders/{name}",
                       "records": None})
    batch_id = unique("b").replace("-", "")
    manifest_key = f"sales/orders/_batches/{batch_id}/manifest.json"
    manifest = {"batch_id": batch_id, "team": "sales", "dataset": "orders", "table": "orders", "engine": "python",
                "created_at": "2024-05-02T08:00:00Z", "partition_by": ["ingestion_date"], "inputs": inputs,
                "output": f"s3://{analytics}/sales/orders/orders/", "quality": [], "quality_table": "unused",
                "quality_output": f"s3://{analytics}/sales/orders/_quality/"}
    s3.put_object(Bucket=stage, Key=manifest_key, Body=json.dumps(manifest).encode())

    job = unique("job")
    glue.create_job(Name=job, Role=role_arn(emulator),
                    Command={"Name": "pythonshell", "PythonVersion": "3.9",
                             "ScriptLocation": f"s3://{artifacts}/glue/heavy_transform/x.py"},
                    DefaultArguments={"--engine": "python", "--additional-python-modules": "pyarrow==19.0.1"},
                    MaxCapacity=0.0625)
    database = unique("sales_orders").replace("-", "_")
    glue.create_database(DatabaseInput={"Name": database})
    crawler = unique("crawler")
    glue.create_crawler(Name=crawler, Role=role_arn(emulator), DatabaseName=database,
                        Targets={"S3Targets": [{"Path": f"s3://{analytics}/sales/orders/orders/"}]},
                        SchemaChangePolicy={"UpdateBehavior": "UPDATE_IN_DATABASE", "DeleteBehavior": "LOG"})

    machine = sfn.create_state_machine(name=unique("sm-b"), definition=json.dumps(DEFINITION),
                                       roleArn=role_arn(emulator))["stateMachineArn"]
    arn = sfn.start_execution(stateMachineArn=machine, name=unique("orders-b"), input=json.dumps({
        "job": job, "crawler": crawler, "engine": "python",
        "manifest": f"s3://{stage}/{manifest_key}"}))["executionArn"]
    result = wait_for(lambda: (d := sfn.describe_execution(executionArn=arn))["status"] != "RUNNING" and d,
                      timeout=120, what="stage-B glue steps")
    assert result["status"] == "SUCCEEDED", sfn.get_execution_history(executionArn=arn)["events"][-3:]
    output = json.loads(result["output"])
    assert output["job_run"]["JobRunState"] == "SUCCEEDED"
    assert output["crawler_state"]["Crawler"]["LastCrawl"]["Status"] == "SUCCEEDED"

    job_result = json.loads(s3.get_object(Bucket=stage, Key=f"sales/orders/_batches/{batch_id}/result.json")
                            ["Body"].read())
    table = glue.get_table(DatabaseName=database, Name="orders")["Table"]
    crawled = [c["Name"] for c in table["StorageDescriptor"]["Columns"]]
    assert crawled == [c["name"] for c in job_result["columns"] if c["name"] != "ingestion_date"]
    assert [k["Name"] for k in table["PartitionKeys"]] == ["ingestion_date"]

    clients = Clients(AwsTarget(region="us-east-1", endpoint_url=emulator.endpoint_url))
    query = run_query(Lake(CFG, clients), f"SELECT ingestion_date, count(*) FROM {database}.orders GROUP BY 1",
                      cache_dir=tmp_path)
    assert query.rows == [("2024-05-02", job_result["rows"])]
    assert job_result["rows"] > 0
