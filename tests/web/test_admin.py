"""Admin pages: users and units, every change audited; the audit trail is read-only."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.security import check_password_hash

from callcenter.store.accounts import AuditEntry, User
from callcenter.store.org import Unit
from callcenter.web.audit import AuditTrailImmutable, audit, changed_fields, model_snapshot

from .conftest import Tree, extract_csrf_token, password_for


@pytest.fixture
def as_admin(client: FlaskClient, tree: Tree, login: Callable[..., Any]) -> FlaskClient:
    login(client, "admin")
    return client


def _token(client: FlaskClient, path: str = "/admin/") -> str:
    return extract_csrf_token(client.get(path).get_data(as_text=True))


def _post(client: FlaskClient, path: str, **data: Any) -> Any:
    return client.post(path, data={"csrf_token": _token(client), **data})


def _user(app_db: Callable[..., Any], username: str) -> User | None:
    with app_db() as session:
        found = session.scalars(select(User).where(User.username == username)).first()
        if found is not None:
            session.expunge(found)
        return found


def _entries(app_db: Callable[..., Any], entity: str, entity_id: int) -> list[AuditEntry]:
    with app_db() as session:
        entries = list(
            session.scalars(
                select(AuditEntry)
                .where(AuditEntry.entity == entity, AuditEntry.entity_id == str(entity_id))
                .order_by(AuditEntry.id)
            )
        )
        session.expunge_all()
        return entries


NEW_PASSWORD = secrets.token_urlsafe(12)  # per test run: no password committed


# --------------------------------------------------------------------------- users


BOTH_DATABASES = pytest.mark.parametrize(
    "web_db_url", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


@BOTH_DATABASES
def test_admin_creates_a_user_and_it_is_audited(
    as_admin: FlaskClient, tree: Tree, app_db: Callable[..., Any], login: Callable[..., Any]
) -> None:
    assert as_admin.get("/admin/users/new").status_code == 200
    response = _post(
        as_admin,
        "/admin/users/new",
        username="zhang.san",
        display_name="张三",
        role="officer",
        unit_id=tree.b.id,
        language="",
        password=NEW_PASSWORD,
        confirm=NEW_PASSWORD,
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    created = _user(app_db, "zhang.san")
    assert created is not None and created.unit_id == tree.b.id and created.role == "officer"
    assert created.password_hash.startswith("scrypt:")
    assert check_password_hash(created.password_hash, NEW_PASSWORD)
    (entry,) = _entries(app_db, "user", created.id)
    assert entry.action == "create" and entry.user_id == tree.admin.id
    assert entry.before is None and entry.remote_addr == "127.0.0.1"
    after = json.loads(entry.after or "")
    assert after["username"] == "zhang.san" and after["display_name"] == "张三"
    assert "password_hash" not in after and NEW_PASSWORD not in (entry.after or "")
    assert login(as_admin.application.test_client(), "zhang.san", NEW_PASSWORD).status_code == 302


def test_user_form_checks_its_input(as_admin: FlaskClient, tree: Tree) -> None:
    def create(**fields: Any) -> int:
        data = {
            "username": "new.user",
            "role": "officer",
            "unit_id": tree.a.id,
            "language": "",
            "password": NEW_PASSWORD,
            "confirm": NEW_PASSWORD,
            **fields,
        }
        return int(_post(as_admin, "/admin/users/new", **data).status_code)

    assert create(username="officer_a") == 400  # taken
    assert create(username="bad name!") == 400
    assert create(password="short", confirm="short") == 400
    assert create(confirm="something-else") == 400
    assert create(role="officer", unit_id="") == 400  # an officer needs a unit
    assert create(role="emperor") == 400
    assert create() == 302


def test_unit_admin_creates_staff_of_their_own_unit_only(
    client: FlaskClient, tree: Tree, login: Callable[..., Any], app_db: Callable[..., Any]
) -> None:
    login(client, "admin_a")
    page = client.get("/admin/users/new").get_data(as_text=True)
    assert tree.b.name not in page and 'value="admin"' not in page
    base = {"language": "", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    assert (
        _post(client, "/admin/users/new", username="u1", role="officer", unit_id=tree.b.id, **base)
    ).status_code == 400
    assert (
        _post(client, "/admin/users/new", username="u2", role="admin", unit_id=tree.a.id, **base)
    ).status_code == 400
    assert (
        _post(client, "/admin/users/new", username="u3", role="officer", unit_id=tree.a.id, **base)
    ).status_code == 302
    assert _user(app_db, "u1") is None and _user(app_db, "u2") is None
    created = _user(app_db, "u3")
    assert created is not None and created.unit_id == tree.a.id


def test_editing_role_and_unit_is_audited_with_before_and_after(
    as_admin: FlaskClient, tree: Tree, app_db: Callable[..., Any]
) -> None:
    url = f"/admin/users/{tree.officer_a.id}"
    response = _post(
        as_admin,
        url,
        username="officer_a",
        display_name="王五",
        role="unit_admin",
        unit_id=tree.b.id,
        language="en",
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    changed = _user(app_db, "officer_a")
    assert changed is not None and changed.role == "unit_admin" and changed.unit_id == tree.b.id
    (entry,) = _entries(app_db, "user", tree.officer_a.id)
    before, after = json.loads(entry.before or ""), json.loads(entry.after or "")
    assert entry.action == "update"
    assert (before["role"], after["role"]) == ("officer", "unit_admin")
    assert (before["unit_id"], after["unit_id"]) == (tree.a.id, tree.b.id)
    assert changed_fields(before, after) == ["display_name", "language", "role", "unit_id"]
    # The username cannot be changed.
    renamed = _post(as_admin, url, username="renamed", role="officer", unit_id=tree.a.id)
    assert renamed.status_code == 400


def test_deactivate_signs_the_user_out_and_is_audited(
    app: Flask, as_admin: FlaskClient, tree: Tree, app_db: Callable[..., Any],
    login: Callable[..., Any],
) -> None:  # fmt: skip
    officer = app.test_client()
    login(officer, "officer_b")
    assert officer.get("/account").status_code == 200
    response = _post(as_admin, f"/admin/users/{tree.officer_b.id}/deactivate")
    assert response.status_code == 302
    assert officer.get("/account").status_code == 302
    assert login(app.test_client(), "officer_b").status_code == 401
    assert _post(as_admin, f"/admin/users/{tree.officer_b.id}/activate").status_code == 302
    actions = [e.action for e in _entries(app_db, "user", tree.officer_b.id)]
    assert actions == ["login", "deactivate", "activate"]
    # Nobody deactivates themselves.
    assert _post(as_admin, f"/admin/users/{tree.admin.id}/deactivate").status_code == 400


def test_reset_password_and_unlock(
    app: Flask, as_admin: FlaskClient, tree: Tree, app_db: Callable[..., Any],
    login: Callable[..., Any],
) -> None:  # fmt: skip
    for _ in range(5):
        login(app.test_client(), "officer_a", "wrong-password")
    locked = _user(app_db, "officer_a")
    assert locked is not None and locked.locked_until is not None
    page = as_admin.get(f"/admin/users/{tree.officer_a.id}").get_data(as_text=True)
    assert f"/admin/users/{tree.officer_a.id}/unlock" in page
    assert _post(as_admin, f"/admin/users/{tree.officer_a.id}/unlock").status_code == 302
    assert login(app.test_client(), "officer_a").status_code == 302

    url = f"/admin/users/{tree.officer_a.id}/password"
    assert _post(as_admin, url, password="short", confirm="short").status_code == 400
    assert _post(as_admin, url, password=NEW_PASSWORD, confirm=NEW_PASSWORD).status_code == 302
    assert login(app.test_client(), "officer_a").status_code == 401
    assert login(app.test_client(), "officer_a", NEW_PASSWORD).status_code == 302
    entries = _entries(app_db, "user", tree.officer_a.id)
    reset = [e for e in entries if e.action == "password_reset"]
    assert len(reset) == 1 and NEW_PASSWORD not in (reset[0].after or "")
    assert "unlock" in [e.action for e in entries]


def test_user_list_filters(as_admin: FlaskClient, tree: Tree) -> None:
    page = as_admin.get(f"/admin/users?unit={tree.b.id}").get_data(as_text=True)
    assert "officer_b" in page and "officer_a" not in page
    page = as_admin.get("/admin/users?role=inspector").get_data(as_text=True)
    assert "inspector_city" in page and "officer_b" not in page


# --------------------------------------------------------------------------- units


@BOTH_DATABASES
def test_units_tree_and_editing(
    as_admin: FlaskClient, tree: Tree, app_db: Callable[..., Any]
) -> None:
    page = as_admin.get("/admin/units").get_data(as_text=True)
    assert page.index(tree.city.name) < page.index(tree.a.name)
    response = _post(
        as_admin,
        "/admin/units/new",
        name="甲县某镇 Town",
        parent_id=tree.a.id,
        timezone="Asia/Shanghai",
    )
    assert response.status_code == 302
    with app_db() as session:
        town = session.scalars(select(Unit).where(Unit.name == "甲县某镇 Town")).one()
        town_id = town.id
        assert town.parent_id == tree.a.id
    assert _entries(app_db, "unit", town_id)[0].action == "create"

    # A unit cannot move under its own descendant (no cycles), nor take a bad zone.
    url = f"/admin/units/{tree.a.id}"
    cycle = _post(as_admin, url, name=tree.a.name, parent_id=town_id, timezone="Asia/Shanghai")
    assert cycle.status_code == 400
    zone = _post(as_admin, url, name=tree.a.name, parent_id=tree.city.id, timezone="Mars/Base")
    assert zone.status_code == 400
    taken = _post(as_admin, url, name=tree.b.name, parent_id=tree.city.id, timezone="UTC")
    assert taken.status_code == 400
    moved = _post(as_admin, url, name=tree.a.name, parent_id="", timezone="Asia/Urumqi")
    assert moved.status_code == 302
    (entry,) = _entries(app_db, "unit", tree.a.id)
    assert json.loads(entry.before or "")["parent_id"] == tree.city.id
    assert json.loads(entry.after or "") == {
        "name": tree.a.name,
        "parent_id": None,
        "timezone": "Asia/Urumqi",
    }


def test_unit_admin_reads_their_unit_but_cannot_edit_units(
    client: FlaskClient, tree: Tree, login: Callable[..., Any]
) -> None:
    login(client, "admin_a")
    page = client.get("/admin/units").get_data(as_text=True)
    assert tree.a.name in page and tree.b.name not in page
    assert client.get(f"/admin/units/{tree.a.id}").status_code == 200
    token = _token(client)
    response = client.post(
        f"/admin/units/{tree.a.id}",
        data={"csrf_token": token, "name": "x", "parent_id": "", "timezone": "UTC"},
    )
    assert response.status_code == 403
    assert client.get("/admin/units/new").status_code == 403


# --------------------------------------------------------------------------- audit trail


def test_audit_trail_viewer_lists_and_shows_entries(
    as_admin: FlaskClient, tree: Tree, app_db: Callable[..., Any]
) -> None:
    _post(as_admin, f"/admin/users/{tree.officer_b.id}/deactivate")
    page = as_admin.get("/admin/audit").get_data(as_text=True)
    assert "deactivate" in page and "login" in page
    filtered = as_admin.get(f"/admin/audit?entity=user&entity_id={tree.officer_b.id}")
    assert "deactivate" in filtered.get_data(as_text=True)
    (entry,) = _entries(app_db, "user", tree.officer_b.id)
    detail = as_admin.get(f"/admin/audit/{entry.id}").get_data(as_text=True)
    assert "active" in detail and "officer_b" in detail
    assert as_admin.get("/admin/audit/999999").status_code == 404


def test_audit_trail_paginates(
    as_admin: FlaskClient, app: Flask, app_db: Callable[..., Any]
) -> None:
    with app.test_request_context("/"), app_db() as session:
        for i in range(120):
            audit("update", "thing", i, {"n": i}, {"n": i + 1}, user_id=None, session=session)
    first = as_admin.get("/admin/audit?entity=thing").get_data(as_text=True)
    assert first.count("thing #") == 50
    assert "thing #119" in first and "thing #69" not in first
    older = first.split('href="/admin/audit?')[-1]
    assert "before=" in older


def test_audit_trail_has_no_route_that_changes_it(app: Flask, as_admin: FlaskClient) -> None:
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("admin.audit"):
            assert rule.methods is not None
            assert rule.methods <= {"GET", "HEAD", "OPTIONS"}, rule
    token = _token(as_admin)
    for method in ("post", "put", "patch", "delete"):
        response = getattr(as_admin, method)("/admin/audit/1", data={"csrf_token": token})
        assert response.status_code == 405, method


@BOTH_DATABASES
def test_audit_entries_cannot_be_changed_or_deleted(
    app: Flask, tree: Tree, app_db: Callable[..., Any]
) -> None:
    with app.test_request_context("/"), app_db() as session:
        entry = audit("create", "thing", 1, None, {"a": 1}, user_id=None, session=session)
    with pytest.raises(AuditTrailImmutable), app_db() as session:
        session.get(AuditEntry, entry.id).after = "{}"
        session.flush()
    with pytest.raises(AuditTrailImmutable), app_db() as session:
        session.delete(session.get(AuditEntry, entry.id))
        session.flush()
    with app_db() as session:
        assert session.get(AuditEntry, entry.id).after == '{"a": 1}'


def test_audit_helpers(app: Flask, tree: Tree) -> None:
    from datetime import UTC, datetime

    snapshot = model_snapshot(tree.a, ["name", "parent_id", "created_at"])
    assert snapshot["name"] == tree.a.name and snapshot["parent_id"] == tree.city.id
    assert isinstance(snapshot["created_at"], str)
    with app.test_request_context("/", environ_base={"REMOTE_ADDR": "10.1.2.3"}):
        entry = audit("x", "y", 5, {"t": datetime(2026, 1, 1, tzinfo=UTC)}, None, user_id=7)
        assert entry.remote_addr == "10.1.2.3" and entry.user_id == 7
        assert entry.before == '{"t": "2026-01-01T00:00:00+00:00"}' and entry.after is None
        assert entry.entity_id == "5"


def test_admin_pages_render_for_admin(as_admin: FlaskClient, tree: Tree) -> None:
    for url in (
        "/admin/",
        "/admin/users",
        "/admin/users?inactive=1",
        "/admin/users/new",
        f"/admin/users/{tree.inspector_city.id}",
        "/admin/units",
        "/admin/units/new",
        f"/admin/units/{tree.city.id}",
        "/admin/audit",
        "/account",
    ):
        assert as_admin.get(url).status_code == 200, url


def test_password_for_helper_matches_tree(tree: Tree) -> None:
    assert tree.password("officer_a") == password_for("officer_a") == "pw-officer_a-123"
