"""The call list and call detail: filters, scoping to units, keyset pagination.

Everything here is a plain SQLAlchemy 2 ``select`` built from a :class:`CallFilters`, run on
the session it is given; the console, the reports and ``bench/`` all use these, so what the
benchmark times is what the console runs.

Scoping: a call belongs to the unit whose duty line it was made on (``calls.line`` =
``duty_lines.number``); ``CallFilters.unit_ids`` (the units the user may see) restricts the
list to those units' lines; ``None`` means no restriction (a job, a benchmark).

Pagination is by keyset on ``(started_at, id)``, newest first, never ``OFFSET``: a page
asks for the rows strictly after the previous page's last ``(started_at, id)``, so equal
timestamps neither repeat nor skip rows and page 1,000 costs what page 1 costs. The
condition is written as ``started_at <= :t AND (started_at < :t OR id < :id)`` so both
engines walk ``ix_calls_started_at`` (or ``ix_calls_line_started_at`` with a line filter)
backwards: SQLite's index carries the rowid (``id``) after ``started_at``; PostgreSQL adds an
incremental sort on ``id`` within equal times. Calls without a start time (only from
transcripts without timestamps) belong to no day and are not listed.

Times are UTC-aware throughout; :func:`day_bounds` turns local dates of a unit's zone into
the UTC span to filter on.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, exists, or_, select, true
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import QueryableAttribute, Session, aliased, selectinload
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from callcenter.store.duty import Callback, LogEntry, LogEntryCall, Violation, ViolationCall
from callcenter.store.models import Call, CallLeg
from callcenter.store.org import DutyLine, Unit
from callcenter.tracking.records import OUTCOMES

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "MISSED_OUTCOMES",
    "BadCursorError",
    "CallDetail",
    "CallFilters",
    "CallPage",
    "CallRow",
    "Cursor",
    "apply_filters",
    "call_detail",
    "call_page",
    "call_unit_id",
    "day_bounds",
    "filter_clauses",
    "line_numbers",
    "list_select",
    "scope_clause",
]

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MISSED_OUTCOMES: tuple[str, ...] = tuple(o for o in OUTCOMES if o != "answered")


class BadCursorError(ValueError):
    """A page token that is not one of ours (edited by hand, truncated)."""


@dataclass(frozen=True, slots=True)
class Cursor:
    """A position in the list: the ``(started_at, id)`` of a row."""

    started_at: datetime
    id: int

    def encode(self) -> str:
        """An opaque URL-safe token (``?after=...``)."""
        micros = (self.started_at - _EPOCH) // timedelta(microseconds=1)  # exact, no float
        raw = f"{micros}.{self.id}".encode("ascii")
        return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")

    @classmethod
    def decode(cls, token: str) -> Cursor:
        try:
            padded = token + "=" * (-len(token) % 4)
            micros_text, id_text = base64.urlsafe_b64decode(padded).decode("ascii").split(".")
            micros, row_id = int(micros_text), int(id_text)
            started_at = _EPOCH + timedelta(microseconds=micros)
        except (ValueError, binascii.Error, UnicodeDecodeError, OverflowError) as exc:
            raise BadCursorError(f"bad page token {token[:40]!r}") from exc
        return cls(started_at, row_id)

    @classmethod
    def of(cls, call: Call) -> Cursor:
        if call.started_at is None:  # pragma: no cover - such calls are never listed
            raise ValueError(f"call {call.id} has no start time")
        return cls(call.started_at, call.id)


@dataclass(frozen=True, slots=True)
class CallFilters:
    """What the call list shows. Every field is optional; empty means "any".

    - ``unit_ids``: scope, the units whose lines may be shown (``None``: every call);
    - ``unit_id``, ``line``: one unit's lines, one line number;
    - ``outcomes``: any of these outcomes (:data:`MISSED_OUTCOMES` for "missed");
    - ``start``/``end``: ``started_at`` in ``[start, end)``, UTC-aware (see :func:`day_bounds`);
    - ``caller``: the caller number contains this text;
    - ``has_violation``: True, only calls with a violation; False, only calls without;
    - ``untagged``: True, only calls tied to no duty-log entry.
    """

    unit_ids: Collection[int] | None = None
    unit_id: int | None = None
    line: str | None = None
    outcomes: Collection[str] = ()
    start: datetime | None = None
    end: datetime | None = None
    caller: str | None = None
    has_violation: bool | None = None
    untagged: bool = False
    direction: str | None = None

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            value = getattr(self, name)
            if value is not None and value.utcoffset() is None:
                raise ValueError(f"{name} must be timezone-aware, got {value!r}")
        unknown = set(self.outcomes) - set(OUTCOMES)
        if unknown:
            raise ValueError(f"unknown outcomes {sorted(unknown)}; expected some of {OUTCOMES}")


@dataclass(frozen=True, slots=True)
class CallRow:
    """A call of the list with what the list shows beside it."""

    call: Call
    line: DutyLine | None
    unit: Unit | None
    log_entry_ids: tuple[int, ...] = ()
    violation_kinds: tuple[str, ...] = ()
    callback_state: str | None = None

    @property
    def tagged(self) -> bool:
        return bool(self.log_entry_ids)


@dataclass(frozen=True, slots=True)
class CallPage:
    """One page, newest first, with the tokens of the pages around it (None: no such page)."""

    rows: list[CallRow]
    next_cursor: Cursor | None
    prev_cursor: Cursor | None


@dataclass(slots=True)
class CallDetail:
    call: Call
    legs: list[CallLeg]
    line: DutyLine | None
    unit: Unit | None
    violations: list[Violation] = field(default_factory=list)
    log_entries: list[LogEntry] = field(default_factory=list)
    callback: Callback | None = None


# --------------------------------------------------------------------------- building blocks


class unindexed(FunctionElement[Any]):
    """A column as is, but not for choosing an index: ``+col`` on SQLite, ``col`` elsewhere.

    SQLite plans without statistics and takes any index that matches a WHERE term, even
    one that makes it sort a large part of the table for a page of 50 (``outcome`` has 5
    values); the unary ``+`` is SQLite's documented way to keep a term off the indexes.
    PostgreSQL plans from statistics and gets the plain column.
    """

    name = "unindexed"
    inherit_cache = True

    def __init__(self, column: ColumnElement[Any] | QueryableAttribute[Any]) -> None:
        super().__init__(column)
        self.type = column.type


@compiles(unindexed)
def _unindexed_default(element: unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return str(compiler.process(element.clauses, **kw))


@compiles(unindexed, "sqlite")
def _unindexed_sqlite(element: unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return "+" + str(compiler.process(element.clauses, **kw))


def line_numbers(unit_ids: Collection[int]) -> Select[str]:
    """The duty-line numbers of ``unit_ids`` (a subquery for ``Call.line.in_(...)``)."""
    return select(DutyLine.number).where(DutyLine.unit_id.in_(list(unit_ids)))


def filter_clauses(filters: CallFilters) -> list[ColumnElement[bool]]:
    """The WHERE clauses of ``filters``, all but ``untagged`` (use :func:`apply_filters`,
    which adds it as a join, to narrow a whole query)."""
    clauses: list[ColumnElement[bool]] = [Call.started_at.is_not(None)]
    if filters.unit_ids is not None:
        clauses.append(Call.line.in_(line_numbers(filters.unit_ids)))
    if filters.unit_id is not None:
        clauses.append(Call.line.in_(line_numbers([filters.unit_id])))
    if filters.line:
        clauses.append(Call.line == filters.line)
    if filters.outcomes:
        # Five values make ix_calls_outcome a poor way into a list sorted by time; SQLite
        # (no statistics) would take it and sort a third of the table.
        outcomes = sorted(set(filters.outcomes))
        clauses.append(unindexed(Call.outcome).in_(outcomes))
    if filters.direction:
        clauses.append(Call.direction == filters.direction)
    if filters.start is not None:
        clauses.append(Call.started_at >= filters.start)
    if filters.end is not None:
        clauses.append(Call.started_at < filters.end)
    if filters.caller:
        clauses.append(Call.caller.contains(filters.caller.strip(), autoescape=True))
    # A correlated EXISTS on the indexed ``call_id`` columns: the list walks its time or
    # line index and probes each row, stopping at the page's end.
    if filters.has_violation is not None:
        # every violation lists its calls in violation_calls, its own call included (the
        # workers write both): one EXISTS that PostgreSQL can run as a semi-join
        flagged = exists().where(ViolationCall.call_id == Call.id)
        clauses.append(flagged if filters.has_violation else ~flagged)
    # ``untagged`` is an anti-join, added by :func:`apply_filters`.
    return clauses


def apply_filters(query: Select[Any], filters: CallFilters) -> Select[Any]:
    """``query`` (selecting from ``calls``) narrowed to ``filters``.

    ``untagged`` is a LEFT JOIN anti-join on ``log_entry_calls`` rather than ``NOT IN`` or a
    correlated ``NOT EXISTS``: PostgreSQL plans it as an anti-join (NOT IN over a large set
    falls back to a per-row scan once the set outgrows ``work_mem``), and SQLite builds an
    automatic index for it when ``log_entry_calls(call_id)`` has none of its own (a
    correlated subquery would scan the table once per call).
    """
    query = query.where(*filter_clauses(filters))
    if filters.untagged:
        tie = aliased(LogEntryCall)
        query = query.outerjoin(tie, tie.call_id == Call.id).where(tie.call_id.is_(None))
    return query


def list_select(
    filters: CallFilters,
    *,
    after: Cursor | None = None,
    before: Cursor | None = None,
    limit: int = DEFAULT_PAGE_SIZE,
) -> Select[Call]:
    """The page query: newest first after ``after``, or oldest first before ``before``.

    With ``before`` the rows come in ascending order (the caller reverses them); give at
    most one of the two. ``limit`` rows are asked for as is (ask one more to learn whether
    another page follows).
    """
    if after is not None and before is not None:
        raise ValueError("give after or before, not both")
    query = apply_filters(select(Call), filters)
    if after is not None:
        query = query.where(
            Call.started_at <= after.started_at,
            or_(Call.started_at < after.started_at, Call.id < after.id),
        )
    if before is not None:
        query = query.where(
            Call.started_at >= before.started_at,
            or_(Call.started_at > before.started_at, Call.id > before.id),
        )
        return query.order_by(Call.started_at.asc(), Call.id.asc()).limit(limit)
    return query.order_by(Call.started_at.desc(), Call.id.desc()).limit(limit)


def call_page(
    session: Session,
    filters: CallFilters,
    *,
    after: Cursor | None = None,
    before: Cursor | None = None,
    limit: int = DEFAULT_PAGE_SIZE,
) -> CallPage:
    """One page of the list with each row's line, unit, log entries, violations, callback."""
    limit = max(1, min(limit, MAX_PAGE_SIZE))
    found = list(session.scalars(list_select(filters, after=after, before=before, limit=limit + 1)))
    more = len(found) > limit
    calls = found[:limit]
    if before is not None:
        calls.reverse()
        has_next, has_prev = True, more
    else:
        has_next, has_prev = more, after is not None
    rows = _rows(session, calls)
    next_cursor = Cursor.of(calls[-1]) if calls and has_next else None
    prev_cursor = Cursor.of(calls[0]) if calls and has_prev else None
    return CallPage(rows=rows, next_cursor=next_cursor, prev_cursor=prev_cursor)


