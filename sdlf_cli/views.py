"""Renders workflow results for people (rich tables) or machines (`--output json`, versioned envelopes)."""
from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

# Piped output (CI logs, files) gets wide tables instead of rich's 80-column default, so ids stay on one line.
_WIDTH = None if sys.stdout.isatty() else 200
_out = Console(highlight=False, soft_wrap=True, width=_WIDTH)
_err = Console(stderr=True, highlight=False, soft_wrap=True, width=_WIDTH)


def _json(payload) -> None:
    sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")


def _table(title: str | None, columns: list[str], rows) -> Table:
    table = Table(title=title, title_justify="left", show_lines=False)
    for c in columns:
        table.add_column(c, overflow="fold")
    for r in rows:
        table.add_row(*("" if v is None else str(v) for v in r))
    return table


def error(message: str) -> None:
    _err.print(f"[bold red]error:[/] {message}", markup=True)


def local_status(status, output: str) -> None:
    data = dataclasses.asdict(status)
    if output == "json":
        return _json({"version": 1, **data})
    if status.running:
        _out.print(f"emulator running: {status.endpoint_url} (pid {status.pid}, log {status.log_file})")
    else:
        _out.print("emulator not running")


def config_rows(rows, output: str) -> None:
    if output == "json":
        return _json({"version": 1, "values": [{"field": f, "value": v, "origin": o} for f, v, o in rows]})
    _out.print(_table(None, ["field", "value", "from"], rows))


def paths(paths: list[Path], output: str) -> None:
    if output == "json":
        return _json({"version": 1, "written": [str(p) for p in paths]})
    for p in paths:
        _out.print(f"wrote {p}")


def findings(found, output: str) -> None:
    if output == "json":
        return _json({"version": 1, "findings": [dataclasses.asdict(f) for f in found]})
    for f in found:
        _out.print(str(f))
    _out.print("lint: clean" if not found else f"lint: {len(found)} finding(s)")


def package(outcome, output: str) -> None:
    actions = {u.artifact.key: u.action for u in outcome.uploads}
    if output == "json":
        return _json({
            "version": 1,
            "bucket": outcome.bucket,
            "message": outcome.message,
            "artifacts": [
                {"name": a.name, "kind": a.kind, "key": a.key, "sha256": a.sha256, "size": a.size,
                 "action": actions.get(a.key, "built")}
                for a in outcome.artifacts
            ],
        })
    rows = [(a.kind, a.name, a.key, a.size, actions.get(a.key, "built")) for a in outcome.artifacts]
    _out.print(_table(f"artifacts → {outcome.bucket or '(not uploaded)'}", ["kind", "name", "key", "bytes", "action"], rows))
    if outcome.message:
        _out.print(outcome.message)


def deploy_outcome(outcome, output: str) -> None:
    from sdlf_cli.ui import changes_table, outputs_table, results_table

    if output == "json":
        return _json(outcome.to_dict())
    for u in outcome.uploads:
        _out.print(f"artifact {u.artifact.key}: {u.action}")
    _out.print(results_table(outcome.results))
    if any(r.changes and r.status == "planned" for r in outcome.results):
        _out.print(changes_table([r for r in outcome.results if r.status == "planned"]))
    done = [r for r in outcome.results if r.outputs and r.status in ("created", "updated", "unchanged")]
    if done:
        _out.print(outputs_table(done))


CATALOG_COLUMNS = ["id", "status", "stage", "team", "dataset", "size", "etag", "updated_at", "reason"]


def catalog(rows: list[dict], output: str) -> None:
    if output == "json":
        return _json({"version": 1, "rows": rows})
    _out.print(_table("object catalog", CATALOG_COLUMNS, [[r.get(c) for c in CATALOG_COLUMNS] for r in rows]))


def ingested(tracked, output: str) -> None:
    if output == "json":
        return _json({"version": 1, "objects": [{"uri": t.ingested.uri, "row": t.row} for t in tracked]})
    for t in tracked:
        state = t.row.get("status") if t.row else "no catalog row yet"
        _out.print(f"{t.ingested.file} → {t.ingested.uri}: {state}")


