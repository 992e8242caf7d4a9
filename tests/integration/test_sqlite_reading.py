"""On SQLite (the embedded default) a transaction that only reads takes no write lock.

Every transaction begins IMMEDIATE (it takes SQLite's single write lock at once, so a
read-then-write never fails on a stale snapshot), and the listener and the workers take
turns at that lock. A console page only reads: its transaction begins DEFERRED, so the
month's report, however long, does not hold up the calls being stored and judged; and a
write slipped into it fails at once instead of only when it meets a writer.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from callcenter.config import load_config
from callcenter.store.db import make_engine, make_session_factory, reading
from callcenter.store.migrate import upgrade
from callcenter.store.org import Unit
from callcenter.web.extensions import db


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'callcenter.db'}"
    upgrade(url)
    return url


@pytest.fixture
def writer(url: str) -> Iterator[Engine]:
    """Another process's connection (the listener's): gives up on the lock after 0.2 s."""
    engine = make_engine(url, connect_args={"timeout": 0.2})
    yield engine
    engine.dispose()


def can_write(writer: Engine) -> bool:
    try:
        with make_session_factory(writer).begin() as session:
            session.add(Unit(name=f"单位{id(session)}", timezone="Asia/Shanghai"))
        return True
    except OperationalError as exc:
        assert "BEGIN IMMEDIATE" in str(exc)  # it waited for the lock, in vain
        return False


def test_a_reading_transaction_leaves_the_write_lock_to_the_writers(
    url: str, writer: Engine
) -> None:
    engine = make_engine(url)
    try:
        with Session(reading(engine)) as session:
            session.scalars(select(Unit)).all()  # a transaction is open, reading
            assert can_write(writer)
            with pytest.raises(OperationalError, match="readonly database"):
                session.execute(text("DELETE FROM units"))
        with Session(engine) as session:  # the usual kind: holds the lock until it ends
            session.scalars(select(Unit)).all()
            assert not can_write(writer)
        assert can_write(writer)
        with Session(engine) as session:  # the same pooled connection, writable again
            session.execute(text("DELETE FROM units"))
            session.commit()
    finally:
        engine.dispose()


def console(url: str, tmp_path: Path) -> Flask:
    from callcenter.web import create_app

    overrides = {"database.url": url, "instance_path": str(tmp_path / "instance")}
    return create_app(load_config(None, env={}, overrides=overrides), {"TESTING": True})


@pytest.mark.parametrize(("method", "blocks"), [("GET", False), ("HEAD", False), ("POST", True)])
def test_a_console_page_that_only_reads_does_not_hold_up_the_writers(
    url: str, writer: Engine, tmp_path: Path, method: str, blocks: bool
) -> None:
    app = console(url, tmp_path)
    with app.test_request_context("/calls", method=method):
        db().scalars(select(Unit)).all()  # the page reads; its transaction is open
        assert can_write(writer) is not blocks
    engine: Any = app.extensions["callcenter.engine"]
    engine.dispose()
