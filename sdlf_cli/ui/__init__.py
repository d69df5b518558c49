"""Terminal output: live view and plain lines while stacks change (reporters), result tables (results), every
result's text (text), and the one function that prints a result and picks the exit code (output.emit)."""
from __future__ import annotations

from sdlf_cli.ui.reporters import LiveReporter, PlainReporter, QuietReporter, make_reporter
from sdlf_cli.ui.results import changes_table, outputs_table, results_table

__all__ = [
    "LiveReporter",
    "PlainReporter",
    "QuietReporter",
    "changes_table",
    "make_reporter",
    "outputs_table",
    "results_table",
]
