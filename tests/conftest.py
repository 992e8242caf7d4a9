"""Database fixtures, for every test that needs SQLite and PostgreSQL.

- ``db_backend``: ``"sqlite"`` or ``"postgres"``; tests using the fixtures below run once
  per backend. PostgreSQL comes from ``CALLCENTER_TEST_POSTGRES_URL``; without it those runs
  are skipped, unless ``CALLCENTER_REQUIRE_POSTGRES=1`` (``scripts/test.sh``), then they fail.
  Select one backend with ``-m postgres`` / ``-m "not postgres"``.
- ``db_url``: a fresh, empty database (an SQLite file; a PostgreSQL schema of its own).
- ``migrated_engine``: an engine on a fresh database migrated to head by Alembic.
- ``session``: a session on a database migrated once per run, inside a transaction that is
  rolled back after the test; ``session.commit()`` in code under test is fine (it commits
  a savepoint). Code that opens its own sessions needs ``migrated_engine`` instead.

Other fixtures belong in the ``conftest.py`` of the folder that uses them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, make_url, text
from sqlalchemy.orm import Session

from callcenter.store.db import make_engine
from callcenter.store.migrate import upgrade

POSTGRES_URL_VARIABLE = "CALLCENTER_TEST_POSTGRES_URL"
REQUIRE_POSTGRES_VARIABLE = "CALLCENTER_REQUIRE_POSTGRES"


def _postgres_base_url() -> str:
    url = os.environ.get(POSTGRES_URL_VARIABLE, "")
    if url:
        return url
    reason = f"PostgreSQL tests need {POSTGRES_URL_VARIABLE} (scripts/test.sh sets it)"
    if os.environ.get(REQUIRE_POSTGRES_VARIABLE) == "1":
        pytest.fail(f"{reason}, and {REQUIRE_POSTGRES_VARIABLE}=1 forbids skipping")
    pytest.skip(reason)


@pytest.fixture(
    scope="session",
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def db_backend(request: pytest.FixtureRequest) -> str:
    backend: str = request.param
    if backend == "postgres":
        url = _postgres_base_url()
        engine = make_engine(url)
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception as exc:
            pytest.fail(f"cannot connect to {POSTGRES_URL_VARIABLE}: {exc}")
        finally:
            engine.dispose()
    return backend


def _with_search_path(base_url: str, schema: str) -> str:
    url = make_url(base_url).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


class _FreshDatabases:
    """Hands out empty databases and removes them afterwards."""

    def __init__(self, backend: str, folder: Path) -> None:
        self.backend = backend
        self.folder = folder
        self.schemas: list[str] = []

    def new(self) -> str:
        name = f"test_{uuid.uuid4().hex[:12]}"
        if self.backend == "sqlite":
            return f"sqlite:///{(self.folder / f'{name}.db').as_posix()}"
        base = _postgres_base_url()
        engine = make_engine(base)
        try:
            with engine.begin() as connection:
                connection.execute(text(f'CREATE SCHEMA "{name}"'))
        finally:
            engine.dispose()
        self.schemas.append(name)
        return _with_search_path(base, name)

    def drop_all(self) -> None:
        if not self.schemas:
            return
        engine = make_engine(_postgres_base_url())
        try:
            with engine.begin() as connection:
                for name in self.schemas:
                    connection.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        finally:
            engine.dispose()
        self.schemas.clear()


@pytest.fixture
def db_url(db_backend: str, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database for this test only."""
    databases = _FreshDatabases(db_backend, tmp_path)
    try:
        yield databases.new()
    finally:
        databases.drop_all()


@pytest.fixture
def migrated_engine(db_url: str) -> Iterator[Engine]:
    """An engine on a fresh database migrated to head."""
    upgrade(db_url)
    engine = make_engine(db_url)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def _shared_migrated_engine(
    db_backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    databases = _FreshDatabases(db_backend, tmp_path_factory.mktemp("db"))
    url = databases.new()
    upgrade(url)
    engine = make_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()
        databases.drop_all()


@pytest.fixture
def session(_shared_migrated_engine: Engine) -> Iterator[Session]:
    """A session whose work is rolled back at the end of the test."""
    connection = _shared_migrated_engine.connect()
    transaction = connection.begin()
    db_session = Session(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    try:
        yield db_session
    finally:
        db_session.close()
        transaction.rollback()
        connection.close()
