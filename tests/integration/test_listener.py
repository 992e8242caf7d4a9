"""The live listener over real TCP against the project's AMI replay server.

Real parts only: the replay server on loopback, panoramisk with our protocol, SQLite and
PostgreSQL, a real Redis (the embedded one). The listener must store exactly the calls that
``callcenter replay`` prints for the same transcripts, survive a dropped connection without
losing or doubling a call, and say clearly when it cannot log in or reach the PBX.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from callcenter.ami.replay_server import AmiReplayServer
from callcenter.config import Config, load_config
from callcenter.listen import Pipeline, build_pipeline, run_pipeline
from callcenter.replay import replay_calls
from callcenter.store.db import make_engine, make_session_factory
from callcenter.store.migrate import upgrade
from callcenter.store.models import Call, Outage
from tests.unit.helpers import load_events

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "ami"
SECRET = secrets.token_urlsafe(12)  # per test run: no secret committed
TRANSCRIPTS = [
    FIXTURES / "asterisk20" / "answered.jsonl",
    FIXTURES / "asterisk20" / "no_answer_timeout.jsonl",
    FIXTURES / "asterisk20" / "busy_dnd.jsonl",
    FIXTURES / "asterisk20" / "pbx_forward_to_mobile.jsonl",
    FIXTURES / "asterisk20-pjsip" / "pj_queue_answered.jsonl",
    FIXTURES / "cacofonisk" / "xfer_attended" / "xfer_abacbc.json",
    FIXTURES / "cacofonisk" / "xfer_misc" / "call_forwarding.json",
]
COMPARED = ("linkedid", "caller", "dialed", "direction", "outcome", "answered_by",
            "forwarded_to", "transferred_to", "hangup_cause", "closed_by")  # fmt: skip


def make_config(
    tmp_path: Path,
    db_url: str,
    port: int,
    secret: str = SECRET,
    lines: list[dict[str, object]] | None = None,
) -> Config:
    upgrade(db_url)  # production runs `callcenter db upgrade` first
    return load_config(
        env={},
        overrides={
            "instance_path": str(tmp_path / "instance"),
            "database": {"url": db_url},
            "ami": {"pbx": [{"name": "lab", "port": port, "secret": secret}]},
            "lines": lines or [],
        },
    )


async def wait_for(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not reached in time")
        await asyncio.sleep(0.05)


def read_before_pause(listener: Any, calls_before: int, paused_in: object = None) -> bool:
    """Whether the listener has read what the server sent before it paused: the calls before
    the pause ended, and the one it paused in (if any) begun. A drop aborts the connection,
    and what the listener had not read by then is lost with it (as with a real PBX)."""
    begun = paused_in is None or paused_in in listener.tracker.calls
    return begun and listener.calls_finished >= calls_before


async def run_listener(pipeline: Pipeline, body: Callable[[], Awaitable[None]]) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(run_pipeline(pipeline, stop))
    try:
        await body()
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=20)


def stored(db_url: str, model: Any) -> list[Any]:
    engine = make_engine(db_url)
    try:
        with make_session_factory(engine)() as session:
            return list(session.scalars(select(model).order_by(model.id)))
    finally:
        engine.dispose()


def stored_calls(db_url: str) -> list[Call]:
    return stored(db_url, Call)


def expected_calls(paths: list[Path]) -> list[dict[str, object]]:
    return [c.to_json() for c in replay_calls(paths)]


def as_dict(row: Call) -> dict[str, object]:
    return {key: getattr(row, key) for key in COMPARED}


def test_listener_stores_exactly_what_replay_prints(
    tmp_path: Path, db_url: str, redis_url: str
) -> None:
    expected = expected_calls(TRANSCRIPTS)

    async def scenario() -> None:
        async with AmiReplayServer(
            TRANSCRIPTS, speed=0, secret=SECRET, client_stall_timeout=120
        ) as server:
            pipeline = build_pipeline(make_config(tmp_path, db_url, server.port), redis_url)

            async def body() -> None:
                await server.wait_until_finished()
                await wait_for(lambda: pipeline.sink.stored >= len(expected))
                await wait_for(lambda: pipeline.sink.enqueued >= len(expected))

            await run_listener(pipeline, body)

    asyncio.run(scenario())
    rows = stored_calls(db_url)
    assert [as_dict(r) for r in rows] == [{k: e[k] for k in COMPARED} for e in expected]
    for row, want in zip(rows, expected, strict=True):
        if want["ring_seconds"] is not None:  # untimed transcripts get the server's times
            assert row.ring_seconds == pytest.approx(want["ring_seconds"], abs=0.001)
        assert not row.times_estimated


def uniqueid_seqs(path: Path) -> list[int]:
    """The channel sequence numbers (``<epoch>.<seq>``) a transcript holds, in order."""
    found = {re.search(r"\.(\d+)$", e["Uniqueid"]) for e in load_events(path) if "Uniqueid" in e}
    return sorted(int(m.group(1)) for m in found if m)


@pytest.mark.parametrize("where", ["between calls", "mid call"])
def test_a_dropped_connection_loses_no_call_and_records_the_outage(
    tmp_path: Path, db_url: str, redis_url: str, where: str
) -> None:
    paths = TRANSCRIPTS[:3]
    expected = expected_calls(paths)
    second = expected[1]["linkedid"]

    def at_drop(event: object) -> bool:
        e = dict(event)  # type: ignore[call-overload]
        if where == "between calls":
            return e.get("Event") == "Newchannel" and e.get("Uniqueid") == second
        return e.get("Event") == "DialState" and e.get("Linkedid") == second

    async def scenario() -> None:
        async with AmiReplayServer(paths, speed=0, secret=SECRET) as server:
            server.pause_on(at_drop)
            pipeline = build_pipeline(make_config(tmp_path, db_url, server.port), redis_url)
            (listener,) = pipeline.listeners

            async def body() -> None:
                await server.wait_paused()
                await wait_for(lambda: listener.resynced.is_set())
                await server.wait_flushed()  # the drop comes after what was sent, not amid it
                paused_in = second if where == "mid call" else None
                await wait_for(lambda: read_before_pause(listener, 1, paused_in))
                server.drop_clients()
                await wait_for(lambda: not listener.connected.is_set())
                await wait_for(lambda: listener.resynced.is_set())  # back, re-synced
                server.resume()
                await server.wait_until_finished()
                await wait_for(lambda: pipeline.sink.stored >= len(expected))
                await wait_for(lambda: stored(db_url, Outage)[0].calls_lost_estimate is not None)
                await asyncio.sleep(0.3)  # nothing more (no duplicate) arrives

            await run_listener(pipeline, body)

    asyncio.run(scenario())
    rows = stored_calls(db_url)
    assert [r.linkedid for r in rows] == [e["linkedid"] for e in expected]
    assert [r.outcome for r in rows] == [e["outcome"] for e in expected]
    outages = stored(db_url, Outage)
    assert len(outages) == 1
    assert outages[0].pbx == "lab"
    assert outages[0].ended_at is not None and outages[0].ended_at >= outages[0].started_at
    # no channel newer than the last one seen was up at the re-sync: the count comes from
    # the next channel created (the recordings' numbering may leave a gap between calls)
    before, after = (0, 1) if where == "between calls" else (1, 2)
    unseen = uniqueid_seqs(paths[after])[0] - uniqueid_seqs(paths[before])[-1]
    assert outages[0].calls_lost_estimate == unseen // 2


def test_wrong_secret_is_one_clear_line_and_retries(
    tmp_path: Path, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)

    async def scenario() -> int:
        async with AmiReplayServer(TRANSCRIPTS[:1], speed=0, secret=SECRET) as server:
            config = make_config(tmp_path, db_url, server.port, secret="wrong")
            pipeline = build_pipeline(config, None)

            async def body() -> None:
                await asyncio.sleep(3.5)  # first try, then retries after 1 s and 2 s

            await run_listener(pipeline, body)
            return pipeline.listeners[0].events_received

    assert asyncio.run(scenario()) == 0
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    assert "login to PBX lab" in errors[0].getMessage()
    assert "Authentication failed" in errors[0].getMessage()
    assert not any(r.exc_info for r in caplog.records)  # no traceback
    retries = [r for r in caplog.records if "reconnecting to lab" in r.getMessage()]
    assert len(retries) >= 2


def test_unreachable_pbx_is_one_clear_line_and_retries(
    tmp_path: Path, db_url: str, caplog: pytest.LogCaptureFixture, unused_port: int
) -> None:
    caplog.set_level(logging.INFO)
    pipeline = build_pipeline(make_config(tmp_path, db_url, unused_port), None)

    async def body() -> None:
        await asyncio.sleep(3.5)

    asyncio.run(run_listener(pipeline, body))
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    assert f"cannot reach PBX lab at 127.0.0.1:{unused_port}" in errors[0].getMessage()
    assert not any(r.exc_info for r in caplog.records)
    assert len([r for r in caplog.records if "reconnecting to lab" in r.getMessage()]) >= 2


@pytest.fixture
def unused_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_chinese_caller_name_split_across_tcp_reads(tmp_path: Path, db_url: str) -> None:
    """A raw server writes the name's UTF-8 bytes in two TCP sends, 100 ms apart."""
    name = "市应急管理局".encode()
    events = [
        b"Event: Newchannel\r\nChannel: SIP/pstn-00000001\r\nUniqueid: 1.1\r\nLinkedid: 1.1\r\n"
        b"ChannelStateDesc: Ring\r\nCallerIDNum: 13800000009\r\nCallerIDName: " + name,
        b"\r\nExten: 12345\r\nTimestamp: 1795432818.100000\r\n\r\n"
        b"Event: Hangup\r\nChannel: SIP/pstn-00000001\r\nUniqueid: 1.1\r\nLinkedid: 1.1\r\n"
        b"Cause: 16\r\nTimestamp: 1795432819.100000\r\n\r\n",
    ]
    split = events[0].index(name) + 4  # inside the second character's three bytes
    chunks = [events[0][:split], events[0][split:] + events[1]]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(b"Asterisk Call Manager/9.0.0\r\n")
            login = await reader.readuntil(b"\r\n\r\n")
            action_id = next(
                line.split(b": ", 1)[1]
                for line in login.split(b"\r\n")
                if line.startswith(b"ActionID")
            )
            writer.write(b"Response: Success\r\nActionID: " + action_id + b"\r\n\r\n")
            await writer.drain()
            for chunk in chunks:
                writer.write(chunk)
                await writer.drain()
                await asyncio.sleep(0.1)
            await reader.read()  # keep the connection until the client leaves
        finally:
            writer.close()

    async def scenario() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        pipeline = build_pipeline(make_config(tmp_path, db_url, port), None)

        async def body() -> None:
            await wait_for(lambda: pipeline.sink.stored >= 1)

        try:
            await run_listener(pipeline, body)
        finally:
            server.close()
            await server.wait_closed()

    asyncio.run(scenario())
    (row,) = stored_calls(db_url)
    assert row.caller_name == "市应急管理局"


