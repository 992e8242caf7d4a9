"""Fixtures for the console: an app on a fresh migrated database, factories, a real browser.

- ``web_db_url``: a fresh SQLite file migrated to head, per test. For PostgreSQL as well,
  parametrize it indirectly: ``@pytest.mark.parametrize("web_db_url", ["sqlite",
  pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)``.
- ``app_config``: the ``test_config`` dict passed to ``create_app`` (override the fixture,
  or ``app_config.update(...)`` in a fixture that runs before ``app``). ``config_overrides``:
  overrides for ``load_config`` (e.g. ``{"redis.url": redis_url}``).
- ``app``, ``client``; ``csrf_token(client, path="/login")``: the token from a page;
  ``login(client, username, password)``: the real login form POST (with CSRF).
- ``make_unit(name, parent=None, timezone=...)``, ``make_user(username, password, role,
  unit, **fields)``: rows committed in the app's database; ``app_db()``: a context manager
  giving a session on that database (committed at the end).
- ``tree``: city → county A, county B; users ``officer_a``, ``admin_a`` (unit_admin of A),
  ``inspector_city``, ``officer_b``, ``admin`` (role admin, no unit); each password is
  ``password_for(username)`` = ``"pw-<username>-123"``.
- ``live_server`` (base URL of the app in a thread), ``browser`` (session: Chromium through
  Playwright, Debian's ``/usr/bin/chromium``), ``page`` (a fresh context and page per test).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session
from werkzeug.security import generate_password_hash
from werkzeug.serving import make_server

from callcenter.config import load_config
from callcenter.store.accounts import User
from callcenter.store.migrate import upgrade
from callcenter.store.org import Unit
from callcenter.web import create_app
from tests.browser import CHROMIUM, CHROMIUM_ARGS

SECRET_KEY = secrets.token_hex(32)  # made per test run: no key is committed

_CSRF_RE = re.compile(
    r'name="csrf_token"[^>]*value="([^"]+)"|name="csrf-token"\s+content="([^"]+)"'
)


def password_for(username: str) -> str:
    return f"pw-{username}-123"


def fast_hash(password: str) -> str:
    """A real werkzeug hash, cheap enough for factories (the app checks any werkzeug hash)."""
    return generate_password_hash(password, method="pbkdf2:sha256:1000")


# --------------------------------------------------------------------------- database


@pytest.fixture
def web_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database migrated to head (SQLite unless parametrized with "postgres")."""
    backend = getattr(request, "param", "sqlite")
    if backend == "sqlite":
        url = f"sqlite:///{(tmp_path / 'console.db').as_posix()}"
        upgrade(url)
        yield url
        return
    from tests.conftest import _FreshDatabases

    databases = _FreshDatabases("postgres", tmp_path)
    try:
        url = databases.new()
        upgrade(url)
        yield url
    finally:
        databases.drop_all()


# --------------------------------------------------------------------------- the app


@pytest.fixture
def app_config() -> dict[str, Any]:
    """``test_config`` for ``create_app``; CSRF stays ON (security tests need it)."""
    return {
        "TESTING": True,
        "SECRET_KEY": SECRET_KEY,
        "WTF_CSRF_ENABLED": True,
        "RATELIMIT_STORAGE_URI": "memory://",
    }


@pytest.fixture
def config_overrides() -> dict[str, Any]:
    return {}


@pytest.fixture
def app(
    web_db_url: str,
    tmp_path: Path,
    app_config: dict[str, Any],
    config_overrides: dict[str, Any],
) -> Iterator[Flask]:
    overrides: dict[str, Any] = {
        "database.url": web_db_url,
        "instance_path": str(tmp_path / "instance"),
        "web.secret_key": SECRET_KEY,
        **config_overrides,
    }
    config = load_config(None, env={}, overrides=overrides)
    flask_app = create_app(config, test_config=app_config)
    try:
        yield flask_app
    finally:
        flask_app.extensions["callcenter.engine"].dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def app_db(app: Flask) -> Callable[[], Any]:
    """``with app_db() as s:`` a session on the app's database, committed at the end."""

    @contextmanager
    def scope() -> Iterator[Session]:
        session: Session = app.extensions["callcenter.sessions"]()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    return scope


def extract_csrf_token(html: str) -> str:
    match = _CSRF_RE.search(html)
    if match is None:
        raise AssertionError("no CSRF token in the page")
    return match.group(1) or match.group(2)


