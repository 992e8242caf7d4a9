"""What the live board shows, as one JSON-ready dict (the page, ``state.json`` and tests).

Sources:

- the database: the visible units' active duty lines with their answer threshold, the
  shift on duty now (主班, 副班, 带班领导), today's missed calls still awaiting a call-back
  (open :class:`~callcenter.store.duty.Callback` rows), and the last known status of each
  desk phone (``device_events``), which still tells "desk phone offline" when Redis is down;
- Redis (:class:`~callcenter.live.LiveState`): the calls ringing now, each line's state,
  each listener's connection.

A line's state is, first match wins: ``ringing`` (a call rings on it now; ``since`` is when
the longest-ringing one began), ``in_call``, ``phone_offline`` (the listener says so, or every
desk phone's last status is offline), ``idle``; ``unknown`` when live state is unavailable and
the database knows nothing worse. A ringing call is an ``alert`` once it has rung longer than
the line's ``answer_within_seconds``. Everything is computed for a given ``now``.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from datetime import UTC, datetime, time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import redis
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from callcenter.live import LiveState
from callcenter.store.duty import Callback, DeviceEvent, Shift
from callcenter.store.models import Call
from callcenter.store.org import DutyLine, Unit

__all__ = ["OFFLINE_STATES", "board_state", "iso", "parse_iso", "zone_of"]

log = logging.getLogger(__name__)

OFFLINE_STATES = frozenset({"offline", "unreachable", "unavailable", "unregistered"})


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="milliseconds")


def parse_iso(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def zone_of(unit: Unit | None, default: str) -> ZoneInfo:
    for name in (unit.timezone if unit is not None else None, default, "UTC"):
        if name:
            try:
                return ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")  # pragma: no cover - "UTC" always exists


def _read_live(live: LiveState | None) -> tuple[dict[str, Any], str | None]:
    """Ringing calls, line states and listener status from Redis, or the reason why not."""
    if live is None:
        return {}, "no Redis configured"
    try:
        return {
            "ringing": live.ringing(),
            "lines": live.lines(),
            "listeners": live.listener_status(),
        }, None
    except redis.exceptions.RedisError as exc:
        log.warning("board: live state unavailable (%s: %s)", type(exc).__name__, exc)
        return {}, "Redis unavailable"


def _last_phone_status(session: Session, endpoints: Collection[str]) -> dict[str, tuple[str, Any]]:
    """endpoint → (state, at) of its latest ``status`` device event."""
    if not endpoints:
        return {}
    latest = (
        select(DeviceEvent.endpoint, func.max(DeviceEvent.at).label("at"))
        .where(DeviceEvent.kind == "status", DeviceEvent.endpoint.in_(list(endpoints)))
        .group_by(DeviceEvent.endpoint)
        .subquery()
    )
    rows = session.execute(
        select(DeviceEvent.endpoint, DeviceEvent.state, DeviceEvent.at)
        .join(latest, (latest.c.endpoint == DeviceEvent.endpoint) & (latest.c.at == DeviceEvent.at))
        .where(DeviceEvent.kind == "status")
        .order_by(DeviceEvent.id)
    )
    return {endpoint: (state, at) for endpoint, state, at in rows}


def board_state(
    session: Session,
    unit_ids: Collection[int],
    live: LiveState | None,
    now: datetime,
    *,
    default_zone: str = "Asia/Shanghai",
    callback_url: Any = None,
    call_url: Any = None,
) -> dict[str, Any]:
    """The board for the units ``unit_ids`` at ``now`` (UTC-aware).

    ``call_url(call_id)`` and ``callback_url(callback_id)`` make the links (the view passes
    ``url_for`` wrappers; None leaves them out).
    """
    ids = sorted(set(unit_ids))
    units = {unit.id: unit for unit in session.scalars(select(Unit).where(Unit.id.in_(ids)))}
    lines = list(
        session.scalars(
            select(DutyLine)
            .where(DutyLine.unit_id.in_(ids), DutyLine.active.is_(True))
            .options(selectinload(DutyLine.desk_phones))
            .order_by(DutyLine.unit_id, DutyLine.number)
        )
    )
    live_data, live_error = _read_live(live)
    ringing_by_line: dict[str, list[dict[str, Any]]] = {}
    for call in live_data.get("ringing", []):
        ringing_by_line.setdefault(str(call.get("line") or ""), []).append(call)
    live_lines: dict[str, dict[str, Any]] = live_data.get("lines", {})
    phone_status = _last_phone_status(
        session, {phone.endpoint for line in lines for phone in line.desk_phones}
    )

    line_items = []
    alerts = 0
    for line in lines:
        unit = units.get(line.unit_id)
        threshold = float(line.answer_within_seconds)
        ringing = []
        for call in ringing_by_line.get(line.number, []):
            since = parse_iso(call.get("ringing_since"))
            seconds = max(0.0, (now - since).total_seconds()) if since else 0.0
            alert = seconds > threshold
            alerts += alert
            ringing.append(
                {
                    "linkedid": call.get("linkedid"),
                    "caller": call.get("caller"),
                    "since": iso(since),
                    "seconds": round(seconds, 1),
                    "endpoints": list(call.get("endpoints") or []),
                    "alert": alert,
                }
            )
        ringing.sort(key=lambda c: c["since"] or "")
        offline_phones = sorted(
            phone.endpoint
            for phone in line.desk_phones
            if phone_status.get(phone.endpoint, ("", None))[0] in OFFLINE_STATES
        )
        all_offline = bool(line.desk_phones) and len(offline_phones) == len(line.desk_phones)
        live_line = live_lines.get(line.number) or {}
        state, since = "idle", parse_iso(live_line.get("since"))
        if ringing:
            state, since = "ringing", parse_iso(ringing[0]["since"])
        elif live_error is None and live_line.get("state") in ("in_call", "phone_offline"):
            state = str(live_line["state"])
        elif all_offline:
            state = "phone_offline"
            since = max(
                (phone_status[e][1] for e in offline_phones if phone_status[e][1]), default=None
            )
        elif live_error is not None:
            state, since = "unknown", None
        line_items.append(
            {
                "id": line.id,
                "number": line.number,
                "name": line.name,
                "unit_id": line.unit_id,
                "unit": unit.name if unit else "",
                "state": state,
                "since": iso(since),
                "threshold": threshold,
                "ringing": ringing,
                "alert": any(c["alert"] for c in ringing),
                "desk_phones": sorted(phone.endpoint for phone in line.desk_phones),
                "offline_phones": offline_phones,
            }
        )

    shifts = list(
        session.scalars(
            select(Shift)
            .where(Shift.unit_id.in_(ids), Shift.starts_at <= now, Shift.ends_at > now)
            .order_by(Shift.unit_id, Shift.starts_at)
        )
    )
    shift_items = [
        {
            "id": shift.id,
            "unit_id": shift.unit_id,
            "unit": units[shift.unit_id].name if shift.unit_id in units else "",
            "name": shift.name,
            "main_officer": shift.main_officer,
            "backup_officer": shift.backup_officer,
            "leader": shift.leader,
            "phone": shift.phone,
            "starts_at": iso(shift.starts_at),
            "ends_at": iso(shift.ends_at),
        }
        for shift in shifts
    ]
    on_shift = {shift.unit_id for shift in shifts}

    numbers = {line.number: line for line in lines}
    open_callbacks = list(
        session.execute(
            select(Callback, Call)
            .join(Call, Call.id == Callback.call_id)
            .where(Callback.state == "open", Call.line.in_(list(numbers) or [""]))
            .order_by(Call.started_at.desc(), Call.id.desc())
        )
    )
    callback_items = []
    older_open = 0
    for callback, call in open_callbacks:
        call_line = numbers.get(call.line or "")
        unit = units.get(call_line.unit_id) if call_line else None
        zone = zone_of(unit, default_zone)
        today = datetime.combine(now.astimezone(zone).date(), time.min, tzinfo=zone)
        if call.started_at is None or call.started_at < today:
            older_open += 1
            continue
        callback_items.append(
            {
                "id": callback.id,
                "call_id": call.id,
                "caller": callback.caller or call.caller,
                "caller_name": call.caller_name,
                "line": call.line,
                "unit": unit.name if unit else "",
                "outcome": call.outcome,
                "started_at": iso(call.started_at),
                "due_at": iso(callback.due_at),
                "overdue": callback.due_at is not None and callback.due_at < now,
                "url": call_url(call.id) if call_url else None,
                "record_url": callback_url(callback.id) if callback_url else None,
            }
        )

    listeners = [
        {
            "pbx": status.get("pbx"),
            "connected": bool(status.get("connected")),
            "detail": status.get("detail") or "",
            "since": status.get("since"),
            "heartbeat_at": status.get("heartbeat_at"),
        }
        for status in live_data.get("listeners", {}).values()
    ]
    return {
        "now": iso(now),
        "live": {"available": live_error is None, "error": live_error, "listeners": listeners},
        "lines": line_items,
        "alerts": alerts,
        "shifts": shift_items,
        "units_without_shift": sorted(
            units[unit_id].name for unit_id in ids if unit_id in units and unit_id not in on_shift
        ),
        "callbacks": callback_items,
        "older_open_callbacks": older_open,
    }
