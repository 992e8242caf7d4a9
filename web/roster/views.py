"""The roster pages: a unit's week, the upload, one shift's form."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import format_date
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from sqlalchemy import select
from werkzeug.wrappers import Response

from callcenter.roster import RosterError, RowError, parse_roster, shift_times
from callcenter.store.duty import Shift
from callcenter.store.org import Officer, Unit
from callcenter.store.roster import (
    UnknownShift,
    add_shift,
    delete_shift,
    import_roster,
    shift_for,
    shifts_on_days,
    update_shift,
)
from callcenter.web.audit import audit, model_snapshot
from callcenter.web.extensions import db
from callcenter.web.roster import bp
from callcenter.web.roster.access import can_manage, now, require_manage, shift_types
from callcenter.web.roster.forms import ShiftForm, UploadForm
from callcenter.web.security import ALL_ROLES, require_visible, roles_required, unit_filter

#: The largest roster file read (``ROSTER_MAX_UPLOAD_BYTES`` in the app config changes it).
MAX_UPLOAD_BYTES = 5 * 1024 * 1024
SHIFT_FIELDS = (
    "unit_id",
    "day",
    "name",
    "starts_at",
    "ends_at",
    "main_officer",
    "backup_officer",
    "leader",
    "phone",
)

#: What each problem of :mod:`callcenter.roster` is, in the reader's language (the
#: parser's own message, in English, follows with the details).
PROBLEMS: dict[str, Any] = {
    "unreadable": _l("The file cannot be read"),
    "empty_file": _l("The file has no shifts"),
    "no_header": _l("No header row"),
    "missing_column": _l("A column is missing"),
    "duplicate_column": _l("A column appears twice"),
    "empty_date": _l("No date"),
    "bad_date": _l("Not a date"),
    "weekday_mismatch": _l("The weekday does not match the date"),
    "empty_shift": _l("No shift"),
    "unknown_shift": _l("Unknown shift"),
    "bad_span": _l("Bad start or end"),
    "empty_main": _l("No main officer"),
    "several_main": _l("More than one main officer"),
    "too_long": _l("Too long"),
    "bad_phone": _l("Not a phone number"),
    "unknown_officer": _l("Not an officer of the unit"),
    "inactive_officer": _l("No longer an active officer"),
    "overlap": _l("Overlaps another shift"),
    "overlap_stored": _l("Overlaps a stored shift"),
}

#: The form field of each roster column (problems of other columns go above the form).
FIELD_OF_COLUMN = {
    "日期": "day",
    "班次": "name",
    "主班": "main_officer",
    "副班": "backup_officer",
    "带班领导": "leader",
    "电话": "phone",
}


@dataclass(frozen=True, slots=True)
class Problem:
    """A :class:`~callcenter.roster.RowError` as the page shows it."""

    row: int | None
    column: str | None
    what: str
    detail: str


def problems(errors: Iterable[RowError]) -> list[Problem]:
    return [Problem(e.row, e.column, str(PROBLEMS.get(e.code, e.code)), e.message) for e in errors]


@dataclass(frozen=True, slots=True)
class Day:
    day: date
    label: str  # the weekday in the reader's language
    shifts: list[Shift]


# --------------------------------------------------------------------------- look-ups


def _unit_or_404(unit_id: int) -> Unit:
    unit = db().get(Unit, unit_id)
    if unit is None:
        abort(404)
    return unit


def _visible_units() -> list[Unit]:
    return list(db().scalars(select(Unit).where(unit_filter(Unit.id)).order_by(Unit.name)))


def _chosen_unit(units: Sequence[Unit]) -> Unit | None:
    """``?unit=`` (403 when not visible), else the user's own unit, else the first one."""
    unit_id = request.args.get("unit", type=int)
    if unit_id is not None:
        unit = _unit_or_404(unit_id)
        require_visible(unit.id)
        return unit
    for unit in units:
        if unit.id == current_user.unit_id:
            return unit
    return units[0] if units else None


def _shift_or_404(shift_id: int, *, manage: bool) -> tuple[Shift, Unit]:
    shift = db().get(Shift, shift_id)
    if shift is None:
        abort(404)
    require_visible(shift.unit_id)
    if manage:
        require_manage(shift.unit_id)
    return shift, _unit_or_404(shift.unit_id)


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _week_start(zone: ZoneInfo) -> date:
    raw = request.args.get("week", "")
    try:
        return _monday(date.fromisoformat(raw)) if raw else _monday(now().astimezone(zone).date())
    except ValueError:
        return _monday(now().astimezone(zone).date())


