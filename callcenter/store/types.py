"""Reusable column types: UTC timestamps and sized strings, as ``Annotated`` aliases.

Use them in models as ``Mapped[datetime]`` (always :class:`UTCDateTime`), ``Mapped[Str64 |
None]`` and so on; the declarative base maps each to its column type (``type_annotation_map``),
so a column's SQL type is written once, here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from sqlalchemy import DateTime, Dialect, Double, String
from sqlalchemy.types import TypeDecorator

__all__ = [
    "TYPE_ANNOTATION_MAP",
    "Str16",
    "Str32",
    "Str64",
    "Str255",
    "UTCDateTime",
    "utcnow",
]


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and read back as an aware UTC ``datetime``.

    PostgreSQL: ``TIMESTAMP WITH TIME ZONE``. SQLite has no time zones, so the value is
    stored as naive UTC text and marked UTC again when read. Naive datetimes are refused
    on the way in: a time without a zone is a bug in the caller, never guessed at.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} (store aware datetimes)")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):  # pragma: no cover - the driver returns datetimes
            raise TypeError(f"expected a datetime from the database, got {value!r}")
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utcnow() -> datetime:
    """The current time, aware, in UTC (for ``created_at`` defaults at the store edge)."""
    return datetime.now(UTC)


# Sized strings; the number is only a marker that the type map below turns into a length.
Str16 = Annotated[str, 16]
Str32 = Annotated[str, 32]
Str64 = Annotated[str, 64]
Str255 = Annotated[str, 255]

TYPE_ANNOTATION_MAP: dict[Any, Any] = {
    datetime: UTCDateTime(),  # every Mapped[datetime] column stores UTC
    float: Double(),  # the same on SQLAlchemy 2.0 and 2.1 (DOUBLE PRECISION on PostgreSQL)
    Str16: String(16),
    Str32: String(32),
    Str64: String(64),
    Str255: String(255),
}
