"""The incident-report deadline job: :func:`check_deadlines` (RQ cron, every minute) flags
``late_report`` for every incident whose first report did not go out by its
``report_due_at`` (:func:`callcenter.deadlines.late_reports`), one violation per incident
(``dedupe_key`` ``late_report:incident:<id>``), attributed to the unit and to the duty
officer on shift when the report fell due. Safe to run any number of times.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import String, cast, func, literal, select
from sqlalchemy.orm import Session

from callcenter.deadlines import FIRST_REPORT, IncidentDeadline, late_reports
from callcenter.store.db import session_scope
from callcenter.store.duty import Incident, IncidentReport
from callcenter.store.duty import Violation as ViolationRow
from callcenter.store.org import Unit
from callcenter.store.roster import shift_for
from callcenter.workers.storage import (
    insert_if_absent,
    resolve_database_url,
    sessions,
)

__all__ = ["LOOKBACK_DAYS", "check_deadlines", "flag_late_reports"]

logger = logging.getLogger(__name__)

#: Incidents whose deadline passed longer ago than this are not looked at again (their
#: violation, if any, was flagged long since).
LOOKBACK_DAYS = 30


def check_deadlines(database_url: str | None = None) -> dict[str, int]:
    """Flag ``late_report`` for the incidents that missed their first-report deadline."""
    with session_scope(sessions(resolve_database_url(database_url))) as session:
        return flag_late_reports(session, datetime.now(UTC))


def flag_late_reports(session: Session, now: datetime) -> dict[str, int]:
    """:func:`check_deadlines` in the caller's transaction, at ``now``."""
    first_report = (
        select(
            IncidentReport.incident_id,
            func.min(IncidentReport.reported_at).label("reported_at"),
        )
        .where(IncidentReport.kind == FIRST_REPORT)
        .group_by(IncidentReport.incident_id)
        .subquery()
    )
    flagged = select(ViolationRow.dedupe_key).where(ViolationRow.kind == "late_report")
    rows = session.execute(
        select(
            Incident.id,
            Incident.unit_id,
            Incident.title,
            Incident.report_due_at,
            first_report.c.reported_at,
            Unit.timezone,
        )
        .join(Unit, Unit.id == Incident.unit_id)
        .outerjoin(first_report, first_report.c.incident_id == Incident.id)
        .where(
            Incident.report_due_at < now,
            Incident.report_due_at >= now - timedelta(days=LOOKBACK_DAYS),
            (literal("late_report:incident:", String) + cast(Incident.id, String)).not_in(flagged),
        )
    ).all()
    units = {row.id: row.unit_id for row in rows}
    found = late_reports(
        (
            IncidentDeadline(
                row.id, row.title, row.report_due_at, _aware(row.reported_at), row.timezone
            )
            for row in rows
        ),
        now,
    )
    stored = 0
    for late in found:
        unit_id = units[late.incident_id]
        due = late.violation.at or now
        shift = shift_for(session, unit_id, due)
        new_id = insert_if_absent(
            session,
            ViolationRow,
            {
                "dedupe_key": late.dedupe_key,
                "kind": late.violation.kind,
                "state": "flagged",
                "unit_id": unit_id,
                "line_id": None,
                "line_number": None,
                "endpoint": None,
                "at": due,
                "ended_at": None,
                "duration_seconds": None,
                "detail": late.violation.detail,
                "call_id": None,
                "shift_id": shift.id if shift else None,
                "officer": shift.main_officer if shift else None,
            },
            ["dedupe_key"],
        )
        stored += new_id is not None
    if stored:
        logger.info("late_report flagged for %d incident(s)", stored)
    return {"checked": len(rows), "late_report": stored}


def _aware(value: datetime | None) -> datetime | None:
    """Times read through a bare column expression (the MIN above) skip the UTC column
    type on SQLite: naive there, UTC by construction."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value
