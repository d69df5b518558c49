"""`sdlf audit` on moto: it reads listings, one index query per dataset and a look at the DLQs, and finds what
the pipelines left in each state; the DLQs keep their messages."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from moto import mock_aws

from sdlf_cli.aws.session import AwsTarget, Clients
from sdlf_cli.config.loader import load_config
from sdlf_cli.errors import UsageError
from sdlf_cli.lake import Lake
from sdlf_cli.workflows.audit import OUTSIDE, audit
from tests.unit.lake_fakes import create_dataset_table

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT_REGION = "us-east-1-123456789012"
RAW, STAGE, ANALYTICS = (f"acme-lake-dev-{ACCOUNT_REGION}-{k}" for k in ("raw", "stage", "analytics"))
T, P, D = "engineering", "main", "legislators"
LATER = datetime.now(timezone.utc) + timedelta(hours=2)  # everything written now is two hours old by then


def s3_event(key: str, reason: str | None = None) -> dict:
    body = {"detail-type": "Object Created", "source": "aws.s3",
            "detail": {"bucket": {"name": RAW}, "object": {"key": key, "etag": "e"}}}
    if reason:
        body["sdlf"] = {"reason": reason, "execution": "x"}
    return body


class FakeLake:
    """The lake's buckets, catalog, queues and registry on moto, written as the pipelines write them."""

    def __init__(self, cfg, clients):
        self.cfg, self.clients = cfg, clients
        self.s3, self.ddb, self.sqs = clients.client("s3"), clients.client("dynamodb"), clients.client("sqs")
        n = cfg.names
        for bucket in (RAW, STAGE, ANALYTICS):
            self.s3.create_bucket(Bucket=bucket)
            self.s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        self.catalog = n.table("catalog")
        create_dataset_table(self.ddb, self.catalog)
        names = {"catalog": n.queue("catalog"), "catalog-dlq": n.dlq("catalog"), "a": n.queue(T, P, "a"),
                 "a-dlq": n.dlq(T, P, "a"), "b": n.queue(T, D, "b"), "b-dlq": n.dlq(T, D, "b")}
        self.q = {k: self.sqs.create_queue(QueueName=v)["QueueUrl"] for k, v in names.items()}
        published = {
            "buckets/raw": RAW, "buckets/stage": STAGE, "buckets/analytics": ANALYTICS,
            "tables/catalog": self.catalog,
            "queues/catalog": self.q["catalog"], "queues/catalog-dlq": self.q["catalog-dlq"],
            f"pipelines/{T}/{P}/queue-a-url": self.q["a"], f"pipelines/{T}/{P}/dlq-a-url": self.q["a-dlq"],
            f"datasets/{T}/{D}": json.dumps({"team": T, "dataset": D, "pipeline": P,
                                            "stage_b_queue_url": self.q["b"], "stage_b_dlq_url": self.q["b-dlq"]}),
        }
        ssm = clients.client("ssm")
        for path, value in published.items():
            ssm.put_parameter(Name=n.ssm(path), Value=value, Type="String")
        self.lake = Lake(cfg, clients)

    def row(self, uri: str, **fields) -> None:
        key = uri[5:].partition("/")[2]
        parts = key.split("/")
        item = {"id": uri, "updated_at": datetime.now(timezone.utc).isoformat(), **fields}
        if len(parts) >= 3:
            item["dataset_id"] = f"{parts[0]}/{parts[1]}"
        self.ddb.put_item(TableName=self.catalog, Item={k: _attr(v) for k, v in item.items()})

    def put(self, bucket: str, key: str, body: bytes = b"{}") -> str:
        return self.s3.put_object(Bucket=bucket, Key=key, Body=body)["ETag"].strip('"')

    def processed(self, name: str, records: int, batch: str) -> None:
        raw_uri = f"s3://{RAW}/{T}/{D}/{name}"
        stage_uri = f"s3://{STAGE}/{T}/{D}/{name}.jsonl"
        part = f"s3://{ANALYTICS}/{T}/{D}/{D}/ingestion_date=2026-11-25/part-{batch}.parquet"
        etag = self.put(RAW, f"{T}/{D}/{name}")
        self.put(STAGE, f"{T}/{D}/{name}.jsonl")
        self.put(ANALYTICS, part.split("/", 3)[3])
        self.row(raw_uri, status="PROCESSED", stage="raw", etag=etag, outputs=[stage_uri])
        self.row(stage_uri, status="PROCESSED", stage="stage", records=records, lineage=[raw_uri], batch_id=batch,
                 analytics=[part])
        self.row(part, status="PROCESSED", stage="analytics", batch_id=batch, rows=records, lineage=[stage_uri])

    def send(self, queue: str, body: dict) -> None:
        self.sqs.send_message(QueueUrl=self.q[queue], MessageBody=json.dumps(body))

    def waiting(self, queue: str) -> int:
        attrs = self.sqs.get_queue_attributes(QueueUrl=self.q[queue], AttributeNames=["ApproximateNumberOfMessages"])
        return int(attrs["Attributes"]["ApproximateNumberOfMessages"])


def _attr(value):
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, int):
        return {"N": str(value)}
    if isinstance(value, list):
        return {"L": [_attr(v) for v in value]}
    raise TypeError(value)


