"""The evaluation of one stored call, in the caller's transaction: violations
(``unanswered``, ``slow_answer``, ``forwarded``, ``unmanned``) with the calls behind them and
the duty officer on shift, the duty-log entry, the call-back of a missed inbound call, the
closing of call-backs this call settles, and ``calls.evaluated_at``."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from callcenter.rules.violations import Violation
from callcenter.store.duty import Violation as ViolationRow
from callcenter.store.duty import ViolationCall
from callcenter.store.models import Call
from callcenter.workers.callbacks import close_callbacks_by, open_callback
from callcenter.workers.context import (
    CallContext,
    call_context,
    call_record,
    happened_at,
    is_judged,
    line_violations,
)
from callcenter.workers.duty_log import write_log_entry
from callcenter.workers.storage import insert_if_absent
from callcenter.workers.unmanned import unmanned

__all__ = ["evaluate_stored_call", "store_violation"]

logger = logging.getLogger(__name__)


def evaluate_stored_call(session: Session, call_id: int, now: datetime) -> dict[str, object]:
    """Judge the stored call ``call_id`` and write what follows from it; a short summary."""
    row = (
        session.scalars(
            select(Call)
            .where(Call.id == call_id)
            .options(joinedload(Call.legs))
            # PostgreSQL: one evaluation of a call at a time. FOR NO KEY UPDATE, not FOR UPDATE:
            # another evaluation may insert a row that points to this call (the unmanned
            # violation of a streak, its link rows), and the foreign-key check's FOR KEY SHARE
            # must not wait for us while we wait for its violation key: a deadlock.
            .with_for_update(of=Call, key_share=True)
        )
        .unique()
        .first()
    )
    if row is None:  # deleted since it was stored: nothing to judge, nothing to retry
        logger.warning("call %s is not stored (deleted?); nothing to evaluate", call_id)
        return {"call_id": call_id, "missing": True}
    record = call_record(row)
    context = call_context(session, row)
    line = context.line

    judged = is_judged(row, line)
    found = line_violations(record, line) if judged and line is not None else []
    stored_kinds = []
    for violation in found:
        store_violation(session, violation, f"{violation.kind}:call:{row.id}", row, context, {})
        stored_kinds.append(violation.kind)
    if line is not None and any(v.kind == "unanswered" for v in found):
        streak = unmanned(session, row, line, context)
        if streak is not None:
            violation, trigger, ids = streak
            key = f"unmanned:call:{trigger.id}"
            store_violation(session, violation, key, trigger, context, ids)
            stored_kinds.append("unmanned")

    write_log_entry(session, row, context)
    callback = open_callback(session, row, context) if judged else None
    closed = close_callbacks_by(session, row, context)
    if row.evaluated_at is None:
        row.evaluated_at = now
    logger.debug("call %s (%s) evaluated: %s", call_id, row.linkedid, stored_kinds or "none")
    return {
        "call_id": call_id,
        "violations": stored_kinds,
        "callback": callback,
        "callbacks_closed": closed,
    }


def store_violation(
    session: Session,
    violation: Violation,
    dedupe_key: str,
    row: Call,
    context: CallContext,
    call_ids: Mapping[str, int],
) -> int:
    """Store one violation (if absent) and the calls behind it; returns its id."""
    line = context.line
    values = {
        "dedupe_key": dedupe_key,
        "kind": violation.kind,
        "state": "flagged",
        "unit_id": context.unit_id,
        "line_id": line.line_id if line else None,
        "line_number": violation.line or (line.number if line else None),
        "endpoint": violation.endpoint,
        "at": violation.at or happened_at(row),
        "ended_at": None,
        "duration_seconds": violation.duration_seconds,
        "detail": violation.detail,
        "call_id": row.id,
        "shift_id": context.shift_id,
        "officer": context.officer,
    }
    violation_id = insert_if_absent(session, ViolationRow, values, ["dedupe_key"])
    if violation_id is None:
        violation_id = session.scalar(
            select(ViolationRow.id).where(ViolationRow.dedupe_key == dedupe_key)
        )
        if violation_id is None:  # pragma: no cover - the insert said the key exists
            raise RuntimeError(f"violation {dedupe_key} neither inserted nor found")
    behind = {call_ids.get(linkedid) for linkedid in violation.linkedids} | {row.id}
    for call_id in sorted(i for i in behind if i is not None):
        insert_if_absent(
            session,
            ViolationCall,
            {"violation_id": violation_id, "call_id": call_id},
            ["violation_id", "call_id"],
        )
    return int(violation_id)
