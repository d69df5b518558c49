"""Where sdlf keeps what it worked out before: cfn-lint's and checkov's verdicts on templates they judged,
requirements vendored for Lambda layers, compiled Jinja templates.

By default under the project (`.sdlf/cache/`). `SDLF_CACHE_DIR` moves it, so several checkouts of a lake (a CI
runner's jobs, worktrees) share one: every entry is keyed by its content (template text, requirement pins,
template source) and written atomically, so a shared cache answers each of them as its own would.
"""
from __future__ import annotations

import os
from pathlib import Path

CACHE_DIR_VARIABLE = "SDLF_CACHE_DIR"


def cache_dir(root: Path) -> Path:
    """The cache of the project at `root`."""
    configured = os.environ.get(CACHE_DIR_VARIABLE, "").strip()
    return Path(configured).expanduser() if configured else Path(root) / ".sdlf" / "cache"
