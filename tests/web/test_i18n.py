"""i18n: Chinese by default, English per user or browser; the catalog is complete and
compiled; times are shown in the unit's time zone."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from flask import Flask, render_template_string
from flask.testing import FlaskClient
from sqlalchemy import select

from callcenter.store.accounts import AuditEntry, User
from callcenter.web.i18n import localdate, localtime, to_local

from .conftest import Tree, extract_csrf_token

ROOT = Path(__file__).resolve().parents[2]
CATALOG = ROOT / "web" / "translations" / "zh" / "LC_MESSAGES"


def _text(client: FlaskClient, path: str, **kwargs: Any) -> str:
    return client.get(path, **kwargs).get_data(as_text=True)


def test_chinese_is_the_default(client: FlaskClient) -> None:
    page = _text(client, "/login")
    assert '<html lang="zh-CN">' in page
    assert "登录" in page and "用户名" in page and "密码" in page


def test_english_by_accept_language(client: FlaskClient) -> None:
    page = _text(client, "/login", headers={"Accept-Language": "en-GB,en;q=0.8"})
    assert '<html lang="en">' in page and "Sign in" in page and "登录" not in page
    page = _text(client, "/login", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"})
    assert "登录" in page
    page = _text(client, "/login", headers={"Accept-Language": "fr-FR"})
    assert "登录" in page  # nothing we speak: the default


def test_switcher_changes_the_language_for_the_session(client: FlaskClient) -> None:
    token = extract_csrf_token(_text(client, "/login"))
    response = client.post(
        "/language", data={"csrf_token": token, "language": "en", "next": "/login"}
    )
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert "Sign in" in _text(client, "/login", headers={"Accept-Language": "zh-CN"})
    bad = client.post("/language", data={"csrf_token": token, "language": "xx"})
    assert bad.status_code == 302
    assert "Sign in" in _text(client, "/login")


def test_user_language_is_saved_and_follows_the_user(
    app: Flask,
    client: FlaskClient,
    tree: Tree,
    login: Callable[..., Any],
    app_db: Callable[..., Any],
) -> None:
    login(client, "admin")
    assert "用户" in _text(client, "/admin/users")
    token = extract_csrf_token(_text(client, "/admin/users"))
    client.post("/language", data={"csrf_token": token, "language": "en", "next": "/admin/users"})
    assert "<h1>Users</h1>" in _text(client, "/admin/users")
    with app_db() as session:
        saved = session.scalars(select(User.language).where(User.username == "admin")).one()
        assert saved == "en"
    # A new session (another browser with a Chinese Accept-Language) gets English too.
    other = app.test_client()
    login(other, "admin", headers={"Accept-Language": "zh-CN"})
    assert "<h1>Users</h1>" in _text(other, "/admin/users", headers={"Accept-Language": "zh-CN"})


def test_user_without_a_saved_language_follows_the_browser(
    client: FlaskClient, tree: Tree, login: Callable[..., Any]
) -> None:
    login(client, "admin_a")
    assert "<h1>Users</h1>" in _text(client, "/admin/users", headers={"Accept-Language": "en"})
    assert "<h1>用户</h1>" in _text(client, "/admin/users", headers={"Accept-Language": "zh"})


def test_role_names_and_messages_are_translated(
    client: FlaskClient, tree: Tree, login: Callable[..., Any]
) -> None:
    login(client, "admin")
    page = _text(client, "/admin/users")
    for chinese in ("值班员", "督查人员", "单位管理员", "系统管理员", "实时看板", "退出登录"):
        assert chinese in page, chinese
    assert login(client.application.test_client(), "admin", "wrong").status_code == 401


def test_catalog_is_complete_and_compiled() -> None:
    with (CATALOG / "messages.po").open("rb") as fh:
        po = read_po(fh)
    with (CATALOG / "messages.mo").open("rb") as fh:
        mo = read_mo(fh)
    untranslated = [m.id for m in po if m.id and (not m.string or m.fuzzy)]
    assert untranslated == []
    compiled = {m.id: m.string for m in mo if m.id}
    assert compiled == {m.id: m.string for m in po if m.id}, "run pybabel compile"


def test_every_ui_string_is_in_the_catalog(tmp_path: Path) -> None:
    """Each string wrapped in _() in web/ has a Chinese translation (pybabel extract)."""
    pot = tmp_path / "messages.pot"
    subprocess.run(
        [sys.executable, "-m", "babel.messages.frontend", "extract", "-F",
         str(ROOT / "babel.cfg"), "-k", "_l", "-k", "lazy_gettext", "-o", str(pot),
         str(ROOT / "web")],
        check=True,
        capture_output=True,
        timeout=120,
    )  # fmt: skip
    with pot.open("rb") as fh:
        wanted = {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(fh) if m.id}
    with (CATALOG / "messages.po").open("rb") as fh:
        have = {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(fh) if m.string}
    assert sorted(wanted - have) == [], "run the pybabel update/compile steps in babel.cfg"


def test_times_are_shown_in_the_unit_time_zone(
    app: Flask,
    client: FlaskClient,
    make_unit: Callable[..., Any],
    make_user: Callable[..., Any],
    login: Callable[..., Any],
    app_db: Callable[..., Any],
) -> None:
    utc = datetime(2026, 11, 23, 17, 30, tzinfo=UTC)
    with app.test_request_context("/"):
        assert localtime(utc) == "2026-11-24 01:30:00"  # Asia/Shanghai, the default
        assert localdate(utc) == "2026-11-24"
        assert localtime(utc, "%H:%M", tz="Asia/Urumqi") == "23:30"
        assert localtime(utc.replace(tzinfo=None)) == "2026-11-24 01:30:00"  # naive = UTC
        assert localtime(None) == "" and localdate(None) == ""
        assert to_local(utc, "UTC").hour == 17
        rendered = render_template_string("{{ t|localtime('%H:%M') }} {{ t|localdate }}", t=utc)
        assert rendered == "01:30 2026-11-24"
    # A user of a unit in another zone sees that zone (UTC+6, not Shanghai's UTC+8).
    west = make_unit("西部 West", timezone="Asia/Urumqi")
    make_user("west_admin", None, "admin", west)
    login(client, "west_admin")
    with app_db() as session:
        (at,) = session.scalars(select(AuditEntry.at).where(AuditEntry.action == "login"))
    page = _text(client, "/admin/audit")
    assert localtime(at, tz="Asia/Urumqi") in page
    assert localtime(at, tz="Asia/Shanghai") not in page
