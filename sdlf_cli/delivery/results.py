"""Reading what `sdlf lint|plan|deploy --output json` wrote, for the pipeline's builds: the root cause of a
failure (the first failing resource and its reason, or the first lint finding) and the plan summary an
approval shows. Pure functions over the JSON; nothing here calls AWS.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

# The line `sdlf cicd report` prints into a failed build's log; `sdlf cicd status` looks for it.
ROOT_CAUSE_MARK = "ROOT CAUSE: "
# CodePipeline's limit on an approval's message (CustomData).
APPROVAL_MESSAGE_LIMIT = 500

# Resources whose replacement or removal loses data (plans state it per change as `data_bearing`; this covers
# results written before they did).
DATA_TYPES = frozenset({
    "AWS::S3::Bucket", "AWS::DynamoDB::Table", "AWS::KMS::Key", "AWS::Glue::Database", "AWS::Glue::Table",
    "AWS::SQS::Queue", "AWS::Logs::LogGroup",
})


def read_result(path: Path) -> dict | None:
    """The JSON a command wrote, or None when it wrote nothing (it failed before its result) or garbage."""
    try:
        text = Path(path).read_text(encoding="utf-8").strip()
    except OSError:
        return None
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def root_cause(result: dict) -> str | None:
    """The first problem a result reports (None when it reports none)."""
    findings = result.get("findings")
    if findings:
        first = findings[0]
        more = f" (and {len(findings) - 1} more)" if len(findings) > 1 else ""
        return f"{first.get('template')}:{first.get('line')} {first.get('rule')} {first.get('message')}{more}"
    for stack in result.get("results") or []:
        if stack.get("status") != "failed":
            continue
        failure = stack.get("failure")
        if failure:
            return (f"{stack.get('name')}: {failure.get('logical_id')} ({failure.get('resource_type')}) "
                    f"{failure.get('status')}: {failure.get('reason')}")
        return f"{stack.get('name')}: {stack.get('message') or 'failed'}"
    if result.get("ok") is False:
        skipped = [s.get("name") for s in result.get("results") or [] if s.get("status") == "skipped"]
        return f"not deployed: {', '.join(skipped)}" if skipped else "the command reported a failure"
    return None


def summary_lines(result: dict) -> list[str]:
    """One line per stack of a plan or deploy result (what the build log shows beside the JSON)."""
    lines = []
    for stack in result.get("results") or []:
        lines.append(f"{stack.get('status', '?'):9} {stack.get('name')}  {stack.get('message') or ''}".rstrip())
    for finding in result.get("findings") or []:
        lines.append(f"{finding.get('template')}:{finding.get('line')} {finding.get('rule')} {finding.get('message')}")
    return lines


@dataclass
class PlanSummary:
    env: str
    add: list[str] = field(default_factory=list)
    change: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    # Deployed stacks of the environment that its configuration no longer declares: the pipeline never deletes
    # them (`sdlf destroy` does), but the approver must know they are there.
    remove: list[str] = field(default_factory=list)
    destructive: list[str] = field(default_factory=list)  # "stack: LogicalId (Type) replaced|removed"
    iam: dict[str, int] = field(default_factory=dict)  # stack -> IAM changes

    @property
    def loud(self) -> list[str]:
        out = []
        if self.destructive:
            out.append("!! DATA AT RISK: " + "; ".join(self.destructive))
        if self.iam:
            out.append("!! IAM CHANGES: " + ", ".join(f"{s} ({n})" for s, n in sorted(self.iam.items())))
        if self.failed:
            out.append("!! PLAN FAILED: " + ", ".join(self.failed))
        if self.remove:
            out.append("!! STACKS TO REMOVE (not in the configuration; `sdlf destroy` deletes them, this pipeline "
                       "does not): " + ", ".join(self.remove))
        return out

    def message(self, limit: int = APPROVAL_MESSAGE_LIMIT) -> str:
        """One paragraph for the approval: counts first, then the warnings; cut to `limit` characters."""
        counts = (f"{self.env}: {len(self.add)} stack(s) to add, {len(self.change)} to change, "
                  f"{len(self.remove)} to remove, {len(self.unchanged)} unchanged.")
        text = " ".join([counts, *self.loud])
        return text if len(text) <= limit else text[: limit - 1] + "…"


def plan_summary(env: str, result: dict, status: dict | None = None) -> tuple[PlanSummary, str]:
    """(summary, full text plan) of `sdlf plan --output json`, with the stacks to remove that
    `sdlf status --output json` (`status`) finds deployed but no longer declared."""
    from sdlf_cli.workflows.status import ORPHAN

    summary = PlanSummary(env)
    lines = [f"Plan of environment {env}", ""]
    for stack in (status or {}).get("stacks") or []:
        if stack.get("drift") == ORPHAN:
            summary.remove.append(stack.get("name", "?"))
            lines.append(f"{stack.get('name')}: to remove ({ORPHAN}) — {stack.get('next_step') or 'sdlf destroy'}")
    for stack in result.get("results") or []:
        name, status = stack.get("name", "?"), stack.get("status")
        changes = stack.get("changes") or []
        if status == "unchanged":
            summary.unchanged.append(name)
        elif status == "failed":
            summary.failed.append(name)
        elif changes and all(c.get("action") == "Add" for c in changes) and "create" in (stack.get("message") or ""):
            summary.add.append(name)
        else:
            summary.change.append(name)
        lines.append(f"{name}: {status} {stack.get('message') or ''}".rstrip())
        for change in changes:
            flags = []
            data = change.get("data_bearing", change.get("resource_type") in DATA_TYPES)
            at_risk = change.get("data_at_risk", bool(data and change.get("destructive")))
            if change.get("action") == "Remove":
                what = "removed"
            elif change.get("replacement") == "True":
                what = "replaced"
            else:
                what = "may be replaced"
            if at_risk:
                summary.destructive.append(f"{name}: {change.get('logical_id')} ({change.get('resource_type')}) {what}")
                flags.append(f"DATA {what.upper()}")
            elif change.get("destructive") or change.get("replacement") == "Conditional":
                flags.append(what)
            if change.get("recreates"):
                flags.append("recreated by " + ", ".join(change["recreates"]))
            if change.get("is_iam"):
                summary.iam[name] = summary.iam.get(name, 0) + 1
                flags.append("IAM")
            flag_text = f"  [{', '.join(flags)}]" if flags else ""
            lines.append(f"  {change.get('action', '?'):8} {change.get('logical_id')} ({change.get('resource_type')})"
                         f"{flag_text}")
        if stack.get("failure"):
            lines.append(f"  failed: {root_cause({'results': [stack]})}")
    lines += ["", summary.message(limit=10**9)]
    return summary, "\n".join(lines) + "\n"
