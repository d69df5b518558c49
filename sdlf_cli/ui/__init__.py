"""Terminal output: live view, plain lines, quiet mode, and result rendering."""
from __future__ import annotations

from sdlf_cli.ui.reporters import LiveReporter, PlainReporter, QuietReporter, make_reporter
from sdlf_cli.ui.results import changes_table, exit_code, json_envelope, outputs_table, render_json, results_table

__all__ = [
    "LiveReporter",
    "PlainReporter",
    "QuietReporter",
    "changes_table",
    "exit_code",
    "json_envelope",
    "make_reporter",
    "outputs_table",
    "render_json",
    "results_table",
]
