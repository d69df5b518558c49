"""Text rendering of every workflow result, one function per result type, registered on `render`.

`sdlf_cli.ui.output.emit` calls `render(result)` for `--output text`; JSON comes from the result's own
`to_dict()`. A new command's result gets its text here, as `@render.register(ItsResult)`.
"""
from __future__ import annotations

import csv
import sys
from functools import singledispatch

from rich.console import Console
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from sdlf_cli.config.show import ConfigValues
from sdlf_cli.local.process import EmulatorStatus, ResetResult
from sdlf_cli.ui.results import changes_table, outputs_table, results_table
from sdlf_cli.workflows.audit import AuditResult
from sdlf_cli.workflows.build import Findings, LintOutcome, PackageOutcome, Written
from sdlf_cli.workflows.demo import DemoResult, Step
from sdlf_cli.workflows.deploy import DeployOutcome
from sdlf_cli.workflows.destroy import DestroyPlan, DestroyResult
from sdlf_cli.workflows.ingest import CatalogRows, Ingestion
from sdlf_cli.workflows.observe import Journey, Runs
from sdlf_cli.workflows.query import QueryResult
from sdlf_cli.workflows.redrive import DeadLetterQueues, RedriveResult
from sdlf_cli.workflows.stage_b import QualityRuns, StageBRun
from sdlf_cli.workflows.status import LakeStatus

# Piped output (CI logs, files) gets wide tables instead of rich's 80-column default, so ids stay on one line.
_WIDTH = None if sys.stdout.isatty() else 200
_out = Console(highlight=False, soft_wrap=True, width=_WIDTH)
_err = Console(stderr=True, highlight=False, soft_wrap=True, width=_WIDTH)


def _table(title: str | None, columns: list[str], rows) -> Table:
    table = Table(title=title, title_justify="left", show_lines=False)
    for c in columns:
        table.add_column(c, overflow="fold")
    for r in rows:
        # Cells are data, not markup: a value such as "[ingestion_date]" must print as written.
        table.add_row(*(Text("" if v is None else str(v)) for v in r))
    return table


def error(message: str) -> None:
    _err.print(f"[bold red]error:[/] {message}", markup=True)


@singledispatch
def render(result) -> None:
    raise TypeError(f"no text rendering for {type(result).__name__}")


@render.register
def _(status: EmulatorStatus) -> None:
    if status.running:
        _out.print(f"emulator running: {status.endpoint_url} (pid {status.pid}, log {status.log_file})")
    elif status.stopped is not None:
        _out.print(f"emulator stopped (pid {status.stopped})")
    else:
        _out.print("emulator not running")
    if status.saved_state:
        _out.print(status.saved_state)


@render.register
def _(reset: ResetResult) -> None:
    _out.print(reset.summary)
    for name in reset.removed:
        _out.print(f"  removed {name}")
    if reset.restarted is not None:
        render(reset.restarted)


@render.register
def _(rows: ConfigValues) -> None:
    _out.print(_table(None, ["field", "value", "from"], rows))


@render.register
def _(paths: Written) -> None:
    for p in paths:
        _out.print(f"wrote {p}")


@render.register
def _(found: Findings) -> None:
    for f in found:
        _out.print(str(f))
    _out.print("lint: clean" if not found else f"lint: {len(found)} finding(s)")


@render.register
def _(outcome: LintOutcome) -> None:
    for f in outcome.findings:
        _out.print(str(f))
    if outcome.show_skips:
        for s in outcome.skips:
            _out.print(f"skipped {s}")
    verdict = "clean" if outcome.ok else f"{len(outcome.findings)} finding(s)"
    hint = "" if outcome.show_skips or not outcome.skips else " (--show-skips lists them with their reasons)"
    _out.print(f"lint: {verdict}; checkov: {outcome.passed_checks} check(s) passed, "
               f"{len(outcome.skips)} skipped with a written reason{hint}")


@render.register
def _(outcome: PackageOutcome) -> None:
    actions = outcome.actions()
    rows = [(a.kind, a.name, a.key, a.size, actions.get(a.key, "built")) for a in outcome.artifacts]
    _out.print(_table(f"artifacts → {outcome.bucket or '(not uploaded)'}", ["kind", "name", "key", "bytes", "action"], rows))
    if outcome.message:
        _out.print(outcome.message)


