"""EventBridge schedule expressions: `rate(N unit)` and AWS's 6-field `cron(min hour dom month dow year)`.

A small evaluator of our own (no extra dependency): it supports what EventBridge documents - lists,
ranges, `*`, `?`, `/` steps, month and weekday names, `L` (last day of month / last weekday), `W`
(nearest weekday) and `#` (nth weekday). Day-of-week is 1-7 = SUN-SAT, as in AWS. Times are UTC.

The one parser of these expressions: the configuration's validator checks `schedule` with it too, so what the
parameters file accepts is what the emulator fires and what EventBridge takes.
"""
from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_CRON_FIELD = re.compile(r"[0-9A-Za-z*?,/#\-]+")
_EXPECTED = "expected rate(N minute[s]|hour[s]|day[s]) or cron(<6 fields>)"
_CRON = re.compile(r"^cron\((.*)\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
_MONTHS = {name: i for i, name in enumerate(
    ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], start=1)}
_DAYS = {name: i for i, name in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"], start=1)}
MAX_YEARS_AHEAD = 8


class ScheduleError(ValueError):
    """A schedule expression EventBridge would reject."""


@dataclass(frozen=True)
class Rate:
    seconds: int

    def next_after(self, start: datetime, now: datetime) -> datetime:
        """The first fire strictly after `now` on the grid start + k * period."""
        if now < start:
            return start + timedelta(seconds=self.seconds)
        periods = int((now - start).total_seconds() // self.seconds) + 1
        return start + timedelta(seconds=periods * self.seconds)


def _parse_field(text: str, low: int, high: int, names: dict[str, int] | None = None) -> set[int]:
    values: set[int] = set()
    for part in text.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            if not step_text.isdigit() or int(step_text) == 0:
                raise ScheduleError(f"bad step in {text!r}")
            step = int(step_text)
        if part in ("*", "?"):
            start, end = low, high
        elif "-" in part:
            a, b = part.split("-", 1)
            start, end = _value(a, names), _value(b, names)
        else:
            start = _value(part, names)
            end = high if step != 1 else start
        if not (low <= start <= high and low <= end <= high):
            raise ScheduleError(f"value out of range {low}-{high} in {text!r}")
        if start <= end:
            values.update(range(start, end + 1, step))
        else:  # a wrapping range such as FRI-MON
            span = high - low + 1
            values.update((start - low + i) % span + low for i in range(0, (end - start) % span + 1, step))
    return values


def _value(text: str, names: dict[str, int] | None) -> int:
    if names and text.upper() in names:
        return names[text.upper()]
    if not text.isdigit():
        raise ScheduleError(f"unknown value {text!r}")
    return int(text)


@dataclass(frozen=True)
class Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    dom: str
    months: frozenset[int]
    dow: str
    years: frozenset[int] | None

    @classmethod
    def parse(cls, body: str) -> "Cron":
        fields = body.split()
        text = f"cron({body})"
        if len(fields) != 6:
            raise ScheduleError("expected cron(minutes hours day-of-month month day-of-week year) with 6 fields, "
                                f"got {len(fields)} in {text!r}")
        bad = [f for f in fields if not _CRON_FIELD.fullmatch(f)]
        if bad:
            raise ScheduleError(f"unexpected characters in cron field {bad[0]!r} of {text!r}")
        minute, hour, dom, month, dow, year = fields
        if (dom == "?") == (dow == "?"):
            raise ScheduleError(f"exactly one of day-of-month and day-of-week must be '?' in {text!r}")
        cron = cls(
            minutes=frozenset(_parse_field(minute, 0, 59)),
            hours=frozenset(_parse_field(hour, 0, 23)),
            dom=dom.upper(),
            months=frozenset(_parse_field(month.upper(), 1, 12, _MONTHS)),
            dow=dow.upper(),
            years=None if year in ("*", "?") else frozenset(_parse_field(year, 1970, 2199)),
        )
        cron._day_matches(datetime(2024, 1, 1).date())  # validates the day fields early
        return cron

    def _day_matches(self, day) -> bool:
        last = calendar.monthrange(day.year, day.month)[1]
        aws_dow = (day.isoweekday() % 7) + 1  # SUN=1 ... SAT=7
        if self.dom != "?":
            return _dom_matches(self.dom, day, last)
        return _dow_matches(self.dow, day, aws_dow, last)

    def next_after(self, now: datetime) -> datetime | None:
        """The first matching minute strictly after `now` (UTC), or None within the search horizon."""
        now = now.astimezone(timezone.utc).replace(second=0, microsecond=0)
        day = now.date()
        end = day.replace(year=day.year + MAX_YEARS_AHEAD)
        hours, minutes = sorted(self.hours), sorted(self.minutes)
        while day <= end:
            if (self.years is None or day.year in self.years) and day.month in self.months \
                    and self._day_matches(day):
                for h in hours:
                    for m in minutes:
                        candidate = datetime(day.year, day.month, day.day, h, m, tzinfo=timezone.utc)
                        if candidate > now:
                            return candidate
            day += timedelta(days=1)
        return None


def _dom_matches(expr: str, day, last: int) -> bool:
    if expr in ("*",):
        return True
    if expr == "L":
        return day.day == last
    if expr.endswith("W"):
        target = min(int(expr[:-1]), last)
        t = day.replace(day=target)
        if t.weekday() == 5:  # Saturday -> Friday before, unless that leaves the month
            t = t - timedelta(days=1) if target > 1 else t + timedelta(days=2)
        elif t.weekday() == 6:
            t = t + timedelta(days=1) if target < last else t - timedelta(days=2)
        return day == t
    return day.day in _parse_field(expr, 1, 31)


def _dow_matches(expr: str, day, aws_dow: int, last: int) -> bool:
    if expr == "*":
        return True
    if "#" in expr:
        d, n = expr.split("#", 1)
        return aws_dow == _value(d, _DAYS) and (day.day - 1) // 7 + 1 == int(n)
    if expr.endswith("L") and len(expr) > 1:
        return aws_dow == _value(expr[:-1], _DAYS) and day.day + 7 > last
    if expr == "L":
        return aws_dow == 7
    return aws_dow in _parse_field(expr, 1, 7, _DAYS)


def parse_schedule(expression: str) -> Rate | Cron:
    """The expression as EventBridge reads it; ScheduleError says what EventBridge would refuse."""
    text = expression.strip()
    match = _RATE.match(text)
    if match:
        value, unit = int(match.group(1)), match.group(2)
        if value <= 0:
            raise ScheduleError(f"{_EXPECTED} with N >= 1, got {expression!r}")
        singular = unit.rstrip("s")
        want = singular if value == 1 else singular + "s"
        if unit != want:
            raise ScheduleError(f"AWS requires 'rate({value} {want})' (singular unit for 1, plural otherwise), "
                                f"got {expression!r}")
        return Rate(value * _UNIT_SECONDS[singular])
    match = _CRON.match(text)
    if match:
        return Cron.parse(match.group(1))
    raise ScheduleError(f"{_EXPECTED}, got {expression!r}")
