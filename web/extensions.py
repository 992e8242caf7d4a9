"""The console's extensions and its per-request database session, bound by ``init_app``."""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app, g, has_request_context, request
from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_wtf import CSRFProtect
from sqlalchemy.orm import Session, sessionmaker

from callcenter.store.db import make_engine, make_session_factory, reading

login_manager = LoginManager()
csrf = CSRFProtect()
babel = Babel()
# No storage_uri here: a constructor value would win over RATELIMIT_STORAGE_URI (set in
# init_app from the Redis URL, so every gunicorn worker counts in the same place).
limiter = Limiter(key_func=get_remote_address, default_limits=[], key_prefix="callcenter-web")


def limiter_storage_uri(redis_url: str) -> str:
    """The Flask-Limiter storage for a Redis URL (``memory://`` without one)."""
    if not redis_url:
        return "memory://"
    if redis_url.startswith("unix://"):  # the embedded Redis listens on a unix socket
        return "redis+unix://" + redis_url[len("unix://") :]
    return redis_url


def init_app(app: Flask) -> None:
    engine = make_engine(app.config["DATABASE_URL"])
    app.extensions["callcenter.sessions"] = make_session_factory(engine)
    app.extensions["callcenter.reading_sessions"] = make_session_factory(reading(engine))
    app.extensions["callcenter.engine"] = engine
    app.teardown_appcontext(_close_session)
    login_manager.init_app(app)
    csrf.init_app(app)
    # The limiter is one object for every app in the process: say "enabled" each time, or
    # an app that turned it off would leave it off for the next one (tests).
    app.config.setdefault("RATELIMIT_ENABLED", True)
    if not app.config.get("RATELIMIT_STORAGE_URI"):
        app.config["RATELIMIT_STORAGE_URI"] = limiter_storage_uri(app.config.get("REDIS_URL") or "")
    limiter.init_app(app)
    from callcenter.web.i18n import select_locale, select_timezone

    babel.init_app(app, locale_selector=select_locale, timezone_selector=select_timezone)


def sessions() -> sessionmaker[Session]:
    factory: sessionmaker[Session] = current_app.extensions["callcenter.sessions"]
    return factory


def reading_sessions() -> sessionmaker[Session]:
    """Sessions for work that only reads (:func:`callcenter.store.db.reading`)."""
    factory: sessionmaker[Session] = current_app.extensions["callcenter.reading_sessions"]
    return factory


def db() -> Session:
    """The request's database session (closed when the request ends; commit explicitly).

    A GET or HEAD request only reads (no view writes on them): on SQLite its session takes
    no write lock, so a long page (the month's report) does not hold up the listener and
    the workers storing and judging calls. Any other request's session writes as usual."""
    if "db_session" not in g:
        read_only = has_request_context() and request.method in ("GET", "HEAD")
        g.db_session = (reading_sessions() if read_only else sessions())()
    session: Session = g.db_session
    return session


def _close_session(_exc: Any) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.close()
