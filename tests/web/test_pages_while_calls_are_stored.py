"""Console pages are read while the listener and the workers write (SQLite, the embedded
default): a signed-in page view, its sign-in check included, does not wait for SQLite's
write lock (nor take it: ``tests/integration/test_sqlite_reading.py``)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.web.conftest import Tree


@pytest.mark.parametrize("path", ["/calls", "/", "/log", "/violations", "/spot-checks"])
def test_a_page_view_does_not_wait_for_the_write_lock(
    client: FlaskClient,
    login: Callable[..., Any],
    tree: Tree,
    web_db_url: str,
    path: str,
) -> None:
    assert login(client, "officer_a").status_code == 302
    connection = sqlite3.connect(web_db_url.removeprefix("sqlite:///"), isolation_level=None)
    connection.execute("BEGIN IMMEDIATE")  # a writer holds the lock throughout
    try:
        began = time.monotonic()
        response = client.get(path)
        took = time.monotonic() - began
    finally:
        connection.execute("ROLLBACK")
        connection.close()
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    assert took < 5, f"{path} waited {took:.1f} s for the write lock"  # it would wait 30 s
