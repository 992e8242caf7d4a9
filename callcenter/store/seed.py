"""Seeding the organisation from the config: units, duty lines and their desk phones.

The config's ``[[lines]]`` are the first source of the line policy; after the first start the
database wins (the console edits it). :func:`seed_from_config` therefore only *adds* what is
missing — a unit named by a line that no unit has, a line whose number no line has, with its
desk phones — and never changes a line (or its desk phones) that is already stored, even if
the config now says otherwise.

Safe to run at every start of every process, concurrently: each row is inserted in a
savepoint, and when another process inserted the same unit or line first, the unique
constraint (``units.name``, ``duty_lines.number``) stops the second insert, only the
savepoint is rolled back, and the stored row is used.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from callcenter.store.org import DeskPhone, DutyLine, Unit

if TYPE_CHECKING:
    from callcenter.config import Config, LineConfig

__all__ = ["SeedReport", "seed_from_config", "unit_name_for"]

logger = logging.getLogger(__name__)

_Row = TypeVar("_Row", Unit, DutyLine)


@dataclass
class SeedReport:
    """What a seeding added (numbers and names), and the lines it left as stored."""

    units_created: list[str] = field(default_factory=list)
    lines_created: list[str] = field(default_factory=list)
    lines_kept: list[str] = field(default_factory=list)  # stored already: the database wins

    def __str__(self) -> str:
        return (
            f"{len(self.units_created)} unit(s) and {len(self.lines_created)} duty line(s) "
            f"created, {len(self.lines_kept)} line(s) kept as stored"
        )


def unit_name_for(line: LineConfig) -> str:
    """The unit a configured line belongs to: ``unit``, else the line's name, else its number."""
    return line.unit.strip() or line.name.strip() or line.number


def seed_from_config(session: Session, config: Config) -> SeedReport:
    """Add the units and duty lines of ``config`` that the database lacks; returns what it did.

    Works inside the caller's transaction (it flushes, never commits). New units get the
    config's ``timezone``.
    """
    report = SeedReport()
    for line in config.lines:
        if _line_by_number(session, line.number) is not None:
            report.lines_kept.append(line.number)
            continue
        name = unit_name_for(line)
        unit = _unit_by_name(session, name)
        if unit is None:
            unit, created = _insert_or_find(
                session,
                Unit(name=name, timezone=config.timezone),
                partial(_unit_by_name, session, name),
            )
            if created:
                report.units_created.append(name)
        row, created = _insert_or_find(
            session, _new_line(line, unit), partial(_line_by_number, session, line.number)
        )
        (report.lines_created if created else report.lines_kept).append(row.number)
    if report.units_created or report.lines_created:
        logger.info("seeded from the config: %s", report)
    return report


def _new_line(line: LineConfig, unit: Unit) -> DutyLine:
    return DutyLine(
        number=line.number,
        name=line.name,
        unit_id=unit.id,
        answer_within_seconds=line.answer_within_seconds,
        offline_grace_seconds=line.offline_grace_seconds,
        unmanned_count=line.unmanned_count,
        unmanned_window_seconds=line.unmanned_window_seconds,
        schedule=line.schedule,
        active=True,
        desk_phones=[DeskPhone(endpoint=endpoint) for endpoint in dict.fromkeys(line.desk_phones)],
    )


def _unit_by_name(session: Session, name: str) -> Unit | None:
    return session.scalar(select(Unit).where(Unit.name == name))


def _line_by_number(session: Session, number: str) -> DutyLine | None:
    return session.scalar(select(DutyLine).where(DutyLine.number == number))


def _insert_or_find(
    session: Session, row: _Row, find: Callable[[], _Row | None]
) -> tuple[_Row, bool]:
    """Insert ``row`` in a savepoint; if a concurrent writer stored it first, the stored one.

    Returns the row and whether it was inserted here.
    """
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        found = find()
        if found is None:
            raise  # another constraint: a real error
        logger.info("%r was stored concurrently; using the stored row", found)
        return found, False
    return row, True