def test_device_status_and_astdb_flags_are_stored(tmp_path: Path, db_url: str) -> None:
    """PeerStatus from the transcript, and a forward set in AstDB found by polling DBGet."""
    from callcenter.store.duty import DeviceEvent

    paths = [FIXTURES / "asterisk20" / "phone_offline.jsonl"]

    async def scenario() -> None:
        async with AmiReplayServer(
            paths, speed=0, secret=SECRET, astdb={"CF/duty1": "13800138000"}
        ) as server:
            lines: list[dict[str, object]] = [{"number": "12345", "desk_phones": ["SIP/duty1"]}]
            config = make_config(tmp_path, db_url, server.port, lines=lines)
            pipeline = build_pipeline(config, None)
            (listener,) = pipeline.listeners
            listener.astdb_poll_seconds = 0.3

            async def body() -> None:
                await server.wait_until_finished()
                await wait_for(lambda: pipeline.sink.stored >= 1)
                await wait_for(lambda: len(stored(db_url, DeviceEvent)) >= 3)
                server.astdb.pop("CF/duty1")  # forwarding switched off at the phone
                await wait_for(lambda: len(stored(db_url, DeviceEvent)) >= 4)

            await run_listener(pipeline, body)

    asyncio.run(scenario())
    rows = stored(db_url, DeviceEvent)
    status = [(r.endpoint, r.state) for r in rows if r.kind == "status"]
    assert status == [("SIP/duty1", "offline"), ("SIP/duty1", "online")]
    forward = [(r.endpoint, r.state, r.detail) for r in rows if r.kind == "forward"]
    assert forward[0] == ("SIP/duty1", "on", "13800138000")
    assert forward[-1][:2] == ("SIP/duty1", "off")


