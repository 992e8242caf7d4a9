"""Shift handover (交接班): what stays open passes to the next shift, signed off first by the
outgoing officer, then by the incoming one (each with their own account)."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required
from sqlalchemy import select
from werkzeug.wrappers import Response

from callcenter.store.duty import Handover
from callcenter.store.org import Unit
from callcenter.web.extensions import db
from callcenter.web.log import bp, service
from callcenter.web.log.helpers import now, officer_name, unit_zone
from callcenter.web.security import can_edit_unit, require_editable, visible_unit_ids


def _unit_or_abort() -> tuple[Unit | None, list[Unit]]:
    units = list(
        db().scalars(
            select(Unit).where(Unit.id.in_(sorted(visible_unit_ids()))).order_by(Unit.name)
        )
    )
    raw = request.values.get("unit", "")
    if not raw:
        editable = [u for u in units if can_edit_unit(None, u.id)]
        chosen = editable[0] if len(editable) == 1 else (units[0] if len(units) == 1 else None)
        return chosen, units
    try:
        unit_id = int(raw)
    except ValueError:
        abort(400, description=_("unit: not a number"))
    unit = next((u for u in units if u.id == unit_id), None)
    if unit is None:
        abort(403)
    return unit, units


@bp.get("/log/handover")
@login_required
def handover() -> str:
    unit, units = _unit_or_abort()
    if unit is None:
        return render_template("log/handover.html", unit=None, units=units)
    session = db()
    items = service.open_items(session, unit.id)
    pending = service.pending_handover(session, unit.id)
    recent = list(
        session.scalars(
            select(Handover)
            .where(Handover.unit_id == unit.id)
            .order_by(Handover.signed_out_at.desc(), Handover.id.desc())
            .limit(10)
        )
    )
    at = now()
    return render_template(
        "log/handover.html",
        unit=unit,
        units=units,
        items=items,
        pending=pending,
        recent=recent,
        shift=service.current_shift(session, unit.id, at),
        editable=can_edit_unit(None, unit.id),
        me=officer_name(),
        zone=str(unit_zone(unit)),
        now=at,
    )


@bp.post("/log/handover")
@login_required
def handover_sign_out() -> Response:
    """The outgoing officer signs the handover (the open items go with it)."""
    unit, _units = _unit_or_abort()
    if unit is None:
        abort(400, description=_("Choose the unit."))
    require_editable(unit.id)
    try:
        service.sign_out(
            db(), unit.id, officer=officer_name(), notes=request.form.get("notes", ""), now=now()
        )
    except service.LogError as exc:
        db().rollback()
        flash(_("Not signed: %(problem)s", problem=str(exc)), "error")
        return redirect(url_for("log.handover", unit=unit.id))
    db().commit()
    flash(_("Handed over: the incoming officer now signs in with their own account."), "info")
    return redirect(url_for("log.handover", unit=unit.id))


@bp.post("/log/handover/<int:handover_id>/sign-in")
@login_required
def handover_sign_in(handover_id: int) -> Response:
    """The incoming officer takes over (must not be the outgoing one)."""
    found = db().get(Handover, handover_id)
    if found is None:
        abort(404)
    require_editable(found.unit_id)
    try:
        service.sign_in(db(), found, officer=officer_name(), now=now())
    except service.LogError as exc:
        db().rollback()
        flash(_("Not signed: %(problem)s", problem=str(exc)), "error")
        return redirect(url_for("log.handover", unit=found.unit_id))
    db().commit()
    flash(_("Handover signed off: you are on duty."), "info")
    return redirect(url_for("log.handover", unit=found.unit_id))
