"""Stage B's reliability end to end on the in-process emulator: two routers at once start one batch; a batch
that failed (its Glue job; its quality job after the Parquet was written, which is then quarantined) is
redriven from the stage-B DLQ with `sdlf redrive --stage b` and processed exactly once; one drifted file in a
batch is rejected alone while its neighbours are processed, and once fixed and redriven is in the table once;
`sdlf audit` says 0 lost, 0 duplicated and the table has as many rows as the inputs have records.
"""
from __future__ import annotations

import io
import json
import shutil
import threading
from functools import partial
from pathlib import Path

import pytest

from sdlf_cli.aws.session import AwsTarget, Clients
from sdlf_cli.config.loader import load_config
from sdlf_cli.lake import Lake
from sdlf_cli.local import faults as fault_injection
from sdlf_cli.ui import make_reporter
from sdlf_cli.workflows.audit import audit
from sdlf_cli.workflows.deploy import deploy_layers
from sdlf_cli.workflows.ingest import catalog_rows, ingest_files
from sdlf_cli.workflows.redrive import list_dead_letters, redrive
from sdlf_cli.workflows.stage_b import run_stage_b

from tests.integration.helpers import wait_for

ROOT = Path(__file__).resolve().parents[2]
ENV = "stbr"
TEAM, PIPELINE = "engineering", "main"
TWICE, FLAKY, QUARANTINED, STRICT, DRIFTED = "twice", "flaky", "quarantined", "strict", "drifted"
# The schedules would start batches on their own; once a day never fires during the test.
ENV_FILE = f"""# stage-B reliability lake
env: {ENV}
teams:
  {TEAM}:
    pipelines:
      {PIPELINE}: {{}}
    datasets:
""" + "".join(f"""      {name}:
        pipeline: {PIPELINE}
        engine: python
        schedule: rate(1 day)
        batch: {{min_items: 1, max_items: 100}}
""" for name in (TWICE, FLAKY, QUARANTINED, DRIFTED)) + f"""      {STRICT}:
        pipeline: {PIPELINE}
        engine: python
        schedule: rate(1 day)
        batch: {{min_items: 1, max_items: 100}}
        quality:
          - {{rule: completeness, column: email, threshold: 1.0, severity: fail}}
"""

_wait = partial(wait_for, timeout=90.0, interval=0.25)


def _jsonl(first: int, count: int) -> bytes:
    return b"".join(json.dumps({"id": i, "name": f"n{i}"}).encode() + b"\n" for i in range(first, first + count))


@pytest.fixture(scope="module")
def lake(emulator, tmp_path_factory):
    project = tmp_path_factory.mktemp("stage_b_reliability")
    for part in ("templates", "lambda", "glue"):
        shutil.copytree(ROOT / part, project / part, ignore=shutil.ignore_patterns("__pycache__"))
    (project / "parameters").mkdir()
    shutil.copy(ROOT / "parameters" / "base.yaml", project / "parameters" / "base.yaml")
    (project / "parameters" / f"{ENV}.yaml").write_text(ENV_FILE)
    cfg = load_config(ENV, project / "parameters")
    clients = Clients(AwsTarget(region=cfg.region, endpoint_url=emulator.endpoint_url))
    outcome = deploy_layers(Lake(cfg, clients), make_reporter("json"), ["foundations", "team", "pipeline", "dataset"],
                            root=project)
    assert outcome.ok, outcome.to_dict()
    return Lake(cfg, clients), project


def _redeploy(lake: Lake, project: Path, env_file: str) -> Lake:
    (project / "parameters" / f"{ENV}.yaml").write_text(env_file)
    cfg = load_config(ENV, project / "parameters")
    fixed = Lake(cfg, lake.clients)
    outcome = deploy_layers(fixed, make_reporter("json"), ["dataset"], root=project)
    assert outcome.ok, outcome.to_dict()
    return fixed


