"""Roles and unit scoping (一级督导一级): who may see, edit and rule on which unit.

Roles (``callcenter.store.accounts.ROLES``):

- ``officer`` 值班员 and ``unit_admin``: their own unit only (see and edit);
- ``inspector`` 督查: every unit *below* their own in the tree, read-only, and rules on
  those units' violations; never their own unit;
- ``admin``: everything (and rules on any unit but their own, if they have one).

Views combine ``flask_login.login_required`` with :func:`roles_required`, and check unit
scope with :func:`require_visible` (403) or build queries with :func:`unit_filter`::

    @bp.get("/lines/<int:line_id>")
    @login_required
    @roles_required("officer", "unit_admin", "inspector", "admin")
    def line(line_id: int) -> str:
        line = db().get(DutyLine, line_id) or abort(404)
        require_visible(line.unit_id)
        ...

Every page needs a signed-in user anyway (``auth`` checks before each request), so
``login_required`` is a second lock, not the only one.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, cast

from flask import abort, current_app, g
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import ColumnElement, select, true

from callcenter.store.accounts import ROLES
from callcenter.store.org import Unit
from callcenter.web.extensions import db, login_manager

__all__ = [
    "ADMIN",
    "ALL_ROLES",
    "INSPECTOR",
    "OFFICER",
    "ROLES",
    "STAFF_ROLES",
    "UNIT_ADMIN",
    "NavItem",
    "ancestor_unit_ids",
    "can_edit_unit",
    "can_rule_on",
    "can_see_unit",
    "descendant_unit_ids",
    "editable_unit_ids",
    "first_page",
    "forget_unit_tree",
    "has_endpoint",
    "nav_items",
    "require_editable",
    "require_rule_on",
    "require_visible",
    "role_label",
    "roles_required",
    "scope_or_404",
    "unit_filter",
    "visible_unit_ids",
]

OFFICER, UNIT_ADMIN, INSPECTOR, ADMIN = "officer", "unit_admin", "inspector", "admin"
ALL_ROLES: tuple[str, ...] = ROLES
STAFF_ROLES: tuple[str, ...] = (OFFICER, UNIT_ADMIN)  # a unit's own staff

F = TypeVar("F", bound=Callable[..., Any])


class RoleHolder(Protocol):
    """Anything with a role and a unit: the signed-in ``Account`` or a ``User`` row."""

    @property
    def role(self) -> str: ...

    @property
    def unit_id(self) -> int | None: ...


def _user(user: RoleHolder | None) -> RoleHolder | None:
    if user is not None:
        return user
    if not current_user or not current_user.is_authenticated:
        return None
    return cast(RoleHolder, current_user)


# --------------------------------------------------------------------------- decorators


def roles_required(*roles: str) -> Callable[[F], F]:
    """Only these roles may call the view: 403 for the others, login for anonymous users.

    Put it below ``@login_required``::

        @bp.get("/report")
        @login_required
        @roles_required("inspector", "admin")
        def report() -> str: ...
    """
    unknown = set(roles) - set(ROLES)
    if unknown or not roles:
        raise ValueError(f"roles_required: unknown roles {sorted(unknown)} (known: {ROLES})")

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not current_user or not current_user.is_authenticated:
                return login_manager.unauthorized()
            if current_user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        wrapped.roles_required = roles  # type: ignore[attr-defined]
        return cast(F, wrapped)

    return decorator


# --------------------------------------------------------------------------- the unit tree


def _parents() -> dict[int, int | None]:
    """``unit id -> parent id`` for every unit, read once per request."""
    cached: dict[int, int | None] | None = g.get("_unit_parents")
    if cached is None:
        rows = db().execute(select(Unit.id, Unit.parent_id)).all()
        cached = {unit_id: parent_id for unit_id, parent_id in rows}
        g._unit_parents = cached
    return cached


def forget_unit_tree() -> None:
    """Drop this request's cached tree (after creating or moving a unit)."""
    g.pop("_unit_parents", None)


def descendant_unit_ids(unit_id: int | None) -> set[int]:
    """Every unit below ``unit_id`` (children, grandchildren, ...), not the unit itself."""
    if unit_id is None:
        return set()
    children: dict[int, list[int]] = {}
    for child, parent in _parents().items():
        if parent is not None:
            children.setdefault(parent, []).append(child)
    found: set[int] = set()
    stack = list(children.get(unit_id, ()))
    while stack:
        current = stack.pop()
        if current in found:  # a cycle in bad data: stop, never loop
            continue
        found.add(current)
        stack.extend(children.get(current, ()))
    return found


def ancestor_unit_ids(unit_id: int | None) -> list[int]:
    """The units above ``unit_id``, nearest first (its parent, grandparent, ...)."""
    parents = _parents()
    chain: list[int] = []
    current = parents.get(unit_id) if unit_id is not None else None
    while current is not None and current not in chain and current != unit_id:
        chain.append(current)
        current = parents.get(current)
    return chain


# --------------------------------------------------------------------------- questions


