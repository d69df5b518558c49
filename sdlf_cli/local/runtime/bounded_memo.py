"""A bounded, thread-safe memo for the emulator's speed-up patches: answers remembered per key, all forgotten at once
when the bound is reached (the keys - host names, definition texts, JSONPaths - are few; the bound is a guard)."""
from __future__ import annotations

import threading
from typing import Any, Callable, Hashable

_MISSING = object()


class BoundedMemo:
    def __init__(self, bound: int):
        self.bound = bound
        self._answers: dict[Hashable, Any] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """The remembered answer for `key`, else `compute()` remembered (None and other falsy answers included)."""
        answer = self._answers.get(key, _MISSING)
        if answer is _MISSING:
            answer = compute()
            with self._lock:
                if len(self._answers) >= self.bound:
                    self._answers.clear()
                self._answers[key] = answer
        return answer
