"""The stored roster: importing a parsed roster all or nothing, the console's edits, and
:func:`shift_for`, which tells the jobs whose shift an instant fell in.

Every change is checked like a roster file (:mod:`callcenter.roster`) plus what needs the
database: each person named must be an officer of the unit, and no shift may overlap a
shift stored for the unit. The unit's row is locked first (``SELECT ... FOR UPDATE`` on
PostgreSQL, SQLite's write lock), so two changes to one unit's roster run one after the
other and cannot both pass the overlap check and then both write.

The functions work inside the caller's transaction and never commit; what they write goes
in a savepoint, so a failure leaves the caller's other work as it was.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from callcenter.roster import (
    RosterError,
    RosterImport,
    RowError,
    ShiftRow,
    StoredShift,
    check_officers,
    check_shift,
    find_overlaps,
    normalize_name,
    sort_errors,
)
from callcenter.store.duty import Shift
from callcenter.store.org import Officer, Unit

__all__ = [
    "ImportResult",
    "SavedShift",
    "UnknownShift",
    "UnknownUnit",
    "add_shift",
    "delete_shift",
    "import_roster",
    "shift_for",
    "shifts_between",
    "shifts_on_days",
    "unit_by_name",
    "update_shift",
]

logger = logging.getLogger(__name__)


class UnknownUnit(LookupError):
    """No unit with that id or name."""


@dataclass(frozen=True)
class SavedShift:
    """A shift added or changed, and the names registered as the unit's officers with it."""

    shift: Shift
    officers_added: tuple[str, ...] = ()


