"""Console feature: violations review (blueprint ``violations``).

Inspectors confirm or dismiss each flagged violation with a reason; the unit's staff add
their explanation; every decision is audited and drives the deductions in the reports.
"""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("violations", __name__)

from callcenter.web.violations import views  # noqa: E402,F401  (routes)
