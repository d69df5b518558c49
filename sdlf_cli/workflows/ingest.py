"""Puts files into the raw bucket under `<team>/<dataset>/` and reads their catalog rows back."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from boto3.dynamodb.types import TypeDeserializer

from sdlf_cli.aws.session import Clients
from sdlf_cli.config.model import LakeConfig
from sdlf_cli.errors import UsageError
from sdlf_cli.workflows.registry import lake_resources


@dataclass(frozen=True)
class Ingested:
    file: str
    bucket: str
    key: str
    etag: str
    version_id: str | None
    size: int

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def ingest_files(cfg: LakeConfig, clients: Clients, files: list[Path], team: str, dataset: str) -> list[Ingested]:
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise UsageError("no such file: " + ", ".join(missing))
    bucket = lake_resources(cfg, clients).raw_bucket
    s3 = clients.client("s3")
    done = []
    for path in files:
        key = f"{team}/{dataset}/{path.name}"
        with path.open("rb") as body:
            resp = s3.put_object(Bucket=bucket, Key=key, Body=body)
        done.append(Ingested(str(path), bucket, key, resp["ETag"].strip('"'), resp.get("VersionId"), path.stat().st_size))
    return done


_deserialize = TypeDeserializer().deserialize


def _python(value):
    """DynamoDB's Decimals and sets as plain JSON-friendly values, all the way down."""
    if hasattr(value, "to_integral_value"):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _python(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_python(v) for v in value]
    return value


def _plain(item: dict) -> dict:
    return {k: _python(_deserialize(v)) for k, v in item.items()}


def catalog_rows(cfg: LakeConfig, clients: Clients, *, team: str | None = None, dataset: str | None = None,
                 uri: str | None = None) -> list[dict]:
    table = lake_resources(cfg, clients).catalog_table
    ddb = clients.client("dynamodb")
    if uri:
        item = ddb.get_item(TableName=table, Key={"id": {"S": uri}}, ConsistentRead=True).get("Item")
        return [_plain(item)] if item else []
    rows = []
    for page in ddb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        rows.extend(_plain(i) for i in page["Items"])
    rows = [r for r in rows if (not team or r.get("team") == team) and (not dataset or r.get("dataset") == dataset)]
    return sorted(rows, key=lambda r: r.get("updated_at", ""), reverse=True)


def wait_for_rows(cfg: LakeConfig, clients: Clients, objects: list[Ingested], timeout: float = 30.0,
                  sleep=time.sleep, clock=time.monotonic) -> dict[str, dict | None]:
    """Event delivery is asynchronous: poll until each object's row shows this very upload (its etag)."""
    deadline = clock() + timeout
    found: dict[str, dict | None] = {o.uri: None for o in objects}
    while True:
        for obj in objects:
            if found[obj.uri] is None:
                rows = catalog_rows(cfg, clients, uri=obj.uri)
                if rows and rows[0].get("etag", "").strip('"') == obj.etag and rows[0].get("status") != "DELETED":
                    found[obj.uri] = rows[0]
        if all(found.values()) or clock() >= deadline:
            return found
        sleep(0.25)


@dataclass(frozen=True)
class Tracked:
    ingested: Ingested
    row: dict | None


def ingest_and_track(cfg: LakeConfig, clients: Clients, files: list[Path], team: str, dataset: str,
                     wait: bool = True, timeout: float = 30.0) -> list[Tracked]:
    done = ingest_files(cfg, clients, files, team, dataset)
    if not wait:
        return [Tracked(i, None) for i in done]
    rows = wait_for_rows(cfg, clients, done, timeout=timeout)
    return [Tracked(i, rows[i.uri]) for i in done]
