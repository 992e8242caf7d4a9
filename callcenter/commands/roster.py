"""``callcenter roster``: import the duty roster (值班表) from CSV or XLSX, show it.

::

    callcenter roster import docs/samples/roster.xlsx --unit 青山县人民政府 --dry-run
    callcenter roster import roster.csv --unit 青山县人民政府 --replace
    callcenter roster show --unit 青山县人民政府 --date 2026-11-23

``import`` prints one line per problem on stderr, the row number first, and exits 1 with
nothing stored; on success it prints a summary on stdout and exits 0. The database is the
config's ``database.url``; an SQLite database is migrated first (the embedded default).
"""

from __future__ import annotations

import sys
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import click

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from callcenter.config import Config
    from callcenter.roster import ShiftType
    from callcenter.store.duty import Shift
    from callcenter.store.org import Unit

__all__ = ["roster"]

_CONFIG_OPTION = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="callcenter.toml (the database URL comes from it).",
)
_UNIT_OPTION = click.option("--unit", "unit_name", required=True, help="The unit's name (单位).")


@click.group("roster")
def roster() -> None:
    """The duty roster (值班表): shifts with main and backup officer and leader on duty."""


@roster.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_UNIT_OPTION
@click.option(
    "--replace", is_flag=True, help="Replace the stored shifts of the days the file covers."
)
@click.option("--dry-run", is_flag=True, help="Check everything, store nothing.")
@click.option(
    "--add-officers",
    is_flag=True,
    help="Register names the unit does not know yet as its officers (else: an error).",
)
@click.option("--sheet", default=None, help="XLSX: the sheet to read (default: the active one).")
@click.option(
    "--shift-type",
    "shift_type_specs",
    multiple=True,
    metavar="NAME=HH:MM-HH:MM",
    help="Add or change a 班次 (repeatable), e.g. 早班=08:00-12:00.",
)
@_CONFIG_OPTION
def import_roster_command(
    file: Path,
    unit_name: str,
    replace: bool,
    dry_run: bool,
    add_officers: bool,
    sheet: str | None,
    shift_type_specs: tuple[str, ...],
    config_path: Path | None,
) -> None:
    """Import FILE (CSV or XLSX with columns 日期, 班次, 主班, 副班, 带班领导, 电话) as the
    roster of a unit, all or nothing."""
    from callcenter.roster import parse_roster
    from callcenter.store.roster import import_roster

    config = _config(config_path)
    shift_types = _shift_types(config, shift_type_specs)
    with _session(config) as session:
        unit = _unit(session, unit_name)
        # End the read so the import's lock starts a fresh transaction (SQLite: a write
        # from an old snapshot fails when another import committed in between).
        session.commit()
        try:
            parsed = parse_roster(
                file, timezone=unit.timezone, shift_types=shift_types, sheet=sheet
            )
        except ValueError as exc:  # the unit's time zone is unknown to this machine
            raise click.ClickException(f"unit {unit.name}: {exc}") from exc
        for warning in parsed.warnings:
            click.echo(f"warning: {warning}", err=True)
        # An unreadable file or a missing column: nothing to check against the database.
        if parsed.errors and not parsed.rows:
            result = None
            errors = parsed.errors
        else:
            result = import_roster(
                session,
                unit.id,
                parsed,
                replace=replace,
                create_officers=add_officers,
                dry_run=dry_run,
            )
            errors = result.errors
        if errors:
            session.rollback()
        unit_label = unit.name
    if errors:
        for error in errors:
            click.echo(str(error), err=True)
        click.echo(
            f"{file.name}: {len(errors)} problem(s); nothing imported for {unit_label}", err=True
        )
        if any(error.code == "unknown_officer" for error in errors):
            click.echo(
                "hint: --add-officers registers the names the unit does not know yet", err=True
            )
        sys.exit(1)
    if result is None:  # pragma: no cover - errors is empty only after an import
        return
    days = ""
    if result.first_day is not None and result.last_day is not None:
        days = f" ({result.first_day.isoformat()} to {result.last_day.isoformat()})"
    verb = "would import" if dry_run else "imported"
    summary = f"{file.name}: {verb} {result.added + result.updated} shift(s) for {unit_label}{days}"
    details = []
    if replace:
        details.append(f"{result.updated} replaced in place, {result.removed} removed")
    if result.officers_added:
        label = "officers to add" if dry_run else "officers added"
        details.append(f"{label}: {'、'.join(result.officers_added)}")
    if details:
        summary += "; " + "; ".join(details)
    if dry_run:
        summary += "; dry run, nothing stored"
    click.echo(summary)


