"""Console feature: auth (blueprint ``auth``): login, logout, sessions, language, account.

Every request needs a signed-in user except the endpoints in :data:`PUBLIC_ENDPOINTS`
(checked before each request, so a view that forgets ``@login_required`` is still locked).
Sessions end after ``SESSION_MAX_SECONDS`` (one shift, 8 h) and after
``SESSION_IDLE_SECONDS`` without a request (1 h).
"""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("auth", __name__)

from callcenter.web.auth import sessions, views  # noqa: E402,F401  (routes and hooks)
