"""Login, logout, the landing page, the language switcher and the user's own account."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select
from werkzeug.wrappers import Response

from callcenter.store.accounts import User
from callcenter.store.org import Unit
from callcenter.store.types import utcnow
from callcenter.web.audit import audit
from callcenter.web.auth import bp
from callcenter.web.auth.account import Account
from callcenter.web.auth.forms import LanguageForm, LoginForm, PasswordChangeForm
from callcenter.web.auth.passwords import hash_password, password_problems, verify_password
from callcenter.web.auth.sessions import end_session, start_session
from callcenter.web.extensions import db, limiter
from callcenter.web.i18n import LANGUAGES
from callcenter.web.security import first_page


def _login_rate_limit() -> str:
    return str(current_app.config["LOGIN_RATE_LIMIT"])


def safe_next(target: str | None) -> str | None:
    """``target`` if it is a path on this site, else None (no open redirects)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


def home_url() -> str:
    endpoint = first_page()
    return url_for(endpoint) if endpoint else url_for("auth.home")


@bp.get("/home")
def home() -> Response | str:
    """The landing page: the user's first console page (the live board for duty staff).

    Not at ``/``: the live board owns that address.
    """
    endpoint = first_page()
    if endpoint:
        return redirect(url_for(endpoint))
    return render_template("auth/home.html")


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_rate_limit, methods=["POST"])
def login() -> Response | str | tuple[str, int]:
    if current_user.is_authenticated:
        return redirect(safe_next(request.args.get("next")) or home_url())
    form = LoginForm()
    if request.method == "GET":
        form.next.data = safe_next(request.args.get("next")) or ""
    if not form.validate_on_submit():
        status = 400 if request.method == "POST" else 200
        return render_template("auth/login.html", form=form), status

    username = (form.username.data or "").strip()
    password = form.password.data or ""
    session_db = db()
    user = session_db.scalars(select(User).where(User.username == username)).first()
    now = utcnow()
    if user is not None and user.locked_until is not None and user.locked_until > now:
        verify_password(None, password)  # same cost as a real check
        flash(_("Too many failed sign-ins: this account is locked for a while."), "error")
        return render_template("auth/login.html", form=form), 401

    if user is None or not user.active or not verify_password(user.password_hash, password):
        if user is not None and user.active:
            _count_failure(user)
        flash(_("Wrong username or password."), "error")
        return render_template("auth/login.html", form=form), 401

    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    audit("login", "user", user.id, user_id=user.id)
    session_db.commit()
    unit = session_db.get(Unit, user.unit_id) if user.unit_id is not None else None
    start_session(Account.from_user(user, unit))
    return redirect(safe_next(form.next.data) or home_url())


def _count_failure(user: User) -> None:
    config = current_app.config
    user.failed_logins = (user.failed_logins or 0) + 1
    after: dict[str, object] = {"failed_logins": user.failed_logins}
    action = "login_failed"
    if user.failed_logins >= int(config["LOGIN_MAX_FAILURES"]):
        user.locked_until = utcnow() + timedelta(seconds=float(config["LOGIN_LOCKOUT_SECONDS"]))
        user.failed_logins = 0
        after = {"locked_until": user.locked_until.isoformat()}
        action = "lock"
    audit(action, "user", user.id, None, after, user_id=None)
    db().commit()


@bp.post("/logout")
def logout() -> Response:
    if current_user.is_authenticated:
        audit("logout", "user", current_user.id)
        db().commit()
    end_session()
    flash(_("You have signed out."), "info")
    return redirect(url_for("auth.login"))


@bp.post("/language")
def language() -> Response:
    """Switch the language for this session (and save it for a signed-in user)."""
    form = LanguageForm()
    if form.validate_on_submit() and form.language.data in LANGUAGES:
        chosen = str(form.language.data)
        session["language"] = chosen
        if current_user.is_authenticated:
            user = db().get(User, current_user.id)
            if user is not None and user.language != chosen:
                audit("update", "user", user.id, {"language": user.language}, {"language": chosen})
                user.language = chosen
                db().commit()
    target = safe_next(form.next.data) or safe_next(_same_site_referrer())
    return redirect(target or url_for("auth.login"))


def _same_site_referrer() -> str | None:
    referrer = request.referrer
    if not referrer:
        return None
    parts = urlsplit(referrer)
    if parts.netloc and parts.netloc != request.host:
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


@bp.route("/account", methods=["GET", "POST"])
@login_required
def account() -> Response | str | tuple[str, int]:
    """The signed-in user's own page: who they are, and a password change."""
    form = PasswordChangeForm()
    if form.validate_on_submit():
        user = db().get(User, current_user.id)
        if user is None:  # pragma: no cover - the loader found it a moment ago
            return redirect(url_for("auth.login"))
        problems = password_problems(form.new.data or "", username=user.username)
        if not verify_password(user.password_hash, form.current.data or ""):
            form.current.errors = [_("The current password is wrong.")]
        elif problems:
            form.new.errors = problems
        else:
            user.password_hash = hash_password(form.new.data or "")
            audit("password", "user", user.id, None, {"password": "changed"})
            db().commit()
            unit = db().get(Unit, user.unit_id) if user.unit_id is not None else None
            start_session(Account.from_user(user, unit))  # the old sessions end
            flash(_("Your password has been changed."), "success")
            return redirect(url_for("auth.account"))
        return render_template("auth/account.html", form=form), 400
    return render_template("auth/account.html", form=form)
