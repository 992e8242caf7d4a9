"""Console feature: spot checks 电话抽查 (blueprint ``spotchecks``).

- every role reads the spot checks of the units it sees (officers and unit admins their
  own unit, inspectors the units below theirs, admins all): when, which line, the result,
  the call the check made and the violation it raised;
- an inspector (督查) above a unit, or an admin, checks one of its lines now (a CSRF form,
  audited); nobody checks their own unit.

Planned checks come from the worker (:mod:`callcenter.workers.spot_checks`).
"""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("spotchecks", __name__, url_prefix="/spot-checks")


from callcenter.web.spotchecks import views  # noqa: E402,F401  (routes)
