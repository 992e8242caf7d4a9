"""SQLAlchemy models: calls, their legs, PBX outages.

The field names mirror the frozen records of :mod:`callcenter.tracking.records`. Alembic
migrations (``migrations/``) are the only source of the schema; ``check_drift`` in
:mod:`callcenter.store.migrate` keeps these models and the migrations in step.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    MetaData,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from callcenter.store.types import TYPE_ANNOTATION_MAP, Str16, Str32, Str64, Str255, utcnow
from callcenter.tracking.records import OUTCOMES

__all__ = ["NAMING_CONVENTION", "Base", "Call", "CallLeg", "Outage"]

# One naming scheme for constraints, so Alembic names them alike on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

DEFAULT_PBX = "default"
DIRECTIONS = ("inbound", "outbound", "internal")
CLOSED_BY = ("hangup", "idle")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = TYPE_ANNOTATION_MAP


class Call(Base):
    """One finished call: everything that happened under one Linkedid on one PBX."""

    __tablename__ = "calls"

    id: Mapped[int] = mapped_column(primary_key=True)
    pbx: Mapped[Str64] = mapped_column(default=DEFAULT_PBX)
    linkedid: Mapped[Str64]
    caller: Mapped[Str64 | None]
    caller_name: Mapped[Str255 | None]
    dialed: Mapped[Str64 | None]
    line: Mapped[Str64 | None]
    direction: Mapped[Str16]
    started_at: Mapped[datetime | None]
    answered_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    ring_seconds: Mapped[float | None]  # None: the transcript had no times
    talk_seconds: Mapped[float | None]
    outcome: Mapped[Str16]
    answered_by: Mapped[Str255 | None]
    forwarded_to: Mapped[Str64 | None]
    transferred_to: Mapped[Str255 | None]
    hangup_cause: Mapped[int | None]
    closed_by: Mapped[Str16]
    originated: Mapped[bool] = mapped_column(default=False)
    times_estimated: Mapped[bool] = mapped_column(default=False)
    # Set when the evaluation job has judged the call; the outbox sweep re-queues the rest.
    evaluated_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    legs: Mapped[list[CallLeg]] = relationship(
        back_populates="call",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="CallLeg.id",
    )

    __table_args__ = (
        UniqueConstraint("pbx", "linkedid"),
        CheckConstraint(_in("outcome", OUTCOMES), name="outcome"),
        CheckConstraint(_in("direction", DIRECTIONS), name="direction"),
        CheckConstraint(_in("closed_by", CLOSED_BY), name="closed_by"),
        Index("ix_calls_started_at", "started_at"),
        Index("ix_calls_line_started_at", "line", "started_at"),
        Index("ix_calls_caller_started_at", "caller", "started_at"),  # callbacks, search
        Index("ix_calls_outcome", "outcome"),
        # the outbox sweep: calls stored but never evaluated (few rows, kept small)
        Index(
            "ix_calls_unevaluated",
            "created_at",
            sqlite_where=text("evaluated_at IS NULL"),
            postgresql_where=text("evaluated_at IS NULL"),
        ),
    )

    def __repr__(self) -> str:
        return f"<Call {self.id} {self.pbx}/{self.linkedid} {self.outcome}>"


class CallLeg(Base):
    """One channel of a call, as the PBX saw it."""

    __tablename__ = "call_legs"

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"))
    uniqueid: Mapped[Str64]
    channel: Mapped[Str255]
    endpoint: Mapped[Str255]
    role: Mapped[Str16]
    created_at: Mapped[datetime | None]
    ringing_at: Mapped[datetime | None]
    answered_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    hangup_cause: Mapped[int | None]
    dial_status: Mapped[Str32 | None]

    call: Mapped[Call] = relationship(back_populates="legs")

    __table_args__ = (UniqueConstraint("call_id", "uniqueid"),)

    def __repr__(self) -> str:
        return f"<CallLeg {self.id} {self.channel} {self.role}>"


class Outage(Base):
    """A span when the listener could not see a PBX (AMI down); calls in it may be lost."""

    __tablename__ = "outages"

    id: Mapped[int] = mapped_column(primary_key=True)
    pbx: Mapped[Str64] = mapped_column(default=DEFAULT_PBX)
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    reason: Mapped[Str255] = mapped_column(default="")
    calls_lost_estimate: Mapped[int | None]

    __table_args__ = (Index("ix_outages_pbx_started_at", "pbx", "started_at"),)

    def __repr__(self) -> str:
        return f"<Outage {self.id} {self.pbx} {self.started_at}–{self.ended_at}>"


# The other model modules register their tables on Base.metadata when imported; importing
# them here makes the metadata complete wherever the models are used (migrations, drift).
from callcenter.store import accounts, duty, org  # noqa: E402, F401
