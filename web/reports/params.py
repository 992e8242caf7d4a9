"""What a report request asks for: the period and the units, read from the query string.

- ``from`` and ``to`` (local dates, inclusive) win over ``quarter`` (``2026-Q4``), which
  wins over ``month`` (``2026-11``); with none of them, the current month in the zone of the
  unit asked for (else the user's unit, else the configured zone).
- ``unit``: one unit and the units below it, within what the user may see; without it,
  every unit the user may see.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from zoneinfo import ZoneInfo

from flask import current_app, request
from flask_login import current_user

from callcenter.reports import Period, ReportError, zone_of
from callcenter.store.org import Unit
from callcenter.web.extensions import db
from callcenter.web.security import descendant_unit_ids, visible_unit_ids
from callcenter.web.violations.decisions import now

__all__ = ["ReportParams", "read_params"]

MONTH = re.compile(r"^(\d{4})-(\d{1,2})$")
QUARTER = re.compile(r"^(\d{4})-?Q([1-4])$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class ReportParams:
    period: Period
    unit_id: int | None
    unit_ids: frozenset[int]
    errors: list[str] = field(default_factory=list)

    def args(self) -> dict[str, str]:
        """Query arguments that ask for this report again (links, exports, print)."""
        out: dict[str, str] = {}
        if self.period.kind == "month":
            out["month"] = f"{self.period.first:%Y-%m}"
        elif self.period.kind == "quarter":
            out["quarter"] = self.period.label
        else:
            out["from"] = self.period.first.isoformat()
            out["to"] = self.period.last.isoformat()
        if self.unit_id is not None:
            out["unit"] = str(self.unit_id)
        return out


def _default_zone(unit_id: int | None) -> ZoneInfo:
    configured = str(current_app.config["CALLCENTER"].timezone)
    if unit_id is not None:
        unit = db().get(Unit, unit_id)
        if unit is not None:
            return zone_of(unit.timezone, configured)
    return zone_of(getattr(current_user, "timezone", None), configured)


def _period(unit_id: int | None, errors: list[str]) -> Period:
    args = request.args
    first, last = args.get("from", "").strip(), args.get("to", "").strip()
    quarter, month = args.get("quarter", "").strip(), args.get("month", "").strip()
    try:
        if first or last:
            return Period(date.fromisoformat(first), date.fromisoformat(last or first))
        if quarter:
            found = QUARTER.match(quarter)
            if not found:
                raise ReportError(f"not a quarter: {quarter!r} (write 2026-Q4)")
            return Period.quarter(int(found.group(1)), int(found.group(2)))
        if month:
            found = MONTH.match(month)
            if not found:
                raise ReportError(f"not a month: {month!r} (write 2026-11)")
            return Period.month(int(found.group(1)), int(found.group(2)))
    except (ReportError, ValueError) as error:
        errors.append(str(error))
    today = now().astimezone(_default_zone(unit_id)).date()
    return Period.month_of(today)


def read_params() -> ReportParams:
    errors: list[str] = []
    visible = visible_unit_ids()
    raw_unit = request.args.get("unit", "").strip()
    unit_id = int(raw_unit) if raw_unit.isdigit() else None
    if unit_id is not None and unit_id in visible:
        units = ({unit_id} | descendant_unit_ids(unit_id)) & visible
    else:
        if unit_id is not None:
            errors.append("unit not visible")
        unit_id = None
        units = set(visible)
    return ReportParams(_period(unit_id, errors), unit_id, frozenset(units), errors)
