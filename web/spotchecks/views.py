"""Spot checks: the list, and "check this line now".

- ``GET /spot-checks`` (``spotchecks.index``): the newest :data:`PAGE_SIZE` spot checks of
  the units the user sees, optionally of one line (``?line=<id>``), with the result, the
  call the check made and its violation; the "check now" form for the lines the user may
  check.
- ``POST /spot-checks`` (``spotchecks.schedule``): check line ``line_id`` now. Only an
  inspector above the line's unit, or an admin (never the unit's own staff): 403 for
  anybody else. The check is stored and audited, then its job queued on Redis.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import redis
from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from sqlalchemy import select
from werkzeug.wrappers import Response

from callcenter.store.duty import SpotCheck, Violation
from callcenter.store.org import DutyLine, Unit
from callcenter.web.audit import audit
from callcenter.web.board.live import LiveUnavailableError, redis_client
from callcenter.web.extensions import db
from callcenter.web.security import (
    ALL_ROLES,
    can_rule_on,
    require_rule_on,
    roles_required,
    unit_filter,
)
from callcenter.web.spotchecks import bp
from callcenter.workers.spot_checks import (
    dial_options,
    enqueue_run_now,
    schedule_spot_check_now,
)

log = logging.getLogger(__name__)

PAGE_SIZE = 100

RESULT_LABELS: dict[str | None, Any] = {
    "answered": _l("Answered in time"),
    "late": _l("Answered too late"),
    "unanswered": _l("Not answered"),
    "failed": _l("Failed"),
    None: _l("Pending"),
}


def _now() -> datetime:
    clock = current_app.config.get("CLOCK")
    return clock() if clock is not None else datetime.now(UTC)


def _options() -> dict[str, Any]:
    """How checks are dialed: the config's ``[spot_checks]`` table."""
    return dial_options(current_app.config["CALLCENTER"].spot_checks)


@bp.get("")
@login_required
@roles_required(*ALL_ROLES)
def index() -> str:
    session = db()
    lines = session.execute(
        select(
            DutyLine.id, DutyLine.number, DutyLine.name, DutyLine.unit_id, Unit.name, Unit.timezone
        )
        .join(Unit, Unit.id == DutyLine.unit_id)
        .where(unit_filter(DutyLine.unit_id))
        .order_by(Unit.name, DutyLine.number)
    ).all()
    visible = {line.id: line for line in lines}
    wanted = request.args.get("line", type=int)
    query = select(SpotCheck).where(SpotCheck.line_id.in_(list(visible)))
    if wanted is not None:
        query = query.where(SpotCheck.line_id == wanted)
    checks = list(
        session.scalars(
            query.order_by(SpotCheck.scheduled_at.desc(), SpotCheck.id.desc()).limit(PAGE_SIZE)
        )
    )
    keys = [f"spot_check_failed:spot_check:{check.id}" for check in checks]
    violation_ids = {
        key: violation_id
        for key, violation_id in session.execute(
            select(Violation.dedupe_key, Violation.id).where(Violation.dedupe_key.in_(keys))
        )
    }
    rows = [
        {
            "check": check,
            "line": visible[check.line_id],
            "result": RESULT_LABELS.get(check.result, check.result),
            "violation_id": violation_ids.get(f"spot_check_failed:spot_check:{check.id}"),
        }
        for check in checks
    ]
    checkable = [line for line in lines if can_rule_on(None, line.unit_id)]
    return render_template(
        "spotchecks/index.html",
        rows=rows,
        lines=lines,
        checkable=checkable,
        line_filter=wanted,
    )


@bp.post("")
@login_required
@roles_required(*ALL_ROLES)
def schedule() -> Response:
    line_id = request.form.get("line_id", type=int)
    line = db().get(DutyLine, line_id) if line_id is not None else None
    if line is None:
        abort(404)
    require_rule_on(line.unit_id)
    if not line.active:
        abort(400, description=_("This duty line is not monitored."))
    username = str(getattr(current_user, "username", "") or current_user.id)
    session = db()
    check_id = schedule_spot_check_now(session, line.id, requested_by=username, now=_now())
    audit("spot_check", "spot_check", check_id, None, {"line_id": line.id, "number": line.number})
    session.commit()
    try:
        enqueue_run_now(
            redis_client(), check_id, current_app.config.get("DATABASE_URL") or None, **_options()
        )
    except (LiveUnavailableError, redis.exceptions.RedisError) as exc:
        log.warning("spot check %s of line %s not queued: %s", check_id, line.number, exc)
        check = session.get(SpotCheck, check_id)
        if check is not None and check.action_id is None and check.result is None:
            check.result, check.detail = "failed", "never dialed: the job queue is unavailable"
            session.commit()
        flash(_("The spot check could not be started: job queue unavailable."), "error")
        return redirect(url_for("spotchecks.index", line=line.id))
    flash(_("Spot check of %(number)s started: the line rings now.", number=line.number), "info")
    return redirect(url_for("spotchecks.index", line=line.id))
