"""Users: list, create, edit (name, role, unit, language), deactivate, reset password, unlock.

An admin manages everyone; a unit admin manages the officers and unit admins of their own
unit (403 for anyone else). Every change is audited in the same transaction.
"""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select
from werkzeug.wrappers import Response

from callcenter.store.accounts import User
from callcenter.store.org import Unit
from callcenter.web.admin import bp
from callcenter.web.admin.forms import PasswordResetForm, UserForm
from callcenter.web.audit import audit, model_snapshot
from callcenter.web.auth.passwords import hash_password, password_problems
from callcenter.web.extensions import db
from callcenter.web.forms import choices
from callcenter.web.security import (
    ADMIN,
    ALL_ROLES,
    INSPECTOR,
    STAFF_ROLES,
    UNIT_ADMIN,
    role_label,
    roles_required,
)

USER_FIELDS = (
    "username",
    "display_name",
    "role",
    "unit_id",
    "language",
    "active",
    "locked_until",
)


def _is_admin() -> bool:
    return bool(current_user.role == ADMIN)


def assignable_roles() -> tuple[str, ...]:
    """The roles the signed-in user may give: admin any, unit admin their staff roles."""
    return ALL_ROLES if _is_admin() else STAFF_ROLES


def assignable_units() -> list[Unit]:
    query = select(Unit).order_by(Unit.name)
    if not _is_admin():
        query = query.where(Unit.id == current_user.unit_id)
    return list(db().scalars(query))


def managed_user(user_id: int) -> User:
    """The user, if the signed-in user may manage them (404 missing, 403 someone else's)."""
    user = db().get(User, user_id)
    if user is None:
        abort(404)
    if _is_admin():
        return user
    if user.unit_id is None or user.unit_id != current_user.unit_id or user.role not in STAFF_ROLES:
        abort(403)
    return user


def _fill_choices(form: UserForm) -> None:
    form.role.choices = choices((role, role_label(role)) for role in assignable_roles())
    units = assignable_units()
    pairs: list[tuple[Any, str]] = [(unit.id, unit.name) for unit in units]
    if _is_admin():
        pairs.insert(0, ("", "—"))
    form.unit_id.choices = choices(pairs)


def _check_role_unit(form: UserForm) -> bool:
    role, unit_id = form.role.data, form.unit_id.data
    if role in (*STAFF_ROLES, INSPECTOR) and unit_id is None:
        form.unit_id.errors = [*form.unit_id.errors, _("This role needs a unit.")]
        return False
    return True


@bp.get("/users")
@login_required
@roles_required(UNIT_ADMIN, ADMIN)
def users() -> str:
    query = select(User, Unit).outerjoin(Unit, Unit.id == User.unit_id)
    if not _is_admin():
        query = query.where(User.unit_id == current_user.unit_id)
    unit_filter = request.args.get("unit", type=int)
    if unit_filter is not None:
        query = query.where(User.unit_id == unit_filter)
    role_filter = request.args.get("role")
    if role_filter in ALL_ROLES:
        query = query.where(User.role == role_filter)
    if request.args.get("inactive") != "1":
        query = query.where(User.active.is_(True))
    rows = db().execute(query.order_by(Unit.name, User.username)).all()
    return render_template(
        "admin/users.html",
        rows=rows,
        units=assignable_units(),
        roles=assignable_roles(),
        unit_filter=unit_filter,
        role_filter=role_filter,
        show_inactive=request.args.get("inactive") == "1",
    )


@bp.route("/users/new", methods=["GET", "POST"])
@login_required
@roles_required(UNIT_ADMIN, ADMIN)
def user_new() -> Response | str | tuple[str, int]:
    form = UserForm()
    _fill_choices(form)
    if request.method == "GET" and not _is_admin():
        form.unit_id.data = current_user.unit_id
    if form.validate_on_submit() and _check_role_unit(form):
        username = (form.username.data or "").strip()
        password = form.password.data or ""
        problems = password_problems(password, username=username)
        exists = db().scalars(select(User.id).where(User.username == username)).first()
        if exists is not None:
            form.username.errors = [_("This username is taken.")]
        elif problems:
            form.password.errors = problems
        else:
            user = User(
                username=username,
                display_name=(form.display_name.data or "").strip() or username,
                role=form.role.data,
                unit_id=form.unit_id.data,
                language=form.language.data or "",
                password_hash=hash_password(password),
            )
            db().add(user)
            db().flush()
            audit("create", "user", user.id, None, model_snapshot(user, USER_FIELDS))
            db().commit()
            flash(_("User %(name)s created.", name=user.username), "success")
            return redirect(url_for("admin.user", user_id=user.id))
    status = 400 if request.method == "POST" else 200
    return render_template("admin/user_new.html", form=form), status


