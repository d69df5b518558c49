"""Stage B's failures: the failed batch's objects marked FAILED, its messages parked in the dataset's DLQ
(replayable with sdlf redrive), the team told (lambda/error-b).

A batch that failed after its heavy transform wrote Parquet (the crawler, a `fail` quality rule, the
post-update) would leave rows in the table that no successful batch accounts for, and its replay would
write them again. Its files are quarantined: moved (copied, then deleted) out of the table's location to
`<analytics>/<team>/<dataset>/_quarantine/<batch_id>/<path in the table>`, where no crawler or query looks,
and their catalog rows say FAILED with where they went. The replay writes them anew.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Mapping

from sdlf_datalake.catalog import CatalogRepository, DoneElsewhere, Status
from sdlf_datalake.errors import TransientError, aws_call, error_code
from sdlf_datalake.executions import ExecutionsRepository
from sdlf_datalake.failures import Steps, error_type, failure_reason
from sdlf_datalake.keys import parse_object_id
from sdlf_datalake.manifest import RESULT, check_manifest, read_json, sibling_uri
from sdlf_datalake.notify import Notifier
from sdlf_datalake.registry import RegistrationReader
from sdlf_datalake.stage_b import STAGE
from sdlf_datalake.support import failed_entries, lazy_client, required_env, sqs_chunks
from sdlf_datalake.timeutil import Clock, now_iso

QUARANTINE = "_quarantine"

@dataclass(frozen=True)
class ErrorHandlerBConfig:
    catalog_table: str
    executions_table: str
    topic_arn: str
    ssm_prefix: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "ErrorHandlerBConfig":
        env = os.environ if env is None else env
        names = ("CATALOG_TABLE", "EXECUTIONS_TABLE", "TOPIC_ARN", "SSM_PREFIX")
        return cls(*required_env(env, names, "error-b"))


def replay_body(item: Mapping[str, Any], team: str, dataset: str, marker: dict[str, Any]) -> dict[str, Any]:
    """Stage A's hand-off body for one manifest input, plus the failure marker."""
    bucket, key = parse_object_id(item["uri"])
    return {
        "team": team,
        "dataset": dataset,
        "bucket": bucket,
        "key": key,
        "uri": item["uri"],
        "etag": item.get("etag"),
        "records": item.get("records"),
        "source": item.get("source"),
        "sdlf": marker,
    }


def park(sqs: Any, url: str, bodies: list[dict[str, Any]]) -> int:
    """Send replayable bodies to a stage-B DLQ in batches; TransientError naming the ones SQS did not take."""
    sent = 0
    for chunk in sqs_chunks(bodies):
        entries = [{"Id": str(i), "MessageBody": json.dumps(b, default=str)} for i, b in enumerate(chunk)]
        with aws_call(f"sending to {url}"):
            response = sqs.send_message_batch(QueueUrl=url, Entries=entries)
        failed = response.get("Failed") or []
        if failed:
            details = failed_entries(failed)
            raise TransientError(f"{len(failed)} message(s) not accepted by {url}: {details}")
        sent += len(chunk)
    return sent


def stage_b_dlq_url(registrations: RegistrationReader, team: str | None, dataset: str | None) -> str:
    if not team or not dataset:
        raise ValueError("the input names no team/dataset, so the stage-B DLQ is unknown")
    url = registrations.get(team, dataset).stage_b_dlq_url
    if not url:
        raise ValueError(f"registration of {team}/{dataset} has no stage_b_dlq_url")
    return url