def demo_step(step) -> None:
    mark = "[green]✓[/]" if step.ok else "[bold red]✗[/]"
    _out.print(f"{mark} {step.name:<9} {step.seconds:6.1f}s  {step.detail}", markup=True)


def demo(result, output: str) -> None:
    if output == "json":
        return _json(result.to_dict())
    if result.query is not None:
        _out.print(f"\n[bold]query[/] {result.query_sql}", markup=True)
        query_result(result.query, "text")
    if result.quality:
        _out.print()
        quality(result.quality[:1], "text")
    for row in result.failed_objects:
        _out.print(f"\n[bold red]failed[/] {row['id']}\n  reason: {row.get('reason')}", markup=True)
    _out.print(f"\nemulator: {result.endpoint_url}  (try: aws --endpoint-url {result.endpoint_url} s3 ls; "
               "sdlf --local runs; sdlf local down)")
    _out.print(f"demo finished in {result.seconds:.1f}s: {'ok' if result.ok else 'FAILED'}")


RUN_COLUMNS = ["id", "dataset_id", "stage", "status", "started_at", "duration_ms", "objects_in", "objects_out",
               "records_out", "error"]


def runs(rows: list[dict], output: str) -> None:
    if output == "json":
        return _json({"version": 1, "runs": rows})
    _out.print(_table("recent runs", RUN_COLUMNS, [[r.get(c) for c in RUN_COLUMNS] for r in rows]))


def _row_line(row: dict) -> str:
    parts = [row.get("stage") or "?", row["id"], row.get("status") or "?"]
    if row.get("reason"):
        parts.append(f"reason: {row['reason']}")
    if row.get("records") is not None:
        parts.append(f"{row['records']} records")
    return "  ".join(str(p) for p in parts)


def journey(j, output: str) -> None:
    from rich.tree import Tree

    if output == "json":
        return _json(j.to_dict())
    tree = Tree(_row_line(j.row))
    if j.sources:
        branch = tree.add("came from")
        for r in j.sources:
            branch.add(_row_line(r))
    if j.outputs:
        branch = tree.add("became")
        for r in j.outputs:
            branch.add(_row_line(r))
    if j.executions:
        branch = tree.add("executions")
        for e in j.executions:
            line = f"{e['id']}  stage {e.get('stage', '?')}  {e.get('status')}"
            if e.get("duration_ms") is not None:
                line += f"  {e['duration_ms']} ms"
            if e.get("error"):
                line += f"  error: {e['error']}"
            branch.add(line)
    _out.print(tree)


def stage_b_run(run, output: str) -> None:
    if output == "json":
        return _json(run.to_dict())
    if not run.started:
        _out.print(f"no batch started: {run.reason}")
        return
    line = f"batch {run.batch_id}: {run.objects} object(s), execution {run.execution_arn}"
    _out.print(line)
    if run.status:
        _out.print(f"status {run.status} after {run.seconds:.1f}s")
    if run.error:
        error(run.error)


def quality(runs: list[dict], output: str) -> None:
    if output == "json":
        return _json({"version": 1, "runs": runs})
    if not runs:
        _out.print("no data-quality results yet")
        return
    for run in runs:
        title = f"{run.get('id')} batch {run.get('batch_id')} at {run.get('created_at')}: {run.get('status')}"
        rows = [(r.get("rule"), r.get("column"), r.get("severity"), r.get("status"), r.get("observed"),
                 r.get("threshold")) for r in run.get("rules") or []]
        _out.print(_table(title, ["rule", "column", "severity", "status", "observed", "expected"], rows))


def query_result(result, fmt: str) -> None:
    import csv

    if fmt == "json":
        return _json({"version": 1, "engine": result.engine, "columns": result.columns,
                      "rows": [dict(zip(result.columns, row)) for row in result.rows],
                      "seconds": round(result.seconds, 3)})
    if fmt == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(result.columns)
        writer.writerows(result.rows)
        return None
    _out.print(_table(None, result.columns, result.rows))
    _out.print(f"{len(result.rows)} row(s) in {result.seconds:.2f}s ({result.engine})")


DEAD_LETTER_COLUMNS = ["kind", "team", "pipeline", "dataset", "messages", "in flight", "queue"]


