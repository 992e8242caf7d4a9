"""The organisation: units (单位) in a tree, their duty lines (值班电话) and desk phones (座机)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from callcenter.store.models import Base
from callcenter.store.types import Str32, Str64, Str255, utcnow

__all__ = ["DeskPhone", "DutyLine", "Officer", "Unit"]


class Unit(Base):
    """An office whose duty room is monitored; units form a tree (city → county → town)."""

    __tablename__ = "units"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[Str255] = mapped_column(unique=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("units.id", ondelete="RESTRICT"))
    timezone: Mapped[Str64] = mapped_column(default="Asia/Shanghai")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    parent: Mapped[Unit | None] = relationship(remote_side="Unit.id", back_populates="children")
    children: Mapped[list[Unit]] = relationship(back_populates="parent")
    lines: Mapped[list[DutyLine]] = relationship(back_populates="unit")

    def __repr__(self) -> str:
        return f"<Unit {self.id} {self.name}>"


class DutyLine(Base):
    """A monitored number of a unit, with the policy it is judged by.

    Seeded from the config's ``[[lines]]``; the database wins afterwards (edited in the
    console).
    """

    __tablename__ = "duty_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[Str64] = mapped_column(unique=True)
    name: Mapped[Str255] = mapped_column(default="")
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id", ondelete="RESTRICT"), index=True)
    answer_within_seconds: Mapped[float] = mapped_column(default=15.0)
    offline_grace_seconds: Mapped[float] = mapped_column(default=300.0)
    unmanned_count: Mapped[int] = mapped_column(default=2)
    unmanned_window_seconds: Mapped[float] = mapped_column(default=1800.0)
    schedule: Mapped[Str255] = mapped_column(default="24h")  # callcenter.rules.schedule
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    unit: Mapped[Unit] = relationship(back_populates="lines")
    desk_phones: Mapped[list[DeskPhone]] = relationship(
        back_populates="line", cascade="all, delete-orphan"
    )

    def __repr__(self) -> str:
        return f"<DutyLine {self.number}>"


class DeskPhone(Base):
    """An endpoint allowed to answer a duty line (``SIP/duty1``, ``PJSIP/2001``)."""

    __tablename__ = "desk_phones"
    __table_args__ = (UniqueConstraint("line_id", "endpoint"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    line_id: Mapped[int] = mapped_column(ForeignKey("duty_lines.id", ondelete="CASCADE"))
    endpoint: Mapped[Str64] = mapped_column(index=True)

    line: Mapped[DutyLine] = relationship(back_populates="desk_phones")


class Officer(Base):
    """A person who can be on duty for a unit (the roster names them)."""

    __tablename__ = "officers"
    __table_args__ = (UniqueConstraint("unit_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"))
    name: Mapped[Str64]
    phone: Mapped[Str32] = mapped_column(default="")
    active: Mapped[bool] = mapped_column(default=True)