def _through_stage_a(lake: Lake, project: Path, dataset: str, files: dict[str, bytes]) -> None:
    paths = []
    for name, body in files.items():
        path = project / "inputs" / dataset / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        paths.append(path)
    uris = {i.uri for i in ingest_files(lake, paths, TEAM, dataset)}

    def handed_off():
        rows = {r["id"]: r for r in catalog_rows(lake, team=TEAM, dataset=dataset)}
        raw_done = all(rows.get(u, {}).get("status") == "PROCESSED" for u in uris)
        stage = [r for r in rows.values() if r.get("stage") == "stage" and r.get("status") == "PROCESSED"]
        return raw_done and len(stage) >= len(files)

    assert _wait(handed_off), f"stage A did not hand off {sorted(uris)}"


def _stage_b_queue(lake: Lake, dataset: str) -> str:
    return lake.registry.registration(TEAM, dataset)["stage_b_queue_url"]


def _table_rows(lake: Lake, dataset: str) -> tuple[list[str], int]:
    import pyarrow.parquet as pq

    s3 = lake.clients.client("s3")
    bucket = lake.registry.get("buckets/analytics")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=f"{TEAM}/{dataset}/{dataset}/").get("Contents", [])
            if o["Key"].endswith(".parquet")]
    rows = sum(pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=k)["Body"].read())).num_rows for k in keys)
    return keys, rows


def _stage_rows(lake: Lake, dataset: str, status: str) -> list[dict]:
    return [r for r in catalog_rows(lake, team=TEAM, dataset=dataset)
            if r.get("stage") == "stage" and r.get("status") == status]


def _clean_audit(lake: Lake, dataset: str, records: int) -> None:
    result = audit(lake, team=TEAM, dataset=dataset, stale_after=3600)
    summary = result.to_dict()
    assert (result.lost, result.duplicated) == (0, 0), summary
    assert summary["rows"] == summary["records"] == records, summary


def _dlq_count(lake: Lake, dataset: str) -> int:
    [queue] = list_dead_letters(lake, team=TEAM, dataset=dataset, stage="b")
    return queue.approximate_count + queue.in_flight


def test_two_routers_at_once_start_one_batch_and_rows_are_in_the_table_once(lake):
    lake, project = lake
    _through_stage_a(lake, project, TWICE, {"a.json": _jsonl(0, 3), "b.json": _jsonl(3, 2)})
    # SQS delivers at least once: one hand-off is in the queue twice.
    sqs = lake.clients.client("sqs")
    queue = _stage_b_queue(lake, TWICE)
    [message] = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=1, VisibilityTimeout=0)["Messages"]
    sqs.send_message(QueueUrl=queue, MessageBody=message["Body"])

    # The schedule fires while someone runs `sdlf run-stage-b`: two routers at the same moment.
    function = lake.config.names.function(TEAM, PIPELINE, "routing-b")
    together = threading.Barrier(2)
    answers: list[dict] = []

    def route() -> None:
        together.wait()
        invocation = lake.functions.invoke(function, {"team": TEAM, "dataset": TWICE, "force": True})
        assert invocation.error is None, invocation.payload
        answers.append(invocation.payload)

    routers = [threading.Thread(target=route) for _ in range(2)]
    for router in routers:
        router.start()
    for router in routers:
        router.join(timeout=120)
    started = [a for a in answers if a["started"]]
    refused = [a for a in answers if not a["started"]]
    assert len(started) == 1 and len(refused) == 1, answers
    assert refused[0]["busy"] is True and ("RUNNING" in refused[0]["reason"] or "router" in refused[0]["reason"])

    sfn = lake.state_machines
    assert _wait(lambda: sfn.describe_execution(started[0]["execution_arn"])["status"] != "RUNNING", timeout=300)
    assert sfn.describe_execution(started[0]["execution_arn"])["status"] == "SUCCEEDED"
    # Whatever is left in the queue is recognised as already in the table.
    again = run_stage_b(lake, TEAM, TWICE, timeout=300)
    assert not again.started and "no objects" in again.reason, again.to_dict()
    keys, rows = _table_rows(lake, TWICE)
    assert len(keys) == 1 and rows == 5
    _clean_audit(lake, TWICE, records=5)