def _rows(session: Session, calls: Sequence[Call]) -> list[CallRow]:
    if not calls:
        return []
    ids = [call.id for call in calls]
    numbers = {call.line for call in calls if call.line}
    lines = {
        line.number: line
        for line in session.scalars(
            select(DutyLine)
            .where(DutyLine.number.in_(numbers))
            .options(selectinload(DutyLine.unit))
        )
    }
    entries: dict[int, list[int]] = {}
    for call_id, entry_id in session.execute(
        select(LogEntryCall.call_id, LogEntryCall.log_entry_id)
        .where(LogEntryCall.call_id.in_(ids))
        .order_by(LogEntryCall.log_entry_id)
    ):
        entries.setdefault(call_id, []).append(entry_id)
    kinds: dict[int, set[str]] = {}
    for own_call_id, kind in session.execute(
        select(Violation.call_id, Violation.kind).where(Violation.call_id.in_(ids))
    ):
        if own_call_id is not None:
            kinds.setdefault(own_call_id, set()).add(kind)
    for call_id, kind in session.execute(
        select(ViolationCall.call_id, Violation.kind)
        .join(Violation, Violation.id == ViolationCall.violation_id)
        .where(ViolationCall.call_id.in_(ids))
    ):
        kinds.setdefault(call_id, set()).add(kind)
    callbacks = dict(
        session.execute(
            select(Callback.call_id, Callback.state).where(Callback.call_id.in_(ids))
        ).all()
    )
    rows = []
    for call in calls:
        line = lines.get(call.line or "")
        rows.append(
            CallRow(
                call=call,
                line=line,
                unit=line.unit if line is not None else None,
                log_entry_ids=tuple(entries.get(call.id, ())),
                violation_kinds=tuple(sorted(kinds.get(call.id, ()))),
                callback_state=callbacks.get(call.id),
            )
        )
    return rows


