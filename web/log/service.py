"""Duty-log changes: tie calls to entries, close entries, open incidents, record the reports
sent upward for them, record call-backs, sign handovers. Each function checks its input,
changes the rows, writes the audit entries in the same session, and leaves the commit to the
caller (the view).

Raises :class:`LogError` (with a message for the user) for a request that cannot be done;
permission checks are the views' business.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from callcenter.deadlines import FIRST_REPORT
from callcenter.store.duty import (
    Callback,
    Handover,
    Incident,
    IncidentReport,
    LogEntry,
    LogEntryCall,
    Shift,
)
from callcenter.store.models import Call
from callcenter.store.org import DutyLine
from callcenter.web.audit import audit, model_snapshot

__all__ = [
    "CALLBACK_RESULTS",
    "ENTRY_FIELDS",
    "FINAL_REPORT",
    "FOLLOW_UP_REPORT",
    "INCIDENT_FIELDS",
    "INCIDENT_REPORT_DUE",
    "REPORT_FIELDS",
    "REPORT_KINDS",
    "LogError",
    "OpenItems",
    "callback_unit_id",
    "create_entry",
    "create_incident",
    "current_shift",
    "link_incident",
    "mark_done",
    "open_items",
    "pending_handover",
    "record_callback",
    "record_report",
    "report_kinds_allowed",
    "sign_in",
    "sign_out",
    "tag_call",
    "update_entry",
]

ENTRY_FIELDS = (
    "unit_id", "shift_id", "incident_id", "at", "kind", "summary", "action_taken", "status",
)  # fmt: skip
INCIDENT_FIELDS = (
    "unit_id", "title", "occurred_at", "place", "source", "category", "level", "cause",
    "course", "losses", "measures", "trend", "contact", "status", "report_due_at",
)  # fmt: skip
REPORT_FIELDS = ("incident_id", "kind", "reported_at", "content", "created_by_id")
CALLBACK_FIELDS = ("state", "closed_at", "reason", "closed_by_call_id")
HANDOVER_FIELDS = (
    "unit_id", "shift_id", "outgoing_officer", "incoming_officer", "notes", "signed_out_at",
    "signed_in_at",
)  # fmt: skip
INCIDENT_TEXT_FIELDS = (
    "place", "source", "category", "level", "cause", "course", "losses", "measures", "trend",
    "contact",
)  # fmt: skip
CALLBACK_RESULTS = ("called_back", "reached", "excused")
# the reports sent upward: 首报 (the one the deadline is about), 续报, 终报 (closes the incident)
FOLLOW_UP_REPORT = "follow_up"
FINAL_REPORT = "final"
REPORT_KINDS = (FIRST_REPORT, FOLLOW_UP_REPORT, FINAL_REPORT)
INCIDENT_REPORT_DUE = timedelta(hours=2)  # 突发事件: first report within 2 h of the event
MAX_TEXT = 4000


class LogError(ValueError):
    """A duty-log change that cannot be made, with a message for the user (``str(error)``,
    translated when shown)."""

    def __init__(self, message: Any) -> None:
        self.message = message
        super().__init__(message)

    def __str__(self) -> str:
        return str(self.message)


def _text(value: str | None, limit: int = MAX_TEXT) -> str:
    return (value or "").strip()[:limit]


def current_shift(session: Session, unit_id: int, at: datetime) -> Shift | None:
    """The unit's shift covering ``at`` (the latest-starting one if they overlap)."""
    return session.scalar(
        select(Shift)
        .where(Shift.unit_id == unit_id, Shift.starts_at <= at, Shift.ends_at > at)
        .order_by(Shift.starts_at.desc())
        .limit(1)
    )


# --------------------------------------------------------------------------- entries


def create_entry(
    session: Session,
    unit_id: int,
    *,
    at: datetime,
    summary: str,
    action_taken: str = "",
    kind: str = "note",
    done: bool = False,
    user_id: int | None,
) -> LogEntry:
    summary = _text(summary)
    if not summary:
        raise LogError(_l("a log entry needs a summary"))
    shift = current_shift(session, unit_id, at)
    entry = LogEntry(
        unit_id=unit_id,
        shift_id=shift.id if shift else None,
        at=at,
        kind=kind[:32],
        summary=summary,
        action_taken=_text(action_taken),
        status="done" if done else "open",
        created_by_id=user_id,
    )
    session.add(entry)
    session.flush()
    audit(
        "create", "log_entry", entry.id, None, model_snapshot(entry, ENTRY_FIELDS), session=session
    )
    return entry


