"""The duty log (值班日志): a day's entries, one entry, tying calls to entries, incidents and
the reports sent upward for them, recording call-backs. Officers change their own unit's log;
inspectors read."""

from __future__ import annotations

from collections.abc import Collection
from datetime import timedelta
from typing import Any, TypeVar

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required
from sqlalchemy import func, select
from werkzeug.wrappers import Response

from callcenter.deadlines import FIRST_REPORT
from callcenter.queries.calls import MISSED_OUTCOMES, CallFilters, apply_filters, day_bounds
from callcenter.store.accounts import User
from callcenter.store.duty import (
    Callback,
    Incident,
    IncidentReport,
    LogEntry,
    LogEntryCall,
    Shift,
)
from callcenter.store.models import Call
from callcenter.store.org import DutyLine, Unit
from callcenter.web.extensions import db
from callcenter.web.log import bp, service
from callcenter.web.log.helpers import (
    back,
    now,
    parse_day,
    parse_local_datetime,
    unit_zone,
    user_id,
)
from callcenter.web.security import (
    can_edit_unit,
    require_editable,
    require_visible,
    visible_unit_ids,
)

# 突发事件应对法: the four categories and the four levels (Ⅰ most severe).
INCIDENT_CATEGORIES = ("natural_disaster", "accident", "public_health", "social_security", "other")
INCIDENT_LEVELS = ("I", "II", "III", "IV")


def _units(ids: Collection[int]) -> list[Unit]:
    return list(db().scalars(select(Unit).where(Unit.id.in_(sorted(ids))).order_by(Unit.name)))


def _chosen_unit(units: list[Unit]) -> Unit | None:
    raw = request.args.get("unit", "")
    if not raw:
        return units[0] if len(units) == 1 else None
    try:
        unit_id = int(raw)
    except ValueError:
        abort(400, description=_("unit: not a number"))
    require_visible(unit_id)
    return next((unit for unit in units if unit.id == unit_id), None)


# --------------------------------------------------------------------------- the day's log


@bp.get("/log")
@login_required
def index() -> str:
    session = db()
    scope = visible_unit_ids()
    units = _units(scope)
    unit = _chosen_unit(units)
    unit_ids = [unit.id] if unit is not None else [u.id for u in units]
    zone = unit_zone(unit)
    day = parse_day(request.args.get("day"), zone)
    start, end = day_bounds(day, None, zone)
    shifts = list(
        session.scalars(
            select(Shift)
            .where(Shift.unit_id.in_(unit_ids), Shift.starts_at < end, Shift.ends_at > start)
            .order_by(Shift.starts_at, Shift.unit_id)
        )
    )
    shift = None
    if request.args.get("shift"):
        shift = next((s for s in shifts if str(s.id) == request.args["shift"]), None)
    query = select(LogEntry).where(LogEntry.unit_id.in_(unit_ids))
    if shift is not None:
        query = query.where(LogEntry.at >= shift.starts_at, LogEntry.at < shift.ends_at)
    else:
        query = query.where(LogEntry.at >= start, LogEntry.at < end)
    entries = list(session.scalars(query.order_by(LogEntry.at, LogEntry.id)))
    calls_by_entry = _calls_of([entry.id for entry in entries])
    incidents = _incidents_of({e.incident_id for e in entries if e.incident_id is not None})
    callbacks = list(
        session.execute(
            select(Callback, Call)
            .join(Call, Call.id == Callback.call_id)
            .join(DutyLine, DutyLine.number == Call.line)
            .where(Callback.state == "open", DutyLine.unit_id.in_(unit_ids))
            .order_by(Call.started_at.desc(), Call.id.desc())
            .limit(200)
        )
    )
    untagged = session.scalar(
        apply_filters(
            select(func.count()).select_from(Call),
            CallFilters(
                unit_ids=unit_ids, start=start, end=end, untagged=True, outcomes=MISSED_OUTCOMES
            ),
        )
    )
    editable_units = [u for u in units if can_edit_unit(None, u.id)]
    args: dict[str, Any] = {"unit": unit.id} if unit is not None else {}
    return render_template(
        "log/index.html",
        units=units,
        unit=unit,
        day=day,
        zone=str(zone),
        shifts=shifts,
        shift=shift,
        entries=entries,
        calls_by_entry=calls_by_entry,
        incidents=incidents,
        callbacks=callbacks,
        untagged_missed=untagged or 0,
        untagged_url=url_for(
            "calls.index", outcome="missed", untagged=1, **{"from": day, "to": day}, **args
        ),
        editable_units=editable_units,
        prev_url=url_for("log.index", day=(day - timedelta(days=1)).isoformat(), **args),
        next_url=url_for("log.index", day=(day + timedelta(days=1)).isoformat(), **args),
        now_local=now().astimezone(zone).strftime("%Y-%m-%dT%H:%M"),
    )


