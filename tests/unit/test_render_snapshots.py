"""Rendered templates equal their stored snapshots (regenerate with scripts/update_snapshots.py)."""
from __future__ import annotations

import difflib

import pytest

from tests.snapshots import CASES, SNAPSHOT_DIR, render_case


@pytest.mark.parametrize("file_name", sorted(CASES))
def test_rendered_template_matches_snapshot(file_name):
    path = SNAPSHOT_DIR / file_name
    assert path.exists(), f"{path} missing: run scripts/update_snapshots.py"
    expected = path.read_text(encoding="utf-8")
    actual = render_case(file_name)
    if actual != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True),
                actual.splitlines(keepends=True),
                fromfile=f"tests/snapshots/{file_name} (stored)",
                tofile=f"{file_name} (rendered now)",
            )
        )
        pytest.fail(
            f"rendered {file_name} differs from its snapshot; if the change is intended run "
            f"`.venv/bin/python scripts/update_snapshots.py` and review the diff:\n{diff}",
            pytrace=False,
        )