def visible_unit_ids(user: RoleHolder | None = None) -> set[int]:
    """The units ``user`` (default: the signed-in user) may see.

    officer / unit_admin: their own unit; inspector: the units below their own (read-only);
    admin: every unit; anonymous: none.
    """
    user = _user(user)
    if user is None:
        return set()
    if user.role == ADMIN:
        return set(_parents())
    if user.role == INSPECTOR:
        return descendant_unit_ids(user.unit_id)
    if user.role in STAFF_ROLES and user.unit_id is not None:
        return {user.unit_id}
    return set()


def editable_unit_ids(user: RoleHolder | None = None) -> set[int]:
    """The units whose data ``user`` may change (duty log, lines ...): own unit; admin: all."""
    user = _user(user)
    if user is None:
        return set()
    if user.role == ADMIN:
        return set(_parents())
    if user.role in STAFF_ROLES and user.unit_id is not None:
        return {user.unit_id}
    return set()


def can_see_unit(user: RoleHolder | None, unit_id: int | None) -> bool:
    return unit_id is not None and unit_id in visible_unit_ids(user)


def can_edit_unit(user: RoleHolder | None, unit_id: int | None) -> bool:
    """The unit's own officer / unit_admin, or an admin."""
    user = _user(user)
    if user is None or unit_id is None:
        return False
    if user.role == ADMIN:
        return True
    return user.role in STAFF_ROLES and user.unit_id == unit_id


def can_rule_on(user: RoleHolder | None, unit_id: int | None) -> bool:
    """Confirm or dismiss the unit's violations: an inspector above it, or an admin.

    Never the unit's own staff (nobody rules on their own unit).
    """
    user = _user(user)
    if user is None or unit_id is None:
        return False
    if user.unit_id is not None and user.unit_id == unit_id:
        return False
    if user.role == ADMIN:
        return True
    return user.role == INSPECTOR and unit_id in descendant_unit_ids(user.unit_id)


def unit_filter(column: Any, user: RoleHolder | None = None) -> ColumnElement[bool]:
    """A WHERE clause limiting ``column`` (a unit id column) to the visible units."""
    user = _user(user)
    if user is not None and user.role == ADMIN:
        return true()
    ids = sorted(visible_unit_ids(user))
    return cast(ColumnElement[bool], column.in_(ids))


# --------------------------------------------------------------------------- guards


def require_visible(unit_id: int | None) -> int:
    """Abort 403 unless the signed-in user may see the unit (404 when there is no unit)."""
    if unit_id is None:
        abort(404)
    if not can_see_unit(None, unit_id):
        abort(403)
    return unit_id


def scope_or_404(unit_id: int | None) -> int:
    """Same as :func:`require_visible`: 404 for no unit, 403 for another's unit."""
    return require_visible(unit_id)


def require_editable(unit_id: int | None) -> int:
    """Abort 403 unless the signed-in user may change the unit's data."""
    if unit_id is None:
        abort(404)
    if not can_edit_unit(None, unit_id):
        abort(403)
    return unit_id


def require_rule_on(unit_id: int | None) -> int:
    """Abort 403 unless the signed-in user may rule on the unit's violations."""
    if unit_id is None:
        abort(404)
    if not can_rule_on(None, unit_id):
        abort(403)
    return unit_id


# --------------------------------------------------------------------------- navigation

ROLE_LABELS: dict[str, Any] = {
    OFFICER: _l("Duty officer"),
    UNIT_ADMIN: _l("Unit admin"),
    INSPECTOR: _l("Inspector"),
    ADMIN: _l("Administrator"),
}


def role_label(role: str) -> str:
    """The role's name in the request's language (``{{ role_label(user.role) }}``)."""
    label = ROLE_LABELS.get(role)
    return str(label) if label is not None else role


def has_endpoint(name: str) -> bool:
    """Whether the app has a view called ``name`` (for links to other features)."""
    return name in current_app.view_functions


@dataclass(frozen=True, slots=True)
class NavItem:
    endpoint: str
    label: Any  # a lazy string
    roles: tuple[str, ...] = ALL_ROLES


NAV: tuple[NavItem, ...] = (
    NavItem("board.index", _l("Live board")),
    NavItem("calls.index", _l("Calls")),
    NavItem("log.index", _l("Duty log")),
    NavItem("violations.index", _l("Violations")),
    NavItem("spotchecks.index", _l("Spot checks")),
    NavItem("reports.index", _l("Reports"), (UNIT_ADMIN, INSPECTOR, ADMIN)),
    NavItem("roster.index", _l("Roster")),
    NavItem("lines.index", _l("Duty lines"), (UNIT_ADMIN, ADMIN)),
    NavItem("admin.index", _l("Admin"), (UNIT_ADMIN, ADMIN)),
)


def nav_items(items: Iterable[NavItem] = NAV) -> list[NavItem]:
    """The nav entries the signed-in user gets: existing endpoints, allowed roles."""
    user = _user(None)
    if user is None:
        return []
    return [i for i in items if user.role in i.roles and has_endpoint(i.endpoint)]


def first_page() -> str | None:
    """The endpoint of the user's first nav entry (the landing page after login)."""
    items = nav_items()
    return items[0].endpoint if items else None
