"""Run the Alembic migrations and check that they match the models.

The Alembic configuration is built here in code, so no ``alembic.ini`` is needed at run
time and an installed (non-editable) package works: the scripts ship as package data in
``callcenter/store/migrations/``.

Developers make a new revision after changing the models with::

    python -c "from callcenter.store.migrate import make_revision; \\
               make_revision('sqlite:///instance/dev.db', 'what changed')"

which upgrades that database to head first and autogenerates against it; review the file.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config as AlembicConfig
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import URL, Connection, MetaData

from callcenter.store.db import make_engine
from callcenter.store.models import Base

__all__ = [
    "MIGRATIONS_PATH",
    "alembic_config",
    "check_drift",
    "current_revision",
    "head_revision",
    "make_revision",
    "upgrade",
]

MIGRATIONS_PATH = Path(__file__).resolve().with_name("migrations")


def alembic_config(url: str | URL | None = None, connection: Connection | None = None) -> Any:
    """An Alembic ``Config`` for our scripts, for a URL or an open connection."""
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS_PATH))
    config.set_main_option("path_separator", "os")
    if url is not None:
        text = url.render_as_string(hide_password=False) if isinstance(url, URL) else url
        config.set_main_option("sqlalchemy.url", text.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@contextmanager
def _connection(url: str | URL, *, migrating: bool = False) -> Iterator[Connection]:
    """One transaction on ``url``, committed at the end; for migrations with SQLite's
    foreign keys off (see :func:`callcenter.store.db.make_engine`) and checked at the end."""
    engine = make_engine(url, sqlite_foreign_keys=not migrating)
    try:
        with engine.begin() as connection:
            yield connection
            if migrating and connection.dialect.name == "sqlite":
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"migration broke foreign keys: {broken[:5]}")
    finally:
        engine.dispose()


def upgrade(url: str | URL, revision: str = "head") -> None:
    """Migrate the database at ``url`` up to ``revision`` (committed when done)."""
    with _connection(url, migrating=True) as connection:
        command.upgrade(alembic_config(connection=connection), revision)


def head_revision() -> str | None:
    """The newest revision of the scripts."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(url: str | URL) -> str | None:
    """The revision the database at ``url`` is at; ``None`` for an unmigrated database."""
    with _connection(url) as connection:
        return MigrationContext.configure(connection).get_current_revision()


def check_drift(url: str | URL, metadata: MetaData | None = None) -> list[str]:
    """Differences between the models (or ``metadata``) and the database at ``url``.

    Run it on a database migrated to head: an empty list means models and migrations agree.
    A database that is not at the head revision is reported as a difference too.
    """
    metadata = Base.metadata if metadata is None else metadata
    problems: list[str] = []
    head = head_revision()
    with _connection(url) as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        current = context.get_current_revision()
        if current != head:
            problems.append(f"database is at revision {current}, the scripts' head is {head}")
        problems.extend(_describe(compare_metadata(context, metadata)))
    return problems


def make_revision(url: str | URL, message: str) -> None:
    """Autogenerate a new revision from the models against the database at ``url``."""
    upgrade(url)
    with _connection(url, migrating=True) as connection:
        command.revision(alembic_config(connection=connection), message, autogenerate=True)


def _describe(diffs: Iterable[Any]) -> Iterator[str]:
    for diff in diffs:
        if isinstance(diff, list):  # modify_* entries come grouped per column
            yield from _describe(diff)
        elif isinstance(diff, tuple) and diff:
            yield _describe_one(diff)
        else:  # pragma: no cover - alembic only yields tuples and lists
            yield repr(diff)


def _describe_one(diff: tuple[Any, ...]) -> str:
    kind = diff[0]
    if kind in ("add_column", "remove_column"):
        _, _schema, table, column = diff
        return f"{kind}: {table}.{column.name} {column.type}"
    if kind in ("add_table", "remove_table"):
        return f"{kind}: {diff[1].name}"
    if kind in ("add_index", "remove_index", "add_constraint", "remove_constraint"):
        item = diff[1]
        table = getattr(getattr(item, "table", None), "name", "?")
        columns = ", ".join(c.name for c in getattr(item, "columns", ()))
        return f"{kind}: {item.name} on {table} ({columns})"
    if kind.startswith("modify_"):
        _, _schema, table, column, _info, old, new = diff
        return f"{kind}: {table}.{column} from {old!r} to {new!r}"
    return f"{kind}: {diff[1:]!r}"
