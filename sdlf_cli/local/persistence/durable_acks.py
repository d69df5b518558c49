"""Acknowledge a change only once it is on disk: group commit of moto's state after mutating requests.

One named patch on moto's WSGI dispatcher: a request that changes state (anything but a GET/HEAD or an
operation that only reads: Get*, List*, Describe*, Query, Scan, ReceiveMessage, Invoke, ...) is processed
as usual, then its response waits until a snapshot that began after the request finished is on disk.
One thread writes snapshots back to back while changes keep arriving; every request that finished before a
snapshot began is covered by it, so a burst of requests shares one save.

Why this and not a periodic snapshot: after a kill -9, a client that was told "200" must find its change
(an acknowledged S3 put that vanished is a lost object no redrive can bring back). Why not a journal of
requests replayed on start: moto draws the ids it answers with (S3 version ids, message ids, receipt
handles) at random and its own threads change state outside requests, so a replay would not rebuild the
state the clients saw. A snapshot taken while other threads run is not a single instant; what it may hold
half of is only what no client was told about yet — exactly the window a crash leaves on AWS, which the
lake's retries and redrive are built for. Causality holds across requests: a change made after another
request was acknowledged is only in snapshots that began after that request finished, so every snapshot
holding it holds its cause too.

Invoke does not wait: it changes nothing by itself, the handler's own requests do (and wait).
After `close()` (a clean stop), requests are refused with 503 so nothing is acknowledged that the last
snapshot does not hold.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

LOG = logging.getLogger(__name__)

PATCH_NAME = "durable acknowledgements: a mutating request is answered once a snapshot holding it is on disk"

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
READ_PREFIXES = ("Get", "List", "Describe", "Head", "Query", "Scan", "BatchGet", "Receive", "Lookup", "Search",
                 "Select", "Filter", "Invoke", "Validate", "Estimate", "Test", "Poll", "Check", "Simulate")
CLOSE_WAIT_S = 10.0  # how long a clean stop waits for requests still being processed


def mutates(environ: dict[str, Any]) -> bool:
    """Whether the request may change the emulator's state (moto's own /moto-api requests count as not)."""
    from sdlf_cli.local.request_log import describe

    if environ.get("REQUEST_METHOD", "GET").upper() in READ_METHODS:
        return False
    service, operation = describe(environ)
    if service == "unsigned":
        return False
    return not operation.startswith(READ_PREFIXES)


class Committer:
    """Saves (`save()`) whenever changes arrived since the last save; `wait_durable(seq)` returns once the
    change numbered `seq` is saved."""

    def __init__(self, save: Callable[[], object]):
        self._save = save
        self._cond = threading.Condition()
        self._changed = 0  # changes finished so far
        self._durable = 0  # changes the snapshot on disk holds
        self._in_flight = 0  # mutating requests being processed
        self._closed = False
        self._released = False  # closed and saved: nobody waits any more
        self._thread: threading.Thread | None = None
        self.saves = 0
        self.failures = 0
        self.last_report: object | None = None
        self.save_seconds = 0.0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="sdlf-snapshots", daemon=True)
        self._thread.start()

    @property
    def closed(self) -> bool:
        return self._closed

    def begin(self) -> bool:
        """A mutating request starts; False once closed (refuse it)."""
        with self._cond:
            if self._closed:
                return False
            self._in_flight += 1
            return True

    def finished(self) -> int:
        """The request's change is done; returns its number for `wait_durable`."""
        with self._cond:
            self._in_flight -= 1
            self._changed += 1
            self._cond.notify_all()
            return self._changed

    def wait_durable(self, seq: int) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self._durable >= seq or self._released)

    def _loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._changed > self._durable or self._closed)
                if self._closed:
                    return
                covered = self._changed
            self._save_once(covered)

    def _save_once(self, covered: int) -> None:
        started = time.perf_counter()
        try:
            self.last_report = self._save()
            self.saves += 1
        except Exception:
            # The emulator keeps answering (a stuck emulator helps nobody); the log says durability failed.
            self.failures += 1
            LOG.exception("saving the emulator's state failed: changes since the last snapshot are not on disk")
        self.save_seconds += time.perf_counter() - started
        with self._cond:
            self._durable = max(self._durable, covered)
            self._cond.notify_all()

    def close(self) -> None:
        """Refuses new mutating requests, lets the ones in progress finish (up to CLOSE_WAIT_S), saves
        the final state and releases every waiter."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            self._cond.wait_for(lambda: self._in_flight == 0, CLOSE_WAIT_S)
        if self._thread is not None:
            self._thread.join(timeout=60)
        with self._cond:
            covered = self._changed
        self._save_once(covered)
        with self._cond:
            self._released = True
            self._cond.notify_all()


_UNAVAILABLE = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>ServiceUnavailable</Code>'
                b"<Message>the local emulator is stopping</Message></Error>")


def _durable(committer: Committer) -> Callable[[Callable], Callable]:
    def make(original: Callable) -> Callable:
        def __call__(self, environ, start_response):
            if not mutates(environ):
                return original(self, environ, start_response)
            if not committer.begin():
                start_response("503 Service Unavailable", [("Content-Type", "application/xml"),
                                                           ("Content-Length", str(len(_UNAVAILABLE)))])
                return [_UNAVAILABLE]
            try:
                response = original(self, environ, start_response)
            finally:
                seq = committer.finished()
            committer.wait_durable(seq)
            return response
        return __call__
    return make


def install(committer: Committer) -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    from sdlf_cli.local.cfn import _patching

    _patching.wrap(DomainDispatcherApplication, "__call__", PATCH_NAME, _durable(committer))


def uninstall() -> None:
    from sdlf_cli.local.cfn import _patching

    _patching.uninstall(PATCH_NAME)
