"""Stage A's steps: pre-update, light transform, post-update (lambda/transform-a)."""
from __future__ import annotations

import json
import os
import posixpath
import urllib.parse
from dataclasses import dataclass
from typing import Any, Mapping

from sdlf_datalake.catalog import CatalogRepository, Status
from sdlf_datalake.errors import InvalidInputError, TransientError, aws_call, error_code
from sdlf_datalake.executions import ExecutionsRepository, started_at_of
from sdlf_datalake.keys import object_id
from sdlf_datalake.registry import DatasetRegistration, RegistrationReader
from sdlf_datalake.stage_a import STAGE
from sdlf_datalake.stage_a.routing import ObjectRef
from sdlf_datalake.support import failed_entries, lazy_client, required_env, run_action, sqs_chunks
from sdlf_datalake.timeutil import Clock
from sdlf_datalake.transforms import RawObject, StageObject, get_transform
from sdlf_datalake.transforms.base import fit_key


OUTPUT_CONTENT_TYPE = "application/x-ndjson"
# S3 refuses user metadata past 2 KB (names and values): the source is left out when its key is that long
# (the catalog row's lineage names it).
METADATA_LIMIT = 2048
# A light transform holds the whole object in memory, gunzipped; larger files belong to stage B.
DEFAULT_MAX_OBJECT_BYTES = 512 * 1024**2
DELETED_BEFORE_PROCESSING = "deleted before stage A read it"


@dataclass(frozen=True)
class StageAConfig:
    catalog_table: str
    executions_table: str
    stage_bucket: str
    ssm_prefix: str
    team: str
    max_object_bytes: int = DEFAULT_MAX_OBJECT_BYTES

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "StageAConfig":
        env = os.environ if env is None else env
        catalog_table, executions_table, stage_bucket, ssm_prefix, team = required_env(
            env, ("CATALOG_TABLE", "EXECUTIONS_TABLE", "STAGE_BUCKET", "SSM_PREFIX", "TEAM"), "transform-a"
        )
        raw_max = env.get("MAX_OBJECT_BYTES") or str(DEFAULT_MAX_OBJECT_BYTES)
        try:
            max_bytes = int(raw_max)
        except ValueError:
            raise RuntimeError(f"transform-a: MAX_OBJECT_BYTES must be an integer, got {raw_max!r}") from None
        return cls(
            catalog_table=catalog_table,
            executions_table=executions_table,
            stage_bucket=stage_bucket,
            ssm_prefix=ssm_prefix,
            team=team,
            max_object_bytes=max_bytes,
        )


