"""Engines and sessions from a database URL (SQLite embedded, PostgreSQL in production).

SQLite gets foreign keys on, WAL journaling, a busy timeout, and real transactions: the
Python ``sqlite3`` driver otherwise opens transactions late and breaks ``SAVEPOINT``
(SQLAlchemy's documented recipe, "Serializable isolation / Savepoints / Transactional DDL").
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Engine, create_engine, event, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

__all__ = [
    "READ_ONLY",
    "make_engine",
    "make_session_factory",
    "normalize_url",
    "reading",
    "session_scope",
]

SQLITE_BUSY_TIMEOUT_SECONDS = 30.0
#: How often a transaction waiting for SQLite's write lock tries again (see _begin_immediate).
SQLITE_LOCK_POLL_SECONDS = 0.001
#: Execution options of work that only reads (``engine.execution_options(**READ_ONLY)``, see
#: :func:`reading`): on SQLite its transactions begin DEFERRED and take no write lock; on
#: both engines a write in them fails.
READ_ONLY = {"callcenter_read_only": True, "postgresql_readonly": True}


def normalize_url(url: str | URL) -> URL:
    """Parse ``url``; a bare ``postgresql://`` uses psycopg 3 (the driver we ship)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def make_engine(url: str | URL, *, sqlite_foreign_keys: bool = True, **kwargs: Any) -> Engine:
    """An engine for ``url``; extra keyword arguments go to :func:`sqlalchemy.create_engine`.

    For an SQLite file the parent folder is created (the instance folder on first start).
    ``sqlite_foreign_keys=False`` is for migrations only: SQLite rebuilds a table to alter
    it, and dropping the old copy with foreign keys on would cascade-delete the rows that
    point to it (SQLite's documented procedure turns them off, then runs a check).
    """
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        _ensure_sqlite_folder(parsed)
        connect_args = dict(kwargs.pop("connect_args", {}))
        connect_args.setdefault("timeout", SQLITE_BUSY_TIMEOUT_SECONDS)
        engine = create_engine(parsed, connect_args=connect_args, **kwargs)
        _configure_sqlite(
            engine, foreign_keys=sqlite_foreign_keys, timeout=float(connect_args["timeout"])
        )
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(parsed, **kwargs)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions bound to ``engine``; objects stay readable after commit."""
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit when the block ends, roll back if it raises."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def _ensure_sqlite_folder(url: URL) -> None:
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def _configure_sqlite(engine: Engine, *, foreign_keys: bool, timeout: float) -> None:
    foreign_keys_pragma = f"PRAGMA foreign_keys = {'ON' if foreign_keys else 'OFF'}"

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin (see "begin").
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(foreign_keys_pragma)
            cursor.execute("PRAGMA journal_mode = WAL")  # "memory" for in-memory databases
            cursor.execute("PRAGMA synchronous = NORMAL")  # safe with WAL, much faster
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # IMMEDIATE: a deferred read-then-write transaction under WAL fails at once with
        # "database is locked" when another process writes; IMMEDIATE waits for the lock.
        # Work that only reads begins DEFERRED: under WAL it never waits for the writers nor
        # holds them up (a console page must not stall the listener's commits).
        # query_only makes a write there fail at once, not only when it meets a writer.
        pooled = connection.connection
        read_only = bool(connection.get_execution_options().get("callcenter_read_only"))
        if pooled.info.get("query_only", False) != read_only:
            pooled.dbapi_connection.execute(f"PRAGMA query_only = {int(read_only)}")
            pooled.info["query_only"] = read_only
        if read_only:
            pooled.dbapi_connection.execute("BEGIN")
        else:
            _begin_immediate(pooled.dbapi_connection, timeout)


def reading(engine: Engine) -> Engine:
    """``engine`` for work that only reads (same pool): on SQLite its transactions take no
    write lock. A write in them fails on both engines ("attempt to write a readonly
    database", "cannot execute … in a read-only transaction"): write through ``engine``."""
    return engine.execution_options(**READ_ONLY)


def _begin_immediate(dbapi_connection: Any, timeout: float) -> None:
    """``BEGIN IMMEDIATE``, waiting up to ``timeout`` s for the write lock, polled every
    :data:`SQLITE_LOCK_POLL_SECONDS`.

    SQLite's own busy handler sleeps 1, 2, 5, 10 … up to 100 ms between its tries, so under
    steady contention (the listener and the workers each write many short transactions a
    second) the lock often lies free while every waiter sleeps: at 100 calls/s that left
    the listener and the workers waiting for it half of their time. The busy timeout stays
    set for every other statement.
    """
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA busy_timeout = 0")
        deadline = time.monotonic() + timeout
        while True:
            try:
                cursor.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorname != "SQLITE_BUSY" or time.monotonic() >= deadline:
                    raise OperationalError("BEGIN IMMEDIATE", None, exc) from exc
            time.sleep(SQLITE_LOCK_POLL_SECONDS)
    finally:
        cursor.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        cursor.close()
