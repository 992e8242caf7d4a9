"""Console feature: the duty log (blueprint ``log``): a day's entries, calls tied to entries,
incidents, call-back results, the shift handover."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("log", __name__)

from callcenter.web.log import handover, views  # noqa: E402, F401  (registers the routes)
