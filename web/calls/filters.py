"""The call list's query string ⇄ :class:`~callcenter.queries.calls.CallFilters`.

``?line=12345&unit=3&outcome=missed&from=2026-11-01&to=2026-11-30&caller=1381&violation=1
&untagged=1&after=<token>`` — dates are local days in the zone of the chosen unit (else the
user's zone); ``outcome`` is one of the outcomes or ``missed`` (anything not answered);
``violation`` is ``1`` (with) or ``0`` (without). Bad values are reported, not guessed at.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import date
from zoneinfo import ZoneInfo

from callcenter.queries.calls import MISSED_OUTCOMES, CallFilters, day_bounds
from callcenter.tracking.records import OUTCOMES

__all__ = ["FilterForm", "parse_filters"]

OUTCOME_CHOICES: tuple[str, ...] = ("missed", *OUTCOMES)


@dataclass
class FilterForm:
    """The filters as the form shows them (strings), and the problems found."""

    line: str = ""
    unit: str = ""
    outcome: str = ""
    date_from: str = ""
    date_to: str = ""
    caller: str = ""
    violation: str = ""
    untagged: str = ""
    errors: list[str] = field(default_factory=list)

    def query(self) -> dict[str, str]:
        """The non-empty filters as query arguments (for links to other pages)."""
        values = {
            "line": self.line,
            "unit": self.unit,
            "outcome": self.outcome,
            "from": self.date_from,
            "to": self.date_to,
            "caller": self.caller,
            "violation": self.violation,
            "untagged": self.untagged,
        }
        return {key: value for key, value in values.items() if value}


def _date(text: str, name: str, errors: list[str]) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        errors.append(f"{name}: not a date (YYYY-MM-DD): {text[:20]}")
        return None


def parse_filters(
    args: Mapping[str, str],
    *,
    unit_ids: Collection[int] | None,
    zones: Mapping[int, str],
    default_zone: str,
) -> tuple[CallFilters, FilterForm]:
    """Filters from the query string, scoped to ``unit_ids`` (``None``: unrestricted).

    ``zones`` maps unit ids to their time zones (for the date range of a chosen unit).
    """
    form = FilterForm(
        line=args.get("line", "").strip()[:64],
        unit=args.get("unit", "").strip(),
        outcome=args.get("outcome", "").strip(),
        date_from=args.get("from", "").strip(),
        date_to=args.get("to", "").strip(),
        caller=args.get("caller", "").strip()[:64],
        violation=args.get("violation", "").strip(),
        untagged="1" if args.get("untagged", "") in ("1", "on", "true") else "",
    )
    errors = form.errors
    unit_id: int | None = None
    if form.unit:
        try:
            unit_id = int(form.unit)
        except ValueError:
            errors.append(f"unit: not a number: {form.unit[:20]}")
            form.unit = ""
    outcomes: tuple[str, ...] = ()
    if form.outcome == "missed":
        outcomes = MISSED_OUTCOMES
    elif form.outcome in OUTCOMES:
        outcomes = (form.outcome,)
    elif form.outcome:
        errors.append(f"outcome: unknown: {form.outcome[:20]}")
        form.outcome = ""
    has_violation: bool | None = None
    if form.violation in ("1", "0"):
        has_violation = form.violation == "1"
    elif form.violation:
        errors.append("violation: 1 or 0")
        form.violation = ""
    first = _date(form.date_from, "from", errors)
    last = _date(form.date_to, "to", errors)
    zone_name = zones.get(unit_id, default_zone) if unit_id is not None else default_zone
    try:
        zone = ZoneInfo(zone_name)
    except (ValueError, KeyError):
        zone = ZoneInfo(default_zone)
    start = end = None
    if first is not None or last is not None:
        if first is not None:
            start, _ = day_bounds(first, None, zone)
        if last is not None:
            _, end = day_bounds(last, None, zone)
        if start is not None and end is not None and end <= start:
            errors.append("to: before from")
            start = end = None
    filters = CallFilters(
        unit_ids=unit_ids,
        unit_id=unit_id,
        line=form.line or None,
        outcomes=outcomes,
        start=start,
        end=end,
        caller=form.caller or None,
        has_violation=has_violation,
        untagged=bool(form.untagged),
    )
    return filters, form
