"""Live state in a real Redis: the ringing hash, events, line states, and Redis outages."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import redis

from callcenter.embedded_redis import EmbeddedRedis, connect
from callcenter.live import LiveState
from callcenter.tracking.records import Call, RingingCall

pytestmark = pytest.mark.redis

CST = timezone(timedelta(hours=8))
T0 = datetime(2026, 11, 23, 19, 20, 42, 120000, tzinfo=CST)
RINGING_KEY = "callcenter:live:pbx1:ringing"


def ringing(linkedid: str, seconds_before: float = 0.0, *endpoints: str) -> RingingCall:
    return RingingCall(
        linkedid=linkedid,
        caller="13811110001",
        line="12345",
        ringing_since=T0 - timedelta(seconds=seconds_before),
        endpoints=endpoints or ("SIP/duty1",),
    )


def finished(linkedid: str, outcome: Any = "no_answer") -> Call:
    return Call(
        linkedid=linkedid,
        caller="13811110001",
        caller_name=None,
        dialed="12345",
        line="12345",
        direction="inbound",
        started_at=T0,
        answered_at=None,
        ended_at=T0 + timedelta(seconds=20),
        ring_seconds=20.0,
        talk_seconds=None,
        outcome=outcome,
        answered_by=None,
        forwarded_to=None,
        transferred_to=None,
        hangup_cause=16,
        closed_by="hangup",
    )


class Events:
    """The events a subscriber receives, collected by a thread (keep-alives left out)."""

    def __init__(self, live: LiveState) -> None:
        self.received: list[dict[str, Any]] = []
        self.keepalives = 0
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(live,), daemon=True)

    def _run(self, live: LiveState) -> None:
        with live.subscribe(timeout=0.1) as events:
            self._ready.set()
            for event in events:
                if event["type"] == "keepalive":
                    self.keepalives += 1
                else:
                    self.received.append(event)
                if self._stop.is_set():
                    return

    def __enter__(self) -> Events:
        self._thread.start()
        assert self._ready.wait(5)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def settle(self, count: int = 0, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Wait for at least ``count`` events, then a little for any stray ones."""
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)
        return list(self.received)


@pytest.fixture
def live(redis_client: redis.Redis) -> LiveState:
    return LiveState(redis_client, "pbx1")


@pytest.fixture
def reader(redis_url: str) -> Iterator[LiveState]:
    client = connect(redis_url)
    try:
        yield LiveState(client)  # the console's view: any pbx name reads every PBX
    finally:
        client.close()


def stored(client: redis.Redis, key: str = RINGING_KEY) -> dict[str, dict[str, Any]]:
    return {_text(k): json.loads(v) for k, v in client.hgetall(key).items()}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def test_set_ringing_replaces_the_hash(live: LiveState, redis_client: redis.Redis) -> None:
    assert live.set_ringing([ringing("a.1", 5, "SIP/duty1", "SIP/duty2"), ringing("b.2")], T0)
    assert stored(redis_client) == {
        "a.1": {
            "linkedid": "a.1",
            "caller": "13811110001",
            "line": "12345",
            "ringing_since": "2026-11-23T11:20:37.120+00:00",
            "endpoints": ["SIP/duty1", "SIP/duty2"],
            "pbx": "pbx1",
        },
        "b.2": {
            "linkedid": "b.2",
            "caller": "13811110001",
            "line": "12345",
            "ringing_since": "2026-11-23T11:20:42.120+00:00",
            "endpoints": ["SIP/duty1"],
            "pbx": "pbx1",
        },
    }
    assert live.set_ringing([ringing("c.3")], T0)
    assert list(stored(redis_client)) == ["c.3"]
    assert live.set_ringing([], T0)
    assert redis_client.exists(RINGING_KEY) == 0


def test_ringing_is_published_only_when_it_changed(live: LiveState, reader: LiveState) -> None:
    with Events(reader) as events:
        live.set_ringing([ringing("a.1")], T0)
        live.set_ringing([ringing("a.1")], T0 + timedelta(seconds=1))  # same calls: quiet
        live.set_ringing([ringing("a.1"), ringing("b.2")], T0 + timedelta(seconds=2))
        live.set_ringing([ringing("a.1"), ringing("b.2")], T0 + timedelta(seconds=3))
        live.set_ringing([ringing("a.1", 0, "SIP/duty1", "SIP/duty2"), ringing("b.2")], T0)
        live.set_ringing([], T0 + timedelta(seconds=4))
        live.set_ringing([], T0 + timedelta(seconds=5))
        received = events.settle(4)
    assert [(e["type"], e["pbx"], e["count"]) for e in received] == [
        ("ringing", "pbx1", 1),
        ("ringing", "pbx1", 2),
        ("ringing", "pbx1", 2),  # another desk phone started ringing
        ("ringing", "pbx1", 0),
    ]
    assert received[0]["at"] == "2026-11-23T11:20:42.120+00:00"


