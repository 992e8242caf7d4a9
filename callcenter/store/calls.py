"""Storing finished calls from the tracker."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from callcenter.store.models import Call, CallLeg
from callcenter.tracking import records

__all__ = ["find_call_id", "save_call"]

logger = logging.getLogger(__name__)


def find_call_id(session: Session, pbx: str, linkedid: str) -> int | None:
    """The id of the stored call ``linkedid`` of ``pbx``, or ``None``."""
    return session.scalar(select(Call.id).where(Call.pbx == pbx, Call.linkedid == linkedid))


def save_call(session: Session, record: records.Call, pbx: str) -> int:
    """Store ``record`` (with its legs) as a call of ``pbx`` and return its id.

    Idempotent: a call already stored for the same ``pbx`` and Linkedid is left as it is
    and its id returned. Works inside the caller's transaction (which it does not commit):
    the row is inserted in a savepoint, so when a concurrent writer stored the same call
    first, the unique constraint stops the second insert, only the savepoint is rolled
    back, and the existing id is returned.
    """
    existing = find_call_id(session, pbx, record.linkedid)
    if existing is not None:
        return existing

    call = Call(**_fit(Call, _call_values(record, pbx), record.linkedid))
    call.legs = [CallLeg(**_fit(CallLeg, _leg_values(leg), record.linkedid)) for leg in record.legs]
    try:
        with session.begin_nested():
            session.add(call)
    except IntegrityError:
        existing = find_call_id(session, pbx, record.linkedid)
        if existing is None:
            raise  # some other constraint: a real error
        logger.info(
            "call %s of %s was stored concurrently; keeping id %s", record.linkedid, pbx, existing
        )
        return existing
    return call.id


def _call_values(record: records.Call, pbx: str) -> dict[str, Any]:
    return {
        "pbx": pbx,
        "linkedid": record.linkedid,
        "caller": record.caller,
        "caller_name": record.caller_name,
        "dialed": record.dialed,
        "line": record.line,
        "direction": record.direction,
        "started_at": record.started_at,
        "answered_at": record.answered_at,
        "ended_at": record.ended_at,
        "ring_seconds": record.ring_seconds,
        "talk_seconds": record.talk_seconds,
        "outcome": record.outcome,
        "answered_by": record.answered_by,
        "forwarded_to": record.forwarded_to,
        "transferred_to": record.transferred_to,
        "hangup_cause": record.hangup_cause,
        "closed_by": record.closed_by,
        "originated": record.originated,
        "times_estimated": record.times_estimated,
    }


def _leg_values(leg: records.Leg) -> dict[str, Any]:
    return {
        "uniqueid": leg.uniqueid,
        "channel": leg.channel,
        "endpoint": leg.endpoint,
        "role": leg.role,
        "created_at": leg.created_at,
        "ringing_at": leg.ringing_at,
        "answered_at": leg.answered_at,
        "ended_at": leg.ended_at,
        "hangup_cause": leg.hangup_cause,
        "dial_status": leg.dial_status,
    }


_IDENTITY = frozenset({"pbx", "linkedid", "uniqueid"})  # never cut: they identify the row


def _fit(model: type[Call | CallLeg], values: dict[str, Any], linkedid: str) -> dict[str, Any]:
    """Cut free text longer than its column (PostgreSQL would refuse the whole call)."""
    columns = model.__table__.columns
    for name, value in values.items():
        length = getattr(columns[name].type, "length", None)
        if name in _IDENTITY or not isinstance(value, str) or not length or len(value) <= length:
            continue
        logger.warning(
            "call %s: %s.%s cut to %d characters", linkedid, model.__tablename__, name, length
        )
        values[name] = value[:length]
    return values
