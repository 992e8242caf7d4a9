"""Line policy: the thresholds each duty line is judged by (pure data)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from callcenter.config import Config

DEFAULT_ANSWER_WITHIN = 15.0
DEFAULT_OFFLINE_GRACE = 300.0
DEFAULT_UNMANNED_COUNT = 2
DEFAULT_UNMANNED_WINDOW = 1800.0


@dataclass(frozen=True, slots=True)
class LinePolicy:
    number: str
    unit: str = ""
    desk_phones: frozenset[str] = frozenset()
    answer_within_seconds: float = DEFAULT_ANSWER_WITHIN
    offline_grace_seconds: float = DEFAULT_OFFLINE_GRACE
    unmanned_count: int = DEFAULT_UNMANNED_COUNT
    unmanned_window_seconds: float = DEFAULT_UNMANNED_WINDOW
    schedule: str = "24h"  # when the line is monitored (callcenter.rules.schedule)


@dataclass(frozen=True, slots=True)
class Policies:
    """Policies by line number; ``default`` applies to lines not configured (no config)."""

    by_line: dict[str, LinePolicy] = field(default_factory=dict)
    configured: bool = False

    @classmethod
    def from_config(cls, config: Config | None) -> Policies:
        if config is None or not config.lines:
            return cls()
        return cls(
            {
                line.number: LinePolicy(
                    number=line.number,
                    unit=line.unit,
                    desk_phones=frozenset(line.desk_phones),
                    answer_within_seconds=line.answer_within_seconds,
                    offline_grace_seconds=line.offline_grace_seconds,
                    unmanned_count=line.unmanned_count,
                    unmanned_window_seconds=line.unmanned_window_seconds,
                    schedule=line.schedule,
                )
                for line in config.lines
            },
            configured=True,
        )

    def for_line(self, line: str | None) -> LinePolicy | None:
        if line is None:
            return None
        found = self.by_line.get(line)
        if found is not None or self.configured:
            return found
        return LinePolicy(number=line)

    def for_phone(self, endpoint: str) -> LinePolicy | None:
        return next((p for p in self.by_line.values() if endpoint in p.desk_phones), None)