def _call_summary(call: Call) -> str:
    who = call.caller or "?"
    if call.caller_name:
        who = f"{who} ({call.caller_name})"
    return f"{who} → {call.line or call.dialed or '?'}: {call.outcome}"


def tag_call(
    session: Session,
    call: Call,
    unit_id: int,
    *,
    entry_id: int | None,
    summary: str = "",
    action_taken: str = "",
    done: bool = False,
    user_id: int | None,
    now: datetime,
) -> LogEntry:
    """Tie ``call`` to entry ``entry_id`` of the unit, or to a new entry (``entry_id`` None).

    ``action_taken`` (what was done) is the new entry's, or is added as a new line to the
    existing entry's; ``done`` closes the entry. Tying a call twice to one entry is a no-op
    for the tie.
    """
    action_taken = _text(action_taken)
    if entry_id is None:
        entry = LogEntry(
            unit_id=unit_id,
            at=call.started_at or now,
            kind="call",
            summary=_text(summary) or _call_summary(call),
            action_taken=action_taken,
            status="done" if done else "open",
            created_by_id=user_id,
        )
        shift = current_shift(session, unit_id, entry.at)
        entry.shift_id = shift.id if shift else None
        session.add(entry)
        session.flush()
        session.add(LogEntryCall(log_entry_id=entry.id, call_id=call.id))
        audit(
            "create",
            "log_entry",
            entry.id,
            None,
            model_snapshot(entry, ENTRY_FIELDS),
            session=session,
        )
    else:
        found = session.get(LogEntry, entry_id)
        if found is None or found.unit_id != unit_id:
            raise LogError(_l("no such log entry of this unit"))
        entry = found
        before = model_snapshot(entry, ENTRY_FIELDS)
        if action_taken:
            entry.action_taken = (
                f"{entry.action_taken}\n{action_taken}" if entry.action_taken else action_taken
            )[:MAX_TEXT]
        if done:
            entry.status = "done"
        already = session.get(LogEntryCall, (entry.id, call.id))
        if already is None:
            session.add(LogEntryCall(log_entry_id=entry.id, call_id=call.id))
        session.flush()
        after = model_snapshot(entry, ENTRY_FIELDS)
        if after != before:
            audit("update", "log_entry", entry.id, before, after, session=session)
    audit(
        "tag",
        "log_entry_call",
        f"{entry.id}:{call.id}",
        None,
        {"log_entry_id": entry.id, "call_id": call.id},
        session=session,
    )
    return entry


def mark_done(session: Session, entry: LogEntry, *, action_taken: str = "") -> LogEntry:
    before = model_snapshot(entry, ENTRY_FIELDS)
    action_taken = _text(action_taken)
    if action_taken:
        entry.action_taken = (
            f"{entry.action_taken}\n{action_taken}" if entry.action_taken else action_taken
        )[:MAX_TEXT]
    entry.status = "done"
    session.flush()
    audit(
        "done", "log_entry", entry.id, before, model_snapshot(entry, ENTRY_FIELDS), session=session
    )
    return entry


def update_entry(session: Session, entry: LogEntry, *, summary: str, action_taken: str) -> LogEntry:
    summary = _text(summary)
    if not summary:
        raise LogError(_l("a log entry needs a summary"))
    before = model_snapshot(entry, ENTRY_FIELDS)
    entry.summary = summary
    entry.action_taken = _text(action_taken)
    session.flush()
    after = model_snapshot(entry, ENTRY_FIELDS)
    if after != before:
        audit("update", "log_entry", entry.id, before, after, session=session)
    return entry


# --------------------------------------------------------------------------- incidents


def create_incident(
    session: Session, unit_id: int, fields: dict[str, Any], *, occurred_at: datetime
) -> Incident:
    """A minimal incident: the fixed elements given, the first report due 2 h after it."""
    title = _text(fields.get("title"), 255)
    if not title:
        raise LogError(_l("an incident needs a title"))
    values = {
        name: _text(fields.get(name), 255 if name in ("place", "source", "contact") else MAX_TEXT)
        for name in INCIDENT_TEXT_FIELDS
    }
    values["category"] = values["category"][:64]
    values["level"] = values["level"][:32]
    incident = Incident(
        unit_id=unit_id,
        title=title,
        occurred_at=occurred_at,
        report_due_at=occurred_at + INCIDENT_REPORT_DUE,
        status="open",
        **values,
    )
    session.add(incident)
    session.flush()
    audit(
        "create",
        "incident",
        incident.id,
        None,
        model_snapshot(incident, INCIDENT_FIELDS),
        session=session,
    )
    return incident


