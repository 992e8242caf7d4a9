"""A call's timeline for the detail page: what happened to it and its legs, in time order."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from callcenter.store.duty import Violation
from callcenter.store.models import Call, CallLeg

__all__ = ["HANGUP_CAUSES", "TimelineItem", "hangup_cause_text", "timeline"]

# ITU-T Q.850 causes an Asterisk duty line sees most (``Cause`` of a Hangup event).
HANGUP_CAUSES = {
    0: "not defined",
    1: "unallocated number",
    3: "no route to destination",
    16: "normal clearing",
    17: "user busy",
    18: "no user responding",
    19: "no answer",
    20: "subscriber absent",
    21: "call rejected",
    22: "number changed",
    27: "destination out of order",
    28: "invalid number format",
    31: "normal, unspecified",
    34: "no circuit available",
    38: "network out of order",
    41: "temporary failure",
    42: "switching equipment congestion",
    127: "interworking, unspecified",
}


def hangup_cause_text(cause: int | None) -> str:
    if cause is None:
        return ""
    return f"{cause} ({HANGUP_CAUSES[cause]})" if cause in HANGUP_CAUSES else str(cause)


@dataclass(frozen=True, slots=True)
class TimelineItem:
    at: datetime | None
    kind: str  # call_started, leg_created, leg_ringing, leg_answered, leg_ended, answered, ...
    subject: str  # the endpoint or channel concerned, or ""
    detail: str = ""


_ORDER = {
    "call_started": 0,
    "leg_created": 1,
    "leg_ringing": 2,
    "leg_answered": 3,
    "answered": 4,
    "leg_ended": 5,
    "call_ended": 6,
    "violation": 7,
}


def timeline(
    call: Call, legs: Iterable[CallLeg], violations: Iterable[Violation] = ()
) -> list[TimelineItem]:
    """Every timed step of ``call``, oldest first (steps without a time go last)."""
    items = [TimelineItem(call.started_at, "call_started", call.caller or "", call.dialed or "")]
    for leg in legs:
        items.append(TimelineItem(leg.created_at, "leg_created", leg.channel, leg.role))
        if leg.ringing_at is not None:
            items.append(TimelineItem(leg.ringing_at, "leg_ringing", leg.endpoint))
        if leg.answered_at is not None:
            items.append(TimelineItem(leg.answered_at, "leg_answered", leg.endpoint))
        detail = ", ".join(
            part for part in (leg.dial_status or "", hangup_cause_text(leg.hangup_cause)) if part
        )
        items.append(TimelineItem(leg.ended_at, "leg_ended", leg.endpoint, detail))
    if call.answered_at is not None:
        items.append(TimelineItem(call.answered_at, "answered", call.answered_by or ""))
    items.append(
        TimelineItem(
            call.ended_at, "call_ended", call.outcome, hangup_cause_text(call.hangup_cause)
        )
    )
    for violation in violations:
        items.append(TimelineItem(violation.at, "violation", violation.kind, violation.detail))
    far = datetime.max.replace(tzinfo=UTC)
    return sorted(items, key=lambda item: (item.at or far, _ORDER.get(item.kind, 9)))
