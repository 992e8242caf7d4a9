"""Console feature: log (blueprint ``log``)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("log", __name__)
