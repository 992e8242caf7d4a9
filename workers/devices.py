"""Desk-phone status and flag changes (``phone_offline``, ``forward_set``, ``dnd_set``),
judged from each phone's stored history by the pure
:class:`~callcenter.rules.devices.DeviceWatch`."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session, aliased

from callcenter.ami.devices import DeviceChange, DeviceKind, DeviceState, desk_phone_resolver
from callcenter.rules.devices import DeviceWatch
from callcenter.rules.policy import Policies
from callcenter.rules.violations import Violation
from callcenter.store.duty import DeviceEvent
from callcenter.store.duty import Violation as ViolationRow
from callcenter.store.policy import LineDirectory
from callcenter.store.roster import shift_for
from callcenter.tracking.names import resource_of
from callcenter.workers.storage import insert_if_absent, lines

__all__ = [
    "DEVICE_LOOKBACK",
    "device_change",
    "evaluate_stored_device_events",
    "open_device_event_ids",
]

#: How far before the events given a phone's stored history is replayed (a phone offline
#: since Friday night on a weekday-only line is judged on Monday morning).
DEVICE_LOOKBACK = timedelta(days=8)

_DEVICE_KINDS = ("phone_offline", "forward_set", "dnd_set")


def device_change(row: DeviceEvent) -> DeviceChange:
    """A stored device event as the pure device rules take it."""
    return DeviceChange(
        endpoint=row.endpoint,
        kind=cast(DeviceKind, row.kind),
        state=cast(DeviceState, row.state),
        at=row.at,
        detail=row.detail,
        source=row.source or row.kind,
        contact=row.contact,
    )


def evaluate_stored_device_events(
    session: Session, event_ids: list[int], now: datetime
) -> dict[str, object]:
    """Judge the desk phones the events ``event_ids`` concern, from their stored history.

    The pure :class:`~callcenter.rules.devices.DeviceWatch` is stateful (offline since when,
    which flags are on), so each phone's stored events are replayed through a fresh one,
    from :data:`DEVICE_LOOKBACK` before the earliest event given (or the start of a
    violation still open), up to the last stored; ``close(now)`` adds what is open now (a
    phone offline past its grace, a flag still on). Every violation is stored under its
    dedupe key; a stored one still open gets its end, duration and detail when it closes.
    """
    events = session.scalars(select(DeviceEvent).where(DeviceEvent.id.in_(event_ids))).all()
    directory = lines(session)
    phones: dict[tuple[str, str], datetime] = {}
    for event in events:
        key = (event.pbx, _phone_of(event.endpoint, directory))
        phones[key] = min(phones.get(key, event.at), event.at)
    stored: list[str] = []
    for (pbx, phone), earliest in sorted(phones.items()):
        stored.extend(_judge_phone(session, directory, pbx, phone, earliest, now))
    session.execute(
        update(DeviceEvent)
        .where(DeviceEvent.id.in_(event_ids), DeviceEvent.evaluated_at.is_(None))
        .values(evaluated_at=now)
        .execution_options(synchronize_session=False)
    )
    return {"device_events": len(events), "phones": len(phones), "violations": stored}


def _phone_of(endpoint: str, directory: LineDirectory) -> str:
    """``PJSIP/2001`` as stored, or the desk phone a bare lamp/AstDB name (``2001``) means."""
    if "/" in endpoint:
        return endpoint
    phones = sorted({p for line in directory.lines for p in line.desk_phones})
    return desk_phone_resolver(phones)(endpoint) or endpoint


def _judge_phone(
    session: Session,
    directory: LineDirectory,
    pbx: str,
    phone: str,
    earliest: datetime,
    now: datetime,
) -> list[str]:
    lines = directory.for_endpoints([phone])
    if not lines:
        return []  # not a desk phone of any duty line: nothing to judge
    watch = DeviceWatch(
        Policies({line.number: line.policy for line in lines}, configured=True),
        schedules={line.number: line.schedule for line in lines},
        tz=lines[0].unit_timezone,
    )
    suffix = f"@{pbx}"
    open_since = session.scalar(
        select(func.min(ViolationRow.at)).where(
            ViolationRow.endpoint == phone,
            ViolationRow.kind.in_(_DEVICE_KINDS),
            ViolationRow.ended_at.is_(None),
            ViolationRow.dedupe_key.like(f"%{suffix}"),
        )
    )
    start = min(earliest, open_since or earliest) - DEVICE_LOOKBACK
    names = {phone, resource_of(phone)}
    history = session.scalars(
        select(DeviceEvent)
        .where(DeviceEvent.pbx == pbx, DeviceEvent.endpoint.in_(names), DeviceEvent.at >= start)
        .order_by(DeviceEvent.at, DeviceEvent.id)
    )
    found: list[Violation] = []
    for event in history:
        found.extend(watch.observe(device_change(event)))
    found.extend(watch.close(now))
    for violation in found:
        _store_device_violation(session, violation, pbx, directory)
    return [v.kind for v in found]


def _store_device_violation(
    session: Session, violation: Violation, pbx: str, directory: LineDirectory
) -> None:
    key = f"{violation.dedupe_key}@{pbx}"
    line = directory.for_number(violation.line)
    at = violation.at
    if at is None:  # pragma: no cover - stored device events always have a time
        raise ValueError(f"device violation {key} has no time")
    shift = shift_for(session, line.unit_id, at) if line is not None else None
    values = {
        "dedupe_key": key,
        "kind": violation.kind,
        "state": "flagged",
        "unit_id": line.unit_id if line else None,
        "line_id": line.line_id if line else None,
        "line_number": violation.line,
        "endpoint": violation.endpoint,
        "at": at,
        "ended_at": violation.ended_at,
        "duration_seconds": violation.duration_seconds,
        "detail": violation.detail,
        "call_id": None,
        "shift_id": shift.id if shift else None,
        "officer": shift.main_officer if shift else None,
    }
    if insert_if_absent(session, ViolationRow, values, ["dedupe_key"]) is not None:
        return
    # Stored already: while it is open, bring its end, duration and detail up to date.
    session.execute(
        update(ViolationRow)
        .where(ViolationRow.dedupe_key == key, ViolationRow.ended_at.is_(None))
        .values(
            ended_at=violation.ended_at,
            duration_seconds=violation.duration_seconds,
            detail=violation.detail,
        )
        .execution_options(synchronize_session=False)
    )


def open_device_event_ids(session: Session, since: datetime) -> list[int]:
    """The latest event of every phone whose last word is "offline" or "on": the phones to
    judge again each sweep (offline past the grace, a flag switched on outside hours)."""
    later = aliased(DeviceEvent)
    newer = (
        select(later.id)
        .where(
            later.pbx == DeviceEvent.pbx,
            later.endpoint == DeviceEvent.endpoint,
            later.kind == DeviceEvent.kind,
            or_(
                later.at > DeviceEvent.at,
                and_(later.at == DeviceEvent.at, later.id > DeviceEvent.id),
            ),
        )
        .exists()
    )
    return list(
        session.scalars(
            select(func.max(DeviceEvent.id))
            .where(DeviceEvent.state.in_(("offline", "on")), DeviceEvent.at >= since, ~newer)
            .group_by(DeviceEvent.pbx, DeviceEvent.endpoint)
            .order_by(func.max(DeviceEvent.id))
        )
    )
