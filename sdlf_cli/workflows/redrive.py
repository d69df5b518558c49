"""`sdlf dead-letters` and `sdlf redrive`: list the lake's dead-letter queues, and move their messages
back to where they can be processed again.

Every failure in the lake leaves a replayable message in one of three kinds of DLQ:

- `catalog` (lake-wide): events the catalog consumer failed on (back to the catalog queue), and raw
  objects no dataset claimed (marked with "sdlf"): once their dataset is registered they go straight
  to its pipeline's stage-A queue (the catalog consumer would only find the row FAILED again); while
  it is still not registered they stay in the DLQ, reported as skipped with the reason.
- `a` (one per pipeline): raw-object events stage A failed on; back to the stage-A queue, where
  routing-a gives a replay of failed execution X its own deterministic name (so replaying the same
  failure twice runs once).
- `b` (one per dataset): stage A's hand-offs whose stage-B batch failed; back to the stage-B queue, unless their
  stage object, or the raw object it came from, is gone (skipped with the reason, kept in the DLQ).
- `routing-b` (one per pipeline): schedule events ({"team", "dataset"}) the stage-B routing function failed
  on after Lambda's retries; each is given back to that function (an asynchronous invoke, so a new failure
  returns to the DLQ). The router starts the dataset's waiting batch, or says why not; it is safe to ask twice.

Moving a message is SEND to the destination (or INVOKE, for `routing-b`), then, only once the send succeeded, DELETE from the DLQ:
a message is never lost, and a crash in between at worst sends it twice (the pipelines dedupe).
Messages that are not moved (skipped, failed, other teams', dry run) are made visible again at the end.

Only what waited in a DLQ when the run began is moved: a replay that fails again while the run drains
its DLQ arrives as a new message, which is left for the next run (else a still-broken object would
be replayed in a loop, each time under a new execution name).
"""
from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

from sdlf_cli import registry as keys
from sdlf_cli.aws.queues import BATCH, Queues
from sdlf_cli.errors import AwsError, UsageError
from sdlf_cli.lake import Lake
from sdlf_cli.results import Listing

log = logging.getLogger("sdlf.redrive")

KINDS = ("catalog", "a", "b", "routing-b")
DEFAULT_VISIBILITY = 120  # seconds a received message stays hidden while this run decides about it
# Queues drained at once when no --limit is shared between them. Each drain ends on a one-second long poll that
# makes sure its queue is empty: one after the other, a lake's dozens of DLQs took that many seconds.
DRAINING_AT_ONCE = 8


@dataclass
class DeadLetterQueue:
    name: str
    url: str
    source_url: str  # where its messages are replayed (catalog: unclaimed objects may go elsewhere; routing-b:
    # the function's ARN or name)
    kind: str  # catalog | a | b | routing-b
    approximate_count: int = 0
    team: str | None = None
    pipeline: str | None = None
    dataset: str | None = None
    in_flight: int = 0  # received by someone and not yet deleted or released

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class MessageOutcome:
    message_id: str
    action: str  # moved | would move | failed | skipped
    object: str | None = None  # s3://bucket/key the message is about
    destination: str | None = None
    reason: str | None = None  # why skipped, or the error of a failure

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class QueueRedrive:
    queue: DeadLetterQueue
    moved: int = 0  # with dry_run: how many would move
    failed: list[MessageOutcome] = field(default_factory=list)
    skipped: list[MessageOutcome] = field(default_factory=list)
    others: int = 0  # messages of teams/datasets the filters left out (left in the DLQ)
    newer: int = 0  # arrived after the run began (e.g. replays that failed again): left for the next run
    messages: list[MessageOutcome] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"queue": self.queue.to_dict(), "moved": self.moved, "failed": [m.to_dict() for m in self.failed],
                "skipped": [m.to_dict() for m in self.skipped], "others": self.others, "newer": self.newer,
                "messages": [m.to_dict() for m in self.messages]}


