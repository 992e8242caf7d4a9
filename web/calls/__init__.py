"""Console feature: calls (blueprint ``calls``): the call list with filters and keyset
pagination, one call's timeline, click-to-call back."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("calls", __name__)

from callcenter.web.calls import views  # noqa: E402, F401  (registers the routes)
