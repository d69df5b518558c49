"""Stage B's routing: a batch of the dataset's stage-B queue to one execution, idempotently (lambda/routing-b).
A hand-off whose content a batch already put in the analytics table, or is putting there, is deleted
instead of batched again (see `BatchRouter._already_in_analytics`). One batch of a dataset at a time: a router
takes the dataset's batch lease (a conditional write) before it reads the queue, and refuses, saying why, while
another router or a RUNNING batch holds it (see `sdlf_datalake.stage_b.lease`)."""
from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from typing import Any, Mapping

from sdlf_datalake.catalog import CatalogRepository, Status
from sdlf_datalake.errors import InvalidInputError, TransientError, aws_call, error_code
from sdlf_datalake.executions import NAME_LIMIT, redrive_marker
from sdlf_datalake.keys import object_id, parse_object_id
from sdlf_datalake.manifest import (
    MANIFEST, batch_id as make_batch_id, batch_prefix, build_manifest, read_json, table_name,
)
from sdlf_datalake.registry import DatasetRegistration, RegistrationReader
from sdlf_datalake.stage_b.lease import BatchLease, Busy, Lease
from sdlf_datalake.support import SQS_BATCH, lazy_client, required_env, sqs_chunks
from sdlf_datalake.timeutil import Clock, now_iso


DEFAULT_MIN_ITEMS = 1
DEFAULT_MAX_ITEMS = 100
# Messages taken for a batch stay invisible this long: far more than routing-b needs to write the
# manifest and start the execution (its timeout is 60 s), so no other invocation takes them meanwhile.
RECEIVE_VISIBILITY_SECONDS = 300
# How long a router holds the batch lease at most when its Lambda context does not say (its timeout is 60 s).
DEFAULT_LEASE_SECONDS = 90.0
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def execution_name_b(dataset: str, batch: str, redrive_of: list[str] | None = None) -> str:
    """`<dataset>-b-<batch_id>`; a redriven batch (its messages name the failed executions) gets
    `-r<hash>` appended, so it runs again, but only once per failure."""
    suffix = f"-b-{batch}"
    if redrive_of:
        digest = hashlib.sha256("\n".join(sorted(set(redrive_of))).encode("utf-8")).hexdigest()[:8]
        suffix += f"-r{digest}"
    prefix = _UNSAFE.sub("-", dataset)[: NAME_LIMIT - len(suffix)] or "dataset"
    return prefix + suffix


@dataclass(frozen=True)
class StageBMessage:
    """One stage-B queue message: a stage object stage A handed off."""

    message_id: str
    receipt_handle: str
    body: dict[str, Any] | None
    problem: str | None = None  # why it cannot join a batch (left for the queue's redrive policy)

    @property
    def uri(self) -> str:
        return self.body["uri"] if self.body else ""

    @property
    def redrive_of(self) -> str | None:
        return redrive_marker(self.body)


def parse_message(message: Mapping[str, Any], team: str, dataset: str) -> StageBMessage:
    message_id = message.get("MessageId", "")
    handle = message.get("ReceiptHandle", "")
    try:
        body = json.loads(message.get("Body") or "")
    except ValueError as exc:
        return StageBMessage(message_id, handle, None, f"body is not JSON: {exc}")
    if not isinstance(body, dict):
        return StageBMessage(message_id, handle, None, "body is not a JSON object")
    if (body.get("team"), body.get("dataset")) != (team, dataset):
        return StageBMessage(
            message_id, handle, None, f"message is for {body.get('team')}/{body.get('dataset')}, not {team}/{dataset}"
        )
    uri = body.get("uri")
    if not isinstance(uri, str):
        return StageBMessage(message_id, handle, None, f"'uri' must be a string, got {uri!r}")
    try:
        bucket, key = parse_object_id(uri)
    except ValueError as exc:
        return StageBMessage(message_id, handle, None, str(exc))
    if not key.startswith(f"{team}/{dataset}/"):
        return StageBMessage(message_id, handle, None, f"{uri} is not under {team}/{dataset}/")
    return StageBMessage(message_id, handle, body)


@dataclass(frozen=True)
class RoutingBConfig:
    state_machine_arn: str
    ssm_prefix: str
    stage_bucket: str
    analytics_bucket: str
    quality_table: str
    catalog_table: str
    executions_table: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "RoutingBConfig":
        env = os.environ if env is None else env
        names = ("STATE_MACHINE_ARN", "SSM_PREFIX", "STAGE_BUCKET", "ANALYTICS_BUCKET", "QUALITY_TABLE", "CATALOG_TABLE",
                 "EXECUTIONS_TABLE")
        return cls(*required_env(env, names, "routing-b"))


