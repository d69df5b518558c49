"""The emulator's process collects cyclic garbage less often while the runtime is installed, and the previous
thresholds come back when it stops (sdlf_cli/local/runtime/gc_tuning.py)."""
from __future__ import annotations

import gc

from sdlf_cli.local.runtime import gc_tuning


def test_install_sets_the_thresholds_and_uninstall_puts_the_previous_ones_back():
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        gc_tuning.install()
        gc_tuning.install()  # a second install keeps the first previous value
        assert gc.get_threshold() == gc_tuning.THRESHOLDS
        gc_tuning.uninstall()
        assert gc.get_threshold() == (700, 10, 10)
        gc_tuning.uninstall()  # nothing to put back: unchanged
        assert gc.get_threshold() == (700, 10, 10)
    finally:
        gc.set_threshold(*before)


def test_cycles_are_still_collected_under_the_thresholds():
    class Node:
        def __init__(self):
            self.me = self

    gc_tuning.install()
    try:
        import weakref

        node = Node()
        ref = weakref.ref(node)
        del node
        kept = [[] for _ in range(gc_tuning.THRESHOLDS[0] * 2)]  # new objects: a young collection comes by itself
        assert ref() is None and kept
    finally:
        gc_tuning.uninstall()
