"""The violation record the rules produce (pure data)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from callcenter.tracking.records import iso

ViolationKind = Literal[
    "unanswered",
    "slow_answer",
    "forwarded",
    "unmanned",
    "phone_offline",
    "forward_set",
    "dnd_set",
    "spot_check_failed",
    "late_report",
]


@dataclass(frozen=True, slots=True)
class Violation:
    kind: ViolationKind
    linkedid: str | None
    line: str | None
    endpoint: str | None
    at: datetime | None
    detail: str
    linkedids: tuple[str, ...] = ()  # every call behind it (unmanned: the missed calls)
    duration_seconds: float | None = None  # device-status violations
    ended_at: datetime | None = None  # device-status violations: None while still open

    @property
    def dedupe_key(self) -> str:
        """What makes this violation one row, so a job run twice stores it once.

        See :func:`dedupe_key`.
        """
        return dedupe_key(self.kind, self.linkedid, self.endpoint, self.at)

    def to_json(self) -> dict[str, object]:
        return {
            "type": "violation",
            "kind": self.kind,
            "linkedid": self.linkedid,
            "line": self.line,
            "endpoint": self.endpoint,
            "at": iso(self.at),
            "detail": self.detail,
        }


def dedupe_key(kind: str, linkedid: str | None, endpoint: str | None, at: datetime | None) -> str:
    """The unique key of a violation.

    A call's violation: ``<kind>:<linkedid>``. A device-status violation (no linkedid):
    ``<kind>:<endpoint>:<at in UTC>``, e.g.
    ``phone_offline:PJSIP/2001:2026-11-23T11:51:35.796774+00:00`` — the same while it is
    open and once it is closed, so the closing run updates the row the opening run wrote.
    A naive ``at`` is taken as UTC.
    """
    if linkedid is not None:
        return f"{kind}:{linkedid}"
    if at is None:
        when = "-"
    else:
        aware = at.replace(tzinfo=UTC) if at.tzinfo is None else at
        when = aware.astimezone(UTC).isoformat(timespec="microseconds")
    return f"{kind}:{endpoint or '-'}:{when}"
