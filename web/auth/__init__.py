"""Console feature: auth (blueprint ``auth``): login, logout, roles, scoping."""

from __future__ import annotations

from callcenter.web.extensions import db, login_manager
from flask import Blueprint

bp = Blueprint("auth", __name__)


@login_manager.user_loader
def load_user(user_id: str) -> object | None:
    from callcenter.store.accounts import User

    try:
        return db().get(User, int(user_id))
    except ValueError:
        return None
