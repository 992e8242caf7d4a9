"""Language and time zone per user / Accept-Language (zh_CN and English)."""

from __future__ import annotations

from flask import current_app, request
from flask_login import current_user

LANGUAGES = ("zh_CN", "en")


def select_locale() -> str:
    user_language = getattr(current_user, "language", None) if current_user else None
    if user_language in LANGUAGES:
        return str(user_language)
    best = request.accept_languages.best_match(["zh_CN", "zh", "en"]) if request else None
    if best in ("zh_CN", "zh"):
        return "zh_CN"
    if best == "en":
        return "en"
    return str(current_app.config.get("BABEL_DEFAULT_LOCALE", "zh_CN"))


def select_timezone() -> str:
    return str(current_app.config["CALLCENTER"].timezone)
