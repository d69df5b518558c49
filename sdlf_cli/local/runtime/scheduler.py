"""Fires EventBridge schedule rules (`rate(...)`, `cron(...)`), which moto stores but never runs.

One thread asks an injectable clock for the time and calls `tick()`; tests call `tick()` with a fake
clock instead. A rate rule fires every period after it was first seen; a cron rule at each matching
minute. Like EventBridge, missed fires are not replayed: after a long pause a rule fires once.
"""
from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

from sdlf_cli.local.runtime.schedule_expressions import Cron, Rate, ScheduleError, parse_schedule

LOG = logging.getLogger(__name__)

TICK_S = 1.0


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class _Tracked:
    expression: str
    schedule: Rate | Cron
    first_seen: datetime
    next_fire: datetime | None


def scheduled_event(rule: Any, when: datetime) -> dict:
    """The envelope EventBridge sends for a schedule ('time' as a number, like moto's own events)."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": rule.account_id,
        "time": when.timestamp(),
        "region": rule.region_name,
        "resources": [rule.arn],
        "detail": {},
        "ingestion-time": when.timestamp(),
    }


class Scheduler:
    def __init__(self, account_id: str, clock: Callable[[], datetime] = utc_now, tick_s: float = TICK_S):
        self.account_id = account_id
        self.clock = clock
        self.tick_s = tick_s
        self._tracked: dict[str, _Tracked] = {}  # rule arn -> state
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.fired: list[tuple[str, datetime]] = []  # (rule arn, scheduled time), most recent last

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="sdlf-scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.wait(self.tick_s):
            try:
                self.tick()
            except Exception:
                LOG.exception("scheduler tick failed")

    def _rules(self) -> list[Any]:
        from moto.events.models import events_backends

        account = dict.get(events_backends, self.account_id)
        if not account:
            return []
        rules = []
        for region in list(account.keys()):
            for bus in list(account[region].event_buses.values()):
                rules.extend(r for r in list(bus.rules.values()) if r.scheduled_expression)
        return rules

    def tick(self) -> list[str]:
        """Fire every schedule rule that is due at the clock's current time; return their ARNs."""
        from sdlf_cli.local.runtime.events import send_event

        now = self.clock()
        fired = []
        seen = set()
        for rule in self._rules():
            seen.add(rule.arn)
            tracked = self._track(rule, now)
            if tracked is None or rule.state != "ENABLED":
                continue
            if tracked.next_fire is not None and now >= tracked.next_fire:
                due = tracked.next_fire
                tracked.next_fire = self._next(tracked, now)
                try:
                    send_event(rule, scheduled_event(rule, due))
                except Exception:
                    LOG.exception("schedule rule %s could not deliver", rule.name)
                fired.append(rule.arn)
                self.fired.append((rule.arn, due))
                del self.fired[:-500]
        for arn in set(self._tracked) - seen:
            del self._tracked[arn]  # rule deleted
        return fired

    def _track(self, rule: Any, now: datetime) -> _Tracked | None:
        tracked = self._tracked.get(rule.arn)
        if tracked is not None and tracked.expression == rule.scheduled_expression:
            return tracked
        try:
            schedule = parse_schedule(rule.scheduled_expression)
        except ScheduleError as exc:
            LOG.warning("rule %s: %s", rule.arn, exc)
            return None
        tracked = _Tracked(rule.scheduled_expression, schedule, now, None)
        tracked.next_fire = self._next(tracked, now)
        self._tracked[rule.arn] = tracked
        return tracked

    @staticmethod
    def _next(tracked: _Tracked, now: datetime) -> datetime | None:
        if isinstance(tracked.schedule, Rate):
            return tracked.schedule.next_after(tracked.first_seen, now)
        return tracked.schedule.next_after(now)
