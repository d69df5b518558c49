"""The audit's rules on hand-built snapshots of one dataset: what counts as processed, failed, in progress,
lost and duplicated."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sdlf_cli.reconcile import (
    DELETED, FAILED, IN_PROGRESS, LOST, PROCESSED, SUPERSEDED, DatasetSnapshot, DeadLetter, ObjectVersion,
    is_data_key, reconcile,
)

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
RAW, STAGE, ANALYTICS = "raw-b", "stage-b", "analytics-b"
OLD = NOW - timedelta(hours=2)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def version(name: str, etag: str = "e1", *, vid: str = "v1", latest: bool = True, when=OLD, marker=False):
    return ObjectVersion(RAW, f"eng/ds/{name}", vid, None if marker else etag, when, latest, marker)


class Lake:
    """A dataset written the way the pipelines write it: raw row -> stage object -> batch -> Parquet."""

    def __init__(self):
        self.raw: list[ObjectVersion] = []
        self.rows: dict[str, dict] = {}
        self.stage: set[str] = set()
        self.analytics: set[str] = set()
        self.letters: list[DeadLetter] = []

    def processed(self, name: str, records: int = 3, batch: str | None = "b1", etag: str = "e1") -> tuple[str, str]:
        self.raw.append(version(name, etag))
        raw_uri, stage_uri = f"s3://{RAW}/eng/ds/{name}", f"s3://{STAGE}/eng/ds/{name}.jsonl"
        self.rows[raw_uri] = {"id": raw_uri, "status": "PROCESSED", "stage": "raw", "etag": etag, "version_id": "v1",
                              "outputs": [stage_uri], "updated_at": _iso(OLD)}
        self.stage.add(stage_uri)
        self.rows[stage_uri] = {"id": stage_uri, "status": "PROCESSED", "stage": "stage", "records": records,
                                "lineage": [raw_uri], "updated_at": _iso(OLD)}
        if batch:
            self.in_batch(stage_uri, batch)
        return raw_uri, stage_uri

    def in_batch(self, stage_uri: str, batch: str) -> str:
        part = f"s3://{ANALYTICS}/eng/ds/ds/ingestion_date=2026-11-25/part-{batch}.parquet"
        self.analytics.add(part)
        row = self.rows.setdefault(part, {"id": part, "status": "PROCESSED", "stage": "analytics", "batch_id": batch,
                                          "rows": 0, "lineage": [], "updated_at": _iso(OLD)})
        row["rows"] += self.rows[stage_uri]["records"]
        row["lineage"].append(stage_uri)
        self.rows[stage_uri].update(batch_id=batch, analytics=[part])
        return part

    def snapshot(self, **extra) -> DatasetSnapshot:
        return DatasetSnapshot("eng", "ds", NOW, self.raw, self.stage, self.analytics, self.rows, self.letters, **extra)


def test_an_object_through_both_stages_is_processed_and_its_rows_counted_once():
    lake = Lake()
    raw_uri, stage_uri = lake.processed("a.json", records=3)
    lake.processed("b.json", records=4)
    audit = reconcile(lake.snapshot())
    assert [o.state for o in audit.objects] == [PROCESSED, PROCESSED]
    assert audit.objects[0].uri == raw_uri and stage_uri in audit.objects[0].outputs
    assert any(o.endswith("part-b1.parquet") for o in audit.objects[0].outputs)
    assert (audit.lost, audit.duplicated, audit.rows, audit.records) == (0, 0, 7, 7)


def test_failed_is_terminal_only_with_a_replayable_message():
    lake = Lake()
    lake.raw += [version("bad.json"), version("worse.json")]
    for name in ("bad.json", "worse.json"):
        uri = f"s3://{RAW}/eng/ds/{name}"
        lake.rows[uri] = {"id": uri, "status": "FAILED", "reason": "malformed JSON at line 2", "etag": "e1",
                          "updated_at": _iso(OLD)}
    lake.letters.append(DeadLetter("a", "dlq-a", f"s3://{RAW}/eng/ds/bad.json", reason="malformed JSON at line 2"))
    by_uri = {o.uri.rsplit("/", 1)[1]: o for o in reconcile(lake.snapshot()).objects}
    assert by_uri["bad.json"].state == FAILED and "malformed JSON" in by_uri["bad.json"].detail
    assert by_uri["worse.json"].state == LOST and "no DLQ holds a message" in by_uri["worse.json"].detail


def test_missing_outputs_are_lost():
    lake = Lake()
    _, stage_gone = lake.processed("a.json")
    lake.stage.discard(stage_gone)
    _, stage_b = lake.processed("b.json", batch="b2")
    lake.analytics.discard(lake.rows[stage_b]["analytics"][0])
    audit = reconcile(lake.snapshot())
    details = {o.uri.rsplit("/", 1)[1]: o.detail for o in audit.objects if o.state == LOST}
    assert "missing from its bucket" in details["a.json"]
    assert "analytics output" in details["b.json"] and "is missing" in details["b.json"]
    assert audit.lost == 2


def test_waiting_for_stage_b_is_in_progress_while_the_queue_holds_messages_then_lost():
    lake = Lake()
    lake.processed("a.json", batch=None)
    waiting = reconcile(lake.snapshot(stage_b_pending=1)).objects[0]
    assert waiting.state == IN_PROGRESS and "waiting for stage B" in waiting.detail and waiting.age_seconds == 7200
    assert waiting.step == "b"
    stale = reconcile(lake.snapshot(stage_b_pending=0)).objects[0]
    assert stale.state == LOST and "stage-B queue and DLQ are empty" in stale.detail


def test_a_stage_b_failure_with_its_message_in_the_stage_b_dlq_is_failed():
    lake = Lake()
    raw_uri, stage_uri = lake.processed("a.json", batch=None)
    lake.rows[stage_uri].update(status="FAILED", reason="job failed: line 3 is not a JSON object", batch_id="b9")
    lake.letters.append(DeadLetter("b", "dlq-b", stage_uri, source=raw_uri, reason="job failed"))
    [audit] = reconcile(lake.snapshot()).objects
    assert audit.state == FAILED and "line 3 is not a JSON object" in audit.detail


def test_uncataloged_versions_are_in_progress_when_young_failed_in_a_dlq_and_lost_when_old():
    lake = Lake()
    lake.raw += [version("young.json", when=NOW - timedelta(seconds=5)), version("old.json"), version("dlq.json")]
    lake.letters.append(DeadLetter("catalog", "dlq", f"s3://{RAW}/eng/ds/dlq.json", reason="no dataset claims it"))
    by_name = {o.uri.rsplit("/", 1)[1]: o for o in reconcile(lake.snapshot()).objects}
    assert by_name["young.json"].state == IN_PROGRESS
    assert by_name["old.json"].state == LOST and "no catalog row" in by_name["old.json"].detail
    assert by_name["dlq.json"].state == FAILED and "no dataset claims it" in by_name["dlq.json"].detail


def test_a_stale_running_object_is_lost_unless_its_queue_still_holds_messages():
    lake = Lake()
    lake.raw.append(version("a.json"))
    uri = f"s3://{RAW}/eng/ds/a.json"
    lake.rows[uri] = {"id": uri, "status": "RUNNING", "etag": "e1", "updated_at": _iso(OLD)}
    assert reconcile(lake.snapshot()).objects[0].state == LOST
    assert reconcile(lake.snapshot(stage_a_pending=2)).objects[0].state == IN_PROGRESS
    assert reconcile(lake.snapshot(), stale_after=3 * 3600).objects[0].state == IN_PROGRESS


def test_the_catalog_row_of_another_version_does_not_account_for_the_current_one():
    lake = Lake()
    lake.processed("a.json", etag="e1")
    lake.raw[0] = version("a.json", "e1", vid="v1", latest=False, when=OLD - timedelta(minutes=1))
    lake.raw.append(version("a.json", "e2", vid="v2"))
    states = sorted((o.version_id, o.state) for o in reconcile(lake.snapshot()).objects)
    assert states == [("v1", SUPERSEDED), ("v2", LOST)]


def test_an_identical_reupload_is_the_same_content_and_stays_processed():
    lake = Lake()
    lake.processed("a.json", etag="e1")
    lake.raw[0] = version("a.json", "e1", vid="v1", latest=False)
    lake.raw.append(version("a.json", "e1", vid="v2"))
    assert sorted(o.state for o in reconcile(lake.snapshot()).objects) == [PROCESSED, SUPERSEDED]


def test_a_deleted_object_is_deleted_and_its_outputs_have_no_live_input():
    lake = Lake()
    lake.processed("a.json")
    lake.raw[0] = version("a.json", latest=False)
    lake.raw.append(version("a.json", vid="v2", marker=True))
    audit = reconcile(lake.snapshot())
    assert [o.state for o in audit.objects] == [DELETED, SUPERSEDED]
    assert [d.uri for d in audit.duplicates] == [f"s3://{STAGE}/eng/ds/a.json.jsonl"]
    assert "no longer exists" in audit.duplicates[0].detail


def test_rows_of_one_stage_object_in_two_batches_are_duplicated():
    lake = Lake()
    _, stage_uri = lake.processed("a.json", records=3, batch="b1")
    lake.processed("b.json", records=4, batch="b2")
    lake.in_batch(stage_uri, "b2")  # a redelivered hand-off joined the next batch
    audit = reconcile(lake.snapshot())
    assert [d.uri for d in audit.duplicates] == [stage_uri]
    assert "2 batches: b1, b2" in audit.duplicates[0].detail
    assert audit.duplicated == 1 and audit.lost == 0
    assert (audit.rows, audit.records) == (10, 10)


def test_a_batch_with_more_rows_than_its_inputs_records_is_duplicated_fewer_is_lost():
    lake = Lake()
    _, a = lake.processed("a.json", records=3, batch="b1")
    _, b = lake.processed("b.json", records=4, batch="b2")
    lake.rows[lake.rows[a]["analytics"][0]]["rows"] = 6
    lake.rows[lake.rows[b]["analytics"][0]]["rows"] = 1
    audit = reconcile(lake.snapshot())
    assert {(m["batch_id"], m["rows"], m["records"]) for m in audit.batch_mismatches} == {("b1", 6, 3), ("b2", 1, 4)}
    assert audit.duplicated == 1 and audit.lost == 1


def test_an_analytics_file_nobody_cataloged_is_an_output_without_input_unless_its_batch_is_running():
    lake = Lake()
    lake.processed("a.json")
    stray = f"s3://{ANALYTICS}/eng/ds/ds/ingestion_date=2026-11-25/part-zzz.parquet"
    lake.analytics.add(stray)
    audit = reconcile(lake.snapshot())
    assert [d.uri for d in audit.duplicates] == [stray]

    lake.processed("b.json", batch=None)
    lake.rows[f"s3://{STAGE}/eng/ds/b.json.jsonl"].update(status="RUNNING", batch_id="zzz", updated_at=_iso(NOW))
    audit = reconcile(lake.snapshot())
    assert audit.duplicates == [] and audit.lost == 0


def test_the_json_form_counts_every_state():
    lake = Lake()
    lake.processed("a.json")
    data = reconcile(lake.snapshot()).to_dict()
    assert data["counts"] == {"processed": 1, "failed": 0, "in_progress": 0, "lost": 0, "superseded": 0, "deleted": 0}
    assert data["lost"] == 0 and data["duplicated"] == 0 and data["objects"][0]["state"] == PROCESSED


def test_metadata_folders_are_not_data():
    assert is_data_key("eng/ds/a.json.jsonl")
    assert not is_data_key("eng/ds/_batches/x/manifest.json") and not is_data_key("eng/ds/_quality/x.json")
    assert not is_data_key("eng/ds/_quarantine/b1/part-b1.parquet") and not is_data_key("eng/ds/t/_SUCCESS")
    assert not is_data_key("eng/ds/") and not is_data_key("loose.json")


def test_a_stage_object_another_raw_object_wrote_over_loses_the_first_ones_rows():
    lake = Lake()
    first, stage_uri = lake.processed("people.csv")
    lake.rows[first]["execution"] = "x-first"
    lake.raw.append(version("people.json", "e2"))
    second = f"s3://{RAW}/eng/ds/people.json"
    lake.rows[second] = {**lake.rows[first], "id": second, "etag": "e2", "execution": "x-second"}
    lake.rows[stage_uri].update(lineage=[first, second], execution="x-second")
    states = {o.uri.rsplit("/", 1)[1]: (o.state, o.detail) for o in reconcile(lake.snapshot()).objects}
    assert states["people.json"][0] == PROCESSED
    assert states["people.csv"][0] == LOST and "overwritten by" in states["people.csv"][1]
