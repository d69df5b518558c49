"""The process serving the emulator collects cyclic garbage less often.

The emulator keeps ~700,000 objects alive in its one interpreter (moto's models and state, parse trees, botocore
service models), and answering a request allocates thousands more (each UpdateItem unpickles a copy of its
expression tree, whose nodes point at their parents: cycles). With CPython's default thresholds (700, 10, 10)
a stage-A burst of 200 files ran ~2,800 young and ~250 middle collections and 13 full ones, each full one
walking every live object: ~5 s of the burst's CPU, a tenth of the emulator's. With (10,000, 50, 50) the same
burst runs ~200 young, ~4 middle and no full collection: the cycles are still collected, young, and a full
collection still comes once the long-lived objects grow by a quarter (CPython's own rule). `install()` sets
the thresholds for the process; the stop function the runtime returns puts the previous ones back.
"""
from __future__ import annotations

import gc

THRESHOLDS = (10_000, 50, 50)
_previous: list[tuple[int, ...]] = []


def install() -> None:
    if not _previous:
        _previous.append(gc.get_threshold())
    gc.set_threshold(*THRESHOLDS)


def uninstall() -> None:
    if _previous:
        gc.set_threshold(*_previous.pop())