@dataclass
class RedriveResult:
    queues: list[QueueRedrive]
    dry_run: bool = False
    limit: int | None = None

    @property
    def moved(self) -> int:
        return sum(q.moved for q in self.queues)

    @property
    def failed(self) -> int:
        return sum(len(q.failed) for q in self.queues)

    @property
    def skipped(self) -> int:
        return sum(len(q.skipped) for q in self.queues)

    @property
    def ok(self) -> bool:
        return self.failed == 0

    def to_dict(self) -> dict:
        return {"dry_run": self.dry_run, "limit": self.limit, "ok": self.ok, "moved": self.moved,
                "failed": self.failed, "skipped": self.skipped, "queues": [q.to_dict() for q in self.queues]}


# --- where the DLQs are ------------------------------------------------------------------------------
class _DeadLetters:
    """Where the lake's DLQs are: the registry, with the configuration's names as a fallback for units whose
    registry entries are missing."""

    def __init__(self, lake: Lake):
        self.cfg = lake.config
        self.names = self.cfg.names
        self.sqs: Queues = lake.queues
        self.functions = lake.functions
        self.storage = lake.storage
        self.registry = lake.registry
        self._urls: dict[str, str | None] = {}

    def url(self, published: str | None, queue_name: str) -> str | None:
        """The published URL, else the queue's URL by name, else None (the queue does not exist)."""
        if published:
            return published
        if queue_name not in self._urls:
            self._urls[queue_name] = self.sqs.url_of(queue_name)
        return self._urls[queue_name]

    def pipelines(self) -> list[tuple[str, str]]:
        found = set(self.registry.pipelines())
        for team in self.cfg.teams:
            found.update((team.name, p.name) for p in team.pipelines)
        return sorted(found)

    def registration(self, team: str, dataset: str) -> dict | None:
        return self.registry.registration(team, dataset)

    def datasets(self) -> list[tuple[str, str]]:
        found = set(self.registry.datasets())
        for team in self.cfg.teams:
            found.update((team.name, d.name) for d in team.datasets)
        return sorted(found)

    def pipeline_of(self, team: str, dataset: str) -> str | None:
        registration = self.registration(team, dataset)
        if registration and registration.get("pipeline"):
            return registration["pipeline"]
        found = self.cfg.dataset(team, dataset)
        return found.pipeline if found else None

    def stage_a_queue(self, team: str, pipeline: str) -> str | None:
        return self.url(self.registry.find(keys.stage_a_queue(team, pipeline)), self.names.queue(team, pipeline, "a"))

    def dead_letter_queues(self) -> list[DeadLetterQueue]:
        queues: list[DeadLetterQueue] = []
        names = self.names
        dlq = self.url(self.registry.find(keys.CATALOG_DLQ), names.dlq("catalog"))
        source = self.url(self.registry.find(keys.CATALOG_QUEUE), names.queue("catalog"))
        if dlq and source:
            queues.append(DeadLetterQueue(names.dlq("catalog"), dlq, source, "catalog"))
        for team, pipeline in self.pipelines():
            dlq = self.url(self.registry.find(keys.stage_a_dlq(team, pipeline)), names.dlq(team, pipeline, "a"))
            source = self.stage_a_queue(team, pipeline)
            if dlq and source:
                queues.append(DeadLetterQueue(names.dlq(team, pipeline, "a"), dlq, source, "a", team=team,
                                              pipeline=pipeline))
            dlq = self.url(self.registry.find(keys.routing_b_dlq(team, pipeline)), names.dlq(team, pipeline, "routing-b"))
            if dlq:
                router = self.registry.find(keys.routing_b(team, pipeline)) or names.function(team, pipeline, "routing-b")
                queues.append(DeadLetterQueue(names.dlq(team, pipeline, "routing-b"), dlq, router, "routing-b",
                                              team=team, pipeline=pipeline))
        for team, dataset in self.datasets():
            registration = self.registration(team, dataset) or {}
            dlq = self.url(registration.get("stage_b_dlq_url"), names.dlq(team, dataset, "b"))
            source = self.url(registration.get("stage_b_queue_url"), names.queue(team, dataset, "b"))
            if dlq and source:
                queues.append(DeadLetterQueue(names.dlq(team, dataset, "b"), dlq, source, "b", team=team,
                                              pipeline=self.pipeline_of(team, dataset), dataset=dataset))
        return queues


