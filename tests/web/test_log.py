"""The duty log: tying calls to entries, closing entries, incidents, call-back results, the
shift handover; every change audited; officers edit their own unit, inspectors only read."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from callcenter.store.accounts import AuditEntry
from callcenter.store.duty import Callback, Handover, Incident, LogEntry, LogEntryCall
from tests.web.conftest import Tree
from tests.web.test_calls import CST, LINE_A, LINE_B, T0, add_call, add_callback, add_line
from tests.web.test_calls import signed_in as _signed_in


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    return {**app_config, "BABEL_DEFAULT_LOCALE": "en"}


@pytest.fixture
def lines(tree: Tree, app_db: Callable[[], Any]) -> dict[str, int]:
    return {
        LINE_A: add_line(app_db, tree.a, LINE_A),
        LINE_B: add_line(app_db, tree.b, LINE_B),
    }


def token_of(client: FlaskClient, path: str) -> str:
    html = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf_token" value="([^"]+)"', html) or re.search(
        r'name="csrf-token" content="([^"]+)"', html
    )
    assert match, html[:300]
    return match.group(1)


def signed_in(login: Callable[..., Any], client: FlaskClient, username: str) -> FlaskClient:
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    return _signed_in(login, client, username)


def audits(app_db: Any, entity: str) -> list[AuditEntry]:
    with app_db() as session:
        found = list(
            session.scalars(
                select(AuditEntry).where(AuditEntry.entity == entity).order_by(AuditEntry.id)
            )
        )
        session.expunge_all()
    return found


# --------------------------------------------------------------------------- tagging


@pytest.mark.parametrize(
    "web_db_url", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_tag_a_call_to_a_new_entry(
    client: FlaskClient, login: Callable[..., Any], app_db: Any, lines: dict[str, int], tree: Tree
) -> None:
    call_id = add_call(app_db, LINE_A, T0, caller="13811110001")
    signed_in(login, client, "officer_a")
    token = token_of(client, f"/calls/{call_id}")
    response = client.post(
        f"/log/calls/{call_id}/tag",
        data={
            "csrf_token": token,
            "entry_id": "new",
            "summary": "Caller reported a burst water main",
            "action_taken": "Passed to the water company",
        },
    )
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/calls/{call_id}")
    with app_db() as session:
        entry = session.scalars(select(LogEntry)).one()
        assert (entry.unit_id, entry.kind, entry.status, entry.at) == (
            tree.a.id,
            "call",
            "open",
            T0,
        )
        assert entry.summary == "Caller reported a burst water main"
        assert entry.action_taken == "Passed to the water company"
        assert entry.created_by_id == tree.officer_a.id
        ties = session.scalars(select(LogEntryCall)).all()
        assert [(t.log_entry_id, t.call_id) for t in ties] == [(entry.id, call_id)]
        entry_id = entry.id
    assert [a.action for a in audits(app_db, "log_entry")] == ["create"]
    tag = audits(app_db, "log_entry_call")
    assert [(a.action, a.entity_id, a.user_id) for a in tag] == [
        ("tag", f"{entry_id}:{call_id}", tree.officer_a.id)
    ]
    page = client.get(f"/calls/{call_id}").get_data(as_text=True)
    assert "burst water main" in page
    # the call is no longer "untagged"
    listing = client.get("/calls?untagged=1").get_data(as_text=True)
    assert f'data-call-id="{call_id}"' not in listing


def test_tag_a_call_to_an_existing_entry(
    client: FlaskClient, login: Callable[..., Any], app_db: Any, lines: dict[str, int], tree: Tree
) -> None:
    first = add_call(app_db, LINE_A, T0)
    second = add_call(app_db, LINE_A, T0 + timedelta(minutes=2))
    with app_db() as session:
        entry = LogEntry(
            unit_id=tree.a.id, at=T0, summary="Flooding in the east", action_taken="Called"
        )
        session.add(entry)
        session.flush()
        session.add(LogEntryCall(log_entry_id=entry.id, call_id=first))
        entry_id = entry.id
    signed_in(login, client, "officer_a")
    token = token_of(client, f"/calls/{second}")
    assert f'<option value="{entry_id}">' in client.get(f"/calls/{second}").get_data(as_text=True)
    for _ in range(2):  # twice: still one tie
        response = client.post(
            f"/log/calls/{second}/tag",
            data={
                "csrf_token": token,
                "entry_id": str(entry_id),
                "action_taken": "Second caller, same flooding",
                "done": "1",
            },
        )
        assert response.status_code == 302
    with app_db() as session:
        entry = session.get(LogEntry, entry_id)
        assert entry is not None
        assert entry.status == "done"
        assert entry.action_taken.splitlines() == [
            "Called",
            "Second caller, same flooding",
            "Second caller, same flooding",
        ]
        ties = {(t.log_entry_id, t.call_id) for t in session.scalars(select(LogEntryCall))}
        assert ties == {(entry_id, first), (entry_id, second)}
    updates = audits(app_db, "log_entry")
    assert [a.action for a in updates] == ["update", "update"]
    assert json.loads(updates[0].before or "{}")["status"] == "open"
    assert json.loads(updates[0].after or "{}")["status"] == "done"


def test_tagging_is_for_the_units_own_staff(
    client: FlaskClient, login: Callable[..., Any], app_db: Any, lines: dict[str, int], tree: Tree
) -> None:
    call_id = add_call(app_db, LINE_A, T0)
    b_call = add_call(app_db, LINE_B, T0)
    with app_db() as session:
        b_entry = LogEntry(unit_id=tree.b.id, at=T0, summary="B's")
        session.add(b_entry)
        session.flush()
        b_entry_id = b_entry.id
    for username in ("officer_b", "inspector_city"):
        other = client.application.test_client()
        signed_in(login, other, username)
        token = token_of(other, "/log")
        response = other.post(
            f"/log/calls/{call_id}/tag", data={"csrf_token": token, "entry_id": "new"}
        )
        assert response.status_code == 403, username
    # officer_a cannot tie a call to another unit's entry, nor tag B's call
    signed_in(login, client, "officer_a")
    token = token_of(client, "/log")
    response = client.post(
        f"/log/calls/{call_id}/tag",
        data={"csrf_token": token, "entry_id": str(b_entry_id)},
        follow_redirects=True,
    )
    assert "no such log entry" in response.get_data(as_text=True)
    assert (
        client.post(
            f"/log/calls/{b_call}/tag", data={"csrf_token": token, "entry_id": "new"}
        ).status_code
        == 403
    )
    assert client.post(f"/log/calls/{call_id}/tag", data={"entry_id": "new"}).status_code == 400
    with app_db() as session:
        assert session.scalars(select(LogEntryCall)).all() == []


# --------------------------------------------------------------------------- entries


def test_log_page_lists_the_days_entries_and_inspectors_only_read(
    client: FlaskClient, login: Callable[..., Any], app_db: Any, lines: dict[str, int], tree: Tree
) -> None:
    with app_db() as session:
        for at, summary in [
            (datetime(2026, 11, 23, 0, 30, tzinfo=CST), "just after midnight"),  # 22nd in UTC
            (datetime(2026, 11, 23, 23, 50, tzinfo=CST), "late"),
            (datetime(2026, 11, 24, 0, 10, tzinfo=CST), "the following morning"),
        ]:
            session.add(LogEntry(unit_id=tree.a.id, at=at, summary=summary, kind="note"))
        session.add(LogEntry(unit_id=tree.b.id, at=T0, summary="county B's"))
    add_call(app_db, LINE_A, T0)  # a missed call not in the log
    signed_in(login, client, "officer_a")
    html = client.get("/log?day=2026-11-23").get_data(as_text=True)
    assert "just after midnight" in html and "late" in html
    assert "the following morning" not in html and "county B" not in html
    assert "1 missed call(s) of this day are not in the duty log yet." in html
    assert 'class="new-entry"' in html

    token = token_of(client, "/log")
    response = client.post(
        "/log/entries",
        data={
            "csrf_token": token,
            "unit_id": str(tree.a.id),
            "at": "2026-11-23T10:15",
            "summary": "Leader instruction: check the dams",
            "kind": "instruction",
        },
    )
    assert response.status_code == 302
    assert "check the dams" in client.get("/log?day=2026-11-23").get_data(as_text=True)
    with app_db() as session:
        entry = session.scalars(select(LogEntry).where(LogEntry.kind == "instruction")).one()
        assert entry.at == datetime(2026, 11, 23, 2, 15, tzinfo=UTC)
    assert (
        client.post(
            "/log/entries", data={"csrf_token": token, "unit_id": str(tree.b.id), "summary": "x"}
        ).status_code
        == 403
    )

    inspector = client.application.test_client()
    signed_in(login, inspector, "inspector_city")
    page = inspector.get(f"/log?day=2026-11-23&unit={tree.a.id}").get_data(as_text=True)
    assert "just after midnight" in page
    assert 'class="new-entry"' not in page
    assert "Mark done" not in page
    with app_db() as session:
        entry_id = session.scalars(select(LogEntry.id).where(LogEntry.summary == "late")).one()
    token = token_of(inspector, "/log")
    assert (
        inspector.post(f"/log/entries/{entry_id}/done", data={"csrf_token": token}).status_code
        == 403
    )
    assert inspector.get(f"/log/entries/{entry_id}").status_code == 200
    officer_b = client.application.test_client()
    signed_in(login, officer_b, "officer_b")
    assert officer_b.get(f"/log/entries/{entry_id}").status_code == 403
    assert officer_b.get(f"/log?unit={tree.a.id}").status_code == 403


def test_mark_done_and_link_a_new_incident(
    client: FlaskClient, login: Callable[..., Any], app_db: Any, lines: dict[str, int], tree: Tree
) -> None:
    with app_db() as session:
        entry = LogEntry(unit_id=tree.a.id, at=T0, summary="Landslide on road X")
        session.add(entry)
        session.flush()
        entry_id = entry.id
    signed_in(login, client, "officer_a")
    token = token_of(client, f"/log/entries/{entry_id}")
    response = client.post(
        f"/log/entries/{entry_id}/incident",
        data={
            "csrf_token": token,
            "incident_id": "new",
            "title": "Landslide on road X",
            "occurred_at": "2026-11-23T08:40",
            "place": "Road X km 12",
            "source": "caller 13811110001",
            "category": "natural_disaster",
            "level": "IV",
            "contact": "Li, 13900000000",
        },
    )
    assert response.status_code == 302
    with app_db() as session:
        incident = session.scalars(select(Incident)).one()
        assert incident.occurred_at == datetime(2026, 11, 23, 0, 40, tzinfo=UTC)
        assert incident.report_due_at == incident.occurred_at + timedelta(hours=2)
        assert (incident.place, incident.category, incident.level, incident.unit_id) == (
            "Road X km 12",
            "natural_disaster",
            "IV",
            tree.a.id,
        )
        entry = session.get(LogEntry, entry_id)
        assert entry is not None and entry.incident_id == incident.id
        incident_id = incident.id
    assert client.get(f"/log/incidents/{incident_id}").status_code == 200

    response = client.post(f"/log/entries/{entry_id}/done", data={"csrf_token": token})
    assert response.status_code == 302
    with app_db() as session:
        entry = session.get(LogEntry, entry_id)
        assert entry is not None and entry.status == "done"
    assert [a.action for a in audits(app_db, "incident")] == ["create"]
    assert [a.action for a in audits(app_db, "log_entry")] == ["link_incident", "done"]

    # without a time of the event nothing is created
    with app_db() as session:
        other = LogEntry(unit_id=tree.a.id, at=T0, summary="Other")
        session.add(other)
        session.flush()
        other_id = other.id
    client.post(
        f"/log/entries/{other_id}/incident",
        data={"csrf_token": token, "incident_id": "new", "title": "x", "occurred_at": ""},
    )
    with app_db() as session:
        assert len(session.scalars(select(Incident)).all()) == 1


# --------------------------------------------------------------------------- call-backs


@pytest.mark.parametrize(
    "web_db_url", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_recording_the_callback_closes_it(
    client: FlaskClient, login: Callable[..., Any], app_db: Any, lines: dict[str, int], tree: Tree
) -> None:
    reached_call = add_call(app_db, LINE_A, T0)
    excused_call = add_call(app_db, LINE_A, T0 + timedelta(minutes=1))
    reached = add_callback(app_db, reached_call)
    excused = add_callback(app_db, excused_call)
    signed_in(login, client, "officer_a")
    token = token_of(client, f"/log/callbacks/{reached}")
    response = client.post(
        f"/log/callbacks/{reached}",
        data={"csrf_token": token, "result": "reached", "reason": "asked about office hours"},
    )
    assert response.status_code == 302
    # excused needs a reason
    response = client.post(
        f"/log/callbacks/{excused}",
        data={"csrf_token": token, "result": "excused"},
        follow_redirects=True,
    )
    assert "give the reason" in response.get_data(as_text=True)
    with app_db() as session:
        callback = session.get(Callback, excused)
        assert callback is not None and callback.state == "open"
    client.post(
        f"/log/callbacks/{excused}",
        data={"csrf_token": token, "result": "excused", "reason": "wrong number, a fax"},
    )
    with app_db() as session:
        done = session.get(Callback, reached)
        assert done is not None
        assert (done.state, done.reason) == ("reached", "asked about office hours")
        assert done.closed_at is not None
        assert abs((done.closed_at - datetime.now(UTC)).total_seconds()) < 60
        other = session.get(Callback, excused)
        assert other is not None and (other.state, other.reason) == (
            "excused",
            "wrong number, a fax",
        )
    # closing twice is refused; the first result stays
    response = client.post(
        f"/log/callbacks/{reached}",
        data={"csrf_token": token, "result": "called_back"},
        follow_redirects=True,
    )
    assert "already closed" in response.get_data(as_text=True)
    closes = audits(app_db, "callback")
    assert [(a.action, a.entity_id) for a in closes] == [
        ("close", str(reached)),
        ("close", str(excused)),
    ]
    assert json.loads(closes[0].before or "{}")["state"] == "open"
    # others may not record it
    b = client.application.test_client()
    signed_in(login, b, "officer_b")
    assert b.get(f"/log/callbacks/{reached}").status_code == 403
    token_b = token_of(b, "/log")
    assert (
        b.post(
            f"/log/callbacks/{excused}", data={"csrf_token": token_b, "result": "reached"}
        ).status_code
        == 403
    )


# --------------------------------------------------------------------------- handover


@pytest.mark.parametrize(
    "web_db_url", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_handover_is_signed_by_outgoing_then_incoming_officer(
    client: FlaskClient,
    login: Callable[..., Any],
    app_db: Any,
    lines: dict[str, int],
    tree: Tree,
    make_user: Callable[..., Any],
) -> None:
    make_user("officer_a2", role="officer", unit=tree.a, display_name="Officer Two")
    call_id = add_call(app_db, LINE_A, T0, caller="13811119999")
    callback_id = add_callback(app_db, call_id)
    with app_db() as session:
        open_entry = LogEntry(unit_id=tree.a.id, at=T0, summary="Follow up the dam report")
        closed = LogEntry(unit_id=tree.a.id, at=T0, summary="Closed matter", status="done")
        incident = Incident(
            unit_id=tree.a.id,
            title="Dam seepage",
            occurred_at=T0,
            report_due_at=T0 + timedelta(hours=2),
        )
        session.add_all([open_entry, closed, incident])
        session.flush()
        ids = {"entry": open_entry.id, "incident": incident.id}

    signed_in(login, client, "officer_a")
    html = client.get("/log/handover").get_data(as_text=True)
    assert "Follow up the dam report" in html
    assert "Closed matter" not in html
    assert "13811119999" in html
    assert "Dam seepage" in html
    token = token_of(client, "/log/handover")
    response = client.post(
        f"/log/handover?unit={tree.a.id}",
        data={"csrf_token": token, "notes": "Dam: call the engineer at 8"},
    )
    assert response.status_code == 302
    with app_db() as session:
        handover = session.scalars(select(Handover)).one()
        assert handover.outgoing_officer == "officer_a"
        assert handover.signed_in_at is None
        handover_id = handover.id
    # the same officer cannot take over from themself; a second hand-over waits
    page = client.get("/log/handover").get_data(as_text=True)
    assert "waiting for the incoming officer" in page
    refused = client.post(
        f"/log/handover/{handover_id}/sign-in", data={"csrf_token": token}, follow_redirects=True
    )
    assert "own account" in refused.get_data(as_text=True)
    twice = client.post(
        f"/log/handover?unit={tree.a.id}", data={"csrf_token": token}, follow_redirects=True
    )
    assert "waiting for the incoming officer already" in twice.get_data(as_text=True)

    incoming = client.application.test_client()
    signed_in(login, incoming, "officer_a2")
    token2 = token_of(incoming, "/log/handover")
    response = incoming.post(f"/log/handover/{handover_id}/sign-in", data={"csrf_token": token2})
    assert response.status_code == 302
    with app_db() as session:
        handover = session.get(Handover, handover_id)
        assert handover is not None
        assert handover.incoming_officer == "Officer Two"
        assert handover.signed_in_at is not None
        assert handover.notes == "Dam: call the engineer at 8"
    trail = audits(app_db, "handover")
    assert [a.action for a in trail] == ["sign_out", "sign_in"]
    snapshot = json.loads(trail[0].after or "{}")
    assert snapshot["open_entries"] == [ids["entry"]]
    assert snapshot["open_callbacks"] == [callback_id]
    assert snapshot["open_incidents"] == [ids["incident"]]

    # an inspector reads the handover page but cannot sign
    inspector = client.application.test_client()
    signed_in(login, inspector, "inspector_city")
    page = inspector.get(f"/log/handover?unit={tree.a.id}").get_data(as_text=True)
    assert "Follow up the dam report" in page
    token3 = token_of(inspector, "/log")
    assert (
        inspector.post(f"/log/handover?unit={tree.a.id}", data={"csrf_token": token3}).status_code
        == 403
    )
    officer_b = client.application.test_client()
    signed_in(login, officer_b, "officer_b")
    assert officer_b.get(f"/log/handover?unit={tree.a.id}").status_code == 403
