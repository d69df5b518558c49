"""`sdlf redrive` / `sdlf dead-letters` on moto: every message moves, send before delete, nothing is lost."""
from __future__ import annotations

import json
import threading
from datetime import datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner
from botocore.exceptions import ClientError, EndpointConnectionError
from moto import mock_aws

from sdlf_cli.aws.session import AwsTarget, Clients
from sdlf_cli.config.loader import load_config
from sdlf_cli.errors import UsageError
from sdlf_cli.lake import Lake
from sdlf_cli.options import Invocation
from sdlf_cli.workflows.redrive import list_dead_letters, redrive

ROOT = Path(__file__).resolve().parents[2]
RAW = "acme-lake-dev-us-east-1-123456789012-raw"
STAGE = "acme-lake-dev-us-east-1-123456789012-stage"
T, P, D = "engineering", "main", "legislators"


def s3_event(key: str, *, execution: str | None = "legislators-abc", marker: bool = True, etag: str = "e1") -> dict:
    body = {
        "version": "0", "id": f"id-{key}", "detail-type": "Object Created", "source": "aws.s3",
        "account": "123456789012", "time": "2024-05-01T10:00:00Z", "region": "us-east-1",
        "resources": [f"arn:aws:s3:::{RAW}"],
        "detail": {"version": "0", "bucket": {"name": RAW},
                   "object": {"key": key, "size": 10, "etag": etag, "sequencer": "0A"}, "reason": "PutObject"},
    }
    if marker:
        body["sdlf"] = {"reason": "boom", "execution": execution, "failed_at": "2024-05-01T10:00:01.000000Z"}
    return body


def hand_off(key: str) -> dict:
    uri = f"s3://acme-lake-dev-us-east-1-123456789012-stage/{key}"
    return {"team": T, "dataset": D, "bucket": "acme-lake-dev-us-east-1-123456789012-stage", "key": key, "uri": uri,
            "etag": "e", "records": 3, "source": f"s3://{RAW}/{key}",
            "sdlf": {"reason": "job failed", "execution": "legislators-b-1", "failed_at": "x", "batch_id": "1"}}


class Queues:
    """The lake's queues on moto, and the `Lake` the workflows get."""

    def __init__(self, cfg, clients, queues):
        self.cfg, self.clients, self.q = cfg, clients, queues
        self.lake = Lake(cfg, clients)
        self.sqs = clients.client("sqs")

    def put(self, queue: str, *bodies, objects: bool = True) -> None:
        """Messages into a queue; with `objects`, the objects they replay are put in their buckets first."""
        s3 = self.clients.client("s3")
        for body in bodies:
            if objects and isinstance(body, dict):
                detail = body.get("detail") if isinstance(body.get("detail"), dict) else {}
                bucket = (detail.get("bucket") or {}).get("name") or body.get("bucket")
                key = (detail.get("object") or {}).get("key") or body.get("key")
                if bucket and key:
                    s3.put_object(Bucket=bucket, Key=key, Body=b"{}")
                source = body.get("source")
                if isinstance(source, str) and source.startswith("s3://"):  # a hand-off's raw object
                    source_bucket, _, source_key = source[5:].partition("/")
                    s3.put_object(Bucket=source_bucket, Key=source_key, Body=b"{}")
            self.sqs.send_message(QueueUrl=self.q[queue], MessageBody=body if isinstance(body, str) else json.dumps(body))

    def bodies(self, queue: str) -> list:
        out = []
        while True:
            got = self.sqs.receive_message(QueueUrl=self.q[queue], MaxNumberOfMessages=10,
                                           VisibilityTimeout=30).get("Messages", [])
            fresh = [m for m in got if m["MessageId"] not in {o[0] for o in out}]
            if not fresh:
                break
            out.extend((m["MessageId"], m["Body"]) for m in fresh)
            if len(out) > 500:
                break
        return [json.loads(b) for _, b in out]

    def count(self, queue: str) -> int:
        attrs = self.sqs.get_queue_attributes(QueueUrl=self.q[queue], AttributeNames=["ApproximateNumberOfMessages"])
        return int(attrs["Attributes"]["ApproximateNumberOfMessages"])


