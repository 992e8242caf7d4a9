"""The live board: lines with their live state, the shift on duty, open call-backs; the
JSON for polling; server-sent events from the listener's live state; Redis down."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from callcenter.embedded_redis import EmbeddedRedis, connect
from callcenter.live import LiveState
from callcenter.store.duty import DeviceEvent, Shift
from callcenter.tracking.records import RingingCall
from tests.web.conftest import Tree
from tests.web.test_calls import (
    LINE_A,
    LINE_B,
    add_call,
    add_callback,
    add_line,
    earlier_today,
    signed_in,
)


@pytest.fixture(scope="module")
def embedded_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    with EmbeddedRedis(tmp_path_factory.mktemp("redis"), persist=False) as server:
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
def writer(redis_url: str) -> Iterator[LiveState]:
    """The listener's side: a LiveState that writes for PBX ``pbx1``."""
    client = connect(redis_url)
    try:
        yield LiveState(client, "pbx1")
    finally:
        client.close()


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    return {
        **app_config,
        "BABEL_DEFAULT_LOCALE": "en",
        "BOARD_SSE_KEEPALIVE": 0.2,
        "BOARD_SSE_MAX_SECONDS": 10.0,
    }


@pytest.fixture
def english(client: FlaskClient) -> FlaskClient:
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


@pytest.fixture
def lines(tree: Tree, app_db: Callable[[], Any]) -> dict[str, int]:
    return {
        LINE_A: add_line(
            app_db, tree.a, LINE_A, desk_phones=("SIP/duty1", "PJSIP/2001"), name="A duty"
        ),
        LINE_B: add_line(app_db, tree.b, LINE_B, desk_phones=("SIP/dutyb",), name="B duty"),
    }


def ringing(linkedid: str, line: str, seconds_ago: float, caller: str = "13811110001") -> Any:
    return RingingCall(
        linkedid=linkedid,
        caller=caller,
        line=line,
        ringing_since=datetime.now(UTC) - timedelta(seconds=seconds_ago),
        endpoints=("SIP/duty1",),
    )


# --------------------------------------------------------------------------- page and JSON


def test_board_shows_lines_shift_and_todays_open_callbacks(
    app: Flask,
    english: FlaskClient,
    login: Callable[..., Any],
    app_db: Any,
    lines: dict[str, int],
    tree: Tree,
) -> None:
    now = datetime.now(UTC)
    with app_db() as session:
        session.add(
            Shift(
                unit_id=tree.a.id,
                day=now.date(),
                name="白班",
                starts_at=now - timedelta(hours=2),
                ends_at=now + timedelta(hours=6),
                main_officer="张三",
                backup_officer="李四",
                leader="王五",
            )
        )
    today = add_call(app_db, LINE_A, earlier_today(3), caller="13800000077")
    old = add_call(app_db, LINE_A, now - timedelta(days=3), caller="13800000066")
    other_unit = add_call(app_db, LINE_B, earlier_today(3), caller="13800000055")
    for call_id in (today, old, other_unit):
        add_callback(app_db, call_id)
    signed_in(login, english, "officer_a")

    html = english.get("/").get_data(as_text=True)
    assert 'data-line="12345"' in html
    assert 'data-line="67890"' not in html  # another unit's line
    assert "张三" in html and "李四" in html and "王五" in html
    assert "13800000077" in html
    assert "13800000066" not in html  # not today's: counted as older
    assert "13800000055" not in html
    assert "Live state unavailable" in html  # no Redis configured in this app

    state = english.get("/board/state.json").get_json()
    assert [line["number"] for line in state["lines"]] == [LINE_A]
    assert state["lines"][0]["state"] == "unknown"
    assert state["live"]["available"] is False
    assert [cb["call_id"] for cb in state["callbacks"]] == [today]
    assert state["older_open_callbacks"] == 1
    assert state["shifts"][0]["main_officer"] == "张三"
    assert state["units_without_shift"] == []


@pytest.mark.redis
def test_live_state_ringing_alert_in_call_and_offline(
    app: Flask,
    english: FlaskClient,
    login: Callable[..., Any],
    app_db: Any,
    lines: dict[str, int],
    tree: Tree,
    redis_url: str,
    writer: LiveState,
) -> None:
    app.config["REDIS_URL"] = redis_url
    signed_in(login, english, "inspector_city")  # sees both counties
    writer.set_ringing(
        [
            ringing("a.1", LINE_A, 20.0, caller="<img src=x onerror=alert(1)>"),
            ringing("b.1", LINE_B, 3.0),
        ],
        datetime.now(UTC),
    )
    writer.set_listener_status(True)
    state = english.get("/board/state.json").get_json()
    by_line = {line["number"]: line for line in state["lines"]}
    assert state["live"]["available"] is True
    assert by_line[LINE_A]["state"] == "ringing"
    assert by_line[LINE_A]["alert"] is True  # 20 s past a 15 s limit
    assert by_line[LINE_A]["ringing"][0]["seconds"] >= 20
    assert by_line[LINE_B]["state"] == "ringing"
    assert by_line[LINE_B]["alert"] is False
    assert state["alerts"] == 1
    html = english.get("/").get_data(as_text=True)
    assert "<img src=x" not in html
    assert "&lt;img src=x" in html
    assert "ringing past its answer limit" in html

    writer.set_ringing([], datetime.now(UTC))
    writer.set_line_state(LINE_A, "in_call")
    with app_db() as session:
        session.add(
            DeviceEvent(
                endpoint="SIP/dutyb",
                kind="status",
                state="online",
                at=datetime.now(UTC) - timedelta(hours=1),
            )
        )
        session.add(
            DeviceEvent(endpoint="SIP/dutyb", kind="status", state="offline", at=datetime.now(UTC))
        )
    state = english.get("/board/state.json").get_json()
    by_line = {line["number"]: line for line in state["lines"]}
    assert by_line[LINE_A]["state"] == "in_call"
    assert by_line[LINE_B]["state"] == "phone_offline"
    assert by_line[LINE_B]["offline_phones"] == ["SIP/dutyb"]
    assert state["alerts"] == 0