def link_incident(session: Session, entry: LogEntry, incident: Incident) -> LogEntry:
    if incident.unit_id != entry.unit_id:
        raise LogError(_l("the incident belongs to another unit"))
    before = model_snapshot(entry, ENTRY_FIELDS)
    entry.incident_id = incident.id
    session.flush()
    audit(
        "link_incident",
        "log_entry",
        entry.id,
        before,
        model_snapshot(entry, ENTRY_FIELDS),
        session=session,
    )
    return entry


def report_kinds_allowed(incident: Incident) -> tuple[str, ...]:
    """What may be recorded next: the first report once, then follow-ups and the final one;
    nothing once the incident is closed."""
    if incident.status == "closed":
        return ()
    if not any(report.kind == FIRST_REPORT for report in incident.reports):
        return (FIRST_REPORT,)
    return (FOLLOW_UP_REPORT, FINAL_REPORT)


def record_report(
    session: Session,
    incident: Incident,
    *,
    kind: str,
    reported_at: datetime,
    content: str,
    user_id: int | None,
    now: datetime,
) -> IncidentReport:
    """Record a report sent upward at ``reported_at`` (not in the future, not before the
    event, a follow-up or final one not before the first). The final report closes the
    incident."""
    if kind not in REPORT_KINDS:
        raise LogError(_l("choose the kind of report"))
    if kind not in report_kinds_allowed(incident):
        if incident.status == "closed":
            raise LogError(_l("the incident is closed: its final report is recorded"))
        if kind == FIRST_REPORT:
            raise LogError(_l("the first report is recorded already"))
        raise LogError(_l("record the first report before a follow-up or final one"))
    if reported_at > now:
        raise LogError(_l("the time the report was sent cannot be in the future"))
    if reported_at < incident.occurred_at:
        raise LogError(_l("the report cannot have been sent before the event"))
    first = [r.reported_at for r in incident.reports if r.kind == FIRST_REPORT]
    if first and reported_at < min(first):
        raise LogError(_l("a follow-up or final report cannot precede the first report"))
    content = (content or "").strip()
    if not content:
        raise LogError(_l("a report needs its content"))
    if len(content) > MAX_TEXT:
        raise LogError(_l("the report is too long (at most %(limit)s characters)", limit=MAX_TEXT))
    report = IncidentReport(
        incident_id=incident.id,
        kind=kind,
        reported_at=reported_at,
        content=content,
        created_by_id=user_id,
    )
    incident.reports.append(report)
    try:
        session.flush()
    except IntegrityError as exc:  # another first report was stored a moment ago
        raise LogError(_l("the first report is recorded already")) from exc
    audit(
        "create",
        "incident_report",
        report.id,
        None,
        model_snapshot(report, REPORT_FIELDS),
        session=session,
    )
    if kind == FINAL_REPORT:
        before = model_snapshot(incident, INCIDENT_FIELDS)
        incident.status = "closed"
        session.flush()
        audit(
            "close",
            "incident",
            incident.id,
            before,
            model_snapshot(incident, INCIDENT_FIELDS),
            session=session,
        )
    return report


# --------------------------------------------------------------------------- call-backs


def callback_unit_id(session: Session, callback: Callback) -> int | None:
    """The unit whose line the missed call came in on."""
    if callback.line_id is not None:
        unit_id = session.scalar(select(DutyLine.unit_id).where(DutyLine.id == callback.line_id))
        if unit_id is not None:
            return unit_id
    line = session.scalar(select(Call.line).where(Call.id == callback.call_id))
    if not line:
        return None
    return session.scalar(select(DutyLine.unit_id).where(DutyLine.number == line))


