#!/usr/bin/env python
"""Regenerate tests/snapshots/*.yaml from the current templates.

Run after an intended template change, then review `git diff tests/snapshots/` like any code change:
    .venv/bin/python scripts/update_snapshots.py
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.snapshots import CASES, SNAPSHOT_DIR, render_case  # noqa: E402
from tests.snapshots.layers import LAYER_CASES, render_layer_case  # noqa: E402


def main() -> int:
    for file_name in CASES:
        path = SNAPSHOT_DIR / file_name
        body = render_case(file_name)
        old = path.read_text(encoding="utf-8") if path.exists() else None
        if old == body:
            print(f"unchanged {path.relative_to(ROOT)}")
            continue
        path.write_text(body, encoding="utf-8")
        print(f"{'updated' if old is not None else 'created'} {path.relative_to(ROOT)}")
    # Team, pipeline and dataset layers: one unit (team, pipeline, dataset) per snapshot.
    for file_name in LAYER_CASES:
        path = SNAPSHOT_DIR / file_name
        body = render_layer_case(file_name)
        old = path.read_text(encoding="utf-8") if path.exists() else None
        if old == body:
            print(f"unchanged {path.relative_to(ROOT)}")
            continue
        path.write_text(body, encoding="utf-8")
        print(f"{'updated' if old is not None else 'created'} {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