def _calls_of(entry_ids: list[int]) -> dict[int, list[Call]]:
    found: dict[int, list[Call]] = {}
    if not entry_ids:
        return found
    rows = db().execute(
        select(LogEntryCall.log_entry_id, Call)
        .join(Call, Call.id == LogEntryCall.call_id)
        .where(LogEntryCall.log_entry_id.in_(entry_ids))
        .order_by(Call.started_at, Call.id)
    )
    for entry_id, call in rows:
        found.setdefault(entry_id, []).append(call)
    return found


def _incidents_of(ids: set[int]) -> dict[int, Incident]:
    if not ids:
        return {}
    return {i.id: i for i in db().scalars(select(Incident).where(Incident.id.in_(sorted(ids))))}


@bp.post("/log/entries")
@login_required
def create_entry() -> Response:
    try:
        unit_id = int(request.form.get("unit_id", ""))
    except ValueError:
        abort(400, description=_("Choose the unit."))
    require_editable(unit_id)
    unit = db().get(Unit, unit_id)
    at = parse_local_datetime(request.form.get("at"), unit_zone(unit)) or now()
    try:
        entry = service.create_entry(
            db(),
            unit_id,
            at=at,
            summary=request.form.get("summary", ""),
            action_taken=request.form.get("action_taken", ""),
            kind=request.form.get("kind") or "note",
            done=bool(request.form.get("done")),
            user_id=user_id(),
        )
    except service.LogError as exc:
        db().rollback()
        flash(_("Not saved: %(problem)s", problem=str(exc)), "error")
        return back("log.index")
    db().commit()
    flash(_("Entry #%(id)s added to the duty log.", id=entry.id), "info")
    return back("log.index")


# --------------------------------------------------------------------------- one entry


_Owned = TypeVar("_Owned", LogEntry, Incident)


def _owned_or_abort(model: type[_Owned], row_id: int, *, edit: bool) -> _Owned:
    """A unit's log entry or incident: 404 if none, 403 if the user may not see (or, with
    ``edit``, change) its unit."""
    row = db().get(model, row_id)
    if row is None:
        abort(404)
    require_visible(row.unit_id)
    if edit:
        require_editable(row.unit_id)
    return row


def _entry_or_abort(entry_id: int, *, edit: bool) -> LogEntry:
    return _owned_or_abort(LogEntry, entry_id, edit=edit)


@bp.get("/log/entries/<int:entry_id>")
@login_required
def entry(entry_id: int) -> str:
    found = _entry_or_abort(entry_id, edit=False)
    unit = db().get(Unit, found.unit_id)
    editable = can_edit_unit(None, found.unit_id)
    open_incidents = list(
        db().scalars(
            select(Incident)
            .where(Incident.unit_id == found.unit_id, Incident.status == "open")
            .order_by(Incident.occurred_at.desc())
            .limit(50)
        )
    )
    incident = db().get(Incident, found.incident_id) if found.incident_id else None
    zone = unit_zone(unit)
    return render_template(
        "log/entry.html",
        entry=found,
        unit=unit,
        calls=_calls_of([found.id]).get(found.id, []),
        incident=incident,
        open_incidents=open_incidents,
        editable=editable,
        zone=str(zone),
        categories=INCIDENT_CATEGORIES,
        levels=INCIDENT_LEVELS,
        occurred_default=(found.at.astimezone(zone)).strftime("%Y-%m-%dT%H:%M"),
    )