def test_board_survives_an_unreachable_redis(
    app: Flask, english: FlaskClient, login: Callable[..., Any], app_db: Any, lines: dict[str, int]
) -> None:
    app.config["REDIS_URL"] = "redis://127.0.0.1:9/0"  # nothing listens there
    signed_in(login, english, "officer_a")
    page = english.get("/")
    assert page.status_code == 200
    assert "Live state unavailable" in page.get_data(as_text=True)
    state = english.get("/board/state.json").get_json()
    assert state["live"] == {"available": False, "error": "Redis unavailable", "listeners": []}
    events = english.get("/board/events")
    assert events.status_code == 200
    assert "event: unavailable" in events.get_data(as_text=True)


def test_board_needs_login(client: FlaskClient) -> None:
    for path in ("/", "/board/state.json", "/board/events"):
        assert client.get(path).status_code in (302, 303, 401)


# --------------------------------------------------------------------------- server-sent events


class Stream:
    """Reads an SSE response in a thread, so a test can wait for an event with a deadline."""

    def __init__(self, response: Any) -> None:
        self.response = response
        self.text = ""
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for chunk in self.response.response:
                with self._lock:
                    self.text += chunk.decode() if isinstance(chunk, bytes) else chunk
        except Exception:  # the test closed the stream
            return

    def events(self) -> list[tuple[str, dict[str, Any]]]:
        found = []
        with self._lock:
            blocks = self.text.split("\n\n")
        for block in blocks:
            fields = dict(
                line.split(": ", 1)
                for line in block.splitlines()
                if ": " in line and line[0] != ":"
            )
            if "event" in fields:
                found.append((fields["event"], json.loads(fields.get("data", "{}"))))
        return found

    def wait_for(self, kind: str, timeout: float = 5.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event, data in self.events():
                if event == kind:
                    return data
            time.sleep(0.02)
        raise AssertionError(f"no {kind!r} event in {self.text!r}")

    def finish(self, timeout: float = 10.0) -> None:
        """Wait for the server to end the stream (its maximum age), then close it."""
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the event stream did not end"
        self.response.close()


@pytest.mark.redis
def test_sse_relays_ringing_events_with_keepalives(
    app: Flask,
    english: FlaskClient,
    login: Callable[..., Any],
    lines: dict[str, int],
    redis_url: str,
    writer: LiveState,
) -> None:
    app.config["REDIS_URL"] = redis_url
    app.config["BOARD_SSE_MAX_SECONDS"] = 2.0
    signed_in(login, english, "officer_a")
    response = english.get("/board/events", buffered=False)
    assert response.status_code == 200
    assert response.mimetype == "text/event-stream"
    assert response.headers["Cache-Control"] == "no-cache"
    stream = Stream(response)
    try:
        # subscribed before the view returned: nothing published now is missed
        writer.set_ringing([ringing("a.1", LINE_A, 1.0)], datetime.now(UTC))
        event = stream.wait_for("ringing")
        assert event == {"type": "ringing", "pbx": "pbx1"}
        writer.set_line_state(LINE_B, "in_call")  # another unit's line: not relayed
        writer.set_line_state(LINE_A, "in_call")
        assert stream.wait_for("line") == {
            "type": "line",
            "pbx": "pbx1",
            "line": LINE_A,
            "state": "in_call",
        }
        time.sleep(0.5)
        assert ": keepalive" in stream.text
        assert all(data.get("line") != LINE_B for _kind, data in stream.events())
        assert stream.text.startswith("retry: ")
    finally:
        stream.finish()


@pytest.mark.redis
def test_sse_stream_ends_after_its_maximum_age(
    app: Flask,
    english: FlaskClient,
    login: Callable[..., Any],
    lines: dict[str, int],
    redis_url: str,
) -> None:
    app.config["REDIS_URL"] = redis_url
    app.config["BOARD_SSE_MAX_SECONDS"] = 0.5
    signed_in(login, english, "officer_a")
    started = time.monotonic()
    response = english.get("/board/events")  # buffered: returns when the stream ends
    assert time.monotonic() - started < 5
    assert ": keepalive" in response.get_data(as_text=True)
    # the subscription was let go: no client is left subscribed to the channel
    client: redis.Redis = connect(redis_url)
    try:
        deadline = time.monotonic() + 3
        while client.pubsub_numsub("callcenter:live:events")[0][1] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.pubsub_numsub("callcenter:live:events")[0][1] == 0
    finally:
        client.close()
