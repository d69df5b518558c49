"""Stage B's orchestration on moto's in-process AWS: routing-b (batching, release, delete after
start, dedupe), transform-b (pre/post) and error-b.

The handlers are loaded from their folders by file path (the folder names have hyphens). The Glue
jobs are not run here: the tests write the result.json/quality.json they would write, and call
transform-b and error-b with exactly the Parameters sm-b passes.
"""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from tests.unit.lake_fakes import create_dataset_table, create_versioned_buckets, subscribe_inbox

from sdlf_datalake.errors import InvalidInputError, TransientError
from sdlf_datalake.manifest import batch_id, table_name
from sdlf_datalake.stage_b.routing import execution_name_b

# moto runs no execution here, whatever an emulator started earlier in this process set (its
# `execute_state_machine`): a started batch stays RUNNING until the test ends it.
NO_EXECUTIONS = {"stepfunctions": {"execute_state_machine": False}}

ROOT = Path(__file__).resolve().parents[2]
REGION = "eu-west-1"
ACCOUNT = "123456789012"
PREFIX = "acme-lake-dev"
STAGE = f"{PREFIX}-{REGION}-{ACCOUNT}-stage"
ANALYTICS = f"{PREFIX}-{REGION}-{ACCOUNT}-analytics"
CATALOG = f"{PREFIX}-catalog"
EXECUTIONS = f"{PREFIX}-executions"
QUALITY = f"{PREFIX}-quality"
SSM_PREFIX = "/sdlf/acme/lake/dev"
TEAM, PIPELINE, DATASET = "engineering", "main", "legislators"


def _load(folder: str):
    spec = importlib.util.spec_from_file_location(
        f"{folder.replace('-', '_')}_handler", ROOT / "lambda" / folder / "handler.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


routing_b = _load("routing-b")
transform_b = _load("transform-b")
error_b = _load("error-b")


class Lake:
    """What foundations, team, pipeline and dataset stacks would create for one dataset."""

    def __init__(self):
        self.s3 = boto3.client("s3", region_name=REGION)
        self.ddb = boto3.client("dynamodb", region_name=REGION)
        self.sqs = boto3.client("sqs", region_name=REGION)
        self.sns = boto3.client("sns", region_name=REGION)
        self.ssm = boto3.client("ssm", region_name=REGION)
        self.sfn = boto3.client("stepfunctions", region_name=REGION)
        create_versioned_buckets(self.s3, REGION, STAGE, ANALYTICS)
        create_dataset_table(self.ddb, CATALOG, "updated_at")
        create_dataset_table(self.ddb, EXECUTIONS, "started_at")
        self.dlq_b = self.sqs.create_queue(QueueName=f"{PREFIX}-{TEAM}-{DATASET}-b-dlq")["QueueUrl"]
        self.queue_b = self.sqs.create_queue(QueueName=f"{PREFIX}-{TEAM}-{DATASET}-b")["QueueUrl"]
        self.topic = self.sns.create_topic(Name=f"{PREFIX}-{TEAM}-notifications")["TopicArn"]
        self.inbox = subscribe_inbox(self.sns, self.sqs, self.topic)
        definition = {"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}
        self.state_machine = self.sfn.create_state_machine(
            name=f"{PREFIX}-{TEAM}-{PIPELINE}-sm-b",
            definition=json.dumps(definition),
            roleArn=f"arn:aws:iam::{ACCOUNT}:role/{PREFIX}-{TEAM}-states",
        )["stateMachineArn"]
        self.register()

    def register(self, **changes) -> dict:
        registration = {
            "team": TEAM,
            "dataset": DATASET,
            "pipeline": PIPELINE,
            "transform": "default",
            "engine": "python",
            "schedule": "rate(5 minutes)",
            "batch": {"min_items": 1, "max_items": 100},
            "partition_by": ["ingestion_date"],
            "quality": [{"rule": "completeness", "column": "id", "threshold": 1.0, "severity": "fail"}],
            "stage_b_queue_url": self.queue_b,
            "stage_b_dlq_url": self.dlq_b,
            "glue_database": f"acme_lake_dev_{TEAM}_{DATASET}",
            "job": f"{PREFIX}-{TEAM}-{DATASET}-job",
            "quality_job": f"{PREFIX}-{TEAM}-{DATASET}-dq",
            "crawler": f"{PREFIX}-{TEAM}-{DATASET}-crawler",
            "table": table_name(DATASET),
            **changes,
        }
        self.ssm.put_parameter(
            Name=f"{SSM_PREFIX}/datasets/{TEAM}/{DATASET}", Type="String", Value=json.dumps(registration), Overwrite=True
        )
        # Warm containers cache registrations; tests change them.
        for cache in (routing_b._routers, error_b._handlers):
            cache.clear()
        return registration

    def stage_object(self, name: str, records: int = 2, body: bytes | None = None) -> dict:
        """Put a stage object as stage A would and send its hand-off message; return the body."""
        key = f"{TEAM}/{DATASET}/2024/{name}.jsonl"
        body = body if body is not None else b"".join(b'{"id": %d}\n' % i for i in range(records))
        response = self.s3.put_object(Bucket=STAGE, Key=key, Body=body)
        message = {
            "team": TEAM,
            "dataset": DATASET,
            "bucket": STAGE,
            "key": key,
            "uri": f"s3://{STAGE}/{key}",
            "etag": response["ETag"].strip('"'),
            "records": records,
            "source": f"s3://raw/{TEAM}/{DATASET}/2024/{name}.json",
        }
        self.sqs.send_message(QueueUrl=self.queue_b, MessageBody=json.dumps(message))
        return message

    def count(self, queue_url: str) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])

    def visible(self, queue_url: str) -> int:
        return int(
            self.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"])[
                "Attributes"
            ]["ApproximateNumberOfMessages"]
        )

    def messages(self, queue_url: str) -> list[dict]:
        found = []
        while True:
            batch = self.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not batch:
                return found
            found += [json.loads(m["Body"]) for m in batch]

    def executions(self) -> list[dict]:
        return self.sfn.list_executions(stateMachineArn=self.state_machine)["executions"]

    def execution_input(self, arn: str) -> dict:
        return json.loads(self.sfn.describe_execution(executionArn=arn)["input"])

    def json_object(self, uri: str) -> dict:
        bucket, key = uri[5:].split("/", 1)
        return json.loads(self.s3.get_object(Bucket=bucket, Key=key)["Body"].read())

    def put_json(self, uri: str, value: dict) -> None:
        bucket, key = uri[5:].split("/", 1)
        self.s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(value).encode())

    def row(self, table: str, item_id: str) -> dict | None:
        from sdlf_datalake.dynamo import from_item

        item = self.ddb.get_item(TableName=table, Key={"id": {"S": item_id}}).get("Item")
        return from_item(item) if item else None

    def route(self, **event) -> dict:
        return routing_b.handler({"team": TEAM, "dataset": DATASET, **event}, None)

    def end_batches(self) -> None:
        """The running batches end (moto runs no execution here): the next router may start one."""
        for execution in self.sfn.list_executions(stateMachineArn=self.state_machine, statusFilter="RUNNING")["executions"]:
            self.sfn.stop_execution(executionArn=execution["executionArn"])


