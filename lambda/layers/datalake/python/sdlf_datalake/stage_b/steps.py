"""Stage B's steps: pre-update and post-update around the heavy transform (lambda/transform-b).

The heavy transform rejects an input it cannot write (it does not parse, or its schema drifted past the
table's) and writes the others; its result lists the rejected ones with their reasons. The post-update
parks a replayable message for each in the dataset's stage-B DLQ, then marks it FAILED with that reason;
the batch's other inputs end PROCESSED, and the analytics files' lineage names only them."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Mapping

from sdlf_datalake.catalog import CatalogRepository, DoneElsewhere, Status
from sdlf_datalake.errors import InvalidInputError, aws_call, error_code
from sdlf_datalake.executions import ExecutionsRepository
from sdlf_datalake.failures import REASON_LIMIT
from sdlf_datalake.keys import dataset_id, parse_object_id
from sdlf_datalake.manifest import QUALITY, RESULT, check_manifest, check_uri_items, read_json, sibling_uri
from sdlf_datalake.notify import Notifier
from sdlf_datalake.registry import RegistrationReader
from sdlf_datalake.stage_b import STAGE
from sdlf_datalake.stage_b.failures import park, replay_body, stage_b_dlq_url
from sdlf_datalake.support import lazy_client, required_env, run_action
from sdlf_datalake.timeutil import Clock, now_iso

REJECTED = "RejectedInput"  # the error_type of an input the heavy transform rejected


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
        sqs: Any = None,
        dynamodb: Any = None,
        sns: Any = None,
        registrations: RegistrationReader | None = None,
        clock: Clock | None = None,
    ):
        self.config = config
        self._s3, self._sqs = s3, sqs
        self._clock = clock
        self.catalog = CatalogRepository(config.catalog_table, client=dynamodb, clock=clock)
        self.executions = ExecutionsRepository(config.executions_table, client=dynamodb, clock=clock)
        self.notifier = Notifier(config.topic_arn, client=sns)
        self.registrations = registrations or RegistrationReader(config.ssm_prefix)

    s3 = lazy_client("s3", "_s3")
    sqs = lazy_client("sqs", "_sqs")

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
            # batch_etag: which content of the stage object this batch reads, so routing-b recognises a
            # duplicate of its hand-off while the batch runs (if the batch fails, its DLQ replays it).
            extra = {**self._marks(ref), "batch_etag": item.get("etag")}
            with aws_call(f"marking {item['uri']} RUNNING"):
                written = self.catalog.set_status(item["uri"], Status.RUNNING, stage="stage", extra=extra)
            if not written:
                raise InvalidInputError(f"{item['uri']}: the catalog says the stage object was DELETED; batch {ref.batch_id} cannot run")
        return {"status": Status.RUNNING.value, "objects_in": len(inputs)}

    # post: rejected inputs parked and FAILED, analytics rows PROCESSED (+ lineage), the other stage rows
    # PROCESSED, execution SUCCEEDED, notify
    def post(self, event: Mapping[str, Any]) -> dict[str, Any]:
        ref = BatchRef.from_input(event)
        _, inputs = self._manifest(ref)
        result = read_json(self.s3, sibling_uri(ref.manifest, RESULT), "job result")
        outputs = _result_outputs(result, ref)
        reasons = _result_rejected(result, ref, inputs)
        rejected = [item for item in inputs if item["uri"] in reasons]
        inputs = [item for item in inputs if item["uri"] not in reasons]
        if rejected:
            self._reject(ref, rejected, reasons)
        quality = read_json(self.s3, sibling_uri(ref.manifest, QUALITY), "quality result", required=False)
        quality_status = quality.get("status") if quality else None
        sources = [item["uri"] for item in inputs]
        analytics: list[str] = []
        for output in outputs:
            uri = output["uri"]
            etag, version_id = self._head(uri)
            # An output file is the batch's own (its key names the batch), so its lineage is exactly the batch's
            # inputs: set with its status in one write, where a merge would read the row and write it again.
            extra = {**self._marks(ref, key="execution"), "rows": output.get("rows"), "partition": output.get("partition"),
                     "lineage": list(dict.fromkeys(sources))}
            with aws_call(f"cataloging {uri}"):
                self.catalog.set_status(
                    uri, Status.PROCESSED, stage="analytics", etag=etag, version_id=version_id, extra=extra
                )
            analytics.append(uri)
        for item in inputs:
            # analytics_etag: which content of the stage object is in the analytics table, so routing-b
            # recognises a late duplicate of its hand-off.
            extra = {**self._marks(ref), "analytics": analytics, "analytics_etag": item.get("etag")}
            with aws_call(f"marking {item['uri']} PROCESSED"):
                self.catalog.set_status(item["uri"], Status.PROCESSED, stage="stage", extra=extra)
        rows = _int(result.get("rows"), default=sum(_int(o.get("rows")) for o in outputs))
        extra: dict[str, Any] = {"quality": quality_status} if quality_status else {}
        if rejected:
            extra["objects_rejected"] = len(rejected)
        with aws_call(f"finishing execution {ref.execution}"):
            self.executions.succeed(ref.execution, objects_out=len(outputs), records_out=rows, extra=extra or None)
        summary = {
            "status": "SUCCEEDED",
            "batch_id": ref.batch_id,
            "objects_in": len(inputs) + len(rejected),
            "objects_out": len(outputs),
            "rows": rows,
            "quality": quality_status,
        }
        if rejected:
            summary["rejected"] = [{"uri": item["uri"], "reason": reasons[item["uri"]]} for item in rejected]
        self._notify(ref, summary, analytics)
        return summary

    # --- internals ----------------------------------------------------------------------------
    def _reject(self, ref: BatchRef, items: list[dict[str, Any]], reasons: dict[str, str]) -> None:
        """Each rejected input parked in the stage-B DLQ (first: the message keeps the object replayable),
        then FAILED with its reason. A retried post-update finds the inputs it already marked (FAILED by this
        execution) and parks them no second time."""
        waiting = []
        for item in items:
            with aws_call(f"reading the catalog row of {item['uri']}"):
                row = self.catalog.get(item["uri"]) or {}
            if not (row.get("status") == Status.FAILED.value and row.get("stage_b_execution") == ref.execution):
                waiting.append(item)
        if not waiting:
            return
        failed_at = now_iso(self._clock)
        bodies = [replay_body(item, ref.team, ref.dataset, {"reason": reasons[item["uri"]], "execution": ref.execution,
                                                             "failed_at": failed_at, "batch_id": ref.batch_id})
                  for item in waiting]
        park(self.sqs, stage_b_dlq_url(self.registrations, ref.team, ref.dataset), bodies)
        for item in waiting:
            etag = item.get("etag")
            # Unless another execution already put this very content in the table (a replay that succeeded).
            unless_done = DoneElsewhere("stage_b_execution", ref.execution, "analytics_etag", etag) if etag else None
            extra = {**self._marks(ref), "error_type": REJECTED}
            with aws_call(f"marking {item['uri']} FAILED"):
                self.catalog.set_status(item["uri"], Status.FAILED, reasons[item["uri"]], stage="stage", extra=extra,
                                        unless_done=unless_done)

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
        rejected = f", {len(summary['rejected'])} object(s) rejected" if summary.get("rejected") else ""
        self.notifier.publish(
            f"sdlf batch succeeded {ref.dataset_id}: {summary['rows']} rows{quality}{rejected}", message,
            event="batch-succeeded",
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


def _result_rejected(result: Mapping[str, Any], ref: BatchRef, inputs: list[dict[str, Any]]) -> dict[str, str]:
    """{uri: reason} of the inputs the job rejected; each must be one of the batch's."""
    where = sibling_uri(ref.manifest, RESULT)
    rejected = result.get("rejected") or []
    if not isinstance(rejected, list):
        raise InvalidInputError(f"job result {where}: 'rejected' must be a list, got {rejected!r}")
    known = {item["uri"] for item in inputs}
    reasons = {}
    for index, item in enumerate(rejected):
        if not isinstance(item, Mapping) or item.get("uri") not in known or not isinstance(item.get("reason"), str):
            raise InvalidInputError(f"job result {where}: rejected[{index}] must name one of the batch's inputs and "
                                    f"a reason, got {item!r}")
        reasons[item["uri"]] = item["reason"][:REASON_LIMIT] or "rejected by the heavy transform"
    return reasons


def _int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default
