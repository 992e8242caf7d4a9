"""Console accounts and the audit trail (who changed what, when, before and after)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Text
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.store.models import Base, _in
from callcenter.store.types import Str16, Str32, Str64, Str255, utcnow

__all__ = ["ROLES", "AuditEntry", "User"]

ROLES = ("officer", "unit_admin", "inspector", "admin")


class User(Base):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint(_in("role", ROLES), name="role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[Str64] = mapped_column(unique=True)
    password_hash: Mapped[Str255]
    display_name: Mapped[Str64] = mapped_column(default="")
    role: Mapped[Str16]  # officer 值班员 | unit_admin | inspector 督查 | admin
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id", ondelete="RESTRICT"))
    language: Mapped[Str16] = mapped_column(default="zh_CN")
    active: Mapped[bool] = mapped_column(default=True)
    failed_logins: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None]
    last_login_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditEntry(Base):
    """Append-only: the console writes these and never offers to edit them."""

    __tablename__ = "audit_entries"
    __table_args__ = (Index("ix_audit_entries_entity", "entity", "entity_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    action: Mapped[Str32]  # create | update | delete | login | confirm | dismiss ...
    entity: Mapped[Str64]  # table or kind of thing
    entity_id: Mapped[Str64 | None]
    before: Mapped[str | None] = mapped_column(Text)  # JSON
    after: Mapped[str | None] = mapped_column(Text)  # JSON
    remote_addr: Mapped[Str64 | None]
