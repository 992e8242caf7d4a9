"""The signed-in account: a read-only snapshot of the ``users`` row, reloaded every request.

Flask-Login keeps only :meth:`Account.get_id` in the session cookie: the user id and a
fingerprint of the password hash, so resetting a password ends every other session of that
user. The snapshot is not attached to a database session, so templates never trigger lazy
loads; change users through :class:`callcenter.store.accounts.User` and ``db()``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from callcenter.store.accounts import User
from callcenter.store.org import Unit

__all__ = ["Account", "session_key"]


def session_key(user: User) -> str:
    """A short fingerprint of the password hash (changes when the password changes)."""
    digest = hashlib.sha256(f"{user.id}:{user.password_hash}".encode()).hexdigest()
    return digest[:16]


@dataclass(frozen=True, slots=True)
class Account:
    """What Flask-Login's ``current_user`` is for a signed-in user."""

    id: int
    username: str
    display_name: str
    role: str  # officer 值班员 | unit_admin | inspector 督查 | admin
    unit_id: int | None
    unit_name: str
    timezone: str | None  # the unit's time zone; None: the configured default
    language: str  # "" = follow the browser (Accept-Language)
    active: bool
    key: str

    @classmethod
    def from_user(cls, user: User, unit: Unit | None) -> Account:
        return cls(
            id=user.id,
            username=user.username,
            display_name=user.display_name or user.username,
            role=user.role,
            unit_id=user.unit_id,
            unit_name=unit.name if unit is not None else "",
            timezone=unit.timezone if unit is not None else None,
            language=user.language or "",
            active=user.active,
            key=session_key(user),
        )

    # Flask-Login's user protocol.
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return f"{self.id}:{self.key}"

    # Role helpers.
    def has_role(self, *roles: str) -> bool:
        return self.role in roles

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def is_inspector(self) -> bool:
        return self.role == "inspector"