# --------------------------------------------------------------------------- one call


def call_unit_id(session: Session, call: Call) -> int | None:
    """The unit whose duty line ``call`` was made on; None when its line is not configured."""
    if not call.line:
        return None
    return session.scalar(select(DutyLine.unit_id).where(DutyLine.number == call.line))


def call_detail(
    session: Session, call_id: int, *, unit_ids: Collection[int] | None = None
) -> CallDetail | None:
    """A call with its legs, line, unit, violations, log entries and callback.

    None when there is no such call or (with ``unit_ids``) it is not on a line of those units.
    """
    call = session.get(Call, call_id)
    if call is None:
        return None
    line = (
        session.scalar(
            select(DutyLine)
            .where(DutyLine.number == call.line)
            .options(selectinload(DutyLine.unit))
        )
        if call.line
        else None
    )
    if unit_ids is not None and (line is None or line.unit_id not in set(unit_ids)):
        return None
    legs = list(
        session.scalars(select(CallLeg).where(CallLeg.call_id == call.id).order_by(CallLeg.id))
    )
    listed = select(ViolationCall.violation_id).where(ViolationCall.call_id == call.id)
    violations = list(
        session.scalars(
            select(Violation)
            .where(or_(Violation.call_id == call.id, Violation.id.in_(listed)))
            .order_by(Violation.at, Violation.id)
        )
    )
    entries = list(
        session.scalars(
            select(LogEntry)
            .join(LogEntryCall, LogEntryCall.log_entry_id == LogEntry.id)
            .where(LogEntryCall.call_id == call.id)
            .order_by(LogEntry.at, LogEntry.id)
        )
    )
    callback = session.scalar(select(Callback).where(Callback.call_id == call.id))
    return CallDetail(
        call=call,
        legs=legs,
        line=line,
        unit=line.unit if line is not None else None,
        violations=violations,
        log_entries=entries,
        callback=callback,
    )


# --------------------------------------------------------------------------- time


def day_bounds(first: date, last: date | None, zone: str | ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC span ``[start, end)`` of the local days ``first`` .. ``last`` (inclusive) in
    ``zone``; ``last`` None means the single day ``first``."""
    tz = zone if isinstance(zone, ZoneInfo) else ZoneInfo(zone)
    last = last or first
    if last < first:
        first, last = last, first
    start = datetime.combine(first, time.min, tzinfo=tz)
    end = datetime.combine(last + timedelta(days=1), time.min, tzinfo=tz)
    return start.astimezone(UTC), end.astimezone(UTC)


def scope_clause(unit_ids: Collection[int] | None) -> ColumnElement[bool]:
    """``calls.line`` belongs to one of ``unit_ids`` (always true for None)."""
    if unit_ids is None:
        return true()
    return Call.line.in_(line_numbers(unit_ids))
