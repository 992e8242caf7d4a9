"""Where a stored call belongs and how the pure rules see it: its duty line, unit, shift
and duty officer (:class:`CallContext`), the call as the tracker's immutable record, and the
line's monitored hours."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy.orm import Session

from callcenter.rules.calls import in_monitored_hours, judge_call
from callcenter.rules.schedule import ScheduleError
from callcenter.rules.violations import Violation
from callcenter.store.models import Call, CallLeg
from callcenter.store.policy import StoredLine
from callcenter.store.roster import shift_for
from callcenter.tracking import records
from callcenter.workers.storage import lines

__all__ = [
    "INBOUND_MISSED",
    "CallContext",
    "call_context",
    "call_record",
    "calling_endpoints",
    "happened_at",
    "is_judged",
    "line_violations",
]

logger = logging.getLogger(__name__)

#: The outcomes of an inbound call that nobody took: the caller is owed a call-back.
INBOUND_MISSED = ("no_answer", "abandoned", "busy", "failed")
_CALLING_ROLES = ("caller", "originated")  # the legs that place a call (a call-back)


@dataclass(frozen=True, slots=True)
class CallContext:
    """Where a call belongs: its duty line (if any), unit, shift, and the duty officer."""

    line: StoredLine | None
    unit_id: int | None
    shift_id: int | None
    officer: str | None


def call_context(session: Session, row: Call) -> CallContext:
    """The line a call belongs to: the one dialed (inbound, spot check), else the line of the
    desk phone that placed it (a call-back); its unit, and the shift on duty then."""
    directory = lines(session)
    line = directory.for_number(row.line)
    if line is None and row.direction != "inbound":
        found = directory.for_endpoints(calling_endpoints(row))
        line = found[0] if found else None
    if line is None:
        return CallContext(None, None, None, None)
    shift = shift_for(session, line.unit_id, happened_at(row))
    return CallContext(
        line,
        line.unit_id,
        shift.id if shift else None,
        shift.main_officer if shift else None,
    )


def call_record(row: Call) -> records.Call:
    """The stored call as the tracker's immutable record (what the pure rules take)."""
    return records.Call(
        linkedid=row.linkedid,
        caller=row.caller,
        caller_name=row.caller_name,
        dialed=row.dialed,
        line=row.line,
        direction=cast(records.Direction, row.direction),
        started_at=row.started_at,
        answered_at=row.answered_at,
        ended_at=row.ended_at,
        ring_seconds=row.ring_seconds,
        talk_seconds=row.talk_seconds,
        outcome=cast(records.Outcome, row.outcome),
        answered_by=row.answered_by,
        forwarded_to=row.forwarded_to,
        transferred_to=row.transferred_to,
        hangup_cause=row.hangup_cause,
        closed_by=cast(records.ClosedBy, row.closed_by),
        originated=row.originated,
        times_estimated=row.times_estimated,
        legs=tuple(_leg(leg) for leg in row.legs),
    )


def _leg(leg: CallLeg) -> records.Leg:
    return records.Leg(
        uniqueid=leg.uniqueid,
        channel=leg.channel,
        endpoint=leg.endpoint,
        role=cast(records.LegRole, leg.role),
        created_at=leg.created_at,
        ringing_at=leg.ringing_at,
        answered_at=leg.answered_at,
        ended_at=leg.ended_at,
        hangup_cause=leg.hangup_cause,
        dial_status=leg.dial_status,
    )


def happened_at(row: Call) -> datetime:
    """When a call happened, for rows that need a time (a call always has ``created_at``)."""
    return row.started_at or row.ended_at or row.created_at


def is_judged(row: Call, line: StoredLine | None) -> bool:
    """Only inbound calls to a duty line are judged (never a spot check or a call-back)."""
    return line is not None and row.direction == "inbound" and not row.originated


def line_violations(record: records.Call, line: StoredLine) -> list[Violation]:
    """The pure call rules, during the line's monitored hours only (its ``schedule``)."""
    if not _monitored(record, line):
        return []
    return judge_call(record, line.policy)


def _monitored(record: records.Call, line: StoredLine) -> bool:
    try:
        return in_monitored_hours(record, line.policy, line.unit_timezone)
    except ScheduleError as exc:
        # A schedule typed wrong in the console must not hide violations: judge as 24 h.
        logger.error("duty line %s: %s; judged as monitored around the clock", line.number, exc)
        return True


def calling_endpoints(row: Call) -> list[str]:
    """The endpoints of the legs that placed the call (the desk phone of a call-back)."""
    return [leg.endpoint for leg in row.legs if leg.role in _CALLING_ROLES]
