"""The console's extensions and its per-request database session, bound by ``init_app``."""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app, g
from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_wtf import CSRFProtect
from sqlalchemy.orm import Session, sessionmaker

from callcenter.store.db import make_engine, make_session_factory

login_manager = LoginManager()
csrf = CSRFProtect()
babel = Babel()
limiter = Limiter(key_func=get_remote_address, default_limits=[], storage_uri="memory://")


def init_app(app: Flask) -> None:
    engine = make_engine(app.config["DATABASE_URL"])
    app.extensions["callcenter.sessions"] = make_session_factory(engine)
    app.extensions["callcenter.engine"] = engine
    app.teardown_appcontext(_close_session)
    login_manager.init_app(app)
    csrf.init_app(app)
    if app.config.get("RATELIMIT_STORAGE_URI") is None and app.config.get("REDIS_URL"):
        app.config["RATELIMIT_STORAGE_URI"] = app.config["REDIS_URL"]
    limiter.init_app(app)
    from callcenter.web.i18n import select_locale, select_timezone

    babel.init_app(app, locale_selector=select_locale, timezone_selector=select_timezone)


def sessions() -> sessionmaker[Session]:
    factory: sessionmaker[Session] = current_app.extensions["callcenter.sessions"]
    return factory


def db() -> Session:
    """The request's database session (closed when the request ends; commit explicitly)."""
    if "db_session" not in g:
        g.db_session = sessions()()
    session: Session = g.db_session
    return session


def _close_session(_exc: Any) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.close()