@roster.command("show")
@_UNIT_OPTION
@click.option(
    "--date",
    "first",
    type=click.DateTime(formats=["%Y-%m-%d", "%Y/%m/%d"]),
    default=None,
    help="First day (default: today in the unit's time zone).",
)
@click.option(
    "--days",
    type=click.IntRange(1, 366),
    default=None,
    help="How many days (default: 1 with --date, else 7).",
)
@_CONFIG_OPTION
def show(
    unit_name: str, first: datetime | None, days: int | None, config_path: Path | None
) -> None:
    """Print the roster of a unit, day by day, in the unit's local time."""
    from callcenter.store.roster import shifts_on_days

    config = _config(config_path)
    with _session(config) as session:
        unit = _unit(session, unit_name)
        zone = ZoneInfo(unit.timezone)
        start = first.date() if first is not None else datetime.now(zone).date()
        count = days if days is not None else (1 if first is not None else 7)
        last = start + timedelta(days=count - 1)
        shifts = shifts_on_days(session, unit.id, start, last)
        header = f"{unit.name} {start.isoformat()}"
        if last != start:
            header += f" – {last.isoformat()}"
        click.echo(f"{header} ({unit.timezone})")
        if not shifts:
            click.echo("no shifts")
            return
        click.echo(_table(shifts, zone))


# --------------------------------------------------------------------------- helpers


def _config(path: Path | None) -> Config:
    from callcenter.config import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as exc:
        raise click.ClickException(f"bad config: {exc}") from exc


def _shift_types(config: Config, specs: Sequence[str]) -> Mapping[str, ShiftType]:
    """The 班次 table: defaults, then ``roster.shift_types`` of the config when it has
    that table, then ``--shift-type`` options."""
    from callcenter.roster import parse_shift_types

    configured = getattr(getattr(config, "roster", None), "shift_types", None) or {}
    pairs = dict(configured)
    for spec in specs:
        name, sep, span = spec.partition("=")
        if not sep:
            raise click.BadParameter(f"'{spec}' is not NAME=HH:MM-HH:MM", param_hint="--shift-type")
        pairs[name] = span
    try:
        return parse_shift_types(pairs)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--shift-type") from exc


@contextmanager
def _session(config: Config) -> Iterator[Session]:
    from sqlalchemy import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from callcenter.store.db import make_engine, make_session_factory, session_scope
    from callcenter.store.migrate import upgrade

    url = config.database.url
    try:
        if make_url(url).get_backend_name() == "sqlite":
            upgrade(url)
        engine = make_engine(url)
    except SQLAlchemyError as exc:
        raise click.ClickException(f"database {url!r}: {exc}") from exc
    try:
        with session_scope(make_session_factory(engine)) as session:
            yield session
    finally:
        engine.dispose()


def _unit(session: Session, name: str) -> Unit:
    from sqlalchemy import select

    from callcenter.store.org import Unit
    from callcenter.store.roster import unit_by_name

    unit = unit_by_name(session, name)
    if unit is None:
        names = session.scalars(select(Unit.name).order_by(Unit.name).limit(20)).all()
        known = f" (units: {', '.join(names)})" if names else " (no units are stored yet)"
        raise click.ClickException(f"no unit named '{name}'{known}")
    return unit


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))


def _table(shifts: Sequence[Shift], zone: ZoneInfo) -> str:
    rows = [["日期", "班次", "时间", "主班", "副班", "带班领导", "电话"]]
    for shift in shifts:
        start, end = shift.starts_at.astimezone(zone), shift.ends_at.astimezone(zone)
        if end.date() == start.date():
            times = f"{start:%H:%M}–{end:%H:%M}"
        elif end.date() == start.date() + timedelta(days=1):
            times = f"{start:%H:%M}–次日{end:%H:%M}"
        else:
            times = f"{start:%H:%M}–{end:%m-%d %H:%M}"
        day: date = shift.day
        rows.append(
            [
                day.isoformat(),
                shift.name,
                times,
                shift.main_officer,
                shift.backup_officer,
                shift.leader,
                shift.phone,
            ]
        )
    widths = [max(_width(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(_pad(cell, widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows
    )
