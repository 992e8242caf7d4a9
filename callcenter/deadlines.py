"""Incident report deadlines (突发事件信息报送时限), the pure part.

The first report of an incident is due at its ``report_due_at`` (2 hours after the event at
the latest). An incident whose deadline has passed without a first report sent by then is a
``late_report`` violation (迟报), one per incident: reported late, or not reported at all.
Follow-up (续报) and final reports do not count as the first report.

Time is passed in (``now``); nothing here does I/O. The job that reads the incidents and
stores the violations is :mod:`callcenter.workers.deadlines`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from callcenter.rules.schedule import DEFAULT_TIMEZONE
from callcenter.rules.violations import Violation

__all__ = ["FIRST_REPORT", "IncidentDeadline", "LateReport", "late_reports"]

#: The ``incident_reports.kind`` of the report the deadline is about.
FIRST_REPORT = "first"


@dataclass(frozen=True, slots=True)
class IncidentDeadline:
    """An incident as the deadline rule sees it."""

    incident_id: int
    title: str
    report_due_at: datetime
    first_reported_at: datetime | None  # the earliest first report, None if there is none
    timezone: str = DEFAULT_TIMEZONE  # the unit's, for the detail's times


@dataclass(frozen=True, slots=True)
class LateReport:
    incident_id: int
    violation: Violation

    @property
    def dedupe_key(self) -> str:
        """One ``late_report`` per incident, however often the check runs."""
        return f"late_report:incident:{self.incident_id}"


def late_reports(incidents: Iterable[IncidentDeadline], now: datetime) -> list[LateReport]:
    """The incidents that missed their first-report deadline as of ``now``.

    Missed: ``now`` is past ``report_due_at`` and no first report was sent at or before it.
    The violation's time is the deadline; its detail says when the report came, if it did.
    """
    out: list[LateReport] = []
    for incident in incidents:
        due = incident.report_due_at
        if now <= due:
            continue
        reported = incident.first_reported_at
        if reported is not None and reported <= due:
            continue
        zone = ZoneInfo(incident.timezone)
        due_text = due.astimezone(zone).strftime("%Y-%m-%d %H:%M")
        if reported is None:
            what = "no first report sent"
        else:
            late = (reported - due).total_seconds() / 60
            what = (
                f"first report sent {reported.astimezone(zone).strftime('%Y-%m-%d %H:%M')}, "
                f"{late:.0f} min late"
            )
        detail = f"incident {incident.title!r}: first report due {due_text}; {what}"
        out.append(
            LateReport(
                incident.incident_id,
                Violation("late_report", None, None, None, due, detail),
            )
        )
    return out