def test_call_finished_removes_it_and_publishes(
    live: LiveState, reader: LiveState, redis_client: redis.Redis
) -> None:
    live.set_ringing([ringing("a.1"), ringing("b.2")], T0)
    with Events(reader) as events:
        assert live.call_finished(finished("a.1", "abandoned"))
        received = events.settle(1)
    assert list(stored(redis_client)) == ["b.2"]
    assert received == [
        {"type": "call", "pbx": "pbx1", "linkedid": "a.1", "outcome": "abandoned", "line": "12345"}
    ]
    # The listener's next snapshot no longer has a.1: nothing changed, nothing published.
    with Events(reader) as events:
        live.set_ringing([ringing("b.2")], T0)
        assert events.settle() == []


def test_readers_see_every_pbx(redis_client: redis.Redis, reader: LiveState) -> None:
    one = LiveState(redis_client, "pbx1")
    two = LiveState(redis_client, "pbx:two")  # a colon in the name is fine
    one.set_ringing([ringing("a.1", 1)], T0)
    two.set_ringing([ringing("b.2", 9)], T0)
    calls = reader.ringing()
    assert [(c["linkedid"], c["pbx"]) for c in calls] == [("b.2", "pbx:two"), ("a.1", "pbx1")]
    assert one.ringing() == calls  # any LiveState reads them all


def test_line_states(live: LiveState, reader: LiveState) -> None:
    with Events(reader) as events:
        assert live.set_line_state("12345", "ringing", {"linkedid": "a.1"})
        first = reader.lines()["12345"]
        time.sleep(0.01)
        assert live.set_line_state("12345", "ringing", {"linkedid": "a.1"})  # unchanged: quiet
        again = reader.lines()["12345"]
        assert live.set_line_state("12345", "in_call", {"endpoint": "SIP/duty1"})
        live.set_line_state("67890", "phone_offline", {"endpoints": ["SIP/duty9"]})
        received = events.settle(3)
    assert first["state"] == "ringing"
    assert first["detail"] == {"linkedid": "a.1"}
    assert first["pbx"] == "pbx1"
    assert again["since"] == first["since"]
    assert again["updated_at"] > first["updated_at"]
    lines = reader.lines()
    assert {line: state["state"] for line, state in lines.items()} == {
        "12345": "in_call",
        "67890": "phone_offline",
    }
    assert lines["12345"]["since"] > first["since"]
    assert [(e["type"], e["line"], e["state"]) for e in received] == [
        ("line", "12345", "ringing"),
        ("line", "12345", "in_call"),
        ("line", "67890", "phone_offline"),
    ]
    with pytest.raises(ValueError, match="unknown line state"):
        live.set_line_state("12345", "on_fire", {})


def test_listener_status(live: LiveState, reader: LiveState) -> None:
    assert reader.listener_status() == {}
    with Events(reader) as events:
        assert live.set_listener_status(True, "connected to 10.0.0.5:5038")
        first = reader.listener_status()["pbx1"]
        time.sleep(0.01)
        assert live.set_listener_status(True, "connected to 10.0.0.5:5038")  # a heartbeat
        beat = reader.listener_status()["pbx1"]
        assert live.set_listener_status(False, "connection refused")
        received = events.settle(2)
    assert first["connected"] is True
    assert first["detail"] == "connected to 10.0.0.5:5038"
    assert beat["since"] == first["since"]
    assert beat["heartbeat_at"] > first["heartbeat_at"]
    down = reader.listener_status()["pbx1"]
    assert down["connected"] is False
    assert down["since"] > first["since"]
    assert [(e["type"], e["connected"]) for e in received] == [("status", True), ("status", False)]
    datetime.fromisoformat(down["heartbeat_at"]).astimezone(UTC)


def test_clear(live: LiveState, reader: LiveState, redis_client: redis.Redis) -> None:
    live.set_ringing([ringing("a.1")], T0)
    live.set_line_state("12345", "ringing", {})
    live.set_listener_status(True, "")
    with Events(reader) as events:
        assert live.clear()
        assert events.settle(1) == [{"type": "reset", "pbx": "pbx1"}]
    assert reader.ringing() == []
    assert reader.lines() == {}
    assert reader.listener_status() == {}


