"""Security of the console: the login wall, CSRF, roles, unit scoping, escaping, headers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Blueprint, Flask
from flask.testing import FlaskClient
from flask_login import login_required
from sqlalchemy import select
from werkzeug.routing import AnyConverter, Rule, UUIDConverter
from werkzeug.routing.converters import NumberConverter

from callcenter.store.accounts import User
from callcenter.web import security
from callcenter.web.auth.account import Account
from callcenter.web.auth.sessions import PUBLIC_ENDPOINTS
from callcenter.web.extensions import db

from .conftest import Tree, extract_csrf_token


def _url(rule: Rule) -> str:
    """The rule's URL with a dummy value for each argument (``/calls/1``)."""
    values: dict[str, Any] = {}
    for name in rule.arguments:
        converter = rule._converters[name]  # type: ignore[attr-defined]
        numeric = isinstance(converter, NumberConverter)
        values[name] = 1 if numeric else ("0" * 32 if isinstance(converter, UUIDConverter) else "x")
        if isinstance(converter, AnyConverter):
            values[name] = next(iter(converter.items))  # type: ignore[attr-defined]
    built = rule.build(values, append_unknown=False)
    assert built is not None, rule.rule
    return built[1]


def _rules(app: Flask, method: str) -> list[Rule]:
    return [
        r
        for r in app.url_map.iter_rules()
        if method in (r.methods or set()) and r.endpoint not in PUBLIC_ENDPOINTS
    ]


# --------------------------------------------------------------------------- the login wall


def test_every_page_without_login_redirects_to_login(app: Flask, client: FlaskClient) -> None:
    rules = [r for r in _rules(app, "GET") if not r.arguments]
    assert any(r.endpoint == "admin.index" for r in rules)
    for rule in rules:
        response = client.get(rule.rule)
        assert response.status_code == 302, (rule.rule, response.status_code)
        assert response.headers["Location"].startswith("/login"), rule.rule


def test_pages_with_arguments_without_login_redirect_too(app: Flask, client: FlaskClient) -> None:
    for rule in _rules(app, "GET"):
        if rule.arguments:
            url = _url(rule)
            response = client.get(url)
            assert response.status_code == 302, (url, response.status_code)
            assert response.headers["Location"].startswith("/login"), url


def test_login_redirect_remembers_the_page(client: FlaskClient) -> None:
    response = client.get("/admin/users?role=officer")
    assert response.headers["Location"] == "/login?next=/admin/users?role%3Dofficer"


def test_unknown_addresses_also_ask_for_login(client: FlaskClient) -> None:
    assert client.get("/no/such/page").status_code == 302


def test_login_page_and_static_files_are_public(client: FlaskClient) -> None:
    assert client.get("/login").status_code == 200
    with client.get("/static/console.css") as response:
        assert response.status_code == 200


def test_anonymous_json_requests_get_401(client: FlaskClient) -> None:
    response = client.get("/admin/users", headers={"Accept": "application/json"})
    assert response.status_code == 401
    assert response.get_json()["status"] == 401


# --------------------------------------------------------------------------- CSRF


def test_post_without_csrf_token_is_refused(
    client: FlaskClient, tree: Tree, login: Callable[..., Any], app_db: Callable[..., Any]
) -> None:
    login(client, "admin")
    response = client.post(
        "/admin/users/new",
        data={"username": "eve", "role": "officer", "unit_id": tree.a.id, "password": "x" * 12},
    )
    assert response.status_code == 400
    with app_db() as session:
        assert session.scalars(select(User).where(User.username == "eve")).first() is None
    assert client.post("/logout").status_code == 400
    assert client.get("/admin/").status_code == 200  # still signed in