@pytest.fixture()
def lake(monkeypatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        cfg = load_config("dev", ROOT / "parameters")
        clients = Clients(AwsTarget(region=cfg.region))
        sqs, ssm = clients.client("sqs"), clients.client("ssm")
        n = cfg.names
        names = {"catalog": n.queue("catalog"), "catalog-dlq": n.dlq("catalog"), "a": n.queue(T, P, "a"),
                 "a-dlq": n.dlq(T, P, "a"), "b": n.queue(T, D, "b"), "b-dlq": n.dlq(T, D, "b")}
        queues = {k: sqs.create_queue(QueueName=v)["QueueUrl"] for k, v in names.items()}
        for bucket in (RAW, STAGE):
            clients.client("s3").create_bucket(Bucket=bucket)
        published = {
            "buckets/raw": RAW,
            "queues/catalog": queues["catalog"], "queues/catalog-dlq": queues["catalog-dlq"],
            f"pipelines/{T}/{P}/queue-a-url": queues["a"], f"pipelines/{T}/{P}/dlq-a-url": queues["a-dlq"],
            f"datasets/{T}/{D}": json.dumps({"team": T, "dataset": D, "pipeline": P,
                                            "stage_b_queue_url": queues["b"], "stage_b_dlq_url": queues["b-dlq"]}),
        }
        for path, value in published.items():
            ssm.put_parameter(Name=n.ssm(path), Value=value, Type="String")
        yield Queues(cfg, clients, queues)


def run(lake, **kwargs):
    clock = lambda: datetime(2024, 5, 2, 12, 0, tzinfo=timezone.utc)  # noqa: E731
    return redrive(lake.lake, clock=clock, **kwargs)


def test_dead_letters_lists_every_dlq_with_its_count(lake):
    lake.put("a-dlq", s3_event(f"{T}/{D}/one.json"), s3_event(f"{T}/{D}/two.json"))
    lake.put("b-dlq", hand_off(f"{T}/{D}/one.jsonl"))
    queues = {q.kind: q for q in list_dead_letters(lake.lake)}
    assert set(queues) == {"catalog", "a", "b"}
    assert (queues["a"].approximate_count, queues["b"].approximate_count, queues["catalog"].approximate_count) == (2, 1, 0)
    assert queues["a"].source_url == lake.q["a"] and queues["a"].url == lake.q["a-dlq"]
    assert (queues["b"].team, queues["b"].dataset, queues["b"].pipeline) == (T, D, P)
    assert [q.kind for q in list_dead_letters(lake.lake, stage="b")] == ["b"]
    assert [q.kind for q in list_dead_letters(lake.lake, pipeline=P)] == ["a", "b"]
    assert list_dead_letters(lake.lake, team="nobody", stage="a") == []


def test_moves_every_message_not_one_and_marks_them(lake):
    lake.put("a-dlq", *[s3_event(f"{T}/{D}/f{i}.json", execution=f"legislators-{i}") for i in range(25)])
    result = run(lake, stage="a")
    assert result.ok and result.moved == 25 and result.failed == 0
    assert lake.count("a-dlq") == 0
    replayed = lake.bodies("a")
    assert len(replayed) == 25
    by_key = {b["detail"]["object"]["key"]: b for b in replayed}
    # The failed execution is kept (routing-a names the replay after it), the redrive is stamped.
    assert by_key[f"{T}/{D}/f7.json"]["sdlf"]["execution"] == "legislators-7"
    assert by_key[f"{T}/{D}/f7.json"]["sdlf"]["reason"] == "boom"
    assert all(b["sdlf"]["redriven_at"] == "2024-05-02T12:00:00.000000Z" for b in replayed)


def test_sends_before_deleting_and_a_failed_send_leaves_the_message_in_the_dlq(lake):
    lake.put("a-dlq", s3_event(f"{T}/{D}/good.json"), s3_event(f"{T}/{D}/bad.json"))
    sqs = lake.clients.client("sqs")
    calls, real_send, real_delete = [], sqs.send_message, sqs.delete_message

    def send(**kwargs):
        key = json.loads(kwargs["MessageBody"])["detail"]["object"]["key"]
        calls.append(("send", key))
        if key.endswith("bad.json"):
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "throttled"}}, "SendMessage")
        return real_send(**kwargs)

    def delete(**kwargs):
        calls.append(("delete", kwargs["QueueUrl"]))
        return real_delete(**kwargs)

    sqs.send_message, sqs.delete_message = send, delete
    result = run(lake, stage="a")
    assert not result.ok and result.moved == 1 and result.failed == 1
    failure = result.queues[0].failed[0]
    assert failure.object.endswith("bad.json") and "throttled" in failure.reason and "left in the DLQ" in failure.reason
    # good: sent, then deleted; bad: sent (failed), never deleted.
    assert calls.count(("delete", lake.q["a-dlq"])) == 1
    good_send = calls.index(("send", f"{T}/{D}/good.json"))
    assert calls[good_send + 1] == ("delete", lake.q["a-dlq"])
    sqs.send_message, sqs.delete_message = real_send, real_delete
    left = lake.bodies("a-dlq")  # released at once, not after the visibility timeout
    assert [b["detail"]["object"]["key"] for b in left] == [f"{T}/{D}/bad.json"]
    assert "redriven_at" not in left[0]["sdlf"]  # the DLQ copy is untouched
    assert [b["detail"]["object"]["key"] for b in lake.bodies("a")] == [f"{T}/{D}/good.json"]


