"""Reconciling one dataset of the lake: every raw object version against the catalog, the buckets and the
dead-letter queues. Pure functions over a `DatasetSnapshot` (what `sdlf_cli.workflows.audit` read); no AWS.

The rules, for the version S3 holds as the object's current one:

- PROCESSED: the raw row is PROCESSED, every stage output it names exists with its own row, and each of
  those went through stage B (its row names analytics outputs that all exist). An output missing from its
  bucket, a row missing for it, or an output another raw object wrote over later, is LOST.
- FAILED: a row FAILED with a reason, and a message naming the object in a DLQ (catalog or stage A for the
  raw object, stage B for one of its stage outputs): it can be replayed. FAILED with no message is LOST.
- IN_PROGRESS: RECEIVED/RUNNING, or waiting for stage B, while the stage's queue still holds messages or for
  less than `stale_after` seconds. Older than that with no message anywhere, it is LOST.
- SUPERSEDED: a non-current version (S3 keeps it, the lake processes what is current); DELETED: the current
  version is a delete marker.

Duplicated, from the outputs back to the inputs:
- one stage object's rows in the analytics files of two batches;
- a batch whose analytics files hold more rows than its stage inputs' records (fewer is LOST);
- an output with no live input: an analytics or stage object whose catalog row is missing (and no batch is
  running that would write it) or whose source no longer exists.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable

PROCESSED, FAILED, IN_PROGRESS, LOST = "PROCESSED", "FAILED", "IN_PROGRESS", "LOST"
SUPERSEDED, DELETED = "SUPERSEDED", "DELETED"
STATES = (PROCESSED, FAILED, IN_PROGRESS, LOST, SUPERSEDED, DELETED)
DEFAULT_STALE_AFTER = 900.0  # seconds an object may sit RECEIVED/RUNNING with nothing queued before it counts as lost
_PART = re.compile(r"part-([A-Za-z0-9_-]+)\.parquet$")


# --- what was read -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ObjectVersion:
    """One entry of a bucket's version listing (a delete marker has no etag)."""

    bucket: str
    key: str
    version_id: str | None
    etag: str | None
    last_modified: datetime
    is_latest: bool
    delete_marker: bool = False

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True)
class DeadLetter:
    """A message waiting in a DLQ, reduced to the object it replays."""

    kind: str  # catalog | a | b
    queue: str
    uri: str  # the raw object (catalog, a) or the stage object (b)
    source: str | None = None  # b: the raw object the stage object came from
    reason: str | None = None


@dataclass
class DatasetSnapshot:
    """Everything the audit read about one dataset (team/dataset prefix)."""

    team: str
    dataset: str
    now: datetime
    raw: list[ObjectVersion]  # every version and delete marker under raw/<team>/<dataset>/
    stage_objects: set[str]  # s3:// uris under stage/<team>/<dataset>/ (metadata folders excluded)
    analytics_objects: set[str]  # s3:// uris under analytics/<team>/<dataset>/
    rows: dict[str, dict[str, Any]]  # catalog rows by id (raw, stage and analytics rows of the dataset)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    registered: bool = True
    stage_b: bool = True  # the dataset has a stage B (objects are done only once in analytics)
    stage_a_pending: int = 0  # messages visible or in flight in the pipeline's stage-A queue
    stage_b_pending: int = 0  # messages visible or in flight in the dataset's stage-B queue
    catalog_pending: int = 0  # messages visible or in flight in the catalog queue


# --- what the audit says ---------------------------------------------------------------------------------
@dataclass
class ObjectAudit:
    uri: str
    version_id: str | None
    state: str
    detail: str = ""
    outputs: list[str] = field(default_factory=list)  # stage and analytics objects it became
    age_seconds: float | None = None  # IN_PROGRESS: since the catalog row last changed (or the upload)
    step: str | None = None  # IN_PROGRESS: where it waits: catalog | a | b

    def to_dict(self) -> dict:
        return {"uri": self.uri, "version_id": self.version_id, "state": self.state, "detail": self.detail,
                "outputs": self.outputs, "age_seconds": self.age_seconds, "step": self.step}


