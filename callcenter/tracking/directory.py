"""What the tracker may know about the site: duty lines and their desk phones (pure data)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from callcenter.tracking.names import digits


@dataclass(frozen=True, slots=True)
class DutyLine:
    number: str
    desk_phones: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Directory:
    """Duty lines by number and by desk phone; empty when no config was given.

    ``configured``: whether the site's duty lines are known at all. Then only their numbers
    are lines (a call to any other number has none); without it (no config: a bare replay)
    a call's line is the number dialed. A site whose lines are all switched off is
    configured with no lines."""

    lines: tuple[DutyLine, ...] = ()
    _by_number: dict[str, DutyLine] = field(default_factory=dict, compare=False)
    _by_phone: dict[str, DutyLine] = field(default_factory=dict, compare=False)
    configured: bool = False

    @classmethod
    def of(cls, lines: Iterable[DutyLine], *, configured: bool | None = None) -> Directory:
        """The directory of ``lines``; configured if there are any, unless told."""
        items = tuple(lines)
        by_number = {digits(line.number) or line.number: line for line in items}
        by_phone: dict[str, DutyLine] = {}
        for line in items:
            for phone in line.desk_phones:
                by_phone.setdefault(phone, line)
        known = bool(items) if configured is None else configured
        return cls(items, by_number, by_phone, known)

    def line_for_number(self, number: str | None) -> DutyLine | None:
        if not number:
            return None
        return self._by_number.get(digits(number) or number)

    def line_for_phone(self, endpoint: str | None) -> DutyLine | None:
        return self._by_phone.get(endpoint or "")

    def is_desk_phone(self, endpoint: str | None) -> bool:
        return (endpoint or "") in self._by_phone


EMPTY = Directory()
