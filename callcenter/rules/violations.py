"""The violation record the rules produce (pure data)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
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