def test_every_post_route_refuses_a_missing_or_forged_token(
    app: Flask, client: FlaskClient, tree: Tree, login: Callable[..., Any]
) -> None:
    login(client, "admin")
    posts = _rules(app, "POST")
    assert any(r.endpoint == "auth.logout" for r in posts)
    for rule in posts:
        url = _url(rule)
        assert client.post(url, data={}).status_code == 400, url
        assert client.post(url, data={"csrf_token": "forged"}).status_code == 400, url


def test_login_itself_needs_the_csrf_token(client: FlaskClient, tree: Tree) -> None:
    response = client.post("/login", data={"username": "admin", "password": "pw-admin-123"})
    assert response.status_code == 400
    assert client.get("/admin/").status_code == 302


def test_a_token_from_another_session_is_refused(
    app: Flask, tree: Tree, login: Callable[..., Any]
) -> None:
    victim, attacker = app.test_client(), app.test_client()
    login(victim, "admin")
    token = extract_csrf_token(attacker.get("/login").get_data(as_text=True))
    response = victim.post("/logout", data={"csrf_token": token})
    assert response.status_code == 400


# --------------------------------------------------------------------------- roles


def test_officer_cannot_open_admin_pages(
    client: FlaskClient, tree: Tree, login: Callable[..., Any]
) -> None:
    login(client, "officer_a")
    for url in ("/admin/", "/admin/users", "/admin/units", "/admin/audit", "/admin/users/new"):
        assert client.get(url).status_code == 403, url
    assert client.get(f"/admin/users/{tree.officer_a.id}").status_code == 403


def test_inspector_cannot_open_admin_pages(
    client: FlaskClient, tree: Tree, login: Callable[..., Any]
) -> None:
    login(client, "inspector_city")
    assert client.get("/admin/users").status_code == 403
    assert client.get("/admin/audit").status_code == 403


def test_unit_admin_cannot_see_another_units_users_or_unit(
    client: FlaskClient, tree: Tree, login: Callable[..., Any], csrf_token: Callable[..., str]
) -> None:
    login(client, "admin_a")
    assert client.get(f"/admin/users/{tree.officer_a.id}").status_code == 200
    assert client.get(f"/admin/units/{tree.a.id}").status_code == 200
    assert client.get(f"/admin/users/{tree.officer_b.id}").status_code == 403
    assert client.get(f"/admin/users/{tree.inspector_city.id}").status_code == 403
    assert client.get(f"/admin/units/{tree.b.id}").status_code == 403
    assert client.get(f"/admin/units/{tree.city.id}").status_code == 403
    assert client.get("/admin/audit").status_code == 403
    token = csrf_token(client, "/admin/users")
    response = client.post(
        f"/admin/users/{tree.officer_b.id}/deactivate", data={"csrf_token": token}
    )
    assert response.status_code == 403
    listing = client.get("/admin/users").get_data(as_text=True)
    assert "officer_a" in listing and "officer_b" not in listing


def _add_role_pages(app: Flask) -> None:
    bp = Blueprint("roletest", __name__)

    @bp.get("/roletest/inspectors")
    @login_required
    @security.roles_required("inspector", "admin")
    def inspectors() -> str:
        return "inspectors only"

    @bp.get("/roletest/unit/<int:unit_id>")
    @login_required
    def unit_page(unit_id: int) -> str:
        security.scope_or_404(unit_id)
        return f"unit {unit_id}"

    app.register_blueprint(bp)


def test_roles_required_and_unit_scope_on_a_feature_page(
    app: Flask, tree: Tree, login: Callable[..., Any]
) -> None:
    _add_role_pages(app)
    officer, inspector = app.test_client(), app.test_client()
    login(officer, "officer_a")
    login(inspector, "inspector_city")
    assert officer.get("/roletest/inspectors").status_code == 403
    assert inspector.get("/roletest/inspectors").status_code == 200
    assert officer.get(f"/roletest/unit/{tree.a.id}").status_code == 200
    assert officer.get(f"/roletest/unit/{tree.b.id}").status_code == 403
    assert inspector.get(f"/roletest/unit/{tree.b.id}").status_code == 200
    assert inspector.get(f"/roletest/unit/{tree.city.id}").status_code == 403
    anonymous = app.test_client()
    assert anonymous.get("/roletest/inspectors").status_code == 302


