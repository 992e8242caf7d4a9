"""Incident report deadlines, the pure rule: a first report not sent by ``report_due_at``
is one ``late_report`` per incident, once the deadline has passed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from callcenter.deadlines import IncidentDeadline, late_reports

DUE = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)  # 12:00 in Asia/Shanghai
AFTER = DUE + timedelta(hours=1)


def incident(incident_id: int, reported_at: datetime | None) -> IncidentDeadline:
    return IncidentDeadline(incident_id, f"事件{incident_id}", DUE, reported_at)


def test_reported_on_time_or_exactly_at_the_deadline_is_no_violation() -> None:
    assert late_reports([incident(1, DUE - timedelta(minutes=30)), incident(2, DUE)], AFTER) == []


def test_reported_late_is_one_late_report() -> None:
    (late,) = late_reports([incident(3, DUE + timedelta(minutes=40))], AFTER)
    assert late.incident_id == 3
    assert late.dedupe_key == "late_report:incident:3"
    violation = late.violation
    assert violation.kind == "late_report"
    assert violation.at == DUE
    assert violation.linkedid is None and violation.line is None
    assert violation.detail == (
        "incident '事件3': first report due 2026-11-23 12:00; "
        "first report sent 2026-11-23 12:40, 40 min late"
    )


def test_never_reported_is_one_late_report_once_the_deadline_passed() -> None:
    assert late_reports([incident(4, None)], DUE) == []  # due now: not late yet
    assert late_reports([incident(4, None)], DUE - timedelta(minutes=1)) == []
    (late,) = late_reports([incident(4, None)], DUE + timedelta(seconds=1))
    assert late.violation.detail.endswith("no first report sent")


def test_each_incident_is_judged_on_its_own() -> None:
    found = late_reports(
        [incident(5, DUE), incident(6, None), incident(7, DUE + timedelta(hours=2))], AFTER
    )
    assert [late.incident_id for late in found] == [6, 7]
