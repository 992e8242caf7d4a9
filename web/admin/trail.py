"""The audit trail viewer: read-only (GET routes only; nothing edits or deletes entries)."""

from __future__ import annotations

import json
from typing import Any

from flask import abort, render_template, request, url_for
from flask_login import login_required
from sqlalchemy import select

from callcenter.store.accounts import AuditEntry, User
from callcenter.web.admin import bp
from callcenter.web.audit import changed_fields
from callcenter.web.extensions import db
from callcenter.web.security import ADMIN, roles_required

PAGE_SIZE = 50


def _load(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


@bp.app_template_filter("json_text")
def json_text(value: Any) -> str:
    """JSON as people read it (Chinese as written, not \\u escapes); autoescaped."""
    return json.dumps(value, ensure_ascii=False, indent=1, sort_keys=True)


def _changed(entry: AuditEntry) -> list[str]:
    before, after = _load(entry.before) or {}, _load(entry.after) or {}
    if isinstance(before, dict) and isinstance(after, dict):
        return changed_fields(before, after)
    return []


@bp.get("/audit")
@login_required
@roles_required(ADMIN)
def audit_trail() -> str:
    """Newest first, keyset pagination on the id (``?before=<id>``)."""
    filters = {
        "entity": (request.args.get("entity") or "").strip(),
        "entity_id": (request.args.get("entity_id") or "").strip(),
        "action": (request.args.get("action") or "").strip(),
        "user": (request.args.get("user") or "").strip(),
    }
    query = select(AuditEntry, User.username).outerjoin(User, User.id == AuditEntry.user_id)
    if filters["entity"]:
        query = query.where(AuditEntry.entity == filters["entity"])
    if filters["entity_id"]:
        query = query.where(AuditEntry.entity_id == filters["entity_id"])
    if filters["action"]:
        query = query.where(AuditEntry.action == filters["action"])
    if filters["user"]:
        query = query.where(User.username == filters["user"])
    before = request.args.get("before", type=int)
    if before is not None:
        query = query.where(AuditEntry.id < before)
    rows = db().execute(query.order_by(AuditEntry.id.desc()).limit(PAGE_SIZE + 1)).all()
    older_url = None
    if len(rows) > PAGE_SIZE:
        rows = rows[:PAGE_SIZE]
        args: dict[str, Any] = {k: v for k, v in filters.items() if v}
        older_url = url_for("admin.audit_trail", before=rows[-1][0].id, **args)
    entries = [
        {"entry": entry, "username": username, "changed": _changed(entry)}
        for entry, username in rows
    ]
    kept: dict[str, Any] = {k: v for k, v in filters.items() if v}
    entities = db().scalars(select(AuditEntry.entity).distinct().order_by(AuditEntry.entity))
    return render_template(
        "admin/audit.html",
        entries=entries,
        filters=filters,
        entities=list(entities),
        older_url=older_url,
        newer_url=url_for("admin.audit_trail", **kept) if before is not None else None,
    )


@bp.get("/audit/<int:entry_id>")
@login_required
@roles_required(ADMIN)
def audit_entry(entry_id: int) -> str:
    row = (
        db()
        .execute(
            select(AuditEntry, User.username)
            .outerjoin(User, User.id == AuditEntry.user_id)
            .where(AuditEntry.id == entry_id)
        )
        .first()
    )
    if row is None:
        abort(404)
    entry, username = row
    before, after = _load(entry.before), _load(entry.after)
    keys: list[str] = []
    if isinstance(before, dict) or isinstance(after, dict):
        b = before if isinstance(before, dict) else {}
        a = after if isinstance(after, dict) else {}
        keys = sorted(set(b) | set(a))
    else:
        b, a = {}, {}
    return render_template(
        "admin/audit_entry.html",
        entry=entry,
        username=username,
        before=before,
        after=after,
        keys=keys,
        b=b,
        a=a,
        changed=set(changed_fields(b, a)),
    )