def check_selection(stage: str | None = None, limit: int | None = None) -> None:
    if stage is not None and stage not in KINDS:
        raise UsageError(f"--stage must be one of {', '.join(KINDS)}, got {stage!r}")
    if limit is not None and limit < 1:
        raise UsageError(f"--limit must be at least 1, got {limit}")


def _selected(queues: list[DeadLetterQueue], lake: _DeadLetters, team, pipeline, dataset, stage) -> list[DeadLetterQueue]:
    check_selection(stage)
    dataset_pipelines: set[tuple[str, str]] | None = None
    if dataset:
        dataset_pipelines = {(t, lake.pipeline_of(t, d)) for t, d in lake.datasets()
                             if d == dataset and (not team or t == team)}

    def wanted(q: DeadLetterQueue) -> bool:
        if stage and q.kind != stage:
            return False
        if q.kind == "catalog":
            # Lake-wide: its messages are filtered one by one; it belongs to no pipeline.
            return not pipeline
        if team and q.team != team:
            return False
        if pipeline and q.pipeline != pipeline:
            return False
        if dataset and q.kind == "b" and q.dataset != dataset:
            return False
        if dataset and q.kind in ("a", "routing-b") and (q.team, q.pipeline) not in dataset_pipelines:
            return False
        return True

    return [q for q in queues if wanted(q)]


def _count(sqs: Queues, queue: DeadLetterQueue) -> DeadLetterQueue:
    queue.approximate_count, queue.in_flight = sqs.counts(queue.url)
    return queue


class DeadLetterQueues(Listing):
    key = "queues"


def list_dead_letters(lake: Lake, team: str | None = None, pipeline: str | None = None,
                      dataset: str | None = None, stage: str | None = None) -> DeadLetterQueues:
    """The lake's DLQs (catalog, stage A per pipeline, stage B per dataset) with approximate counts."""
    check_selection(stage)
    where = _DeadLetters(lake)
    return DeadLetterQueues(_count(where.sqs, q)
                            for q in _selected(where.dead_letter_queues(), where, team, pipeline, dataset, stage))


# --- what to do with one message --------------------------------------------------------------------
@dataclass(frozen=True)
class _Plan:
    action: str  # move | skip | other
    object: str | None = None
    destination: str | None = None
    body: str | None = None
    reason: str | None = None


def _split(key: str) -> tuple[str | None, str | None]:
    parts = key.split("/", 2)
    if len(parts) < 3 or not all(parts):
        return None, None
    return parts[0], parts[1]


def _s3_object(body: Any) -> tuple[str, str] | None:
    try:
        detail = body["detail"]
        bucket, key = detail["bucket"]["name"], detail["object"]["key"]
    except (KeyError, TypeError):
        return None
    return (bucket, key) if isinstance(bucket, str) and isinstance(key, str) and bucket and key else None


def _marked(body: dict, now: str) -> str:
    """The body to re-send: the "sdlf" marker keeps `execution` (routing picks the replay's name from it)
    and gains `redriven_at`."""
    marker = body.get("sdlf")
    marker = dict(marker) if isinstance(marker, dict) else {}
    marker["redriven_at"] = now
    return json.dumps({**body, "sdlf": marker})


