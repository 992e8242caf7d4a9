"""The listener recovers from what a real PBX link does: silence, a restart, a failing part.

Real parts only: the AMI replay server (or a bare asyncio server) on loopback, panoramisk
with our protocol, SQLite and PostgreSQL. The listener's timeouts are shortened here the
way a config file would set them (``ami.pbx[].ping_interval_seconds`` and friends).
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from callcenter.ami.listener import PbxListener
from callcenter.ami.replay_server import AmiReplayServer
from callcenter.listen import build_pipeline
from callcenter.store.models import Outage
from callcenter.tracking.records import Call
from tests.integration.test_listener import (
    COMPARED,
    SECRET,
    TRANSCRIPTS,
    expected_calls,
    make_config,
    read_before_pause,
    run_listener,
    stored,
    stored_calls,
    uniqueid_seqs,
    wait_for,
)

PATHS = TRANSCRIPTS[:3]  # answered, no answer (ring timeout), busy


def quick(listener: PbxListener) -> None:
    """Timeouts short enough for a test; the defaults are 10 s each."""
    listener.ping_interval = 0.2
    listener.ping_timeout = 0.5
    listener.login_timeout = 0.5
    listener.resync_timeout = 0.5
    listener.resync_retry = 0.2


def mid_call(linkedid: object) -> Callable[[Mapping[str, str]], bool]:
    def predicate(event: Mapping[str, str]) -> bool:
        return event.get("Event") == "DialState" and event.get("Linkedid") == linkedid

    return predicate


def no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    assert not [r.getMessage() for r in caplog.records if r.exc_info]


@pytest.mark.parametrize("call", ["goes on", "ends during the outage"])
def test_a_pbx_that_stops_answering_is_noticed_and_nothing_is_lost(
    tmp_path: Path, db_url: str, caplog: pytest.LogCaptureFixture, call: str
) -> None:
    """A pulled cable: the TCP connection stays open, nothing comes back. The unanswered
    Ping aborts it, the outage is recorded, and once the PBX answers again the listener
    logs in, re-syncs and stores every finished call once."""
    caplog.set_level(logging.INFO)
    expected = expected_calls(PATHS)
    second, third = expected[1]["linkedid"], expected[2]["linkedid"]
    quiet_but_alive: list[bool] = []

    async def scenario() -> None:
        async with AmiReplayServer(PATHS, speed=0, secret=SECRET) as server:
            server.pause_on(mid_call(second))  # the second call rings at the cut
            pipeline = build_pipeline(make_config(tmp_path, db_url, server.port), None)
            (listener,) = pipeline.listeners
            quick(listener)

            async def body() -> None:
                await server.wait_paused()
                await wait_for(lambda: listener.resynced.is_set())
                transport = listener._connection.protocol.transport  # type: ignore[union-attr]
                sock = transport.get_extra_info("socket")
                assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)
                # A quiet PBX that answers Ping is not a dead one: several pings go by.
                await asyncio.sleep(1.5)
                quiet_but_alive.append(listener.connected.is_set() and not stored(db_url, Outage))

                assert server.cut_off() == 1
                await wait_for(lambda: not listener.connected.is_set(), timeout=10)
                if call == "ends during the outage":  # its Hangup is lost with the link
                    server.pause_on(lambda e: e.get("Uniqueid") == third)
                    server.resume()
                    await server.wait_paused()
                await wait_for(
                    lambda: any("did not answer the AMI login" in r.getMessage()
                                for r in caplog.records), timeout=10,
                )  # fmt: skip
                assert not listener.connected.is_set()  # still cut off: no login yet
                server.restore()
                await wait_for(lambda: listener.resynced.is_set())
                server.resume()
                await server.wait_until_finished()
                await wait_for(lambda: pipeline.sink.stored >= len(expected))
                await asyncio.sleep(0.3)  # nothing more (no duplicate) arrives

            await run_listener(pipeline, body)

    asyncio.run(scenario())
    assert quiet_but_alive == [True]
    rows = stored_calls(db_url)
    assert [r.linkedid for r in rows] == [e["linkedid"] for e in expected]
    assert not rows[0].times_estimated and not rows[2].times_estimated
    if call == "goes on":  # listed by CoreShowChannels after the outage: followed to its end
        assert [{k: getattr(r, k) for k in COMPARED} for r in rows] == [
            {k: e[k] for k in COMPARED} for e in expected
        ]
        assert not rows[1].times_estimated
    else:  # gone at the re-sync: ended then, its times marked estimated
        assert rows[1].times_estimated
        assert rows[1].caller == expected[1]["caller"]
        assert rows[1].answered_by is None
    (outage,) = stored(db_url, Outage)
    assert outage.pbx == "lab"
    assert "no reply to Ping within 0.5 s" in outage.reason
    assert outage.ended_at is not None and outage.ended_at > outage.started_at
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, errors  # the hanging login: one line, however many retries
    assert "PBX lab at 127.0.0.1" in errors[0] and "within 0.5 s" in errors[0]
    no_tracebacks(caplog)


def test_a_server_that_never_answers_login_is_given_up_and_retried(
    tmp_path: Path, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """TCP accepted, then nothing: no banner, no answer to Login. The listener must not hang
    on it: one clear line, then retries with back-off, each connection closed."""
    caplog.set_level(logging.INFO)
    accepted: list[int] = []
    closed_by_client: list[int] = []

    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        try:
            while await reader.read(4096):  # take the Login, never answer
                pass
            closed_by_client.append(1)
        except ConnectionError:
            closed_by_client.append(1)
        finally:
            writer.close()

    async def scenario() -> int:
        server = await asyncio.start_server(mute, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        pipeline = build_pipeline(make_config(tmp_path, db_url, port), None)
        (listener,) = pipeline.listeners
        listener.login_timeout = 0.3

        async def body() -> None:
            await wait_for(lambda: len(closed_by_client) >= 2)

        try:
            await run_listener(pipeline, body)
        finally:
            server.close()
            await server.wait_closed()
        return listener.events_received

    assert asyncio.run(scenario()) == 0
    assert len(accepted) >= 2 and len(closed_by_client) >= 2
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, errors
    assert "did not answer the AMI login within 0.3 s" in errors[0]
    assert len([r for r in caplog.records if "reconnecting to lab" in r.getMessage()]) >= 2
    assert not stored(db_url, Outage)  # never logged in: nothing was seen, nothing missed
    no_tracebacks(caplog)


@pytest.mark.parametrize("failure", ["refused", "unanswered"])
def test_a_failed_resync_is_asked_again_and_keeps_the_calls_up(
    tmp_path: Path, db_url: str, caplog: pytest.LogCaptureFixture, failure: str
) -> None:
    """After a drop the first CoreShowChannels fails (an Error, or no answer at all): the
    listener asks again instead of taking "no answer" for "no channel up", so the call up
    at the drop is still followed to its real end."""
    caplog.set_level(logging.INFO)
    expected = expected_calls(PATHS)
    second = expected[1]["linkedid"]

    async def scenario() -> None:
        async with AmiReplayServer(PATHS, speed=0, secret=SECRET) as server:
            server.pause_on(mid_call(second))
            pipeline = build_pipeline(make_config(tmp_path, db_url, server.port), None)
            (listener,) = pipeline.listeners
            quick(listener)

            async def body() -> None:
                await server.wait_paused()
                await wait_for(lambda: listener.resynced.is_set())
                message = "Permission denied" if failure == "refused" else None
                server.fail_next("CoreShowChannels", message=message)
                await server.wait_flushed()  # the drop loses nothing sent before the pause
                await wait_for(lambda: read_before_pause(listener, 1, second))
                server.drop_clients()
                await wait_for(lambda: not listener.connected.is_set())
                await wait_for(lambda: listener.resynced.is_set())
                server.resume()
                await server.wait_until_finished()
                await wait_for(lambda: pipeline.sink.stored >= len(expected))
                await wait_for(lambda: stored(db_url, Outage)[0].calls_lost_estimate is not None)

            await run_listener(pipeline, body)

    asyncio.run(scenario())
    rows = stored_calls(db_url)
    assert [{k: getattr(r, k) for k in COMPARED} for r in rows] == [
        {k: e[k] for k in COMPARED} for e in expected
    ]
    assert not any(r.times_estimated for r in rows)
    (outage,) = stored(db_url, Outage)
    # nothing newer than the call up was listed: counted at the next channel, the third
    # call's (the recordings' numbering leaves a gap between them)
    unseen = uniqueid_seqs(PATHS[2])[0] - uniqueid_seqs(PATHS[1])[-1]
    assert outage.ended_at is not None and outage.calls_lost_estimate == unseen // 2
    retried = [
        r.getMessage() for r in caplog.records if "CoreShowChannels failed" in r.getMessage()
    ]
    assert len(retried) == 1, retried
    assert ("Permission denied" if failure == "refused" else "TimeoutError") in retried[0]
    no_tracebacks(caplog)


def test_the_writer_restarts_after_a_sink_failure_and_keeps_its_batch(
    tmp_path: Path, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The database write raises once: the writer task dies, is restarted, and stores the
    batch it held, then everything after it, in order and once."""
    expected = expected_calls(PATHS)
    failed: list[list[str]] = []

    async def scenario() -> None:
        async with AmiReplayServer(PATHS, speed=0, secret=SECRET) as server:
            pipeline = build_pipeline(make_config(tmp_path, db_url, server.port), None)
            sink = pipeline.sink
            real = sink.calls_finished

            async def flaky(pbx: str, calls: list[Call]) -> None:
                if not failed:
                    failed.append([c.linkedid for c in calls])
                    raise RuntimeError("database went away")
                await real(pbx, calls)

            sink.calls_finished = flaky  # type: ignore[method-assign]

            async def body() -> None:
                await server.wait_until_finished()
                await wait_for(lambda: sink.stored >= len(expected))
                await asyncio.sleep(0.3)

            await run_listener(pipeline, body)

    asyncio.run(scenario())
    assert failed and failed[0][0] == expected[0]["linkedid"]
    rows = stored_calls(db_url)
    assert [r.linkedid for r in rows] == [e["linkedid"] for e in expected]
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "background task" in errors[0].getMessage() and "kept for the writer" in (
        errors[0].getMessage()
    )


