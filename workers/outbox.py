"""What the outbox sweep finds in the database: stored calls and device events whose
evaluation never ran, phones still offline or with a flag on (judged again each sweep), and
call-backs a race between two workers left open (closed here)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter.store.duty import DeviceEvent
from callcenter.store.models import Call
from callcenter.workers.callbacks import reconcile_callbacks
from callcenter.workers.devices import DEVICE_LOOKBACK, open_device_event_ids

__all__ = ["RECONCILE_SECONDS", "SWEEP_BATCH", "Outbox", "collect", "unevaluated"]

#: Call-backs written this recently are checked again by the sweep for a closing call that a
#: concurrent evaluation missed.
RECONCILE_SECONDS = 600.0
#: At most this many calls (and device events) are queued again per sweep; the next takes
#: the rest.
SWEEP_BATCH = 5_000


@dataclass(frozen=True, slots=True)
class Outbox:
    """What one sweep found (ids to queue again) and did (call-backs closed)."""

    call_ids: list[int]
    event_ids: list[int]
    open_event_ids: list[int]
    callbacks_closed: int


def collect(session: Session, now: datetime, older_than: float) -> Outbox:
    """The outbox at ``now``: calls and device events unevaluated ``older_than`` seconds
    after they were stored, the latest event of every phone still offline or flagged; closes
    the call-backs that a concurrent evaluation left open (one transaction, the caller's)."""
    call_ids, event_ids = unevaluated(session, now - timedelta(seconds=older_than))
    open_ids = open_device_event_ids(session, now - DEVICE_LOOKBACK)
    closed = reconcile_callbacks(session, now - timedelta(seconds=RECONCILE_SECONDS))
    return Outbox(call_ids, event_ids, open_ids, closed)


def unevaluated(session: Session, before: datetime) -> tuple[list[int], list[int]]:
    """Ids of the calls and device events stored before ``before`` and never evaluated (the
    partial indexes ``ix_calls_unevaluated`` and ``ix_device_events_unevaluated``)."""
    calls = session.scalars(
        select(Call.id)
        .where(Call.evaluated_at.is_(None), Call.created_at < before)
        .order_by(Call.id)
        .limit(SWEEP_BATCH)
    )
    events = session.scalars(
        select(DeviceEvent.id)
        .where(DeviceEvent.evaluated_at.is_(None), DeviceEvent.created_at < before)
        .order_by(DeviceEvent.id)
        .limit(SWEEP_BATCH)
    )
    return list(calls), list(events)
