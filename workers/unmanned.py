"""The ``unmanned`` violation (无人值班): a streak of unanswered calls on a line, computed
from the stored calls, never from a worker's memory, so any worker can evaluate any call of
the streak in any order."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from callcenter.rules.calls import UnmannedWatch, rang_endpoint
from callcenter.rules.violations import Violation
from callcenter.store.duty import Shift
from callcenter.store.models import Call
from callcenter.store.policy import StoredLine
from callcenter.tracking import records
from callcenter.workers.context import CallContext, call_record, happened_at, line_violations

__all__ = ["unmanned"]


def _streak_start(row: Call, line: StoredLine, context: CallContext, session: Session) -> datetime:
    """Where a streak of unanswered calls may begin: the start of the shift on duty, or with no
    roster the start of the unit's local day (a streak never spans two shifts)."""
    if context.shift_id is not None:
        shift = session.get(Shift, context.shift_id)
        if shift is not None:
            return shift.starts_at
    local = happened_at(row).astimezone(ZoneInfo(line.unit_timezone))
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


#: What the unmanned rule reads of the earlier calls of a streak (no legs, no free text).
_STREAK_COLUMNS = (
    Call.id,
    Call.linkedid,
    Call.started_at,
    Call.ended_at,
    Call.ring_seconds,
    Call.outcome,
    Call.forwarded_to,
)


def unmanned(
    session: Session, row: Call, line: StoredLine, context: CallContext
) -> tuple[Violation, Call, dict[str, int]] | None:
    """The ``unmanned`` violation of the streak ``row`` belongs to, if the streak has one.

    Replays the stored inbound calls of the line from the last answered call of the shift
    (else the start of the shift) up to ``row`` through the pure
    :class:`~callcenter.rules.calls.UnmannedWatch`, which raises once per streak (an answered
    call resets it). The result does not depend on which call of the streak is evaluated
    first, so it is stored under the key of the call that completed the streak
    (``unmanned:call:<id>``) and concurrent evaluations write it once.
    """
    if row.started_at is None:
        return None
    on_line = (
        Call.line == line.number,
        Call.direction == "inbound",
        Call.originated.is_(False),
        Call.started_at >= _streak_start(row, line, context, session),
        or_(
            Call.started_at < row.started_at,
            and_(Call.started_at == row.started_at, Call.id <= row.id),
        ),
    )
    reset = session.execute(
        select(Call.started_at, Call.id)
        .where(*on_line, Call.outcome == "answered")
        .order_by(Call.started_at.desc(), Call.id.desc())
        .limit(1)
    ).first()
    after_reset = (
        ()
        if reset is None
        else (
            or_(
                Call.started_at > reset.started_at,
                and_(Call.started_at == reset.started_at, Call.id > reset.id),
            ),
        )
    )
    streak = session.execute(
        select(*_STREAK_COLUMNS)
        .where(*on_line, *after_reset, Call.outcome != "answered")
        .order_by(Call.started_at, Call.id)
    ).all()
    watch = UnmannedWatch()
    found: tuple[Violation, int] | None = None
    for call in streak:
        record = _streak_record(call, line.number)
        raised = any(v.kind == "unanswered" for v in line_violations(record, line))
        violation = watch.observe(record, line.policy, raised)
        if violation is not None:  # once per streak: the first is the one
            found = (violation, call.id)
            break
    if found is None:
        return None
    violation, trigger_id = found
    trigger = row if trigger_id == row.id else session.get(Call, trigger_id)
    if trigger is None:  # pragma: no cover - read in this transaction
        raise RuntimeError(f"call {trigger_id} vanished while judging call {row.id}")
    violation = replace(violation, endpoint=rang_endpoint(call_record(trigger)))
    ids = {call.linkedid: call.id for call in streak if call.linkedid in violation.linkedids}
    return violation, trigger, ids


def _streak_record(call: Any, line: str) -> records.Call:
    """An earlier call of a streak, with just what the unanswered and unmanned rules read."""
    return records.Call(
        linkedid=call.linkedid,
        caller=None,
        caller_name=None,
        dialed=line,
        line=line,
        direction="inbound",
        started_at=call.started_at,
        answered_at=None,
        ended_at=call.ended_at,
        ring_seconds=call.ring_seconds,
        talk_seconds=None,
        outcome=call.outcome,
        answered_by=None,
        forwarded_to=call.forwarded_to,
        transferred_to=None,
        hangup_cause=None,
        closed_by="hangup",
    )