class UnknownShift(LookupError):
    """No shift with that id."""


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What an import did, or would have done (``dry_run``), or why it did nothing."""

    errors: list[RowError]
    warnings: list[str] = field(default_factory=list)
    added: int = 0  # new shifts
    updated: int = 0  # stored shifts overwritten in place (replace, same start)
    removed: int = 0  # stored shifts of the replaced days that the file no longer has
    officers_added: list[str] = field(default_factory=list)
    first_day: date | None = None
    last_day: date | None = None
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def written(self) -> bool:
        return self.ok and not self.dry_run


# --------------------------------------------------------------------------- look-ups


def unit_by_name(session: Session, name: str) -> Unit | None:
    """The unit named exactly ``name`` (surrounding spaces ignored)."""
    return session.scalar(select(Unit).where(Unit.name == name.strip()))


def shift_for(session: Session, unit_id: int, at: datetime) -> Shift | None:
    """The unit's shift that ``at`` falls in (start inclusive, end exclusive), or ``None``.

    One index seek on ``ix_shifts_unit_span`` (unit_id, starts_at, ends_at): shifts of a
    unit never overlap, so the only candidate is the last one starting at or before ``at``;
    its end is checked afterwards. (Filtering on ``ends_at`` in SQL would make the database
    walk back through the unit's whole history whenever ``at`` falls in a gap.)
    """
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"naive datetime {at.isoformat()} (pass an aware datetime)")
    candidate = session.scalar(
        select(Shift)
        .where(Shift.unit_id == unit_id, Shift.starts_at <= at)
        .order_by(Shift.starts_at.desc())
        .limit(1)
    )
    if candidate is None or candidate.ends_at <= at:
        return None
    return candidate


def shifts_between(session: Session, unit_id: int, start: datetime, end: datetime) -> list[Shift]:
    """The unit's shifts overlapping ``[start, end)``, in time order."""
    return list(
        session.scalars(
            select(Shift)
            .where(Shift.unit_id == unit_id, Shift.starts_at < end, Shift.ends_at > start)
            .order_by(Shift.starts_at)
        )
    )


def shifts_on_days(session: Session, unit_id: int, first: date, last: date) -> list[Shift]:
    """The unit's roster lines dated ``first`` to ``last`` (a night shift belongs to the
    date it starts on), in time order."""
    return list(
        session.scalars(
            select(Shift)
            .where(Shift.unit_id == unit_id, Shift.day >= first, Shift.day <= last)
            .order_by(Shift.starts_at)
        )
    )


# --------------------------------------------------------------------------- import


def import_roster(
    session: Session,
    unit_id: int,
    parsed: RosterImport,
    *,
    replace: bool = False,
    create_officers: bool = False,
    dry_run: bool = False,
) -> ImportResult:
    """Store the rows of ``parsed`` as the unit's shifts, all or nothing.

    Nothing is written when ``parsed`` has errors or when the database adds some: a name
    that is not an officer of the unit (with ``create_officers``, such names are registered
    as officers instead), or a row overlapping a stored shift. With ``replace``, the stored
    shifts of the days in the file are replaced (a stored shift with the same start is
    updated in place, so what refers to it keeps its link; the others are deleted); stored
    shifts of other days still count for the overlap check. ``dry_run`` checks everything
    and writes nothing. Raises :class:`UnknownUnit`; a ``parsed`` read in another time zone
    than the unit's is a :class:`ValueError`.
    """
    unit = _lock_unit(session, unit_id)
    if parsed.timezone != unit.timezone:
        raise ValueError(
            f"the roster was read in {parsed.timezone}, unit {unit.name} is in {unit.timezone}"
        )
    rows = parsed.rows
    errors = list(parsed.errors)
    days = sorted({row.day for row in rows})
    first_day, last_day = (days[0], days[-1]) if days else (None, None)

    officers = _officers(session, unit_id)
    known = {normalize_name(o.name) for o in officers if o.active}
    inactive = {normalize_name(o.name) for o in officers if not o.active}
    new_officers = _strangers(rows, known | inactive) if create_officers else []
    known.update(new_officers)
    errors.extend(check_officers(rows, known, inactive=inactive))

    replaced: list[Shift] = []
    if rows:
        start = min(row.starts_at for row in rows)
        end = max(row.ends_at for row in rows)
        nearby = shifts_between(session, unit_id, start, end)
        if replace:
            replaced = shifts_on_days(session, unit_id, days[0], days[-1])
            replaced = [shift for shift in replaced if shift.day in set(days)]
            replaced_ids = {shift.id for shift in replaced}
            nearby = [shift for shift in nearby if shift.id not in replaced_ids]
        errors.extend(find_overlaps(rows, _stored(nearby), timezone=unit.timezone))

    if errors:
        return ImportResult(
            errors=sort_errors(errors),
            warnings=list(parsed.warnings),
            first_day=first_day,
            last_day=last_day,
            dry_run=dry_run,
        )

    by_start = {shift.starts_at: shift for shift in replaced}
    updated = [row for row in rows if row.starts_at in by_start]
    added = [row for row in rows if row.starts_at not in by_start]
    kept_starts = {row.starts_at for row in updated}
    removed = [shift for shift in replaced if shift.starts_at not in kept_starts]
    result = ImportResult(
        errors=[],
        warnings=list(parsed.warnings),
        added=len(added),
        updated=len(updated),
        removed=len(removed),
        officers_added=new_officers,
        first_day=first_day,
        last_day=last_day,
        dry_run=dry_run,
    )
    if dry_run:
        return result
    with session.begin_nested():
        for name in new_officers:
            session.add(Officer(unit_id=unit_id, name=name))
        for shift in removed:
            session.delete(shift)
        session.flush()  # deletes first: a new shift may take a removed one's place
        for row in updated:
            _apply(by_start[row.starts_at], row)
        session.add_all(_new_shift(unit_id, row) for row in added)
        session.flush()
    logger.info(
        "roster of unit %s (%s): %d added, %d updated, %d removed, %d officer(s) added",
        unit.id,
        unit.name,
        result.added,
        result.updated,
        result.removed,
        len(new_officers),
    )
    return result


# --------------------------------------------------------------------------- edits


def add_shift(
    session: Session,
    unit_id: int,
    *,
    day: date,
    name: str,
    starts_at: datetime,
    ends_at: datetime,
    main_officer: str,
    backup_officer: str = "",
    leader: str = "",
    phone: str = "",
    create_officers: bool = False,
) -> SavedShift:
    """Add one shift, checked like an imported row. Raises :class:`RosterError`,
    :class:`UnknownUnit`. Times from :func:`callcenter.roster.shift_times` for a 班次. With
    ``create_officers``, names the unit does not know yet are registered as its officers
    (a former officer's name stays an error)."""
    unit = _lock_unit(session, unit_id)
    row = check_shift(
        day=day,
        name=name,
        starts_at=starts_at,
        ends_at=ends_at,
        main_officer=main_officer,
        backup_officer=backup_officer,
        leader=leader,
        phone=phone,
    )
    strangers = _check_against_store(session, unit, row, None, create_officers)
    shift = _new_shift(unit_id, row)
    with session.begin_nested():
        session.add_all(Officer(unit_id=unit_id, name=name) for name in strangers)
        session.add(shift)
    return SavedShift(shift, tuple(strangers))


def update_shift(
    session: Session,
    shift_id: int,
    *,
    day: date | None = None,
    name: str | None = None,
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
    main_officer: str | None = None,
    backup_officer: str | None = None,
    leader: str | None = None,
    phone: str | None = None,
    create_officers: bool = False,
) -> SavedShift:
    """Change a shift (``None``: keep that field), checked like an imported row, the
    shift itself left out of the overlap check; ``create_officers`` as for
    :func:`add_shift`. Raises :class:`RosterError`, :class:`UnknownShift`."""
    shift = session.get(Shift, shift_id)
    if shift is None:
        raise UnknownShift(f"no shift {shift_id}")
    unit = _lock_unit(session, shift.unit_id)
    row = check_shift(
        day=shift.day if day is None else day,
        name=shift.name if name is None else name,
        starts_at=shift.starts_at if starts_at is None else starts_at,
        ends_at=shift.ends_at if ends_at is None else ends_at,
        main_officer=shift.main_officer if main_officer is None else main_officer,
        backup_officer=shift.backup_officer if backup_officer is None else backup_officer,
        leader=shift.leader if leader is None else leader,
        phone=shift.phone if phone is None else phone,
    )
    strangers = _check_against_store(session, unit, row, shift, create_officers)
    with session.begin_nested():
        session.add_all(Officer(unit_id=unit.id, name=name) for name in strangers)
        _apply(shift, row)
    return SavedShift(shift, tuple(strangers))


def delete_shift(session: Session, shift_id: int) -> bool:
    """Delete a shift; ``False`` when there was none (deleted already). What referred to
    it (violations) keeps its row, with the link cleared by the database."""
    shift = session.get(Shift, shift_id)
    if shift is None:
        return False
    _lock_unit(session, shift.unit_id)
    with session.begin_nested():
        session.delete(shift)
    return True


# --------------------------------------------------------------------------- helpers


def _lock_unit(session: Session, unit_id: int) -> Unit:
    """The unit, locked until the transaction ends, so roster changes of one unit happen
    one after the other and each sees what the one before stored."""
    if session.get_bind().dialect.name == "sqlite":
        # SQLite has no row locks and ignores FOR UPDATE; a write takes the database's write
        # lock now (waiting out another writer), instead of at the first insert, when a
        # snapshot older than the other writer's commit could only fail.
        session.execute(
            update(Unit).where(Unit.id == unit_id).values(name=Unit.name),
            execution_options={"synchronize_session": False},
        )
    unit = session.scalar(select(Unit).where(Unit.id == unit_id).with_for_update())
    if unit is None:
        raise UnknownUnit(f"no unit {unit_id}")
    return unit


def _officers(session: Session, unit_id: int) -> Sequence[Officer]:
    return session.scalars(select(Officer).where(Officer.unit_id == unit_id)).all()


def _stored(shifts: Iterable[Shift]) -> list[StoredShift]:
    return [StoredShift(s.id, s.day, s.name, s.starts_at, s.ends_at) for s in shifts]


def _check_against_store(
    session: Session, unit: Unit, row: ShiftRow, current: Shift | None, create_officers: bool
) -> list[str]:
    """Officers and overlaps for one edited shift; names ``current`` (the shift being
    edited) has already stay acceptable even if the officer left since. Returns the names
    to register as officers (``create_officers``: those the unit does not know at all)."""
    officers = _officers(session, unit.id)
    kept = {name for _column, name in _people(current)} if current is not None else set()
    known = {normalize_name(o.name) for o in officers if o.active} | kept
    inactive = {normalize_name(o.name) for o in officers if not o.active} - kept
    strangers = _strangers([row], known | inactive) if create_officers else []
    known.update(strangers)
    errors = check_officers([row], known, inactive=inactive)
    nearby = [
        shift
        for shift in shifts_between(session, unit.id, row.starts_at, row.ends_at)
        if current is None or shift.id != current.id
    ]
    errors.extend(find_overlaps([row], _stored(nearby), timezone=unit.timezone))
    if errors:
        raise RosterError(sort_errors(errors))
    return strangers


def _strangers(rows: Iterable[ShiftRow], officers: Collection[str]) -> list[str]:
    """The names in ``rows`` that are none of ``officers`` (normalised), once each, in order."""
    found: list[str] = []
    for row in rows:
        for _column, name in row.people():
            if name not in officers and name not in found:
                found.append(name)
    return found


def _people(shift: Shift) -> list[tuple[str, str]]:
    row = ShiftRow(
        row=None,
        day=shift.day,
        name=shift.name,
        starts_at=shift.starts_at,
        ends_at=shift.ends_at,
        main_officer=normalize_name(shift.main_officer),
        backup_officer=shift.backup_officer,
        leader=shift.leader,
    )
    return row.people()


def _new_shift(unit_id: int, row: ShiftRow) -> Shift:
    shift = Shift(unit_id=unit_id)
    _apply(shift, row)
    return shift


def _apply(shift: Shift, row: ShiftRow) -> None:
    shift.day = row.day
    shift.name = row.name
    shift.starts_at = row.starts_at
    shift.ends_at = row.ends_at
    shift.main_officer = row.main_officer
    shift.backup_officer = row.backup_officer
    shift.leader = row.leader
    shift.phone = row.phone
