"""The Flask console (installed as ``callcenter.web``): app factory and blueprint wiring.

One blueprint per console feature, each in its own package (``auth``, ``board``, ``calls``,
``log``, ``violations``, ``reports``, ``admin``); extensions live in ``extensions.py`` and
are bound here with ``init_app``. Models never call ``url_for`` or enqueue jobs.
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

BLUEPRINTS = ("auth", "board", "calls", "log", "violations", "reports", "admin")


class InsecureConfigError(RuntimeError):
    """The console refuses to run in production without its secrets."""


def create_app(
    config: Config | None = None,
    test_config: Mapping[str, Any] | None = None,
    *,
    production: bool = False,
) -> Flask:
    """Build the console. ``production`` refuses to start without ``web.secret_key``."""
    config = config or load_config()
    app = Flask(__name__, instance_path=str(config.instance_path.resolve()))
    app.config["CALLCENTER"] = config
    secret_key = config.web.secret_key
    if not secret_key:
        if production:
            raise InsecureConfigError(
                "web.secret_key is not set: set CALLCENTER_WEB__SECRET_KEY to a long random "
                "value (never commit it)"
            )
        secret_key = secrets.token_urlsafe(32)
        logger.warning("web.secret_key is not set: using a random key (sessions end on restart)")
    app.config.update(
        SECRET_KEY=secret_key,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=production,
        REMEMBER_COOKIE_HTTPONLY=True,
        PERMANENT_SESSION_LIFETIME=8 * 3600,  # one shift; sessions expire
        WTF_CSRF_TIME_LIMIT=8 * 3600,
        BABEL_DEFAULT_LOCALE=config.web.language,
        BABEL_DEFAULT_TIMEZONE=config.timezone,
        DATABASE_URL=config.database.url,
        REDIS_URL=config.redis.url,
        PRODUCTION=production,
    )
    if test_config:
        app.config.update(test_config)

    from callcenter.web import extensions

    extensions.init_app(app)
    for name in BLUEPRINTS:
        module = import_module(f"callcenter.web.{name}")
        app.register_blueprint(module.bp)
    from callcenter.web import errors

    errors.init_app(app)
    from flask_babel import get_locale

    app.jinja_env.globals["get_locale"] = get_locale
    return app
