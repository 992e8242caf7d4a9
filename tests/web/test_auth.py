"""Accounts: login and logout, lockout, rate limit, session expiry, password changes, the
``callcenter user`` command, and a real browser signing in."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.security import check_password_hash

from callcenter.commands.user import user as user_command
from callcenter.store.accounts import AuditEntry, User
from callcenter.store.org import Unit
from callcenter.store.types import utcnow

from .conftest import Tree, extract_csrf_token, password_for


def _user(app_db: Callable[..., Any], username: str) -> User:
    with app_db() as session:
        found = session.scalars(select(User).where(User.username == username)).one()
        session.expunge(found)
        return found


def _audit(app_db: Callable[..., Any], **where: Any) -> list[AuditEntry]:
    with app_db() as session:
        query = select(AuditEntry).order_by(AuditEntry.id)
        for key, value in where.items():
            query = query.where(getattr(AuditEntry, key) == value)
        entries = list(session.scalars(query))
        session.expunge_all()
        return entries


# --------------------------------------------------------------------------- login, logout


def test_login_page_has_the_form_and_a_csrf_token(client: FlaskClient) -> None:
    page = client.get("/login").get_data(as_text=True)
    assert 'name="username"' in page and 'name="password"' in page
    assert extract_csrf_token(page)


def test_login_signs_in_and_logout_signs_out(
    client: FlaskClient, tree: Tree, login: Callable[..., Any], app_db: Callable[..., Any]
) -> None:
    response = login(client, "admin")
    assert response.status_code == 302
    page = client.get("/admin/", follow_redirects=True).get_data(as_text=True)
    assert 'href="/admin/"' in page  # the nav
    assert 'action="/logout"' in page
    user = _user(app_db, "admin")
    assert user.last_login_at is not None and user.failed_logins == 0
    assert [e.action for e in _audit(app_db, entity="user", entity_id=str(user.id))] == ["login"]

    token = extract_csrf_token(page)
    response = client.post("/logout", data={"csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert client.get("/admin/").status_code == 302
    assert client.get("/logout").status_code in (302, 405)  # never a GET logout


def test_login_goes_to_the_page_asked_for_but_never_off_site(
    client: FlaskClient, tree: Tree, csrf_token: Callable[..., str]
) -> None:
    for target, expected in (
        ("/admin/users", "/admin/users"),
        ("//evil.example/x", None),
        ("https://evil.example/", None),
        ("/\\evil.example", None),
    ):
        token = csrf_token(client, "/login")
        response = client.post(
            "/login",
            data={
                "username": "admin",
                "password": password_for("admin"),
                "csrf_token": token,
                "next": target,
            },
        )
        assert response.status_code == 302
        location = response.headers["Location"]
        if expected:
            assert location == expected
        else:
            assert "evil" not in location, location
        client.post("/logout", data={"csrf_token": csrf_token(client, "/admin/")})


def test_wrong_password_is_refused_and_counted(
    client: FlaskClient, tree: Tree, login: Callable[..., Any], app_db: Callable[..., Any]
) -> None:
    response = login(client, "officer_a", "wrong-password")
    assert response.status_code == 401
    assert client.get("/admin/").status_code == 302
    assert _user(app_db, "officer_a").failed_logins == 1
    response = login(client, "nobody", "wrong-password")
    assert response.status_code == 401  # the same answer for an unknown user


def test_inactive_user_cannot_sign_in(
    client: FlaskClient, make_user: Callable[..., Any], login: Callable[..., Any]
) -> None:
    make_user("gone", None, "admin", None, active=False)
    assert login(client, "gone").status_code == 401


@pytest.mark.parametrize(
    "web_db_url", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_account_locks_after_repeated_failures(
    client: FlaskClient, tree: Tree, login: Callable[..., Any], app_db: Callable[..., Any]
) -> None:
    for _ in range(5):
        assert login(client, "officer_a", "wrong-password").status_code == 401
    user = _user(app_db, "officer_a")
    assert user.locked_until is not None and user.locked_until > utcnow()
    # The right password does not help while locked.
    assert login(client, "officer_a").status_code == 401
    assert client.get("/admin/").status_code == 302
    actions = [e.action for e in _audit(app_db, entity_id=str(user.id))]
    assert actions == ["login_failed"] * 4 + ["lock"]
    # Once the lock has passed, the right password works again.
    with app_db() as session:
        session.get(User, user.id).locked_until = utcnow() - timedelta(seconds=1)
    assert login(client, "officer_a").status_code == 302


def test_login_is_rate_limited_per_address(
    client: FlaskClient, tree: Tree, login: Callable[..., Any]
) -> None:
    statuses = [login(client, f"nobody{i}", "wrong-password").status_code for i in range(12)]
    assert statuses[:10] == [401] * 10
    assert statuses[10:] == [429, 429]
    # Another address is not affected.
    other = login(client, "admin", environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert other.status_code == 302


# --------------------------------------------------------------------------- sessions


def _age_session(client: FlaskClient, **seconds: int) -> None:
    with client.session_transaction() as session:
        for key, age in seconds.items():
            session[key] = int(time.time()) - age


def test_session_ends_after_a_shift(
    app: Flask, client: FlaskClient, tree: Tree, login: Callable[..., Any]
) -> None:
    login(client, "admin")
    assert client.get("/admin/").status_code == 200
    _age_session(client, login_at=8 * 3600 + 5, seen_at=10)
    response = client.get("/admin/")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    assert client.get("/admin/").status_code == 302  # really signed out


def test_session_ends_when_idle(client: FlaskClient, tree: Tree, login: Callable[..., Any]) -> None:
    login(client, "admin")
    _age_session(client, login_at=600, seen_at=3600 + 5)
    response = client.get("/admin/", follow_redirects=True)
    assert response.request.path == "/login"


def test_activity_keeps_the_session_alive(
    client: FlaskClient, tree: Tree, login: Callable[..., Any]
) -> None:
    login(client, "admin")
    _age_session(client, login_at=7 * 3600, seen_at=3000)
    assert client.get("/admin/").status_code == 200
    with client.session_transaction() as session:
        assert int(time.time()) - session["seen_at"] < 5


def test_session_cookie_is_permanent_for_one_shift(
    client: FlaskClient, tree: Tree, login: Callable[..., Any]
) -> None:
    response = login(client, "admin")
    cookie = response.headers["Set-Cookie"]
    assert "Expires=" in cookie and "HttpOnly" in cookie


def test_password_change_ends_the_other_sessions(
    app: Flask, tree: Tree, login: Callable[..., Any], app_db: Callable[..., Any]
) -> None:
    desk, phone = app.test_client(), app.test_client()
    login(desk, "officer_a")
    login(phone, "officer_a")
    token = extract_csrf_token(desk.get("/account").get_data(as_text=True))
    response = desk.post(
        "/account",
        data={
            "csrf_token": token,
            "current": password_for("officer_a"),
            "new": "a-new-long-password",
            "confirm": "a-new-long-password",
        },
    )
    assert response.status_code == 302
    assert desk.get("/account").status_code == 200  # this session continues
    assert phone.get("/account").status_code == 302  # the other one ended
    assert check_password_hash(_user(app_db, "officer_a").password_hash, "a-new-long-password")
    assert login(app.test_client(), "officer_a", "a-new-long-password").status_code == 302


def test_password_change_checks_the_current_password_and_rules(
    client: FlaskClient, tree: Tree, login: Callable[..., Any]
) -> None:
    login(client, "officer_a")
    token = extract_csrf_token(client.get("/account").get_data(as_text=True))
    wrong = {
        "csrf_token": token,
        "current": "nope",
        "new": "long-enough-1",
        "confirm": "long-enough-1",
    }
    assert client.post("/account", data=wrong).status_code == 400
    short = {"csrf_token": token, "current": password_for("officer_a"), "new": "x", "confirm": "x"}
    assert client.post("/account", data=short).status_code == 400


def test_deactivated_user_is_signed_out(
    app: Flask, tree: Tree, login: Callable[..., Any], app_db: Callable[..., Any]
) -> None:
    officer = app.test_client()
    login(officer, "officer_a")
    assert officer.get("/account").status_code == 200
    with app_db() as session:
        session.get(User, tree.officer_a.id).active = False
    assert officer.get("/account").status_code == 302


def test_passwords_are_stored_hashed(
    client: FlaskClient, tree: Tree, app_db: Callable[..., Any]
) -> None:
    from callcenter.web.auth.passwords import hash_password, verify_password

    hashed = hash_password("correct horse battery")
    assert hashed.startswith("scrypt:") and "correct horse" not in hashed
    assert verify_password(hashed, "correct horse battery")
    assert not verify_password(hashed, "wrong")
    assert not verify_password(None, "anything")
    assert not verify_password("not-a-hash", "anything")
    assert _user(app_db, "admin").password_hash != password_for("admin")


# --------------------------------------------------------------------------- the CLI


@pytest.fixture
def cli_env(web_db_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        "CALLCENTER_DATABASE__URL": web_db_url,
        "CALLCENTER_INSTANCE_PATH": str(tmp_path / "instance"),
        "CALLCENTER_CONFIG": "",
    }


def test_user_create_from_stdin(
    cli_env: dict[str, str], app_db: Callable[..., Any], make_unit: Callable[..., Any]
) -> None:
    make_unit("甲县 County A")
    runner = CliRunner()
    result = runner.invoke(
        user_command,
        ["create", "li.wei", "--role", "officer", "--unit", "甲县 County A", "--name", "李伟",
         "--password-stdin"],
        input="a-long-password-1\n",
        env=cli_env,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    created = _user(app_db, "li.wei")
    assert created.role == "officer" and created.display_name == "李伟"
    assert check_password_hash(created.password_hash, "a-long-password-1")
    (entry,) = _audit(app_db, action="create", entity="user")
    assert entry.entity_id == str(created.id) and entry.remote_addr == "cli"
    assert "password" not in json.loads(entry.after or "{}")


def test_user_create_prompts_twice_on_a_terminal(
    cli_env: dict[str, str], app_db: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("callcenter.commands.user._interactive", lambda: True)
    runner = CliRunner()
    mismatch = runner.invoke(
        user_command,
        ["create", "root", "--role", "admin"],
        input="pw-first-try-1\npw-other-try-2\npw-first-try-1\npw-first-try-1\n",
        env=cli_env,
    )
    assert mismatch.exit_code == 0, mismatch.output
    assert "Repeat for confirmation" in mismatch.output
    assert "do not match" in mismatch.output  # asked again after a typo
    assert "pw-first-try-1" not in mismatch.output  # never echoed
    assert check_password_hash(_user(app_db, "root").password_hash, "pw-first-try-1")


def test_user_create_refuses_bad_input(
    cli_env: dict[str, str], make_unit: Callable[..., Any]
) -> None:
    make_unit("甲县 County A")
    runner = CliRunner()

    def run(*args: str, stdin: str = "a-long-password-1\n") -> Any:
        return runner.invoke(user_command, list(args), input=stdin, env=cli_env)

    assert "needs a unit" in run("create", "x1", "--role", "officer", "--password-stdin").output
    result = run("create", "x2", "--role", "officer", "--unit", "Nowhere", "--password-stdin")
    assert result.exit_code == 1 and "no unit named 'Nowhere'" in result.output
    short = run("create", "x3", "--role", "admin", "--password-stdin", stdin="short\n")
    assert short.exit_code == 1 and "password" in short.output
    assert run("create", "bad name", "--role", "admin", "--password-stdin").exit_code == 2
    assert run("create", "x4", "--role", "admin", "--password", "secret").exit_code == 2
    # No terminal and no --password-stdin: refuse rather than hang.
    assert run("create", "x5", "--role", "admin").exit_code == 2
    assert run("create", "dup", "--role", "admin", "--password-stdin").exit_code == 0
    again = run("create", "dup", "--role", "admin", "--password-stdin")
    assert again.exit_code == 1 and "exists already" in again.output


def test_user_create_can_create_the_unit_and_list_and_set_password(
    cli_env: dict[str, str], app_db: Callable[..., Any]
) -> None:
    runner = CliRunner()
    result = runner.invoke(
        user_command,
        ["create", "w1", "--role", "unit_admin", "--unit", "New Unit", "--create-unit",
         "--password-stdin"],
        input="a-long-password-1\n",
        env=cli_env,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    with app_db() as session:
        assert session.scalars(select(Unit).where(Unit.name == "New Unit")).one()
    listed = runner.invoke(user_command, ["list"], env=cli_env)
    assert "w1\tunit_admin\tNew Unit\tactive" in listed.output
    reset = runner.invoke(
        user_command,
        ["set-password", "w1", "--password-stdin"],
        input="another-password-2\n",
        env=cli_env,
    )
    assert reset.exit_code == 0, reset.output
    assert check_password_hash(_user(app_db, "w1").password_hash, "another-password-2")


# --------------------------------------------------------------------------- a real browser


def test_browser_login_through_the_form_shows_the_nav(
    page: Any, live_server: str, tree: Tree
) -> None:
    page.goto(f"{live_server}/admin/users")
    assert "/login" in page.url
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", password_for("admin"))
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url(f"{live_server}/admin/users")
    nav = page.locator("nav.nav")
    assert nav.locator("a[href='/admin/']").count() == 1
    assert "officer_a" in page.locator("table").inner_text()
    # Switch to English and back through the switcher.
    page.click("form.language button[value=en]")
    page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang") == "en"
    assert "Users" in page.locator("h1").inner_text()
    page.click("form.logout button[type=submit]")
    page.wait_for_url(f"{live_server}/login")
    page.goto(f"{live_server}/admin/")
    assert "/login" in page.url


def test_browser_officer_sees_no_admin_link(page: Any, live_server: str, tree: Tree) -> None:
    page.goto(f"{live_server}/login")
    page.fill("input[name=username]", "officer_a")
    page.fill("input[name=password]", password_for("officer_a"))
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_load_state()
    assert "/login" not in page.url
    assert page.locator("nav.nav a[href='/admin/']").count() == 0
    assert "officer_a" in page.locator(".who").inner_text()
    response = page.goto(f"{live_server}/admin/users")
    assert response is not None and response.status == 403