def _officer_names(unit_id: int) -> list[str]:
    return list(
        db().scalars(
            select(Officer.name)
            .where(Officer.unit_id == unit_id, Officer.active.is_(True))
            .order_by(Officer.name)
        )
    )


# --------------------------------------------------------------------------- the week


def _render_week(
    unit: Unit | None,
    units: Sequence[Unit],
    *,
    monday: date | None = None,
    upload: UploadForm | None = None,
    upload_problems: Sequence[Problem] = (),
    warnings: Sequence[str] = (),
    status: int = 200,
) -> tuple[str, int]:
    if unit is None:
        return render_template("roster/week.html", unit=None, units=units), status
    zone = ZoneInfo(unit.timezone)
    monday = monday or _week_start(zone)
    sunday = monday + timedelta(days=6)
    stored = shifts_on_days(db(), unit.id, monday, sunday)
    days = [
        Day(
            day,
            format_date(day, "EEE"),
            [s for s in stored if s.day == day],
        )
        for day in (monday + timedelta(days=i) for i in range(7))
    ]
    today = now().astimezone(zone).date()
    manage = can_manage(unit.id)
    return (
        render_template(
            "roster/week.html",
            unit=unit,
            units=units,
            days=days,
            monday=monday,
            sunday=sunday,
            today=today,
            this_week=_monday(today),
            current=shift_for(db(), unit.id, now()),
            can_manage=manage,
            timedelta=timedelta,
            one_day=timedelta(days=1),
            upload=upload if upload is not None else (UploadForm() if manage else None),
            upload_problems=upload_problems,
            warnings=warnings,
        ),
        status,
    )


@bp.get("/")
@login_required
@roles_required(*ALL_ROLES)
def index() -> tuple[str, int]:
    """The roster of a unit (``?unit=``), a week (``?week=`` any day of it) at a time."""
    units = _visible_units()
    return _render_week(_chosen_unit(units), units)


# --------------------------------------------------------------------------- the upload


@bp.post("/<int:unit_id>/upload")
@login_required
@roles_required(*ALL_ROLES)
def upload(unit_id: int) -> Response | tuple[str, int]:
    """Import a roster file, all or nothing: every problem is listed, nothing is stored
    unless there is none."""
    unit = _unit_or_404(unit_id)
    require_visible(unit.id)
    require_manage(unit.id)
    form = UploadForm()
    if not form.validate_on_submit():
        return _render_week(unit, _visible_units(), upload=form, status=400)
    file = form.file.data
    filename = file.filename or "roster"
    limit = int(current_app.config.get("ROSTER_MAX_UPLOAD_BYTES", MAX_UPLOAD_BYTES))
    data = file.read(limit + 1)
    if len(data) > limit:
        form.file.errors = [
            _(
                "The file is larger than %(size)s; a roster is much smaller.",
                size=f"{limit / 1024 / 1024:.3g} MB",
            )
        ]
        return _render_week(unit, _visible_units(), upload=form, status=400)
    parsed = parse_roster(
        data, filename=filename, timezone=unit.timezone, shift_types=shift_types()
    )
    # End the reads so the import's lock starts a fresh transaction (as the command does).
    db().commit()
    errors = list(parsed.errors)
    result = None
    if not (errors and not parsed.rows):  # a file-level problem: nothing to check further
        days = sorted({row.day for row in parsed.rows})
        before = _day_snapshots(unit.id, days) if form.replace.data else None
        result = import_roster(
            db(),
            unit.id,
            parsed,
            replace=bool(form.replace.data),
            create_officers=bool(form.add_officers.data),
        )
        errors = result.errors
    if errors or result is None:
        db().rollback()
        flash(
            _("%(file)s: %(n)d problem(s); nothing was imported.", file=filename, n=len(errors)),
            "error",
        )
        units = _visible_units()
        return _render_week(
            _unit_or_404(unit_id),
            units,
            upload=form,
            upload_problems=problems(errors),
            warnings=parsed.warnings,
            status=400,
        )
    days = sorted({row.day for row in parsed.rows})
    audit(
        "import",
        "roster",
        unit.id,
        {"shifts": before} if form.replace.data else None,
        {
            "file": filename,
            "replace": bool(form.replace.data),
            "added": result.added,
            "updated": result.updated,
            "removed": result.removed,
            "officers_added": result.officers_added,
            "shifts": _day_snapshots(unit.id, days),
        },
    )
    db().commit()
    flash(
        _(
            "%(file)s: %(n)d shift(s) imported (%(first)s to %(last)s).",
            file=filename,
            n=result.added + result.updated,
            first=result.first_day.isoformat() if result.first_day else "",
            last=result.last_day.isoformat() if result.last_day else "",
        ),
        "success",
    )
    for warning in parsed.warnings:
        flash(warning, "warning")
    week = result.first_day.isoformat() if result.first_day else None
    return redirect(url_for("roster.index", unit=unit.id, week=week))


