"""Violations review: the list with filters, one violation, ruling and the unit's explanation.

- ``GET /violations`` (``violations.index``): newest first, keyset pages of 50, filtered by
  unit, line, kind, state and period (local dates in the user's zone); only the units the
  user may see.
- ``GET /violations/<id>`` (``violations.detail``): the violation, its calls, the decision
  and explanation forms (each shown only to who may use it) and its audit history.
- ``POST /violations/<id>/decide`` (``violations.decide``): an inspector above the unit (or
  an admin) confirms or dismisses with a reason; confirming sets the deduction from the
  assessment table. 403 for anybody else, the unit's own staff included.
- ``POST /violations/<id>/explain`` (``violations.explain``): the unit's staff (or an admin)
  write the unit's explanation; they never rule.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import get_timezone
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from sqlalchemy import ColumnElement, and_, or_, select
from werkzeug.wrappers import Response

from callcenter.store.accounts import AuditEntry, User
from callcenter.store.duty import (
    VIOLATION_KINDS,
    VIOLATION_STATES,
    Violation,
    ViolationCall,
)
from callcenter.store.models import Call
from callcenter.store.org import DutyLine, Unit
from callcenter.web.extensions import db
from callcenter.web.security import (
    ALL_ROLES,
    can_edit_unit,
    can_rule_on,
    has_endpoint,
    require_visible,
    roles_required,
    unit_filter,
    visible_unit_ids,
)
from callcenter.web.violations import bp
from callcenter.web.violations.decisions import (
    CONFIRM_REASONS,
    DISMISS_REASONS,
    MAX_TEXT,
    DecisionError,
    StaleDecisionError,
    apply_decision,
    assessment_table,
    now,
    parse_decision,
    reason_label,
)
from callcenter.web.violations.decisions import explain as record_explanation

PAGE_SIZE = 50

KIND_LABELS: dict[str, Any] = {
    "unanswered": _l("Unanswered (无人接听)"),
    "slow_answer": _l("Slow answer (接听迟缓)"),
    "forwarded": _l("Forwarded (呼叫转移)"),
    "unmanned": _l("Unmanned (无人值班)"),
    "phone_offline": _l("Phone offline (话机离线)"),
    "forward_set": _l("Forward set (设置转移)"),
    "dnd_set": _l("Do not disturb (免打扰)"),
    "spot_check_failed": _l("Spot check failed (抽查未接)"),
    "late_report": _l("Late report (迟报)"),
}
STATE_LABELS: dict[str, Any] = {
    "flagged": _l("Flagged (待审)"),
    "confirmed": _l("Confirmed (确认)"),
    "dismissed": _l("Dismissed (撤销)"),
}


@bp.app_template_global()
def violation_kind_label(kind: str) -> str:
    return str(KIND_LABELS.get(kind, kind))


@bp.app_template_global()
def violation_state_label(state: str) -> str:
    return str(STATE_LABELS.get(state, state))


# --------------------------------------------------------------------------- the list


@dataclass(frozen=True, slots=True)
class ListFilters:
    unit_id: int | None = None
    line_id: int | None = None
    kind: str | None = None
    state: str | None = None
    first: date | None = None
    last: date | None = None

    def args(self) -> dict[str, str]:
        """The filters as query arguments (for links that keep them)."""
        out: dict[str, str] = {}
        if self.unit_id is not None:
            out["unit"] = str(self.unit_id)
        if self.line_id is not None:
            out["line"] = str(self.line_id)
        if self.kind:
            out["kind"] = self.kind
        if self.state:
            out["state"] = self.state
        if self.first:
            out["from"] = self.first.isoformat()
        if self.last:
            out["to"] = self.last.isoformat()
        return out


def _int_arg(name: str) -> int | None:
    value = request.args.get(name, "").strip()
    return int(value) if value.isdigit() else None


def _date_arg(name: str) -> date | None:
    value = request.args.get(name, "").strip()
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def read_filters() -> ListFilters:
    kind = request.args.get("kind", "").strip()
    state = request.args.get("state", "").strip()
    return ListFilters(
        unit_id=_int_arg("unit"),
        line_id=_int_arg("line"),
        kind=kind if kind in VIOLATION_KINDS else None,
        state=state if state in VIOLATION_STATES else None,
        first=_date_arg("from"),
        last=_date_arg("to"),
    )


def _encode_after(violation: Violation) -> str:
    micros = int(violation.at.timestamp() * 1_000_000)
    return base64.urlsafe_b64encode(f"{micros}.{violation.id}".encode()).decode().rstrip("=")


def _decode_after(token: str) -> tuple[datetime, int] | None:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("ascii")
        micros, row_id = (int(part) for part in raw.split("."))
        return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros), row_id
    except (ValueError, binascii.Error, UnicodeDecodeError, OverflowError):
        return None


def _zone() -> ZoneInfo:
    zone = get_timezone()
    return zone if isinstance(zone, ZoneInfo) else ZoneInfo(str(zone or "Asia/Shanghai"))


def list_query(filters: ListFilters, after: tuple[datetime, int] | None) -> Any:
    query = select(Violation).where(unit_filter(Violation.unit_id))
    if filters.unit_id is not None:
        query = query.where(Violation.unit_id == filters.unit_id)
    if filters.line_id is not None:
        query = query.where(Violation.line_id == filters.line_id)
    if filters.kind:
        query = query.where(Violation.kind == filters.kind)
    if filters.state:
        query = query.where(Violation.state == filters.state)
    zone = _zone()
    if filters.first:
        query = query.where(Violation.at >= datetime.combine(filters.first, time.min, zone))
    if filters.last:
        end = datetime.combine(filters.last + timedelta(days=1), time.min, zone)
        query = query.where(Violation.at < end)
    if after is not None:
        at, row_id = after
        query = query.where(
            Violation.at <= at,
            or_(Violation.at < at, and_(Violation.at == at, Violation.id < row_id)),
        )
    return query.order_by(Violation.at.desc(), Violation.id.desc()).limit(PAGE_SIZE + 1)


@bp.get("/violations")
@login_required
@roles_required(*ALL_ROLES)
def index() -> str:
    filters = read_filters()
    token = request.args.get("after", "").strip()
    after = _decode_after(token) if token else None
    found = list(db().scalars(list_query(filters, after)))
    violations = found[:PAGE_SIZE]
    next_token = _encode_after(violations[-1]) if len(found) > PAGE_SIZE else None

    visible = visible_unit_ids()
    units = list(db().scalars(select(Unit).where(Unit.id.in_(sorted(visible))).order_by(Unit.name)))
    lines = list(
        db().scalars(
            select(DutyLine).where(DutyLine.unit_id.in_(sorted(visible))).order_by(DutyLine.number)
        )
    )
    unit_names = {unit.id: unit.name for unit in units}
    unit_zones = {unit.id: unit.timezone for unit in units}
    line_numbers = {line.id: line.number for line in lines}
    return render_template(
        "violations/index.html",
        violations=violations,
        filters=filters,
        filter_args=filters.args(),
        next_token=next_token,
        first_page=after is not None,
        units=units,
        lines=lines,
        unit_names=unit_names,
        unit_zones=unit_zones,
        line_numbers=line_numbers,
        kinds=VIOLATION_KINDS,
        states=VIOLATION_STATES,
    )


# --------------------------------------------------------------------------- one violation


def _load(violation_id: int, *, for_update: bool = False) -> Violation:
    query = select(Violation).where(Violation.id == violation_id)
    if for_update:
        query = query.with_for_update()
    violation = db().scalar(query)
    if violation is None:
        abort(404)
    require_visible(violation.unit_id)
    return violation


def call_url(call_id: int) -> str | None:
    """A link to the call's page, when the calls feature has one."""
    if not has_endpoint("calls.detail"):
        return None
    return url_for("calls.detail", call_id=call_id)