class BatchRouter:
    def __init__(
        self,
        config: RoutingBConfig,
        *,
        sqs: Any = None,
        s3: Any = None,
        sfn: Any = None,
        dynamodb: Any = None,
        registrations: RegistrationReader | None = None,
        clock: Clock | None = None,
        logger: Any = None,
    ):
        self.config = config
        self._sqs, self._s3, self._sfn = sqs, s3, sfn
        self._clock = clock
        self._logger = logger
        self.registrations = registrations or RegistrationReader(config.ssm_prefix)
        self.catalog = CatalogRepository(config.catalog_table, client=dynamodb, clock=clock)
        self.lease = BatchLease(config.executions_table, config.state_machine_arn, dynamodb=dynamodb, sfn=sfn,
                                clock=clock)

    sqs = lazy_client("sqs", "_sqs")
    s3 = lazy_client("s3", "_s3")
    sfn = lazy_client("stepfunctions", "_sfn")

    def route(self, event: Any, lease_seconds: float = DEFAULT_LEASE_SECONDS) -> dict[str, Any]:
        """Start one batch of the dataset's hand-offs, or say why not. `lease_seconds`: how long this
        invocation may still run (the lease it takes lapses then, should it crash)."""
        team, dataset, force = _routing_request(event)
        registration = self.registrations.get(team, dataset)
        queue_url, job, quality_job, crawler = _stage_b_settings(registration)
        min_items, max_items = _batch_limits(registration)

        lease = self.lease.acquire(team, dataset, lease_seconds)
        if isinstance(lease, Busy):
            return {"team": team, "dataset": dataset, "started": False, "busy": True, "reason": lease.reason,
                    "running_execution": lease.execution_arn}
        held = [True]
        try:
            return self._route(registration, lease, held, team, dataset, force, queue_url, job, quality_job, crawler,
                               min_items, max_items)
        finally:
            if held[0]:
                self._give_back(lease)

    def _route(self, registration: DatasetRegistration, lease: Lease, held: list[bool], team: str, dataset: str,
               force: bool, queue_url: str, job: str, quality_job: str, crawler: str, min_items: int,
               max_items: int) -> dict[str, Any]:
        messages = self._receive(queue_url, max_items, team, dataset)
        usable = [m for m in messages if m.problem is None]
        rejected = [m for m in messages if m.problem is not None]
        done = self._already_in_analytics(usable)
        if done:
            self._log("info", "stage-B hand-offs already in analytics deleted", objects=sorted({m.uri for m in done}))
            self._delete(queue_url, done)
            usable = [m for m in usable if m not in done]
        for message in rejected:
            # Left invisible: it comes back after the visibility timeout and, after the queue's
            # maxReceiveCount, moves to the stage-B DLQ where an operator sees it.
            self._log("warning", "stage-B message rejected", message_id=message.message_id, problem=message.problem)
        inputs = _inputs(usable)
        base = {"team": team, "dataset": dataset, "received": len(messages), "rejected": len(rejected),
                "already_in_analytics": len(done)}
        if not inputs or (len(inputs) < min_items and not force):
            self._release(queue_url, messages)
            reason = (
                "the stage-B queue has no objects"
                if not inputs
                else f"{len(inputs)} object(s) waiting, fewer than batch.min_items={min_items}"
            )
            return {**base, "started": False, "reason": reason, "objects": len(inputs)}

        batch = make_batch_id(inputs)
        manifest_uri = self._write_manifest(registration, batch, inputs)
        redrive_of = sorted({m.redrive_of for m in usable if m.redrive_of})
        name = execution_name_b(dataset, batch, redrive_of)
        execution_input = {
            "team": team,
            "dataset": dataset,
            "batch_id": batch,
            "manifest": manifest_uri,
            "job": job,
            "quality_job": quality_job,
            "crawler": crawler,
            "engine": registration.engine or "python",
            "execution": name,
        }
        execution_arn, already = self._start(name, execution_input)
        held[0] = False
        if not self._hand_lease(lease, execution_arn):
            self._log("warning", "the batch lease was no longer this router's when its batch started",
                      execution=name, lease=lease.id)
        # Only now, with the execution started (or found started), may the messages go.
        self._delete(queue_url, usable)
        return {
            **base,
            "started": True,
            "already_started": already,
            "execution": name,
            "execution_arn": execution_arn,
            "batch_id": batch,
            "manifest": manifest_uri,
            "objects": len(inputs),
        }

    # --- internals ----------------------------------------------------------------------------
    def _hand_lease(self, lease: Lease, execution_arn: str) -> bool:
        try:
            return self.lease.hand_to(lease, execution_arn)
        except Exception as exc:
            # The batch runs anyway; the lease stays this router's until it lapses, by when the batch's
            # PreUpdate has marked its objects.
            self._log("warning", "could not hand the batch lease to the started batch", error=f"{type(exc).__name__}: {exc}")
            return True

    def _give_back(self, lease: Lease) -> None:
        try:
            self.lease.release(lease)
        except Exception as exc:
            # Not fatal: the lease lapses when this invocation's time is up.
            self._log("warning", "could not release the batch lease", lease=lease.id, error=f"{type(exc).__name__}: {exc}")

    def _receive(self, queue_url: str, max_items: int, team: str, dataset: str) -> list[StageBMessage]:
        messages: list[StageBMessage] = []
        seen: set[str] = set()
        while len(messages) < max_items:
            with aws_call(f"receiving from {queue_url}"):
                response = self.sqs.receive_message(
                    QueueUrl=queue_url,
                    MaxNumberOfMessages=min(SQS_BATCH, max_items - len(messages)),
                    VisibilityTimeout=RECEIVE_VISIBILITY_SECONDS,
                    WaitTimeSeconds=0,
                )
            received = [m for m in response.get("Messages") or [] if m.get("MessageId") not in seen]
            if not received:
                break
            for message in received:
                seen.add(message.get("MessageId"))
                messages.append(parse_message(message, team, dataset))
        return messages

    def _already_in_analytics(self, messages: list[StageBMessage]) -> list[StageBMessage]:
        """Hand-offs of content a batch already turned into analytics rows, or is turning into them: the stage
        object's catalog row is PROCESSED by stage B with `analytics_etag`, or RUNNING in a batch with
        `batch_etag`, equal to the hand-off's etag. SQS delivers at least once and a retried send sends
        twice: batched again, such a hand-off's rows would be in the table twice.
        Also hand-offs of content the stage object no longer holds (its row's `etag` is another, newer one: the
        raw file was fixed and uploaded again after this hand-off, say, which then waited in the DLQ), once the
        current content is in the table or its own hand-off is in this batch: batched, such a hand-off would
        read the current content a second time."""
        rows: dict[str, dict[str, Any] | None] = {}
        handed = {(m.uri, (m.body or {}).get("etag")) for m in messages}
        done = []
        for message in messages:
            etag = (message.body or {}).get("etag")
            if not etag:
                continue
            if message.uri not in rows:
                with aws_call(f"reading the catalog row of {message.uri}"):
                    rows[message.uri] = self.catalog.get(message.uri)
            row = rows[message.uri] or {}
            status = row.get("status")
            # A replay from the DLQ (it names the failed execution) is never taken for a duplicate of a
            # running batch: that batch may be the one that failed, its row not yet marked.
            running = status == Status.RUNNING.value and row.get("batch_id") and not message.redrive_of
            if (status == Status.PROCESSED.value and row.get("analytics_etag") == etag) or (
                    running and row.get("batch_etag") == etag):
                done.append(message)
                continue
            current = row.get("etag")
            if current and current != etag and (
                    (status == Status.PROCESSED.value and row.get("analytics_etag") == current)
                    or (message.uri, current) in handed):
                done.append(message)
        return done

    def _write_manifest(self, registration: DatasetRegistration, batch: str, inputs: list[dict[str, Any]]) -> str:
        key = batch_prefix(registration.team, registration.dataset, batch) + MANIFEST
        uri = object_id(self.config.stage_bucket, key)
        # A replayed batch keeps its first manifest's created_at: the ingestion_date partition (and so
        # the Parquet file the job overwrites) stays the same.
        existing = read_json(self.s3, uri, "existing manifest", required=False)
        created_at = existing.get("created_at") if existing and isinstance(existing.get("created_at"), str) else None
        manifest = build_manifest(
            batch=batch,
            team=registration.team,
            dataset=registration.dataset,
            table=registration.table or table_name(registration.dataset),
            engine=registration.engine or "python",
            created_at=created_at or now_iso(self._clock),
            partition_by=registration.partition_by,
            inputs=inputs,
            analytics_bucket=self.config.analytics_bucket,
            quality=registration.quality,
            quality_table=self.config.quality_table,
        )
        with aws_call(f"writing {uri}"):
            self.s3.put_object(
                Bucket=self.config.stage_bucket,
                Key=key,
                Body=json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8"),
                ContentType="application/json",
            )
        return uri

    def _start(self, name: str, execution_input: dict[str, Any]) -> tuple[str, bool]:
        try:
            with aws_call(f"starting {name} on {self.config.state_machine_arn}"):
                response = self.sfn.start_execution(
                    stateMachineArn=self.config.state_machine_arn,
                    name=name,
                    input=json.dumps(execution_input, separators=(",", ":")),
                )
        except Exception as exc:
            if error_code(exc) == "ExecutionAlreadyExists":
                # The same batch was started before (a retried invocation, redelivered messages).
                return _execution_arn(self.config.state_machine_arn, name), True
            raise
        return response["executionArn"], False

    def _release(self, queue_url: str, messages: list[StageBMessage]) -> None:
        for chunk in sqs_chunks(messages):
            entries = [
                {"Id": str(i), "ReceiptHandle": m.receipt_handle, "VisibilityTimeout": 0} for i, m in enumerate(chunk)
            ]
            with aws_call(f"releasing messages of {queue_url}"):
                response = self.sqs.change_message_visibility_batch(QueueUrl=queue_url, Entries=entries)
            for failed in response.get("Failed") or []:
                # Not fatal: the message comes back anyway when its visibility timeout ends.
                self._log("warning", "could not release a stage-B message", failure=failed)

    def _delete(self, queue_url: str, messages: list[StageBMessage]) -> None:
        pending = list(messages)
        for _attempt in range(2):
            failed_ids: set[str] = set()
            failures: list[str] = []
            for chunk in sqs_chunks(pending):
                entries = [{"Id": str(i), "ReceiptHandle": m.receipt_handle} for i, m in enumerate(chunk)]
                with aws_call(f"deleting messages of {queue_url}"):
                    response = self.sqs.delete_message_batch(QueueUrl=queue_url, Entries=entries)
                for failed in response.get("Failed") or []:
                    failed_ids.add(chunk[int(failed["Id"])].message_id)
                    failures.append(f"{failed.get('Code')} {failed.get('Message', '')}".strip())
            pending = [m for m in pending if m.message_id in failed_ids]
            if not pending:
                return
        raise TransientError(
            f"batch started, but {len(pending)} message(s) of {queue_url} could not be deleted: {'; '.join(failures)}"
        )

    def _log(self, level: str, message: str, **extra: Any) -> None:
        if self._logger is not None:
            getattr(self._logger, level)(message, extra=extra)


