"""Storing finished calls from the tracker."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

from sqlalchemy import BigInteger, Integer, SmallInteger, Table, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from callcenter.store.models import Call, CallLeg
from callcenter.tracking import records

__all__ = ["find_call_id", "save_call"]

logger = logging.getLogger(__name__)

_CALLS: Table = Call.metadata.tables[Call.__tablename__]
_LEGS: Table = CallLeg.metadata.tables[CallLeg.__tablename__]


def find_call_id(session: Session, pbx: str, linkedid: str) -> int | None:
    """The id of the stored call ``linkedid`` of ``pbx``, or ``None``."""
    return session.scalar(select(Call.id).where(Call.pbx == pbx, Call.linkedid == linkedid))


def save_call(session: Session, record: records.Call, pbx: str) -> int:
    """Store ``record`` (with its legs) as a call of ``pbx`` and return its id.

    Idempotent: a call already stored for the same ``pbx`` and Linkedid is left as it is
    and its id returned. Works inside the caller's transaction (which it does not commit).
    Three statements, no ORM objects (the listener stores calls under SQLite's one write
    lock, shared with the workers): a look-up, ``INSERT … ON CONFLICT (pbx, linkedid) DO
    NOTHING RETURNING id`` for the call, one executemany ``INSERT`` for its legs. When a
    concurrent writer stored the same call between the look-up and the insert, the insert
    does nothing (PostgreSQL waits for that writer's commit first) and the look-up again
    gives the existing id. Only that unique constraint is let through: any other refusal
    (a check constraint) raises and takes the caller's transaction down with it.
    """
    existing = find_call_id(session, pbx, record.linkedid)
    if existing is not None:
        return existing

    values = _fit(Call, _call_values(record, pbx), record.linkedid)
    call_id = session.scalar(
        _insert(session)(_CALLS)
        .values(values)
        .on_conflict_do_nothing(index_elements=["pbx", "linkedid"])
        .returning(_CALLS.c.id)
    )
    if call_id is None:
        existing = find_call_id(session, pbx, record.linkedid)
        if existing is None:  # cannot happen: the conflicting row is committed
            raise RuntimeError(f"call {record.linkedid} of {pbx}: conflict, yet no row")
        logger.info(
            "call %s of %s was stored concurrently; keeping id %s", record.linkedid, pbx, existing
        )
        return existing
    legs = [
        {"call_id": call_id, **_fit(CallLeg, _leg_values(leg), record.linkedid)}
        for leg in record.legs
    ]
    if legs:
        session.execute(insert(_LEGS), legs)
    return int(call_id)


def _insert(session: Session) -> Callable[[Table], sqlite.Insert | postgresql.Insert]:
    """The dialect's ``INSERT`` construct (both have ``on_conflict_do_nothing``)."""
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


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