class StageA:
    """The three actions of the transform-a function. Clients are injected (tests) or made lazily."""

    def __init__(
        self,
        config: StageAConfig,
        *,
        s3: Any = None,
        sqs: Any = None,
        dynamodb: Any = None,
        registrations: RegistrationReader | None = None,
        clock: Clock | None = None,
    ):
        self.config = config
        self._s3 = s3
        self._sqs = sqs
        self._clock = clock
        self.catalog = CatalogRepository(config.catalog_table, client=dynamodb, clock=clock)
        self.executions = ExecutionsRepository(config.executions_table, client=dynamodb, clock=clock)
        self.registrations = registrations or RegistrationReader(config.ssm_prefix)

    s3 = lazy_client("s3", "_s3")
    sqs = lazy_client("sqs", "_sqs")

    def run(self, event: Mapping[str, Any]) -> Any:
        return run_action(event, {"pre": self.pre, "transform": self.transform, "post": self.post})

    # pre: the object is RUNNING, the execution is recorded, the dataset is known
    def pre(self, event: Mapping[str, Any]) -> dict[str, Any]:
        ref, name = self._identify(event)
        registration = self._registration(ref)
        get_transform(registration.transform)  # an unknown transform fails now, before any work
        with aws_call(f"marking {ref.uri} RUNNING in {self.config.catalog_table}"):
            written = self.catalog.set_status(
                ref.uri,
                Status.RUNNING,
                stage="raw",
                etag=ref.etag,
                version_id=ref.version_id,
                extra={"execution": name, "pipeline": ref.pipeline},
            )
        with aws_call(f"recording execution {name} in {self.config.executions_table}"):
            self.executions.start(
                name,
                ref.dataset_id,
                STAGE,
                objects_in=1,
                extra={"pipeline": ref.pipeline, "team": ref.team, "object": ref.uri},
                started_at=started_at_of(event),
            )
        if not written:
            # Deleted before stage A got to it: nothing to process and nothing to replay (transform and post
            # find it deleted too and write nothing).
            return {"status": Status.DELETED.value, "transform": registration.transform, "execution": name,
                    "skipped": DELETED_BEFORE_PROCESSING}
        return {"status": Status.RUNNING.value, "transform": registration.transform, "execution": name}

    # transform: read the raw object, run the dataset's transform, write the stage objects
    def transform(self, event: Mapping[str, Any]) -> list[dict[str, Any]]:
        ref, name = self._identify(event)
        registration = self._registration(ref)
        transform = get_transform(registration.transform)
        try:
            stage_objects, names = self._run(ref, registration.transform, transform)
        except Exception:
            # An object deleted before stage A got to it is skipped, never failed, whatever its content is.
            if self._deleted(ref):
                return []
            raise
        if not names:
            return []  # nothing to write (deleted before it could be read, or no records): post needs no check
        uris = [object_id(self.config.stage_bucket, f"{ref.team}/{ref.dataset}/{relative}") for relative in names]
        # One consistent read of the raw object's row and of every output's: the object's catalog state is checked
        # once its outputs are known, so both take one request.
        with aws_call(f"reading the catalog rows of {ref.uri} and its stage outputs"):
            rows = self.catalog.get_many([ref.uri, *uris])
        if _is_deleted(rows.get(ref.uri)):
            return []  # the producer took the object back: no outputs (post leaves the row DELETED)
        for uri in uris:
            self._check_not_taken(ref, uri, rows.get(uri))
        outputs = []
        for stage_object, relative in zip(stage_objects, names):
            outputs.append(self._write(ref, name, relative, stage_object))
        return outputs

    def _run(self, ref: ObjectRef, transform_name: str, transform: Any) -> tuple[list[StageObject], list[str]]:
        """The transform's stage objects and their names below <team>/<dataset>/; none when the version the
        event named is gone."""
        raw = self._read(ref)
        if raw is None:
            return [], []
        try:
            stage_objects = transform(raw)
        except (InvalidInputError, TransientError):
            raise
        except Exception as exc:
            # A transform's own bug or an unexpected input: not retried, reported with its type.
            raise InvalidInputError(
                f"transform {transform_name!r} failed on {ref.uri}: {type(exc).__name__}: {exc}"
            ) from exc
        prefix = f"{ref.team}/{ref.dataset}/"
        return stage_objects, [fit_key(prefix, name) for name in _check_outputs(stage_objects, transform_name)]

    @staticmethod
    def _check_not_taken(ref: ObjectRef, uri: str, row: Mapping[str, Any] | None) -> None:
        """Two raw objects whose outputs get one name (`persons.csv` and `persons.json`, `a/../b.json` and
        `b.json`) would overwrite each other's rows: the later one fails instead, saying which object holds
        the name."""
        row = row or {}
        others = [source for source in row.get("lineage") or [] if source != ref.uri]
        if others and not _is_deleted(row):
            raise InvalidInputError(
                f"{ref.uri}: its stage output {uri} is already the output of {others[0]}; expected one raw object "
                "per output name: rename one of them (outputs are named after the file without its extension)")

    # post: stage rows PROCESSED with lineage, hand-off to stage B, raw row PROCESSED, execution done
    def post(self, event: Mapping[str, Any]) -> dict[str, Any]:
        ref, name = self._identify(event)
        outputs = _parse_outputs(event.get("outputs"))
        registration = self._registration(ref)
        for output in outputs:
            # A stage output is this raw object's own (transform refuses a name another live raw object holds),
            # so its lineage is exactly [raw]: set with its status in one write. Setting, not appending, keeps a
            # replay from adding the source twice and drops a deleted former owner of the name.
            with aws_call(f"cataloging {output['uri']}"):
                written = self.catalog.set_status(
                    output["uri"],
                    Status.PROCESSED,
                    stage="stage",
                    etag=output.get("etag"),
                    version_id=output.get("version_id"),
                    extra={"execution": name, "records": output.get("records"), "lineage": [ref.uri]},
                )
                if not written:
                    # The row says DELETED (S3's event for this write has not reached the catalog yet, or the stage
                    # object was deleted since): the status stays, but the object came from this raw object, and
                    # the name check of later runs reads the lineage.
                    self.catalog.set_lineage(output["uri"], [ref.uri])
        if outputs:
            self._hand_off(ref, registration, outputs)
        records = sum(int(o.get("records") or 0) for o in outputs)
        with aws_call(f"marking {ref.uri} PROCESSED"):
            written = self.catalog.set_status(
                ref.uri,
                Status.PROCESSED,
                stage="raw",
                extra={"execution": name, "outputs": [o["uri"] for o in outputs]},
            )
        skipped = {} if written or outputs else {"skipped": DELETED_BEFORE_PROCESSING}
        with aws_call(f"finishing execution {name}"):
            self.executions.succeed(name, objects_out=len(outputs), records_out=records, extra=skipped or None,
                                    started_at=started_at_of(event))
        status = Status.PROCESSED.value if written else Status.DELETED.value
        return {"status": status, "objects_out": len(outputs), "records_out": records, **skipped}

    # --- internals ----------------------------------------------------------------------------
    def _identify(self, event: Mapping[str, Any]) -> tuple[ObjectRef, str]:
        ref = ObjectRef.from_input(event.get("object"))
        name = event.get("execution")
        if not isinstance(name, str) or not name:
            raise InvalidInputError(f"$.execution: expected the execution name, got {name!r}")
        if ref.team != self.config.team:
            raise InvalidInputError(f"{ref.uri}: belongs to team {ref.team!r}, this function is team {self.config.team!r}'s")
        return ref, name

    def _registration(self, ref: ObjectRef) -> DatasetRegistration:
        return self.registrations.get(ref.team, ref.dataset)

    def _deleted(self, ref: ObjectRef) -> bool:
        """The catalog says DELETED: the object's current version is a delete marker (the version the event
        named may still exist, but the producer took the object back)."""
        with aws_call(f"reading the catalog row of {ref.uri}"):
            return _is_deleted(self.catalog.get(ref.uri))

    def _read(self, ref: ObjectRef) -> RawObject | None:
        """The raw object, or None when the version the event named was deleted since."""
        kwargs: dict[str, Any] = {"Bucket": ref.bucket, "Key": ref.key}
        if ref.version_id:
            kwargs["VersionId"] = ref.version_id  # exactly the version whose event started this run
        try:
            with aws_call(f"reading {ref.uri}"):
                response = self.s3.get_object(**kwargs)
                length = int(response.get("ContentLength") or 0)
                if length > self.config.max_object_bytes:
                    response["Body"].close()
                    raise InvalidInputError(
                        f"{ref.uri}: {length} bytes is more than stage A's limit of"
                        f" {self.config.max_object_bytes} (MAX_OBJECT_BYTES); use stage B for large files"
                    )
                body = response["Body"].read()
        except Exception as exc:
            if error_code(exc) in ("NoSuchKey", "NoSuchVersion", "404"):
                return None
            raise
        return RawObject(
            bucket=ref.bucket,
            key=ref.key,
            team=ref.team,
            dataset=ref.dataset,
            body=body,
            content_type=response.get("ContentType"),
            max_payload_bytes=self.config.max_object_bytes,
        )

    def _write(self, ref: ObjectRef, name: str, relative: str, stage_object: StageObject) -> dict[str, Any]:
        key = f"{ref.team}/{ref.dataset}/{relative}"
        with aws_call(f"writing s3://{self.config.stage_bucket}/{key}"):
            response = self.s3.put_object(
                Bucket=self.config.stage_bucket,
                Key=key,
                Body=stage_object.body,
                ContentType=OUTPUT_CONTENT_TYPE,
                Metadata=_metadata(ref.uri, name, stage_object.records),
            )
        output = {
            "bucket": self.config.stage_bucket,
            "key": key,
            "uri": object_id(self.config.stage_bucket, key),
            "etag": str(response.get("ETag", "")).strip('"'),
            "records": stage_object.records,
            "size": len(stage_object.body),
        }
        if response.get("VersionId") and response["VersionId"] != "null":
            # Lets post tell the catalog which version it describes, so S3's event for a replay's
            # overwrite (same etag, new version) does not reset the row to RECEIVED.
            output["version_id"] = response["VersionId"]
        return output

    def _hand_off(self, ref: ObjectRef, registration: DatasetRegistration, outputs: list[dict[str, Any]]) -> None:
        queue_url = registration.stage_b_queue_url
        if not queue_url:
            raise InvalidInputError(
                f"{registration.parameter}: registration has no stage_b_queue_url; cannot hand {ref.uri}'s outputs to stage B"
            )
        entries = []
        for index, output in enumerate(outputs):
            body = {
                "team": ref.team,
                "dataset": ref.dataset,
                "bucket": output["bucket"],
                "key": output["key"],
                "uri": output["uri"],
                "etag": output.get("etag"),
                "records": output.get("records"),
                "source": ref.uri,
            }
            entries.append({"Id": str(index), "MessageBody": json.dumps(body, separators=(",", ":"))})
        for chunk in sqs_chunks(entries):
            with aws_call(f"sending to {queue_url}"):
                response = self.sqs.send_message_batch(QueueUrl=queue_url, Entries=chunk)
            failed = response.get("Failed") or []
            if failed:
                details = failed_entries(failed)
                # SenderFault means the message itself is wrong (too large, ...): retrying will not help.
                if all(f.get("SenderFault") for f in failed):
                    raise InvalidInputError(f"stage-B hand-off to {queue_url} rejected: {details}")
                raise TransientError(f"stage-B hand-off to {queue_url} failed for {len(failed)} message(s): {details}")