@dataclass(frozen=True)
class Duplicate:
    uri: str  # the output (or stage object) that is duplicated or orphaned
    detail: str

    def to_dict(self) -> dict:
        return {"uri": self.uri, "detail": self.detail}


@dataclass
class DatasetAudit:
    team: str
    dataset: str
    registered: bool
    objects: list[ObjectAudit] = field(default_factory=list)
    duplicates: list[Duplicate] = field(default_factory=list)
    batch_mismatches: list[dict] = field(default_factory=list)  # batches whose rows != their inputs' records
    rows: int = 0  # analytics rows of live batches
    records: int = 0  # records of the stage objects those batches read

    def count(self, state: str) -> int:
        return sum(1 for o in self.objects if o.state == state)

    @property
    def lost(self) -> int:
        return self.count(LOST) + sum(1 for m in self.batch_mismatches if m["rows"] < m["records"])

    @property
    def duplicated(self) -> int:
        return len(self.duplicates) + sum(1 for m in self.batch_mismatches if m["rows"] > m["records"])

    def to_dict(self) -> dict:
        return {"team": self.team, "dataset": self.dataset, "registered": self.registered,
                "counts": {state.lower(): self.count(state) for state in STATES},
                "lost": self.lost, "duplicated": self.duplicated, "rows": self.rows, "records": self.records,
                "objects": [o.to_dict() for o in self.objects],
                "duplicates": [d.to_dict() for d in self.duplicates], "batch_mismatches": self.batch_mismatches}


