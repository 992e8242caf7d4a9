"""The admin start page."""

from __future__ import annotations

from flask import render_template
from flask_login import current_user, login_required
from sqlalchemy import func, select

from callcenter.store.accounts import AuditEntry, User
from callcenter.store.org import Unit
from callcenter.web.admin import bp
from callcenter.web.extensions import db
from callcenter.web.security import ADMIN, UNIT_ADMIN, roles_required


@bp.get("/")
@login_required
@roles_required(UNIT_ADMIN, ADMIN)
def index() -> str:
    users = select(func.count()).select_from(User).where(User.active.is_(True))
    if current_user.role != ADMIN:
        users = users.where(User.unit_id == current_user.unit_id)
    counts = {
        "users": db().scalar(users) or 0,
        "units": db().scalar(select(func.count()).select_from(Unit)) or 0,
        "audit": db().scalar(select(func.count()).select_from(AuditEntry)) or 0,
    }
    return render_template("admin/index.html", counts=counts, is_admin=current_user.role == ADMIN)