def test_subscribe_sends_keepalives(reader: LiveState) -> None:
    with reader.subscribe(timeout=0.2) as events:
        started = time.monotonic()
        assert next(events) == {"type": "keepalive"}
        assert 0.15 <= time.monotonic() - started < 2


def test_subscribe_receives_what_is_published_after_entering(
    live: LiveState, reader: LiveState
) -> None:
    with reader.subscribe(timeout=5) as events:
        live.set_ringing([ringing("a.1")], T0)
        assert next(events)["type"] == "ringing"


def test_a_decoding_client_works_too(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True, socket_timeout=5)
    try:
        live = LiveState(client, "pbx1")
        assert live.set_ringing([ringing("a.1")], T0)
        assert live.set_line_state("12345", "ringing", {})
        assert [c["linkedid"] for c in live.ringing()] == ["a.1"]
        assert list(live.lines()) == ["12345"]
    finally:
        client.close()


def test_writes_while_redis_is_down_return_false_and_warn_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = EmbeddedRedis(tmp_path, persist=False).start()
    client = connect(server.url, socket_timeout=2.0, retries=1)
    live = LiveState(client, "pbx1", retry_after=0.0)
    try:
        assert live.set_ringing([ringing("a.1")], T0)
        server.stop()
        with caplog.at_level(logging.WARNING, logger="callcenter.live"):
            started = time.monotonic()
            results = [
                live.set_ringing([ringing("a.1"), ringing("b.2")], T0),
                live.call_finished(finished("a.1")),
                live.set_line_state("12345", "ringing", {"linkedid": "b.2"}),
                live.set_listener_status(False, "lost Redis"),
                live.set_ringing([ringing("b.2")], T0),
                live.clear(),  # then the state is set again:
                live.set_ringing([ringing("b.2")], T0),
                live.set_line_state("12345", "ringing", {"linkedid": "b.2"}),
            ]
            elapsed = time.monotonic() - started
        assert results == [False] * 8
        assert elapsed < 2.0
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1, [r.getMessage() for r in warnings]
        assert "Redis unavailable" in warnings[0].getMessage()
        with pytest.raises(redis.exceptions.ConnectionError):
            live.ringing()  # readers raise: "unknown" is not "nothing rings"

        caplog.clear()
        server = EmbeddedRedis(tmp_path, persist=False).start()  # same folder, same URL
        with caplog.at_level(logging.WARNING, logger="callcenter.live"):
            assert live.set_listener_status(True, "Redis is back")
        assert ["answers again" in r.getMessage() for r in caplog.records] == [True]
        # What was written during the outage is there now.
        assert [c["linkedid"] for c in live.ringing()] == ["b.2"]
        assert live.lines()["12345"]["detail"] == {"linkedid": "b.2"}
        assert live.listener_status()["pbx1"]["connected"] is True
    finally:
        client.close()
        server.stop()


def test_while_redis_is_down_writes_do_not_wait(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path, persist=False).start()
    client = connect(server.url)  # redis-py's default retries
    live = LiveState(client, "pbx1", retry_after=60.0)
    try:
        server.stop()
        assert not live.set_ringing([ringing("a.1")], T0)
        started = time.monotonic()
        for _ in range(1000):
            assert not live.set_ringing([ringing("a.1")], T0)
        assert time.monotonic() - started < 0.5, "skipped until retry_after has passed"
    finally:
        client.close()
        server.stop()


def test_subscribers_survive_a_redis_restart(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path, persist=False).start()
    writer_client = connect(server.url, socket_timeout=2.0, retries=1)
    reader_client = connect(server.url)
    writer = LiveState(writer_client, "pbx1", retry_after=0.0)
    try:
        with Events(LiveState(reader_client)) as events:
            writer.set_ringing([ringing("a.1")], T0)
            events.settle(1)
            server.stop()
            time.sleep(0.5)
            server = EmbeddedRedis(tmp_path, persist=False).start()
            deadline = time.monotonic() + 10
            while not any(e["type"] == "reset" for e in events.received):
                assert time.monotonic() < deadline, events.received
                time.sleep(0.05)
            writer.set_ringing([ringing("b.2")], T0)
            received = events.settle(4)
        types = [e["type"] for e in received]
        assert types[:2] == ["ringing", "unavailable"]
        assert "reset" in types
        assert types[-1] == "ringing"
    finally:
        writer_client.close()
        reader_client.close()
        server.stop()