def test_roles_required_rejects_unknown_roles() -> None:
    with pytest.raises(ValueError, match="unknown roles"):
        security.roles_required("superuser")


# --------------------------------------------------------------------------- unit scoping


def _account(user: Any) -> Account:
    return Account(
        id=user.id,
        username=user.username,
        display_name=user.username,
        role=user.role,
        unit_id=user.unit_id,
        unit_name="",
        timezone=None,
        language="",
        active=True,
        key="",
    )


@pytest.mark.parametrize(
    "web_db_url", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_supervision_runs_down_the_tree(
    app: Flask, tree: Tree, make_unit: Callable[..., Any], make_user: Callable[..., Any]
) -> None:
    town = make_unit("甲县某镇 Town under A", tree.a)
    inspector_a = make_user("inspector_a", None, "inspector", tree.a)
    with app.test_request_context("/"):
        officer_a = _account(tree.officer_a)
        inspector_city = _account(tree.inspector_city)
        admin = _account(tree.admin)
        insp_a = _account(inspector_a)
        assert security.visible_unit_ids(officer_a) == {tree.a.id}
        assert security.visible_unit_ids(_account(tree.admin_a)) == {tree.a.id}
        assert security.visible_unit_ids(inspector_city) == {tree.a.id, tree.b.id, town.id}
        assert security.visible_unit_ids(insp_a) == {town.id}
        assert security.visible_unit_ids(admin) == {tree.city.id, tree.a.id, tree.b.id, town.id}
        assert security.visible_unit_ids(None) == set()  # anonymous

        assert security.can_edit_unit(officer_a, tree.a.id)
        assert not security.can_edit_unit(officer_a, tree.b.id)
        assert not security.can_edit_unit(inspector_city, tree.a.id)  # read-only
        assert security.can_edit_unit(admin, tree.b.id)

        assert security.can_rule_on(inspector_city, tree.a.id)
        assert security.can_rule_on(inspector_city, town.id)
        assert not security.can_rule_on(inspector_city, tree.city.id)  # own unit
        assert not security.can_rule_on(officer_a, tree.a.id)  # never the unit's own staff
        assert not security.can_rule_on(_account(tree.admin_a), tree.a.id)
        assert not security.can_rule_on(insp_a, tree.b.id)  # not below A
        assert security.can_rule_on(admin, tree.a.id)

        assert security.descendant_unit_ids(tree.city.id) == {tree.a.id, tree.b.id, town.id}
        assert security.ancestor_unit_ids(town.id) == [tree.a.id, tree.city.id]


def test_unit_filter_limits_a_query(app: Flask, tree: Tree) -> None:
    from sqlalchemy import select

    from callcenter.store.org import Unit

    with app.test_request_context("/"):
        officer = _account(tree.officer_b)
        names = db().scalars(select(Unit.name).where(security.unit_filter(Unit.id, officer)))
        assert list(names) == [tree.b.name]
        everyone = db().scalars(select(Unit.id).where(security.unit_filter(Unit.id, None)))
        assert list(everyone) == []  # anonymous: nothing
        admin = _account(tree.admin)
        assert (
            len(list(db().scalars(select(Unit.id).where(security.unit_filter(Unit.id, admin)))))
            == 3
        )


# --------------------------------------------------------------------------- escaping, headers


def test_names_with_script_tags_are_escaped(
    client: FlaskClient, make_unit: Callable[..., Any], make_user: Callable[..., Any],
    login: Callable[..., Any],
) -> None:  # fmt: skip
    evil = make_unit('<script>alert("unit")</script>')
    make_user("mallory", None, "officer", evil, display_name="<script>alert(1)</script>")
    make_user("root", None, "admin", None)
    login(client, "mallory")
    page = client.get("/account").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    client.post("/logout", data={"csrf_token": extract_csrf_token(page)})
    login(client, "root")
    for url in ("/admin/units", "/admin/users"):
        body = client.get(url).get_data(as_text=True)
        assert "<script>alert(" not in body, url
        assert "&lt;script&gt;alert(" in body, url


def test_security_headers(client: FlaskClient) -> None:
    response = client.get("/login")
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["Cache-Control"] == "no-store"
    cookie = response.headers.get("Set-Cookie", "")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_production_refuses_to_start_without_a_secret(tmp_path: Any) -> None:
    from callcenter.config import load_config
    from callcenter.web import InsecureConfigError, create_app

    url = f"sqlite:///{tmp_path / 'x.db'}"
    config = load_config(None, env={}, overrides={"database.url": url})
    with pytest.raises(InsecureConfigError, match="secret_key is not set"):
        create_app(config, production=True)
    short = load_config(None, env={}, overrides={"database.url": url, "web.secret_key": "abc"})
    with pytest.raises(InsecureConfigError, match="too short"):
        create_app(short, production=True)
    good = load_config(None, env={}, overrides={"database.url": url, "web.secret_key": "k" * 40})
    app = create_app(good, production=True)
    assert app.config["SESSION_COOKIE_SECURE"] is True
    app.extensions["callcenter.engine"].dispose()


# --------------------------------------------------------------------------- callcenter web


def test_web_command_refuses_production_without_a_secret(tmp_path: Any) -> None:
    from click.testing import CliRunner

    from callcenter.commands.web import web

    env = {
        "CALLCENTER_INSTANCE_PATH": str(tmp_path),
        "CALLCENTER_WEB__SECRET_KEY": "",
        "CALLCENTER_CONFIG": "",
    }
    result = CliRunner().invoke(web, [], env=env)
    assert result.exit_code == 1 and "web.secret_key is not set" in result.output
    short = CliRunner().invoke(web, [], env={**env, "CALLCENTER_WEB__SECRET_KEY": "short"})
    assert short.exit_code == 1 and "too short" in short.output


@pytest.mark.timeout(90)
def test_web_command_serves_the_console_with_gunicorn(
    tmp_path: Any, web_db_url: str, make_user: Callable[..., Any]
) -> None:
    import http.cookiejar
    import os
    import socket
    import subprocess
    import sys
    import time
    import urllib.error
    import urllib.parse
    import urllib.request

    make_user("root", "pw-root-123", "admin", None)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "CALLCENTER_INSTANCE_PATH": str(tmp_path / "instance"),
        "CALLCENTER_DATABASE__URL": web_db_url,
        "CALLCENTER_WEB__SECRET_KEY": "s" * 40,
        "CALLCENTER_REDIS__URL": "",
        "CALLCENTER_CONFIG": "",
    }
    code = "from callcenter.commands.web import web; web()"
    args = ["--port", str(port), "--workers", "2", "--plain-http"]
    server = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                page = opener.open(f"{base}/login", timeout=5)
                break
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.2)
        assert page.headers["Server"].startswith("gunicorn")
        token = extract_csrf_token(page.read().decode())

        def post(password: str) -> Any:
            data = urllib.parse.urlencode(
                {"username": "root", "password": password, "csrf_token": token}
            ).encode()
            try:
                return opener.open(f"{base}/login", data=data, timeout=5)
            except urllib.error.HTTPError as exc:
                return exc

        assert post("wrong-password").status == 401  # counted in the embedded Redis
        signed_in = post("pw-root-123")
        assert signed_in.status == 200 and "/login" not in signed_in.url
        admin = opener.open(f"{base}/admin/users", timeout=5)
        assert "root" in admin.read().decode()
    finally:
        os.killpg(server.pid, 15)
        output = server.communicate(timeout=30)[0].decode(errors="replace")
    assert "Booting worker" in output, output