@pytest.fixture
def lake(monkeypatch):
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "CATALOG_TABLE": CATALOG,
        "EXECUTIONS_TABLE": EXECUTIONS,
        "STAGE_BUCKET": STAGE,
        "ANALYTICS_BUCKET": ANALYTICS,
        "QUALITY_TABLE": QUALITY,
        "SSM_PREFIX": SSM_PREFIX,
        "TEAM": TEAM,
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws(config=NO_EXECUTIONS):
        lake = Lake()
        monkeypatch.setenv("STATE_MACHINE_ARN", lake.state_machine)
        monkeypatch.setenv("TOPIC_ARN", lake.topic)
        for cache in (routing_b._routers, transform_b._stages, error_b._handlers):
            cache.clear()
        yield lake
        for cache in (routing_b._routers, transform_b._stages, error_b._handlers):
            cache.clear()


# --- routing-b ------------------------------------------------------------------------------------
def test_routing_starts_one_execution_with_manifest_then_deletes_messages(lake):
    sent = [lake.stage_object(f"file{i}") for i in range(3)]
    result = lake.route()

    assert result["started"] is True and result["objects"] == 3
    expected_id = batch_id(sent)
    assert result["batch_id"] == expected_id
    assert result["execution"] == f"{DATASET}-b-{expected_id}"
    assert lake.count(lake.queue_b) == 0, "messages are deleted once the execution started"

    executions = lake.executions()
    assert [e["name"] for e in executions] == [result["execution"]]
    execution_input = lake.execution_input(result["execution_arn"])
    assert execution_input == {
        "team": TEAM,
        "dataset": DATASET,
        "batch_id": expected_id,
        "manifest": f"s3://{STAGE}/{TEAM}/{DATASET}/_batches/{expected_id}/manifest.json",
        "job": f"{PREFIX}-{TEAM}-{DATASET}-job",
        "quality_job": f"{PREFIX}-{TEAM}-{DATASET}-dq",
        "crawler": f"{PREFIX}-{TEAM}-{DATASET}-crawler",
        "engine": "python",
        "execution": result["execution"],
    }
    manifest = lake.json_object(execution_input["manifest"])
    assert manifest["batch_id"] == expected_id
    assert (manifest["team"], manifest["dataset"], manifest["table"], manifest["engine"]) == (TEAM, DATASET, DATASET, "python")
    assert manifest["partition_by"] == ["ingestion_date"]
    assert manifest["output"] == f"s3://{ANALYTICS}/{TEAM}/{DATASET}/{DATASET}/"
    assert manifest["quality_output"] == f"s3://{ANALYTICS}/{TEAM}/{DATASET}/_quality/"
    assert manifest["quality_table"] == QUALITY
    assert manifest["quality"][0]["rule"] == "completeness"
    assert manifest["created_at"].endswith("Z")
    assert sorted(i["uri"] for i in manifest["inputs"]) == sorted(m["uri"] for m in sent)
    assert {i["uri"]: (i["etag"], i["source"], i["records"]) for i in manifest["inputs"]} == {
        m["uri"]: (m["etag"], m["source"], m["records"]) for m in sent
    }


