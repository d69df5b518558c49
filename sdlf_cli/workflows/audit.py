"""`sdlf audit`: reconcile the lake. Reads, per dataset, the version listing of its raw prefix, the listings
of its stage and analytics prefixes, its catalog rows (one query on the `by-dataset` index), a look at the
DLQs that can hold its messages, and the counts of the queues in front of it; then `sdlf_cli.reconcile`
decides each object's state. Everything is a listing, a query or a count: no object is read, no table is
scanned, so the cost grows with the number of objects, in pages of 1,000.

Objects whose key is not `<team>/<dataset>/<file>` (no dataset can claim them) are audited as one group
with their catalog rows read one by one.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone

from sdlf_cli import registry as keys
from sdlf_cli.errors import UsageError
from sdlf_cli.lake import Lake
from sdlf_cli.reconcile import (
    DEFAULT_STALE_AFTER, STATES, DatasetAudit, DatasetSnapshot, DeadLetter, ObjectVersion, is_data_key, reconcile,
)

DATASET_INDEX = "by-dataset"
PEEK_LIMIT = 10_000  # messages looked at per DLQ; more than that and the audit says it did not see them all
OUTSIDE = "(outside <team>/<dataset>/)"


@dataclass
class AuditResult:
    datasets: list[DatasetAudit]
    stale_after: float
    unread_dead_letters: int = 0  # messages beyond PEEK_LIMIT in some DLQ
    notes: list[str] = field(default_factory=list)

    def count(self, state: str) -> int:
        return sum(d.count(state) for d in self.datasets)

    @property
    def lost(self) -> int:
        return sum(d.lost for d in self.datasets)

    @property
    def duplicated(self) -> int:
        return sum(d.duplicated for d in self.datasets)

    @property
    def objects(self) -> int:
        return sum(len(d.objects) for d in self.datasets)

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.duplicated == 0

    def to_dict(self) -> dict:
        return {"ok": self.ok, "objects": self.objects, "lost": self.lost, "duplicated": self.duplicated,
                "counts": {state.lower(): self.count(state) for state in STATES},
                "rows": sum(d.rows for d in self.datasets), "records": sum(d.records for d in self.datasets),
                "stale_after_seconds": self.stale_after, "unread_dead_letters": self.unread_dead_letters,
                "notes": self.notes, "datasets": [d.to_dict() for d in self.datasets]}


# --- the DLQs, reduced to the objects they replay ------------------------------------------------------
def _dead_letter(kind: str, queue: str, body_text: str) -> DeadLetter | None:
    try:
        body = json.loads(body_text)
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    marker = body.get("sdlf") if isinstance(body.get("sdlf"), dict) else {}
    reason = marker.get("reason") if isinstance(marker.get("reason"), str) else None
    if kind == "b":
        uri = body.get("uri")
        if not isinstance(uri, str):
            return None
        source = body.get("source") if isinstance(body.get("source"), str) else None
        return DeadLetter(kind, queue, uri, source, reason or _text(body.get("reason")))
    detail = body.get("detail") if isinstance(body.get("detail"), dict) else {}
    bucket = (detail.get("bucket") or {}).get("name") if isinstance(detail.get("bucket"), dict) else None
    key = (detail.get("object") or {}).get("key") if isinstance(detail.get("object"), dict) else None
    if not isinstance(bucket, str) or not isinstance(key, str):
        return None
    return DeadLetter(kind, queue, f"s3://{bucket}/{key}", None, reason)


def _text(value) -> str | None:
    return value if isinstance(value, str) else None


def _dataset_of(uri: str) -> tuple[str, str] | None:
    key = uri[5:].partition("/")[2]
    parts = key.split("/", 2)
    return (parts[0], parts[1]) if len(parts) == 3 and all(parts) else None


class _Reader:
    def __init__(self, lake: Lake, result: AuditResult):
        self.lake = lake
        self.result = result
        self.registry = lake.registry
        self.names = lake.config.names
        self.raw = self.registry.raw_bucket
        self.stage = self.registry.get(keys.bucket("stage"))
        self.analytics = self.registry.get(keys.bucket("analytics"))
        self.catalog = self.registry.catalog_table
        self._urls: dict[str, str | None] = {}
        self._letters: dict[str, list[DeadLetter]] = {}
        self._pending: dict[str, int] = {}

    def url(self, published: str | None, name: str) -> str | None:
        if published:
            return published
        if name not in self._urls:
            self._urls[name] = self.lake.queues.url_of(name)
        return self._urls[name]

    def letters(self, kind: str, url: str | None, name: str) -> list[DeadLetter]:
        if not url:
            return []
        if url not in self._letters:
            messages = self.lake.queues.peek(url, limit=PEEK_LIMIT)
            if len(messages) >= PEEK_LIMIT:
                waiting = self.lake.queues.pending(url)
                self.result.unread_dead_letters += max(0, waiting - len(messages))
            found = [_dead_letter(kind, name, m.get("Body") or "") for m in messages]
            self._letters[url] = [d for d in found if d is not None]
        return self._letters[url]

    def pending(self, url: str | None) -> int:
        if not url:
            return 0
        if url not in self._pending:
            self._pending[url] = self.lake.queues.pending(url)
        return self._pending[url]

    # which datasets
    def datasets(self, team: str | None, dataset: str | None) -> list[tuple[str, str]]:
        found = set(self.registry.datasets())
        for unit in self.lake.config.teams:
            found.update((unit.name, d.name) for d in unit.datasets)
        teams = [team] if team else sorted({t for t, _ in found} | {p.rstrip("/") for p in self.lake.storage.folders(self.raw)})
        for name in teams:
            found.update((name, p[len(name) + 1:].rstrip("/")) for p in self.lake.storage.folders(self.raw, f"{name}/"))
        return sorted((t, d) for t, d in found if (not team or t == team) and (not dataset or d == dataset))

    def pipeline_of(self, team: str, dataset: str) -> str | None:
        registration = self.registry.registration(team, dataset) or {}
        if registration.get("pipeline"):
            return registration["pipeline"]
        unit = self.lake.config.team(team)
        found = next((d for d in unit.datasets if d.name == dataset), None) if unit else None
        return found.pipeline if found else None

    def snapshot(self, team: str, dataset: str, now: datetime) -> DatasetSnapshot:
        storage, prefix = self.lake.storage, f"{team}/{dataset}/"
        registration = self.registry.registration(team, dataset)
        raw = [ObjectVersion(self.raw, v.key, v.version_id, v.etag, v.last_modified, v.is_latest, v.delete_marker)
               for v in storage.versions(self.raw, prefix)]
        stage = {f"s3://{self.stage}/{k}" for k in storage.keys(self.stage, prefix) if is_data_key(k)}
        analytics = {f"s3://{self.analytics}/{k}" for k in storage.keys(self.analytics, prefix) if is_data_key(k)}
        rows = {row["id"]: row for row in self.lake.tables.by_index(self.catalog, DATASET_INDEX, "dataset_id",
                                                                    f"{team}/{dataset}")}
        catalog_dlq = self.url(self.registry.find(keys.CATALOG_DLQ), self.names.dlq("catalog"))
        catalog_queue = self.url(self.registry.find(keys.CATALOG_QUEUE), self.names.queue("catalog"))
        letters = list(self.letters("catalog", catalog_dlq, self.names.dlq("catalog")))
        stage_a_queue = None
        pipeline = self.pipeline_of(team, dataset)
        if pipeline:
            stage_a_queue = self.url(self.registry.find(keys.stage_a_queue(team, pipeline)),
                                     self.names.queue(team, pipeline, "a"))
            dlq_a = self.url(self.registry.find(keys.stage_a_dlq(team, pipeline)), self.names.dlq(team, pipeline, "a"))
            letters += self.letters("a", dlq_a, self.names.dlq(team, pipeline, "a"))
        stage_b_queue = None
        if registration is not None:
            stage_b_queue = self.url(registration.get("stage_b_queue_url"), self.names.queue(team, dataset, "b"))
            dlq_b = self.url(registration.get("stage_b_dlq_url"), self.names.dlq(team, dataset, "b"))
            letters += self.letters("b", dlq_b, self.names.dlq(team, dataset, "b"))
        mine = [d for d in letters if _dataset_of(d.uri) == (team, dataset)]
        return DatasetSnapshot(
            team, dataset, now, raw, stage, analytics, rows, mine, registered=registration is not None,
            stage_b=registration is None or bool(registration.get("stage_b_queue_url")),
            stage_a_pending=self.pending(stage_a_queue), stage_b_pending=self.pending(stage_b_queue),
            catalog_pending=self.pending(catalog_queue))

    def outside(self, now: datetime) -> DatasetSnapshot | None:
        """Raw objects at the top of the bucket or right below a team: no dataset claims them."""
        storage = self.lake.storage
        raw = list(storage.versions(self.raw, "", delimiter="/"))
        for folder in storage.folders(self.raw):
            raw += storage.versions(self.raw, folder, delimiter="/")
        if not raw:
            return None
        versions = [ObjectVersion(self.raw, v.key, v.version_id, v.etag, v.last_modified, v.is_latest,
                                  v.delete_marker) for v in raw]
        rows = {}
        for uri in {v.uri for v in versions}:
            row = self.lake.tables.get(self.catalog, uri)
            if row:
                rows[uri] = row
        catalog_dlq = self.url(self.registry.find(keys.CATALOG_DLQ), self.names.dlq("catalog"))
        catalog_queue = self.url(self.registry.find(keys.CATALOG_QUEUE), self.names.queue("catalog"))
        letters = [d for d in self.letters("catalog", catalog_dlq, self.names.dlq("catalog"))
                   if _dataset_of(d.uri) is None]
        return DatasetSnapshot("", OUTSIDE, now, versions, set(), set(), rows, letters, registered=False,
                               stage_b=False, catalog_pending=self.pending(catalog_queue))


def audit(lake: Lake, team: str | None = None, dataset: str | None = None,
          stale_after: float = DEFAULT_STALE_AFTER,
          clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> AuditResult:
    """Every raw object version of the selected datasets reconciled; lost and duplicated counted."""
    if stale_after <= 0:
        raise UsageError(f"--stale-after must be more than 0 seconds, got {stale_after:g}")
    result = AuditResult([], stale_after)
    reader = _Reader(lake, result)
    now = clock()
    selected = reader.datasets(team, dataset)
    if (team or dataset) and not selected:
        raise UsageError(f"no dataset matches --team {team or '*'} --dataset {dataset or '*'} (registered, "
                         "in the parameters file, or with objects in the raw bucket)")
    for team_name, dataset_name in selected:
        result.datasets.append(reconcile(reader.snapshot(team_name, dataset_name, now), stale_after))
    if not team and not dataset:
        outside = reader.outside(now)
        if outside is not None:
            result.datasets.append(reconcile(outside, stale_after))
    if result.unread_dead_letters:
        result.notes.append(f"{result.unread_dead_letters} DLQ message(s) beyond the first {PEEK_LIMIT} per queue "
                            "were not looked at; objects they replay may show as lost")
    return result
