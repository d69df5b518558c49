"""Stage A end to end on moto's in-process AWS: routing-a -> (pre, transform, post) -> error-a.

The handlers are loaded from their folders by file path (the folder names have hyphens). The
state machine is not interpreted here: the tests call transform-a and error-a with exactly the
Parameters the stage-A state machine passes, taking the execution input from Step Functions.
"""
from __future__ import annotations

import collections
import copy
import gzip
import importlib.util
import json
import re
import uuid
from datetime import datetime, timezone
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from tests.unit.lake_fakes import create_dataset_table, create_versioned_buckets, subscribe_inbox

from sdlf_datalake import parse_s3_event
from sdlf_datalake.errors import InvalidInputError
from sdlf_datalake.executions import execution_name

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "stage_a"
EVENTS = ROOT / "tests" / "events"
REGION = "eu-west-1"
ACCOUNT = "123456789012"
PREFIX = "acme-lake-dev"
RAW = f"{PREFIX}-{REGION}-{ACCOUNT}-raw"
STAGE = f"{PREFIX}-{REGION}-{ACCOUNT}-stage"
CATALOG = f"{PREFIX}-catalog"
EXECUTIONS = f"{PREFIX}-executions"
SSM_PREFIX = "/sdlf/acme/lake/dev"
TEAM, PIPELINE, DATASET = "engineering", "main", "persons"
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{PREFIX}-{TEAM}-{PIPELINE}-error-a"


