"""Console feature: admin (blueprint ``admin``)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("admin", __name__)