def test_a_failed_delete_after_a_good_send_is_a_failure_but_nothing_is_lost(lake):
    lake.put("b-dlq", hand_off(f"{T}/{D}/x.jsonl"))
    sqs = lake.clients.client("sqs")

    def delete(**kwargs):
        raise EndpointConnectionError(endpoint_url="https://sqs.us-east-1.amazonaws.com/")

    sqs.delete_message = delete
    result = run(lake, stage="b")
    assert not result.ok and result.moved == 0
    assert "not deleted" in result.queues[0].failed[0].reason
    del sqs.delete_message
    assert len(lake.bodies("b")) == 1  # sent ...
    assert lake.sqs.get_queue_attributes(QueueUrl=lake.q["b-dlq"], AttributeNames=["All"])["Attributes"][
        "ApproximateNumberOfMessagesNotVisible"] == "1"  # ... and still in the DLQ for a later run


def test_dry_run_moves_nothing_and_lists_what_would_move(lake):
    lake.put("a-dlq", s3_event(f"{T}/{D}/one.json"), s3_event(f"{T}/{D}/two.json"))
    lake.put("b-dlq", hand_off(f"{T}/{D}/one.jsonl"))
    result = run(lake, dry_run=True)
    assert result.ok and result.dry_run and result.moved == 3
    planned = {m.object.rsplit("/", 1)[-1]: m for q in result.queues for m in q.messages}
    assert {m.action for m in planned.values()} == {"would move"}
    assert planned["one.jsonl"].destination == lake.q["b"] and planned["two.json"].destination == lake.q["a"]
    assert lake.count("a-dlq") == 2 and lake.count("b-dlq") == 1  # visible again right away
    assert lake.count("a") == 0 and lake.count("b") == 0


def test_limit_moves_at_most_n_across_queues(lake):
    lake.put("a-dlq", *[s3_event(f"{T}/{D}/f{i}.json") for i in range(15)])
    lake.put("b-dlq", *[hand_off(f"{T}/{D}/f{i}.jsonl") for i in range(5)])
    result = run(lake, limit=12)
    assert result.moved == 12 and result.ok
    assert lake.count("a-dlq") + lake.count("b-dlq") == 8
    assert lake.count("a") + lake.count("b") == 12
    with pytest.raises(UsageError):
        run(lake, limit=0)


def _long_polls(lake, wait_for: threading.Barrier | None = None) -> list[str]:
    """Records the queue of each receive that waits (the drain's last, "is it empty?" poll); with `wait_for`,
    each waits there until the other queues' long polls have started too."""
    sqs = lake.clients.client("sqs")
    real, polled = sqs.receive_message, []

    def receive(**kwargs):
        if kwargs.get("WaitTimeSeconds"):
            polled.append(kwargs["QueueUrl"])
            if wait_for is not None:
                wait_for.wait()  # BrokenBarrierError (the run fails) if the queues were drained one by one
        return real(**kwargs)

    sqs.receive_message = receive
    return polled


def test_without_a_limit_the_queues_are_drained_at_once(lake):
    lake.put("a-dlq", *[s3_event(f"{T}/{D}/f{i}.json") for i in range(3)])
    lake.put("b-dlq", hand_off(f"{T}/{D}/f.jsonl"))
    polled = _long_polls(lake, threading.Barrier(3, timeout=30))

    result = run(lake)

    assert sorted(polled) == sorted([lake.q["catalog-dlq"], lake.q["a-dlq"], lake.q["b-dlq"]])
    assert [q.queue.kind for q in result.queues] == ["catalog", "a", "b"]  # reported in the lake's order
    assert [q.moved for q in result.queues] == [0, 3, 1] and result.ok
    assert lake.count("a-dlq") + lake.count("b-dlq") == 0 and lake.count("a") == 3 and lake.count("b") == 1