class ErrorHandlerB:
    def __init__(
        self,
        config: ErrorHandlerBConfig,
        *,
        s3: Any = None,
        sqs: Any = None,
        sns: Any = None,
        dynamodb: Any = None,
        registrations: RegistrationReader | None = None,
        clock: Clock | None = None,
        logger: Any = None,
    ):
        self.config = config
        self._s3, self._sqs = s3, sqs
        self._clock = clock
        self._logger = logger
        self.catalog = CatalogRepository(config.catalog_table, client=dynamodb, clock=clock)
        self.executions = ExecutionsRepository(config.executions_table, client=dynamodb, clock=clock)
        self.notifier = Notifier(config.topic_arn, client=sns)
        self.registrations = registrations or RegistrationReader(config.ssm_prefix)

    s3 = lazy_client("s3", "_s3")
    sqs = lazy_client("sqs", "_sqs")

    def handle(self, event: Any) -> dict[str, Any]:
        """Run every step even if one fails (the DLQ first: it keeps the data); raise at the end
        naming the steps that failed (TransientError when all of them may pass on a retry)."""
        event = event if isinstance(event, Mapping) else {"error": event}
        team, dataset, batch, execution, manifest_uri = (
            _text(event.get(name)) for name in ("team", "dataset", "batch_id", "execution", "manifest")
        )
        error = event.get("error")
        reason = failure_reason(error)
        failed_at = now_iso(self._clock)
        marker = {"reason": reason, "execution": execution, "failed_at": failed_at, "batch_id": batch}
        result: dict[str, Any] = {"status": "FAILED", "reason": reason, "batch_id": batch, "execution": execution}
        steps = Steps(self._logger)

        inputs: list[dict[str, Any]] = []
        manifest: dict[str, Any] = {}

        def load_inputs() -> None:
            if not (team and dataset and batch and manifest_uri):
                raise ValueError("the input names no team/dataset/batch_id/manifest")
            manifest.update(read_json(self.s3, manifest_uri, "$.manifest") or {})
            inputs.extend(check_manifest(manifest, manifest_uri, team, dataset, batch))

        steps.run("manifest", load_inputs)
        result["objects"] = [i["uri"] for i in inputs]
        steps.run(
            "dlq",
            lambda: result.update(dlq_messages=self._park(team, dataset, inputs, marker, dict(event))),
        )
        done_elsewhere: list[str] = []
        for item in inputs:
            steps.run(
                f"catalog {item['uri']}",
                lambda item=item: self._mark(item, reason, batch, execution, error) or done_elsewhere.append(item["uri"]),
            )
        if done_elsewhere:
            result["done_elsewhere"] = done_elsewhere
        if manifest_uri and inputs and not self._batch_done_elsewhere(done_elsewhere, batch, execution):
            steps.run("quarantine", lambda: result.update(
                quarantined=self._quarantine(manifest_uri, manifest, team or "", dataset or "", batch or "", reason,
                                             execution, error)))
        if execution:
            dataset_id = f"{team}/{dataset}" if team and dataset else None
            steps.run("executions", lambda: self.executions.fail(execution, reason, dataset_id=dataset_id, stage=STAGE))
        steps.run(
            "notify",
            lambda: result.update(notification_id=self._notify(team, dataset, batch, execution, reason, error, failed_at, inputs)),
        )
        steps.finish(f"batch {batch or '?'} of {team or '?'}/{dataset or '?'}")
        return result

    # --- steps --------------------------------------------------------------------------------

    def _dlq_url(self, team: str | None, dataset: str | None) -> str:
        return stage_b_dlq_url(self.registrations, team, dataset)

    def _park(
        self, team: str | None, dataset: str | None, inputs: list[dict[str, Any]], marker: dict[str, Any], original: Any
    ) -> int:
        url = self._dlq_url(team, dataset)
        if inputs:
            bodies = [replay_body(item, team or "", dataset or "", marker) for item in inputs]
        else:
            # The batch's objects are unknown (no readable manifest): keep the whole input so an
            # operator can still tell what failed.
            bodies = [{"team": team, "dataset": dataset, "sdlf": {**marker, "input": original}}]
        return park(self.sqs, url, bodies)

    def _mark(self, item: Mapping[str, Any], reason: str, batch: str | None, execution: str | None,
              error: Any) -> bool:
        """FAILED, unless another execution already put this content in the analytics table (this failure
        is stale: its replay succeeded). Returns whether the row was marked."""
        uri = item["uri"]
        extra: dict[str, Any] = {"batch_id": batch, "stage_b_execution": execution}
        if error_type(error):
            extra["error_type"] = error_type(error)
        etag = item.get("etag")
        unless_done = DoneElsewhere("stage_b_execution", execution, "analytics_etag", etag) if execution and etag else None
        with aws_call(f"marking {uri} FAILED"):
            return self.catalog.set_status(uri, Status.FAILED, reason, stage="stage", extra=extra,
                                           unless_done=unless_done)

    def _mark_analytics(self, uri: str, reason: str, batch: str | None, execution: str | None, error: Any) -> None:
        extra: dict[str, Any] = {"batch_id": batch, "execution": execution}
        if error_type(error):
            extra["error_type"] = error_type(error)
        with aws_call(f"marking {uri} FAILED"):
            self.catalog.set_status(uri, Status.FAILED, reason, stage="analytics", extra=extra)

    def _batch_done_elsewhere(self, uris: list[str], batch: str | None, execution: str | None) -> bool:
        """Another execution of this very batch (a replay: same inputs, same batch id, so the same Parquet
        files) succeeded: the files in the table are its, not this failure's, and stay."""
        for uri in uris:
            with aws_call(f"reading the catalog row of {uri}"):
                row = self.catalog.get(uri) or {}
            if row.get("batch_id") == batch and row.get("stage_b_execution") not in (None, execution):
                return True
        return False

    def _quarantine(self, manifest_uri: str, manifest: Mapping[str, Any], team: str, dataset: str, batch: str,
                    reason: str, execution: str | None, error: Any) -> list[str]:
        """Move the batch's Parquet files out of the table's location; their rows say FAILED and where they went.
        The job's result names them; without one (the job failed part-way), the table's location is listed
        for the batch's file name. Idempotent: a file already moved is only marked."""
        table = manifest.get("output")
        if not isinstance(table, str) or not table.startswith("s3://"):
            raise ValueError(f"manifest {manifest_uri} names no output location")
        bucket, _, table_prefix = table[len("s3://"):].partition("/")
        table_prefix = table_prefix.rstrip("/") + "/"
        result = read_json(self.s3, sibling_uri(manifest_uri, RESULT), "job result", required=False)
        outputs = result.get("outputs") if isinstance(result, Mapping) else None
        if isinstance(outputs, list):
            uris = [o["uri"] for o in outputs if isinstance(o, Mapping) and isinstance(o.get("uri"), str)]
        else:
            uris = self._batch_files(bucket, table_prefix, batch)
        moved = []
        for uri in uris:
            source_bucket, key = parse_object_id(uri)
            if source_bucket != bucket or not key.startswith(table_prefix):
                continue  # never touch anything outside the table's location
            target = f"{team}/{dataset}/{QUARANTINE}/{batch}/{key[len(table_prefix):]}"
            try:
                with aws_call(f"quarantining {uri}"):
                    self.s3.copy_object(Bucket=bucket, Key=target, CopySource={"Bucket": bucket, "Key": key})
            except Exception as exc:
                if error_code(exc) not in ("NoSuchKey", "404"):
                    raise
            else:
                with aws_call(f"removing {uri} from the table"):
                    self.s3.delete_object(Bucket=bucket, Key=key)
            quarantined = f"s3://{bucket}/{target}"
            self._mark_analytics(uri, f"{reason} (batch quarantined at {quarantined})", batch, execution, error)
            moved.append(quarantined)
        return moved

    def _batch_files(self, bucket: str, prefix: str, batch: str) -> list[str]:
        name = f"part-{batch}.parquet"
        found = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            found += [f"s3://{bucket}/{o['Key']}" for o in page.get("Contents", []) if o["Key"].endswith("/" + name)
                      or o["Key"] == prefix + name]
        return found

    def _notify(
        self,
        team: str | None,
        dataset: str | None,
        batch: str | None,
        execution: str | None,
        reason: str,
        error: Any,
        failed_at: str,
        inputs: list[dict[str, Any]],
    ) -> str:
        message = {
            "event": "batch-failed",
            "team": team,
            "dataset": dataset,
            "stage": STAGE,
            "batch_id": batch,
            "execution": execution,
            "objects": [i["uri"] for i in inputs],
            "reason": reason,
            "error_type": error_type(error),
            "failed_at": failed_at,
            "next_step": "fix the cause, then redrive the stage-B DLQ (sdlf redrive)",
        }
        return self.notifier.publish(f"sdlf FAILED batch {team}/{dataset}: {reason}", message, event="batch-failed")


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