def _plan(lake: _DeadLetters, queue: DeadLetterQueue, text: str, team, dataset, now: str) -> _Plan:
    """Where the message goes, if the object it replays is still there: a replay of a deleted object could
    only fail again (and a stage-B batch with it)."""
    plan = _route(lake, queue, text, team, dataset, now)
    if plan.action != "move" or not plan.object or queue.kind == "routing-b":
        return plan
    version = _version_of(plan.body or "") if queue.kind != "b" else None
    bucket, _, key = plan.object[len("s3://"):].partition("/")
    if not lake.storage.object_exists(bucket, key, version):
        which = f" (version {version})" if version else ""
        return _Plan("skip", plan.object, reason=f"{plan.object}{which} no longer exists: there is nothing to replay; "
                                                 "inspect and delete the message")
    source = _source_of(plan.body or "") if queue.kind == "b" else None
    if source:
        source_bucket, _, source_key = source[len("s3://"):].partition("/")
        if not lake.storage.object_exists(source_bucket, source_key, None):
            return _Plan("skip", plan.object, reason=f"its raw object {source} no longer exists (deleted after stage A): "
                                                     "a replay would put rows of a deleted object in the table; "
                                                     "inspect and delete the message")
    return plan


def _source_of(body_text: str) -> str | None:
    """The raw object a stage-B hand-off came from."""
    try:
        source = json.loads(body_text).get("source")
    except (ValueError, AttributeError):
        return None
    return source if isinstance(source, str) and source.startswith("s3://") and "/" in source[5:] else None


def _version_of(body_text: str) -> str | None:
    try:
        version = json.loads(body_text)["detail"]["object"].get("version-id")
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    return version if isinstance(version, str) and version and version != "null" else None


def _route(lake: _DeadLetters, queue: DeadLetterQueue, text: str, team, dataset, now: str) -> _Plan:
    try:
        body = json.loads(text)
    except ValueError as exc:
        return _Plan("skip", reason=f"body is not JSON ({exc}); no stage can process it: inspect and delete it")
    if not isinstance(body, dict):
        return _Plan("skip", reason="body is not a JSON object; no stage can process it: inspect and delete it")

    if queue.kind == "routing-b":
        return _route_schedule_event(lake, queue, body, team, dataset)

    if queue.kind == "b":
        uri, key = body.get("uri"), body.get("key")
        if not isinstance(uri, str) or not uri.startswith("s3://"):
            return _Plan("skip", reason=f"not a stage-A hand-off (no s3:// 'uri', got {uri!r}): inspect and delete it")
        return _Plan("move", uri, queue.source_url, _marked(body, now))

    located = _s3_object(body)
    if located is None:
        return _Plan("skip", reason="not an S3 object event (no detail.bucket.name / detail.object.key): "
                                    "inspect and delete it")
    bucket, key = located
    uri = f"s3://{bucket}/{key}"
    key_team, key_dataset = _split(key)
    if (team and key_team != team) or (dataset and key_dataset != dataset):
        return _Plan("other", uri)
    if queue.kind == "a":
        return _Plan("move", uri, queue.source_url, _marked(body, now))

    # The catalog DLQ. Without the marker: the catalog consumer failed on the event; it gets it back.
    if not isinstance(body.get("sdlf"), dict):
        return _Plan("move", uri, queue.source_url, _marked(body, now))
    # With it: a raw object no dataset claimed when it landed.
    if key_team is None:
        return _Plan("skip", uri, reason=f"key {key!r} is not <team>/<dataset>/<file>: no dataset can claim it "
                                         "(copy the object under a registered dataset's prefix)")
    if lake.registration(key_team, key_dataset) is None:
        return _Plan("skip", uri, reason=f"dataset {key_team}/{key_dataset} is still not registered; register it "
                                         f"with `sdlf add-dataset {key_team} {key_dataset} --pipeline <pipeline>`, "
                                         "then redrive again")
    pipeline = lake.pipeline_of(key_team, key_dataset)
    destination = lake.stage_a_queue(key_team, pipeline) if pipeline else None
    if destination is None:
        return _Plan("skip", uri, reason=f"dataset {key_team}/{key_dataset} is registered, but the stage-A queue "
                                         f"of its pipeline {key_team}/{pipeline} was not found; deploy the pipeline")
    return _Plan("move", uri, destination, _marked(body, now))


