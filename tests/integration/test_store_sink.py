"""StoreSink against real databases and Redis: a bad call never blocks the ones after it,
calls that finished together are one job, and a shutdown with the database down spools
the calls, which the next start stores exactly once."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import replace
from pathlib import Path

import pytest
import redis
from rq import Queue
from sqlalchemy import Engine, select

from callcenter.pipeline import REJECTED_FILE, StoreSink
from callcenter.replay import replay_calls
from callcenter.store.db import make_engine, make_session_factory
from callcenter.store.migrate import upgrade
from callcenter.store.models import Call, CallLeg
from callcenter.tracking import records

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "ami"


def some_calls(count: int) -> list[records.Call]:
    (call,) = replay_calls([FIXTURES / "asterisk20" / "answered.jsonl"])
    return [replace(call, linkedid=f"{call.linkedid}-{n}") for n in range(count)]


def rows(engine: Engine) -> list[Call]:
    with make_session_factory(engine)() as session:
        return list(session.scalars(select(Call).order_by(Call.id)))


def test_a_refused_call_is_set_aside_and_the_calls_after_it_are_stored(
    migrated_engine: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good1, bad, good2 = some_calls(3)
    bad = replace(bad, outcome="nonsense")  # type: ignore[arg-type]  # a CHECK refuses it
    sink = StoreSink(make_session_factory(migrated_engine), unsaved_dir=tmp_path / "unsaved")
    asyncio.run(asyncio.wait_for(sink.calls_finished("lab", [good1, bad, good2]), 30))
    assert [r.linkedid for r in rows(migrated_engine)] == [good1.linkedid, good2.linkedid]
    (line,) = (tmp_path / "unsaved" / REJECTED_FILE).read_text().splitlines()
    data = json.loads(line)
    assert (data["linkedid"], data["pbx"], data["outcome"]) == (bad.linkedid, "lab", "nonsense")
    assert data["legs"] and "IntegrityError" in data["error"]
    logged = [r for r in caplog.records if r.exc_info and bad.linkedid in r.getMessage()]
    assert logged


def test_an_out_of_range_number_is_stored_as_null(migrated_engine: Engine) -> None:
    (call,) = some_calls(1)
    leg = replace(call.legs[0], hangup_cause=2**40)
    call = replace(call, hangup_cause=10**20, legs=(leg, *call.legs[1:]))
    sink = StoreSink(make_session_factory(migrated_engine))
    asyncio.run(asyncio.wait_for(sink.calls_finished("lab", [call]), 30))
    (row,) = rows(migrated_engine)
    assert row.hangup_cause is None
    with make_session_factory(migrated_engine)() as session:
        causes = list(session.scalars(select(CallLeg.hangup_cause).order_by(CallLeg.id)))
    assert causes[0] is None


@pytest.mark.redis
def test_calls_that_finished_together_are_one_job(
    migrated_engine: Engine, redis_client: redis.Redis
) -> None:
    from callcenter.workers import jobs

    queue = Queue(jobs.EVALUATE_QUEUE, connection=redis_client)
    sink = StoreSink(make_session_factory(migrated_engine), queue, database_url="x")
    asyncio.run(sink.calls_finished("lab", some_calls(3)))
    assert (sink.stored, sink.enqueued, queue.count) == (3, 3, 1)


def test_shutdown_with_the_database_locked_spools_and_the_next_start_stores_once(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    upgrade(url)
    engine = make_engine(url, connect_args={"timeout": 0.2})
    blocker = make_engine(url).connect()
    blocker.begin()  # BEGIN IMMEDIATE (store.db): another writer holds the lock
    calls = some_calls(3)
    unsaved = tmp_path / "unsaved"
    sink = StoreSink(make_session_factory(engine), unsaved_dir=unsaved, shutdown_grace=0.5)

    async def stop_while_down() -> None:
        writing = asyncio.create_task(sink.calls_finished("lab", calls))
        await asyncio.sleep(0.5)
        sink.begin_shutdown()
        await asyncio.wait_for(writing, timeout=30)

    try:
        asyncio.run(stop_while_down())
    finally:
        blocker.rollback()
        blocker.close()
    (spool,) = unsaved.glob("spool-*.jsonl")
    assert [json.loads(x)["linkedid"] for x in spool.read_text().splitlines()] == [
        c.linkedid for c in calls
    ]
    assert rows(engine) == []

    again = StoreSink(make_session_factory(engine), unsaved_dir=unsaved)
    asyncio.run(again.calls_finished("lab", calls[:1]))  # one was stored meanwhile
    asyncio.run(asyncio.wait_for(again.recover(), 30))
    stored = rows(engine)
    assert [r.linkedid for r in stored] == [c.linkedid for c in calls]
    assert stored[0].started_at == calls[0].started_at
    assert not list(unsaved.glob("spool-*.jsonl"))
    engine.dispose()


def test_an_unreadable_spool_line_is_set_aside(
    migrated_engine: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    unsaved = tmp_path / "unsaved"
    unsaved.mkdir()
    (unsaved / "spool-1-1.jsonl").write_text('{"type": "call", "pbx": "lab"\n')
    asyncio.run(StoreSink(make_session_factory(migrated_engine), unsaved_dir=unsaved).recover())
    assert "unreadable" in (unsaved / REJECTED_FILE).read_text()
    assert not (unsaved / "spool-1-1.jsonl").exists()
