"""Helpers shared by the benchmark scripts (not a test module; nothing here asserts on time)."""
from __future__ import annotations

import collections
import math
import os
import platform
import shutil
import statistics
import sys
import threading
import time
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


def process_tree_cpu(root: int | None = None) -> dict[str, float]:
    """User + system CPU seconds used so far by a process ("emulator": this one) and every live descendant
    (Lambda workers by function name, from their working directory; other subprocesses by pid), read from
    /proc. The difference of two readings is what the work in between cost in CPU, which, unlike wall time,
    other load on a shared machine hardly inflates."""
    tick = os.sysconf("SC_CLK_TCK")
    root = root or os.getpid()
    pending, out, seen = [root], {}, set()
    while pending:
        pid = pending.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            cpu = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
            if pid == root:
                name = "emulator"
            else:
                cwd = os.readlink(f"/proc/{pid}/cwd")
                name = f"lambda {cwd.split('/functions/')[1].split('/')[0]}" if "/functions/" in cwd else f"pid {pid}"
            out[name] = out.get(name, 0.0) + cpu
            for task in Path(f"/proc/{pid}/task").iterdir():
                pending.extend(int(c) for c in (task / "children").read_text().split())
        except (OSError, IndexError, ValueError):
            continue  # exited meanwhile
    return out


def process_tree_cpu_seconds(root: int | None = None) -> float:
    return sum(process_tree_cpu(root).values())


def table(rows: list[list[str]], align: str | None = None) -> None:
    """A plain fixed-width table (first row is the header)."""
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    align = align or "l" + "r" * (len(widths) - 1)
    for n, row in enumerate(rows):
        cells = [str(c).ljust(w) if a == "l" else str(c).rjust(w) for c, w, a in zip(row, widths, align)]
        print("  ".join(cells).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))


class ThreadSampler:
    """A sampling profile of this process's threads: every `interval` s, each other thread's innermost frame in
    project or moto code (and the call it is in), counted; `stop()` prints the most frequent. Lambda and Glue code
    runs in worker processes and shows up as the threads waiting on them."""

    KEEP = ("sdlf_cli", "moto", "sdlf_datalake", "werkzeug", "botocore")

    def __init__(self, interval: float = 0.01) -> None:
        self.interval = interval
        self.samples: collections.Counter = collections.Counter()
        self.threads: collections.Counter = collections.Counter()
        self.ticks = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        me = threading.get_ident()
        names = {}
        while not self._done.wait(self.interval):
            self.ticks += 1
            names.update({t.ident: t.name for t in threading.enumerate()})
            for ident, frame in sys._current_frames().items():
                if ident in (me, threading.main_thread().ident):
                    continue
                where = self._where(frame)
                if where is None:
                    continue
                self.samples[where] += 1
                self.threads[names.get(ident, "?").rstrip("0123456789-_ ")] += 1

    def _where(self, frame) -> str | None:
        leaf = f"{Path(frame.f_code.co_filename).name}:{frame.f_code.co_name}"
        while frame is not None:
            path = frame.f_code.co_filename
            if any(f"/{k}/" in path for k in self.KEEP):
                if leaf.startswith(("threading.py:wait", "selectors.py:select", "socket.py:")) or "wait" in leaf:
                    return None if "socketserver" in path else f"waiting in {Path(path).name}:{frame.f_code.co_name}"
                return f"{Path(path).parent.name}/{Path(path).name}:{frame.f_code.co_name} (leaf {leaf})"
            frame = frame.f_back
        return None

    def stop(self, top: int = 25) -> None:
        self._done.set()
        self._thread.join()
        total = sum(self.samples.values()) or 1
        print(f"thread samples during the burst: {self.ticks} ticks, {total} busy-or-waiting thread samples")
        for where, n in self.samples.most_common(top):
            print(f"  {100 * n / total:5.1f} %  {where}")
        print("by thread:", ", ".join(f"{name} {100 * n / total:.0f} %" for name, n in self.threads.most_common(8)))
