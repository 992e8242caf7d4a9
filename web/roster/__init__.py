"""Console feature: the duty roster 值班表 (blueprint ``roster``).

- every role reads the roster of the units it sees (officers and unit admins their own unit,
  inspectors the units below theirs, admins all): a week at a time, the shift on duty now
  highlighted;
- the unit's own ``unit_admin`` (and ``admin``) upload a CSV/XLSX roster (parsed by
  :mod:`callcenter.roster`, stored all or nothing by :mod:`callcenter.store.roster`) and
  add, edit and delete single shifts, checked the same way. Every change is audited.
"""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("roster", __name__, url_prefix="/roster")


from callcenter.web.roster import views  # noqa: E402,F401  (routes)
