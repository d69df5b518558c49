"""Text for the `sdlf cicd` results, registered with `ui.text.render` (JSON is each result's `to_dict()`)."""
from __future__ import annotations

import sys
from typing import IO

from sdlf_cli.ui.text import render
from sdlf_cli.workflows.cicd import Decision, PipelineStatus, PlanDigest, PushResult, Report


def _fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def action_line(action) -> str:
    line = f"{action.stage:16} {action.action:9} {action.status:11} {_fmt_duration(action.duration)}".rstrip()
    if action.action == "Plan" and action.message:
        line += f"\n    {action.message}"
    if action.waiting:
        line += f"\n    waiting for approval: {action.message or '(no plan summary)'}"
        line += f"\n    run `sdlf cicd approve --env {action.stage.removeprefix('Deploy-')}` (or reject)"
    if action.root_cause:
        line += f"\n    root cause: {action.root_cause}"
    if action.status == "Failed" and action.log:
        line += f"\n    log: {action.log}"
    return line


def pipeline_status(status, out: IO[str] | None = None) -> None:
    out = out or sys.stdout
    if status.execution_id is None:
        print(f"{status.pipeline}: never run", file=out)
        return
    revision = f" (revision {status.revision})" if status.revision else ""
    print(f"{status.pipeline}: execution {status.execution_id} {status.status}{revision}", file=out)
    for action in status.actions:
        print("  " + action_line(action).replace("\n", "\n  "), file=out)


def push(result, out: IO[str] | None = None) -> None:
    out = out or sys.stdout
    print(f"pushed {result.files} files ({result.digest[:12]}) to {result.source}"
          + (f" version {result.version}" if result.version else ""), file=out)
    print(f"{result.pipeline}: started execution {result.execution_id}", file=out)
    if result.status is not None:
        pipeline_status(result.status, out)


def decision(result, out: IO[str] | None = None) -> None:
    verb = "approved" if result.approved else "rejected"
    print(f"{result.pipeline}: {verb} the promotion to {result.stage}", file=out or sys.stdout)


def report(result, out: IO[str] | None = None) -> None:
    out = out or sys.stdout
    for line in result.lines:
        print(line, file=out)
    if result.succeeded:
        print(f"{result.action}: succeeded", file=out)
        return
    print(f"ROOT CAUSE: {result.root_cause}", file=out)
    if result.published:
        print(f"published to the lake topic (message {result.published})", file=out)
    elif result.publish_error:
        print(f"could not publish to the lake topic: {result.publish_error}", file=out)


def plan_digest(digest, out: IO[str] | None = None) -> None:
    print(digest.message, file=out or sys.stdout)


render.register(PipelineStatus, lambda r: pipeline_status(r))
render.register(PushResult, lambda r: push(r))
render.register(Decision, lambda r: decision(r))
render.register(Report, lambda r: report(r))
render.register(PlanDigest, lambda r: plan_digest(r))
