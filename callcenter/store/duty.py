"""Duty work: the roster (班次), device events, violations (违规), callbacks, the duty log
(值班日志), incidents (突发事件) with their reports, handovers (交接班) and spot checks (抽查).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from callcenter.store.models import Base, Call, _in
from callcenter.store.types import Str16, Str32, Str64, Str255, utcnow

__all__ = [
    "CALLBACK_STATES",
    "VIOLATION_KINDS",
    "VIOLATION_STATES",
    "Callback",
    "DeviceEvent",
    "Handover",
    "Incident",
    "IncidentReport",
    "LogEntry",
    "LogEntryCall",
    "Shift",
    "SpotCheck",
    "Violation",
    "ViolationCall",
]

VIOLATION_KINDS = (
    "unanswered", "slow_answer", "forwarded", "unmanned", "phone_offline", "forward_set",
    "dnd_set", "spot_check_failed", "late_report",
)  # fmt: skip
VIOLATION_STATES = ("flagged", "confirmed", "dismissed")
CALLBACK_STATES = ("open", "called_back", "reached", "excused")
DEVICE_EVENT_KINDS = ("status", "forward", "dnd")


class Shift(Base):
    """One roster line: a time span of a unit with its main and backup officer and leader."""

    __tablename__ = "shifts"
    __table_args__ = (
        UniqueConstraint("unit_id", "starts_at"),
        CheckConstraint("ends_at > starts_at", name="span"),
        Index("ix_shifts_unit_span", "unit_id", "starts_at", "ends_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"))
    day: Mapped[date]
    name: Mapped[Str32]  # 班次, e.g. 白班 / 夜班
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    main_officer: Mapped[Str64]  # 主班
    backup_officer: Mapped[Str64] = mapped_column(default="")  # 副班
    leader: Mapped[Str64] = mapped_column(default="")  # 带班领导
    phone: Mapped[Str32] = mapped_column(default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DeviceEvent(Base):
    """A desk phone's status or flag change as the listener saw it (judged by jobs)."""

    __tablename__ = "device_events"
    __table_args__ = (
        UniqueConstraint("pbx", "endpoint", "kind", "at", "state", "source", "contact"),
        CheckConstraint(_in("kind", DEVICE_EVENT_KINDS), name="kind"),
        Index("ix_device_events_endpoint_at", "endpoint", "at"),
        # the outbox sweep: device events stored but never evaluated
        Index(
            "ix_device_events_unevaluated",
            "created_at",
            sqlite_where=text("evaluated_at IS NULL"),
            postgresql_where=text("evaluated_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    pbx: Mapped[Str64] = mapped_column(default="default")
    endpoint: Mapped[Str64]
    kind: Mapped[Str16]  # status | forward | dnd
    state: Mapped[Str32]  # offline/online, on/off
    detail: Mapped[Str255] = mapped_column(default="")  # e.g. the forward target number
    source: Mapped[Str64] = mapped_column(default="")  # PeerStatus, AstDB CF/2001, ...
    contact: Mapped[Str255] = mapped_column(default="")  # the PJSIP contact URI, if any
    at: Mapped[datetime]
    evaluated_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Violation(Base):
    """A flagged lapse; an inspector confirms or dismisses it (with a reason)."""

    __tablename__ = "violations"
    __table_args__ = (
        CheckConstraint(_in("kind", VIOLATION_KINDS), name="kind"),
        CheckConstraint(_in("state", VIOLATION_STATES), name="state"),
        Index("ix_violations_unit_at", "unit_id", "at"),
        Index("ix_violations_state", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # what makes it unique, so a job run twice stores it once (e.g. "unanswered:call:12")
    dedupe_key: Mapped[Str255] = mapped_column(unique=True)
    kind: Mapped[Str32]
    state: Mapped[Str16] = mapped_column(default="flagged")
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id", ondelete="SET NULL"))
    line_id: Mapped[int | None] = mapped_column(ForeignKey("duty_lines.id", ondelete="SET NULL"))
    line_number: Mapped[Str64 | None]
    endpoint: Mapped[Str64 | None]
    at: Mapped[datetime]
    ended_at: Mapped[datetime | None]  # device-status periods
    duration_seconds: Mapped[float | None]
    detail: Mapped[str] = mapped_column(Text, default="")
    call_id: Mapped[int | None] = mapped_column(
        ForeignKey("calls.id", ondelete="SET NULL"), index=True
    )
    shift_id: Mapped[int | None] = mapped_column(ForeignKey("shifts.id", ondelete="SET NULL"))
    officer: Mapped[Str64 | None]  # the main officer on shift then
    deduction: Mapped[float | None]  # points taken once confirmed
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime | None]
    decision_reason: Mapped[str] = mapped_column(Text, default="")
    unit_explanation: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    calls: Mapped[list[ViolationCall]] = relationship(cascade="all, delete-orphan")


class ViolationCall(Base):
    """The calls behind a violation (an ``unmanned`` one has several)."""

    __tablename__ = "violation_calls"
    __table_args__ = (Index("ix_violation_calls_call_id", "call_id"),)

    violation_id: Mapped[int] = mapped_column(
        ForeignKey("violations.id", ondelete="CASCADE"), primary_key=True
    )
    call_id: Mapped[int] = mapped_column(
        ForeignKey("calls.id", ondelete="CASCADE"), primary_key=True
    )


class Callback(Base):
    """事事有回音: a missed inbound call stays open until the caller is called back or
    gets through, or someone records why not."""

    __tablename__ = "callbacks"
    __table_args__ = (
        CheckConstraint(_in("state", CALLBACK_STATES), name="state"),
        Index("ix_callbacks_state_caller", "state", "caller"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), unique=True)
    line_id: Mapped[int | None] = mapped_column(ForeignKey("duty_lines.id", ondelete="SET NULL"))
    caller: Mapped[Str64]
    state: Mapped[Str16] = mapped_column(default="open")
    due_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    closed_by_call_id: Mapped[int | None] = mapped_column(
        ForeignKey("calls.id", ondelete="SET NULL")
    )
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    call: Mapped[Call] = relationship(foreign_keys=[call_id])


class LogEntry(Base):
    """One line of the duty log; calls are tied to entries, entries may belong to an incident."""

    __tablename__ = "log_entries"
    __table_args__ = (Index("ix_log_entries_unit_at", "unit_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # set for entries a job writes ("call:12"), so running it twice writes one entry
    source_key: Mapped[Str255 | None] = mapped_column(unique=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"))
    shift_id: Mapped[int | None] = mapped_column(ForeignKey("shifts.id", ondelete="SET NULL"))
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id", ondelete="SET NULL"))
    at: Mapped[datetime]
    kind: Mapped[Str32] = mapped_column(default="call")  # call, note, instruction, handover
    summary: Mapped[str] = mapped_column(Text, default="")
    action_taken: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[Str16] = mapped_column(default="open")  # open | done
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    calls: Mapped[list[LogEntryCall]] = relationship(cascade="all, delete-orphan")


class LogEntryCall(Base):
    __tablename__ = "log_entry_calls"
    __table_args__ = (Index("ix_log_entry_calls_call_id", "call_id"),)

    log_entry_id: Mapped[int] = mapped_column(
        ForeignKey("log_entries.id", ondelete="CASCADE"), primary_key=True
    )
    call_id: Mapped[int] = mapped_column(
        ForeignKey("calls.id", ondelete="CASCADE"), primary_key=True
    )


class Incident(Base):
    """突发事件: the fixed elements of a report; the first report is due 2 h after the event."""

    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"), index=True)
    title: Mapped[Str255]
    occurred_at: Mapped[datetime]
    place: Mapped[Str255] = mapped_column(default="")
    source: Mapped[Str255] = mapped_column(default="")
    category: Mapped[Str64] = mapped_column(default="")
    level: Mapped[Str32] = mapped_column(default="")
    cause: Mapped[str] = mapped_column(Text, default="")
    course: Mapped[str] = mapped_column(Text, default="")
    losses: Mapped[str] = mapped_column(Text, default="")
    measures: Mapped[str] = mapped_column(Text, default="")
    trend: Mapped[str] = mapped_column(Text, default="")
    contact: Mapped[Str255] = mapped_column(default="")
    status: Mapped[Str16] = mapped_column(default="open")  # open | closed
    report_due_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    reports: Mapped[list[IncidentReport]] = relationship(cascade="all, delete-orphan")


class IncidentReport(Base):
    """A report sent upward: the first one, follow-ups (续报), the final one."""

    __tablename__ = "incident_reports"
    __table_args__ = (
        # one first report per incident, even when two are sent at the same moment
        Index(
            "uq_incident_reports_first",
            "incident_id",
            unique=True,
            sqlite_where=text("kind = 'first'"),
            postgresql_where=text("kind = 'first'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    kind: Mapped[Str16] = mapped_column(default="first")  # first | follow_up | final
    reported_at: Mapped[datetime]
    content: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class Handover(Base):
    """交接班: what stays open passes to the next shift, signed by both officers."""

    __tablename__ = "handovers"

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"), index=True)
    shift_id: Mapped[int | None] = mapped_column(ForeignKey("shifts.id", ondelete="SET NULL"))
    outgoing_officer: Mapped[Str64]
    incoming_officer: Mapped[Str64 | None]
    notes: Mapped[str] = mapped_column(Text, default="")
    signed_out_at: Mapped[datetime]
    signed_in_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SpotCheck(Base):
    """抽查: a test call the system originates to a duty line."""

    __tablename__ = "spot_checks"
    __table_args__ = (UniqueConstraint("line_id", "scheduled_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    line_id: Mapped[int] = mapped_column(ForeignKey("duty_lines.id", ondelete="CASCADE"))
    scheduled_at: Mapped[datetime]
    action_id: Mapped[Str64 | None] = mapped_column(unique=True)
    originated_at: Mapped[datetime | None]
    result: Mapped[Str16 | None]  # answered | unanswered | failed
    call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id", ondelete="SET NULL"))
    detail: Mapped[Str255] = mapped_column(default="")