def add_desk_phone(db_url: str, number: str, endpoint: str) -> None:
    """What the console's line page does: one more desk phone for a stored line."""
    from callcenter.store.org import DeskPhone, DutyLine

    engine = make_engine(db_url)
    try:
        with make_session_factory(engine).begin() as session:
            line = session.scalars(select(DutyLine).filter_by(number=number)).one()
            line.desk_phones.append(DeskPhone(endpoint=endpoint))
    finally:
        engine.dispose()


def test_the_listener_knows_the_desk_phones_as_stored_and_as_edited(
    tmp_path: Path, db_url: str
) -> None:
    """The config only seeds the duty lines; the console edits their desk phones in the
    database. A call answered by a desk phone stored there (not in the config) is no
    forward, and a desk phone added while the listener runs is watched: its call forward,
    set in AstDB, is found."""
    from callcenter.store.duty import DeviceEvent
    from callcenter.store.seed import seed_from_config

    paths = [FIXTURES / "asterisk20" / "answered.jsonl"]  # 12345, answered by SIP/duty1

    async def scenario() -> None:
        async with AmiReplayServer(
            paths, speed=0, secret=SECRET, astdb={"CF/duty2": "13900139000"}
        ) as server:
            lines: list[dict[str, object]] = [{"number": "12345", "desk_phones": ["SIP/duty9"]}]
            config = make_config(tmp_path, db_url, server.port, lines=lines)
            engine = make_engine(db_url)
            with make_session_factory(engine).begin() as session:
                seed_from_config(session, config)
            engine.dispose()
            add_desk_phone(db_url, "12345", "SIP/duty1")
            pipeline = build_pipeline(config, None)
            pipeline.directory_refresh = 0.1
            (listener,) = pipeline.listeners
            listener.astdb_poll_seconds = 0.2

            def forwards() -> list[tuple[str, str, str]]:  # SIP/duty2's, the one set
                rows = stored(db_url, DeviceEvent)
                return [
                    (r.endpoint, r.state, r.detail)
                    for r in rows
                    if r.kind == "forward" and r.endpoint == "SIP/duty2"
                ]

            async def body() -> None:
                await server.wait_until_finished()
                await wait_for(lambda: pipeline.sink.stored >= 1)
                assert forwards() == []  # no desk phone yet: not polled
                await asyncio.to_thread(add_desk_phone, db_url, "12345", "SIP/duty2")
                await wait_for(lambda: ("SIP/duty2", "on", "13900139000") in forwards())

            await run_listener(pipeline, body)

    asyncio.run(scenario())
    (row,) = stored_calls(db_url)
    assert (row.line, row.answered_by, row.forwarded_to) == ("12345", "SIP/duty1", None)