def test_routing_below_min_items_releases_the_batch_untouched(lake):
    lake.register(batch={"min_items": 3, "max_items": 10})
    lake.stage_object("a")
    lake.stage_object("b")
    result = lake.route()

    assert result["started"] is False
    assert "fewer than batch.min_items=3" in result["reason"]
    assert lake.executions() == []
    assert lake.visible(lake.queue_b) == 2, "released messages are visible again at once"


def test_force_starts_a_batch_below_min_items(lake):
    lake.register(batch={"min_items": 5, "max_items": 10})
    lake.stage_object("a")
    result = lake.route(force=True)
    assert result["started"] is True and result["objects"] == 1
    assert lake.count(lake.queue_b) == 0


def test_routing_takes_at_most_max_items_in_loops_of_ten(lake):
    lake.register(batch={"min_items": 1, "max_items": 12})
    for i in range(15):
        lake.stage_object(f"f{i:02d}", records=1)
    first = lake.route()
    assert first["started"] is True and first["objects"] == 12
    assert lake.count(lake.queue_b) == 3
    lake.end_batches()
    second = lake.route()
    assert second["objects"] == 3 and second["batch_id"] != first["batch_id"]
    assert lake.count(lake.queue_b) == 0
    assert len(lake.executions()) == 2


def test_empty_queue_starts_nothing_even_when_forced(lake):
    result = lake.route(force=True)
    assert result == {**result, "started": False, "objects": 0}
    assert "no objects" in result["reason"]
    assert lake.executions() == []


def test_duplicate_messages_form_one_input_and_are_all_deleted(lake):
    message = lake.stage_object("dup")
    lake.sqs.send_message(QueueUrl=lake.queue_b, MessageBody=json.dumps(message))
    result = lake.route()
    assert result["objects"] == 1 and result["received"] == 2
    assert lake.count(lake.queue_b) == 0


def test_same_batch_again_is_a_no_op_start_and_keeps_the_manifest_time(lake):
    message = lake.stage_object("again")
    first = lake.route()
    manifest = lake.json_object(lake.execution_input(first["execution_arn"])["manifest"])
    # The same stage object handed off again (a redelivered stage-A post): same batch, same name.
    lake.sqs.send_message(QueueUrl=lake.queue_b, MessageBody=json.dumps(message))
    # While the batch runs, no router starts another one of the dataset: the hand-off waits.
    busy = lake.route()
    assert busy["started"] is False and busy["running_execution"] == first["execution_arn"]
    assert "is RUNNING" in busy["reason"] and lake.count(lake.queue_b) == 1
    lake.end_batches()
    second = lake.route()
    # Step Functions answers a repeated name either with the running execution (same input) or
    # ExecutionAlreadyExists (closed): both are "already started".
    assert second["started"] is True
    assert second["execution_arn"] == first["execution_arn"]
    assert len(lake.executions()) == 1
    assert lake.count(lake.queue_b) == 0, "a batch found already started is deleted too"
    again = lake.json_object(lake.execution_input(first["execution_arn"])["manifest"])
    assert again["created_at"] == manifest["created_at"]


def test_messages_are_kept_when_the_start_fails(lake, monkeypatch):
    lake.stage_object("keep")
    router = routing_b._router()

    def refuse(**kwargs):
        raise router.sfn.exceptions.StateMachineDoesNotExist(
            {"Error": {"Code": "StateMachineDoesNotExist", "Message": "gone"}}, "StartExecution"
        )

    monkeypatch.setattr(router.sfn, "start_execution", refuse)
    with pytest.raises(Exception, match="StateMachineDoesNotExist"):
        lake.route()
    assert lake.count(lake.queue_b) == 1, "nothing is deleted before the execution has started"


def test_throttled_start_is_transient_and_keeps_messages(lake, monkeypatch):
    from botocore.exceptions import ClientError

    lake.stage_object("slow")
    router = routing_b._router()

    def throttled(**kwargs):
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "StartExecution")

    monkeypatch.setattr(router.sfn, "start_execution", throttled)
    with pytest.raises(TransientError):
        lake.route()
    assert lake.count(lake.queue_b) == 1


