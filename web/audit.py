"""The audit trail: who changed what, when, before and after (append-only).

Record a change in the same transaction as the change itself::

    before = model_snapshot(violation, VIOLATION_FIELDS)
    violation.state = "dismissed"
    audit("dismiss", "violation", violation.id, before, model_snapshot(violation, ...))
    db().commit()

Entries are never edited or deleted: the console has no route for it, and the ORM refuses
to UPDATE or DELETE an :class:`AuditEntry` (:class:`AuditTrailImmutable`).
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from flask import has_request_context, request
from flask_login import current_user
from sqlalchemy import event
from sqlalchemy.orm import Mapper, Session

from callcenter.store.accounts import AuditEntry
from callcenter.web.extensions import db

__all__ = [
    "AuditTrailImmutable",
    "audit",
    "changed_fields",
    "jsonable",
    "model_snapshot",
]

_CURRENT_USER: Any = object()  # "the signed-in user" (None would mean "nobody")


class AuditTrailImmutable(RuntimeError):
    """An attempt to change or delete an audit entry."""


def jsonable(value: Any) -> Any:
    """``value`` as something ``json.dumps`` writes faithfully."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [jsonable(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, set | frozenset) else items
    return str(value)


def model_snapshot(obj: Any, fields: Iterable[str]) -> dict[str, Any]:
    """The named attributes of ``obj`` as a JSON-ready dict (for ``before``/``after``)."""
    return {name: jsonable(getattr(obj, name)) for name in fields}


def changed_fields(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> list[str]:
    """The keys whose values differ between two snapshots (sorted)."""
    before = before or {}
    after = after or {}
    return sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))


def _dump(snapshot: Mapping[str, Any] | None) -> str | None:
    if snapshot is None:
        return None
    return json.dumps(jsonable(snapshot), ensure_ascii=False, sort_keys=True)


def audit(
    action: str,
    entity: str,
    entity_id: int | str | None,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    *,
    user_id: int | None = _CURRENT_USER,
    session: Session | None = None,
) -> AuditEntry:
    """Add an audit entry to ``db()`` (or ``session``); the caller commits with its change.

    ``who`` is the signed-in user unless ``user_id`` is given (``None``: the system);
    ``remote_addr`` is the request's client address.
    """
    if user_id is _CURRENT_USER:
        authenticated = bool(current_user) and current_user.is_authenticated
        user_id = int(current_user.id) if authenticated else None
    remote_addr = request.remote_addr if has_request_context() else None
    entry = AuditEntry(
        user_id=user_id,
        action=action[:32],
        entity=entity[:64],
        entity_id=None if entity_id is None else str(entity_id)[:64],
        before=_dump(before),
        after=_dump(after),
        remote_addr=(remote_addr or None) and remote_addr[:64],
    )
    (session if session is not None else db()).add(entry)
    return entry


@event.listens_for(AuditEntry, "before_update")
def _refuse_update(_mapper: Mapper[Any], _connection: Any, target: AuditEntry) -> None:
    raise AuditTrailImmutable(f"audit entry {target.id} cannot be changed")


@event.listens_for(AuditEntry, "before_delete")
def _refuse_delete(_mapper: Mapper[Any], _connection: Any, target: AuditEntry) -> None:
    raise AuditTrailImmutable(f"audit entry {target.id} cannot be deleted")
