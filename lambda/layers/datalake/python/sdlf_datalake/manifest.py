"""Stage-B batches: the manifest routing-b writes, and the files the Glue jobs write next to it.

Everything of one batch lives in the stage bucket under `<team>/<dataset>/_batches/<batch_id>/`:
  manifest.json  (routing-b)        what to transform: inputs, output, partitioning, quality rules
  result.json    (heavy transform)  {"batch_id", "outputs": [{"uri", "rows", "partition"}], "rows", "columns"}
  quality.json   (quality job)      the quality verdict of the batch

The batch id is derived from its content (sorted `uri@etag` of the inputs), so the same stage objects
always form the same batch: its execution name, its manifest and its Parquet files (`part-<batch_id>`)
are the same on a replay, which overwrites instead of duplicating.
"""
from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Iterable, Mapping

from sdlf_datalake.errors import InvalidInputError, aws_call, error_code
from sdlf_datalake.keys import parse_object_id

BATCH_ID_LENGTH = 24
BATCHES_FOLDER = "_batches"
MANIFEST = "manifest.json"
RESULT = "result.json"
QUALITY = "quality.json"
DEFAULT_PARTITION_BY = ("ingestion_date",)
_NOT_IDENTIFIER = re.compile(r"[^a-z0-9_]")


def batch_id(inputs: Iterable[Mapping[str, Any]]) -> str:
    """sha256 of the sorted `uri@etag` list, first 24 hex characters."""
    seeds = sorted(f"{i['uri']}@{i.get('etag') or ''}" for i in inputs)
    return hashlib.sha256("\n".join(seeds).encode("utf-8")).hexdigest()[:BATCH_ID_LENGTH]


def table_name(dataset: str) -> str:
    """Glue/Athena table of a dataset: lowercase, anything but [a-z0-9_] becomes '_'."""
    return _NOT_IDENTIFIER.sub("_", dataset.lower())


def batch_prefix(team: str, dataset: str, batch: str) -> str:
    return f"{team}/{dataset}/{BATCHES_FOLDER}/{batch}/"


def sibling_uri(manifest_uri: str, name: str) -> str:
    """`result.json` / `quality.json` next to a manifest."""
    bucket, key = parse_object_id(manifest_uri)
    folder = key.rsplit("/", 1)[0]
    return f"s3://{bucket}/{folder}/{name}"


def build_manifest(
    *,
    batch: str,
    team: str,
    dataset: str,
    table: str,
    engine: str,
    created_at: str,
    partition_by: Any,
    inputs: list[dict[str, Any]],
    analytics_bucket: str,
    quality: Any,
    quality_table: str,
) -> dict[str, Any]:
    partitions = list(partition_by) if isinstance(partition_by, (list, tuple)) and partition_by else list(DEFAULT_PARTITION_BY)
    return {
        "batch_id": batch,
        "team": team,
        "dataset": dataset,
        "table": table,
        "engine": engine,
        "created_at": created_at,
        "partition_by": partitions,
        "inputs": inputs,
        "output": f"s3://{analytics_bucket}/{team}/{dataset}/{table}/",
        "quality": list(quality) if isinstance(quality, (list, tuple)) else [],
        "quality_table": quality_table,
        "quality_output": f"s3://{analytics_bucket}/{team}/{dataset}/_quality/",
    }


def read_json(s3: Any, uri: str, what: str, required: bool = True) -> dict[str, Any] | None:
    """Read a batch file; a missing optional file is None, a missing required one InvalidInputError."""
    try:
        bucket, key = parse_object_id(uri)
    except ValueError as exc:
        raise InvalidInputError(f"{what}: {exc}") from None
    try:
        with aws_call(f"reading {uri}"):
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except Exception as exc:
        if error_code(exc) in ("NoSuchKey", "404", "NotFound"):
            if not required:
                return None
            raise InvalidInputError(f"{what}: {uri} does not exist") from None
        raise
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise InvalidInputError(f"{what}: {uri} is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidInputError(f"{what}: {uri} must hold a JSON object, got {type(data).__name__}")
    return data


def check_manifest(manifest: Mapping[str, Any], uri: str, team: str, dataset: str, batch: str) -> list[dict[str, Any]]:
    """Validate a manifest against the execution it belongs to; returns its inputs."""
    for name, expected in (("team", team), ("dataset", dataset), ("batch_id", batch)):
        if manifest.get(name) != expected:
            raise InvalidInputError(f"manifest {uri}: {name} is {manifest.get(name)!r}, the execution says {expected!r}")
    inputs = manifest.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise InvalidInputError(f"manifest {uri}: 'inputs' must be a non-empty list")
    return check_uri_items(inputs, f"manifest {uri}: inputs", "be an object with a 'uri'")


def check_uri_items(items: list[Any], where: str, requirement: str) -> list[dict[str, Any]]:
    """Copies of `items`, each an object whose "uri" is an s3:// object id; InvalidInputError
    reads "<where>[<index>] must <requirement>, got ..." or names the bad uri."""
    for index, item in enumerate(items):
        if not isinstance(item, Mapping) or not isinstance(item.get("uri"), str):
            raise InvalidInputError(f"{where}[{index}] must {requirement}, got {item!r}")
        try:
            parse_object_id(item["uri"])
        except ValueError as exc:
            raise InvalidInputError(f"{where}[{index}]: {exc}") from None
    return [dict(i) for i in items]
