"""Line policies from the database: what the pure rules judge each duty line by.

The database is the source of the policy once seeded (:mod:`callcenter.store.seed`): a
line's unit, its desk phones and its thresholds are read here and handed to the rules as
:class:`callcenter.rules.policy.LinePolicy` (pure data), together with the ids and settings
the jobs need to store what the rules found (:class:`StoredLine`). Inactive lines are not
judged and are left out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from callcenter.rules.policy import LinePolicy, Policies
from callcenter.store.org import DeskPhone, DutyLine
from callcenter.tracking import directory as tracking

__all__ = [
    "LineDirectory",
    "StoredLine",
    "line_for_number",
    "lines_for_endpoints",
    "load_line_directory",
    "load_policies",
    "load_stored_lines",
    "load_tracking_directory",
    "policy_of",
]


@dataclass(frozen=True, slots=True)
class StoredLine:
    """A duty line as stored: its policy for the rules, plus ids and settings for the jobs."""

    line_id: int
    unit_id: int
    unit_timezone: str
    schedule: str
    policy: LinePolicy

    @property
    def number(self) -> str:
        return self.policy.number

    @property
    def desk_phones(self) -> frozenset[str]:
        return self.policy.desk_phones


def policy_of(line: DutyLine) -> LinePolicy:
    """The pure policy of a stored line (its unit and desk phones loaded or lazily loadable)."""
    return LinePolicy(
        number=line.number,
        unit=line.unit.name,
        desk_phones=frozenset(phone.endpoint for phone in line.desk_phones),
        answer_within_seconds=line.answer_within_seconds,
        offline_grace_seconds=line.offline_grace_seconds,
        unmanned_count=line.unmanned_count,
        unmanned_window_seconds=line.unmanned_window_seconds,
        schedule=line.schedule,
    )


def _stored(line: DutyLine) -> StoredLine:
    return StoredLine(
        line_id=line.id,
        unit_id=line.unit_id,
        unit_timezone=line.unit.timezone,
        schedule=line.schedule,
        policy=policy_of(line),
    )


_ACTIVE_LINES = (
    select(DutyLine)
    .where(DutyLine.active.is_(True))
    .options(selectinload(DutyLine.unit), selectinload(DutyLine.desk_phones))
)


def line_for_number(session: Session, number: str | None) -> StoredLine | None:
    """The active duty line with exactly this number, or ``None``."""
    if not number:
        return None
    line = session.scalar(_ACTIVE_LINES.where(DutyLine.number == number))
    return None if line is None else _stored(line)


def lines_for_endpoints(session: Session, endpoints: Iterable[str]) -> list[StoredLine]:
    """The active lines that list any of ``endpoints`` as a desk phone, by line number."""
    wanted = sorted({e for e in endpoints if e})
    if not wanted:
        return []
    having_phone = select(DeskPhone.line_id).where(DeskPhone.endpoint.in_(wanted))
    lines = session.scalars(
        _ACTIVE_LINES.where(DutyLine.id.in_(having_phone)).order_by(DutyLine.number)
    )
    return [_stored(line) for line in lines]


def load_stored_lines(session: Session) -> list[StoredLine]:
    """Every active duty line, by number."""
    return [_stored(line) for line in session.scalars(_ACTIVE_LINES.order_by(DutyLine.number))]


def load_tracking_directory(session: Session) -> tracking.Directory:
    """What the listener's tracker knows of the site, as stored now: every active line's
    number and desk phones (the console edits them; the config only seeds them). Configured
    as soon as any line is stored, even if every one is switched off."""
    return tracking.Directory.of(
        (
            tracking.DutyLine(number=line.number, desk_phones=line.desk_phones)
            for line in load_stored_lines(session)
        ),
        configured=session.scalar(select(DutyLine.id).limit(1)) is not None,
    )


class LineDirectory:
    """A snapshot of every active line, by number and by desk phone (for a worker's cache)."""

    def __init__(self, lines: Iterable[StoredLine] = ()) -> None:
        self.lines = tuple(lines)
        self._by_number = {line.number: line for line in self.lines}
        self._by_phone: dict[str, list[StoredLine]] = {}
        for line in self.lines:
            for endpoint in sorted(line.desk_phones):
                self._by_phone.setdefault(endpoint, []).append(line)

    def for_number(self, number: str | None) -> StoredLine | None:
        return self._by_number.get(number) if number else None

    def for_endpoints(self, endpoints: Iterable[str]) -> list[StoredLine]:
        """The lines that list any of ``endpoints`` as a desk phone, by line number."""
        found = {line.line_id: line for e in endpoints for line in self._by_phone.get(e, ())}
        return sorted(found.values(), key=lambda line: line.number)

    def policies(self) -> Policies:
        return Policies({line.number: line.policy for line in self.lines}, configured=True)


def load_line_directory(session: Session) -> LineDirectory:
    """Every active line, read once."""
    return LineDirectory(load_stored_lines(session))


def load_policies(session: Session) -> Policies:
    """The :class:`~callcenter.rules.policy.Policies` of every active line (configured: a line
    that is not stored has no policy and is not judged)."""
    return Policies({s.number: s.policy for s in load_stored_lines(session)}, configured=True)
