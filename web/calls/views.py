"""Calls: the list (``/calls``), one call (``/calls/<id>``) and click-to-call back.

Only calls on the duty lines of the units the user may see are shown (an admin sees every
call, also those on lines not configured yet). Another unit's call answers 403, an unknown
one 404.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from flask import (
    Response,
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import get_timezone
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select
from werkzeug.wrappers import Response as BaseResponse

from callcenter import clicktocall
from callcenter.queries.calls import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    BadCursorError,
    CallDetail,
    Cursor,
    call_detail,
    call_page,
)
from callcenter.store.duty import LogEntry
from callcenter.store.org import DutyLine, Unit
from callcenter.web.audit import audit
from callcenter.web.board.live import LiveUnavailableError, redis_client
from callcenter.web.calls import bp
from callcenter.web.calls.filters import OUTCOME_CHOICES, parse_filters
from callcenter.web.calls.timeline import hangup_cause_text, timeline
from callcenter.web.extensions import db
from callcenter.web.security import ADMIN, can_edit_unit, require_visible, visible_unit_ids

log = logging.getLogger(__name__)


def _scope() -> set[int] | None:
    """The units whose calls the user may see; None for an admin (every call)."""
    if getattr(current_user, "role", None) == ADMIN:
        return None
    return visible_unit_ids()


@bp.get("/calls")
@login_required
def index() -> str:
    session = db()
    scope = _scope()
    unit_query = select(Unit).order_by(Unit.name)
    line_query = select(DutyLine).order_by(DutyLine.number)
    if scope is not None:
        unit_query = unit_query.where(Unit.id.in_(sorted(scope)))
        line_query = line_query.where(DutyLine.unit_id.in_(sorted(scope)))
    units = list(session.scalars(unit_query))
    lines = list(session.scalars(line_query))
    filters, form = parse_filters(
        request.args,
        unit_ids=scope,
        zones={unit.id: unit.timezone for unit in units},
        default_zone=str(get_timezone()),
    )
    if filters.unit_id is not None and scope is not None:
        require_visible(filters.unit_id)
    after = before = None
    try:
        if request.args.get("after"):
            after = Cursor.decode(request.args["after"])
        elif request.args.get("before"):
            before = Cursor.decode(request.args["before"])
    except BadCursorError:
        abort(400, description=_("This page link is not valid; start from the first page."))
    try:
        per_page = int(request.args.get("per_page", DEFAULT_PAGE_SIZE))
    except ValueError:
        per_page = DEFAULT_PAGE_SIZE
    per_page = max(1, min(per_page, MAX_PAGE_SIZE))
    page = call_page(session, filters, after=after, before=before, limit=per_page)
    query = form.query()
    if per_page != DEFAULT_PAGE_SIZE:
        query["per_page"] = str(per_page)
    next_url = (
        url_for("calls.index", **query, after=page.next_cursor.encode())
        if page.next_cursor
        else None
    )
    prev_url = (
        url_for("calls.index", **query, before=page.prev_cursor.encode())
        if page.prev_cursor
        else None
    )
    return render_template(
        "calls/index.html",
        page=page,
        form=form,
        units=units,
        lines=lines,
        outcomes=OUTCOME_CHOICES,
        next_url=next_url,
        prev_url=prev_url,
        first_url=url_for("calls.index", **query) if (after or before) else None,
    )


def _detail_or_abort(call_id: int) -> CallDetail:
    detail = call_detail(db(), call_id)
    if detail is None:
        abort(404)
    if _scope() is not None:
        require_visible(detail.line.unit_id if detail.line is not None else None)
    return detail


def _open_entries(unit_id: int) -> list[LogEntry]:
    """The unit's open log entries a call can be tied to (newest first)."""
    return list(
        db().scalars(
            select(LogEntry)
            .where(LogEntry.unit_id == unit_id, LogEntry.status == "open")
            .order_by(LogEntry.at.desc(), LogEntry.id.desc())
            .limit(50)
        )
    )


@bp.get("/calls/<int:call_id>")
@login_required
def detail(call_id: int) -> str:
    found = _detail_or_abort(call_id)
    unit_id = found.line.unit_id if found.line is not None else None
    editable = can_edit_unit(None, unit_id)
    request_id = request.args.get("request", "")
    callback_request = None
    if request_id:
        try:
            callback_request = clicktocall.result_of(redis_client(), request_id)
        except (LiveUnavailableError, redis.exceptions.RedisError):
            callback_request = {"id": request_id, "result": "unknown", "final": True}
        if callback_request is not None and callback_request.get("call_id") not in (
            None,
            call_id,
        ):
            callback_request = None
    return render_template(
        "calls/detail.html",
        d=found,
        call=found.call,
        timeline=timeline(found.call, found.legs, found.violations),
        hangup_cause=hangup_cause_text(found.call.hangup_cause),
        editable=editable,
        open_entries=_open_entries(unit_id) if editable and unit_id is not None else [],
        desk_phones=sorted(p.endpoint for p in found.line.desk_phones) if found.line else [],
        can_call_back=editable
        and found.line is not None
        and clicktocall.dialable(found.call.caller) is not None,
        callback_request=callback_request,
        unit_tz=found.unit.timezone if found.unit is not None else None,
    )


@bp.post("/calls/<int:call_id>/call-back")
@login_required
def call_back(call_id: int) -> BaseResponse:
    """Click-to-call back: queue an Originate (desk phone first, then the caller) for the
    listener of the call's PBX; the page then shows how it went."""
    found = _detail_or_abort(call_id)
    call = found.call
    if found.line is None or not can_edit_unit(None, found.line.unit_id):
        abort(403)
    endpoints = sorted(p.endpoint for p in found.line.desk_phones)
    endpoint = request.form.get("endpoint", "") or (endpoints[0] if endpoints else "")
    if endpoint not in endpoints:
        abort(400, description=_("Choose one of the line's desk phones."))
    number = (request.form.get("number") or call.caller or "").strip()
    requested_by = str(getattr(current_user, "username", "") or current_user.id)
    try:
        request_id = clicktocall.request_call(
            redis_client(), call.pbx, endpoint, number, requested_by, call_id=call.id
        )
    except clicktocall.ClickToCallError as exc:
        abort(400, description=_("Cannot call back: %(problem)s", problem=exc.problem))
    except (LiveUnavailableError, redis.exceptions.RedisError) as exc:
        log.warning("call-back for call %s not queued: %s", call.id, exc)
        flash(_("The call-back could not be sent: live connection unavailable."), "error")
        return redirect(url_for("calls.detail", call_id=call.id))
    audit(
        "call_back",
        "call",
        call.id,
        None,
        {"request_id": request_id, "pbx": call.pbx, "endpoint": endpoint, "number": number},
    )
    db().commit()
    flash(_("Call-back requested: your desk phone %(phone)s rings first.", phone=endpoint), "info")
    return redirect(url_for("calls.detail", call_id=call.id, request=request_id))


@bp.get("/calls/<int:call_id>/call-back/<request_id>.json")
@login_required
def call_back_result(call_id: int, request_id: str) -> Response:
    _detail_or_abort(call_id)
    try:
        result: dict[str, Any] | None = clicktocall.result_of(redis_client(), request_id)
    except (LiveUnavailableError, redis.exceptions.RedisError):
        return jsonify(id=request_id, result="unknown", final=True)
    if result is None or result.get("call_id") not in (None, call_id):
        abort(404)
    response = jsonify(result)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.app_template_filter("hangup_cause")
def _hangup_cause_filter(cause: int | None) -> str:
    return hangup_cause_text(cause)
