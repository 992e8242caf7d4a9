"""Console feature: reports (blueprint ``reports``): the missed-call report, its exports
(XLSX, CSV) and a print-ready page. The figures come from :mod:`callcenter.reports`."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("reports", __name__)

from callcenter.web.reports import views  # noqa: E402,F401  (routes)
