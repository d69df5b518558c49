"""botocore's User-Agent components sanitized once per distinct text, not at every request.

botocore (1.3x-1.4x) builds every request's User-Agent header anew: about ten components (SDK and Python
versions, OS, the client's features, retry mode...), each run through `sanitize_user_agent_string_component`, a
generator that tests the text one character at a time. The texts are the same request after request: against
the embedded emulator it was ~10 % of the CPU of a request, client and server together (3.6 ms).

`sanitized_once()` puts an `lru_cache` around the function, a pure function of its two arguments: the same
header, byte for byte. For sdlf's own processes (the CLI, the emulator's server, the tests), which make many
requests; not for the code sdlf runs as Lambda functions or Glue jobs, which runs on botocore as released.
"""
from __future__ import annotations

import functools
from typing import Callable

CACHE_SIZE = 2048  # distinct component texts; a process sees a few dozen


def sanitized_once() -> Callable[[], None]:
    """Installs the cache (once per process); returns what puts botocore's function back."""
    from botocore import useragent

    current = useragent.sanitize_user_agent_string_component
    original = getattr(current, "__wrapped__", current)
    if current is original:
        useragent.sanitize_user_agent_string_component = functools.lru_cache(maxsize=CACHE_SIZE)(original)

    def undo() -> None:
        useragent.sanitize_user_agent_string_component = original

    return undo