def _is_deleted(row: Mapping[str, Any] | None) -> bool:
    return (row or {}).get("status") == Status.DELETED.value


def _metadata(source: str, execution: str, records: int) -> dict[str, str]:
    # S3 metadata must be ASCII: the source id is percent-encoded.
    metadata = {"sdlf-execution": execution, "sdlf-records": str(records)}
    encoded = urllib.parse.quote(source, safe="/:@")
    if sum(len(k) + len(v) for k, v in metadata.items()) + len("sdlf-source") + len(encoded) <= METADATA_LIMIT:
        metadata["sdlf-source"] = encoded
    return metadata


def _check_outputs(stage_objects: Any, transform_name: str) -> list[str]:
    """Validate a transform's result; returns the normalised relative names."""
    if not isinstance(stage_objects, list) or not all(isinstance(o, StageObject) for o in stage_objects):
        raise InvalidInputError(
            f"transform {transform_name!r} must return a list of StageObject, got {type(stage_objects).__name__}"
        )
    names: list[str] = []
    for index, stage_object in enumerate(stage_objects):
        raw_name = stage_object.name
        normalised = posixpath.normpath(raw_name) if isinstance(raw_name, str) and raw_name else ""
        if (
            not normalised
            or normalised in (".", "..")
            or normalised.startswith(("/", "../"))
            or raw_name.endswith("/")
        ):
            raise InvalidInputError(
                f"transform {transform_name!r} output {index}: name {raw_name!r} must be a relative file path below <team>/<dataset>/"
            )
        if normalised in names:
            raise InvalidInputError(f"transform {transform_name!r} returned two outputs named {normalised!r}")
        if not isinstance(stage_object.body, (bytes, bytearray)):
            raise InvalidInputError(f"transform {transform_name!r} output {normalised!r}: body must be bytes")
        names.append(normalised)
    return names


def _parse_outputs(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise InvalidInputError(f"$.outputs: expected the list the transform step returned, got {value!r}")
    for index, output in enumerate(value):
        if not isinstance(output, Mapping) or not all(isinstance(output.get(k), str) and output.get(k) for k in ("bucket", "key", "uri")):
            raise InvalidInputError(f"$.outputs[{index}]: expected {{bucket, key, uri, etag, records, size}}, got {output!r}")
    return [dict(o) for o in value]