def _day_snapshots(unit_id: int, days: Sequence[date]) -> list[dict[str, Any]]:
    if not days:
        return []
    wanted = set(days)
    return [
        model_snapshot(shift, ("id", *SHIFT_FIELDS))
        for shift in shifts_on_days(db(), unit_id, days[0], days[-1])
        if shift.day in wanted
    ]


# --------------------------------------------------------------------------- one shift


def _shift_fields(form: ShiftForm, unit: Unit) -> dict[str, Any]:
    """The stored fields of the shift the form describes (times in the unit's zone)."""
    name, starts_at, ends_at = _times(form, unit)
    return {
        "day": _day(form),
        "name": name,
        "starts_at": starts_at,
        "ends_at": ends_at,
        "main_officer": form.main_officer.data or "",
        "backup_officer": form.backup_officer.data or "",
        "leader": form.leader.data or "",
        "phone": form.phone.data or "",
    }


def _times(form: ShiftForm, unit: Unit) -> tuple[str, datetime, datetime]:
    """The shift's name and UTC span: from the start and end given in the unit's local
    time, else from the 班次 on the date. Raises :class:`RosterError`."""
    name = (form.name.data or "").strip()
    starts, ends = form.starts_at.data, form.ends_at.data
    if starts is None and ends is None:
        return shift_times(name, _day(form), timezone=unit.timezone, shift_types=shift_types())
    if starts is None or ends is None:
        raise RosterError(
            [RowError(None, None, "bad_span", _("Give both the start and the end, or neither."))]
        )
    zone = ZoneInfo(unit.timezone)
    return name, starts.replace(tzinfo=zone), ends.replace(tzinfo=zone)


def _day(form: ShiftForm) -> date:
    """The validated form's date (``DataRequired``)."""
    if form.day.data is None:
        abort(400)
    return form.day.data


def _show_errors(form: ShiftForm, errors: Sequence[RowError]) -> list[Problem]:
    """Put each problem on its field; return those that belong to no field."""
    explicit = form.starts_at.data is not None or form.ends_at.data is not None
    general: list[Problem] = []
    for error, shown in zip(errors, problems(errors), strict=True):
        field_name = FIELD_OF_COLUMN.get(error.column or "")
        if error.code == "bad_span" and explicit:
            field_name = "ends_at"
        if error.code in ("overlap", "overlap_stored") or field_name is None:
            general.append(shown)
            continue
        field = form[field_name]
        field.errors = [*field.errors, f"{shown.what}: {shown.detail}"]
    return general


def _render_shift_form(
    form: ShiftForm,
    unit: Unit,
    shift: Shift | None,
    general: Sequence[Problem] = (),
    status: int = 200,
) -> tuple[str, int]:
    return (
        render_template(
            "roster/shift_form.html",
            form=form,
            unit=unit,
            shift=shift,
            general=general,
            officers=_officer_names(unit.id),
            can_manage=can_manage(unit.id),
        ),
        status,
    )


def _is_standard(shift: Shift, unit: Unit) -> bool:
    """Whether the shift's times are those its 班次 gives on its date (白班 on that day ...):
    then its form leaves start and end empty, so changing the date or 班次 moves the times."""
    try:
        name, starts_at, ends_at = shift_times(
            shift.name, shift.day, timezone=unit.timezone, shift_types=shift_types()
        )
    except RosterError:
        return False
    return (name, starts_at, ends_at) == (shift.name, shift.starts_at, shift.ends_at)


def _week_url(unit_id: int, day: date) -> str:
    return url_for("roster.index", unit=unit_id, week=day.isoformat())


