"""Console feature: admin (blueprint ``admin``): users, units, and the audit trail (read-only).

- admin: every user and unit, the audit trail;
- unit_admin: the users of their own unit (officers and unit admins), the unit tree to read.

The audit trail has list and detail pages only: no route edits or deletes an entry.
"""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("admin", __name__, url_prefix="/admin")

from callcenter.web.admin import trail, units, users, views  # noqa: E402,F401  (routes)
