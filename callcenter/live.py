"""Live state for the console, in Redis: which calls ring now, each line's state, each listener.

DESIGN.md: live state goes from the listener to the console through Redis (a hash plus
pub/sub), not through the database. One :class:`LiveState` per listener (``pbx``) writes;
the console reads every PBX's state with any :class:`LiveState` on the same Redis and
``prefix``.

Keys (``prefix`` defaults to ``callcenter:live``):

- ``<prefix>:<pbx>:ringing`` hash, linkedid → JSON ``{"linkedid", "caller", "line",
  "ringing_since", "endpoints", "pbx"}``, replaced as a whole by :meth:`LiveState.set_ringing`;
- ``<prefix>:<pbx>:lines`` hash, line → JSON ``{"line", "state", "detail", "since",
  "updated_at", "pbx"}``; ``state`` is one of :data:`LINE_STATES`;
- ``<prefix>:<pbx>:status`` hash: ``connected`` (``1``/``0``), ``detail``, ``since`` (when
  ``connected`` last changed), ``heartbeat_at`` (the last :meth:`LiveState.set_listener_status`);
- channel ``<prefix>:events``: small JSON messages, each with ``type`` and ``pbx``:
  ``ringing`` (``count``, ``at``; only when the ringing calls changed), ``call`` (``linkedid``,
  ``outcome``, ``line``), ``line`` (``line``, ``state``; only on a change), ``status``
  (``connected``, ``detail``; only on a change), ``reset`` (the PBX's state was cleared or
  rewritten after an outage: read everything again).

Times are ISO 8601 in UTC with milliseconds (``2026-11-23T11:20:42.120+00:00``); the console
shows them in the unit's time zone.

Writes never raise into the listener: a Redis error (down, timing out, refusing writes) is
logged once per outage as a warning, the write returns ``False``, and for ``retry_after``
seconds further writes return ``False`` at once instead of waiting on a dead server. The
state last written is kept in memory and rewritten in full when Redis answers again. Readers
(the console) do raise ``redis.exceptions.RedisError``, so "nothing rings" is never shown
when the truth is "unknown".

For the listener, a client with a short timeout and few retries keeps a hung Redis from
stalling the event loop: ``connect(url, socket_timeout=2.0, retries=1)``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

import redis

from callcenter.tracking.records import Call, RingingCall

__all__ = ["DEFAULT_PREFIX", "KEEPALIVE", "LINE_STATES", "LiveState"]

log = logging.getLogger(__name__)

DEFAULT_PREFIX: Final = "callcenter:live"
LINE_STATES: Final = ("idle", "ringing", "in_call", "phone_offline")
KEEPALIVE: Final = {"type": "keepalive"}


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="milliseconds")


def _dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _fields(mapping: Mapping[str, str]) -> dict[Any, Any]:
    """``mapping`` as redis-py's ``hset`` types it (its key type is invariant)."""
    return dict(mapping)


def _glob_escape(text: str) -> str:
    """``text`` as a literal in a Redis MATCH pattern."""
    return "".join("\\" + char if char in "*?[]\\" else char for char in text)


