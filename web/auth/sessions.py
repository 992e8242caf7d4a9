"""Sessions: loading the signed-in account, the login wall, expiry, response headers."""

from __future__ import annotations

import hmac
import time

from flask import current_app, flash, jsonify, redirect, request, session, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_user, logout_user
from sqlalchemy import select
from werkzeug.wrappers import Response

from callcenter.store.accounts import User
from callcenter.store.org import Unit
from callcenter.web.auth import bp
from callcenter.web.auth.account import Account
from callcenter.web.extensions import login_manager, reading_sessions

__all__ = ["PUBLIC_ENDPOINTS", "end_session", "start_session"]

# Reachable without signing in. Everything else redirects to the login page.
PUBLIC_ENDPOINTS = frozenset({"auth.login", "auth.language", "static"})

LOGIN_AT = "login_at"
SEEN_AT = "seen_at"
SEEN_RESOLUTION_SECONDS = 30  # refresh ``seen_at`` at most this often (fewer cookies)

login_manager.login_view = "auth.login"
login_manager.login_message = _l("Please sign in to open this page.")
login_manager.login_message_category = "info"
login_manager.session_protection = "basic"


@login_manager.user_loader
def load_user(user_id: str) -> Account | None:
    """The account behind the session cookie, or None (signed out).

    Read in a short session of its own, so that a request that never touches ``db()`` (a
    live-board stream) holds no database transaction open; a reading one, so that no page
    view takes SQLite's write lock from the calls being stored.
    """
    raw_id, _, key = user_id.partition(":")
    try:
        uid = int(raw_id)
    except ValueError:
        return None
    with reading_sessions()() as session:
        row = session.execute(
            select(User, Unit).outerjoin(Unit, Unit.id == User.unit_id).where(User.id == uid)
        ).first()
        if row is None:
            return None
        user, unit = row
        if not user.active:
            return None
        account = Account.from_user(user, unit)
    if not hmac.compare_digest(account.key, key):  # the password changed since sign-in
        return None
    return account


@login_manager.unauthorized_handler
def unauthorized() -> Response | tuple[Response, int]:
    from callcenter.web.errors import wants_json

    if wants_json():
        response = jsonify(error="Unauthorized", message="sign in first", status=401)
        return response, 401
    if request.method == "GET" and request.endpoint not in (None, "auth.logout"):
        flash(str(login_manager.login_message), login_manager.login_message_category)
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    return redirect(url_for("auth.login"))


def start_session(account: Account) -> None:
    """Sign ``account`` in on a fresh session (no data carried over from before)."""
    language = session.get("language")
    session.clear()
    if language:
        session["language"] = language
    login_user(account, remember=False)
    session.permanent = True
    now = int(time.time())
    session[LOGIN_AT] = now
    session[SEEN_AT] = now


def end_session() -> None:
    logout_user()
    language = session.get("language")
    session.clear()
    if language:
        session["language"] = language


def _expired(now: float) -> bool:
    login_at = session.get(LOGIN_AT)
    seen_at = session.get(SEEN_AT)
    if not isinstance(login_at, int | float) or not isinstance(seen_at, int | float):
        return True
    config = current_app.config
    return now - login_at > float(config["SESSION_MAX_SECONDS"]) or now - seen_at > float(
        config["SESSION_IDLE_SECONDS"]
    )


@bp.before_app_request
def login_wall() -> Response | tuple[Response, int] | None:
    """End expired sessions; send anonymous requests for non-public pages to the login."""
    if request.endpoint == "static":  # no database round trip for stylesheets
        return None
    if current_user.is_authenticated:
        now = time.time()
        if _expired(now):
            end_session()
            flash(_l("Your session has expired; please sign in again."), "info")
        else:
            if now - float(session[SEEN_AT]) >= SEEN_RESOLUTION_SECONDS:
                session[SEEN_AT] = int(now)
            return None
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    return unauthorized()


@bp.after_app_request
def security_headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "script-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'; "
        "form-action 'self'; base-uri 'self'",
    )
    if request.endpoint != "static":
        headers.setdefault("Cache-Control", "no-store")
    return response