def test_a_batch_whose_job_failed_is_redriven_from_the_stage_b_dlq_and_processed_once(lake):
    lake, project = lake
    _through_stage_a(lake, project, FLAKY, {"c.json": _jsonl(0, 4), "d.json": _jsonl(4, 3)})
    with fault_injection.injected("glue_error=1.0", seed=1):
        failed = run_stage_b(lake, TEAM, FLAKY, timeout=300)
    assert failed.started and failed.status == "FAILED", failed.to_dict()
    assert "injected fault" in (failed.error or ""), failed.error
    assert _wait(lambda: len(_stage_rows(lake, FLAKY, "FAILED")) == 2)
    assert _wait(lambda: _dlq_count(lake, FLAKY) == 2)
    assert _table_rows(lake, FLAKY) == ([], 0)

    # The cause is gone (the job runs again): the DLQ goes back to the stage-B queue, the next run takes it.
    moved = redrive(lake, team=TEAM, dataset=FLAKY, stage="b")
    assert moved.ok and moved.moved == 2, moved.to_dict()
    replay = run_stage_b(lake, TEAM, FLAKY, timeout=300)
    assert replay.started and replay.status == "SUCCEEDED" and replay.objects == 2, replay.to_dict()
    assert replay.batch_id == failed.batch_id, "the same objects make the same batch"
    assert len(_stage_rows(lake, FLAKY, "PROCESSED")) == 2

    # Nothing is left to replay, and running again adds nothing.
    assert redrive(lake, team=TEAM, dataset=FLAKY, stage="b").moved == 0
    assert not run_stage_b(lake, TEAM, FLAKY, timeout=300).started
    assert _table_rows(lake, FLAKY)[1] == 7
    _clean_audit(lake, FLAKY, records=7)


def test_a_batch_failing_after_its_parquet_was_written_is_quarantined_and_redrive_brings_it_back_once(lake):
    lake, project = lake
    _through_stage_a(lake, project, QUARANTINED, {"e.json": _jsonl(0, 2), "f.json": _jsonl(2, 4)})
    # Seeded: the heavy transform runs (its Parquet lands in the table), then the quality job run fails.
    with fault_injection.injected("glue_error=0.5", seed=15):
        failed = run_stage_b(lake, TEAM, QUARANTINED, timeout=300)
    assert failed.started and failed.status == "FAILED", failed.to_dict()
    quality_job = lake.registry.registration(TEAM, QUARANTINED)["quality_job"]
    assert quality_job in (failed.error or ""), failed.error
    assert _table_rows(lake, QUARANTINED) == ([], 0), "the failed batch's rows are out of the table"
    bucket = lake.registry.get("buckets/analytics")
    quarantine = f"{TEAM}/{QUARANTINED}/_quarantine/{failed.batch_id}/"
    listed = lake.clients.client("s3").list_objects_v2(Bucket=bucket, Prefix=quarantine).get("Contents", [])
    assert [o["Key"] for o in listed if o["Key"].endswith(".parquet")], "its Parquet is kept in quarantine"
    assert _wait(lambda: _dlq_count(lake, QUARANTINED) == 2)

    moved = redrive(lake, team=TEAM, dataset=QUARANTINED, stage="b")
    assert moved.moved == 2, moved.to_dict()
    replay = run_stage_b(lake, TEAM, QUARANTINED, timeout=300)
    assert replay.started and replay.status == "SUCCEEDED", replay.to_dict()
    keys, rows = _table_rows(lake, QUARANTINED)
    assert len(keys) == 1 and rows == 6
    _clean_audit(lake, QUARANTINED, records=6)