def _route_schedule_event(lake: _DeadLetters, queue: DeadLetterQueue, body: dict, team, dataset) -> _Plan:
    """A schedule event the stage-B router failed on goes back to the router, if its dataset is still there."""
    event_team, event_dataset = body.get("team"), body.get("dataset")
    if not (isinstance(event_team, str) and event_team and isinstance(event_dataset, str) and event_dataset):
        return _Plan("skip", reason="not a stage-B routing request (no 'team' and 'dataset' strings): inspect and "
                                    "delete it")
    if (team and event_team != team) or (dataset and event_dataset != dataset):
        return _Plan("other")
    if lake.registration(event_team, event_dataset) is None:
        return _Plan("skip", reason=f"dataset {event_team}/{event_dataset} is no longer registered: there is no batch "
                                    "to start; delete the message")
    request = {k: body[k] for k in ("team", "dataset", "force") if k in body}
    return _Plan("move", f"{event_team}/{event_dataset}", queue.source_url, json.dumps(request))


# --- moving ----------------------------------------------------------------------------------------
def _cutoff_ms(sqs: Queues, url: str) -> int:
    """SentTimestamp (ms) from which a message counts as arrived after the run began: this host's clock,
    unless it is more than 2 s off the SQS server's Date header (whole seconds); then the next second of
    the server's. Either way a skew can only leave a message for the next run, or replay a fresh failure
    once more: never lose one, never loop."""
    local = int(time.time() * 1000)
    server = sqs.server_time_ms(url)
    if server is None:
        return local
    return server + 1000 if abs(server - local) > 2000 else local


def _newer(message: dict, cutoff: int) -> bool:
    sent = (message.get("Attributes") or {}).get("SentTimestamp")
    return sent is not None and sent.isdigit() and int(sent) >= cutoff


def _attributes(message: dict) -> dict:
    """Message attributes as send_message takes them (receive adds fields send rejects)."""
    kept = {}
    for name, value in (message.get("MessageAttributes") or {}).items():
        attr = {k: value[k] for k in ("DataType", "StringValue", "BinaryValue") if k in value}
        if "DataType" in attr and ("StringValue" in attr or "BinaryValue" in attr):
            kept[name] = attr
    return kept


def _drain(lake: _DeadLetters, queue: DeadLetterQueue, result: QueueRedrive, *, team, dataset, budget: list[int | None],
           dry_run: bool, visibility: int, now: str, cutoff: int) -> None:
    sqs = lake.sqs
    seen: set[str] = set()
    release: list[tuple[str, str]] = []
    idle = 0
    try:
        while budget[0] is None or budget[0] > 0:
            wanted = BATCH if budget[0] is None else min(BATCH, budget[0])
            # Short polls while there is work; then one long poll (it asks every SQS server) to be sure that
            # nothing more is there.
            messages = sqs.receive(queue.url, max_messages=wanted, visibility=visibility,
                                   wait_seconds=0 if idle == 0 else 1)
            progress = False
            for message in messages:
                if message["MessageId"] in seen:
                    continue  # its visibility timeout ended during a long run
                seen.add(message["MessageId"])
                if _newer(message, cutoff):
                    result.newer += 1
                    release.append((message["MessageId"], message["ReceiptHandle"]))
                    continue
                progress = True
                _handle(lake, queue, result, message, team=team, dataset=dataset, budget=budget, dry_run=dry_run,
                        now=now, release=release)
            idle = 0 if progress else idle + 1
            if idle >= 2:
                break
    finally:
        sqs.release(queue.url, [handle for _, handle in release])