def test_malformed_and_foreign_messages_are_left_for_the_redrive_policy(lake):
    lake.stage_object("good")
    lake.sqs.send_message(QueueUrl=lake.queue_b, MessageBody="not json")
    lake.sqs.send_message(
        QueueUrl=lake.queue_b,
        MessageBody=json.dumps({"team": "other", "dataset": DATASET, "uri": f"s3://{STAGE}/other/x/y.jsonl"}),
    )
    result = lake.route()
    assert result["objects"] == 1 and result["rejected"] == 2
    # The two rejected messages are still in the queue (invisible until their timeout ends).
    assert lake.count(lake.queue_b) == 2


def test_redriven_messages_get_a_replay_execution_with_the_same_batch(lake):
    message = lake.stage_object("redrive")
    first = lake.route()
    lake.sqs.send_message(
        QueueUrl=lake.queue_b, MessageBody=json.dumps({**message, "sdlf": {"execution": first["execution"], "reason": "x"}})
    )
    lake.end_batches()
    replay = lake.route()
    assert replay["batch_id"] == first["batch_id"], "same objects, same batch (its files are overwritten)"
    assert replay["execution"] != first["execution"] and replay["already_started"] is False
    assert replay["execution"] == execution_name_b(DATASET, first["batch_id"], [first["execution"]])
    assert len(lake.executions()) == 2


def test_registration_without_stage_b_is_a_clear_error(lake):
    lake.register(job=None)
    with pytest.raises(InvalidInputError, match="lacks job"):
        lake.route()


def test_bad_request_names_the_field(lake):
    with pytest.raises(InvalidInputError, match="'force' must be true or false"):
        lake.route(force="yes")


def test_execution_names_fit_step_functions_limits():
    name = execution_name_b("d" * 100, "a" * 24, ["x"])
    assert len(name) <= 80 and name.endswith("-r" + name.rsplit("-r", 1)[1])
    assert execution_name_b("my.data set", "b" * 24) == "my-data-set-b-" + "b" * 24


# --- transform-b --------------------------------------------------------------------------------
def _started(lake, count: int = 2) -> tuple[list[dict], dict]:
    sent = [lake.stage_object(f"obj{i}", records=2) for i in range(count)]
    result = lake.route()
    return sent, lake.execution_input(result["execution_arn"])


def _job_ran(lake, execution_input: dict, quality_status: str = "PASS") -> list[str]:
    """Write what the Glue jobs write: a Parquet file per partition, result.json, quality.json."""
    batch = execution_input["batch_id"]
    key = f"{TEAM}/{DATASET}/{DATASET}/ingestion_date=2024-05-01/part-{batch}.parquet"
    lake.s3.put_object(Bucket=ANALYTICS, Key=key, Body=b"PAR1...PAR1")
    uri = f"s3://{ANALYTICS}/{key}"
    folder = execution_input["manifest"].rsplit("/", 1)[0]
    lake.put_json(
        f"{folder}/result.json",
        {
            "batch_id": batch,
            "outputs": [{"uri": uri, "rows": 4, "partition": {"ingestion_date": "2024-05-01"}}],
            "rows": 4,
            "columns": [{"name": "id", "type": "bigint"}, {"name": "ingestion_date", "type": "string"}],
        },
    )
    lake.put_json(f"{folder}/quality.json", {"batch_id": batch, "status": quality_status, "rules": []})
    return [uri]


def _step(action: str, execution_input: dict) -> dict:
    keys = ("team", "dataset", "batch_id", "manifest", "execution")
    return {"action": action, **{k: execution_input[k] for k in keys}}


def test_pre_marks_execution_and_stage_rows_running(lake):
    sent, execution_input = _started(lake)
    result = transform_b.handler(_step("pre", execution_input), None)
    assert result == {"status": "RUNNING", "objects_in": 2}
    execution = lake.row(EXECUTIONS, execution_input["execution"])
    assert (execution["status"], execution["stage"], execution["dataset_id"]) == ("RUNNING", "b", f"{TEAM}/{DATASET}")
    assert execution["objects_in"] == 2 and execution["batch_id"] == execution_input["batch_id"]
    for message in sent:
        row = lake.row(CATALOG, message["uri"])
        assert (row["status"], row["stage"], row["batch_id"]) == ("RUNNING", "stage", execution_input["batch_id"])
        assert row["stage_b_execution"] == execution_input["execution"]