def test_a_schedule_event_in_the_routing_dlq_raises_its_alarm_and_redrive_gives_it_back_to_the_router(lake):
    lake, project = lake
    names = lake.config.names
    # Relative to what earlier tests left in the dataset: this test passes alone as well as after them.
    before_objects, before_rows = len(_stage_rows(lake, TWICE, "PROCESSED")), _table_rows(lake, TWICE)[1]
    _through_stage_a(lake, project, TWICE, {"g.json": _jsonl(5, 2)})
    # The schedule's event that routing-b failed on after Lambda's retries, as Lambda parks it.
    sqs = lake.clients.client("sqs")
    dlq = lake.registry.get(f"pipelines/{TEAM}/{PIPELINE}/dlq-routing-b-url")
    sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps({"team": TEAM, "dataset": TWICE}),
                     MessageAttributes={"ErrorCode": {"DataType": "Number", "StringValue": "200"},
                                        "ErrorMessage": {"DataType": "String", "StringValue": "Task timed out"}})
    cloudwatch = lake.clients.client("cloudwatch")
    alarm = names.resource(TEAM, PIPELINE, "dlq-routing-b-not-empty")
    assert _wait(lambda: cloudwatch.describe_alarms(AlarmNames=[alarm])["MetricAlarms"][0]["StateValue"] == "ALARM",
                 timeout=60), "the routing DLQ's alarm did not go off"

    moved = redrive(lake, team=TEAM, stage="routing-b")
    [queue] = moved.queues
    assert (queue.queue.kind, moved.moved, moved.failed) == ("routing-b", 1, 0), moved.to_dict()
    assert [m.destination for m in queue.messages] == [lake.registry.get(f"pipelines/{TEAM}/{PIPELINE}/routing-b-arn")]
    # The router, invoked again, starts the dataset's waiting batch.
    assert _wait(lambda: len(_stage_rows(lake, TWICE, "PROCESSED")) == before_objects + 1
                 and _table_rows(lake, TWICE)[1] == before_rows + 2,
                 timeout=300), "the redriven schedule event started no batch"
    assert not sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=0).get("Messages")
    _clean_audit(lake, TWICE, records=before_rows + 2)


def test_a_batch_failing_a_fail_rule_is_quarantined_and_after_the_rule_is_fixed_redrive_processes_it_once(lake):
    lake, project = lake
    people = b"".join(json.dumps(r).encode() + b"\n" for r in
                      ({"id": 1, "email": "a@example.com"}, {"id": 2, "email": None}, {"id": 3, "email": "c@x"}))
    _through_stage_a(lake, project, STRICT, {"people.json": people})
    failed = run_stage_b(lake, TEAM, STRICT, timeout=300)
    assert failed.started and failed.status == "FAILED", failed.to_dict()
    [row] = _wait(lambda: _stage_rows(lake, STRICT, "FAILED"))
    assert "completeness(email)" in row["reason"]
    assert _table_rows(lake, STRICT) == ([], 0), "the failed batch's rows are out of the table"
    assert _wait(lambda: _dlq_count(lake, STRICT) == 1)

    # The rule was too strict: the team lowers its threshold, deploys the dataset, then redrives.
    fixed = _redeploy(lake, project, ENV_FILE.replace("threshold: 1.0, severity: fail", "threshold: 0.5, severity: fail"))
    moved = redrive(fixed, team=TEAM, dataset=STRICT, stage="b")
    assert moved.moved == 1, moved.to_dict()
    replay = run_stage_b(fixed, TEAM, STRICT, timeout=300)
    assert replay.started and replay.status == "SUCCEEDED", replay.to_dict()
    keys, rows = _table_rows(fixed, STRICT)
    assert len(keys) == 1 and rows == 3
    assert redrive(fixed, team=TEAM, dataset=STRICT, stage="b").moved == 0
    _clean_audit(fixed, STRICT, records=3)