def _routing_request(event: Any) -> tuple[str, str, bool]:
    if not isinstance(event, Mapping):
        raise InvalidInputError(f"routing-b expects {{'team', 'dataset', 'force'?}}, got {event!r}")
    values = []
    for name in ("team", "dataset"):
        value = event.get(name)
        if not isinstance(value, str) or not value:
            raise InvalidInputError(f"routing-b: {name!r} must be a non-empty string, got {value!r}")
        values.append(value)
    force = event.get("force", False)
    if not isinstance(force, bool):
        raise InvalidInputError(f"routing-b: 'force' must be true or false, got {force!r}")
    return values[0], values[1], force


def _stage_b_settings(registration: DatasetRegistration) -> tuple[str, str, str, str]:
    missing = [
        name
        for name, value in (
            ("stage_b_queue_url", registration.stage_b_queue_url),
            ("job", registration.job),
            ("quality_job", registration.quality_job),
            ("crawler", registration.crawler),
        )
        if not value
    ]
    if missing:
        raise InvalidInputError(
            f"{registration.parameter}: registration lacks {', '.join(missing)}; deploy the dataset stack with stage B"
        )
    return registration.stage_b_queue_url, registration.job, registration.quality_job, registration.crawler  # type: ignore[return-value]


def _batch_limits(registration: DatasetRegistration) -> tuple[int, int]:
    batch = registration.batch or {}
    limits = []
    for name, default in (("min_items", DEFAULT_MIN_ITEMS), ("max_items", DEFAULT_MAX_ITEMS)):
        value = batch.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidInputError(f"{registration.parameter}: batch.{name} must be a positive integer, got {value!r}")
        limits.append(value)
    if limits[0] > limits[1]:
        raise InvalidInputError(
            f"{registration.parameter}: batch.min_items={limits[0]} is more than batch.max_items={limits[1]}"
        )
    return limits[0], limits[1]


def _inputs(messages: list[StageBMessage]) -> list[dict[str, Any]]:
    """One input per stage object. Two messages for one uri (a redelivery, or stage A replayed the
    raw object) name the same file, which holds only its latest content: read it once. The kept
    etag is chosen deterministically so the same messages always give the same batch id."""
    by_uri: dict[str, dict[str, Any]] = {}
    for message in messages:
        body = message.body or {}
        item = {
            "uri": body["uri"],
            "etag": body.get("etag"),
            "source": body.get("source"),
            "records": body.get("records"),
        }
        current = by_uri.get(item["uri"])
        if current is None or str(item["etag"] or "") > str(current["etag"] or ""):
            by_uri[item["uri"]] = item
    return [by_uri[uri] for uri in sorted(by_uri)]


def _execution_arn(state_machine_arn: str, name: str) -> str:
    # arn:aws:states:<region>:<account>:stateMachine:<sm> -> ...:execution:<sm>:<name>
    return state_machine_arn.replace(":stateMachine:", ":execution:", 1) + f":{name}"
