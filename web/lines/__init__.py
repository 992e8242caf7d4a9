"""Console feature: duty lines and their policy 值班电话 (blueprint ``lines``).

The line policy (desk phones, answer-within threshold, offline grace, the unmanned
pattern, the monitored schedule, active) is seeded from the config once
(:mod:`callcenter.store.seed`, which never changes a stored line): afterwards the database
wins and it is edited here, by the unit's own ``unit_admin`` and by ``admin``; everyone who
sees the unit reads it. Every change is audited with before and after.
"""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("lines", __name__, url_prefix="/lines")


from callcenter.web.lines import views  # noqa: E402,F401  (routes)
