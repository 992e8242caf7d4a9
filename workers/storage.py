"""The database side every job shares: one engine per URL and process, the duty lines a
worker keeps for a few seconds, and the idempotent insert.

SQLite has one writer at a time, and a transaction that reads and only then writes fails at
once with "database is locked" when another process committed in between (a WAL snapshot
cannot be upgraded; the busy timeout does not help). Every engine of
:func:`callcenter.store.db.make_engine` begins SQLite transactions with ``BEGIN IMMEDIATE``,
which takes the write lock first (waiting under the busy timeout), so a job needs nothing
more. PostgreSQL needs nothing of the sort.

Running a job twice yields the same rows: every row a job writes has a natural key —
violations ``dedupe_key`` (``unanswered:call:12``), log entries ``source_key``
(``call:12``), call-backs ``call_id``, link rows their primary keys — and is written with
:func:`insert_if_absent` (``INSERT … ON CONFLICT DO NOTHING`` on PostgreSQL and SQLite),
which is also what makes several workers on several machines safe: they may race on the
same call, the database keeps one row. Rows already stored are never overwritten, so an
inspector's decision or an officer's note survives a re-run.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from callcenter.store.db import make_engine, make_session_factory
from callcenter.store.policy import LineDirectory, load_line_directory

__all__ = [
    "LINE_CACHE_SECONDS",
    "dispose_engines",
    "insert_if_absent",
    "lines",
    "resolve_database_url",
    "sessions",
]

#: Seconds a worker reuses the duty lines it read (their policy, desk phones, unit).
LINE_CACHE_SECONDS = 15.0

_factories: dict[str, sessionmaker[Session]] = {}
_line_cache: dict[Any, tuple[float, LineDirectory]] = {}


def sessions(url: str) -> sessionmaker[Session]:
    """One engine (and connection pool) per database URL and worker process, kept warm."""
    factory = _factories.get(url)
    if factory is None:
        factory = _factories[url] = make_session_factory(make_engine(url))
    return factory


def dispose_engines() -> None:
    """Close the pooled connections of this process (tests; a worker keeps them)."""
    for factory in _factories.values():
        factory.kw["bind"].dispose()
    _factories.clear()
    _line_cache.clear()


@cache
def _configured_database_url() -> str:
    from callcenter.config import load_config

    return load_config().database.url


def resolve_database_url(url: str | None) -> str:
    """The URL the job was given, else the configured one (``CALLCENTER_CONFIG`` …)."""
    return url or _configured_database_url()


def lines(session: Session, *, fresh: bool = False) -> LineDirectory:
    """The active duty lines, read at most every :data:`LINE_CACHE_SECONDS` per process (a
    line edited in the console is judged by its new policy within that time)."""
    engine = session.get_bind()
    now = time.monotonic()
    cached = _line_cache.get(engine)
    if cached is None or fresh or now - cached[0] > LINE_CACHE_SECONDS:
        cached = (now, load_line_directory(session))
        _line_cache[engine] = cached
    return cached[1]


def insert_if_absent(
    session: Session, model: type[Any], values: Mapping[str, Any], keys: Sequence[str]
) -> Any | None:
    """Insert a row unless one with the same ``keys`` exists; the new primary key or None.

    One statement, safe under concurrency: ``INSERT … ON CONFLICT (keys) DO NOTHING`` on
    PostgreSQL (a concurrent insert of the same key waits for the other transaction, then
    does nothing) and SQLite (one writer at a time).
    """
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql as dialect_dml
    elif dialect == "sqlite":
        from sqlalchemy.dialects import sqlite as dialect_dml  # type: ignore[no-redef]
    else:  # pragma: no cover - the two supported engines
        raise RuntimeError(f"unsupported database {dialect}")
    table = model.__table__
    primary = table.primary_key.columns
    statement = (
        dialect_dml.insert(table)
        .values(**values)
        .on_conflict_do_nothing(index_elements=list(keys))
        .returning(*primary)
    )
    row = session.execute(statement).first()
    if row is None:
        return None
    return row[0] if len(row) == 1 else tuple(row)
