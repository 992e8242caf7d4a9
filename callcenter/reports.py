"""The missed-call report (未接来电统计): per unit and duty line for a period.

Every figure is aggregated by the database (``GROUP BY`` over the calls, callbacks and
violations of the period); Python only arranges the few grouped rows into units, lines and
totals. The same SQL runs on SQLite and PostgreSQL; the one difference is the hour of day
in the unit's time zone (times are stored in UTC):

- PostgreSQL: ``extract(hour from timezone(<zone>, started_at))`` — the server's zone data,
  daylight saving included.
- SQLite has no zone data, so the period is cut into spans of constant UTC offset (from
  :mod:`zoneinfo`) and the hour is ``strftime('%H', started_at, '+<offset> minutes')`` with
  the offset of the span the call started in (a ``CASE`` over the span boundaries).

Definitions (inbound calls to a duty line only; spot checks and other originated calls are
left out, as the call rules leave them out):

- ``calls``: inbound calls that started in the period; ``answered``: outcome ``answered``;
  ``abandoned``: the caller gave up while it rang; ``unanswered``: every other call that
  was not answered (``no_answer``, ``busy``, ``failed``), so answered + unanswered +
  abandoned = calls; ``forwarded``: ``forwarded_to`` set.
- ring time: average and maximum ``ring_seconds`` over the calls that have one.
- callbacks (事事有回音) of those calls: ``done`` closed (called back, reached, or excused
  with a reason), ``open`` still open, ``overdue`` open past ``due_at`` or, without one,
  more than 24 h after the missed call.
- violations that happened in the period, counted by kind and state; ``deductions`` sums
  the confirmed ones (the stored deduction, or the assessment table's when missing);
  ``score`` is the unit's base points minus its deductions (:mod:`callcenter.scoring`).

A period is a span of local dates (a month for the monthly 值班要情, a quarter for the
quarterly 值班通报, or any range); each unit's span starts and ends at midnight in the
unit's own time zone.
"""

from __future__ import annotations