@bp.route("/<int:unit_id>/shifts/new", methods=["GET", "POST"])
@login_required
@roles_required(*ALL_ROLES)
def shift_new(unit_id: int) -> Response | tuple[str, int]:
    unit = _unit_or_404(unit_id)
    require_visible(unit.id)
    require_manage(unit.id)
    form = ShiftForm()
    if request.method == "GET":
        form.name.data = "白班"
        try:
            form.day.data = date.fromisoformat(request.args.get("day", ""))
        except ValueError:
            form.day.data = now().astimezone(ZoneInfo(unit.timezone)).date()
    if not form.validate_on_submit():
        return _render_shift_form(form, unit, None, status=400 if request.method == "POST" else 200)
    try:
        fields = _shift_fields(form, unit)
        db().commit()  # a fresh transaction for the unit's lock
        saved = add_shift(db(), unit.id, **fields, create_officers=bool(form.add_officers.data))
        db().flush()
    except RosterError as exc:
        db().rollback()
        general = _show_errors(form, exc.errors)
        return _render_shift_form(form, _unit_or_404(unit_id), None, general, 400)
    shift = saved.shift
    after = model_snapshot(shift, SHIFT_FIELDS) | _officers_added(saved.officers_added)
    audit("create", "shift", shift.id, None, after)
    db().commit()
    flash(_("Shift added."), "success")
    _flash_registered(saved.officers_added)
    return redirect(_week_url(unit_id, shift.day))


@bp.route("/shifts/<int:shift_id>", methods=["GET", "POST"])
@login_required
@roles_required(*ALL_ROLES)
def shift_edit(shift_id: int) -> Response | tuple[str, int]:
    shift, unit = _shift_or_404(shift_id, manage=True)
    zone = ZoneInfo(unit.timezone)
    explicit = not _is_standard(shift, unit)

    def local(moment: datetime) -> datetime | None:
        return moment.astimezone(zone).replace(tzinfo=None) if explicit else None

    form = ShiftForm(
        data={
            "day": shift.day,
            "name": shift.name,
            "starts_at": local(shift.starts_at),
            "ends_at": local(shift.ends_at),
            "main_officer": shift.main_officer,
            "backup_officer": shift.backup_officer,
            "leader": shift.leader,
            "phone": shift.phone,
        }
    )
    if not form.validate_on_submit():
        status = 400 if request.method == "POST" else 200
        return _render_shift_form(form, unit, shift, status=status)
    before = model_snapshot(shift, SHIFT_FIELDS)
    try:
        fields = _shift_fields(form, unit)
        db().commit()  # a fresh transaction for the unit's lock
        create_officers = bool(form.add_officers.data)
        saved = update_shift(db(), shift_id, **fields, create_officers=create_officers)
        db().flush()
    except UnknownShift:
        abort(404)
    except RosterError as exc:
        db().rollback()
        general = _show_errors(form, exc.errors)
        shift, unit = _shift_or_404(shift_id, manage=True)
        return _render_shift_form(form, unit, shift, general, 400)
    updated = saved.shift
    after = model_snapshot(updated, SHIFT_FIELDS)
    if after != before:
        audit("update", "shift", shift_id, before, after | _officers_added(saved.officers_added))
        flash(_("Saved."), "success")
    db().commit()
    _flash_registered(saved.officers_added)
    return redirect(_week_url(updated.unit_id, updated.day))


def _officers_added(names: Sequence[str]) -> dict[str, Any]:
    """What the audit records of the officers a shift form registered (as the upload does)."""
    return {"officers_added": list(names)} if names else {}


def _flash_registered(names: Sequence[str]) -> None:
    if names:
        flash(_("Registered as officers of the unit: %(names)s", names="、".join(names)), "success")


@bp.post("/shifts/<int:shift_id>/delete")
@login_required
@roles_required(*ALL_ROLES)
def shift_delete(shift_id: int) -> Response:
    shift, _unit = _shift_or_404(shift_id, manage=True)
    unit_id, day = shift.unit_id, shift.day
    before = model_snapshot(shift, SHIFT_FIELDS)
    db().commit()  # a fresh transaction for the unit's lock
    if delete_shift(db(), shift_id):
        audit("delete", "shift", shift_id, before, None)
        flash(_("Shift deleted."), "success")
    db().commit()
    return redirect(_week_url(unit_id, day))
