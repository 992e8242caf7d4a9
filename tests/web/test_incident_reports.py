"""The reports sent upward for an incident (首报 / 续报 / 终报): recorded from the incident page
by the unit's own staff, audited, the final one closes the incident; the deadline rule
(``late_report``) sees the first report recorded here."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from callcenter.deadlines import IncidentDeadline, late_reports
from callcenter.store.duty import Incident, IncidentReport
from callcenter.store.duty import Violation as ViolationRow
from callcenter.workers.deadlines import flag_late_reports
from tests.web.conftest import Tree
from tests.web.test_log import audits, signed_in, token_of

SHANGHAI = ZoneInfo("Asia/Shanghai")  # the units' zone (the default)
OVERDUE = "The first report is overdue"


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    return {**app_config, "BABEL_DEFAULT_LOCALE": "en"}


def local(at: datetime) -> str:
    """``at`` as the form's ``datetime-local`` value in the unit's zone."""
    return at.astimezone(SHANGHAI).strftime("%Y-%m-%dT%H:%M")


def add_incident(app_db: Any, unit_id: int, occurred_at: datetime, title: str = "Dam leak") -> int:
    with app_db() as session:
        incident = Incident(
            unit_id=unit_id,
            title=title,
            occurred_at=occurred_at,
            report_due_at=occurred_at + timedelta(hours=2),
            status="open",
        )
        session.add(incident)
        session.flush()
        return incident.id


def reports_of(app_db: Any, incident_id: int) -> list[tuple[str, datetime, str, int | None]]:
    with app_db() as session:
        return [
            (r.kind, r.reported_at, r.content, r.created_by_id)
            for r in session.scalars(
                select(IncidentReport)
                .where(IncidentReport.incident_id == incident_id)
                .order_by(IncidentReport.id)
            )
        ]


def minute(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)


@pytest.mark.parametrize(
    "web_db_url", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_officer_records_first_follow_up_and_final_reports(
    client: FlaskClient, login: Callable[..., Any], app_db: Any, tree: Tree
) -> None:
    occurred = minute(datetime.now(UTC) - timedelta(hours=3))
    incident_id = add_incident(app_db, tree.a.id, occurred)
    path = f"/log/incidents/{incident_id}"
    signed_in(login, client, "officer_a")
    page = client.get(path).get_data(as_text=True)
    assert OVERDUE in page
    assert 'name="kind"' in page and 'value="first"' in page and 'value="final"' not in page
    assert 'class="status status-open">open</dd>' in page

    # the first report, sent 30 min after the event
    sent = occurred + timedelta(minutes=30)
    token = token_of(client, path)
    response = client.post(
        f"{path}/reports",
        data={
            "csrf_token": token,
            "kind": "first",
            "reported_at": local(sent),
            "content": "  Dam leak at km 3, 20 evacuated  ",
        },
    )
    assert response.status_code == 302 and response.headers["Location"].endswith(path)
    assert reports_of(app_db, incident_id) == [
        ("first", sent, "Dam leak at km 3, 20 evacuated", tree.officer_a.id)
    ]
    created = audits(app_db, "incident_report")
    assert [(a.action, a.user_id) for a in created] == [("create", tree.officer_a.id)]
    assert json.loads(created[0].after or "{}")["kind"] == "first"
    page = client.get(path).get_data(as_text=True)
    assert OVERDUE not in page
    assert "Dam leak at km 3, 20 evacuated" in page
    assert sent.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M") in page
    # now only a follow-up or the final report can be recorded
    assert 'value="follow_up"' in page and 'value="final"' in page
    assert 'option value="first"' not in page

    # a second first report is refused
    response = client.post(
        f"{path}/reports",
        data={"csrf_token": token, "kind": "first", "reported_at": local(sent), "content": "x"},
        follow_redirects=True,
    )
    assert "the first report is recorded already" in response.get_data(as_text=True)
    assert len(reports_of(app_db, incident_id)) == 1

    # a follow-up, then the final report, which closes the incident
    for kind, offset, content in (
        ("follow_up", 60, "Leak sealed, water level falling"),
        ("final", 90, "All back home, no casualties"),
    ):
        response = client.post(
            f"{path}/reports",
            data={
                "csrf_token": token,
                "kind": kind,
                "reported_at": local(occurred + timedelta(minutes=offset)),
                "content": content,
            },
        )
        assert response.status_code == 302
    assert [kind for kind, *_rest in reports_of(app_db, incident_id)] == [
        "first",
        "follow_up",
        "final",
    ]
    with app_db() as session:
        incident = session.get(Incident, incident_id)
        assert incident is not None and incident.status == "closed"
    assert [a.action for a in audits(app_db, "incident_report")] == ["create"] * 3
    closed = audits(app_db, "incident")
    assert [(a.action, a.user_id) for a in closed] == [("close", tree.officer_a.id)]
    assert json.loads(closed[0].after or "{}")["status"] == "closed"
    page = client.get(path).get_data(as_text=True)
    assert "All back home, no casualties" in page
    assert 'class="status status-closed">closed</dd>' in page
    assert 'name="content"' not in page  # closed: no more reports
    response = client.post(
        f"{path}/reports",
        data={"csrf_token": token, "kind": "follow_up", "content": "late news"},
    )
    assert len(reports_of(app_db, incident_id)) == 3

    # the deadline job sees the first report sent in time: no late_report
    with app_db() as session:
        assert flag_late_reports(session, datetime.now(UTC))["late_report"] == 0
        assert session.scalars(select(ViolationRow)).all() == []


def test_only_the_units_staff_record_reports(
    client: FlaskClient, login: Callable[..., Any], app_db: Any, tree: Tree
) -> None:
    occurred = minute(datetime.now(UTC) - timedelta(hours=1))
    incident_id = add_incident(app_db, tree.a.id, occurred)
    path = f"/log/incidents/{incident_id}"
    data = {"kind": "first", "reported_at": local(occurred), "content": "Dam leak"}

    inspector = client.application.test_client()
    signed_in(login, inspector, "inspector_city")
    page = inspector.get(path)
    assert page.status_code == 200
    assert 'name="content"' not in page.get_data(as_text=True)  # reads, no form
    token = token_of(inspector, "/log")
    assert inspector.post(f"{path}/reports", data={**data, "csrf_token": token}).status_code == 403

    officer_b = client.application.test_client()
    signed_in(login, officer_b, "officer_b")
    assert officer_b.get(path).status_code == 403
    token = token_of(officer_b, "/log")
    assert officer_b.post(f"{path}/reports", data={**data, "csrf_token": token}).status_code == 403
    assert reports_of(app_db, incident_id) == []

    # the unit admin of the unit and the admin may
    for username in ("admin_a", "admin"):
        staff = client.application.test_client()
        signed_in(login, staff, username)
        token = token_of(staff, path)
        kind = "first" if username == "admin_a" else "follow_up"
        response = staff.post(f"{path}/reports", data={**data, "kind": kind, "csrf_token": token})
        assert response.status_code == 302, username
    assert [(k, by) for k, _at, _c, by in reports_of(app_db, incident_id)] == [
        ("first", tree.admin_a.id),
        ("follow_up", tree.admin.id),
    ]


def test_bad_reports_are_refused(
    client: FlaskClient, login: Callable[..., Any], app_db: Any, tree: Tree
) -> None:
    occurred = minute(datetime.now(UTC) - timedelta(hours=1))
    incident_id = add_incident(app_db, tree.a.id, occurred)
    path = f"/log/incidents/{incident_id}"
    signed_in(login, client, "officer_a")
    good = {"kind": "first", "reported_at": local(occurred), "content": "Dam leak"}

    # no CSRF token
    assert client.post(f"{path}/reports", data=good).status_code == 400
    token = token_of(client, path)
    refused = {
        "in the future": {"reported_at": local(datetime.now(UTC) + timedelta(minutes=10))},
        "before the event": {"reported_at": local(occurred - timedelta(minutes=1))},
        "needs its content": {"content": "   "},
        "too long": {"content": "x" * 4001},
        "before a follow-up": {"kind": "follow_up"},
        "kind of report": {"kind": "initial"},
        "time the report was sent": {"reported_at": "yesterday"},
    }
    for problem, change in refused.items():
        response = client.post(
            f"{path}/reports",
            data={**good, **change, "csrf_token": token},
            follow_redirects=True,
        )
        assert problem in response.get_data(as_text=True), problem
    assert reports_of(app_db, incident_id) == []
    assert audits(app_db, "incident_report") == []
    # no time given: sent now
    before = datetime.now(UTC)
    response = client.post(f"{path}/reports", data={**good, "reported_at": "", "csrf_token": token})
    assert response.status_code == 302
    [(kind, at, _content, _by)] = reports_of(app_db, incident_id)
    assert kind == "first" and before - timedelta(seconds=1) <= at <= datetime.now(UTC)


def test_a_first_report_after_the_deadline_is_flagged(
    client: FlaskClient, login: Callable[..., Any], app_db: Any, tree: Tree
) -> None:
    occurred = minute(datetime.now(UTC) - timedelta(hours=4))
    incident_id = add_incident(app_db, tree.a.id, occurred)
    path = f"/log/incidents/{incident_id}"
    signed_in(login, client, "officer_a")
    token = token_of(client, path)
    sent = occurred + timedelta(hours=2, minutes=30)
    response = client.post(
        f"{path}/reports",
        data={"csrf_token": token, "kind": "first", "reported_at": local(sent), "content": "x"},
    )
    assert response.status_code == 302
    page = client.get(path).get_data(as_text=True)
    assert OVERDUE not in page and ">late<" in page
    with app_db() as session:
        assert flag_late_reports(session, datetime.now(UTC))["late_report"] == 1
        violation = session.scalars(select(ViolationRow)).one()
        assert violation.dedupe_key == f"late_report:incident:{incident_id}"
        assert "30 min late" in violation.detail


# --------------------------------------------------------------------------- the pure rule


def test_late_reports_rule() -> None:
    occurred = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
    due = occurred + timedelta(hours=2)
    now = due + timedelta(hours=1)
    on_time = IncidentDeadline(1, "On time", due, due - timedelta(minutes=5))
    at_the_deadline = IncidentDeadline(2, "At the deadline", due, due)
    assert late_reports([on_time, at_the_deadline], now) == []
    late = IncidentDeadline(3, "Late", due, due + timedelta(minutes=20))
    [found] = late_reports([on_time, late], now)
    assert found.incident_id == 3 and found.dedupe_key == "late_report:incident:3"
    assert found.violation.kind == "late_report" and found.violation.at == due
    assert "20 min late" in found.violation.detail
    # not yet due: nothing, even without a report
    assert late_reports([IncidentDeadline(4, "Pending", due, None)], due) == []
