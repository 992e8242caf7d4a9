"""Alembic environment, configured in code by :mod:`callcenter.store.migrate`.

``migrate.alembic_config`` passes either an open connection (``config.attributes
["connection"]``) or a URL (main option ``sqlalchemy.url``, for offline SQL scripts).
"""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import Connection

from callcenter.store.db import make_engine
from callcenter.store.models import Base
from callcenter.store.types import UTCDateTime

config = context.config
target_metadata = Base.metadata


def render_item(kind: str, obj: Any, autogen_context: Any) -> str | bool:
    """Write our column types as plain SQLAlchemy types, so revisions import nothing of ours."""
    if kind == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


COMMON_OPTIONS: dict[str, Any] = {
    "target_metadata": target_metadata,
    "render_item": render_item,
    "compare_type": True,
    # Batch mode ("move and copy") lets ALTER work on SQLite; on PostgreSQL it is plain ALTER.
    "render_as_batch": True,
}


def run_offline() -> None:
    """Emit SQL to stdout instead of running it (``alembic upgrade --sql``)."""
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        **COMMON_OPTIONS,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_on(connection: Connection) -> None:
    context.configure(connection=connection, **COMMON_OPTIONS)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        run_on(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database: pass a connection or set sqlalchemy.url")
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            run_on(connection)
            connection.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
