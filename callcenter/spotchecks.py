"""Spot checks (电话抽查), the pure part: when to check which duty line, and what a check
found.

A spot check is a test call the system originates to a unit's duty line
(:func:`callcenter.clicktocall.request_spot_check`: ``Local/<line>@<context>`` rings the line
as an outside call would and plays a prompt to whoever answers). Unanswered in time, it is a
``spot_check_failed`` violation (无人值班、脱岗: the post was found empty).

- :func:`plan_day` picks the day's check times: ``per_line`` random instants per line
  inside its monitored hours (the line's ``schedule`` in the unit's time zone), one in each
  equal share of those hours (three checks on a 24 h line fall in the early, middle and late
  part of the day, as the regulations' morning, afternoon and evening checks do). The same
  seed, day and line always give the same times, so planning a day twice plans it once.
- :func:`pick_call` finds the stored call a check made among the originated calls around
  the time it was dialed.
- :func:`judge_spot_check` turns the Originate's result and that call into a
  :class:`Verdict`: ``answered`` by a desk phone of the line within its ``answer_within``
  threshold passes; ``late`` (answered too late), ``unanswered`` (nobody answered, or
  someone who is not at a desk phone) and ``failed`` (busy, unreachable) are violations.
  A check that was never dialed (the listener was down) is ``failed`` without a violation:
  that is the system's fault, not the duty room's.

A spot check's call is never judged as an unanswered *inbound* call: the tracker records an
Originate as ``originated`` (never ``inbound``), and only inbound calls are judged
(:func:`callcenter.rules.calls.judge_call`). Time is always passed in; nothing here does I/O.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Final, Literal
from zoneinfo import ZoneInfo

from callcenter.rules.policy import LinePolicy
from callcenter.rules.schedule import DEFAULT_TIMEZONE, ScheduleError, monitored_intervals
from callcenter.rules.violations import Violation
from callcenter.tracking.records import Call

__all__ = [
    "DEFAULT_PER_LINE",
    "DEFAULT_RING_TIMEOUT",
    "ORIGINATE_REASONS",
    "RESULTS",
    "OriginateOutcome",
    "PlanLine",
    "PlannedCheck",
    "SpotCheckResult",
    "Verdict",
    "judge_spot_check",
    "pick_call",
    "plan_day",
]

#: Spot checks per line and day (the regulations: morning, afternoon and evening).
DEFAULT_PER_LINE: Final = 3
#: Seconds a spot check rings before the PBX gives up (the Originate's ``Timeout``).
DEFAULT_RING_TIMEOUT: Final = 30.0
#: Asterisk's ``OriginateResponse`` ``Reason`` codes (the listener records them as detail).
ORIGINATE_REASONS: Final = {
    "0": "failed",
    "1": "hung up",
    "3": "no answer",
    "4": "answered",
    "5": "busy",
    "8": "congestion",
}
SpotCheckResult = Literal["answered", "late", "unanswered", "failed"]
#: What a judged spot check stores in ``spot_checks.result``; only ``answered`` passes.
RESULTS: Final[tuple[SpotCheckResult, ...]] = ("answered", "late", "unanswered", "failed")

# A spot check's call starts when the Originate is sent; allow for clocks a little apart.
_CLOCK_SLACK = timedelta(seconds=5)
# ... and it is found up to this long after the ring timeout (a prompt, a slow hangup).
_CALL_SLACK = timedelta(seconds=120)


# --------------------------------------------------------------------------- planning


@dataclass(frozen=True, slots=True)
class PlanLine:
    """A duty line as the plan sees it."""

    line_id: int
    number: str
    schedule: str = "24h"
    timezone: str = DEFAULT_TIMEZONE


@dataclass(frozen=True, slots=True)
class PlannedCheck:
    line_id: int
    number: str
    scheduled_at: datetime  # aware UTC, whole seconds


def plan_day(
    lines: Iterable[PlanLine],
    day: date,
    *,
    per_line: int = DEFAULT_PER_LINE,
    seed: str | int = "",
    ring_timeout_seconds: float = DEFAULT_RING_TIMEOUT,
) -> list[PlannedCheck]:
    """The spot checks of local ``day`` (each line's own time zone), by time then line.

    Each line gets ``per_line`` instants inside its monitored hours, one drawn at random in
    each of ``per_line`` equal shares of those hours, leaving ``ring_timeout_seconds`` at the
    end of a monitored span so the check rings while the line must be staffed. The draw
    depends only on ``seed``, ``day`` and the line id: the same inputs plan the same times.
    A line monitored less than that on ``day`` gets none; a schedule that cannot be read
    counts as around the clock (as the call rules do: a typo must not hide violations).
    """
    if per_line < 0:
        raise ValueError(f"per_line must be >= 0, got {per_line}")
    out: list[PlannedCheck] = []
    margin = timedelta(seconds=max(0.0, ring_timeout_seconds))
    for line in lines:
        zone = ZoneInfo(line.timezone)
        start = datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)
        end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)
        try:
            spans = monitored_intervals(line.schedule, start, end, line.timezone)
        except ScheduleError:
            spans = [(start, end)]
        usable = [(s, e - margin) for s, e in spans if e - margin > s]
        total = sum((e - s).total_seconds() for s, e in usable)
        if total < 1 or per_line == 0:
            continue
        rng = random.Random(f"{seed}|{day.isoformat()}|{line.line_id}")
        times: set[datetime] = set()
        for share in range(per_line):
            offset = (share + rng.random()) * total / per_line
            times.add(_at_offset(usable, offset))
        out.extend(PlannedCheck(line.line_id, line.number, at) for at in times)
    out.sort(key=lambda check: (check.scheduled_at, check.line_id))
    return out


def _at_offset(spans: Sequence[tuple[datetime, datetime]], offset: float) -> datetime:
    """The instant ``offset`` seconds into the concatenated ``spans``, to the whole second
    (rounded into the span it falls in)."""
    for start, end in spans:
        length = (end - start).total_seconds()
        if offset < length or (start, end) == spans[-1]:
            whole = math.ceil(start.timestamp())
            at = datetime.fromtimestamp(whole + int(min(offset, length)), UTC)
            return min(at, datetime.fromtimestamp(math.floor(end.timestamp()), UTC))
        offset -= length
    raise ValueError("no span to plan in")  # pragma: no cover - callers pass spans


# --------------------------------------------------------------------------- judging


@dataclass(frozen=True, slots=True)
class OriginateOutcome:
    """What the listener recorded of the Originate (:func:`callcenter.clicktocall.result_of`):
    ``result`` one of ``queued sent answered failed expired`` or None when unknown (never
    queued, or the record expired), ``detail`` the PBX's reason code or message."""

    result: str | None
    detail: str = ""

    @property
    def reason(self) -> str:
        """The reason in words (``no answer``, ``busy`` ...), or the detail as recorded."""
        return ORIGINATE_REASONS.get(self.detail.strip(), self.detail.strip())


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a spot check found. ``result`` None: not decidable yet (ask again later)."""

    result: SpotCheckResult | None
    detail: str
    violation: Violation | None = None

    @property
    def passed(self) -> bool:
        return self.result == "answered"

    @property
    def pending(self) -> bool:
        return self.result is None


def pick_call(
    calls: Iterable[Call],
    number: str,
    originated_at: datetime,
    *,
    ring_timeout_seconds: float = DEFAULT_RING_TIMEOUT,
    desk_phones: Iterable[str] = (),
) -> Call | None:
    """The call a spot check of line ``number`` made: an originated call to that line (its
    ``line`` or its caller ID is the line number, or a desk phone of the line rang) that
    started around ``originated_at``; the nearest one when there are several."""
    phones = frozenset(desk_phones)
    lo = originated_at - _CLOCK_SLACK
    hi = originated_at + timedelta(seconds=ring_timeout_seconds) + _CALL_SLACK
    found: list[tuple[float, Call]] = []
    for call in calls:
        if not call.originated or call.started_at is None or not lo <= call.started_at <= hi:
            continue
        ours = number in (call.line, call.caller) or any(
            leg.endpoint in phones for leg in call.legs
        )
        if ours:
            found.append((abs((call.started_at - originated_at).total_seconds()), call))
    return min(found, key=lambda item: item[0])[1] if found else None


def judge_spot_check(
    *,
    policy: LinePolicy,
    scheduled_at: datetime,
    originated_at: datetime | None,
    outcome: OriginateOutcome,
    call: Call | None,
    officer: str | None = None,
    final: bool = True,
    timezone: str = DEFAULT_TIMEZONE,
) -> Verdict:
    """Judge one spot check of the line of ``policy``.

    ``call`` is the stored call it made (:func:`pick_call`), when found; it is what counts
    when there is one. Without it the Originate's result decides, but only when ``final``
    (the last look): before that a missing call or result gives a pending verdict, since
    the call is stored only when it ends. ``officer`` (the main officer on shift) and the
    unit are named in the violation's detail; its time is when the check was dialed.
    """
    at = originated_at or scheduled_at
    when = at.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M:%S")
    who = f"{policy.unit or '-'}, on duty: {officer or 'nobody on the roster'}"

    def fail(result: SpotCheckResult, what: str, endpoint: str | None) -> Verdict:
        detail = f"spot check of {policy.number} at {when} ({who}): {what}"
        violation = Violation(
            "spot_check_failed",
            call.linkedid if call is not None else None,
            policy.number,
            endpoint,
            at,
            detail,
            (call.linkedid,) if call is not None else (),
        )
        return Verdict(result, what, violation)

    if call is not None:
        return _judge_call(call, policy, fail)
    if originated_at is None or outcome.result in (None, "queued", "sent"):
        if not final:
            return Verdict(None, "waiting for the PBX")
        if originated_at is None or outcome.result == "queued" or outcome.result is None:
            return Verdict("failed", "never dialed: no listener took the request")
        return Verdict("failed", "dialed, but the PBX never said how it went")
    if outcome.result == "expired":
        return Verdict("failed", "never dialed: the request waited too long for the listener")
    if not final:
        return Verdict(None, "waiting for the call to be stored")
    first_phone = min(policy.desk_phones) if policy.desk_phones else None
    if outcome.result == "answered":
        return Verdict("answered", "answered (the call was not found: answer time not checked)")
    reason = outcome.reason or "failed"
    if outcome.detail.strip() in ("1", "3"):
        return fail("unanswered", f"not answered ({reason})", first_phone)
    return fail("failed", f"the line could not be reached ({reason})", first_phone)


_Fail = Callable[[SpotCheckResult, str, str | None], Verdict]


def _judge_call(call: Call, policy: LinePolicy, fail: _Fail) -> Verdict:
    limit = policy.answer_within_seconds
    ring = _waited(call)
    rang = f"rang {ring:.1f} s" if ring is not None else "rang"
    if call.outcome == "answered":
        by = call.answered_by
        if policy.desk_phones and by not in policy.desk_phones:
            return fail("unanswered", f"answered by {by or 'an unknown endpoint'}, "
                        "not at a desk phone of the line", by)  # fmt: skip
        if ring is not None and ring > limit:
            return fail("late", f"answered after {ring:.1f} s (limit {limit:g} s)", by)
        waited = f" after {ring:.1f} s" if ring is not None else ""
        return Verdict("answered", f"answered by {by}{waited}")
    endpoint = _rang_endpoint(call, policy)
    if call.outcome in ("no_answer", "abandoned"):
        return fail("unanswered", f"{rang}, nobody answered", endpoint)
    return fail("failed", f"the line could not be reached ({call.outcome})", endpoint)


def _waited(call: Call) -> float | None:
    """How long the line rang before the answer (or the end): the tracker's ring time,
    else from the start of the call."""
    if call.ring_seconds is not None and (call.ring_seconds > 0 or call.answered_at is None):
        return call.ring_seconds
    end = call.answered_at or call.ended_at
    if call.started_at is None or end is None:
        return call.ring_seconds
    return max(0.0, (end - call.started_at).total_seconds())


def _rang_endpoint(call: Call, policy: LinePolicy) -> str | None:
    """The desk phone that rang (a callee, or the originated phone itself), else one of the
    line's desk phones."""
    for leg in call.legs:
        if leg.role in ("callee", "originated") and not leg.endpoint.startswith("Local/"):
            return leg.endpoint
    return min(policy.desk_phones) if policy.desk_phones else None
