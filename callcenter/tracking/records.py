"""Immutable records the tracker hands out: finished calls, their legs, live ringing state.

These are plain frozen dataclasses so every edge (JSON replay, database, Redis, web) can
consume them without importing the tracker's mutable internals.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Literal

Outcome = Literal["answered", "no_answer", "abandoned", "busy", "failed"]
Direction = Literal["inbound", "outbound", "internal"]
ClosedBy = Literal["hangup", "idle"]
LegRole = Literal["caller", "callee", "local", "originated", "other"]

OUTCOMES: tuple[Outcome, ...] = ("answered", "no_answer", "abandoned", "busy", "failed")


@dataclass(frozen=True, slots=True)
class Leg:
    """One channel of a call, as the PBX saw it."""

    uniqueid: str
    channel: str  # full channel name, e.g. SIP/duty1-0000002a
    endpoint: str  # channel name minus its -<counter> (and ;1/;2 for Local)
    role: LegRole
    created_at: datetime | None
    ringing_at: datetime | None
    answered_at: datetime | None
    ended_at: datetime | None
    hangup_cause: int | None
    dial_status: str | None  # last DialEnd status seen for this leg as a dial target


@dataclass(frozen=True, slots=True)
class Call:
    """One finished call: everything that happened under one Linkedid."""

    linkedid: str
    caller: str | None
    caller_name: str | None
    dialed: str | None
    line: str | None
    direction: Direction
    started_at: datetime | None
    answered_at: datetime | None
    ended_at: datetime | None
    ring_seconds: float | None  # None when the transcript has no times
    talk_seconds: float | None
    outcome: Outcome
    answered_by: str | None
    forwarded_to: str | None
    transferred_to: str | None
    hangup_cause: int | None
    closed_by: ClosedBy
    originated: bool = False
    times_estimated: bool = False
    legs: tuple[Leg, ...] = ()

    def to_json(self) -> dict[str, object]:
        """The DESIGN.md call object (``callcenter replay`` output)."""
        return {
            "type": "call",
            "linkedid": self.linkedid,
            "caller": self.caller,
            "dialed": self.dialed,
            "line": self.line,
            "direction": self.direction,
            "started_at": iso(self.started_at),
            "answered_at": iso(self.answered_at),
            "ended_at": iso(self.ended_at),
            "ring_seconds": self.ring_seconds,
            "talk_seconds": self.talk_seconds,
            "outcome": self.outcome,
            "answered_by": self.answered_by,
            "forwarded_to": self.forwarded_to,
            "transferred_to": self.transferred_to,
            "hangup_cause": self.hangup_cause,
            "closed_by": self.closed_by,
        }


@dataclass(frozen=True, slots=True)
class RingingCall:
    """Live state: a call whose callee is ringing now and nobody has answered yet."""

    linkedid: str
    caller: str | None
    line: str | None
    ringing_since: datetime
    endpoints: tuple[str, ...]

    def ringing_seconds(self, now: datetime) -> float:
        return max(0.0, (now - self.ringing_since).total_seconds())


DISPLAY_TZ = timezone(timedelta(hours=8))


def iso(value: datetime | None) -> str | None:
    """ISO 8601 with milliseconds in the default display zone (UTC+08:00), as DESIGN.md shows."""
    if value is None:
        return None
    return value.astimezone(DISPLAY_TZ).isoformat(timespec="milliseconds")
