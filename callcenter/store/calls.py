"""Storing finished calls from the tracker."""

from __future__ import annotations

import logging
import math
from typing import Any

from sqlalchemy import BigInteger, Integer, SmallInteger, select
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
    """Make every value fit its column, so one odd value never stops the whole call.

    Free text longer than its column is cut (PostgreSQL would refuse the call); an integer
    outside its column's range (PostgreSQL: "integer out of range"; SQLite: OverflowError
    above 64 bits) and a float that is not finite become NULL. Each is logged as a warning.
    """
    columns = model.__table__.columns
    for name, value in values.items():
        if name in _IDENTITY or value is None or isinstance(value, bool):
            continue
        column_type = columns[name].type
        if isinstance(value, str):
            length = getattr(column_type, "length", None)
            if length and len(value) > length:
                logger.warning(
                    "call %s: %s.%s cut to %d characters",
                    linkedid, model.__tablename__, name, length,
                )  # fmt: skip
                values[name] = value[:length]
        elif isinstance(value, int) and isinstance(column_type, Integer):
            low, high = _int_range(column_type)
            if not low <= value <= high:
                logger.warning(
                    "call %s: %s.%s %s is out of range %d..%d: stored as NULL",
                    linkedid, model.__tablename__, name, str(value)[:24], low, high,
                )  # fmt: skip
                values[name] = None
        elif isinstance(value, float) and not math.isfinite(value):
            logger.warning(
                "call %s: %s.%s %s is not a number: stored as NULL",
                linkedid, model.__tablename__, name, value,
            )  # fmt: skip
            values[name] = None
    return values


def _int_range(column_type: Integer) -> tuple[int, int]:
    """The values an integer column holds on both databases (PostgreSQL's limits)."""
    if isinstance(column_type, SmallInteger):
        return -(2**15), 2**15 - 1
    if isinstance(column_type, BigInteger):
        return -(2**63), 2**63 - 1
    return -(2**31), 2**31 - 1