@pytest.mark.parametrize("outcome", ["answered", "failed"])
def test_click_to_call_requests_are_dialed_through_the_listener(
    tmp_path: Path, db_url: str, redis_url: str, outcome: str
) -> None:
    from callcenter.ami.replay_server import OriginateResult
    from callcenter.clicktocall import request_call, result_of
    from callcenter.embedded_redis import connect

    client = connect(redis_url)
    sent: list[dict[str, str]] = []

    def handler(action: dict[str, str]) -> OriginateResult:
        sent.append(dict(action))
        return OriginateResult(
            success=outcome == "answered", reason=4 if outcome == "answered" else 3
        )

    async def scenario() -> str:
        async with AmiReplayServer(
            TRANSCRIPTS[:1], speed=0, secret=SECRET, originate_handler=handler
        ) as server:
            pipeline = build_pipeline(make_config(tmp_path, db_url, server.port), redis_url)
            request_id = request_call(client, "lab", "SIP/duty1", "13811110001", "officer_a")

            async def body() -> None:
                await wait_for(lambda: (result_of(client, request_id) or {}).get("final") is True)

            await run_listener(pipeline, body)
            return request_id

    request_id = asyncio.run(scenario())
    assert (result_of(client, request_id) or {})["result"] == outcome
    (action,) = sent
    assert action["Channel"] == "SIP/duty1"
    assert action["Exten"] == "13811110001"
    assert action["Context"] == "from-internal"
