"""Units (单位): the tree, to read for unit admins and to edit for admins."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import func, select
from werkzeug.wrappers import Response

from callcenter.store.accounts import User
from callcenter.store.org import DutyLine, Unit
from callcenter.web.admin import bp
from callcenter.web.admin.forms import UnitForm
from callcenter.web.audit import audit, model_snapshot
from callcenter.web.extensions import db
from callcenter.web.forms import choices
from callcenter.web.security import (
    ADMIN,
    UNIT_ADMIN,
    descendant_unit_ids,
    forget_unit_tree,
    require_visible,
    roles_required,
    visible_unit_ids,
)

UNIT_FIELDS = ("name", "parent_id", "timezone")


@dataclass
class Node:
    unit: Unit
    users: int = 0
    lines: int = 0
    children: list[Node] = field(default_factory=list)


def unit_tree(visible: set[int]) -> list[Node]:
    """The visible units as a forest: a unit whose parent is hidden is a root."""
    units = list(db().scalars(select(Unit).where(Unit.id.in_(visible)).order_by(Unit.name)))
    user_counts = dict(
        db()
        .execute(
            select(User.unit_id, func.count())
            .where(User.active.is_(True), User.unit_id.in_(visible))
            .group_by(User.unit_id)
        )
        .all()
    )
    line_counts = dict(
        db()
        .execute(
            select(DutyLine.unit_id, func.count())
            .where(DutyLine.unit_id.in_(visible))
            .group_by(DutyLine.unit_id)
        )
        .all()
    )
    nodes = {
        u.id: Node(u, users=user_counts.get(u.id, 0), lines=line_counts.get(u.id, 0)) for u in units
    }
    roots: list[Node] = []
    for node in nodes.values():
        parent = nodes.get(node.unit.parent_id) if node.unit.parent_id is not None else None
        (parent.children if parent is not None else roots).append(node)
    return roots


@bp.get("/units")
@login_required
@roles_required(UNIT_ADMIN, ADMIN)
def units() -> str:
    return render_template(
        "admin/units.html", roots=unit_tree(visible_unit_ids(current_user)), can_edit=_is_admin()
    )


def _is_admin() -> bool:
    return bool(current_user.role == ADMIN)


def _parent_choices(form: UnitForm, exclude: int | None = None) -> None:
    """Every unit but ``exclude`` and its descendants (no cycles)."""
    banned = {exclude, *descendant_unit_ids(exclude)} if exclude is not None else set()
    pairs: list[tuple[Any, str]] = [("", _("— none (top level) —"))]
    for unit in db().scalars(select(Unit).order_by(Unit.name)):
        if unit.id not in banned:
            pairs.append((unit.id, unit.name))
    form.parent_id.choices = choices(pairs)


def _name_taken(name: str, unit_id: int | None) -> bool:
    query = select(Unit.id).where(Unit.name == name)
    if unit_id is not None:
        query = query.where(Unit.id != unit_id)
    return db().scalars(query).first() is not None


@bp.route("/units/new", methods=["GET", "POST"])
@login_required
@roles_required(ADMIN)
def unit_new() -> Response | str | tuple[str, int]:
    form = UnitForm()
    _parent_choices(form)
    if request.method == "GET":
        form.parent_id.data = request.args.get("parent", type=int)
    if form.validate_on_submit():
        name = (form.name.data or "").strip()
        if _name_taken(name, None):
            form.name.errors = [_("A unit with this name exists.")]
        else:
            unit = Unit(name=name, parent_id=form.parent_id.data, timezone=form.timezone.data)
            db().add(unit)
            db().flush()
            audit("create", "unit", unit.id, None, model_snapshot(unit, UNIT_FIELDS))
            db().commit()
            forget_unit_tree()
            flash(_("Unit %(name)s created.", name=unit.name), "success")
            return redirect(url_for("admin.units"))
    status = 400 if request.method == "POST" else 200
    return render_template("admin/unit_form.html", form=form, unit=None), status


@bp.route("/units/<int:unit_id>", methods=["GET", "POST"])
@login_required
@roles_required(UNIT_ADMIN, ADMIN)
def unit(unit_id: int) -> Response | str | tuple[str, int]:
    """A unit: its details (unit admins read their own), editable by admins."""
    found = db().get(Unit, unit_id)
    if found is None:
        abort(404)
    require_visible(found.id)
    if request.method == "POST" and not _is_admin():
        abort(403)
    form = UnitForm(obj=found)
    _parent_choices(form, exclude=found.id)
    if _is_admin() and form.validate_on_submit():
        name = (form.name.data or "").strip()
        if _name_taken(name, found.id):
            form.name.errors = [_("A unit with this name exists.")]
        else:
            before = model_snapshot(found, UNIT_FIELDS)
            found.name = name
            found.parent_id = form.parent_id.data
            found.timezone = str(form.timezone.data)
            after = model_snapshot(found, UNIT_FIELDS)
            if after != before:
                audit("update", "unit", found.id, before, after)
                db().commit()
                forget_unit_tree()
                flash(_("Saved."), "success")
            return redirect(url_for("admin.unit", unit_id=found.id))
    status = 400 if request.method == "POST" else 200
    staff = list(db().scalars(select(User).where(User.unit_id == found.id).order_by(User.username)))
    lines = list(
        db().scalars(select(DutyLine).where(DutyLine.unit_id == found.id).order_by(DutyLine.number))
    )
    parent = db().get(Unit, found.parent_id) if found.parent_id is not None else None
    return (
        render_template(
            "admin/unit_form.html",
            form=form,
            unit=found,
            parent=parent,
            staff=staff,
            lines=lines,
            can_edit=_is_admin(),
        ),
        status,
    )