@bp.post("/log/entries/<int:entry_id>")
@login_required
def update_entry(entry_id: int) -> Response:
    found = _entry_or_abort(entry_id, edit=True)
    try:
        service.update_entry(
            db(),
            found,
            summary=request.form.get("summary", ""),
            action_taken=request.form.get("action_taken", ""),
        )
    except service.LogError as exc:
        db().rollback()
        flash(_("Not saved: %(problem)s", problem=str(exc)), "error")
        return back("log.entry", entry_id=entry_id)
    db().commit()
    flash(_("Entry saved."), "info")
    return back("log.entry", entry_id=entry_id)


@bp.post("/log/entries/<int:entry_id>/done")
@login_required
def mark_done(entry_id: int) -> Response:
    found = _entry_or_abort(entry_id, edit=True)
    service.mark_done(db(), found, action_taken=request.form.get("action_taken", ""))
    db().commit()
    flash(_("Entry #%(id)s is done.", id=entry_id), "info")
    return back("log.entry", entry_id=entry_id)


@bp.post("/log/entries/<int:entry_id>/incident")
@login_required
def link_incident(entry_id: int) -> Response:
    """Tie the entry to an existing incident of its unit, or to a new one (the fixed
    elements: time, place, source, category, level, ...; first report due 2 h after)."""
    found = _entry_or_abort(entry_id, edit=True)
    session = db()
    choice = request.form.get("incident_id", "new")
    try:
        if choice == "new":
            unit = session.get(Unit, found.unit_id)
            occurred_at = parse_local_datetime(request.form.get("occurred_at"), unit_zone(unit))
            if occurred_at is None:
                raise service.LogError(_("give the time of the event"))
            fields: dict[str, Any] = {key: request.form.get(key, "") for key in request.form}
            incident = service.create_incident(
                session, found.unit_id, fields, occurred_at=occurred_at
            )
        else:
            try:
                existing = session.get(Incident, int(choice))
            except ValueError:
                existing = None
            if existing is None:
                raise service.LogError(_("no such incident"))
            incident = existing
        service.link_incident(session, found, incident)
    except service.LogError as exc:
        session.rollback()
        flash(_("Not saved: %(problem)s", problem=str(exc)), "error")
        return redirect(url_for("log.entry", entry_id=entry_id))
    session.commit()
    flash(_("Entry #%(id)s belongs to incident #%(incident)s.", id=entry_id, incident=incident.id))
    return redirect(url_for("log.entry", entry_id=entry_id))


def _incident_or_abort(incident_id: int, *, edit: bool) -> Incident:
    return _owned_or_abort(Incident, incident_id, edit=edit)


@bp.get("/log/incidents/<int:incident_id>")
@login_required
def incident(incident_id: int) -> str:
    found = _incident_or_abort(incident_id, edit=False)
    session = db()
    unit = session.get(Unit, found.unit_id)
    zone = unit_zone(unit)
    entries = list(
        session.scalars(
            select(LogEntry).where(LogEntry.incident_id == found.id).order_by(LogEntry.at)
        )
    )
    reports = [
        (report, display_name or username or "")
        for report, display_name, username in session.execute(
            select(IncidentReport, User.display_name, User.username)
            .outerjoin(User, User.id == IncidentReport.created_by_id)
            .where(IncidentReport.incident_id == found.id)
            .order_by(IncidentReport.reported_at, IncidentReport.id)
        )
    ]
    first_sent = any(report.kind == FIRST_REPORT for report, _by in reports)
    return render_template(
        "log/incident.html",
        incident=found,
        unit=unit,
        entries=entries,
        reports=reports,
        zone=str(zone),
        overdue=found.status == "open" and not first_sent and found.report_due_at < now(),
        editable=can_edit_unit(None, found.unit_id),
        report_kinds=service.report_kinds_allowed(found),
        max_report=service.MAX_TEXT,
        now_local=now().astimezone(zone).strftime("%Y-%m-%dT%H:%M"),
    )