class LiveState:
    """Live state of one PBX (``pbx``) for writing, of every PBX for reading."""

    def __init__(
        self,
        redis_client: redis.Redis,
        pbx: str = "default",
        prefix: str = DEFAULT_PREFIX,
        *,
        retry_after: float = 1.0,
    ) -> None:
        if not pbx or not prefix:
            raise ValueError("pbx and prefix must not be empty")
        self.redis = redis_client
        self.pbx = pbx
        self.prefix = prefix
        self.retry_after = retry_after
        self.ringing_key = f"{prefix}:{pbx}:ringing"
        self.lines_key = f"{prefix}:{pbx}:lines"
        self.status_key = f"{prefix}:{pbx}:status"
        self.channel = f"{prefix}:events"
        # What this writer last meant Redis to hold, rewritten after an outage.
        self._ringing: dict[str, str] = {}
        self._lines: dict[str, str] = {}
        self._status: dict[str, str] = {}
        self._guard = threading.RLock()
        self._down_since: float | None = None
        self._next_attempt = 0.0

    def __repr__(self) -> str:
        return f"<LiveState {self.prefix}:{self.pbx}>"

    # ------------------------------------------------------------------- writers

    def set_ringing(self, calls: Sequence[RingingCall], now: datetime) -> bool:
        """Replace this PBX's ringing calls; publish ``ringing`` when they changed."""
        mapping = {call.linkedid: _dumps(self._ringing_json(call)) for call in calls}

        def write() -> bool:
            pipe = self.redis.pipeline(transaction=True)
            pipe.hgetall(self.ringing_key)
            pipe.delete(self.ringing_key)
            if mapping:
                pipe.hset(self.ringing_key, mapping=_fields(mapping))
            before = {_text(k): _text(v) for k, v in pipe.execute()[0].items()}
            if before != mapping:
                self._publish(
                    {"type": "ringing", "pbx": self.pbx, "count": len(mapping), "at": _iso(now)}
                )
            return True

        with self._guard:
            self._ringing = mapping
            return self._write("ringing calls", write)

    def call_finished(self, call: Call) -> bool:
        """Take a finished call off the ringing hash and publish a ``call`` event."""

        def write() -> bool:
            pipe = self.redis.pipeline(transaction=True)
            pipe.hdel(self.ringing_key, call.linkedid)
            pipe.publish(
                self.channel,
                _dumps(
                    {
                        "type": "call",
                        "pbx": self.pbx,
                        "linkedid": call.linkedid,
                        "outcome": call.outcome,
                        "line": call.line,
                    }
                ),
            )
            pipe.execute()
            return True

        with self._guard:
            self._ringing.pop(call.linkedid, None)
            return self._write("finished call", write)

    def set_line_state(
        self, line: str, state: str, detail: Mapping[str, Any] | None = None
    ) -> bool:
        """Set ``line``'s state (one of :data:`LINE_STATES`); publish ``line`` on a change."""
        if state not in LINE_STATES:
            raise ValueError(f"unknown line state {state!r}; expected one of {LINE_STATES}")
        detail = dict(detail or {})
        now = _iso(_now())
        with self._guard:
            previous: dict[str, Any] = json.loads(self._lines.get(line, "{}"))
            same_state = previous.get("state") == state
            changed = not same_state or previous.get("detail") != json.loads(_dumps(detail))
            value = _dumps(
                {
                    "line": line,
                    "state": state,
                    "detail": detail,
                    "since": previous.get("since", now) if same_state else now,
                    "updated_at": now,
                    "pbx": self.pbx,
                }
            )
            self._lines[line] = value

            def write() -> bool:
                pipe = self.redis.pipeline(transaction=True)
                pipe.hset(self.lines_key, line, value)
                if changed:
                    message = {"type": "line", "pbx": self.pbx, "line": line, "state": state}
                    pipe.publish(self.channel, _dumps(message))
                pipe.execute()
                return True

            return self._write("line state", write)

    def set_listener_status(self, connected: bool, detail: str = "") -> bool:
        """Record whether the listener is connected to its PBX, with a heartbeat time.

        Call it on every (dis)connection and periodically as a heartbeat; ``status`` is
        published only when ``connected`` or ``detail`` changed.
        """
        now = _iso(_now()) or ""
        flag = "1" if connected else "0"
        with self._guard:
            previous = self._status
            changed = previous.get("connected") != flag or previous.get("detail") != detail
            since = now if previous.get("connected") != flag else previous.get("since", now)
            status = {"connected": flag, "detail": detail, "since": since, "heartbeat_at": now}
            self._status = status

            def write() -> bool:
                pipe = self.redis.pipeline(transaction=True)
                pipe.hset(self.status_key, mapping=_fields(status))
                if changed:
                    message = {
                        "type": "status",
                        "pbx": self.pbx,
                        "connected": connected,
                        "detail": detail,
                    }
                    pipe.publish(self.channel, _dumps(message))
                pipe.execute()
                return True

            return self._write("listener status", write)

    def clear(self) -> bool:
        """Forget this PBX's ringing calls, line states and status (a listener starting)."""
        with self._guard:
            self._ringing, self._lines, self._status = {}, {}, {}

            def write() -> bool:
                pipe = self.redis.pipeline(transaction=True)
                pipe.delete(self.ringing_key, self.lines_key, self.status_key)
                pipe.publish(self.channel, _dumps({"type": "reset", "pbx": self.pbx}))
                pipe.execute()
                return True

            return self._write("reset", write)

    # ------------------------------------------------------------------- readers

    def ringing(self) -> list[dict[str, Any]]:
        """Every PBX's ringing calls, longest ringing first (each with its ``pbx``)."""
        calls: list[dict[str, Any]] = []
        for pbx, fields in self._read_all("ringing"):
            for raw in fields.values():
                call = self._load(raw)
                if call is not None:
                    call["pbx"] = pbx
                    calls.append(call)
        calls.sort(key=lambda c: (str(c.get("ringing_since") or ""), str(c.get("linkedid"))))
        return calls

    def lines(self) -> dict[str, dict[str, Any]]:
        """Every PBX's line states: line → ``{"state", "detail", "since", ...}``.

        A line reported by two PBXs (a configuration mistake) shows the latest update.
        """
        lines: dict[str, dict[str, Any]] = {}
        for pbx, fields in self._read_all("lines"):
            for name, raw in fields.items():
                state = self._load(raw)
                if state is None:
                    continue
                state["pbx"] = pbx
                line = _text(name)
                known = lines.get(line)
                if known is None or str(state.get("updated_at")) > str(known.get("updated_at")):
                    lines[line] = state
        return lines

    def listener_status(self) -> dict[str, dict[str, Any]]:
        """Every PBX's listener: pbx → ``{"connected", "detail", "since", "heartbeat_at"}``."""
        statuses: dict[str, dict[str, Any]] = {}
        for pbx, fields in self._read_all("status"):
            values = {_text(k): _text(v) for k, v in fields.items()}
            statuses[pbx] = {
                "pbx": pbx,
                "connected": values.get("connected") == "1",
                "detail": values.get("detail", ""),
                "since": values.get("since"),
                "heartbeat_at": values.get("heartbeat_at"),
            }
        return statuses

    @contextlib.contextmanager
    def subscribe(self, timeout: float = 15.0) -> Iterator[Iterator[dict[str, Any]]]:
        """Live events for server-sent events: ``with live.subscribe() as events: ...``.

        The iterator yields each event (a dict with ``type``) and :data:`KEEPALIVE`
        (``{"type": "keepalive"}``) after ``timeout`` seconds without one, so the caller can
        send an SSE comment and notice a client that went away. It never ends by itself;
        while Redis is unreachable it yields ``{"type": "unavailable"}`` once, keep-alives
        meanwhile, and resubscribes when Redis is back, then yields ``{"type": "reset",
        "pbx": None}`` (events may have been missed: read everything again).
        The subscription is made before the ``with`` body runs, so nothing published after
        entering is missed.
        """
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.subscribe(self.channel)
            yield self._events(pubsub, timeout)
        finally:
            pubsub.close()

    # ------------------------------------------------------------------- internals

    def _ringing_json(self, call: RingingCall) -> dict[str, Any]:
        return {
            "linkedid": call.linkedid,
            "caller": call.caller,
            "line": call.line,
            "ringing_since": _iso(call.ringing_since),
            "endpoints": list(call.endpoints),
            "pbx": self.pbx,
        }

    def _publish(self, message: Mapping[str, Any]) -> None:
        self.redis.publish(self.channel, _dumps(message))

    def _write(self, what: str, write: Callable[[], bool]) -> bool:
        """Run ``write``; on a Redis error log once per outage and return False."""
        with self._guard:
            clock = time.monotonic()
            if self._down_since is not None and clock < self._next_attempt:
                return False
            try:
                result = write()
                if self._down_since is not None:
                    self._resync()
            except redis.exceptions.RedisError as exc:
                if self._down_since is None:
                    self._down_since = clock
                    log.warning(
                        "live state for PBX %s: Redis unavailable (%s: %s) writing %s; "
                        "live updates are dropped until it answers again",
                        self.pbx,
                        type(exc).__name__,
                        exc,
                        what,
                    )
                self._next_attempt = clock + self.retry_after
                return False
            if self._down_since is not None:
                log.warning(
                    "live state for PBX %s: Redis answers again after %.1f s; state rewritten",
                    self.pbx,
                    clock - self._down_since,
                )
                self._down_since = None
            return result

    def _resync(self) -> None:
        """Rewrite everything this writer holds (after an outage) and tell readers."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(self.ringing_key, self.lines_key, self.status_key)
        if self._ringing:
            pipe.hset(self.ringing_key, mapping=_fields(self._ringing))
        if self._lines:
            pipe.hset(self.lines_key, mapping=_fields(self._lines))
        if self._status:
            pipe.hset(self.status_key, mapping=_fields(self._status))
        pipe.publish(self.channel, _dumps({"type": "reset", "pbx": self.pbx}))
        pipe.execute()

    def _read_all(self, kind: str) -> list[tuple[str, dict[bytes | str, bytes | str]]]:
        """``(pbx, fields)`` of every ``<prefix>:<pbx>:<kind>`` hash, sorted by pbx."""
        head, tail = f"{self.prefix}:", f":{kind}"
        keys = sorted(
            {_text(key) for key in self.redis.scan_iter(match=_glob_escape(head) + "*" + tail)}
        )
        if not keys:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for key in keys:
            pipe.hgetall(key)
        found = pipe.execute()
        return [
            (key[len(head) : -len(tail)], fields) for key, fields in zip(keys, found, strict=True)
        ]

    @staticmethod
    def _load(raw: bytes | str) -> dict[str, Any] | None:
        try:
            value = json.loads(raw)
        except ValueError:
            log.warning("live state: skipping a value that is not JSON: %r", raw[:80])
            return None
        return value if isinstance(value, dict) else None

    def _events(self, pubsub: Any, timeout: float) -> Iterator[dict[str, Any]]:
        quiet_since = time.monotonic()
        down = False
        while True:
            left = max(0.0, timeout - (time.monotonic() - quiet_since))
            try:
                message = pubsub.get_message(timeout=min(left, 1.0) if down else left)
            except redis.exceptions.RedisError as exc:
                if not down:
                    down = True
                    log.warning("live events: Redis unavailable (%s); retrying", exc)
                    yield {"type": "unavailable"}
                time.sleep(min(1.0, timeout))
                message = None
            else:
                if down:
                    down = False
                    log.warning("live events: Redis answers again")
                    yield {"type": "reset", "pbx": None}
                    quiet_since = time.monotonic()
            if message is not None and message.get("type") == "message":
                event = self._load(message["data"])
                if event is not None:
                    quiet_since = time.monotonic()
                    yield event
                continue
            if time.monotonic() - quiet_since >= timeout:
                quiet_since = time.monotonic()
                yield dict(KEEPALIVE)
