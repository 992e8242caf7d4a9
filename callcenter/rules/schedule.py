"""When a duty line is monitored (its ``schedule``) and who is on shift (the roster). Pure.

Schedule text, as written in ``lines[].schedule`` and the console:

``24h``
    around the clock (the default).
``08:00-18:00``
    every day from 08:00 to 18:00 local time (the unit's time zone, Asia/Shanghai by
    default); the end is exclusive, ``24:00`` is the end of the day.
``18:00-08:30``
    a span whose end is not after its start crosses midnight: from 18:00 to 08:30 the next
    morning.
``08:00-12:00, 14:00-18:00``
    several spans, comma separated.
``Mon-Fri 18:00-08:30, Sat-Sun 24h``
    a weekday prefix (``Mon`` .. ``Sun``, or full names, or a range like ``Mon-Fri`` or
    ``Fri-Mon``) limits a span to the days it *starts* on; it carries over to the spans after
    it that have none of their own (``Mon-Fri 08:00-12:00, 14:00-18:00`` is two weekday
    spans). ``24h`` after a prefix means the whole of those days.

Full-width punctuation (``，``, ``：``, ``～``) and ``~``/en dash for the range are
accepted, as duty rooms type them. Public holidays and adjusted workdays are not part of a
schedule; the working-day calendar handles them.

Bad text raises :class:`ScheduleError` with a message that names the part at fault.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

__all__ = [
    "ALWAYS",
    "DEFAULT_TIMEZONE",
    "Schedule",
    "ScheduleError",
    "ScheduleSpan",
    "ShiftSpan",
    "is_monitored",
    "monitored_intervals",
    "monitored_seconds",
    "next_monitored",
    "parse_schedule",
    "shift_at",
]

DEFAULT_TIMEZONE = "Asia/Shanghai"
DAY_SECONDS = 86_400
ALL_DAYS = frozenset(range(7))

_DAY_NAMES = {
    name: index
    for index, names in enumerate(
        (
            ("mon", "monday"),
            ("tue", "tues", "tuesday"),
            ("wed", "wednesday"),
            ("thu", "thur", "thurs", "thursday"),
            ("fri", "friday"),
            ("sat", "saturday"),
            ("sun", "sunday"),
        )
    )
    for name in names
}
_TRANSLATE = str.maketrans({"，": ",", "：": ":", "～": "-", "~": "-", "–": "-", "—": "-"})
_TIME = r"(\d{1,2}):(\d{2})"
_SPAN_RE = re.compile(rf"^{_TIME}\s*-\s*{_TIME}$")
_PREFIXED_RE = re.compile(r"^(?P<first>[A-Za-z]+)(?:\s*-\s*(?P<last>[A-Za-z]+))?\s+(?P<span>\S.*)$")


class ScheduleError(ValueError):
    """A schedule text that cannot be read; ``problem`` says what is wrong with it."""

    def __init__(self, text: str, problem: str) -> None:
        super().__init__(f"schedule {text!r}: {problem}")
        self.text = text
        self.problem = problem


@dataclass(frozen=True, slots=True)
class ScheduleSpan:
    """Monitored from ``start`` to ``end`` (seconds after local midnight) on ``days``.

    ``days`` are the weekdays (0 = Monday) the span starts on; ``end <= start`` means it
    ends the next day.
    """

    days: frozenset[int]
    start: int
    end: int

    @property
    def crosses_midnight(self) -> bool:
        return self.end <= self.start


@dataclass(frozen=True, slots=True)
class Schedule:
    """A parsed schedule; ``always`` for ``24h``."""

    text: str
    spans: tuple[ScheduleSpan, ...] = ()
    always: bool = False


ALWAYS = Schedule("24h", (), True)


@lru_cache(maxsize=256)
def parse_schedule(text: str) -> Schedule:
    """Parse a line's schedule text (see the module doc); raises :class:`ScheduleError`."""
    if not isinstance(text, str):
        raise ScheduleError(str(text), "expected text such as '24h' or '08:00-18:00'")
    clean = " ".join(text.translate(_TRANSLATE).split())
    if not clean:
        raise ScheduleError(text, "empty; use '24h' for around the clock or spans like 08:00-18:00")
    if clean.lower() == "24h":
        return ALWAYS
    spans: list[ScheduleSpan] = []
    days = ALL_DAYS
    for raw in clean.split(","):
        part = raw.strip()
        if not part:
            raise ScheduleError(text, "empty span between commas")
        if part[:1].isalpha() and part.lower() != "24h":
            match = _PREFIXED_RE.match(part)
            if match is None:
                raise ScheduleError(
                    text, f"cannot read {part!r} (write e.g. 'Mon-Fri 08:00-18:00' or 'Sat 24h')"
                )
            days = _parse_days(text, match["first"], match["last"])
            part = match["span"]
        spans.append(_parse_span(text, part, days))
    return Schedule(text, tuple(spans), False)


def _parse_days(text: str, first: str, last: str | None) -> frozenset[int]:
    start = _day(text, first)
    if last is None:
        return frozenset({start})
    count = (_day(text, last) - start) % 7 + 1
    return frozenset((start + i) % 7 for i in range(count))


def _day(text: str, name: str) -> int:
    found = _DAY_NAMES.get(name.lower())
    if found is None:
        raise ScheduleError(
            text, f"unknown weekday {name!r} (use Mon, Tue, Wed, Thu, Fri, Sat, Sun)"
        )
    return found


