"""The console's way to Redis: one short-timeout client per app, and the live state on it.

The console reads live state (which calls ring now, each line's state) and queues
click-to-call requests; both need Redis, neither may hang a page when Redis hangs, so the
client has short timeouts and no retries. ``REDIS_URL`` empty means "no Redis configured":
the board then shows "live state unavailable" and call-backs are refused.
"""

from __future__ import annotations

import threading

import redis
from flask import current_app

from callcenter.embedded_redis import connect
from callcenter.live import DEFAULT_PREFIX, LiveState

__all__ = ["LiveUnavailableError", "live_state", "redis_client"]

_EXTENSION = "callcenter.board.redis"
_lock = threading.Lock()


class LiveUnavailableError(RuntimeError):
    """No Redis is configured for the console."""


def redis_client() -> redis.Redis:
    """The app's Redis client (created on first use); :class:`LiveUnavailableError` without
    ``REDIS_URL``. Calls on it raise ``redis.exceptions.RedisError`` when Redis is down."""
    url = str(current_app.config.get("REDIS_URL") or "")
    if not url:
        raise LiveUnavailableError("no Redis configured (redis.url)")
    with _lock:
        cached = current_app.extensions.get(_EXTENSION)
        if cached is not None and cached[0] == url:
            client: redis.Redis = cached[1]
            return client
        timeout = float(current_app.config.get("BOARD_REDIS_TIMEOUT", 2.0))
        client = connect(url, socket_timeout=timeout, socket_connect_timeout=timeout, retries=0)
        current_app.extensions[_EXTENSION] = (url, client)
        return client


def live_state() -> LiveState:
    """A :class:`LiveState` reader on the app's Redis (every PBX's state)."""
    prefix = str(current_app.config.get("LIVE_PREFIX") or DEFAULT_PREFIX)
    return LiveState(redis_client(), "console", prefix)