@bp.post("/log/incidents/<int:incident_id>/reports")
@login_required
def record_report(incident_id: int) -> Response:
    """Record a report sent upward (首报 / 续报 / 终报); the final one closes the incident."""
    found = _incident_or_abort(incident_id, edit=True)
    session = db()
    zone = unit_zone(session.get(Unit, found.unit_id))
    raw = request.form.get("reported_at", "").strip()
    try:
        reported_at = parse_local_datetime(raw, zone) if raw else now()
        if reported_at is None:
            raise service.LogError(_("give the time the report was sent"))
        report = service.record_report(
            session,
            found,
            kind=request.form.get("kind", ""),
            reported_at=reported_at,
            content=request.form.get("content", ""),
            user_id=user_id(),
            now=now(),
        )
    except service.LogError as exc:
        session.rollback()
        flash(_("Not saved: %(problem)s", problem=str(exc)), "error")
        return redirect(url_for("log.incident", incident_id=incident_id))
    session.commit()
    if report.kind == service.FINAL_REPORT:
        flash(_("Final report recorded; the incident is closed."), "info")
    else:
        flash(_("Report recorded."), "info")
    return redirect(url_for("log.incident", incident_id=incident_id))


# --------------------------------------------------------------------------- calls


@bp.post("/log/calls/<int:call_id>/tag")
@login_required
def tag_call(call_id: int) -> Response:
    """Tie a call to a new or an existing entry of its unit, with what was done."""
    session = db()
    call = session.get(Call, call_id)
    if call is None:
        abort(404)
    unit_id = session.scalar(select(DutyLine.unit_id).where(DutyLine.number == call.line))
    require_visible(unit_id)
    require_editable(unit_id)
    if unit_id is None:  # pragma: no cover - require_visible aborted already
        abort(404)
    choice = request.form.get("entry_id", "new")
    entry_id: int | None = None
    if choice != "new":
        try:
            entry_id = int(choice)
        except ValueError:
            abort(400, description=_("Choose an entry."))
    try:
        entry = service.tag_call(
            session,
            call,
            unit_id,
            entry_id=entry_id,
            summary=request.form.get("summary", ""),
            action_taken=request.form.get("action_taken", ""),
            done=bool(request.form.get("done")),
            user_id=user_id(),
            now=now(),
        )
    except service.LogError as exc:
        session.rollback()
        flash(_("Not saved: %(problem)s", problem=str(exc)), "error")
        return redirect(url_for("calls.detail", call_id=call_id))
    session.commit()
    flash(_("The call is in the duty log: entry #%(id)s.", id=entry.id), "info")
    return back("calls.detail", call_id=call_id)


# --------------------------------------------------------------------------- call-backs


def _callback_or_abort(callback_id: int, *, edit: bool) -> tuple[Callback, int]:
    callback = db().get(Callback, callback_id)
    if callback is None:
        abort(404)
    unit_id = service.callback_unit_id(db(), callback)
    require_visible(unit_id)
    if edit:
        require_editable(unit_id)
    return callback, int(unit_id or 0)


@bp.get("/log/callbacks/<int:callback_id>")
@login_required
def record_callback(callback_id: int) -> str:
    callback, unit_id = _callback_or_abort(callback_id, edit=False)
    unit = db().get(Unit, unit_id)
    return render_template(
        "log/callback.html",
        callback=callback,
        call=callback.call,
        unit=unit,
        zone=str(unit_zone(unit)),
        editable=can_edit_unit(None, unit_id),
    )


@bp.post("/log/callbacks/<int:callback_id>")
@login_required
def save_callback(callback_id: int) -> Response:
    """Record the call-back: called back / reached / excused (with a reason); closes it."""
    callback, _unit_id = _callback_or_abort(callback_id, edit=True)
    try:
        service.record_callback(
            db(),
            callback,
            request.form.get("result", ""),
            request.form.get("reason", ""),
            now=now(),
        )
    except service.LogError as exc:
        db().rollback()
        flash(_("Not saved: %(problem)s", problem=str(exc)), "error")
        return back("log.record_callback", callback_id=callback_id)
    db().commit()
    flash(_("Call-back recorded."), "info")
    return back("log.index")