@render.register
def _(outcome: DeployOutcome) -> None:
    for u in outcome.uploads:
        _out.print(f"artifact {u.artifact.key}: {u.action}")
    _out.print(results_table(outcome.results))
    if any(r.changes and r.status == "planned" for r in outcome.results):
        _out.print(changes_table([r for r in outcome.results if r.status == "planned"]))
    done = [r for r in outcome.results if r.outputs and r.status in ("created", "updated", "unchanged")]
    if done:
        _out.print(outputs_table(done))


CATALOG_COLUMNS = ["id", "status", "stage", "team", "dataset", "size", "etag", "updated_at", "reason"]


@render.register
def _(rows: CatalogRows) -> None:
    _out.print(_table("object catalog", CATALOG_COLUMNS, [[r.get(c) for c in CATALOG_COLUMNS] for r in rows]))


@render.register
def _(tracked: Ingestion) -> None:
    for t in tracked:
        state = t.row.get("status") if t.row else "no catalog row yet"
        _out.print(f"{t.ingested.file} → {t.ingested.uri}: {state}")


def demo_step(step: Step) -> None:
    mark = "[green]✓[/]" if step.ok else "[bold red]✗[/]"
    _out.print(f"{mark} {step.name:<9} {step.seconds:6.1f}s  {step.detail}", markup=True)


@render.register
def _(result: DemoResult) -> None:
    if result.query is not None:
        _out.print(f"\n[bold]query[/] {result.query_sql}", markup=True)
        render(result.query)
    if result.quality:
        _out.print()
        render(QualityRuns(result.quality[:1]))
    for row in result.failed_objects:
        _out.print(f"\n[bold red]failed[/] {row['id']}\n  reason: {row.get('reason')}", markup=True)
    _out.print(f"\nemulator: {result.endpoint_url}  (try: aws --endpoint-url {result.endpoint_url} s3 ls; "
               "sdlf --local runs; sdlf local down)")
    _out.print(f"demo finished in {result.seconds:.1f}s: {'ok' if result.ok else 'FAILED'}")


RUN_COLUMNS = ["id", "dataset_id", "stage", "status", "started_at", "duration_ms", "objects_in", "objects_out",
               "records_out", "error"]


@render.register
def _(rows: Runs) -> None:
    _out.print(_table("recent runs", RUN_COLUMNS, [[r.get(c) for c in RUN_COLUMNS] for r in rows]))


def _row_line(row: dict) -> str:
    parts = [row.get("stage") or "?", row["id"], row.get("status") or "?"]
    if row.get("reason"):
        parts.append(f"reason: {row['reason']}")
    if row.get("records") is not None:
        parts.append(f"{row['records']} records")
    return "  ".join(str(p) for p in parts)


@render.register
def _(j: Journey) -> None:
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


@render.register
def _(run: StageBRun) -> None:
    for waited in run.waited_for:
        _out.print(f"waited for the dataset's running batch {waited.rsplit(':', 1)[-1]} first")
    if not run.started:
        _out.print(f"no batch started: {run.reason}")
        return
    line = f"batch {run.batch_id}: {run.objects} object(s), execution {run.execution_arn}"
    _out.print(line)
    if run.status:
        _out.print(f"status {run.status} after {run.seconds:.1f}s")
    for rejected in run.rejected:
        # The reason quotes the data: printed as text, never as rich markup.
        _err.print(Text.assemble(("rejected: ", "bold yellow"), f"{rejected['uri']}: {rejected.get('reason', '')} "
                                 "(FAILED, waiting in the stage-B DLQ: fix it, then sdlf redrive --stage b)"))
    if run.error:
        error(run.error)


@render.register
def _(runs: QualityRuns) -> None:
    if not runs:
        _out.print("no data-quality results yet")
        return
    for run in runs:
        title = f"{run.get('id')} batch {run.get('batch_id')} at {run.get('created_at')}: {run.get('status')}"
        rows = [(r.get("rule"), r.get("column"), r.get("severity"), r.get("status"), r.get("observed"),
                 r.get("threshold")) for r in run.get("rules") or []]
        _out.print(_table(title, ["rule", "column", "severity", "status", "observed", "expected"], rows))


