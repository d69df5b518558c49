"""Stage B of a pipeline: batch the dataset's stage objects, run the heavy transform (Glue job),
crawl, check quality, and post-update the catalog (+ lineage).

- `BatchRouter` (routing-b): takes up to batch.max_items messages from the dataset's stage-B queue,
  writes the batch manifest, starts the sm-b execution and ONLY THEN deletes the messages. A batch
  below batch.min_items (unless forced) is released untouched. The batch id and the execution name
  come from the batch's content, so starting the same batch twice is a no-op.
- `StageB` (transform-b): the "pre" and "post" steps of sm-b.

Execution input (what routing-b passes to StartExecution):
  {"team", "dataset", "batch_id", "manifest": "s3://<stage>/T/D/_batches/<id>/manifest.json",
   "job", "quality_job", "crawler", "engine", "execution": "<execution name>"}
The handlers in lambda/routing-b and lambda/transform-b are thin shells over this module.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from typing import Any, Mapping

from sdlf_datalake.catalog import CatalogRepository, Status
from sdlf_datalake.errors import InvalidInputError, TransientError, aws_call, error_code
from sdlf_datalake.executions import NAME_LIMIT, ExecutionsRepository, redrive_marker
from sdlf_datalake.keys import dataset_id, object_id, parse_object_id
from sdlf_datalake.manifest import (
    MANIFEST,
    QUALITY,
    RESULT,
    batch_id as make_batch_id,
    batch_prefix,
    build_manifest,
    check_manifest,
    check_uri_items,
    read_json,
    sibling_uri,
    table_name,
)
from sdlf_datalake.notify import Notifier
from sdlf_datalake.registry import DatasetRegistration, RegistrationReader
from sdlf_datalake.support import SQS_BATCH, lazy_client, required_env, run_action, sqs_chunks
from sdlf_datalake.timeutil import Clock, now_iso

STAGE = "b"
DEFAULT_MIN_ITEMS = 1
DEFAULT_MAX_ITEMS = 100
# Messages taken for a batch stay invisible this long: far more than routing-b needs to write the
# manifest and start the execution (its timeout is 60 s), so no other invocation takes them meanwhile.
RECEIVE_VISIBILITY_SECONDS = 300
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


# --- routing ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RoutingBConfig:
    state_machine_arn: str
    ssm_prefix: str
    stage_bucket: str
    analytics_bucket: str
    quality_table: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "RoutingBConfig":
        env = os.environ if env is None else env
        names = ("STATE_MACHINE_ARN", "SSM_PREFIX", "STAGE_BUCKET", "ANALYTICS_BUCKET", "QUALITY_TABLE")
        return cls(*required_env(env, names, "routing-b"))


class BatchRouter:
    def __init__(
        self,
        config: RoutingBConfig,
        *,
        sqs: Any = None,
        s3: Any = None,
        sfn: Any = None,
        registrations: RegistrationReader | None = None,
        clock: Clock | None = None,
        logger: Any = None,
    ):
        self.config = config
        self._sqs, self._s3, self._sfn = sqs, s3, sfn
        self._clock = clock
        self._logger = logger
        self.registrations = registrations or RegistrationReader(config.ssm_prefix)

    sqs = lazy_client("sqs", "_sqs")
    s3 = lazy_client("s3", "_s3")
    sfn = lazy_client("stepfunctions", "_sfn")

    def route(self, event: Any) -> dict[str, Any]:
        team, dataset, force = _routing_request(event)
        registration = self.registrations.get(team, dataset)
        queue_url, job, quality_job, crawler = _stage_b_settings(registration)
        min_items, max_items = _batch_limits(registration)

        messages = self._receive(queue_url, max_items, team, dataset)
        usable = [m for m in messages if m.problem is None]
        rejected = [m for m in messages if m.problem is not None]
        for message in rejected:
            # Left invisible: it comes back after the visibility timeout and, after the queue's
            # maxReceiveCount, moves to the stage-B DLQ where an operator sees it.
            self._log("warning", "stage-B message rejected", message_id=message.message_id, problem=message.problem)
        inputs = _inputs(usable)
        base = {"team": team, "dataset": dataset, "received": len(messages), "rejected": len(rejected)}
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


# --- pre / post ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class StageBConfig:
    catalog_table: str
    executions_table: str
    stage_bucket: str
    analytics_bucket: str
    topic_arn: str
    ssm_prefix: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "StageBConfig":
        env = os.environ if env is None else env
        names = ("CATALOG_TABLE", "EXECUTIONS_TABLE", "STAGE_BUCKET", "ANALYTICS_BUCKET", "TOPIC_ARN", "SSM_PREFIX")
        return cls(*required_env(env, names, "transform-b"))


@dataclass(frozen=True)
class BatchRef:
    """The batch an sm-b execution is about (validated from its input)."""

    team: str
    dataset: str
    batch_id: str
    manifest: str
    execution: str

    @property
    def dataset_id(self) -> str:
        return dataset_id(self.team, self.dataset)

    @classmethod
    def from_input(cls, event: Any) -> "BatchRef":
        if not isinstance(event, Mapping):
            raise InvalidInputError(f"$: expected the sm-b execution input, got {event!r}")
        values = {}
        for name in ("team", "dataset", "batch_id", "manifest", "execution"):
            value = event.get(name)
            if not isinstance(value, str) or not value:
                raise InvalidInputError(f"$.{name}: expected a non-empty string, got {value!r}")
            values[name] = value
        if not values["manifest"].startswith("s3://"):
            raise InvalidInputError(f"$.manifest: expected an s3:// uri, got {values['manifest']!r}")
        return cls(**values)


class StageB:
    """The steps of the transform-b function. Clients are injected (tests) or made lazily."""

    def __init__(
        self,
        config: StageBConfig,
        *,
        s3: Any = None,
        dynamodb: Any = None,
        sns: Any = None,
        clock: Clock | None = None,
    ):
        self.config = config
        self._s3 = s3
        self._clock = clock
        self.catalog = CatalogRepository(config.catalog_table, client=dynamodb, clock=clock)
        self.executions = ExecutionsRepository(config.executions_table, client=dynamodb, clock=clock)
        self.notifier = Notifier(config.topic_arn, client=sns)

    s3 = lazy_client("s3", "_s3")

    def run(self, event: Mapping[str, Any]) -> Any:
        return run_action(event, {"pre": self.pre, "post": self.post})

    # pre: execution RUNNING, the batch's stage rows RUNNING
    def pre(self, event: Mapping[str, Any]) -> dict[str, Any]:
        ref = BatchRef.from_input(event)
        manifest, inputs = self._manifest(ref)
        with aws_call(f"recording execution {ref.execution}"):
            self.executions.start(
                ref.execution,
                ref.dataset_id,
                STAGE,
                objects_in=len(inputs),
                extra={"team": ref.team, "batch_id": ref.batch_id, "manifest": ref.manifest, "engine": manifest.get("engine")},
            )
        for item in inputs:
            with aws_call(f"marking {item['uri']} RUNNING"):
                written = self.catalog.set_status(
                    item["uri"], Status.RUNNING, stage="stage", extra=self._marks(ref)
                )
            if not written:
                raise InvalidInputError(f"{item['uri']}: the catalog says the stage object was DELETED; batch {ref.batch_id} cannot run")
        return {"status": Status.RUNNING.value, "objects_in": len(inputs)}

    # post: analytics rows PROCESSED (+ lineage), stage rows PROCESSED, execution SUCCEEDED, notify
    def post(self, event: Mapping[str, Any]) -> dict[str, Any]:
        ref = BatchRef.from_input(event)
        _, inputs = self._manifest(ref)
        result = read_json(self.s3, sibling_uri(ref.manifest, RESULT), "job result")
        outputs = _result_outputs(result, ref)
        quality = read_json(self.s3, sibling_uri(ref.manifest, QUALITY), "quality result", required=False)
        quality_status = quality.get("status") if quality else None
        sources = [item["uri"] for item in inputs]
        analytics: list[str] = []
        for output in outputs:
            uri = output["uri"]
            etag, version_id = self._head(uri)
            extra = {**self._marks(ref, key="execution"), "rows": output.get("rows"), "partition": output.get("partition")}
            with aws_call(f"cataloging {uri}"):
                self.catalog.set_status(
                    uri, Status.PROCESSED, stage="analytics", etag=etag, version_id=version_id, extra=extra
                )
                self.catalog.add_lineage(uri, sources)
            analytics.append(uri)
        for item in inputs:
            with aws_call(f"marking {item['uri']} PROCESSED"):
                self.catalog.set_status(
                    item["uri"], Status.PROCESSED, stage="stage", extra={**self._marks(ref), "analytics": analytics}
                )
        rows = _int(result.get("rows"), default=sum(_int(o.get("rows")) for o in outputs))
        with aws_call(f"finishing execution {ref.execution}"):
            self.executions.succeed(
                ref.execution,
                objects_out=len(outputs),
                records_out=rows,
                extra={"quality": quality_status} if quality_status else None,
            )
        summary = {
            "status": "SUCCEEDED",
            "batch_id": ref.batch_id,
            "objects_in": len(inputs),
            "objects_out": len(outputs),
            "rows": rows,
            "quality": quality_status,
        }
        self._notify(ref, summary, analytics)
        return summary

    # --- internals ----------------------------------------------------------------------------
    def _manifest(self, ref: BatchRef) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        manifest = read_json(self.s3, ref.manifest, "$.manifest")
        assert manifest is not None  # required=True never returns None
        return manifest, check_manifest(manifest, ref.manifest, ref.team, ref.dataset, ref.batch_id)

    @staticmethod
    def _marks(ref: BatchRef, key: str = "stage_b_execution") -> dict[str, Any]:
        # Stage rows keep `execution` = their stage-A execution; stage B's goes alongside.
        return {"batch_id": ref.batch_id, key: ref.execution}

    def _head(self, uri: str) -> tuple[str | None, str | None]:
        bucket, key = parse_object_id(uri)
        try:
            with aws_call(f"reading {uri}"):
                response = self.s3.head_object(Bucket=bucket, Key=key)
        except Exception as exc:
            if error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                raise InvalidInputError(f"the job result names {uri}, but it does not exist") from None
            raise
        version = response.get("VersionId")
        return str(response.get("ETag", "")).strip('"') or None, version if version and version != "null" else None

    def _notify(self, ref: BatchRef, summary: dict[str, Any], analytics: list[str]) -> None:
        message = {
            "event": "batch-succeeded",
            "team": ref.team,
            "dataset": ref.dataset,
            "stage": STAGE,
            "execution": ref.execution,
            "manifest": ref.manifest,
            "outputs": analytics,
            **summary,
        }
        quality = f", quality {summary['quality']}" if summary.get("quality") else ""
        self.notifier.publish(
            f"sdlf batch succeeded {ref.dataset_id}: {summary['rows']} rows{quality}", message, event="batch-succeeded"
        )


def _result_outputs(result: Mapping[str, Any] | None, ref: BatchRef) -> list[dict[str, Any]]:
    where = sibling_uri(ref.manifest, RESULT)
    if not result:
        raise InvalidInputError(f"job result {where} is empty")
    if result.get("batch_id") not in (None, ref.batch_id):
        raise InvalidInputError(f"job result {where}: batch_id is {result.get('batch_id')!r}, expected {ref.batch_id!r}")
    outputs = result.get("outputs")
    if not isinstance(outputs, list):
        raise InvalidInputError(f"job result {where}: 'outputs' must be a list, got {outputs!r}")
    return check_uri_items(outputs, f"job result {where}: outputs", "have a 'uri'")


def _int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default