def test_a_limit_goes_to_the_queues_one_after_the_other_in_their_order(lake):
    lake.put("a-dlq", s3_event(f"{T}/{D}/one.json"))
    lake.put("b-dlq", hand_off(f"{T}/{D}/one.jsonl"))
    polled = _long_polls(lake)

    result = run(lake, limit=5)

    assert polled == [lake.q["catalog-dlq"], lake.q["a-dlq"], lake.q["b-dlq"]]
    assert result.moved == 2 and result.ok


def test_catalog_dlq_unclaimed_objects_go_to_their_dataset_pipeline_once_registered(lake):
    unregistered = s3_event(f"{T}/newdata/x.json", execution=None)
    registered = s3_event(f"{T}/{D}/late.json", execution=None)
    consumer_failure = s3_event(f"{T}/{D}/y.json", marker=False)
    out_of_layout = s3_event("loose.json", execution=None)
    lake.put("catalog-dlq", unregistered, registered, consumer_failure, out_of_layout, "not json")
    result = run(lake, stage="catalog")
    q = result.queues[0]
    assert q.moved == 2 and result.ok and len(q.skipped) == 3
    reasons = {(m.object or "").rsplit("/", 1)[-1] or m.message_id: m.reason for m in q.skipped}
    assert "still not registered" in reasons["x.json"] and "sdlf add-dataset engineering newdata" in reasons["x.json"]
    assert "not <team>/<dataset>/<file>" in reasons["loose.json"]
    assert any("not JSON" in r for r in reasons.values())
    to_a = lake.bodies("a")
    assert [b["detail"]["object"]["key"] for b in to_a] == [f"{T}/{D}/late.json"]
    assert to_a[0]["sdlf"]["execution"] is None  # it never ran: routing-a uses the plain name
    assert [b["detail"]["object"]["key"] for b in lake.bodies("catalog")] == [f"{T}/{D}/y.json"]
    assert lake.count("catalog-dlq") == 3  # the skipped wait, visible


def test_team_and_dataset_filters_leave_other_messages_where_they_are(lake):
    lake.put("catalog-dlq", s3_event(f"{T}/{D}/mine.json", marker=False), s3_event("sales/orders/theirs.json", marker=False))
    lake.put("a-dlq", s3_event(f"{T}/{D}/a.json"), s3_event(f"{T}/other/b.json"))
    result = run(lake, team=T, dataset=D)
    assert result.moved == 2 and result.skipped == 0
    assert {q.queue.kind: q.others for q in result.queues} == {"catalog": 1, "a": 1, "b": 0}
    assert lake.count("catalog-dlq") == 1 and lake.count("a-dlq") == 1


def test_cli_exit_codes_and_json(lake, monkeypatch):
    from sdlf_cli.cli import cli
    from sdlf_cli.options import defaults

    monkeypatch.chdir(ROOT)
    lake.put("a-dlq", s3_event(f"{T}/{D}/one.json"))
    runner = CliRunner()
    given = Invocation(defaults(), make_lake=lambda opts: Lake(lake.cfg, lake.clients))
    listed = runner.invoke(cli, ["dead-letters", "-o", "json"], obj=given)
    assert listed.exit_code == 0, listed.output
    assert {q["kind"]: q["approximate_count"] for q in json.loads(listed.output)["queues"]}["a"] == 1
    dry = runner.invoke(cli, ["redrive", "--dry-run"], obj=given)
    assert dry.exit_code == 0 and "would move" in dry.output and lake.count("a-dlq") == 1
    moved = runner.invoke(cli, ["redrive", "--stage", "a", "-o", "json"], obj=given)
    assert moved.exit_code == 0, moved.output
    assert json.loads(moved.output)["moved"] == 1 and lake.count("a-dlq") == 0

    lake.put("b-dlq", hand_off(f"{T}/{D}/x.jsonl"))
    sqs = lake.clients.client("sqs")

    def send(**kwargs):
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "denied"}}, "SendMessage")

    sqs.send_message = send
    failed = runner.invoke(cli, ["redrive"], obj=given)
    assert failed.exit_code == 1 and "denied" in failed.output + (failed.stderr if failed.stderr_bytes else "")


