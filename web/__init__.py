"""The Flask console (installed as ``callcenter.web``): app factory and blueprint wiring.

One blueprint per console feature, each in its own package (``auth``, ``board``, ``calls``,
``log``, ``violations``, ``reports``, ``roster``, ``lines``, ``admin``); extensions live in
``extensions.py`` and are bound here with ``init_app``. Models never call ``url_for`` or
enqueue jobs.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from importlib import import_module
from typing import Any

from flask import Flask

from callcenter.config import Config, load_config

logger = logging.getLogger(__name__)

BLUEPRINTS = (
    "auth", "board", "calls", "log", "violations", "spotchecks", "reports", "roster", "lines",
    "admin",
)  # fmt: skip

SESSION_MAX_SECONDS = 8 * 3600
SESSION_IDLE_SECONDS = 3600
MIN_SECRET_KEY_LENGTH = 24


class InsecureConfigError(RuntimeError):
    """The console refuses to run in production without its secrets."""


def create_app(
    config: Config | None = None,
    test_config: Mapping[str, Any] | None = None,
    *,
    production: bool = False,
) -> Flask:
    """Build the console. ``production`` refuses to start without ``web.secret_key``.

    Console settings (override any in ``test_config``): ``SESSION_MAX_SECONDS`` (8 h from
    sign-in), ``SESSION_IDLE_SECONDS`` (1 h without a request), ``LOGIN_RATE_LIMIT``
    (login POSTs per client address, ``"10 per minute"``), ``LOGIN_MAX_FAILURES`` (5 wrong
    passwords in a row lock the account) for ``LOGIN_LOCKOUT_SECONDS`` (15 min).
    """
    config = config or load_config()
    app = Flask(__name__, instance_path=str(config.instance_path.resolve()))
    app.config["CALLCENTER"] = config
    secret_key = config.web.secret_key
    if production and secret_key and len(secret_key) < MIN_SECRET_KEY_LENGTH:
        raise InsecureConfigError(
            f"web.secret_key is too short: use at least {MIN_SECRET_KEY_LENGTH} random "
            "characters (python -c 'import secrets; print(secrets.token_urlsafe(48))')"
        )
    if not secret_key:
        if production:
            raise InsecureConfigError(
                "web.secret_key is not set: set CALLCENTER_WEB__SECRET_KEY to a long random "
                "value (never commit it)"
            )
        secret_key = secrets.token_urlsafe(32)  # development only (production refused above)
        logger.warning("web.secret_key is not set: using a random key (sessions end on restart)")
    app.config.update(
        SECRET_KEY=secret_key,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=production,
        REMEMBER_COOKIE_HTTPONLY=True,
        PERMANENT_SESSION_LIFETIME=SESSION_MAX_SECONDS,  # one shift; sessions expire
        SESSION_MAX_SECONDS=SESSION_MAX_SECONDS,  # absolute, from sign-in
        SESSION_IDLE_SECONDS=SESSION_IDLE_SECONDS,  # without a request
        WTF_CSRF_TIME_LIMIT=SESSION_MAX_SECONDS,
        LOGIN_RATE_LIMIT="10 per minute",  # login POSTs per client address
        LOGIN_MAX_FAILURES=5,  # wrong passwords in a row before the account locks
        LOGIN_LOCKOUT_SECONDS=15 * 60,
        RATELIMIT_HEADERS_ENABLED=True,
        BABEL_DEFAULT_LOCALE=config.web.language,
        BABEL_DEFAULT_TIMEZONE=config.timezone,
        DATABASE_URL=config.database.url,
        REDIS_URL=config.redis.url,
        PRODUCTION=production,
    )
    if test_config:
        app.config.update(test_config)
        if "SESSION_MAX_SECONDS" in test_config and "PERMANENT_SESSION_LIFETIME" not in test_config:
            app.config["PERMANENT_SESSION_LIFETIME"] = app.config["SESSION_MAX_SECONDS"]

    from callcenter.web import extensions

    extensions.init_app(app)
    for name in BLUEPRINTS:
        module = import_module(f"callcenter.web.{name}")
        app.register_blueprint(module.bp)
    from callcenter.web import errors, i18n, security

    errors.init_app(app)
    i18n.init_app(app)
    from flask_babel import get_locale

    app.jinja_env.globals.update(
        get_locale=get_locale,
        has_endpoint=security.has_endpoint,
        nav_items=security.nav_items,
        can_edit_unit=security.can_edit_unit,
        can_rule_on=security.can_rule_on,
        role_label=security.role_label,
    )
    return app