# --- the rules ---------------------------------------------------------------------------------------
def _age(now: datetime, when: Any) -> float | None:
    if isinstance(when, datetime):
        moment = when
    elif isinstance(when, str) and when:
        try:
            moment = datetime.fromisoformat(when.replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return max(0.0, (now - moment).total_seconds())


def _etag(value: Any) -> str:
    return str(value or "").strip('"')


class _Reconciler:
    def __init__(self, snap: DatasetSnapshot, stale_after: float):
        self.snap = snap
        self.stale_after = stale_after
        self.letters: dict[str, list[DeadLetter]] = {}
        for letter in snap.dead_letters:
            self.letters.setdefault(letter.uri, []).append(letter)
            if letter.source:
                self.letters.setdefault(letter.source, []).append(letter)

    def _letter(self, uri: str, kinds: Iterable[str]) -> DeadLetter | None:
        return next((d for d in self.letters.get(uri, []) if d.kind in kinds), None)

    def _waiting(self, age: float | None, pending: int) -> bool:
        return pending > 0 or age is None or age < self.stale_after

    # the current version of one raw object
    def current(self, version: ObjectVersion) -> ObjectAudit:
        snap, uri = self.snap, version.uri
        audit = ObjectAudit(uri, version.version_id, LOST)
        row = snap.rows.get(uri)
        upload_age = _age(snap.now, version.last_modified)
        describes = row is not None and row.get("status") != "DELETED" and (
            _etag(row.get("etag")) == _etag(version.etag) or (not row.get("etag") and (
                not row.get("version_id") or row.get("version_id") == version.version_id)))
        if not describes:
            letter = self._letter(uri, ("catalog", "a"))
            if letter:
                audit.state, audit.detail = FAILED, f"in the {letter.kind} DLQ: {letter.reason or 'not cataloged yet'}"
            elif self._waiting(upload_age, snap.catalog_pending + snap.stage_a_pending):
                audit.state, audit.detail, audit.age_seconds = IN_PROGRESS, "not cataloged yet", upload_age
                audit.step = "catalog"
            else:
                where = "has no catalog row" if row is None else "is not the version the catalog row describes"
                audit.detail = f"this version {where}, and no DLQ holds a message for it"
            return audit

        status, age = row.get("status"), _age(snap.now, row.get("updated_at"))
        if status == "FAILED":
            letter = self._letter(uri, ("catalog", "a"))
            reason = row.get("reason") or "no reason recorded"
            if letter:
                audit.state, audit.detail = FAILED, reason
            else:
                audit.detail = f"FAILED ({reason}), but no DLQ holds a message to replay it"
            return audit
        if status in ("RECEIVED", "RUNNING"):
            letter = self._letter(uri, ("catalog", "a"))
            if letter:
                audit.state, audit.detail = FAILED, f"{status}, in the {letter.kind} DLQ: {letter.reason or '?'}"
            elif self._waiting(age, snap.stage_a_pending + snap.catalog_pending):
                audit.state, audit.detail, audit.age_seconds = IN_PROGRESS, f"{status} in stage A", age
                audit.step = "a"
            else:
                audit.detail = f"{status} for {age:.0f} s, nothing queued and no DLQ holds a message for it"
            return audit
        if status != "PROCESSED":
            audit.detail = f"catalog status {status!r} is none the pipelines write"
            return audit
        return self._processed(audit, row)

    def _processed(self, audit: ObjectAudit, row: dict) -> ObjectAudit:
        snap = self.snap
        states: list[tuple[str, str, float | None]] = []
        for output in row.get("outputs") or []:
            audit.outputs.append(output)
            states.append(self._overwritten(output, audit.uri, row) or self._stage_output(output, audit))
        lost = [detail for state, detail, _ in states if state == LOST]
        failed = [detail for state, detail, _ in states if state == FAILED]
        waiting = [(detail, age) for state, detail, age in states if state == IN_PROGRESS]
        if lost:
            audit.state, audit.detail = LOST, "; ".join(lost)
        elif failed:
            audit.state, audit.detail = FAILED, "; ".join(failed)
        elif waiting:
            audit.state, audit.detail, audit.step = IN_PROGRESS, "; ".join(d for d, _ in waiting), "b"
            ages = [a for _, a in waiting if a is not None]
            audit.age_seconds = max(ages) if ages else None
        else:
            audit.state = PROCESSED
            audit.detail = "stage B done" if snap.stage_b and audit.outputs else "stage A done"
        return audit

    def _overwritten(self, output: str, uri: str, row: dict) -> tuple[str, str, None] | None:
        """LOST when another raw object wrote the same stage object after this one (two files whose outputs
        share a name): the stage object, and so the table, holds only the other's rows."""
        stage_row = self.snap.rows.get(output) or {}
        others = [s for s in stage_row.get("lineage") or [] if s != uri]
        if others and row.get("execution") and stage_row.get("execution") not in (None, row.get("execution")):
            return LOST, f"stage output {output} was overwritten by {others[0]}'s: its rows are not in it", None
        return None

    def _stage_output(self, output: str, audit: ObjectAudit) -> tuple[str, str, float | None]:
        snap = self.snap
        if output not in snap.stage_objects:
            return LOST, f"stage output {output} is missing from its bucket", None
        row = snap.rows.get(output)
        if row is None:
            return LOST, f"stage output {output} has no catalog row", None
        if not snap.stage_b:
            return PROCESSED, "", None
        status, age = row.get("status"), _age(snap.now, row.get("updated_at"))
        analytics = row.get("analytics")
        if status == "PROCESSED" and row.get("batch_id") and analytics is not None:
            missing = [a for a in analytics if a not in snap.analytics_objects]
            audit.outputs.extend(a for a in analytics if a not in audit.outputs)
            if missing:
                return LOST, f"analytics output {missing[0]} of batch {row['batch_id']} is missing", None
            return PROCESSED, "", None
        letter = self._letter(output, ("b",))
        if status == "FAILED":
            reason = row.get("reason") or "no reason recorded"
            if letter:
                return FAILED, f"stage B: {reason}", None
            return LOST, f"stage output {output} FAILED in stage B ({reason}), but the stage-B DLQ holds no message for it", None
        if letter:
            return FAILED, f"stage B: in the DLQ: {letter.reason or '?'}", None
        what = f"stage B batch {row['batch_id']} running" if status == "RUNNING" else "waiting for stage B"
        if self._waiting(age, snap.stage_b_pending):
            return IN_PROGRESS, what, age
        return LOST, f"stage output {output}: {what} for {age or 0:.0f} s, but the stage-B queue and DLQ are empty", None

    # outputs back to their inputs
    def duplicates(self, result: DatasetAudit) -> None:
        snap = self.snap
        live_raw = {v.uri for v in snap.raw if v.is_latest and not v.delete_marker}
        running = {r.get("batch_id") for r in snap.rows.values()
                   if r.get("status") == "RUNNING" and r.get("stage") == "stage" and r.get("batch_id")}
        batches_of: dict[str, set[str]] = {}
        rows_of: dict[str, int] = {}
        for uri in sorted(snap.analytics_objects):
            row = snap.rows.get(uri)
            match = _PART.search(uri)
            batch = (row or {}).get("batch_id") or (match.group(1) if match else None)
            if row is None:
                if batch in running or (match is None and not uri.endswith(".parquet")):
                    continue  # a running batch is writing it, or not a data file
                result.duplicates.append(Duplicate(uri, "analytics file without a catalog row: no input accounts for its rows"))
                continue
            sources = row.get("lineage") or []
            dead = [s for s in sources if s not in snap.stage_objects or s not in snap.rows]
            if dead or not sources:
                result.duplicates.append(Duplicate(uri, f"analytics file whose input {dead[0] if dead else '(none)'} no longer exists"))
                continue
            rows_of[batch] = rows_of.get(batch, 0) + int(row.get("rows") or 0)
            for source in sources:
                batches_of.setdefault(source, set()).add(batch)
        for source, batches in sorted(batches_of.items()):
            if len(batches) > 1:
                result.duplicates.append(Duplicate(source, f"its rows are in the analytics files of {len(batches)} batches: "
                                                           + ", ".join(sorted(batches))))
        inputs_of: dict[str, set[str]] = {}
        for source, batches in batches_of.items():
            for batch in batches:
                inputs_of.setdefault(batch, set()).add(source)
        for batch, sources in sorted(inputs_of.items()):
            records = sum(int(snap.rows[s].get("records") or 0) for s in sources)
            result.rows += rows_of.get(batch, 0)
            result.records += records
            if rows_of.get(batch, 0) != records:
                result.batch_mismatches.append({"batch_id": batch, "rows": rows_of.get(batch, 0), "records": records,
                                                "inputs": sorted(sources)})
        for uri in sorted(snap.stage_objects):
            row = snap.rows.get(uri)
            sources = (row or {}).get("lineage") or []
            if row is None:
                if any(o.state == IN_PROGRESS for o in result.objects):
                    continue  # stage A may be between writing it and cataloging it
                result.duplicates.append(Duplicate(uri, "stage object without a catalog row: no input accounts for it"))
            elif not any(s in live_raw for s in sources):
                result.duplicates.append(Duplicate(uri, "stage object whose raw input "
                                                        f"{sources[0] if sources else '(none)'} no longer exists"))


def reconcile(snap: DatasetSnapshot, stale_after: float = DEFAULT_STALE_AFTER) -> DatasetAudit:
    """The audit of one dataset: each raw object version's state, and the duplicated outputs."""
    reconciler = _Reconciler(snap, stale_after)
    result = DatasetAudit(snap.team, snap.dataset, snap.registered)
    for version in sorted(snap.raw, key=lambda v: (v.key, not v.is_latest, v.last_modified)):
        if version.key.endswith("/") and not version.delete_marker:
            continue  # a "folder" marker the console creates: no data
        if not version.is_latest:
            if not version.delete_marker:
                result.objects.append(ObjectAudit(version.uri, version.version_id, SUPERSEDED,
                                                  "a newer version of the key replaced it"))
            continue
        if version.delete_marker:
            result.objects.append(ObjectAudit(version.uri, version.version_id, DELETED, "deleted from the raw bucket"))
            continue
        result.objects.append(reconciler.current(version))
    reconciler.duplicates(result)
    return result


def is_data_key(key: str) -> bool:
    """Whether a stage or analytics key below <team>/<dataset>/ is data: not the pipelines' own bookkeeping
    under `_`-prefixed folders (batch manifests and results, quality results, quarantined batches), as the
    catalog consumer decides too."""
    parts = key.split("/", 2)
    return (len(parts) == 3 and not key.endswith("/")
            and not any(part.startswith("_") for part in parts[2].split("/")))