def test_replays_that_fail_again_during_the_run_are_left_for_the_next_run(lake):
    import time

    # moto's SQS runs on this clock: a millisecond cutoff instead of AWS's next whole second.
    def cutoff_ms(queues, url):
        return int(time.time() * 1000) + 1

    lake.put("a-dlq", *[s3_event(f"{T}/{D}/f{i}.json", execution=f"legislators-{i}") for i in range(12)])
    time.sleep(0.01)
    sqs = lake.clients.client("sqs")
    real_send = sqs.send_message

    def send(**kwargs):  # a pipeline that fails every replay at once, back into the DLQ
        response = real_send(**kwargs)
        body = json.loads(kwargs["MessageBody"])
        body["sdlf"] = {"reason": "boom again", "execution": "replay-of-" + body["sdlf"]["execution"]}
        real_send(QueueUrl=lake.q["a-dlq"], MessageBody=json.dumps(body))
        return response

    sqs.send_message = send
    result = run(lake, stage="a", cutoff_ms=cutoff_ms)
    assert result.ok and result.moved == 12
    assert result.queues[0].newer >= 1
    del sqs.send_message
    left = lake.bodies("a-dlq")
    assert len(left) == 12 and all(b["sdlf"]["execution"].startswith("replay-of-") for b in left)


def test_a_message_whose_object_is_gone_is_skipped_and_kept(lake):
    lake.put("a-dlq", s3_event(f"{T}/{D}/gone.json"), objects=False)
    lake.put("a-dlq", s3_event(f"{T}/{D}/here.json"))
    lake.put("b-dlq", hand_off(f"{T}/{D}/gone.jsonl"), objects=False)
    result = run(lake)
    assert result.ok and result.moved == 1 and result.skipped == 2
    reasons = sorted(m.reason for q in result.queues for m in q.skipped)
    assert reasons[0].startswith(f"s3://{RAW}/{T}/{D}/gone.json no longer exists")
    assert reasons[1].startswith(f"s3://{STAGE}/{T}/{D}/gone.jsonl no longer exists")
    assert (lake.count("a-dlq"), lake.count("b-dlq"), lake.count("a")) == (1, 1, 1)


def test_schedule_events_the_stage_b_router_failed_on_go_back_to_the_router(lake):
    names = lake.cfg.names
    lake.q["routing-b-dlq"] = lake.sqs.create_queue(QueueName=names.dlq(T, P, "routing-b"))["QueueUrl"]
    lake.put("routing-b-dlq", {"team": T, "dataset": D}, {"team": T, "dataset": "gone"}, {"hello": 1}, objects=False)
    (queue,) = list_dead_letters(lake.lake, stage="routing-b")
    assert (queue.kind, queue.team, queue.pipeline, queue.approximate_count) == ("routing-b", T, P, 3)
    assert queue.source_url == names.function(T, P, "routing-b"), "replayed by invoking the router"

    result = run(lake, stage="routing-b", dry_run=True)
    [outcome] = [m for m in result.queues[0].messages if m.action == "would move"]
    assert (outcome.object, outcome.destination) == (f"{T}/{D}", names.function(T, P, "routing-b"))
    reasons = sorted(m.reason for m in result.queues[0].skipped)
    assert "dataset engineering/gone is no longer registered" in reasons[0]
    assert "not a stage-B routing request" in reasons[1]
    assert lake.count("routing-b-dlq") == 3, "a dry run moves nothing"

    # --dataset and --pipeline select the pipeline's router DLQ, and only that dataset's events in it.
    narrowed = run(lake, dataset=D, stage="routing-b", dry_run=True).queues[0]
    assert (narrowed.moved, narrowed.others) == (1, 1)
    assert [q.kind for q in list_dead_letters(lake.lake, pipeline=P)] == ["a", "routing-b", "b"]


def test_a_stage_b_hand_off_whose_raw_object_was_deleted_is_skipped_and_kept(lake):
    lake.put("b-dlq", hand_off(f"{T}/{D}/kept.jsonl"), hand_off(f"{T}/{D}/orphan.jsonl"))
    lake.clients.client("s3").delete_object(Bucket=RAW, Key=f"{T}/{D}/orphan.jsonl")
    result = run(lake, stage="b")
    assert result.ok and (result.moved, result.skipped) == (1, 1)
    [skipped] = result.queues[0].skipped
    assert skipped.object == f"s3://{STAGE}/{T}/{D}/orphan.jsonl"
    assert skipped.reason.startswith(f"its raw object s3://{RAW}/{T}/{D}/orphan.jsonl no longer exists")
    assert lake.count("b-dlq") == 1 and [b["key"] for b in lake.bodies("b")] == [f"{T}/{D}/kept.jsonl"]
