"""Console feature: the live board (blueprint ``board``): duty lines now, officers on shift,
missed calls awaiting a call-back; kept current by server-sent events or polling."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("board", __name__)

from callcenter.web.board import views  # noqa: E402, F401  (registers the routes)
