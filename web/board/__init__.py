"""Console feature: board (blueprint ``board``)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("board", __name__)