@pytest.fixture()
def lake(monkeypatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        cfg = load_config("dev", ROOT / "parameters")
        yield FakeLake(cfg, Clients(AwsTarget(region=cfg.region)))


def run(lake, **kwargs):
    return audit(lake.lake, clock=lambda: LATER, **kwargs)


def test_a_clean_lake_audits_ok_with_every_object_processed_and_rows_equal_to_records(lake):
    lake.processed("a.json", 3, "b1")
    lake.processed("b.json", 4, "b2")
    result = run(lake)
    assert result.ok and (result.lost, result.duplicated) == (0, 0)
    [dataset] = result.datasets
    assert (dataset.team, dataset.dataset, dataset.registered) == (T, D, True)
    assert [o.state for o in dataset.objects] == ["PROCESSED", "PROCESSED"]
    data = result.to_dict()
    assert data["counts"]["processed"] == 2 and data["rows"] == data["records"] == 7


def test_failures_with_their_dlq_message_are_failed_and_the_dlqs_keep_their_messages(lake):
    lake.processed("good.json", 2, "b1")
    bad = f"{T}/{D}/bad.json"
    etag = lake.put(RAW, bad)
    lake.row(f"s3://{RAW}/{bad}", status="FAILED", stage="raw", etag=etag, reason="malformed JSON at line 1")
    lake.send("a-dlq", s3_event(bad, "malformed JSON at line 1"))
    unclaimed = f"{T}/nobody/x.json"
    etag = lake.put(RAW, unclaimed)
    lake.row(f"s3://{RAW}/{unclaimed}", status="FAILED", stage="raw", etag=etag, reason="not registered")
    lake.send("catalog-dlq", s3_event(unclaimed, "not registered"))
    loose = "loose.json"
    etag = lake.put(RAW, loose)
    lake.row(f"s3://{RAW}/{loose}", status="FAILED", stage="raw", etag=etag, reason="key is not <team>/<dataset>/<file>")
    lake.send("catalog-dlq", s3_event(loose, "key is not <team>/<dataset>/<file>"))

    result = run(lake)
    assert result.ok, result.to_dict()
    states = {o.uri.rsplit("/", 1)[1]: (o.state, o.detail) for d in result.datasets for o in d.objects}
    assert states["bad.json"] == ("FAILED", "malformed JSON at line 1")
    assert states["x.json"][0] == "FAILED" and states["loose.json"][0] == "FAILED"
    assert {(d.team, d.dataset) for d in result.datasets} == {(T, D), (T, "nobody"), ("", OUTSIDE)}
    assert not next(d for d in result.datasets if d.dataset == "nobody").registered
    assert (lake.waiting("a-dlq"), lake.waiting("catalog-dlq")) == (1, 2)  # looked at, not moved


def test_lost_and_duplicated_make_the_audit_fail(lake):
    lake.processed("a.json", 3, "b1")
    lake.processed("b.json", 4, "b2")
    # a.json's stage object also went into batch b2 (a redelivered hand-off): its rows are there twice
    stage_a = f"s3://{STAGE}/{T}/{D}/a.json.jsonl"
    part_b2 = f"s3://{ANALYTICS}/{T}/{D}/{D}/ingestion_date=2026-11-25/part-b2.parquet"
    lake.row(part_b2, status="PROCESSED", stage="analytics", batch_id="b2", rows=7,
             lineage=[f"s3://{STAGE}/{T}/{D}/b.json.jsonl", stage_a])
    # c.json failed, and nothing can replay it
    lake.row(f"s3://{RAW}/{T}/{D}/c.json", status="FAILED", stage="raw", etag=lake.put(RAW, f"{T}/{D}/c.json"),
             reason="boom")

    result = run(lake)
    assert not result.ok and (result.lost, result.duplicated) == (1, 1)
    lost = [o for d in result.datasets for o in d.objects if o.state == "LOST"]
    assert [o.uri.rsplit("/", 1)[1] for o in lost] == ["c.json"] and "no DLQ holds a message" in lost[0].detail
    [dup] = result.datasets[0].duplicates
    assert dup.uri == stage_a and "b1, b2" in dup.detail


def test_objects_still_queued_are_in_progress_not_lost(lake):
    key = f"{T}/{D}/new.json"
    lake.row(f"s3://{RAW}/{key}", status="RECEIVED", stage="raw", etag=lake.put(RAW, key))
    lake.send("a", s3_event(key))
    result = run(lake)
    assert result.ok and result.count("IN_PROGRESS") == 1


def test_the_selection_narrows_to_one_dataset_and_an_unknown_one_is_a_usage_error(lake):
    lake.processed("a.json", 3, "b1")
    lake.put(RAW, f"{T}/other/x.json")
    assert [(d.team, d.dataset) for d in run(lake, team=T, dataset=D).datasets] == [(T, D)]
    with pytest.raises(UsageError, match="no dataset matches"):
        run(lake, team="nobody")
    with pytest.raises(UsageError, match="--stale-after"):
        run(lake, stale_after=0)


def test_text_and_json_say_what_is_lost_and_duplicated_and_exit_1(lake, capsys):
    from sdlf_cli.ui.output import emit

    lake.processed("a.json", 3, "b1")
    lake.row(f"s3://{RAW}/{T}/{D}/c.json", status="FAILED", stage="raw", etag=lake.put(RAW, f"{T}/{D}/c.json"),
             reason="boom")
    result = run(lake)
    assert emit(result, "text") == 1
    out = capsys.readouterr()
    assert f"lost: s3://{RAW}/{T}/{D}/c.json" in out.err and "FAILED (boom)" in out.err
    assert "audit NOT OK" in out.out and "lost 1, duplicated 0" in out.out
    assert emit(result, "json") == 1
    data = json.loads(capsys.readouterr().out)
    assert data["version"] == 1 and data["ok"] is False and data["lost"] == 1
    assert data["datasets"][0]["objects"][1]["state"] == "LOST"
