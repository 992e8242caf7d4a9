"""The duty lines of the units a user sees, and one line's policy (edited by the unit's
admin)."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required
from sqlalchemy import select
from sqlalchemy.orm import selectinload
from werkzeug.wrappers import Response

from callcenter.store.org import DeskPhone, DutyLine, Unit
from callcenter.web.audit import audit, model_snapshot
from callcenter.web.extensions import db
from callcenter.web.lines import bp
from callcenter.web.lines.forms import LinePolicyForm, endpoints
from callcenter.web.roster.access import can_manage
from callcenter.web.security import ALL_ROLES, require_visible, roles_required, unit_filter

POLICY_FIELDS = (
    "name",
    "answer_within_seconds",
    "offline_grace_seconds",
    "unmanned_count",
    "unmanned_window_seconds",
    "schedule",
    "active",
)


def snapshot(line: DutyLine) -> dict[str, Any]:
    """The line's policy for the audit trail (desk phones sorted)."""
    found = model_snapshot(line, ("number", "unit_id", *POLICY_FIELDS))
    found["desk_phones"] = sorted(phone.endpoint for phone in line.desk_phones)
    return found


@bp.get("/")
@login_required
@roles_required(*ALL_ROLES)
def index() -> str:
    """The duty lines of the visible units (``?unit=`` one of them), by unit and number."""
    query = (
        select(DutyLine, Unit)
        .join(Unit, Unit.id == DutyLine.unit_id)
        .where(unit_filter(DutyLine.unit_id))
        .options(selectinload(DutyLine.desk_phones))
        .order_by(Unit.name, DutyLine.number)
    )
    unit_id = request.args.get("unit", type=int)
    if unit_id is not None:
        require_visible(unit_id)
        query = query.where(DutyLine.unit_id == unit_id)
    rows = db().execute(query).all()
    units = list(db().scalars(select(Unit).where(unit_filter(Unit.id)).order_by(Unit.name)))
    return render_template(
        "lines/index.html",
        rows=rows,
        units=units,
        unit_id=unit_id,
        manageable={u.id for u in units if can_manage(u.id)},
    )


def _initial(line: DutyLine) -> dict[str, Any]:
    return {
        "name": line.name,
        "desk_phones": "\n".join(sorted(phone.endpoint for phone in line.desk_phones)),
        "answer_within_seconds": line.answer_within_seconds,
        "offline_grace_minutes": line.offline_grace_seconds / 60,
        "unmanned_count": line.unmanned_count,
        "unmanned_window_minutes": line.unmanned_window_seconds / 60,
        "schedule": line.schedule,
        "active": line.active,
    }


def _apply(line: DutyLine, form: LinePolicyForm) -> None:
    line.name = (form.name.data or "").strip()
    line.answer_within_seconds = float(form.answer_within_seconds.data or 0)
    line.offline_grace_seconds = round(float(form.offline_grace_minutes.data or 0) * 60, 3)
    line.unmanned_count = int(form.unmanned_count.data or 0)
    line.unmanned_window_seconds = round(float(form.unmanned_window_minutes.data or 0) * 60, 3)
    line.schedule = " ".join(str(form.schedule.data or "").split())
    line.active = bool(form.active.data)
    # Keep the rows of the phones that stay (no delete + insert of the same endpoint).
    kept = {phone.endpoint: phone for phone in line.desk_phones}
    line.desk_phones = [
        kept.get(endpoint) or DeskPhone(endpoint=endpoint)
        for endpoint in endpoints(form.desk_phones.data)
    ]


@bp.route("/<int:line_id>", methods=["GET", "POST"])
@login_required
@roles_required(*ALL_ROLES)
def line(line_id: int) -> Response | tuple[str, int]:
    """A line's policy: read by whoever sees its unit, edited by its unit admin or an admin."""
    found = db().get(DutyLine, line_id)
    if found is None:
        abort(404)
    require_visible(found.unit_id)
    manage = can_manage(found.unit_id)
    if request.method == "POST" and not manage:
        abort(403)
    form = LinePolicyForm(data=_initial(found))
    if manage and form.validate_on_submit():
        before = snapshot(found)
        _apply(found, form)
        db().flush()
        after = snapshot(found)
        if after != before:
            audit("update", "duty_line", found.id, before, after)
            db().commit()
            flash(_("Saved. The workers use the new policy within a minute."), "success")
        return redirect(url_for("lines.line", line_id=found.id))
    status = 400 if request.method == "POST" else 200
    return (
        render_template(
            "lines/line.html",
            line=found,
            unit=db().get(Unit, found.unit_id),
            form=form,
            can_manage=manage,
        ),
        status,
    )