def _counts(first: int, count: int) -> bytes:
    return b"".join(json.dumps({"id": i, "count": i}).encode() + b"\n" for i in range(first, first + count))


def test_a_drifted_file_is_rejected_alone_and_once_fixed_and_redriven_is_in_the_table_once(lake):
    lake, project = lake
    from sdlf_cli.workflows.query import run_query

    _through_stage_a(lake, project, DRIFTED, {"base.json": _counts(0, 2)})
    assert run_stage_b(lake, TEAM, DRIFTED, timeout=300).status == "SUCCEEDED"  # the table: count is bigint

    # One batch: two good files and one whose `count` turned to text on its second line.
    drifted = b'{"id": 7, "count": 7}\n{"id": 8, "count": "eight"}\n'
    _through_stage_a(lake, project, DRIFTED, {"good-1.json": _counts(2, 3), "good-2.json": _counts(5, 2),
                                              "bad.json": drifted})
    run = run_stage_b(lake, TEAM, DRIFTED, timeout=300)
    assert run.started and run.status == "SUCCEEDED" and run.objects == 3, run.to_dict()
    stage = {r["id"].rsplit("/", 1)[1]: r for r in catalog_rows(lake, team=TEAM, dataset=DRIFTED)
             if r.get("stage") == "stage"}
    assert [stage[n]["status"] for n in ("good-1.jsonl", "good-2.jsonl")] == ["PROCESSED", "PROCESSED"]
    assert stage["good-1.jsonl"]["batch_id"] == run.batch_id
    bad = stage["bad.jsonl"]
    assert bad["status"] == "FAILED" and bad["batch_id"] == run.batch_id, bad
    assert run.rejected == [{"uri": bad["id"], "reason": bad["reason"]}], run.to_dict()
    assert bad["reason"].startswith(f"schema drift in {bad['id']} line 2 (value \"eight\"): column 'count' is string "
                                    "there but bigint in the table at "), bad["reason"]
    assert _wait(lambda: _dlq_count(lake, DRIFTED) == 1)
    database = lake.config.names.glue_database(TEAM, DRIFTED)
    ids = f"SELECT id FROM {database}.{DRIFTED} ORDER BY id"
    assert [r[0] for r in run_query(lake, ids).rows] == list(range(7))
    result = audit(lake, team=TEAM, dataset=DRIFTED, stale_after=3600)
    assert (result.lost, result.duplicated) == (0, 0), result.to_dict()
    [failed] = [o for d in result.datasets for o in d.objects if o.state == "FAILED"]
    assert failed.uri.endswith("/bad.json") and "schema drift" in failed.detail, failed

    # The producer fixes the file and uploads it again; the schedule takes its new content first, and only
    # then does someone redrive the stage-B DLQ: the old hand-off must not put the file's rows in twice.
    (project / "inputs" / DRIFTED / "bad.json").write_bytes(drifted.replace(b'"eight"', b"8"))
    ingest_files(lake, [project / "inputs" / DRIFTED / "bad.json"], TEAM, DRIFTED)
    assert _wait(lambda: (catalog_rows(lake, uri=bad["id"]) or [{}])[0].get("etag") not in (None, bad["etag"])
                 and catalog_rows(lake, uri=bad["id"])[0].get("status") == "PROCESSED")
    fixed = run_stage_b(lake, TEAM, DRIFTED, timeout=300)
    assert fixed.started and fixed.status == "SUCCEEDED" and fixed.objects == 1, fixed.to_dict()
    moved = redrive(lake, team=TEAM, dataset=DRIFTED, stage="b")
    assert moved.ok and moved.moved == 1, moved.to_dict()
    again = run_stage_b(lake, TEAM, DRIFTED, timeout=300)
    assert not again.started, again.to_dict()
    assert [r[0] for r in run_query(lake, ids).rows] == list(range(9))
    assert _dlq_count(lake, DRIFTED) == 0
    _clean_audit(lake, DRIFTED, records=9)
