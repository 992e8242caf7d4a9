"""The assessment table (绩效考核): points taken per confirmed violation, and the score.

Pure: functions of data, no I/O. A unit starts a period with ``base`` points (10) and loses
the deduction of every *confirmed* violation; flagged and dismissed ones cost nothing. The
score never goes below ``floor`` (0).

The default table follows the duty-work regulations (DESIGN.md, "Assessment"):

=====================  ======  ===================================================
kind                   points  rule it breaks
=====================  ======  ===================================================
``unmanned``           0.5     无人值班、脱岗、离岗 (unmanned duty, leaving the post)
``phone_offline``      0.5     the duty phone unreachable: nobody can answer it
``unanswered``         0.5     电话长时间无人接听: the phone rang long, nobody answered
``forwarded``          0.5     不准手机呼叫转移值班: answered off the duty desk
``forward_set``        0.5     the desk phone set to forward: the desk is left
``dnd_set``            0.5     do-not-disturb on the duty phone: calls cannot ring
``spot_check_failed``  0.5     电话抽查 unanswered: the post was found empty
``slow_answer``        0       a warning only (answered, but after about three rings)
``late_report``        1       迟报 (incident report later than 2 h)
``wrong_report``       1       错报 (an incident report with wrong elements)
``missed_report``      1       漏报 (an incident never reported)
``false_report``       2       虚报 (a false report)
``concealed_report``   2       瞒报 (a concealed incident)
``serious_impact``     5       处置不当造成严重影响 (improper handling, serious impact)
=====================  ======  ===================================================

Every kind the detectors raise counts once per violation: the inspector who confirms an
``unmanned`` violation and the ``unanswered`` calls behind it decides what to confirm (an
unmanned streak is normally confirmed and its single calls dismissed as "counted in the
streak"). A kind missing from the table costs nothing (an unknown kind is never guessed at);
:func:`make_table` refuses unknown keys and negative points, so a typo in the
configuration fails loudly rather than silently scoring 0.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Protocol

__all__ = [
    "BASE_POINTS",
    "DEFAULT_TABLE",
    "KNOWN_KINDS",
    "Deductible",
    "ScoringError",
    "deduction_for",
    "make_table",
    "points_left",
    "score",
]

BASE_POINTS = 10.0

# points taken per confirmed violation; positive numbers (a deduction, 扣分)
DEFAULT_TABLE: Mapping[str, float] = MappingProxyType(
    {
        # unmanned duty or leaving the post (无人值班、脱岗、离岗): −0.5 each
        "unmanned": 0.5,
        "phone_offline": 0.5,
        "unanswered": 0.5,
        "forwarded": 0.5,
        "forward_set": 0.5,
        "dnd_set": 0.5,
        "spot_check_failed": 0.5,
        # a warning: answered, but not within about three rings
        "slow_answer": 0.0,
        # wrong, late or missed incident report (错报、迟报、漏报): −1 each
        "late_report": 1.0,
        "wrong_report": 1.0,
        "missed_report": 1.0,
        # false or concealed report (虚报、瞒报): −2 each
        "false_report": 2.0,
        "concealed_report": 2.0,
        # improper handling with serious impact: −5 each
        "serious_impact": 5.0,
    }
)
KNOWN_KINDS = frozenset(DEFAULT_TABLE)


class ScoringError(ValueError):
    """An assessment table that cannot be used (unknown kind, negative points)."""

    def __init__(self, message: str, kind: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind


class Deductible(Protocol):
    """What :func:`score` reads from a confirmed violation (a model row or a record)."""

    @property
    def kind(self) -> str: ...

    @property
    def deduction(self) -> float | None: ...


def make_table(overrides: Mapping[str, float] | None = None) -> Mapping[str, float]:
    """The default table with ``overrides`` applied (e.g. from the configuration).

    Raises :class:`ScoringError` for a kind the product does not know or for points that
    are negative or not a number.
    """
    table = dict(DEFAULT_TABLE)
    for kind, points in (overrides or {}).items():
        if kind not in KNOWN_KINDS:
            raise ScoringError(f"unknown violation kind {kind!r} in the assessment table", kind)
        if isinstance(points, bool) or not isinstance(points, int | float):
            raise ScoringError(f"points for {kind!r} must be a number, got {points!r}", kind)
        if points < 0 or points != points:  # negative or NaN
            raise ScoringError(f"points for {kind!r} must be 0 or more, got {points!r}", kind)
        table[kind] = float(points)
    return MappingProxyType(table)


def deduction_for(kind: str, table: Mapping[str, float] = DEFAULT_TABLE) -> float:
    """Points a confirmed violation of ``kind`` takes (0 for a kind not in the table)."""
    return float(table.get(kind, 0.0))


def points_left(total_deduction: float, base: float = BASE_POINTS, floor: float = 0.0) -> float:
    """``base`` minus ``total_deduction``, never below ``floor``, to 0.01 (no float dust)."""
    left = Decimal(str(base)) - Decimal(str(total_deduction))
    return float(max(Decimal(str(floor)), left).quantize(Decimal("0.01")))


def score(
    confirmed_violations: Iterable[Deductible | str],
    base: float = BASE_POINTS,
    *,
    table: Mapping[str, float] = DEFAULT_TABLE,
    floor: float = 0.0,
) -> float:
    """The score after the confirmed violations: ``base`` minus their deductions.

    Each item is a violation (anything with ``kind`` and ``deduction``; the stored
    ``deduction`` wins, as the inspector's decision fixed it, and the table fills in when it
    is missing) or a bare kind. Dismissed or flagged violations must not be passed in.
    """
    total = Decimal(0)
    for item in confirmed_violations:
        if isinstance(item, str):
            points = deduction_for(item, table)
        else:
            stored = item.deduction
            points = deduction_for(item.kind, table) if stored is None else float(stored)
        total += Decimal(str(points))
    return points_left(float(total), base, floor)