def test_a_pbx_restart_closes_the_calls_it_killed_and_later_calls_are_stored(
    tmp_path: Path, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Asterisk restarts mid call: Shutdown, connection closed, FullyBooted at the next
    login, a new Uniqueid sequence. The call that was up is closed at the re-sync with
    estimated times (not held open, not invented twice); the outage is recorded with an
    unknown count (the Uniqueid gap means nothing across a restart); the next call, under
    its new Uniqueid, is stored like any other."""
    caplog.set_level(logging.INFO)
    expected = expected_calls(PATHS)
    second = expected[1]["linkedid"]

    async def scenario() -> None:
        async with AmiReplayServer(PATHS, speed=0, secret=SECRET) as server:
            server.pause_on(mid_call(second))
            pipeline = build_pipeline(make_config(tmp_path, db_url, server.port), None)
            (listener,) = pipeline.listeners
            quick(listener)

            async def body() -> None:
                await server.wait_paused()
                await wait_for(lambda: listener.resynced.is_set())
                server.restart()
                await wait_for(lambda: not listener.connected.is_set())
                await wait_for(lambda: listener.resynced.is_set())
                server.resume()
                await server.wait_until_finished()
                await wait_for(lambda: pipeline.sink.stored >= len(expected))
                await asyncio.sleep(0.3)  # nothing more arrives

            await run_listener(pipeline, body)
            assert listener.tracker.open_calls == 0

    asyncio.run(scenario())
    first, killed, later = stored_calls(db_url)  # exactly three: none held, none invented
    assert {k: getattr(first, k) for k in COMPARED} == {k: expected[0][k] for k in COMPARED}
    assert not first.times_estimated
    assert killed.linkedid == second and killed.times_estimated
    assert killed.caller == expected[1]["caller"] and killed.answered_by is None
    match = re.fullmatch(r"\d+\.(\d+)", later.linkedid)
    assert match and int(match.group(1)) < 10  # numbered anew after the restart
    same = [k for k in COMPARED if k != "linkedid"]
    assert {k: getattr(later, k) for k in same} == {k: expected[2][k] for k in same}
    assert not later.times_estimated
    (outage,) = stored(db_url, Outage)
    assert outage.ended_at is not None and outage.ended_at >= outage.started_at
    assert outage.calls_lost_estimate is None  # unknown: counting restarted with the PBX
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    no_tracebacks(caplog)


def test_a_call_wholly_inside_a_quiet_outage_is_counted_when_the_next_one_comes(
    tmp_path: Path, db_url: str
) -> None:
    """The link is cut between two calls, a whole call comes and goes unseen, and nothing is
    up at the re-sync: the gap cannot be measured then. The next channel the PBX creates
    shows it (Asterisk numbers channels in sequence), and the outage row gets its count:
    the lost call is counted, never silently dropped."""
    expected = expected_calls(PATHS)
    first, lost, third = expected

    async def scenario() -> None:
        async with AmiReplayServer(PATHS, speed=0, secret=SECRET) as server:
            server.pause_on(lambda e: e.get("Event") == "Newchannel"
                            and e.get("Uniqueid") == lost["linkedid"])  # fmt: skip
            pipeline = build_pipeline(make_config(tmp_path, db_url, server.port), None)
            (listener,) = pipeline.listeners
            quick(listener)

            async def body() -> None:
                await server.wait_paused()
                await wait_for(lambda: pipeline.sink.stored >= 1)
                await server.wait_flushed()
                server.cut_off()
                await wait_for(lambda: not listener.connected.is_set(), timeout=10)
                server.pause_on(lambda e: e.get("Event") == "Newchannel"
                                and e.get("Uniqueid") == third["linkedid"])  # fmt: skip
                server.resume()  # the second call plays to nobody
                await server.wait_paused()
                server.restore()
                await wait_for(lambda: listener.resynced.is_set())
                outage = stored(db_url, Outage)
                assert [o.ended_at is not None for o in outage] == [True]
                assert outage[0].calls_lost_estimate is None  # not known yet
                server.resume()
                await server.wait_until_finished()
                await wait_for(lambda: pipeline.sink.stored >= 2)
                await wait_for(lambda: stored(db_url, Outage)[0].calls_lost_estimate is not None)

            await run_listener(pipeline, body)

    asyncio.run(scenario())
    assert [r.linkedid for r in stored_calls(db_url)] == [first["linkedid"], third["linkedid"]]
    (outage,) = stored(db_url, Outage)
    # channels numbered between the first call's last and the third call's first were
    # created unseen: the lost call's two (and the lab's other calls between the recordings)
    gap = uniqueid_seqs(PATHS[2])[0] - uniqueid_seqs(PATHS[0])[-1]
    assert outage.calls_lost_estimate == gap // 2
    assert outage.calls_lost_estimate >= 1