def _history(violation_id: int) -> list[dict[str, Any]]:
    rows = (
        db()
        .execute(
            select(AuditEntry, User.username)
            .outerjoin(User, User.id == AuditEntry.user_id)
            .where(AuditEntry.entity == "violation", AuditEntry.entity_id == str(violation_id))
            .order_by(AuditEntry.at, AuditEntry.id)
        )
        .all()
    )
    history = []
    for entry, username in rows:
        before = json.loads(entry.before) if entry.before else {}
        after = json.loads(entry.after) if entry.after else {}
        changes = {
            key: (before.get(key), after.get(key))
            for key in sorted(set(before) | set(after))
            if before.get(key) != after.get(key)
        }
        history.append({"entry": entry, "username": username or "—", "changes": changes})
    return history


def _detail_context(violation: Violation) -> dict[str, Any]:
    session = db()
    unit = session.get(Unit, violation.unit_id) if violation.unit_id is not None else None
    line = session.get(DutyLine, violation.line_id) if violation.line_id is not None else None
    listed = select(ViolationCall.call_id).where(ViolationCall.violation_id == violation.id)
    call_filter: ColumnElement[bool] = Call.id.in_(listed)
    if violation.call_id is not None:
        call_filter = or_(call_filter, Call.id == violation.call_id)
    calls = list(session.scalars(select(Call).where(call_filter).order_by(Call.started_at)))
    decided_by = (
        session.get(User, violation.decided_by_id) if violation.decided_by_id is not None else None
    )
    return {
        "violation": violation,
        "unit": unit,
        "line": line,
        "calls": calls,
        "call_url": call_url,
        "decided_by": decided_by,
        "reason_text": reason_label(violation.decision_reason or ""),
        "may_rule": can_rule_on(None, violation.unit_id),
        "may_explain": can_edit_unit(None, violation.unit_id),
        "confirm_reasons": CONFIRM_REASONS,
        "dismiss_reasons": DISMISS_REASONS,
        "deduction_if_confirmed": assessment_table().get(violation.kind, 0.0),
        "history": _history(violation.id),
        "max_text": MAX_TEXT,
        "zone": unit.timezone if unit is not None else None,
    }