def query_csv(result: QueryResult) -> None:
    writer = csv.writer(sys.stdout)
    writer.writerow(result.columns)
    writer.writerows(result.rows)


@render.register
def _(result: QueryResult) -> None:
    _out.print(_table(None, result.columns, result.rows))
    _out.print(f"{len(result.rows)} row(s) in {result.seconds:.2f}s ({result.engine})")


DEAD_LETTER_COLUMNS = ["kind", "team", "pipeline", "dataset", "messages", "in flight", "queue"]


@render.register
def _(queues: DeadLetterQueues) -> None:
    rows = [(q.kind, q.team, q.pipeline, q.dataset, q.approximate_count, q.in_flight, q.name) for q in queues]
    _out.print(_table("dead-letter queues", DEAD_LETTER_COLUMNS, rows))
    waiting = sum(q.approximate_count for q in queues)
    _out.print(f"{waiting} message(s) waiting" + ("; replay them with `sdlf redrive`" if waiting else ""))


@render.register
def _(result: RedriveResult) -> None:
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


@render.register
def _(states: LakeStatus) -> None:
    rows = [(s.name, s.layer, s.unit, s.status or "—",
             s.last_updated.strftime("%Y-%m-%d %H:%M:%S") if s.last_updated else "—", s.drift, s.next_step or "—")
            for s in states]
    _out.print(_table("lake status", STATUS_COLUMNS, rows))
    todo = sum(s.needs_action for s in states)
    if states and all(s.status is None for s in states):
        _out.print("nothing of this environment is deployed; `sdlf deploy --all` creates it")
    else:
        _out.print("everything deployed is in sync" if not todo else f"{todo} stack(s) need a step (see next step)")


@render.register
def destroy_plan(plan: DestroyPlan) -> None:
    rows = [(i, s.name, s.layer, ", ".join(s.depends_on) or "—") for i, s in enumerate(plan.stacks, 1)]
    _out.print(_table(f"stacks to delete (env {plan.env}), children first", ["#", "stack", "layer", "after"], rows))
    verb = "deleted (--include-data)" if plan.include_data else "kept (DeletionPolicy Retain)"
    _out.print(_table(f"data resources {verb}", ["stack", "type", "name"],
                      [(r.stack, r.resource_type, r.physical_id) for r in plan.retained]))


@render.register
def _(result: DestroyResult) -> None:
    if result.dry_run:
        destroy_plan(result.plan)
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


@render.register
def _(result: AuditResult) -> None:
    columns = ["dataset", "processed", "failed", "in progress", "superseded", "deleted", "lost", "duplicated",
               "rows", "records"]
    rows = [(f"{d.team}/{d.dataset}" if d.team else d.dataset, d.count("PROCESSED"), d.count("FAILED"),
             d.count("IN_PROGRESS"), d.count("SUPERSEDED"), d.count("DELETED"), d.lost, d.duplicated, d.rows,
             d.records) for d in result.datasets]
    _out.print(_table("audit", columns, rows))
    for d in result.datasets:
        for o in d.objects:
            if o.state == "LOST":
                error(f"lost: {o.uri}{f' (version {o.version_id})' if o.version_id else ''}: {o.detail}")
            elif o.state == "FAILED":
                _out.print(f"failed: {o.uri}: {o.detail} (replay it with `sdlf redrive`)")
        for dup in d.duplicates:
            error(f"duplicated: {dup.uri}: {dup.detail}")
        for m in d.batch_mismatches:
            error(f"batch {m['batch_id']} of {d.team}/{d.dataset}: {m['rows']} analytics rows for {m['records']} "
                  f"input records")
    waiting = [o for d in result.datasets for o in d.objects if o.state == "IN_PROGRESS"]
    if waiting:
        oldest = max((o.age_seconds or 0 for o in waiting), default=0)
        _out.print(f"{len(waiting)} object(s) in progress, the oldest for {oldest:.0f} s")
    for note in result.notes:
        _out.print(note)
    verdict = "ok" if result.ok else "NOT OK"
    _out.print(f"audit {verdict}: {result.objects} object version(s), lost {result.lost}, duplicated {result.duplicated}")


# The delivery pipeline's results (`sdlf cicd`) register their renderings in their own module.
from sdlf_cli.ui import delivery as _delivery  # noqa: E402,F401  (imported for its registrations)
