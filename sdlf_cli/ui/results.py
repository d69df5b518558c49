"""Tables of finished stack results: summary, outputs and planned changes."""
from __future__ import annotations

from collections.abc import Iterable

from rich.table import Table
from rich.text import Text

from sdlf_cli.deploy.model import StackResult
from sdlf_cli.ui.reporters import STATUS_STYLES, format_elapsed


def results_table(results: Iterable[StackResult], title: str = "stacks") -> Table:
    table = Table(title=title)
    table.add_column("stack", no_wrap=True)
    table.add_column("status")
    table.add_column("duration", justify="right")
    table.add_column("message", overflow="fold")
    for result in results:
        message = result.message
        if result.failure is not None and str(result.failure) not in message:
            message = f"{message}\nroot cause: {result.failure}" if message else f"root cause: {result.failure}"
        table.add_row(
            result.name, Text(result.status, style=STATUS_STYLES.get(result.status, "")),
            format_elapsed(result.duration), message,
        )
    return table


def outputs_table(results: Iterable[StackResult], title: str = "outputs") -> Table:
    table = Table(title=title)
    table.add_column("stack", no_wrap=True)
    table.add_column("output")
    table.add_column("value", overflow="fold")
    for result in results:
        for key, value in sorted(result.outputs.items()):
            table.add_row(result.name, key, value)
    return table


def changes_table(results: Iterable[StackResult], title: str = "planned changes") -> Table:
    """One row per resource change; destructive (remove/replace) in red, IAM changes flagged."""
    table = Table(title=title)
    table.add_column("stack", no_wrap=True)
    table.add_column("action")
    table.add_column("logical id")
    table.add_column("type")
    table.add_column("replacement")
    table.add_column("flags")
    for result in results:
        for change in result.changes:
            flags = [f for f, on in (("DESTRUCTIVE", change.destructive), ("IAM", change.is_iam)) if on]
            if change.may_replace:
                flags.append("MAY REPLACE")
            if change.data_at_risk:
                flags.append("DATA")
            if change.recreates:
                flags.append("(" + ", ".join(change.recreates) + ")")
            style = "bold red" if change.destructive else ("yellow" if change.is_iam or change.may_replace else "")
            table.add_row(
                result.name, Text(change.action, style=style), change.logical_id, change.resource_type,
                change.replacement or "", Text(" ".join(flags), style=style),
            )
    return table