def record_callback(
    session: Session, callback: Callback, result: str, reason: str, *, now: datetime
) -> Callback:
    """Close an open call-back: ``called_back`` (tried), ``reached``, or ``excused`` (a
    reason is required)."""
    if result not in CALLBACK_RESULTS:
        raise LogError(_l("choose called back, reached or excused"))
    if callback.state != "open":
        raise LogError(_l("this call-back is already closed"))
    reason = _text(reason)
    if result == "excused" and not reason:
        raise LogError(_l("give the reason why no call-back is needed"))
    before = model_snapshot(callback, CALLBACK_FIELDS)
    callback.state = result
    callback.reason = reason
    callback.closed_at = now
    session.flush()
    audit(
        "close",
        "callback",
        callback.id,
        before,
        model_snapshot(callback, CALLBACK_FIELDS),
        session=session,
    )
    return callback


# --------------------------------------------------------------------------- handover


@dataclass(frozen=True, slots=True)
class OpenItems:
    """What stays open at a handover (交接班): it passes to the next shift."""

    entries: Sequence[LogEntry]
    callbacks: Sequence[tuple[Callback, Call]]
    incidents: Sequence[Incident]

    def snapshot(self) -> dict[str, list[int]]:
        return {
            "open_entries": [entry.id for entry in self.entries],
            "open_callbacks": [callback.id for callback, _call in self.callbacks],
            "open_incidents": [incident.id for incident in self.incidents],
        }

    @property
    def count(self) -> int:
        return len(self.entries) + len(self.callbacks) + len(self.incidents)


def open_items(session: Session, unit_id: int) -> OpenItems:
    entries = list(
        session.scalars(
            select(LogEntry)
            .where(LogEntry.unit_id == unit_id, LogEntry.status == "open")
            .order_by(LogEntry.at, LogEntry.id)
        )
    )
    numbers = select(DutyLine.number).where(DutyLine.unit_id == unit_id)
    callbacks = list(
        session.execute(
            select(Callback, Call)
            .join(Call, Call.id == Callback.call_id)
            .where(Callback.state == "open", Call.line.in_(numbers))
            .order_by(Call.started_at, Call.id)
        )
    )
    incidents = list(
        session.scalars(
            select(Incident)
            .where(Incident.unit_id == unit_id, Incident.status == "open")
            .order_by(Incident.occurred_at, Incident.id)
        )
    )
    return OpenItems(entries=entries, callbacks=callbacks, incidents=incidents)


def pending_handover(session: Session, unit_id: int) -> Handover | None:
    """The unit's handover signed by the outgoing officer and not yet by the incoming one."""
    return session.scalar(
        select(Handover)
        .where(Handover.unit_id == unit_id, Handover.signed_in_at.is_(None))
        .order_by(Handover.signed_out_at.desc(), Handover.id.desc())
        .limit(1)
    )


def sign_out(
    session: Session, unit_id: int, *, officer: str, notes: str, now: datetime
) -> Handover:
    """The outgoing officer signs: what stays open is recorded with the handover."""
    officer = _text(officer, 64)
    if not officer:
        raise LogError(_l("the outgoing officer must be named"))
    if pending_handover(session, unit_id) is not None:
        raise LogError(_l("a handover is waiting for the incoming officer already"))
    shift = current_shift(session, unit_id, now)
    items = open_items(session, unit_id)
    handover = Handover(
        unit_id=unit_id,
        shift_id=shift.id if shift else None,
        outgoing_officer=officer,
        incoming_officer=None,
        notes=_text(notes),
        signed_out_at=now,
    )
    session.add(handover)
    session.flush()
    after = {**model_snapshot(handover, HANDOVER_FIELDS), **items.snapshot()}
    audit("sign_out", "handover", handover.id, None, after, session=session)
    return handover


def sign_in(session: Session, handover: Handover, *, officer: str, now: datetime) -> Handover:
    """The incoming officer signs: from now on the open items are theirs."""
    officer = _text(officer, 64)
    if not officer:
        raise LogError(_l("the incoming officer must be named"))
    if handover.signed_in_at is not None:
        raise LogError(_l("this handover is signed off already"))
    if officer == handover.outgoing_officer:
        raise LogError(_l("the incoming officer must sign with their own account"))
    before = model_snapshot(handover, HANDOVER_FIELDS)
    handover.incoming_officer = officer
    handover.signed_in_at = now
    session.flush()
    after = {
        **model_snapshot(handover, HANDOVER_FIELDS),
        **open_items(session, handover.unit_id).snapshot(),
    }
    audit("sign_in", "handover", handover.id, before, after, session=session)
    return handover