def test_post_catalogs_analytics_with_lineage_and_succeeds(lake):
    sent, execution_input = _started(lake)
    transform_b.handler(_step("pre", execution_input), None)
    outputs = _job_ran(lake, execution_input, quality_status="WARN")
    result = transform_b.handler(_step("post", execution_input), None)

    assert result["status"] == "SUCCEEDED" and result["rows"] == 4 and result["objects_out"] == 1
    assert result["quality"] == "WARN"
    analytics = lake.row(CATALOG, outputs[0])
    assert (analytics["status"], analytics["stage"]) == ("PROCESSED", "analytics")
    assert sorted(analytics["lineage"]) == sorted(m["uri"] for m in sent)
    assert analytics["rows"] == 4 and analytics["partition"] == {"ingestion_date": "2024-05-01"}
    assert analytics["etag"] and analytics["version_id"], "the version is kept so S3's late event does not reset it"
    assert (analytics["team"], analytics["dataset"]) == (TEAM, DATASET)
    for message in sent:
        row = lake.row(CATALOG, message["uri"])
        assert row["status"] == "PROCESSED" and row["analytics"] == outputs
    execution = lake.row(EXECUTIONS, execution_input["execution"])
    assert execution["status"] == "SUCCEEDED"
    assert (execution["objects_in"], execution["objects_out"], execution["records_out"]) == (2, 1, 4)
    assert execution["quality"] == "WARN" and execution["finished_at"] >= execution["started_at"]
    notes = [json.loads(b["Message"]) for b in lake.messages(lake.inbox)]
    assert [n["event"] for n in notes] == ["batch-succeeded"]
    assert notes[0]["rows"] == 4 and notes[0]["outputs"] == outputs


def test_post_is_idempotent(lake):
    _, execution_input = _started(lake, count=1)
    transform_b.handler(_step("pre", execution_input), None)
    outputs = _job_ran(lake, execution_input)
    transform_b.handler(_step("post", execution_input), None)
    transform_b.handler(_step("post", execution_input), None)
    assert lake.row(CATALOG, outputs[0])["lineage"] == [lake.json_object(execution_input["manifest"])["inputs"][0]["uri"]]


def test_a_duplicate_hand_off_arriving_while_its_batch_runs_waits_or_is_deleted(lake):
    sent, execution_input = _started(lake, count=1)
    transform_b.handler(_step("pre", execution_input), None)
    assert lake.row(CATALOG, sent[0]["uri"])["batch_etag"] == sent[0]["etag"]
    lake.sqs.send_message(QueueUrl=lake.queue_b, MessageBody=json.dumps(sent[0]))
    # The batch holds the dataset's lease: the duplicate waits in the queue.
    assert lake.route(force=True)["started"] is False and lake.count(lake.queue_b) == 1
    # A router that does not see the batch running (it was stopped before its rows were marked again)
    # still recognises the duplicate by its catalog row, RUNNING in a batch with the same etag.
    lake.end_batches()
    result = lake.route(force=True)
    assert result["started"] is False and result["already_in_analytics"] == 1 and lake.count(lake.queue_b) == 0


def test_a_late_duplicate_of_a_hand_off_already_in_analytics_is_deleted_not_batched_again(lake):
    sent, execution_input = _started(lake, count=2)
    transform_b.handler(_step("pre", execution_input), None)
    _job_ran(lake, execution_input)
    transform_b.handler(_step("post", execution_input), None)
    assert lake.row(CATALOG, sent[0]["uri"])["analytics_etag"] == sent[0]["etag"]
    # SQS delivers the first hand-off again after its batch is done, next to a new object's.
    lake.sqs.send_message(QueueUrl=lake.queue_b, MessageBody=json.dumps(sent[0]))
    fresh = lake.stage_object("fresh")
    lake.end_batches()
    result = lake.route()
    assert result["started"] is True and result["already_in_analytics"] == 1 and result["objects"] == 1
    manifest = lake.json_object(lake.execution_input(result["execution_arn"])["manifest"])
    assert [i["uri"] for i in manifest["inputs"]] == [fresh["uri"]]
    assert lake.count(lake.queue_b) == 0

    # Alone, it starts nothing and is deleted all the same; new content of that object is batched.
    lake.sqs.send_message(QueueUrl=lake.queue_b, MessageBody=json.dumps(sent[1]))
    lake.end_batches()
    assert lake.route(force=True)["started"] is False and lake.count(lake.queue_b) == 0
    lake.sqs.send_message(QueueUrl=lake.queue_b, MessageBody=json.dumps({**sent[1], "etag": "new-content"}))
    assert lake.route()["objects"] == 1


