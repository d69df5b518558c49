"""`sdlf runs` and `sdlf trace`: what the pipelines did, read from the executions table and the catalog."""
from __future__ import annotations

from dataclasses import dataclass, field

from sdlf_cli.errors import UsageError
from sdlf_cli.lake import Lake
from sdlf_cli.results import Listing
from sdlf_cli.workflows.ingest import catalog_rows


class Runs(Listing):
    key = "runs"


def recent_runs(lake: Lake, team: str | None = None, dataset: str | None = None, limit: int = 20) -> Runs:
    """Newest first. Executions expire from the table after 30 days (TTL)."""
    runs = lake.tables.scan(lake.registry.table("executions"))

    def wanted(run: dict) -> bool:
        if run.get("record"):
            return False  # not an execution: stage B's batch lease of a dataset shares the table
        run_team, _, run_dataset = str(run.get("dataset_id", "")).partition("/")
        return (not team or run_team == team) and (not dataset or run_dataset == dataset)

    runs = [r for r in runs if wanted(r)]
    return Runs(sorted(runs, key=lambda r: r.get("started_at", ""), reverse=True)[:limit])


@dataclass
class Journey:
    """One object and everything linked to it: where it came from, what it became, which runs touched it."""

    uri: str
    row: dict
    sources: list[dict] = field(default_factory=list)
    outputs: list[dict] = field(default_factory=list)
    executions: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"uri": self.uri, "row": self.row, "sources": self.sources,
                "outputs": self.outputs, "executions": self.executions}


def check_uri(uri: str) -> None:
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise UsageError(f"expected an object as s3://BUCKET/KEY, got {uri!r}")


def trace_object(lake: Lake, uri: str) -> Journey:
    check_uri(uri)
    rows = catalog_rows(lake, uri=uri)
    if not rows:
        raise UsageError(f"{uri} is not in the object catalog (was it uploaded to one of the lake's buckets?)")
    row = rows[0]
    everything = catalog_rows(lake)
    by_id = {r["id"]: r for r in everything}
    journey = Journey(uri, row)
    journey.sources = _walk(row, by_id, lambda r: r.get("lineage") or [])
    children: dict[str, list[str]] = {}
    for other in everything:
        for source in other.get("lineage") or []:
            children.setdefault(source, []).append(other["id"])
    journey.outputs = _walk(row, by_id, lambda r: children.get(r["id"], []))
    names = {r.get("execution") for r in [row, *journey.sources, *journey.outputs] if r.get("execution")}
    table = lake.registry.table("executions")
    for name in sorted(names):
        journey.executions.append(lake.tables.get(table, name) or {"id": name, "status": "UNKNOWN (expired?)"})
    return journey


def _walk(start: dict, by_id: dict[str, dict], next_ids) -> list[dict]:
    seen, order, frontier = {start["id"]}, [], list(next_ids(start))
    while frontier:
        ident = frontier.pop(0)
        if ident in seen:
            continue
        seen.add(ident)
        row = by_id.get(ident, {"id": ident, "status": "NOT IN CATALOG"})
        order.append(row)
        frontier.extend(next_ids(row))
    return order
