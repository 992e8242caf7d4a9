"""Language and time zone: per user, per browser (Accept-Language), and the Jinja filters.

Language, first match wins: the switcher's choice in this session → the user's saved
language → the browser's Accept-Language → ``web.language`` (zh_CN by default).

Times are stored in UTC and shown in a unit's time zone: ``{{ call.started_at|localtime }}``
uses the signed-in user's unit (else ``timezone`` from the config);
``{{ t|localtime(tz=unit.timezone) }}`` names the zone, ``{{ t|localtime('%H:%M') }}`` the
format; ``localdate`` gives the date only.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import Flask, current_app, has_request_context, request, session
from flask_babel import get_locale, get_timezone
from flask_login import current_user

__all__ = [
    "LANGUAGES",
    "LANGUAGE_NAMES",
    "current_language",
    "init_app",
    "localdate",
    "localtime",
    "select_locale",
    "select_timezone",
    "to_local",
]

LANGUAGES = ("zh_CN", "en")
LANGUAGE_NAMES = {"zh_CN": "中文", "en": "English"}
SESSION_LANGUAGE = "language"


def _default_language() -> str:
    return str(current_app.config.get("BABEL_DEFAULT_LOCALE", "zh_CN"))


def select_locale() -> str:
    if not has_request_context():
        return _default_language()
    chosen = session.get(SESSION_LANGUAGE)
    if chosen in LANGUAGES:
        return str(chosen)
    user_language = getattr(current_user, "language", None) if current_user else None
    if user_language in LANGUAGES:
        return str(user_language)
    best = request.accept_languages.best_match(["zh_CN", "zh", "en"])
    if best in ("zh_CN", "zh"):
        return "zh_CN"
    if best == "en":
        return "en"
    return _default_language()


def current_language() -> str:
    """The request's UI language as our code: ``"zh_CN"`` or ``"en"``.

    (Babel spells Simplified Chinese ``zh_Hans_CN``; the catalog lives in
    ``translations/zh/`` so every spelling finds it.)
    """
    locale = get_locale()
    return "zh_CN" if locale is not None and locale.language == "zh" else "en"


def select_timezone() -> str:
    """The signed-in user's unit's zone, else the configured ``timezone``."""
    zone = getattr(current_user, "timezone", None) if has_request_context() else None
    if zone:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            zone = None
    return str(zone or current_app.config["CALLCENTER"].timezone)


def _zone(tz: str | tzinfo | None) -> tzinfo:
    if isinstance(tz, tzinfo):
        return tz
    if tz:
        try:
            return ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return get_timezone() or UTC


def to_local(dt: datetime, tz: str | tzinfo | None = None) -> datetime:
    """``dt`` (aware; naive is taken as UTC) in ``tz`` or the request's zone."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(_zone(tz))


def localtime(
    dt: datetime | None, fmt: str = "%Y-%m-%d %H:%M:%S", tz: str | tzinfo | None = None
) -> str:
    """Jinja filter: a UTC time shown in the unit's zone ("" for none)."""
    if dt is None:
        return ""
    return to_local(dt, tz).strftime(fmt)


def localdate(dt: datetime | date | None, tz: str | tzinfo | None = None) -> str:
    """Jinja filter: the local date of a time ("" for none)."""
    if dt is None:
        return ""
    if not isinstance(dt, datetime):
        return dt.isoformat()
    return to_local(dt, tz).date().isoformat()


def now_utc() -> datetime:
    """The current time in UTC, for templates comparing stored times (``locked_until``)."""
    return datetime.now(UTC)


def init_app(app: Flask) -> None:
    app.jinja_env.filters["localtime"] = localtime
    app.jinja_env.filters["localdate"] = localdate
    app.jinja_env.globals["LANGUAGE_NAMES"] = LANGUAGE_NAMES
    app.jinja_env.globals["current_language"] = current_language
    app.jinja_env.globals["now_utc"] = now_utc