def dead_letters(queues, output: str) -> None:
    if output == "json":
        return _json({"version": 1, "queues": [q.to_dict() for q in queues]})
    rows = [(q.kind, q.team, q.pipeline, q.dataset, q.approximate_count, q.in_flight, q.name) for q in queues]
    _out.print(_table("dead-letter queues", DEAD_LETTER_COLUMNS, rows))
    waiting = sum(q.approximate_count for q in queues)
    _out.print(f"{waiting} message(s) waiting" + ("; replay them with `sdlf redrive`" if waiting else ""))


def redrive(result, output: str) -> None:
    if output == "json":
        return _json(result.to_dict())
    verb = "would move" if result.dry_run else "moved"
    rows = [(q.queue.kind, q.queue.name, q.queue.approximate_count, q.moved, len(q.failed), len(q.skipped))
            for q in result.queues]
    _out.print(_table("redrive (dry run)" if result.dry_run else "redrive",
                      ["kind", "dead-letter queue", "waiting", verb, "failed", "skipped"], rows))
    for q in result.queues:
        for m in q.messages:
            if m.action == "would move":
                _out.print(f"would move {m.object or m.message_id} → {m.destination}")
            elif m.action == "skipped":
                _out.print(f"skipped {m.object or m.message_id}: {m.reason}")
            elif m.action == "failed":
                error(f"{m.object or m.message_id}: {m.reason}")
    _out.print(f"{verb} {result.moved}, failed {result.failed}, skipped {result.skipped}"
               + (f" (limit {result.limit})" if result.limit else ""))
    newer, others = sum(q.newer for q in result.queues), sum(q.others for q in result.queues)
    if newer:
        _out.print(f"left {newer} message(s) that arrived during this run (replays that failed again?) "
                   "for the next run: `sdlf dead-letters`")
    if others:
        _out.print(f"left {others} message(s) of other teams or datasets")


STATUS_COLUMNS = ["stack", "layer", "unit", "status", "last updated", "drift", "next step"]


def lake_status(states, output: str) -> None:
    if output == "json":
        return _json({"version": 1, "stacks": [s.to_dict() for s in states]})
    rows = [(s.name, s.layer, s.unit, s.status or "—",
             s.last_updated.strftime("%Y-%m-%d %H:%M:%S") if s.last_updated else "—", s.drift, s.next_step or "—")
            for s in states]
    _out.print(_table("lake status", STATUS_COLUMNS, rows))
    todo = sum(s.needs_action for s in states)
    if states and all(s.status is None for s in states):
        _out.print("nothing of this environment is deployed; `sdlf deploy --all` creates it")
    else:
        _out.print("everything deployed is in sync" if not todo else f"{todo} stack(s) need a step (see next step)")


def destroy_plan(plan, output: str) -> None:
    if output == "json":
        return _json({"version": 1, "stacks": [s.name for s in plan.stacks],
                      "retained": [r.to_dict() for r in plan.retained]})
    rows = [(i, s.name, s.layer, ", ".join(s.depends_on) or "—") for i, s in enumerate(plan.stacks, 1)]
    _out.print(_table(f"stacks to delete (env {plan.env}), children first", ["#", "stack", "layer", "after"], rows))
    verb = "deleted (--include-data)" if plan.include_data else "kept (DeletionPolicy Retain)"
    _out.print(_table(f"data resources {verb}", ["stack", "type", "name"],
                      [(r.stack, r.resource_type, r.physical_id) for r in plan.retained]))


def destroyed(result, output: str) -> None:
    from sdlf_cli.ui import results_table

    if output == "json":
        return _json(result.to_dict())
    if result.dry_run:
        destroy_plan(result.plan, output)
        _out.print(f"dry run: would {result.plan.summary()}; nothing was deleted")
        return None
    if not result.results and not result.retained:
        _out.print(f"nothing to destroy in env '{result.plan.env}'")
        return None
    if result.results:
        _out.print(results_table(result.results, title="destroyed stacks"))
    if result.retained:
        _out.print(_table("retained data", ["stack", "type", "name", "what happened"],
                          [(r.stack, r.resource_type, r.physical_id, r.action) for r in result.retained]))
    if any(r.action == "retained" for r in result.retained):
        _out.print("data was kept; `sdlf destroy --include-data` deletes it (buckets emptied, keys in 7 days)")
