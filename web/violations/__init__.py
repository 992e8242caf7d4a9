"""Console feature: violations (blueprint ``violations``)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("violations", __name__)