def test_a_hand_off_of_content_the_stage_object_no_longer_holds_is_not_batched_again(lake):
    """The raw file was fixed and uploaded again while its first hand-off waited in the DLQ: stage A wrote new
    content (the row's etag) and handed it off. Redriven, the old hand-off must not read the new content again."""
    from sdlf_datalake.catalog import CatalogRepository

    catalog = CatalogRepository(CATALOG)
    old = lake.stage_object("fixed")
    new = lake.stage_object("fixed", records=3)
    assert new["etag"] != old["etag"]
    catalog.set_status(new["uri"], "PROCESSED", stage="stage", etag=new["etag"])
    # Both waiting at once (the old one also redriven before the next batch): one input, the current content's.
    lake.sqs.send_message(QueueUrl=lake.queue_b, MessageBody=json.dumps({**old, "sdlf": {"execution": "x-b-1"}}))
    result = lake.route()
    assert result["started"] and result["objects"] == 1 and result["already_in_analytics"] == 2
    manifest = lake.json_object(lake.execution_input(result["execution_arn"])["manifest"])
    assert [i["etag"] for i in manifest["inputs"]] == [new["etag"]] and lake.count(lake.queue_b) == 0
    # The current content is in the table: the old hand-off redriven later is deleted, nothing started.
    catalog.set_status(new["uri"], "PROCESSED", stage="stage", extra={"analytics_etag": new["etag"], "batch_id": "b"})
    lake.end_batches()
    lake.sqs.send_message(QueueUrl=lake.queue_b, MessageBody=json.dumps({**old, "sdlf": {"execution": "x-b-1"}}))
    result = lake.route(force=True)
    assert result["started"] is False and result["already_in_analytics"] == 1 and lake.count(lake.queue_b) == 0
    # Content the table does not hold yet, with no hand-off of its own in sight, is batched as before.
    catalog.set_status(new["uri"], "PROCESSED", stage="stage", extra={"analytics_etag": "older"})
    lake.sqs.send_message(QueueUrl=lake.queue_b, MessageBody=json.dumps(old))
    assert lake.route()["objects"] == 1


def test_post_without_job_result_fails_with_its_uri(lake):
    _, execution_input = _started(lake, count=1)
    with pytest.raises(InvalidInputError, match="result.json does not exist"):
        transform_b.handler(_step("post", execution_input), None)


def test_manifest_of_another_batch_is_rejected(lake):
    _, execution_input = _started(lake, count=1)
    with pytest.raises(InvalidInputError, match="batch_id"):
        transform_b.handler({**_step("pre", execution_input), "batch_id": "f" * 24}, None)


def test_unknown_action_is_invalid_input(lake):
    with pytest.raises(InvalidInputError, match="'pre' or 'post'"):
        transform_b.handler({"action": "transform"}, None)


def test_post_fails_and_parks_exactly_the_inputs_the_job_rejected_and_processes_the_others(lake):
    sent, execution_input = _started(lake, count=3)
    transform_b.handler(_step("pre", execution_input), None)
    outputs = _job_ran(lake, execution_input)
    drifted = sorted(m["uri"] for m in sent)[1]
    reason = (f"schema drift in {drifted} line 2 (value \"four\"): column 'count' is string there but bigint in the "
              "table at s3://analytics/t/; expected bigint values, or another column name")
    folder = execution_input["manifest"].rsplit("/", 1)[0]
    result_json = {**lake.json_object(f"{folder}/result.json"), "rejected": [{"uri": drifted, "reason": reason}]}
    lake.put_json(f"{folder}/result.json", result_json)

    result = transform_b.handler(_step("post", execution_input), None)
    assert result["status"] == "SUCCEEDED" and result["objects_in"] == 3
    assert result["rejected"] == [{"uri": drifted, "reason": reason}]
    row = lake.row(CATALOG, drifted)
    assert (row["status"], row["reason"], row["error_type"]) == ("FAILED", reason, "RejectedInput")
    assert row["stage_b_execution"] == execution_input["execution"] and "analytics" not in row
    good = [m for m in sent if m["uri"] != drifted]
    for message in good:
        assert lake.row(CATALOG, message["uri"])["status"] == "PROCESSED"
    assert sorted(lake.row(CATALOG, outputs[0])["lineage"]) == sorted(m["uri"] for m in good)
    # Exactly stage A's hand-off, marked: redriving the stage-B DLQ replays this object alone.
    [parked] = lake.messages(lake.dlq_b)
    marker = parked.pop("sdlf")
    assert parked == next(m for m in sent if m["uri"] == drifted)
    assert (marker["reason"], marker["execution"], marker["batch_id"]) == (
        reason, execution_input["execution"], execution_input["batch_id"])
    execution = lake.row(EXECUTIONS, execution_input["execution"])
    assert (execution["status"], execution["objects_rejected"]) == ("SUCCEEDED", 1)
    [note] = [json.loads(b["Message"]) for b in lake.messages(lake.inbox)]
    assert note["event"] == "batch-succeeded" and note["rejected"] == [{"uri": drifted, "reason": reason}]

    # A retried post-update parks nothing twice.
    transform_b.handler(_step("post", execution_input), None)
    assert lake.count(lake.dlq_b) == 1 and lake.row(CATALOG, drifted)["status"] == "FAILED"


