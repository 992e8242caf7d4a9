"""The duty-log entry (值班日志) of a stored call: one entry per call of a monitored unit
(``source_key`` ``call:<id>``), open while a missed inbound call is owed a call-back."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter.store.duty import LogEntry, LogEntryCall
from callcenter.store.models import Call
from callcenter.workers.context import (
    INBOUND_MISSED,
    CallContext,
    calling_endpoints,
    happened_at,
    is_judged,
)
from callcenter.workers.storage import insert_if_absent

__all__ = ["summary", "write_log_entry"]


def write_log_entry(session: Session, row: Call, context: CallContext) -> None:
    """The duty-log entry of a call (``source_key`` ``call:<id>``), tied to the call."""
    if context.unit_id is None:
        return  # not a call of any monitored unit: the call log has it, the duty log not
    missed = is_judged(row, context.line) and row.outcome in INBOUND_MISSED
    entry_id = insert_if_absent(
        session,
        LogEntry,
        {
            "source_key": f"call:{row.id}",
            "unit_id": context.unit_id,
            "shift_id": context.shift_id,
            "at": happened_at(row),
            "kind": "call",
            "summary": summary(row),
            "action_taken": "",
            "status": "open" if missed else "done",
        },
        ["source_key"],
    )
    if entry_id is None:
        entry_id = session.scalar(
            select(LogEntry.id).where(LogEntry.source_key == f"call:{row.id}")
        )
    insert_if_absent(
        session,
        LogEntryCall,
        {"log_entry_id": entry_id, "call_id": row.id},
        ["log_entry_id", "call_id"],
    )


def summary(row: Call) -> str:
    """One line for the duty log: who called whom, what happened, what is owed."""
    ring = f"{row.ring_seconds:.1f} s" if row.ring_seconds is not None else "unknown time"
    talk = f", talk {row.talk_seconds:.0f} s" if row.talk_seconds is not None else ""
    caller = row.caller or "an unknown number"
    if row.originated and row.direction != "inbound" and not row.dialed:
        return f"Originated call to {row.answered_by or row.line}: {row.outcome}"
    if row.direction == "inbound" and not row.originated:
        if row.outcome == "answered":
            forwarded = f", forwarded to {row.forwarded_to}" if row.forwarded_to else ""
            return (
                f"Call from {caller} to {row.line}: answered by {row.answered_by} "
                f"after {ring}{forwarded}{talk}"
            )
        return f"Missed call from {caller} to {row.line}: {row.outcome} after {ring}; call back"
    if row.originated and row.line and row.caller == row.line:
        return f"Spot check of {row.line}: {row.outcome} after {ring}{talk}"
    who = ", ".join(calling_endpoints(row)) or caller
    return f"{row.direction.capitalize()} call from {who} to {row.dialed}: {row.outcome}{talk}"
