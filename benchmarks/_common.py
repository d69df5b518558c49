"""Helpers shared by the benchmark scripts (not a test module; nothing here asserts on time)."""
from __future__ import annotations

import math
import os
import platform
import shutil
import statistics
import sys
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYER = ROOT / "lambda" / "layers" / "datalake" / "python"

# The benchmarks only ever talk to the in-process emulator (127.0.0.1) or moto's mock_aws.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.pop("AWS_PROFILE", None)

for path in (str(ROOT), str(LAYER)):
    if path not in sys.path:
        sys.path.insert(0, path)


def header(title: str) -> None:
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    cpu = os.cpu_count()
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        affinity = cpu
    print(f"# {title}")
    print(f"# {now} | {platform.python_implementation()} {platform.python_version()} | "
          f"{platform.machine()} | cpus={cpu} (usable {affinity}) | {platform.system()} {platform.release()}")
    print()


def copy_project(dest: Path, parts=("templates", "lambda", "glue")) -> Path:
    for part in parts:
        shutil.copytree(ROOT / part, dest / part, ignore=shutil.ignore_patterns("__pycache__", ".sdlf"))
    return dest


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b > 0 else "n/a"


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); fine for the small samples here."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


def summary(values: list[float]) -> str:
    return (f"p50 {pct(values, 50):.3f} s  p95 {pct(values, 95):.3f} s  "
            f"min {min(values):.3f} s  max {max(values):.3f} s  mean {statistics.fmean(values):.3f} s")


def table(rows: list[list[str]], align: str | None = None) -> None:
    """A plain fixed-width table (first row is the header)."""
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    align = align or "l" + "r" * (len(widths) - 1)
    for n, row in enumerate(rows):
        cells = [str(c).ljust(w) if a == "l" else str(c).rjust(w) for c, w, a in zip(row, widths, align)]
        print("  ".join(cells).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))