def _parse_span(text: str, part: str, days: frozenset[int]) -> ScheduleSpan:
    if part.lower() == "24h":
        return ScheduleSpan(days, 0, DAY_SECONDS)
    match = _SPAN_RE.match(part)
    if match is None:
        raise ScheduleError(text, f"span {part!r} is not HH:MM-HH:MM (or 24h)")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    start = _seconds(text, part, h1, m1)
    end = _seconds(text, part, h2, m2)
    if start == DAY_SECONDS:
        raise ScheduleError(text, f"span {part!r} starts at 24:00; start it at 00:00")
    if start == end:
        raise ScheduleError(
            text, f"span {part!r} is empty (start equals end); use 24h for the whole day"
        )
    return ScheduleSpan(days, start, end)


def _seconds(text: str, part: str, hours: int, minutes: int) -> int:
    if minutes > 59 or hours > 24 or (hours == 24 and minutes != 0):
        raise ScheduleError(
            text, f"bad time {hours:02d}:{minutes:02d} in {part!r} (use 00:00 to 24:00)"
        )
    return hours * 3600 + minutes * 60


def _as_schedule(schedule: str | Schedule) -> Schedule:
    return schedule if isinstance(schedule, Schedule) else parse_schedule(schedule)


def _utc(at: datetime) -> datetime:
    """Aware UTC; a naive datetime is taken as UTC (how the database stores times)."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def is_monitored(schedule: str | Schedule, at_utc: datetime, tz: str = DEFAULT_TIMEZONE) -> bool:
    """Whether the line must be staffed at ``at_utc`` (naive = UTC) under ``schedule``."""
    sched = _as_schedule(schedule)
    if sched.always:
        return True
    local = _utc(at_utc).astimezone(ZoneInfo(tz))
    tod = local.hour * 3600 + local.minute * 60 + local.second + local.microsecond / 1e6
    weekday = local.weekday()
    yesterday = (weekday - 1) % 7
    for span in sched.spans:
        if span.crosses_midnight:
            if (weekday in span.days and tod >= span.start) or (
                yesterday in span.days and tod < span.end
            ):
                return True
        elif weekday in span.days and span.start <= tod < span.end:
            return True
    return False


def monitored_intervals(
    schedule: str | Schedule, start: datetime, end: datetime, tz: str = DEFAULT_TIMEZONE
) -> list[tuple[datetime, datetime]]:
    """The monitored parts of ``[start, end)`` as merged, ordered UTC intervals."""
    sched = _as_schedule(schedule)
    lo, hi = _utc(start), _utc(end)
    if hi <= lo:
        return []
    if sched.always:
        return [(lo, hi)]
    zone = ZoneInfo(tz)
    first = lo.astimezone(zone).date() - timedelta(days=1)
    last = hi.astimezone(zone).date()
    found: list[tuple[datetime, datetime]] = []
    day = first
    while day <= last:
        for span in sched.spans:
            if day.weekday() not in span.days:
                continue
            s = _local(day, span.start, zone)
            e = _local(day + timedelta(days=1) if span.crosses_midnight else day, span.end, zone)
            s, e = max(s, lo), min(e, hi)
            if s < e:
                found.append((s, e))
        day += timedelta(days=1)
    found.sort()
    merged: list[tuple[datetime, datetime]] = []
    for s, e in found:
        if merged and s <= merged[-1][1]:
            if e > merged[-1][1]:
                merged[-1] = (merged[-1][0], e)
        else:
            merged.append((s, e))
    return merged


def _local(day: date, seconds: int, zone: ZoneInfo) -> datetime:
    if seconds >= DAY_SECONDS:
        day, seconds = day + timedelta(days=1), seconds - DAY_SECONDS
    wall = datetime.combine(day, time(seconds // 3600, seconds % 3600 // 60), tzinfo=zone)
    return wall.astimezone(UTC)


def monitored_seconds(
    schedule: str | Schedule, start: datetime, end: datetime, tz: str = DEFAULT_TIMEZONE
) -> float:
    """How many seconds of ``[start, end)`` fall in monitored hours."""
    return sum((e - s).total_seconds() for s, e in monitored_intervals(schedule, start, end, tz))


def next_monitored(
    schedule: str | Schedule,
    at: datetime,
    tz: str = DEFAULT_TIMEZONE,
    within: timedelta = timedelta(days=8),
) -> datetime | None:
    """The first monitored instant at or after ``at`` (UTC), or None within ``within``."""
    spans = monitored_intervals(schedule, at, _utc(at) + within, tz)
    return spans[0][0] if spans else None


# ------------------------------------------------------------------------------ roster


@dataclass(frozen=True, slots=True)
class ShiftSpan:
    """One roster line as the rules see it: who is on duty from ``starts_at`` to ``ends_at``."""

    id: int | str | None
    starts_at: datetime
    ends_at: datetime
    main_officer: str  # 主班
    backup_officer: str = ""  # 副班
    leader: str = ""  # 带班领导


def shift_at(shifts: Sequence[ShiftSpan], at: datetime | None) -> ShiftSpan | None:
    """The shift that ``at`` falls in (start inclusive, end exclusive); None if none.

    Naive datetimes are taken as UTC. Should shifts overlap (the roster import refuses
    that), the one that started last wins: it is the shift that took over.
    """
    if at is None:
        return None
    when = _utc(at)
    found: ShiftSpan | None = None
    for shift in shifts:
        if _utc(shift.starts_at) <= when < _utc(shift.ends_at) and (
            found is None or _utc(shift.starts_at) > _utc(found.starts_at)
        ):
            found = shift
    return found