@bp.route("/users/<int:user_id>", methods=["GET", "POST"])
@login_required
@roles_required(UNIT_ADMIN, ADMIN)
def user(user_id: int) -> Response | str | tuple[str, int]:
    target = managed_user(user_id)
    form = UserForm(obj=target)
    del form.password, form.confirm
    form.username.render_kw = {"readonly": True}
    _fill_choices(form)
    if form.validate_on_submit() and _check_role_unit(form):
        if form.username.data != target.username:
            form.username.errors = [_("The username cannot be changed.")]
        elif target.id == current_user.id and form.role.data != target.role:
            form.role.errors = [_("You cannot change your own role.")]
        else:
            before = model_snapshot(target, USER_FIELDS)
            target.display_name = (form.display_name.data or "").strip() or target.username
            target.role = form.role.data
            target.unit_id = form.unit_id.data
            target.language = form.language.data or ""
            after = model_snapshot(target, USER_FIELDS)
            if after != before:
                audit("update", "user", target.id, before, after)
                db().commit()
                flash(_("Saved."), "success")
            return redirect(url_for("admin.user", user_id=target.id))
    status = 400 if request.method == "POST" else 200
    unit = db().get(Unit, target.unit_id) if target.unit_id is not None else None
    return (
        render_template(
            "admin/user.html",
            form=form,
            target=target,
            unit=unit,
            reset_form=PasswordResetForm(formdata=None),
        ),
        status,
    )


def _set_active(user_id: int, active: bool) -> Response:
    target = managed_user(user_id)
    if target.id == current_user.id:
        abort(400, description="You cannot deactivate yourself.")
    if target.active != active:
        before = model_snapshot(target, USER_FIELDS)
        target.active = active
        if active:
            target.failed_logins = 0
            target.locked_until = None
        audit(
            "activate" if active else "deactivate",
            "user",
            target.id,
            before,
            model_snapshot(target, USER_FIELDS),
        )
        db().commit()
    if active:
        flash(_("User %(name)s is active again.", name=target.username), "success")
    else:
        flash(_("User %(name)s is deactivated and signed out.", name=target.username), "success")
    return redirect(url_for("admin.user", user_id=target.id))


@bp.post("/users/<int:user_id>/deactivate")
@login_required
@roles_required(UNIT_ADMIN, ADMIN)
def user_deactivate(user_id: int) -> Response:
    return _set_active(user_id, False)


@bp.post("/users/<int:user_id>/activate")
@login_required
@roles_required(UNIT_ADMIN, ADMIN)
def user_activate(user_id: int) -> Response:
    return _set_active(user_id, True)


@bp.post("/users/<int:user_id>/unlock")
@login_required
@roles_required(UNIT_ADMIN, ADMIN)
def user_unlock(user_id: int) -> Response:
    target = managed_user(user_id)
    before = model_snapshot(target, USER_FIELDS)
    target.failed_logins = 0
    target.locked_until = None
    audit("unlock", "user", target.id, before, model_snapshot(target, USER_FIELDS))
    db().commit()
    flash(_("User %(name)s is unlocked.", name=target.username), "success")
    return redirect(url_for("admin.user", user_id=target.id))


@bp.post("/users/<int:user_id>/password")
@login_required
@roles_required(UNIT_ADMIN, ADMIN)
def user_password(user_id: int) -> Response | tuple[str, int]:
    """Set a new password (the user's sessions end: their session key changes)."""
    target = managed_user(user_id)
    form = PasswordResetForm()
    if form.validate_on_submit():
        problems = password_problems(form.password.data or "", username=target.username)
        if not problems:
            target.password_hash = hash_password(form.password.data or "")
            target.failed_logins = 0
            target.locked_until = None
            audit("password_reset", "user", target.id, None, {"password": "reset"})
            db().commit()
            flash(_("The password of %(name)s has been reset.", name=target.username), "success")
            return redirect(url_for("admin.user", user_id=target.id))
        form.password.errors = problems
    edit_form = UserForm(obj=target, formdata=None)
    del edit_form.password, edit_form.confirm
    edit_form.username.render_kw = {"readonly": True}
    _fill_choices(edit_form)
    unit = db().get(Unit, target.unit_id) if target.unit_id is not None else None
    page = render_template(
        "admin/user.html", form=edit_form, target=target, unit=unit, reset_form=form
    )
    return page, 400