@pytest.fixture
def csrf_token() -> Callable[..., str]:
    """``csrf_token(client, path="/login")``: fetch a page and return its CSRF token."""

    def fetch(client: FlaskClient, path: str = "/login") -> str:
        response = client.get(path, follow_redirects=True)
        return extract_csrf_token(response.get_data(as_text=True))

    return fetch


@pytest.fixture
def login(csrf_token: Callable[..., str]) -> Callable[..., Any]:
    """``login(client, username, password=None)``: POST the real login form; the response."""

    def do_login(
        client: FlaskClient, username: str, password: str | None = None, **kwargs: Any
    ) -> Any:
        token = csrf_token(client, "/login")
        data = {
            "username": username,
            "password": password if password is not None else password_for(username),
            "csrf_token": token,
        }
        return client.post("/login", data=data, **kwargs)

    return do_login


# --------------------------------------------------------------------------- factories


@pytest.fixture
def make_unit(app_db: Callable[[], Any]) -> Callable[..., Unit]:
    def make(name: str, parent: Unit | None = None, **fields: Any) -> Unit:
        with app_db() as session:
            unit = Unit(name=name, parent_id=parent.id if parent else None, **fields)
            session.add(unit)
            session.flush()
            session.expunge(unit)
        return unit

    return make


@pytest.fixture
def make_user(app_db: Callable[[], Any]) -> Callable[..., User]:
    def make(
        username: str,
        password: str | None = None,
        role: str = "officer",
        unit: Unit | None = None,
        **fields: Any,
    ) -> User:
        with app_db() as session:
            user = User(
                username=username,
                password_hash=fast_hash(
                    password if password is not None else password_for(username)
                ),
                display_name=fields.pop("display_name", username),
                language=fields.pop("language", ""),  # "" = as the browser, like the console
                role=role,
                unit_id=unit.id if unit is not None else None,
                **fields,
            )
            session.add(user)
            session.flush()
            session.expunge(user)
        return user

    return make


@dataclass
class Tree:
    city: Unit
    a: Unit
    b: Unit
    officer_a: User
    admin_a: User
    inspector_city: User
    officer_b: User
    admin: User

    @staticmethod
    def password(username: str) -> str:
        return password_for(username)


@pytest.fixture
def tree(make_unit: Callable[..., Unit], make_user: Callable[..., User]) -> Tree:
    """City → county A, county B, with their staff, an inspector of the city, an admin."""
    city = make_unit("市政府 City")
    a = make_unit("甲县 County A", city)
    b = make_unit("乙县 County B", city)
    return Tree(
        city=city,
        a=a,
        b=b,
        officer_a=make_user("officer_a", password_for("officer_a"), "officer", a),
        admin_a=make_user("admin_a", password_for("admin_a"), "unit_admin", a),
        inspector_city=make_user(
            "inspector_city", password_for("inspector_city"), "inspector", city
        ),
        officer_b=make_user("officer_b", password_for("officer_b"), "officer", b),
        admin=make_user("admin", password_for("admin"), "admin", None),
    )


# --------------------------------------------------------------------------- browser


@pytest.fixture
def live_server(app: Flask) -> Iterator[str]:
    """The app served over real HTTP on 127.0.0.1 (a free port) in a thread."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Chromium from Debian (never ``playwright install``), headless, on a fresh profile.

    Playwright refuses ``--user-data-dir`` in ``launch(args=...)``: for a non-persistent
    browser it always passes a fresh temporary profile of its own, made in its driver's
    temporary folder. The driver is started with ``TMPDIR`` pointing at a new folder of
    ours, so that profile lives there and is removed with it.
    """
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    profile_root = Path(tempfile.mkdtemp(prefix="callcenter-chromium-"))
    saved = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = str(profile_root)
    try:
        playwright = sync_playwright().start()
    finally:
        if saved is None:
            del os.environ["TMPDIR"]
        else:
            os.environ["TMPDIR"] = saved
    try:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
    finally:
        playwright.stop()
        shutil.rmtree(profile_root, ignore_errors=True)


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A new browser context (own cookies, zh-CN) and page for this test."""
    context = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai")
    context.set_default_timeout(10_000)
    browser_page = context.new_page()
    try:
        yield browser_page
    finally:
        context.close()