def _handle(lake: _DeadLetters, queue: DeadLetterQueue, result: QueueRedrive, message: dict, *, team, dataset,
            budget: list[int | None], dry_run: bool, now: str, release: list) -> None:
    message_id, handle = message["MessageId"], message["ReceiptHandle"]
    if budget[0] is not None and budget[0] <= 0:
        release.append((message_id, handle))
        return
    plan = _plan(lake, queue, message.get("Body") or "", team, dataset, now)
    if plan.action == "other":
        result.others += 1
        release.append((message_id, handle))
        return
    if plan.action == "skip":
        outcome = MessageOutcome(message_id, "skipped", plan.object, reason=plan.reason)
        result.skipped.append(outcome)
        result.messages.append(outcome)
        release.append((message_id, handle))
        return
    if budget[0] is not None:
        budget[0] -= 1
    if dry_run:
        result.moved += 1
        result.messages.append(MessageOutcome(message_id, "would move", plan.object, plan.destination))
        release.append((message_id, handle))
        return
    sqs = lake.sqs
    try:
        if queue.kind == "routing-b":
            lake.functions.invoke_async(plan.destination, json.loads(plan.body or "{}"))
        else:
            sqs.send(plan.destination, plan.body, _attributes(message))
    except AwsError as exc:
        outcome = MessageOutcome(message_id, "failed", plan.object, plan.destination,
                                 f"sending failed, left in the DLQ: {exc}")
        result.failed.append(outcome)
        result.messages.append(outcome)
        release.append((message_id, handle))
        return
    try:
        sqs.delete(queue.url, handle)
    except AwsError as exc:
        # Sent, but the DLQ still holds it: a later redrive sends it again, a duplicate the pipelines ignore.
        outcome = MessageOutcome(message_id, "failed", plan.object, plan.destination,
                                 f"sent, but not deleted from the DLQ (a later redrive re-sends it): {exc}")
        result.failed.append(outcome)
        result.messages.append(outcome)
        return
    result.moved += 1
    result.messages.append(MessageOutcome(message_id, "moved", plan.object, plan.destination))


def redrive(lake: Lake, *, team: str | None = None, dataset: str | None = None,
            stage: str | None = None, limit: int | None = None, dry_run: bool = False, pipeline: str | None = None,
            visibility_timeout: int = DEFAULT_VISIBILITY,
            clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
            cutoff_ms: Callable[[Queues, str], int] = _cutoff_ms) -> RedriveResult:
    """Move every message (or at most `limit`) of the selected DLQs back to where it is processed again.
    `cutoff_ms(queues, url)` is when the run began on the queues' clock (messages sent later are left)."""
    check_selection(stage, limit)
    where = _DeadLetters(lake)
    queues = [_count(where.sqs, q)
              for q in _selected(where.dead_letter_queues(), where, team, pipeline, dataset, stage)]
    now = clock().strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    cutoff = cutoff_ms(where.sqs, queues[0].url) if queues else 0
    budget: list[int | None] = [limit]
    results = [QueueRedrive(queue) for queue in queues]

    def drain(result: QueueRedrive) -> None:
        queue = result.queue
        log.info("%s: %d message(s) waiting, %d in flight", queue.name, queue.approximate_count, queue.in_flight)
        if budget[0] is not None and budget[0] <= 0:
            return
        _drain(where, queue, result, team=team, dataset=dataset, budget=budget, dry_run=dry_run,
               visibility=visibility_timeout, now=now, cutoff=cutoff)

    if limit is not None or len(results) < 2:
        for result in results:  # a limit goes to the queues in their order
            drain(result)
    else:
        # Each drain has its own result; the lake's clients exist already (boto3 clients are thread-safe).
        with ThreadPoolExecutor(min(DRAINING_AT_ONCE, len(results)), thread_name_prefix="redrive") as pool:
            for done in [pool.submit(drain, result) for result in results]:
                done.result()
    return RedriveResult(results, dry_run=dry_run, limit=limit)
