"""Call-backs (事事有回音): a missed inbound call opens a call-back task; a later answered
call closes it — the caller got through on the line (``reached``) or a desk phone of the
line called the number back (``called_back``) — in whichever order the two calls are
evaluated; the outbox sweep reconciles the ones a race between two workers left open."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session, selectinload

from callcenter.store.duty import Callback, LogEntry
from callcenter.store.models import Call
from callcenter.store.policy import StoredLine
from callcenter.tracking.names import digits, same_number
from callcenter.workers.context import INBOUND_MISSED, CallContext, calling_endpoints, happened_at
from callcenter.workers.storage import insert_if_absent, lines

__all__ = ["close_callbacks_by", "open_callback", "reconcile_callbacks"]


def open_callback(session: Session, row: Call, context: CallContext) -> str | None:
    """A missed inbound call becomes a call-back task, closed at once if a later stored call
    already settled it (an evaluation may run after the call that closes it); its state."""
    if row.outcome not in INBOUND_MISSED or context.line is None:
        return None
    number = row.caller if digits(row.caller) else None
    values: dict[str, Any] = {
        "call_id": row.id,
        "line_id": context.line.line_id,
        "caller": (number or "")[:64],
        "state": "open",
        "reason": "",
    }
    if number is None:
        values |= {
            "state": "excused",
            "reason": "no caller number to call back",
            "closed_at": happened_at(row),
        }
    insert_if_absent(session, Callback, values, ["call_id"])
    callback = session.scalar(select(Callback).where(Callback.call_id == row.id))
    if callback is None:  # pragma: no cover - inserted or found above
        raise RuntimeError(f"call-back of call {row.id} neither inserted nor found")
    if callback.state == "open":
        _settle(session, callback, row, context.line)
    return callback.state


def _settle(session: Session, callback: Callback, missed: Call, line: StoredLine) -> bool:
    """Close ``callback`` if a stored call after ``missed`` settled it; True if closed."""
    closer = _closing_call(session, missed, line)
    if closer is None:
        return False
    state, call = closer
    return _close(session, callback.id, state, call)


def _closing_call(session: Session, missed: Call, line: StoredLine) -> tuple[str, Call] | None:
    """The earliest answered call after ``missed`` that settles it: the caller got through on
    the line (``reached``), or a desk phone of the line called the number back
    (``called_back``)."""
    if missed.started_at is None or not missed.caller:
        return None
    tail = digits(missed.caller)[-7:]
    candidates = session.scalars(
        select(Call)
        .where(
            Call.outcome == "answered",
            Call.started_at > missed.started_at,
            Call.id != missed.id,
            or_(
                and_(
                    Call.direction == "inbound",
                    Call.originated.is_(False),
                    Call.line == line.number,
                    Call.caller.like(f"%{tail}"),
                ),
                and_(Call.direction != "inbound", Call.dialed.like(f"%{tail}")),
            ),
        )
        .options(selectinload(Call.legs))
        .order_by(Call.started_at, Call.id)
    )
    for call in candidates:
        if call.direction == "inbound":
            if same_number(call.caller, missed.caller):
                return "reached", call
        elif same_number(call.dialed, missed.caller) and any(
            endpoint in line.desk_phones for endpoint in calling_endpoints(call)
        ):
            return "called_back", call
    return None


def close_callbacks_by(session: Session, row: Call, context: CallContext) -> int:
    """Close the open call-backs that ``row`` settles (it may be evaluated after them)."""
    if row.outcome != "answered" or row.started_at is None:
        return 0
    if row.direction == "inbound":
        if row.originated or context.line is None or not row.caller:
            return 0
        state, number, line_ids = "reached", row.caller, [context.line.line_id]
    else:
        found = lines(session).for_endpoints(calling_endpoints(row))
        if not found or not row.dialed:
            return 0
        state, number, line_ids = "called_back", row.dialed, [line.line_id for line in found]
    tail = digits(number)[-7:]
    if not tail:
        return 0
    open_ones = session.execute(
        select(Callback.id, Callback.caller)
        .join(Call, Call.id == Callback.call_id)
        .where(
            Callback.state == "open",
            Callback.line_id.in_(line_ids),
            Callback.caller.like(f"%{tail}"),
            Call.started_at < row.started_at,
        )
        .order_by(Callback.id)
    ).all()
    return sum(
        _close(session, callback_id, state, row)
        for callback_id, caller in open_ones
        if same_number(caller, number)
    )


def _close(session: Session, callback_id: int, state: str, by: Call) -> bool:
    """Close an open call-back (a closed one stays as it is); mark its log entry done."""
    closed_at = by.answered_at or happened_at(by)
    done = session.execute(
        update(Callback)
        .where(Callback.id == callback_id, Callback.state == "open")
        .values(state=state, closed_at=closed_at, closed_by_call_id=by.id)
        .execution_options(synchronize_session=False)
    )
    if not done.rowcount:  # type: ignore[attr-defined]
        return False
    missed_id = session.scalar(select(Callback.call_id).where(Callback.id == callback_id))
    how = "caller got through" if state == "reached" else "called back"
    session.execute(
        update(LogEntry)
        .where(
            LogEntry.source_key == f"call:{missed_id}",
            LogEntry.status == "open",
            LogEntry.action_taken == "",
        )
        .values(status="done", action_taken=f"{how} (call {by.id}, {by.linkedid})")
        .execution_options(synchronize_session=False)
    )
    return True


def reconcile_callbacks(session: Session, since: datetime, limit: int = 1_000) -> int:
    """Close the open call-backs written since ``since`` whose closing call was evaluated
    while they were being written (two workers at the same moment): the sweep's safety net.
    """
    rows = session.execute(
        select(Callback, Call)
        .join(Call, Call.id == Callback.call_id)
        .where(
            Callback.state == "open",
            Callback.line_id.is_not(None),
            Callback.created_at >= since,
        )
        .order_by(Callback.id)
        .limit(limit)
    ).all()
    closed = 0
    directory = lines(session, fresh=True)
    for callback, missed in rows:
        line = directory.for_number(missed.line)
        if line is not None and line.line_id == callback.line_id:
            closed += _settle(session, callback, missed, line)
    return closed
