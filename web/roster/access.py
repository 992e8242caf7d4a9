"""Who may change a unit's duty setup (its roster, its duty lines' policy), and the clock.

Reading follows the console's unit scope (:func:`callcenter.web.security.require_visible`:
own unit for officers and unit admins, the units below for inspectors, all for admins).
Changing is narrower than the duty log's :func:`~callcenter.web.security.can_edit_unit`:
only the unit's own ``unit_admin`` and ``admin`` — a duty officer reads the roster and the
line policy but does not set them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from flask import abort, current_app
from flask_login import current_user

from callcenter.roster import ShiftType, parse_shift_types
from callcenter.web.security import ADMIN, UNIT_ADMIN

__all__ = ["can_manage", "now", "require_manage", "shift_types"]


def can_manage(unit_id: int | None) -> bool:
    """The signed-in user may change the unit's roster and line policy."""
    if unit_id is None or not current_user or not current_user.is_authenticated:
        return False
    if current_user.role == ADMIN:
        return True
    return bool(current_user.role == UNIT_ADMIN and current_user.unit_id == unit_id)


def require_manage(unit_id: int | None) -> int:
    """Abort 403 unless the signed-in user may change the unit's setup (404: no unit)."""
    if unit_id is None:
        abort(404)
    if not can_manage(unit_id):
        abort(403)
    return unit_id


def now() -> datetime:
    """The current time, aware UTC; tests may set ``CLOCK`` (a callable) in the app config."""
    clock = current_app.config.get("CLOCK")
    moment: datetime = clock() if clock is not None else datetime.now(UTC)
    return moment.astimezone(UTC)


def shift_types() -> Mapping[str, ShiftType]:
    """The 班次 table: the defaults (白班, 夜班, 全天) plus the config's
    ``roster.shift_types`` where the config has that table (as ``callcenter roster import``)."""
    config = current_app.config["CALLCENTER"]
    configured = getattr(getattr(config, "roster", None), "shift_types", None) or {}
    return parse_shift_types(dict(configured))