def test_post_refuses_a_rejection_of_an_object_not_in_the_batch(lake):
    _, execution_input = _started(lake, count=1)
    transform_b.handler(_step("pre", execution_input), None)
    _job_ran(lake, execution_input)
    folder = execution_input["manifest"].rsplit("/", 1)[0]
    result_json = {**lake.json_object(f"{folder}/result.json"),
                   "rejected": [{"uri": f"s3://{STAGE}/{TEAM}/{DATASET}/other.jsonl", "reason": "x"}]}
    lake.put_json(f"{folder}/result.json", result_json)
    with pytest.raises(InvalidInputError, match=r"rejected\[0\] must name one of the batch's inputs"):
        transform_b.handler(_step("post", execution_input), None)
    assert lake.count(lake.dlq_b) == 0


# --- error-b ------------------------------------------------------------------------------------
def _lambda_error(message: str) -> dict:
    return {"Error": "States.TaskFailed", "Cause": json.dumps({"errorMessage": message, "errorType": "Exception"})}


def test_error_b_fails_rows_parks_replayable_messages_and_notifies(lake):
    sent, execution_input = _started(lake)
    transform_b.handler(_step("pre", execution_input), None)
    outputs = _job_ran(lake, execution_input, quality_status="FAIL")
    event = {**execution_input, "error": _lambda_error("quality rule(s) failed: completeness(id) 0.5 < 1.0")}
    result = error_b.handler(event, None)

    reason = "quality rule(s) failed: completeness(id) 0.5 < 1.0"
    assert result["reason"] == reason and result["dlq_messages"] == 2
    for message in sent:
        row = lake.row(CATALOG, message["uri"])
        assert (row["status"], row["reason"], row["batch_id"]) == ("FAILED", reason, execution_input["batch_id"])
    assert lake.row(CATALOG, outputs[0])["status"] == "FAILED"

    parked = lake.messages(lake.dlq_b)
    assert len(parked) == 2
    for body in parked:
        marker = body.pop("sdlf")
        assert marker["reason"] == reason and marker["execution"] == execution_input["execution"]
        assert marker["batch_id"] == execution_input["batch_id"] and marker["failed_at"]
    # Exactly stage A's hand-off body, so a redrive to the stage-B queue replays the objects.
    assert sorted(parked, key=lambda b: b["uri"]) == sorted(sent, key=lambda b: b["uri"])

    execution = lake.row(EXECUTIONS, execution_input["execution"])
    assert (execution["status"], execution["error"]) == ("FAILED", reason)
    notes = [json.loads(b["Message"]) for b in lake.messages(lake.inbox)]
    assert [n["event"] for n in notes] == ["batch-failed"]
    assert notes[0]["reason"] == reason and len(notes[0]["objects"]) == 2


def _table_keys(lake) -> list[str]:
    listed = lake.s3.list_objects_v2(Bucket=ANALYTICS, Prefix=f"{TEAM}/{DATASET}/")
    return sorted(o["Key"] for o in listed.get("Contents", []))


def test_a_failed_batch_is_quarantined_out_of_the_table_and_its_replay_brings_it_back(lake):
    sent, execution_input = _started(lake)
    transform_b.handler(_step("pre", execution_input), None)
    [output] = _job_ran(lake, execution_input, quality_status="FAIL")
    batch = execution_input["batch_id"]
    reason = "quality rule(s) failed: uniqueness(id)"
    result = error_b.handler({**execution_input, "error": _lambda_error(reason)}, None)

    quarantined = f"{TEAM}/{DATASET}/_quarantine/{batch}/ingestion_date=2024-05-01/part-{batch}.parquet"
    assert result["quarantined"] == [f"s3://{ANALYTICS}/{quarantined}"]
    assert _table_keys(lake) == [quarantined], "nothing of the batch is left in the table's location"
    row = lake.row(CATALOG, output)
    assert row["status"] == "FAILED" and f"quarantined at s3://{ANALYTICS}/{quarantined}" in row["reason"]
    # Retried, the handler finds the file gone and changes nothing.
    assert error_b.handler({**execution_input, "error": _lambda_error(reason)}, None)["quarantined"] == result["quarantined"]
    assert _table_keys(lake) == [quarantined]

    # Fixed and redriven: the same batch runs again and its file is back in the table.
    for body in lake.messages(lake.dlq_b):
        lake.sqs.send_message(QueueUrl=lake.queue_b, MessageBody=json.dumps(body))
    lake.end_batches()
    replay = lake.route()
    assert replay["batch_id"] == batch
    replayed = lake.execution_input(replay["execution_arn"])
    transform_b.handler(_step("pre", replayed), None)
    _job_ran(lake, replayed)
    transform_b.handler(_step("post", replayed), None)
    assert output.split("/", 3)[3] in _table_keys(lake) and lake.row(CATALOG, output)["status"] == "PROCESSED"
    assert all(lake.row(CATALOG, m["uri"])["status"] == "PROCESSED" for m in sent)


