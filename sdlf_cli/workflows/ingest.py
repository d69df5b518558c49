"""Puts files into the raw bucket under `<team>/<dataset>/` and reads their catalog rows back."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from sdlf_cli.errors import UsageError
from sdlf_cli.lake import Lake
from sdlf_cli.results import Listing


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


def check_files(files: list[Path]) -> None:
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise UsageError("no such file: " + ", ".join(missing))


def ingest_files(lake: Lake, files: list[Path], team: str, dataset: str) -> list[Ingested]:
    check_files(files)
    bucket = lake.registry.raw_bucket
    done = []
    for path in files:
        key = f"{team}/{dataset}/{path.name}"
        put = lake.storage.put_file(bucket, key, path)
        done.append(Ingested(str(path), bucket, key, put.etag, put.version_id, path.stat().st_size))
    return done


class CatalogRows(Listing):
    key = "rows"


def catalog_rows(lake: Lake, *, team: str | None = None, dataset: str | None = None,
                 uri: str | None = None) -> CatalogRows:
    table = lake.registry.catalog_table
    if uri:
        row = lake.tables.get(table, uri)
        return CatalogRows([row] if row else [])
    rows = [r for r in lake.tables.scan(table)
            if (not team or r.get("team") == team) and (not dataset or r.get("dataset") == dataset)]
    return CatalogRows(sorted(rows, key=lambda r: r.get("updated_at", ""), reverse=True))


def wait_for_rows(lake: Lake, objects: list[Ingested], timeout: float = 30.0,
                  sleep=time.sleep, clock=time.monotonic) -> dict[str, dict | None]:
    """Event delivery is asynchronous: poll until each object's row shows this very upload (its etag)."""
    deadline = clock() + timeout
    found: dict[str, dict | None] = {o.uri: None for o in objects}
    while True:
        for obj in objects:
            if found[obj.uri] is None:
                rows = catalog_rows(lake, uri=obj.uri)
                if rows and rows[0].get("etag", "").strip('"') == obj.etag and rows[0].get("status") != "DELETED":
                    found[obj.uri] = rows[0]
        if all(found.values()) or clock() >= deadline:
            return found
        sleep(0.25)


@dataclass(frozen=True)
class Tracked:
    ingested: Ingested
    row: dict | None

    def to_dict(self) -> dict:
        return {"uri": self.ingested.uri, "row": self.row}


class Ingestion(Listing):
    key = "objects"


def ingest_and_track(lake: Lake, files: list[Path], team: str, dataset: str,
                     wait: bool = True, timeout: float = 30.0) -> Ingestion:
    done = ingest_files(lake, files, team, dataset)
    if not wait:
        return Ingestion(Tracked(i, None) for i in done)
    rows = wait_for_rows(lake, done, timeout=timeout)
    return Ingestion(Tracked(i, rows[i.uri]) for i in done)