import calendar
import logging
from collections import defaultdict
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import (
    ColumnElement,
    Integer,
    and_,
    case,
    cast,
    extract,
    false,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.orm import Session

from callcenter.scoring import BASE_POINTS, DEFAULT_TABLE, points_left
from callcenter.store.duty import VIOLATION_KINDS, VIOLATION_STATES, Callback, Violation
from callcenter.store.models import Call, Outage
from callcenter.store.org import DutyLine, Unit

__all__ = [
    "CALLBACK_OVERDUE_AFTER",
    "Figures",
    "LineReport",
    "MissedCallReport",
    "Period",
    "ReportError",
    "UnitReport",
    "ViolationCount",
    "hour_of_day",
    "missed_call_report",
    "offset_spans",
]

logger = logging.getLogger(__name__)

CALLBACK_OVERDUE_AFTER = timedelta(hours=24)
UNANSWERED_OUTCOMES = ("no_answer", "busy", "failed")
DONE_CALLBACK_STATES = ("called_back", "reached", "excused")
DEFAULT_ZONE = "Asia/Shanghai"

PeriodKind = Literal["month", "quarter", "range"]


class ReportError(ValueError):
    """A report that cannot be made as asked (bad period, unsupported database)."""


# --------------------------------------------------------------------------- periods


@dataclass(frozen=True, slots=True)
class Period:
    """A span of local dates, ``first`` to ``last`` inclusive."""

    first: date
    last: date
    kind: PeriodKind = "range"

    def __post_init__(self) -> None:
        if self.last < self.first:
            raise ReportError(f"the period ends ({self.last}) before it starts ({self.first})")
        if (self.last - self.first).days > 366:
            raise ReportError("a report covers at most a year")

    @classmethod
    def month(cls, year: int, month: int) -> Period:
        if not 1 <= month <= 12:
            raise ReportError(f"no month {month}")
        last = calendar.monthrange(year, month)[1]
        return cls(date(year, month, 1), date(year, month, last), "month")

    @classmethod
    def quarter(cls, year: int, quarter: int) -> Period:
        if not 1 <= quarter <= 4:
            raise ReportError(f"no quarter {quarter}")
        first_month = 3 * (quarter - 1) + 1
        last_month = first_month + 2
        last = calendar.monthrange(year, last_month)[1]
        return cls(date(year, first_month, 1), date(year, last_month, last), "quarter")

    @classmethod
    def month_of(cls, day: date) -> Period:
        return cls.month(day.year, day.month)

    @classmethod
    def quarter_of(cls, day: date) -> Period:
        return cls.quarter(day.year, (day.month - 1) // 3 + 1)

    @property
    def label(self) -> str:
        if self.kind == "month":
            return f"{self.first:%Y-%m}"
        if self.kind == "quarter":
            return f"{self.first.year}-Q{(self.first.month - 1) // 3 + 1}"
        return f"{self.first.isoformat()}_{self.last.isoformat()}"

    def bounds(self, zone: ZoneInfo) -> tuple[datetime, datetime]:
        """The period as UTC instants ``[start, end)``: local midnights in ``zone``."""
        start = datetime(self.first.year, self.first.month, self.first.day, tzinfo=zone)
        after = self.last + timedelta(days=1)
        end = datetime(after.year, after.month, after.day, tzinfo=zone)
        return start.astimezone(UTC), end.astimezone(UTC)


def zone_of(name: str | None, default: str = DEFAULT_ZONE) -> ZoneInfo:
    """The zone ``name``; an unknown or empty name falls back to ``default``."""
    try:
        return ZoneInfo(name or default)
    except (ZoneInfoNotFoundError, ValueError):
        logger.warning("unknown time zone %r; using %s", name, default)
        return ZoneInfo(default)


# --------------------------------------------------------------------------- hour of day


def offset_spans(zone: ZoneInfo, start: datetime, end: datetime) -> list[tuple[datetime, int]]:
    """The spans of constant UTC offset of ``zone`` in ``[start, end)``.

    Each item is ``(span start in UTC, offset in minutes)``; the first span starts at
    ``start``. Offsets change on the hour or half hour, so checking every 15 minutes finds
    every change (a quarter's walk is about 9,000 steps, done once per report).
    """
    start = start.astimezone(UTC)
    end = end.astimezone(UTC)
    step = timedelta(minutes=15)

    def minutes_at(moment: datetime) -> int:
        offset = moment.astimezone(zone).utcoffset() or timedelta(0)
        return int(offset.total_seconds() // 60)

    spans = [(start, minutes_at(start))]
    moment = start
    while moment < end:
        moment = min(moment + step, end)
        current = minutes_at(moment)
        if current != spans[-1][1] and moment < end:
            spans.append((moment, current))
    return spans


def hour_of_day(
    column: Any, zone: ZoneInfo, start: datetime, end: datetime, dialect: str
) -> ColumnElement[int]:
    """SQL for the local hour (0–23) in ``zone`` of the UTC timestamp ``column``."""
    if dialect == "postgresql":
        return cast(extract("hour", func.timezone(zone.key, column)), Integer)
    if dialect == "sqlite":
        spans = offset_spans(zone, start, end)

        def hour_with(minutes: int) -> ColumnElement[int]:
            return cast(func.strftime("%H", column, f"{minutes:+d} minutes"), Integer)

        if len(spans) == 1:
            return hour_with(spans[0][1])
        # the latest span first: the first boundary the call is not before wins
        whens = [(column >= span_start, hour_with(minutes)) for span_start, minutes in spans[1:]]
        whens.reverse()
        return case(*whens, else_=hour_with(spans[0][1]))
    raise ReportError(f"the report supports SQLite and PostgreSQL, not {dialect}")


# --------------------------------------------------------------------------- figures


@dataclass(slots=True)
class Figures:
    """The figures of one line, one unit or the whole report (they add up)."""

    calls: int = 0
    answered: int = 0
    unanswered: int = 0
    abandoned: int = 0
    forwarded: int = 0
    ring_count: int = 0  # calls with a ring time
    ring_total: float = 0.0
    ring_max: float | None = None
    callbacks: int = 0
    callbacks_done: int = 0
    callbacks_open: int = 0
    callbacks_overdue: int = 0
    violations: dict[tuple[str, str], int] = field(default_factory=dict)  # (kind, state)
    deductions: float = 0.0
    unanswered_by_hour: list[int] = field(default_factory=lambda: [0] * 24)
    abandoned_by_hour: list[int] = field(default_factory=lambda: [0] * 24)

    @property
    def answered_pct(self) -> float | None:
        """Answered share in percent, to 0.1; ``None`` without calls."""
        if not self.calls:
            return None
        return round(100.0 * self.answered / self.calls, 1)

    @property
    def ring_avg(self) -> float | None:
        if not self.ring_count:
            return None
        return round(self.ring_total / self.ring_count, 1)

    def violations_in(self, state: str) -> int:
        return sum(n for (_, st), n in self.violations.items() if st == state)

    def violations_of(self, kind: str) -> int:
        return sum(n for (k, _), n in self.violations.items() if k == kind)

    @property
    def is_empty(self) -> bool:
        return not (self.calls or self.callbacks or self.violations)

    def add(self, other: Figures) -> None:
        """Add ``other``'s figures to these (sums, the larger maximum)."""
        self.calls += other.calls
        self.answered += other.answered
        self.unanswered += other.unanswered
        self.abandoned += other.abandoned
        self.forwarded += other.forwarded
        self.ring_count += other.ring_count
        self.ring_total += other.ring_total
        if other.ring_max is not None:
            self.ring_max = (
                other.ring_max if self.ring_max is None else max(self.ring_max, other.ring_max)
            )
        self.callbacks += other.callbacks
        self.callbacks_done += other.callbacks_done
        self.callbacks_open += other.callbacks_open
        self.callbacks_overdue += other.callbacks_overdue
        for key, count in other.violations.items():
            self.violations[key] = self.violations.get(key, 0) + count
        self.deductions = round(self.deductions + other.deductions, 2)
        for hour in range(24):
            self.unanswered_by_hour[hour] += other.unanswered_by_hour[hour]
            self.abandoned_by_hour[hour] += other.abandoned_by_hour[hour]


@dataclass(slots=True)
class LineReport:
    line_id: int | None  # None: the unit's violations that name no line
    number: str
    name: str
    figures: Figures = field(default_factory=Figures)


@dataclass(slots=True)
class UnitReport:
    unit_id: int
    name: str
    timezone: str
    lines: list[LineReport] = field(default_factory=list)
    figures: Figures = field(default_factory=Figures)
    score: float = BASE_POINTS


@dataclass(frozen=True, slots=True)
class ViolationCount:
    unit_id: int
    unit_name: str
    line_number: str  # "" for violations that name no line
    kind: str
    state: str
    count: int
    deduction: float  # points taken (confirmed ones only)


@dataclass(frozen=True, slots=True)
class MonitoringGap:
    """A span when the listener could not see a PBX: calls in it may be missing here."""

    pbx: str
    started_at: datetime
    ended_at: datetime | None  # None: still going on
    reason: str
    calls_lost_estimate: int | None  # calls that began and ended unseen; None: unknown


@dataclass(slots=True)
class MissedCallReport:
    period: Period
    generated_at: datetime
    base_points: float
    units: list[UnitReport] = field(default_factory=list)
    total: Figures = field(default_factory=Figures)
    violation_counts: list[ViolationCount] = field(default_factory=list)
    gaps: list[MonitoringGap] = field(default_factory=list)  # the figures may miss calls

    def rows(self) -> Iterator[tuple[str, UnitReport | None, LineReport | None, Figures]]:
        """``("line", unit, line, f)`` for each line, ``("unit", unit, None, f)`` after a
        unit's lines, and ``("total", None, None, f)`` last: the table every export uses."""
        for unit in self.units:
            for line in unit.lines:
                yield "line", unit, line, line.figures
            yield "unit", unit, None, unit.figures
        yield "total", None, None, self.total

    @property
    def kinds_seen(self) -> list[str]:
        seen = {count.kind for count in self.violation_counts}
        return [kind for kind in VIOLATION_KINDS if kind in seen]


# --------------------------------------------------------------------------- the report


def monitoring_gaps(
    session: Session, spans: Sequence[tuple[datetime, datetime]]
) -> list[MonitoringGap]:
    """Listener outages overlapping any of ``spans`` (UTC), oldest first. They belong to a
    PBX, not a unit: every reader of a report is told the figures may miss calls."""
    if not spans:
        return []
    start = min(span[0] for span in spans)
    end = max(span[1] for span in spans)
    rows = session.scalars(
        select(Outage)
        .where(Outage.started_at < end, or_(Outage.ended_at.is_(None), Outage.ended_at > start))
        .order_by(Outage.started_at, Outage.id)
    )
    return [
        MonitoringGap(
            row.pbx,
            _aware(row.started_at),
            _aware(row.ended_at) if row.ended_at is not None else None,
            row.reason,
            row.calls_lost_estimate,
        )
        for row in rows
    ]


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def missed_call_report(
    session: Session,
    unit_ids: Collection[int],
    period: Period,
    *,
    now: datetime,
    table: Mapping[str, float] = DEFAULT_TABLE,
    base_points: float = BASE_POINTS,
    default_zone: str = DEFAULT_ZONE,
) -> MissedCallReport:
    """The report for the units ``unit_ids`` (the caller has checked they may be seen).

    ``now`` decides which open callbacks are overdue (an injected clock, not the wall).
    """
    if now.tzinfo is None:
        raise ReportError("now must be an aware datetime")
    report = MissedCallReport(period=period, generated_at=now, base_points=base_points)
    if not unit_ids:
        return report
    dialect = session.get_bind().dialect.name

    units = session.execute(
        select(Unit.id, Unit.name, Unit.timezone).where(Unit.id.in_(list(unit_ids)))
    ).all()
    unit_reports = {
        row.id: UnitReport(row.id, row.name, zone_of(row.timezone, default_zone).key)
        for row in units
    }
    lines = session.execute(
        select(DutyLine.id, DutyLine.number, DutyLine.name, DutyLine.unit_id, DutyLine.active)
        .where(DutyLine.unit_id.in_(list(unit_reports)))
        .order_by(DutyLine.number)
    ).all()
    line_reports: dict[str, LineReport] = {}
    line_unit: dict[str, int] = {}
    line_active: dict[str, bool] = {}
    lines_by_id: dict[int, LineReport] = {}
    for row in lines:
        line = LineReport(row.id, row.number, row.name or "")
        line_reports[row.number] = line
        line_unit[row.number] = row.unit_id
        line_active[row.number] = bool(row.active)
        lines_by_id[row.id] = line
    unit_only: dict[int, LineReport] = {}

    # one pass per time zone: each unit's period runs from its own local midnights
    zones: dict[str, list[int]] = defaultdict(list)
    for unit in unit_reports.values():
        zones[unit.timezone].append(unit.unit_id)
    for zone_name, zone_units in sorted(zones.items()):
        zone = ZoneInfo(zone_name)
        start, end = period.bounds(zone)
        numbers = [n for n, u in line_unit.items() if u in set(zone_units)]
        if numbers:
            _call_figures(session, numbers, zone, start, end, now, dialect, line_reports)
        _violation_figures(
            session, zone_units, start, end, table, unit_reports, lines_by_id, unit_only, report
        )

    # arrange: lines under their units, units in tree order, totals added up
    for number, line in line_reports.items():
        if line_active[number] or not line.figures.is_empty:
            unit_reports[line_unit[number]].lines.append(line)
    for unit_id, extra in unit_only.items():
        unit_reports[unit_id].lines.append(extra)
    order = _tree_order(session, unit_reports)
    for unit in sorted(unit_reports.values(), key=lambda u: order[u.unit_id]):
        if not unit.lines:
            continue
        for line in unit.lines:
            unit.figures.add(line.figures)
        unit.score = points_left(unit.figures.deductions, base_points)
        report.units.append(unit)
        report.total.add(unit.figures)
    report.gaps = monitoring_gaps(session, [period.bounds(ZoneInfo(z)) for z in zones])
    report.violation_counts.sort(
        key=lambda c: (
            order[c.unit_id],
            c.line_number,
            VIOLATION_KINDS.index(c.kind) if c.kind in VIOLATION_KINDS else 99,
            VIOLATION_STATES.index(c.state) if c.state in VIOLATION_STATES else 99,
        )
    )
    return report


def _tree_order(session: Session, units: Collection[int]) -> dict[int, tuple[int, ...]]:
    """A sort key per unit: the ids on its path from the root, so units come in tree order
    (a unit before the units below it; siblings in the order they were created)."""
    parents: dict[int, int | None] = {
        row.id: row.parent_id for row in session.execute(select(Unit.id, Unit.parent_id))
    }
    order: dict[int, tuple[int, ...]] = {}
    for unit_id in units:
        path = [unit_id]
        current = parents.get(unit_id)
        while current is not None and current not in path:
            path.append(current)
            current = parents.get(current)
        order[unit_id] = tuple(reversed(path))
    return order


def _count_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _inbound_in(numbers: Sequence[str], start: datetime, end: datetime) -> list[Any]:
    return [
        Call.line.in_(numbers),
        Call.started_at >= start,
        Call.started_at < end,
        Call.direction == "inbound",
        Call.originated.is_(false()),
    ]


def _call_figures(
    session: Session,
    numbers: Sequence[str],
    zone: ZoneInfo,
    start: datetime,
    end: datetime,
    now: datetime,
    dialect: str,
    line_reports: Mapping[str, LineReport],
) -> None:
    """Calls, ring times, callbacks and the hourly counts in one pass over the period's
    calls (``GROUP BY`` line and local hour; each call has at most one callback)."""
    is_open = Callback.state == "open"
    overdue = and_(
        is_open,
        or_(
            and_(Callback.due_at.is_not(None), Callback.due_at <= now),
            and_(Callback.due_at.is_(None), Call.started_at <= now - CALLBACK_OVERDUE_AFTER),
        ),
    )

    def flag(condition: ColumnElement[bool]) -> ColumnElement[int]:
        return case((condition, 1), else_=0)

    # one row per call; grouped outside, so the zone parameter appears once (PostgreSQL
    # binds each occurrence of a parameter separately and would not match SELECT to GROUP BY)
    per_call = (
        select(
            Call.line.label("line"),
            hour_of_day(Call.started_at, zone, start, end, dialect).label("hour"),
            flag(Call.outcome == "answered").label("answered"),
            flag(Call.outcome.in_(UNANSWERED_OUTCOMES)).label("unanswered"),
            flag(Call.outcome == "abandoned").label("abandoned"),
            flag(Call.forwarded_to.is_not(None)).label("forwarded"),
            Call.ring_seconds.label("ring"),
            Callback.id.label("callback"),
            flag(Callback.state.in_(DONE_CALLBACK_STATES)).label("callback_done"),
            flag(is_open).label("callback_open"),
            flag(overdue).label("callback_overdue"),
        )
        .select_from(Call)
        .outerjoin(Callback, Callback.call_id == Call.id)
        .where(*_inbound_in(numbers, start, end))
        .subquery()
    )
    c = per_call.c
    query = select(
        c.line,
        c.hour,
        func.count(),
        func.sum(c.answered),
        func.sum(c.unanswered),
        func.sum(c.abandoned),
        func.sum(c.forwarded),
        func.count(c.ring),
        func.coalesce(func.sum(c.ring), 0.0),
        func.max(c.ring),
        func.count(c.callback),
        func.sum(c.callback_done),
        func.sum(c.callback_open),
        func.sum(c.callback_overdue),
    ).group_by(c.line, c.hour)
    for row in session.execute(query):
        figures = line_reports[str(row[0])].figures
        hour = int(row[1])
        figures.calls += int(row[2])
        figures.answered += int(row[3])
        figures.unanswered += int(row[4])
        figures.abandoned += int(row[5])
        figures.forwarded += int(row[6])
        figures.unanswered_by_hour[hour] += int(row[4])
        figures.abandoned_by_hour[hour] += int(row[5])
        figures.ring_count += int(row[7])
        figures.ring_total += float(row[8] or 0.0)
        if row[9] is not None:
            ring_max = float(row[9])
            figures.ring_max = (
                ring_max if figures.ring_max is None else max(figures.ring_max, ring_max)
            )
        figures.callbacks += int(row[10])
        figures.callbacks_done += int(row[11])
        figures.callbacks_open += int(row[12])
        figures.callbacks_overdue += int(row[13])


def deduction_sql(table: Mapping[str, float]) -> ColumnElement[float]:
    """The points a violation row takes: its stored deduction once confirmed (the table's
    when none was stored), 0 in any other state."""
    by_kind = case(
        *[(Violation.kind == kind, literal(float(points))) for kind, points in table.items()],
        else_=literal(0.0),
    )
    return case(
        (Violation.state == "confirmed", func.coalesce(Violation.deduction, by_kind)),
        else_=literal(0.0),
    )


def _violation_figures(
    session: Session,
    unit_ids: Sequence[int],
    start: datetime,
    end: datetime,
    table: Mapping[str, float],
    unit_reports: Mapping[int, UnitReport],
    lines_by_id: Mapping[int, LineReport],
    unit_only: dict[int, LineReport],
    report: MissedCallReport,
) -> None:
    unit_id = func.coalesce(Violation.unit_id, DutyLine.unit_id)
    grouped = (
        select(
            unit_id.label("unit_id"),
            Violation.line_id.label("line_id"),
            Violation.kind.label("kind"),
            Violation.state.label("state"),
            deduction_sql(table).label("points"),
        )
        .select_from(Violation)
        .outerjoin(DutyLine, Violation.line_id == DutyLine.id)
        .where(unit_id.in_(list(unit_ids)), Violation.at >= start, Violation.at < end)
        .subquery()
    )
    query = select(
        grouped.c.unit_id,
        grouped.c.line_id,
        grouped.c.kind,
        grouped.c.state,
        func.count(),
        func.coalesce(func.sum(grouped.c.points), 0.0),
    ).group_by(grouped.c.unit_id, grouped.c.line_id, grouped.c.kind, grouped.c.state)
    for unit, line_id, kind, state, count, points in session.execute(query):
        owner = unit_reports[unit]
        line = lines_by_id.get(line_id) if line_id is not None else None
        if line is None:
            line = unit_only.setdefault(unit, LineReport(None, "", ""))
        figures = line.figures
        figures.violations[(kind, state)] = figures.violations.get((kind, state), 0) + int(count)
        deduction = round(float(points), 2)
        figures.deductions = round(figures.deductions + deduction, 2)
        report.violation_counts.append(
            ViolationCount(
                owner.unit_id, owner.name, line.number, kind, state, int(count), deduction
            )
        )