def _load(folder: str):
    spec = importlib.util.spec_from_file_location(
        f"{folder.replace('-', '_')}_handler", ROOT / "lambda" / folder / "handler.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


routing = _load("routing-a")
transform_a = _load("transform-a")
error_a = _load("error-a")


class Context:
    invoked_function_arn = FUNCTION_ARN
    aws_request_id = "req-1"
    function_name = f"{PREFIX}-{TEAM}-{PIPELINE}-routing-a"
    memory_limit_in_mb = 256


class Lake:
    """The AWS resources foundations, team, pipeline and dataset stacks would create for one dataset."""

    def __init__(self):
        self.s3 = boto3.client("s3", region_name=REGION)
        self.ddb = boto3.client("dynamodb", region_name=REGION)
        self.sqs = boto3.client("sqs", region_name=REGION)
        self.sns = boto3.client("sns", region_name=REGION)
        self.ssm = boto3.client("ssm", region_name=REGION)
        self.sfn = boto3.client("stepfunctions", region_name=REGION)
        create_versioned_buckets(self.s3, REGION, RAW, STAGE)
        create_dataset_table(self.ddb, CATALOG, "updated_at")
        create_dataset_table(self.ddb, EXECUTIONS, "started_at")
        self.stage_b = self.sqs.create_queue(QueueName=f"{PREFIX}-{TEAM}-{DATASET}-b")["QueueUrl"]
        self.dlq_a = self.sqs.create_queue(QueueName=f"{PREFIX}-{TEAM}-{PIPELINE}-a-dlq")["QueueUrl"]
        self.topic = self.sns.create_topic(Name=f"{PREFIX}-{TEAM}-notifications")["TopicArn"]
        self.inbox = subscribe_inbox(self.sns, self.sqs, self.topic)
        self.register(DATASET)
        definition = {"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}
        self.state_machine = self.sfn.create_state_machine(
            name=f"{PREFIX}-{TEAM}-{PIPELINE}-sm-a",
            definition=json.dumps(definition),
            roleArn=f"arn:aws:iam::{ACCOUNT}:role/{PREFIX}-{TEAM}-states",
        )["stateMachineArn"]

    def register(self, dataset: str, **changes) -> dict:
        registration = {
            "team": TEAM,
            "dataset": dataset,
            "pipeline": PIPELINE,
            "transform": "default",
            "engine": "duckdb",
            "schedule": "rate(5 minutes)",
            "batch": {"min_items": 1, "max_items": 100},
            "partition_by": [],
            "quality": [],
            "stage_b_queue_url": self.stage_b,
            "stage_b_dlq_url": self.stage_b.replace("-b", "-b-dlq"),
            "glue_database": f"acme_lake_dev_{TEAM}_{dataset}",
            **changes,
        }
        self.ssm.put_parameter(
            Name=f"{SSM_PREFIX}/datasets/{TEAM}/{dataset}", Type="String",
            Value=json.dumps(registration), Overwrite=True,
        )
        return registration

    def upload(self, name: str, key: str | None = None, body: bytes | None = None) -> dict:
        """Put a raw object; return the EventBridge "Object Created" event S3 would send."""
        key = key or f"{TEAM}/{DATASET}/2024/05/{name}"
        body = (FIXTURES / name).read_bytes() if body is None else body
        response = self.s3.put_object(Bucket=RAW, Key=key, Body=body)
        self._sequence = getattr(self, "_sequence", 0x617F08299329D189) + 1
        event = json.loads((EVENTS / "s3_object_created.json").read_text())
        event["id"] = str(uuid.uuid4())
        event["detail"]["bucket"]["name"] = RAW
        event["detail"]["object"].update(
            {
                "key": key,
                "size": len(body),
                "etag": response["ETag"].strip('"'),
                "version-id": response["VersionId"],
                "sequencer": f"{self._sequence:018X}",
            }
        )
        return event

    def executions(self) -> list[dict]:
        return self.sfn.list_executions(stateMachineArn=self.state_machine)["executions"]

    def execution_input(self, name: str) -> dict:
        arn = f"{self.state_machine.replace(':stateMachine:', ':execution:')}:{name}"
        return json.loads(self.sfn.describe_execution(executionArn=arn)["input"])

    def row(self, table: str, item_id: str) -> dict | None:
        from sdlf_datalake.dynamo import from_item

        item = self.ddb.get_item(TableName=table, Key={"id": {"S": item_id}}).get("Item")
        return from_item(item) if item else None

    def messages(self, queue_url: str) -> list[dict]:
        found = []
        while True:
            batch = self.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not batch:
                return found
            found += [json.loads(m["Body"]) for m in batch]


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
        "SSM_PREFIX": SSM_PREFIX,
        "TEAM": TEAM,
        "PIPELINE": PIPELINE,
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    for cache in (routing._routers, transform_a._stages, error_a._handlers):
        cache.clear()
    with mock_aws():
        lake = Lake()
        monkeypatch.setenv("STATE_MACHINE_ARN", lake.state_machine)
        monkeypatch.setenv("DLQ_URL", lake.dlq_a)
        monkeypatch.setenv("TOPIC_ARN", lake.topic)
        yield lake
    for cache in (routing._routers, transform_a._stages, error_a._handlers):
        cache.clear()


def sqs_batch(*bodies) -> dict:
    return {
        "Records": [
            {
                "messageId": f"m-{index}",
                "receiptHandle": "handle",
                "body": body if isinstance(body, str) else json.dumps(body),
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{PREFIX}-{TEAM}-{PIPELINE}-a",
                "awsRegion": REGION,
            }
            for index, body in enumerate(bodies)
        ]
    }


def route(*bodies) -> list[str]:
    """Run routing-a on a batch; return the ids of the failed records."""
    result = routing.handler(sqs_batch(*bodies), Context())
    return [f["itemIdentifier"] for f in result["batchItemFailures"]]


def step(action: str, state: dict, **extra):
    """Call transform-a as the state machine's Task does (Parameters of the contract: PreUpdate and PostUpdate
    also pass $$.Execution.StartTime, kept by `routed_input` as the state's `started_at`)."""
    event = {"action": action, "object": state["object"], "execution": state["execution"], **extra}
    if action in ("pre", "post") and "started_at" in state:
        event["started_at"] = state["started_at"]
    return transform_a.handler(copy.deepcopy(event), Context())


def start_time(lake: Lake, name: str) -> str:
    """$$.Execution.StartTime of an execution, as Step Functions writes it (milliseconds, Z)."""
    arn = f"{lake.state_machine.replace(':stateMachine:', ':execution:')}:{name}"
    started = lake.sfn.describe_execution(executionArn=arn)["startDate"]
    return started.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def routed_input(lake: Lake, event: dict) -> dict:
    """The execution input routing-a started, with its start time (the context object's) as `started_at`."""
    assert route(event) == []
    detail = event["detail"]["object"]
    for name in (e["name"] for e in lake.executions()):
        state = lake.execution_input(name)
        if (state["object"]["key"], state["object"]["etag"]) == (detail["key"], detail["etag"]):
            return {**state, "started_at": start_time(lake, name)}
    raise AssertionError(f"no execution for {detail['key']}")


def counted_stage(lake: Lake):
    """transform-a's steps on clients whose DynamoDB requests are counted by operation."""
    from sdlf_datalake.registry import RegistrationReader
    from sdlf_datalake.stage_a.steps import StageA, StageAConfig

    calls: collections.Counter = collections.Counter()
    ddb = boto3.client("dynamodb", region_name=REGION)
    ddb.meta.events.register("before-call", lambda model, **_: calls.update([model.name]))
    stage = StageA(StageAConfig.from_env(), s3=lake.s3, sqs=lake.sqs, dynamodb=ddb,
                   registrations=RegistrationReader(SSM_PREFIX, client=lake.ssm))
    return stage, calls


def stage_event(output: dict, sequencer: str, deleted: bool = False) -> dict:
    """S3's EventBridge event for a stage object: its "Object Created", or "Object Deleted" (a delete marker)."""
    event = json.loads((EVENTS / ("s3_object_deleted.json" if deleted else "s3_object_created.json")).read_text())
    event["id"] = str(uuid.uuid4())
    event["detail"]["bucket"]["name"] = output["bucket"]
    event["detail"]["object"] = {"key": output["key"], "version-id": output["version_id"], "sequencer": sequencer}
    if not deleted:
        event["detail"]["object"].update(size=output["size"], etag=output["etag"])
    return event




# --- routing-a ------------------------------------------------------------------------------------
def test_routing_starts_one_execution_with_the_contract_input(lake):
    event = lake.upload("persons.csv")
    assert route(event) == []
    [execution] = lake.executions()
    detail = event["detail"]["object"]
    digest = execution_name(DATASET, RAW, detail["key"], detail["etag"])
    assert execution["name"] == digest
    assert re.fullmatch(rf"{DATASET}-[0-9a-f]{{32}}", digest)
    assert lake.execution_input(digest) == {
        "object": {
            "bucket": RAW,
            "key": detail["key"],
            "uri": f"s3://{RAW}/{detail['key']}",
            "etag": detail["etag"],
            "version_id": detail["version-id"],
            "size": detail["size"],
            "sequencer": detail["sequencer"],
            "team": TEAM,
            "dataset": DATASET,
            "pipeline": PIPELINE,
        },
        "execution": digest,
    }


def test_same_object_twice_starts_once_and_both_succeed(lake):
    event = lake.upload("persons.csv")
    assert route(event, event) == []  # redelivery inside one batch
    assert route(event) == []  # and in a later batch
    # An identical re-upload: new event id and sequencer (so a different input), same etag.
    again = lake.upload("persons.csv")
    assert again["detail"]["object"]["sequencer"] != event["detail"]["object"]["sequencer"]
    assert route(again) == []
    assert len(lake.executions()) == 1


def test_new_content_under_the_same_key_gets_its_own_execution(lake):
    route(lake.upload("persons.csv", key=f"{TEAM}/{DATASET}/p.csv"))
    route(lake.upload("x", key=f"{TEAM}/{DATASET}/p.csv", body=b"id\n9\n"))
    assert len(lake.executions()) == 2


def test_partial_batch_failure_fails_only_the_bad_records(lake):
    good = lake.upload("persons.csv")
    other = lake.upload("person.json")
    loose = copy.deepcopy(good)
    loose["detail"]["object"]["key"] = "loose.csv"
    foreign = copy.deepcopy(good)
    foreign["detail"]["object"]["key"] = "finance/persons/x.csv"
    deleted = copy.deepcopy(good)
    deleted["detail-type"] = "Object Deleted"
    folder = copy.deepcopy(good)
    folder["detail"]["object"].update(key=f"{TEAM}/{DATASET}/2024/", size=0)
    failed = route(good, "not json", {"source": "aws.s3"}, loose, foreign, deleted, other, folder)
    assert failed == ["m-1", "m-2", "m-3", "m-4", "m-5"]  # the folder marker is skipped, not failed
    assert len(lake.executions()) == 2


def test_unexpected_step_functions_error_fails_the_record(lake, monkeypatch):
    monkeypatch.setenv("STATE_MACHINE_ARN", lake.state_machine.replace("sm-a", "sm-missing"))
    assert route(lake.upload("persons.csv")) == ["m-0"]


def test_execution_names_fit_step_functions_limits():
    long = execution_name("d" * 100, "b", "k", "e")
    assert len(long) == 80 and re.fullmatch(r"[A-Za-z0-9_-]+", long)
    odd = execution_name("sales.eu", "b", "k", "e")
    assert odd.startswith("sales-eu-")
    assert execution_name("d", "b", "k", "e") == execution_name("d", "b", "k", "e")
    assert execution_name("d", "b", "k", "e") != execution_name("d", "b", "k", "f")
    assert execution_name("d", "b", "k", "e", redrive_of="d-1") not in (
        execution_name("d", "b", "k", "e"),
        execution_name("d", "b", "k", "e", redrive_of="d-2"),
    )


# --- transform-a ---------------------------------------------------------------------------------
def test_pre_transform_post_moves_the_object_through_the_catalog(lake):
    event = lake.upload("persons.csv")
    state = routed_input(lake, event)
    raw_uri = state["object"]["uri"]
    name = state["execution"]

    pre = step("pre", state)
    assert pre == {"status": "RUNNING", "transform": "default", "execution": name}
    row = lake.row(CATALOG, raw_uri)
    assert (row["status"], row["execution"], row["stage"], row["dataset_id"]) == ("RUNNING", name, "raw", f"{TEAM}/{DATASET}")
    assert row["etag"] == state["object"]["etag"] and row["version_id"] == state["object"]["version_id"]
    run = lake.row(EXECUTIONS, name)
    assert (run["status"], run["dataset_id"], run["stage"], run["objects_in"]) == ("RUNNING", f"{TEAM}/{DATASET}", "a", 1)

    outputs = step("transform", state)
    stage_key = f"{TEAM}/{DATASET}/2024/05/persons.jsonl"
    stored = lake.s3.get_object(Bucket=STAGE, Key=stage_key)
    body = stored["Body"].read()
    assert [json.loads(line) for line in body.splitlines()] == [
        {"id": "1", "name": "Ada Lovelace", "city": "London"},
        {"id": "2", "name": "Hopper, Grace", "city": "New York"},
        {"id": "3", "name": "Zoë", "city": "multi\nline"},
    ]
    assert stored["ContentType"] == "application/x-ndjson"
    assert stored["Metadata"]["sdlf-execution"] == name
    assert outputs == [
        {
            "bucket": STAGE,
            "key": stage_key,
            "uri": f"s3://{STAGE}/{stage_key}",
            "etag": stored["ETag"].strip('"'),
            "records": 3,
            "size": len(body),
            "version_id": stored["VersionId"],
        }
    ]

    post = step("post", state, outputs=outputs)
    assert post == {"status": "PROCESSED", "objects_out": 1, "records_out": 3}
    raw_row = lake.row(CATALOG, raw_uri)
    assert raw_row["status"] == "PROCESSED" and raw_row["outputs"] == [outputs[0]["uri"]]
    stage_row = lake.row(CATALOG, outputs[0]["uri"])
    assert (stage_row["status"], stage_row["stage"], stage_row["lineage"]) == ("PROCESSED", "stage", [raw_uri])
    assert (stage_row["team"], stage_row["dataset"], stage_row["records"]) == (TEAM, DATASET, 3)
    assert (stage_row["etag"], stage_row["version_id"]) == (outputs[0]["etag"], outputs[0]["version_id"])
    assert lake.messages(lake.stage_b) == [
        {
            "team": TEAM,
            "dataset": DATASET,
            "bucket": STAGE,
            "key": stage_key,
            "uri": outputs[0]["uri"],
            "etag": outputs[0]["etag"],
            "records": 3,
            "source": raw_uri,
        }
    ]
    run = lake.row(EXECUTIONS, name)
    assert (run["status"], run["objects_out"], run["records_out"]) == ("SUCCEEDED", 1, 3)
    # started_at is the execution's start (the state machine's), the duration counts from it.
    assert run["started_at"] == state["started_at"].replace("Z", "000Z")
    started, finished = (datetime.strptime(run[k], "%Y-%m-%dT%H:%M:%S.%fZ") for k in ("started_at", "finished_at"))
    assert run["duration_ms"] == int((finished - started).total_seconds() * 1000)
    days = (run["expires_at"] - datetime.now(timezone.utc).timestamp()) / 86400
    assert 29.9 < days <= 30


def test_replay_overwrites_the_same_stage_object(lake):
    state = routed_input(lake, lake.upload("persons.jsonl.gz"))
    first = step("transform", state)
    second = step("transform", state)
    assert [{k: v for k, v in o.items() if k != "version_id"} for o in first] == [
        {k: v for k, v in o.items() if k != "version_id"} for o in second
    ]
    assert first[0]["key"] == f"{TEAM}/{DATASET}/2024/05/persons.jsonl"
    listed = lake.s3.list_objects_v2(Bucket=STAGE)["Contents"]
    assert [o["Key"] for o in listed] == [first[0]["key"]]  # overwritten, not a second file


def test_bad_file_fails_with_the_reason_and_writes_nothing(lake):
    state = routed_input(lake, lake.upload("ragged.csv.gz"))
    step("pre", state)
    with pytest.raises(InvalidInputError, match=r"^CSV row 3 has 3 fields, header has 2"):
        step("transform", state)
    assert "Contents" not in lake.s3.list_objects_v2(Bucket=STAGE)


def test_unregistered_dataset_names_the_ssm_parameter(lake):
    state = routed_input(lake, lake.upload("persons.csv", key=f"{TEAM}/unknown/p.csv"))
    with pytest.raises(InvalidInputError) as caught:
        step("pre", state)
    message = str(caught.value)
    assert f"dataset {TEAM}/unknown is not registered" in message
    assert f"{SSM_PREFIX}/datasets/{TEAM}/unknown" in message
    assert lake.row(CATALOG, state["object"]["uri"]) is None  # nothing half-done


def test_unknown_transform_fails_at_pre(lake):
    lake.register(DATASET, transform="does-not-exist")
    state = routed_input(lake, lake.upload("persons.csv"))
    with pytest.raises(InvalidInputError, match="unknown transform 'does-not-exist'"):
        step("pre", state)


def test_registration_is_cached_for_a_short_time(lake):
    from sdlf_datalake.registry import RegistrationReader

    now = [100.0]
    reader = RegistrationReader(SSM_PREFIX, client=lake.ssm, ttl_seconds=30, monotonic=lambda: now[0])
    assert reader.get(TEAM, DATASET).transform == "default"
    lake.register(DATASET, transform="other")
    now[0] += 29
    assert reader.get(TEAM, DATASET).transform == "default"
    now[0] += 2
    assert reader.get(TEAM, DATASET).transform == "other"


def test_a_version_deleted_before_stage_a_reads_it_gives_no_output_and_nothing_to_replay(lake):
    state = routed_input(lake, lake.upload("persons.csv"))
    step("pre", state)
    lake.s3.delete_object(Bucket=RAW, Key=state["object"]["key"], VersionId=state["object"]["version_id"])
    assert step("transform", state) == []
    assert step("post", state, outputs=[])["objects_out"] == 0
    assert lake.messages(lake.stage_b) == [] and lake.messages(lake.dlq_a) == []


def _routed_then_deleted_in_the_catalog(lake, name: str) -> dict:
    """The execution input of an uploaded object whose catalog row then says DELETED (a delete marker's event)."""
    from sdlf_datalake.catalog import CatalogRepository

    event = lake.upload(name)
    state = routed_input(lake, event)
    catalog = CatalogRepository(CATALOG, client=lake.ddb)
    catalog.record_event(parse_s3_event(event), "raw")
    deleted = {**event, "id": "deleted", "detail-type": "Object Deleted",
               "detail": {**event["detail"], "object": {**event["detail"]["object"], "sequencer": "FFFFFFFFFFFFFFFFFF"},
                          "reason": "DeleteObject", "deletion-type": "Delete Marker Created"}}
    catalog.record_event(parse_s3_event(deleted), "raw")
    return state


def test_an_object_the_catalog_says_deleted_is_skipped_by_every_step(lake):
    state = _routed_then_deleted_in_the_catalog(lake, "persons.csv")
    assert step("pre", state)["skipped"] == "deleted before stage A read it"
    assert step("transform", state) == []  # the version still exists (a delete marker hides it): nothing written
    assert step("post", state, outputs=[]) == {"status": "DELETED", "objects_out": 0, "records_out": 0,
                                                "skipped": "deleted before stage A read it"}
    from sdlf_datalake.catalog import CatalogRepository

    assert CatalogRepository(CATALOG, client=lake.ddb).get(state["object"]["uri"])["status"] == "DELETED"


def test_the_event_version_is_read_even_after_an_overwrite(lake):
    state = routed_input(lake, lake.upload("persons.csv", key=f"{TEAM}/{DATASET}/p.csv"))
    lake.upload("x", key=f"{TEAM}/{DATASET}/p.csv", body=b"id\n9\n")
    [output] = step("transform", state)
    assert output["records"] == 3


def test_object_of_another_team_or_bad_input_is_rejected(lake):
    state = routed_input(lake, lake.upload("persons.csv"))
    foreign = copy.deepcopy(state)
    foreign["object"].update(team="finance", key="finance/persons/x.csv")
    with pytest.raises(InvalidInputError, match="belongs to team 'finance'"):
        step("pre", foreign)
    with pytest.raises(InvalidInputError, match=r"\$.object.bucket: expected a non-empty string"):
        transform_a.handler({"action": "pre", "object": {"key": "k"}, "execution": "x"}, Context())
    with pytest.raises(InvalidInputError, match=r"\$.action"):
        transform_a.handler({"action": "explode", **state}, Context())
    with pytest.raises(InvalidInputError, match=r"\$.outputs"):
        step("post", state, outputs={"not": "a list"})


def test_missing_environment_is_named(lake, monkeypatch):
    monkeypatch.delenv("STAGE_BUCKET")
    with pytest.raises(RuntimeError, match="STAGE_BUCKET"):
        transform_a.handler({"action": "pre"}, Context())


def test_stage_b_hand_off_needs_a_queue(lake):
    lake.register(DATASET, stage_b_queue_url=None)
    state = routed_input(lake, lake.upload("persons.csv"))
    outputs = step("transform", state)
    with pytest.raises(InvalidInputError, match="no stage_b_queue_url"):
        step("post", state, outputs=outputs)
    assert lake.row(CATALOG, state["object"]["uri"]) is None or lake.row(CATALOG, state["object"]["uri"])["status"] != "PROCESSED"


# --- error-a -------------------------------------------------------------------------------------
def lambda_error(error_type: str, message: str) -> dict:
    """$.error as the Catch of a Lambda task puts it."""
    cause = {"errorMessage": message, "errorType": error_type, "requestId": "r", "stackTrace": ["  File ..."]}
    return {"Error": error_type, "Cause": json.dumps(cause)}


def test_error_handler_fails_the_row_and_leaves_a_replayable_message(lake):
    event = lake.upload("ragged.csv")
    state = routed_input(lake, event)
    step("pre", state)
    error = lambda_error("InvalidInputError", "CSV row 3 has 3 fields, header has 2 (line 3)")
    result = error_a.handler({"object": state["object"], "error": error, "execution": state["execution"]}, Context())
    reason = "CSV row 3 has 3 fields, header has 2 (line 3)"
    assert (result["status"], result["reason"]) == ("FAILED", reason)

    row = lake.row(CATALOG, state["object"]["uri"])
    assert (row["status"], row["reason"], row["error_type"]) == ("FAILED", reason, "InvalidInputError")

    [message] = lake.messages(lake.dlq_a)
    # The same shape as the event the rule delivers: same keys everywhere, same object identity.
    marker = message.pop("sdlf")
    assert set(message) == set(event)
    assert set(message["detail"]) >= {"version", "bucket", "object", "reason"}
    assert message["detail"]["object"] == event["detail"]["object"]
    assert (message["source"], message["detail-type"], message["account"], message["region"]) == (
        "aws.s3", "Object Created", ACCOUNT, REGION
    )
    parsed = parse_s3_event(message)
    assert (parsed.bucket, parsed.key, parsed.etag) == (RAW, event["detail"]["object"]["key"], event["detail"]["object"]["etag"])
    assert marker["reason"] == reason and marker["execution"] == state["execution"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", marker["failed_at"])

    [notification] = lake.messages(lake.inbox)
    assert notification["Subject"] == f"sdlf FAILED {TEAM}/{DATASET} ragged.csv"
    body = json.loads(notification["Message"])
    assert (body["object"], body["reason"], body["execution"]) == (state["object"]["uri"], reason, state["execution"])

    run = lake.row(EXECUTIONS, state["execution"])
    assert (run["status"], run["error"], run["dataset_id"]) == ("FAILED", reason, f"{TEAM}/{DATASET}")


def test_dlq_message_replays_through_routing_once(lake):
    state = routed_input(lake, lake.upload("persons.csv"))
    error_a.handler({"object": state["object"], "error": lambda_error("X", "boom"), "execution": state["execution"]}, Context())
    [message] = lake.messages(lake.dlq_a)
    assert route(message, message) == []
    names = sorted(e["name"] for e in lake.executions())
    assert len(names) == 2 and state["execution"] in names  # the original and exactly one replay
    replay = next(n for n in names if n != state["execution"])
    assert lake.execution_input(replay)["object"] == state["object"]


def test_a_failure_handler_retried_after_its_replay_succeeded_keeps_the_object_processed(lake):
    state = routed_input(lake, lake.upload("persons.csv"))
    failure = {"object": state["object"], "error": lambda_error("X", "boom"), "execution": state["execution"]}
    error_a.handler(failure, Context())
    [message] = lake.messages(lake.dlq_a)
    assert route(message) == []
    replay = lake.execution_input(next(e["name"] for e in lake.executions() if e["name"] != state["execution"]))
    step("pre", replay)
    step("post", replay, outputs=step("transform", replay))
    uri = state["object"]["uri"]
    assert lake.row(CATALOG, uri)["status"] == "PROCESSED"

    # The state machine retries the first failure's handler (its invoke timed out after it ran): it lands
    # only now, after the replay it caused succeeded.
    late = error_a.handler(failure, Context())
    assert late["catalog"].startswith("kept")
    row = lake.row(CATALOG, uri)
    assert (row["status"], row["execution"]) == ("PROCESSED", replay["execution"])
    # Its second DLQ message replays to a no-op: the replay's execution exists.
    [again] = lake.messages(lake.dlq_a)
    assert route(again) == [] and len(lake.executions()) == 2
    assert lake.row(CATALOG, uri)["status"] == "PROCESSED"


def test_a_new_failure_of_the_same_content_is_still_marked(lake):
    state = routed_input(lake, lake.upload("persons.csv"))
    step("pre", state)
    step("post", state, outputs=step("transform", state))
    # The same execution failing after its post (e.g. a retried step) is not someone else's success.
    error_a.handler({"object": state["object"], "error": lambda_error("X", "late"), "execution": state["execution"]},
                    Context())
    assert lake.row(CATALOG, state["object"]["uri"])["status"] == "FAILED"


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        ({"Error": "States.Timeout", "Cause": ""}, "States.Timeout"),
        ({"Error": "States.TaskFailed", "Cause": "plain text cause"}, "States.TaskFailed: plain text cause"),
        ({"Error": "Lambda.Unknown", "Cause": '{"no": "message"}'}, 'Lambda.Unknown: {"no": "message"}'),
        (None, "unknown error (the state machine passed no error details)"),
        ("just a string", "just a string"),
        (["odd"], '["odd"]'),
    ],
)
def test_reason_is_extracted_from_any_error_shape(lake, error, reason):
    state = routed_input(lake, lake.upload("persons.csv"))
    result = error_a.handler({"object": state["object"], "error": error, "execution": state["execution"]}, Context())
    assert result["reason"] == reason
    assert lake.row(CATALOG, state["object"]["uri"])["reason"] == reason


@pytest.mark.parametrize(
    "shape",
    ["json-string", "uri-only", "uri-string", "no-team"],
)
def test_object_identity_survives_odd_payloads(lake, shape):
    state = routed_input(lake, lake.upload("persons.csv"))
    obj = state["object"]
    odd = {
        "json-string": json.dumps(obj),
        "uri-only": {"uri": obj["uri"]},
        "uri-string": obj["uri"],
        "no-team": {"bucket": obj["bucket"], "key": obj["key"], "size": "not a number"},
    }[shape]
    error_a.handler({"object": odd, "error": lambda_error("E", "bad"), "execution": state["execution"]}, Context())
    assert lake.row(CATALOG, obj["uri"])["status"] == "FAILED"
    [message] = lake.messages(lake.dlq_a)
    parsed = parse_s3_event(message)
    assert (parsed.bucket, parsed.key) == (obj["bucket"], obj["key"])
    assert lake.row(EXECUTIONS, state["execution"])["dataset_id"] == f"{TEAM}/{DATASET}"


def test_unidentifiable_object_still_keeps_the_whole_input(lake):
    event = {"object": None, "error": lambda_error("E", "bad"), "execution": "persons-abc", "extra": [1]}
    result = error_a.handler(event, Context())
    assert result["catalog"].startswith("skipped")
    [message] = lake.messages(lake.dlq_a)
    assert message["sdlf"]["input"] == event
    assert message["sdlf"]["reason"] == "bad"
    assert len(lake.messages(lake.inbox)) == 1
    assert lake.row(EXECUTIONS, "persons-abc")["status"] == "FAILED"


def test_a_failing_step_does_not_stop_the_others_and_is_reported(lake, monkeypatch):
    monkeypatch.setenv("TOPIC_ARN", lake.topic + "-missing")
    state = routed_input(lake, lake.upload("persons.csv"))
    with pytest.raises(Exception, match="incomplete: notify"):
        error_a.handler({"object": state["object"], "error": lambda_error("E", "bad"), "execution": state["execution"]}, Context())
    assert lake.row(CATALOG, state["object"]["uri"])["status"] == "FAILED"
    assert len(lake.messages(lake.dlq_a)) == 1
    assert lake.row(EXECUTIONS, state["execution"])["status"] == "FAILED"


def test_s3_events_for_stage_outputs_keep_the_rows_processed_even_after_a_replay(lake, monkeypatch):
    # The catalog consumer sees S3's "Object Created" for every stage write, before or after post.
    catalog = _load("catalog")
    catalog._repositories.clear()
    monkeypatch.setenv("BUCKET_STAGES", json.dumps({RAW: "raw", STAGE: "stage"}))
    state = routed_input(lake, lake.upload("persons.csv"))
    step("pre", state)

    def s3_event_for(output: dict, sequencer: str) -> dict:
        event = json.loads((EVENTS / "s3_object_created.json").read_text())
        event["id"] = str(uuid.uuid4())
        event["detail"]["bucket"]["name"] = output["bucket"]
        event["detail"]["object"] = {
            "key": output["key"], "size": output["size"], "etag": output["etag"],
            "version-id": output["version_id"], "sequencer": sequencer,
        }
        return event

    first = step("transform", state)
    step("post", state, outputs=first)
    catalog.handler(sqs_batch(s3_event_for(first[0], "0A")), Context())  # event after post
    replay = step("transform", state)  # same bytes, new version
    catalog.handler(sqs_batch(s3_event_for(replay[0], "0B")), Context())  # event before post
    step("post", state, outputs=replay)
    late = s3_event_for(replay[0], "0B")
    catalog.handler(sqs_batch(late), Context())  # a redelivery after post
    row = lake.row(CATALOG, first[0]["uri"])
    assert (row["status"], row["version_id"], row["lineage"]) == ("PROCESSED", replay[0]["version_id"], [state["object"]["uri"]])
    assert lake.row(CATALOG, state["object"]["uri"])["status"] == "PROCESSED"


def test_two_raw_objects_whose_outputs_share_a_name_never_overwrite_each_other(lake):
    first = routed_input(lake, lake.upload("persons.csv", key=f"{TEAM}/{DATASET}/people.csv",
                                           body=b"id,name\n1,Ada\n"))
    for action in ("pre", "transform"):
        outputs = step(action, first)
    step("post", first, outputs=outputs)
    stage_key = f"{TEAM}/{DATASET}/people.jsonl"
    # people.json would be written to the same stage object; a/../people.csv is refused for its '..' first.
    for key, refusal in ((f"{TEAM}/{DATASET}/people.json", f"already the output of s3://{RAW}/{TEAM}/{DATASET}/people.csv"),
                         (f"{TEAM}/{DATASET}/a/../people.csv", "has a '..' segment")):
        assert route(lake.upload("x", key=key, body=b'{"id": 2, "name": "Grace"}\n'
                                 if key.endswith(".json") else b"id,name\n2,Grace\n")) == []
        [second] = [state for state in map(lake.execution_input, (e["name"] for e in lake.executions()))
                    if state["object"]["key"] == key]
        step("pre", second)
        with pytest.raises(Exception, match=refusal):
            step("transform", second)
    body = lake.s3.get_object(Bucket=STAGE, Key=stage_key)["Body"].read()
    assert [json.loads(line) for line in body.splitlines()] == [{"id": "1", "name": "Ada"}]


def test_a_raw_key_at_s3s_limit_gets_a_stage_key_within_it_and_metadata_within_2_kb(lake):
    prefix = f"{TEAM}/{DATASET}/"
    stem = "é" + "ü" * ((1024 - len(prefix.encode()) - 2 - len(".json")) // 2)
    key = prefix + stem + "x" * (1024 - len(prefix.encode()) - len(stem.encode()) - len(".json")) + ".json"
    assert len(key.encode()) == 1024
    state = routed_input(lake, lake.upload("x", key=key, body=b'{"id": 1}\n'))
    step("pre", state)
    [output] = step("transform", state)
    assert len(output["key"].encode()) <= 1024 and output["key"].endswith(".jsonl")
    assert output["key"].startswith(prefix + stem[:100]) and "~" in output["key"]
    head = lake.s3.head_object(Bucket=STAGE, Key=output["key"])
    assert sum(len(k) + len(v) for k, v in head["Metadata"].items()) <= 2048


# --- lineage --------------------------------------------------------------------------------------

def test_an_output_name_freed_by_a_deleted_stage_object_is_taken_over_with_its_lineage(lake):
    from sdlf_datalake.catalog import CatalogRepository

    catalog = CatalogRepository(CATALOG, client=lake.ddb)
    first = routed_input(lake, lake.upload("x", key=f"{TEAM}/{DATASET}/people.csv", body=b"id,name\n1,Ada\n"))
    step("pre", first)
    [output] = step("transform", first)
    step("post", first, outputs=[output])
    # The producer takes people.csv back and the stage object goes too: its row is DELETED.
    lake.s3.delete_object(Bucket=RAW, Key=first["object"]["key"])
    lake.s3.delete_object(Bucket=STAGE, Key=output["key"])
    catalog.record_event(parse_s3_event(stage_event(output, "0A", deleted=True)), "stage")
    assert lake.row(CATALOG, output["uri"])["status"] == "DELETED"

    second = routed_input(lake, lake.upload("x", key=f"{TEAM}/{DATASET}/people.json", body=b'{"id": 2}\n'))
    step("pre", second)
    [taken] = step("transform", second)
    assert taken["uri"] == output["uri"]
    # Its post runs before S3's event for the new stage object reaches the catalog: the row still says DELETED,
    # and keeps saying it, but its lineage names the object it now comes from, and only that one.
    assert step("post", second, outputs=[taken])["status"] == "PROCESSED"
    row = lake.row(CATALOG, output["uri"])
    assert (row["status"], row["lineage"]) == ("DELETED", [second["object"]["uri"]])
    catalog.record_event(parse_s3_event(stage_event(taken, "0B")), "stage")
    assert lake.row(CATALOG, output["uri"])["status"] == "RECEIVED"
    # A replay of the new owner is not refused as a collision with the former one.
    [again] = step("transform", second)
    step("post", second, outputs=[again])
    row = lake.row(CATALOG, output["uri"])
    assert (row["status"], row["lineage"]) == ("PROCESSED", [second["object"]["uri"]])



# --- requests per object -------------------------------------------------------------------------
def test_an_object_costs_one_catalog_read_and_one_write_per_row(lake):
    stage, calls = counted_stage(lake)
    state = routed_input(lake, lake.upload("persons.csv"))
    event = {"object": state["object"], "execution": state["execution"]}
    stage.pre({**event, "action": "pre", "started_at": state["started_at"]})
    assert calls == {"UpdateItem": 2}  # raw row RUNNING, execution RUNNING
    calls.clear()
    outputs = stage.transform({**event, "action": "transform"})
    assert calls == {"BatchGetItem": 1}  # the raw row and the output's, together
    calls.clear()
    stage.post({**event, "action": "post", "outputs": outputs, "started_at": state["started_at"]})
    assert calls == {"UpdateItem": 3}  # output PROCESSED with its lineage, raw PROCESSED, execution SUCCEEDED
    stage_row = lake.row(CATALOG, outputs[0]["uri"])
    assert (stage_row["status"], stage_row["lineage"]) == ("PROCESSED", [state["object"]["uri"]])
    assert lake.row(EXECUTIONS, state["execution"])["status"] == "SUCCEEDED"

    # A post of an execution started by an earlier definition (no start time) reads the execution's row.
    calls.clear()
    stage.post({**event, "action": "post", "outputs": outputs})
    assert calls == {"UpdateItem": 3, "GetItem": 1}
    assert lake.row(CATALOG, outputs[0]["uri"])["lineage"] == [state["object"]["uri"]]  # a replay adds nothing


def test_a_version_gone_before_stage_a_reads_it_costs_no_catalog_read(lake):
    stage, calls = counted_stage(lake)
    state = routed_input(lake, lake.upload("persons.csv"))
    lake.s3.delete_object(Bucket=RAW, Key=state["object"]["key"], VersionId=state["object"]["version_id"])
    assert stage.transform({"action": "transform", "object": state["object"], "execution": state["execution"]}) == []
    assert calls == {}


def test_an_object_the_catalog_says_deleted_is_skipped_even_when_its_content_is_bad(lake):
    state = _routed_then_deleted_in_the_catalog(lake, "ragged.csv.gz")
    assert step("transform", state) == []  # not "CSV row 3 has 3 fields": the producer took it back
    assert "Contents" not in lake.s3.list_objects_v2(Bucket=STAGE)
    # A live object with that content still fails.
    assert route(lake.upload("ragged.csv.gz", key=f"{TEAM}/{DATASET}/other.csv.gz")) == []
    [other] = [s for s in map(lake.execution_input, (e["name"] for e in lake.executions()))
               if s["object"]["key"].endswith("other.csv.gz")]
    with pytest.raises(InvalidInputError, match="CSV row 3 has 3 fields"):
        step("transform", other)


def test_error_handler_uses_the_execution_start_time_for_the_duration(lake):
    from sdlf_datalake.stage_a.failures import ErrorHandlerA, ErrorHandlerAConfig

    calls: collections.Counter = collections.Counter()
    ddb = boto3.client("dynamodb", region_name=REGION)
    ddb.meta.events.register("before-call", lambda model, **_: calls.update([model.name]))
    handler = ErrorHandlerA(ErrorHandlerAConfig.from_env(), sqs=lake.sqs, sns=lake.sns, dynamodb=ddb)
    state = routed_input(lake, lake.upload("persons.csv"))
    handler.handle({"object": state["object"], "error": lambda_error("X", "boom"), "execution": state["execution"],
                    "started_at": state["started_at"]})
    assert calls == {"UpdateItem": 2}  # raw row FAILED, execution FAILED: no read
    run = lake.row(EXECUTIONS, state["execution"])
    assert (run["status"], run["started_at"]) == ("FAILED", state["started_at"].replace("Z", "000Z"))
    started, finished = (datetime.strptime(run[k], "%Y-%m-%dT%H:%M:%S.%fZ") for k in ("started_at", "finished_at"))
    assert run["duration_ms"] == int((finished - started).total_seconds() * 1000)
