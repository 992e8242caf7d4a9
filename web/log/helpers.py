"""Small helpers the duty-log views share: the clock, the user, local times, safe redirects."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import redirect, request, url_for
from flask_babel import get_timezone
from flask_login import current_user
from werkzeug.wrappers import Response

from callcenter.store.org import Unit

__all__ = [
    "back",
    "now",
    "officer_name",
    "parse_day",
    "parse_local_datetime",
    "unit_zone",
    "user_id",
]


def now() -> datetime:
    return datetime.now(UTC)


def user_id() -> int | None:
    """The signed-in user's ``users.id``."""
    if not current_user or not current_user.is_authenticated:
        return None
    return int(current_user.id)


def officer_name() -> str:
    """How the signed-in user signs the duty log and handovers."""
    name = getattr(current_user, "display_name", "") or getattr(current_user, "username", "")
    return str(name or current_user.id)


def unit_zone(unit: Unit | None) -> ZoneInfo:
    """The unit's time zone, else the request's (the user's unit or the configured one)."""
    for name in (unit.timezone if unit is not None else None, str(get_timezone())):
        if name:
            try:
                return ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def parse_day(text: str | None, zone: ZoneInfo) -> date:
    """``YYYY-MM-DD``, else today in ``zone``."""
    if text:
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass
    return now().astimezone(zone).date()


def parse_local_datetime(text: str | None, zone: ZoneInfo) -> datetime | None:
    """A ``datetime-local`` input value (``2026-11-23T19:20``) in ``zone``, as UTC."""
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    return value.astimezone(UTC)


def _safe_next(target: str | None) -> str | None:
    """Only local paths: never redirect to another site (``//evil``, ``https://...``)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    return target


def back(default_endpoint: str, **values: Any) -> Response:
    """Redirect to the form's ``next`` (a local path) or to ``default_endpoint``."""
    target = _safe_next(request.form.get("next") or request.args.get("next"))
    return redirect(target or url_for(default_endpoint, **values))