@bp.get("/violations/<int:violation_id>")
@login_required
@roles_required(*ALL_ROLES)
def detail(violation_id: int) -> str:
    violation = _load(violation_id)
    return render_template("violations/detail.html", **_detail_context(violation))


def _back(violation_id: int) -> str:
    target = request.form.get("next", "")
    # only our own list or page: never an outside address
    if target.startswith("/violations") and "//" not in target and "\\" not in target:
        return target
    return url_for("violations.detail", violation_id=violation_id)


@bp.post("/violations/<int:violation_id>/decide")
@login_required
@roles_required(*ALL_ROLES)
def decide(violation_id: int) -> Response | tuple[str, int]:
    violation = _load(violation_id, for_update=True)
    if not can_rule_on(None, violation.unit_id):
        abort(403)
    try:
        decision = parse_decision(request.form)
        apply_decision(
            violation,
            decision,
            user_id=int(current_user.id),
            now=now(),
            table=assessment_table(),
        )
    except DecisionError as error:
        db().rollback()
        status = 409 if isinstance(error, StaleDecisionError) else 400
        violation = _load(violation_id)
        context = _detail_context(violation)
        return render_template(
            "violations/detail.html", error=error, form=request.form, **context
        ), status
    db().commit()
    if decision.verdict == "confirm":
        flash(_("Violation %(id)s confirmed.", id=violation.id), "success")
    else:
        flash(_("Violation %(id)s dismissed.", id=violation.id), "success")
    return redirect(_back(violation_id))


@bp.post("/violations/<int:violation_id>/explain")
@login_required
@roles_required(*ALL_ROLES)
def explain(violation_id: int) -> Response | tuple[str, int]:
    violation = _load(violation_id, for_update=True)
    if not can_edit_unit(None, violation.unit_id):
        abort(403)
    try:
        record_explanation(violation, request.form.get("explanation", ""))
    except DecisionError as error:
        db().rollback()
        context = _detail_context(_load(violation_id))
        return render_template(
            "violations/detail.html", error=error, form=request.form, **context
        ), 400
    db().commit()
    flash(_("Explanation saved."), "success")
    return redirect(url_for("violations.detail", violation_id=violation_id))