def test_a_failure_handler_retried_after_its_replay_succeeded_changes_nothing(lake):
    sent, execution_input = _started(lake)
    transform_b.handler(_step("pre", execution_input), None)
    [output] = _job_ran(lake, execution_input, quality_status="FAIL")
    failure = {**execution_input, "error": _lambda_error("quality rule(s) failed: uniqueness(id)")}
    error_b.handler(failure, None)
    for body in lake.messages(lake.dlq_b):
        lake.sqs.send_message(QueueUrl=lake.queue_b, MessageBody=json.dumps(body))
    lake.end_batches()
    replayed = lake.execution_input(lake.route()["execution_arn"])
    transform_b.handler(_step("pre", replayed), None)
    _job_ran(lake, replayed)
    transform_b.handler(_step("post", replayed), None)
    table = _table_keys(lake)
    assert output.split("/", 3)[3] in table

    # The state machine retries the first failure's handler (its invoke timed out after it ran): it lands
    # only now, after the replay it caused succeeded. The replay's rows and files are not its to touch.
    late = error_b.handler(failure, None)
    assert sorted(late["done_elsewhere"]) == sorted(m["uri"] for m in sent)
    assert "quarantined" not in late and _table_keys(lake) == table
    assert all(lake.row(CATALOG, m["uri"])["status"] == "PROCESSED" for m in sent)
    assert lake.row(CATALOG, output)["status"] == "PROCESSED"
    # Its DLQ messages replay to a no-op: their content is in the analytics table.
    for body in lake.messages(lake.dlq_b):
        lake.sqs.send_message(QueueUrl=lake.queue_b, MessageBody=json.dumps(body))
    lake.end_batches()
    again = lake.route()
    assert again["started"] is False and again["already_in_analytics"] == len(sent)


def test_a_batch_that_failed_before_its_result_has_its_written_files_found_and_quarantined(lake):
    _, execution_input = _started(lake, count=1)
    batch = execution_input["batch_id"]
    written = f"{TEAM}/{DATASET}/{DATASET}/country=fr/part-{batch}.parquet"
    other = f"{TEAM}/{DATASET}/{DATASET}/country=fr/part-another.parquet"
    for key in (written, other):
        lake.s3.put_object(Bucket=ANALYTICS, Key=key, Body=b"PAR1")
    result = error_b.handler({**execution_input, "error": {"Error": "States.TaskFailed", "Cause": "killed"}}, None)
    assert result["quarantined"] == [f"s3://{ANALYTICS}/{TEAM}/{DATASET}/_quarantine/{batch}/country=fr/part-{batch}.parquet"]
    assert other in _table_keys(lake) and written not in _table_keys(lake)


def test_redriving_the_dlq_replays_the_batch(lake):
    _, execution_input = _started(lake, count=1)
    error_b.handler({**execution_input, "error": {"Error": "Glue.ConcurrentRunsExceededException", "Cause": "busy"}}, None)
    for body in lake.messages(lake.dlq_b):
        lake.sqs.send_message(QueueUrl=lake.queue_b, MessageBody=json.dumps(body))
    lake.end_batches()
    replay = lake.route()
    assert replay["started"] is True and replay["already_started"] is False
    assert replay["batch_id"] == execution_input["batch_id"]


def test_error_b_with_unreadable_manifest_still_parks_the_input(lake):
    event = {
        "team": TEAM,
        "dataset": DATASET,
        "batch_id": "0" * 24,
        "manifest": f"s3://{STAGE}/{TEAM}/{DATASET}/_batches/{'0' * 24}/manifest.json",
        "execution": f"{DATASET}-b-{'0' * 24}",
        "error": {"Error": "States.Timeout", "Cause": "too slow"},
    }
    with pytest.raises(Exception, match="manifest: InvalidInputError"):
        error_b.handler(event, None)
    parked = lake.messages(lake.dlq_b)
    assert len(parked) == 1 and parked[0]["sdlf"]["input"]["batch_id"] == "0" * 24
    assert parked[0]["sdlf"]["reason"] == "States.Timeout: too slow"
    assert lake.row(EXECUTIONS, event["execution"])["status"] == "FAILED"


def test_execution_already_exists_counts_as_started_and_deletes(lake, monkeypatch):
    from botocore.exceptions import ClientError

    lake.stage_object("closed")
    router = routing_b._router()

    def exists(**kwargs):
        raise ClientError({"Error": {"Code": "ExecutionAlreadyExists", "Message": "closed"}}, "StartExecution")

    monkeypatch.setattr(router.sfn, "start_execution", exists)
    result = lake.route()
    assert result["started"] is True and result["already_started"] is True
    assert result["execution_arn"] == lake.state_machine.replace(":stateMachine:", ":execution:") + ":" + result["execution"]
    assert lake.count(lake.queue_b) == 0
