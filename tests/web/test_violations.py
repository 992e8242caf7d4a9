"""Violations review: inspectors rule (audited), the unit explains, nobody else does either;
the decisions drive the report's deductions. Data: :func:`tests.web.test_reports.build_dataset`
(county A: v1 confirmed, v2 flagged, v3 confirmed, v4 dismissed, v5 confirmed, v6 confirmed;
county B: v7 flagged, v8 confirmed; v9 in December)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from callcenter.store.accounts import AuditEntry
from callcenter.store.duty import Violation
from tests.web.test_reports import (
    BOTH_ENGINES,
    NOW,
    Dataset,
    build_dataset,
    page_tables,
    signed_in,
    summary_from_page,
)


@pytest.fixture
def dataset(app: Flask, app_db: Callable[[], Any], tree: Any) -> Dataset:
    app.config["CLOCK"] = lambda: NOW
    with app_db() as session:
        return build_dataset(session, tree.a, tree.b)


def violation(app_db: Callable[[], Any], violation_id: int) -> Violation:
    with app_db() as session:
        row = session.get(Violation, violation_id)
        assert row is not None
        session.expunge(row)
        return row


def audit_entries(app_db: Callable[[], Any], violation_id: int) -> list[AuditEntry]:
    with app_db() as session:
        rows = list(
            session.scalars(
                select(AuditEntry)
                .where(AuditEntry.entity == "violation", AuditEntry.entity_id == str(violation_id))
                .order_by(AuditEntry.id)
            )
        )
        session.expunge_all()
        return rows


def post_decision(
    client: FlaskClient,
    csrf_token: Callable[..., str],
    violation_id: int,
    **data: str,
) -> Any:
    token = csrf_token(client, f"/violations/{violation_id}")
    return client.post(f"/violations/{violation_id}/decide", data={"csrf_token": token, **data})


# --------------------------------------------------------------------------- ruling


@BOTH_ENGINES
def test_inspector_confirms_with_reason_and_it_is_audited(
    client: FlaskClient,
    login: Callable[..., Any],
    csrf_token: Callable[..., str],
    app_db: Callable[[], Any],
    dataset: Dataset,
    tree: Any,
) -> None:
    signed_in(client, login, "inspector_city")
    v2 = dataset.violations["v2"]
    response = post_decision(
        client,
        csrf_token,
        v2,
        decision="confirm",
        reason="verified",
        note="回拨核实，无人值守",
        expected_state="flagged",
    )
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/violations/{v2}")
    row = violation(app_db, v2)
    assert row.state == "confirmed"
    assert row.deduction == 0.5
    assert row.decided_by_id == tree.inspector_city.id
    assert row.decided_at == NOW
    assert row.decision_reason == "verified: 回拨核实，无人值守"

    [entry] = audit_entries(app_db, v2)
    assert entry.action == "confirm"
    assert entry.user_id == tree.inspector_city.id
    before, after = json.loads(entry.before or "{}"), json.loads(entry.after or "{}")
    assert before["state"] == "flagged" and before["deduction"] is None
    assert after["state"] == "confirmed" and after["deduction"] == 0.5
    assert after["decision_reason"] == "verified: 回拨核实，无人值守"
    assert after["decided_by_id"] == tree.inspector_city.id

    page = client.get(f"/violations/{v2}").get_data(as_text=True)
    assert 'data-state="confirmed"' in page
    assert "回拨核实，无人值守" in page
    assert "violation-history" in page


@BOTH_ENGINES
def test_inspector_dismisses_with_reason_and_the_report_follows(
    client: FlaskClient,
    login: Callable[..., Any],
    csrf_token: Callable[..., str],
    app_db: Callable[[], Any],
    dataset: Dataset,
    tree: Any,
) -> None:
    signed_in(client, login, "inspector_city")

    def unit_a() -> list[str]:
        html = client.get(f"/reports/missed?month=2026-11&unit={tree.a.id}").get_data(as_text=True)
        return next(cells for level, cells in summary_from_page(html) if level == "unit")

    assert unit_a()[-2:] == ["2.5", "7.5"]
    v1 = dataset.violations["v1"]  # confirmed, 0.5
    response = post_decision(
        client, csrf_token, v1, decision="dismiss", reason="line_fault", expected_state="confirmed"
    )
    assert response.status_code == 302
    row = violation(app_db, v1)
    assert (row.state, row.deduction, row.decision_reason) == ("dismissed", None, "line_fault")
    [entry] = audit_entries(app_db, v1)
    assert entry.action == "dismiss"
    assert json.loads(entry.before or "{}")["state"] == "confirmed"
    assert json.loads(entry.after or "{}")["state"] == "dismissed"
    assert unit_a()[-2:] == ["2.0", "8.0"]

    # confirming the flagged one takes its points from the table
    post_decision(
        client, csrf_token, dataset.violations["v2"], decision="confirm", reason="verified"
    )
    assert unit_a()[-2:] == ["2.5", "7.5"]


def test_decision_needs_a_valid_reason(
    client: FlaskClient,
    login: Callable[..., Any],
    csrf_token: Callable[..., str],
    app_db: Callable[[], Any],
    dataset: Dataset,
) -> None:
    signed_in(client, login, "inspector_city")
    v2 = dataset.violations["v2"]
    for data in (
        {"decision": "dismiss"},  # no reason
        {"decision": "dismiss", "reason": "other"},  # "other" needs a note
        {"decision": "confirm", "reason": "drill"},  # a dismissal reason
        {"decision": "delete", "reason": "drill"},
        {"decision": "dismiss", "reason": "drill", "note": "x" * 2001},
    ):
        response = post_decision(client, csrf_token, v2, **data)
        assert response.status_code == 400, data
        assert 'id="decision-error"' in response.get_data(as_text=True)
    assert violation(app_db, v2).state == "flagged"
    assert audit_entries(app_db, v2) == []

    response = post_decision(
        client, csrf_token, v2, decision="dismiss", reason="other", note="电话线路割接"
    )
    assert response.status_code == 302
    assert violation(app_db, v2).decision_reason == "other: 电话线路割接"


def test_stale_decision_is_refused(
    client: FlaskClient,
    login: Callable[..., Any],
    csrf_token: Callable[..., str],
    app_db: Callable[[], Any],
    dataset: Dataset,
) -> None:
    signed_in(client, login, "inspector_city")
    v2 = dataset.violations["v2"]
    first = post_decision(
        client, csrf_token, v2, decision="confirm", reason="verified", expected_state="flagged"
    )
    assert first.status_code == 302
    # a second inspector's form still showed "flagged"
    second = post_decision(
        client, csrf_token, v2, decision="dismiss", reason="drill", expected_state="flagged"
    )
    assert second.status_code == 409
    assert violation(app_db, v2).state == "confirmed"
    assert len(audit_entries(app_db, v2)) == 1


@pytest.mark.parametrize("username", ["officer_a", "admin_a", "officer_b"])
def test_duty_staff_cannot_rule(
    client: FlaskClient,
    login: Callable[..., Any],
    csrf_token: Callable[..., str],
    app_db: Callable[[], Any],
    dataset: Dataset,
    username: str,
) -> None:
    signed_in(client, login, username)
    v2 = dataset.violations["v2"]  # county A's
    token = csrf_token(client, "/violations")
    response = client.post(
        f"/violations/{v2}/decide",
        data={"csrf_token": token, "decision": "dismiss", "reason": "drill"},
    )
    assert response.status_code == 403
    assert violation(app_db, v2).state == "flagged"
    assert audit_entries(app_db, v2) == []
    if username != "officer_b":
        page = client.get(f"/violations/{v2}").get_data(as_text=True)
        assert 'id="dismiss-form"' not in page and 'id="confirm-form"' not in page


def test_decision_without_csrf_token_is_refused(
    client: FlaskClient, login: Callable[..., Any], app_db: Callable[[], Any], dataset: Dataset
) -> None:
    signed_in(client, login, "inspector_city")
    v2 = dataset.violations["v2"]
    response = client.post(
        f"/violations/{v2}/decide", data={"decision": "dismiss", "reason": "drill"}
    )
    assert response.status_code == 400
    assert violation(app_db, v2).state == "flagged"


# --------------------------------------------------------------------------- explaining


def test_unit_adds_an_explanation_but_inspector_does_not(
    client: FlaskClient,
    login: Callable[..., Any],
    csrf_token: Callable[..., str],
    app_db: Callable[[], Any],
    dataset: Dataset,
    tree: Any,
) -> None:
    v1 = dataset.violations["v1"]
    signed_in(client, login, "officer_a")
    page = client.get(f"/violations/{v1}").get_data(as_text=True)
    assert 'id="explain-form"' in page
    token = csrf_token(client, f"/violations/{v1}")
    text = "当晚线路检修，已报备 <b>电信</b>"
    response = client.post(
        f"/violations/{v1}/explain", data={"csrf_token": token, "explanation": text}
    )
    assert response.status_code == 302
    row = violation(app_db, v1)
    assert row.unit_explanation == text
    assert row.state == "confirmed"  # explaining is no ruling
    [entry] = audit_entries(app_db, v1)
    assert entry.action == "explain" and entry.user_id == tree.officer_a.id
    assert json.loads(entry.after or "{}")["unit_explanation"] == text
    page = client.get(f"/violations/{v1}").get_data(as_text=True)
    assert "&lt;b&gt;电信&lt;/b&gt;" in page and "<b>电信</b>" not in page  # escaped
    client.post("/logout", data={"csrf_token": csrf_token(client, "/violations")})

    for username in ("inspector_city", "officer_b"):
        fresh = client.application.test_client()
        signed_in(fresh, login, username)
        token = csrf_token(fresh, "/violations")
        response = fresh.post(
            f"/violations/{v1}/explain", data={"csrf_token": token, "explanation": "not mine"}
        )
        assert response.status_code == 403, username
    assert violation(app_db, v1).unit_explanation == text


# --------------------------------------------------------------------------- the list


def _listed(client: FlaskClient, query: str = "") -> list[int]:
    html = client.get(f"/violations{query}").get_data(as_text=True)
    rows = page_tables(html).get("violations", [])
    return [int(attrs["data-violation-id"]) for attrs, _ in rows if "data-violation-id" in attrs]


def test_list_filters_and_scope(
    client: FlaskClient, login: Callable[..., Any], dataset: Dataset, tree: Any
) -> None:
    v = dataset.violations
    signed_in(client, login, "inspector_city")
    everything = _listed(client)
    assert set(everything) == set(v.values())
    assert everything[0] == v["v9"]  # newest first (December)
    assert set(_listed(client, "?state=flagged")) == {v["v2"], v["v7"]}
    assert set(_listed(client, "?kind=unanswered&state=confirmed")) == {v["v1"], v["v9"]}
    assert set(_listed(client, f"?unit={tree.b.id}")) == {v["v7"], v["v8"]}
    line = dataset.lines["12345"]
    assert set(_listed(client, f"?line={line}&from=2026-11-01&to=2026-11-30")) == {
        v["v1"],
        v["v2"],
        v["v3"],
        v["v4"],
        v["v5"],
    }
    assert set(_listed(client, "?from=2026-12-01")) == {v["v9"]}
    assert set(_listed(client, "?kind=nonsense&from=garbage")) == set(v.values())

    other = client.application.test_client()
    signed_in(other, login, "officer_b")
    assert set(_listed(other)) == {v["v7"], v["v8"]}
    assert other.get(f"/violations/{v['v1']}").status_code == 403
    assert other.get("/violations/999999").status_code == 404


def test_list_pages_by_keyset(
    app: Flask,
    client: FlaskClient,
    login: Callable[..., Any],
    app_db: Callable[[], Any],
    tree: Any,
) -> None:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    with app_db() as session:
        for n in range(60):
            session.add(
                Violation(
                    dedupe_key=f"page:{n}",
                    kind="unanswered",
                    unit_id=tree.a.id,
                    # pairs share a time: the id breaks the tie
                    at=start + timedelta(minutes=n // 2),
                )
            )
    signed_in(client, login, "inspector_city")
    html = client.get("/violations").get_data(as_text=True)
    first = _listed(client)
    assert len(first) == 50
    token = html.split('rel="next" href="')[1].split('"')[0].replace("&amp;", "&")
    second = _listed(client, token[len("/violations") :])
    assert len(second) == 10
    assert not set(first) & set(second)
    with app_db() as session:
        expected = list(
            session.scalars(select(Violation.id).order_by(Violation.at.desc(), Violation.id.desc()))
        )
    assert first + second == expected
