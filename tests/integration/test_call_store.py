"""Storing tracker records: idempotent per PBX and Linkedid, times kept in UTC."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import Session

from callcenter.store import calls as call_store
from callcenter.store.calls import save_call
from callcenter.store.db import make_session_factory, session_scope
from callcenter.store.models import Call, CallLeg, Outage
from callcenter.tracking import records

CST = timezone(timedelta(hours=8))
T0 = datetime(2026, 11, 23, 19, 20, 42, 120000, tzinfo=CST)


def leg(uniqueid: str, channel: str, role: records.LegRole, **times: datetime) -> records.Leg:
    return records.Leg(
        uniqueid=uniqueid,
        channel=channel,
        endpoint=channel.rsplit("-", 1)[0],
        role=role,
        created_at=times.get("created_at", T0),
        ringing_at=times.get("ringing_at"),
        answered_at=times.get("answered_at"),
        ended_at=times.get("ended_at", T0 + timedelta(seconds=8)),
        hangup_cause=16,
        dial_status="ANSWER" if role == "callee" else None,
    )


def answered_call(linkedid: str = "1795432842.106") -> records.Call:
    """13811110001 calls duty line 12345; SIP/duty1 rings 3 s, answers; 5 s talk."""
    return records.Call(
        linkedid=linkedid,
        caller="13811110001",
        caller_name="市民",
        dialed="12345",
        line="12345",
        direction="inbound",
        started_at=T0,
        answered_at=T0 + timedelta(seconds=3),
        ended_at=T0 + timedelta(seconds=8),
        ring_seconds=3.0,
        talk_seconds=5.0,
        outcome="answered",
        answered_by="SIP/duty1",
        forwarded_to=None,
        transferred_to=None,
        hangup_cause=16,
        closed_by="hangup",
        legs=(
            leg(linkedid, "SIP/pstn-00000001", "caller"),
            leg(
                f"{linkedid}1",
                "SIP/duty1-00000002",
                "callee",
                ringing_at=T0,
                answered_at=T0 + timedelta(seconds=3),
            ),
        ),
    )


def count(session: Session, model: type[Call | CallLeg]) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


def test_saving_the_same_call_twice_stores_it_once(session: Session) -> None:
    record = answered_call()

    first = save_call(session, record, pbx="lab")
    second = save_call(session, record, pbx="lab")

    assert first == second
    assert count(session, Call) == 1
    assert count(session, CallLeg) == 2


def test_the_same_linkedid_on_another_pbx_is_another_call(session: Session) -> None:
    record = answered_call()

    first = save_call(session, record, pbx="lab")
    second = save_call(session, record, pbx="county")

    assert first != second
    assert count(session, Call) == 2
    assert count(session, CallLeg) == 4


def test_a_stored_call_reads_back_whole_with_utc_times(session: Session) -> None:
    call_id = save_call(session, answered_call(), pbx="lab")
    session.expire_all()

    call = session.get_one(Call, call_id)

    assert (call.pbx, call.linkedid, call.caller, call.caller_name, call.line) == (
        "lab",
        "1795432842.106",
        "13811110001",
        "市民",
        "12345",
    )
    assert (call.outcome, call.answered_by, call.ring_seconds, call.talk_seconds) == (
        "answered",
        "SIP/duty1",
        3.0,
        5.0,
    )
    assert (call.direction, call.closed_by, call.hangup_cause) == ("inbound", "hangup", 16)
    assert (call.originated, call.times_estimated, call.evaluated_at) == (False, False, None)
    assert call.started_at == T0
    assert call.started_at is not None and call.started_at.tzinfo == UTC
    assert call.started_at.isoformat() == "2026-11-23T11:20:42.120000+00:00"
    assert call.created_at.tzinfo == UTC
    assert [(leg.channel, leg.endpoint, leg.role, leg.answered_at) for leg in call.legs] == [
        ("SIP/pstn-00000001", "SIP/pstn", "caller", None),
        ("SIP/duty1-00000002", "SIP/duty1", "callee", T0 + timedelta(seconds=3)),
    ]
    assert all(leg.created_at is not None and leg.created_at.tzinfo == UTC for leg in call.legs)


def test_saving_commits_through_session_scope(migrated_engine: Engine) -> None:
    factory = make_session_factory(migrated_engine)
    with session_scope(factory) as session:
        first = save_call(session, answered_call(), pbx="lab")
    with session_scope(factory) as session:
        second = save_call(session, answered_call(), pbx="lab")
        assert count(session, Call) == 1
        assert count(session, CallLeg) == 2

    assert first == second


def test_a_concurrent_insert_is_caught_by_the_unique_constraint(
    migrated_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    factory = make_session_factory(migrated_engine)
    with session_scope(factory) as session:
        stored = save_call(session, answered_call(), pbx="lab")

    # Another writer stored the call between our look-up and our insert: the look-up
    # misses once, the unique constraint stops the insert, the existing id comes back.
    real_find = call_store.find_call_id
    lookups: list[str] = []

    def find_missing_first(session: Session, pbx: str, linkedid: str) -> int | None:
        lookups.append(linkedid)
        return None if len(lookups) == 1 else real_find(session, pbx, linkedid)

    monkeypatch.setattr(call_store, "find_call_id", find_missing_first)
    with session_scope(factory) as session:
        assert save_call(session, answered_call(), pbx="lab") == stored
        assert count(session, Call) == 1
        assert count(session, CallLeg) == 2

    assert len(lookups) == 2


def test_two_writers_storing_the_same_call_at_once_store_one_row(
    migrated_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """A real race: the second writer starts while the first has inserted but not committed.

    PostgreSQL: the second look-up misses, its insert waits on the unique index until the
    first commits, then does nothing, and the existing id comes back. SQLite: the second
    writer waits for the write lock, then finds the call."""
    factory = make_session_factory(migrated_engine)
    postgres = migrated_engine.dialect.name == "postgresql"
    results: list[int | BaseException] = []

    def second_writer() -> None:
        try:
            with session_scope(factory) as session:
                results.append(save_call(session, answered_call(), pbx="lab"))
        except BaseException as exc:  # reported by the assertion below
            results.append(exc)

    with caplog.at_level(logging.INFO, logger="callcenter.store.calls"):
        with session_scope(factory) as first:
            stored = save_call(first, answered_call(), pbx="lab")
            thread = threading.Thread(target=second_writer)
            thread.start()
            if postgres:  # commit only once the second insert waits for this transaction
                deadline = time.monotonic() + 30
                while not _an_insert_waits_for_a_lock(migrated_engine):
                    assert time.monotonic() < deadline, "the second writer never blocked"
                    time.sleep(0.01)
        thread.join(60)

    assert results == [stored]
    with session_scope(factory) as session:
        assert count(session, Call) == 1
        assert count(session, CallLeg) == 2
    concurrent = [r for r in caplog.records if "stored concurrently" in r.getMessage()]
    assert len(concurrent) == (1 if postgres else 0)


def _an_insert_waits_for_a_lock(engine: Engine) -> bool:
    with engine.connect() as connection:
        waiting = connection.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND query LIKE 'INSERT INTO calls %'"
            )
        )
    return bool(waiting)


def test_a_call_the_database_refuses_raises_and_stores_nothing(migrated_engine: Engine) -> None:
    """Only the (pbx, Linkedid) conflict is let through: a check constraint still refuses
    the call (the listener then sets it aside), and its legs are not stored either."""
    factory = make_session_factory(migrated_engine)
    bad = replace(answered_call(), outcome="exploded")  # type: ignore[arg-type]

    with pytest.raises(IntegrityError), session_scope(factory) as session:
        save_call(session, bad, pbx="lab")

    with session_scope(factory) as session:
        assert count(session, Call) == 0
        assert count(session, CallLeg) == 0
        good = save_call(session, answered_call(), pbx="lab")
    with session_scope(factory) as session:
        assert session.get_one(Call, good).outcome == "answered"


def test_a_call_without_legs_is_stored(session: Session) -> None:
    call_id = save_call(session, replace(answered_call(), legs=()), pbx="lab")

    assert session.get_one(Call, call_id).legs == []
    assert count(session, CallLeg) == 0


def test_deleting_a_call_deletes_its_legs(session: Session) -> None:
    call_id = save_call(session, answered_call(), pbx="lab")

    session.delete(session.get_one(Call, call_id))
    session.flush()

    assert count(session, CallLeg) == 0


def test_naive_datetimes_are_refused(session: Session) -> None:
    session.add(Outage(pbx="lab", started_at=datetime(2026, 11, 23, 8, 0)))

    with pytest.raises(StatementError, match="naive datetime"):
        session.flush()


def test_aware_datetimes_round_trip_in_utc(session: Session) -> None:
    started = datetime(2026, 1, 1, 0, 30, tzinfo=CST)  # 2025-12-31 16:30 UTC
    outage = Outage(pbx="lab", started_at=started, reason="AMI connection refused")
    session.add(outage)
    session.flush()
    session.expire_all()

    stored = session.scalars(select(Outage)).one()
    assert stored.started_at == started
    assert stored.started_at.tzinfo == UTC
    assert stored.started_at.replace(tzinfo=None) == datetime(2025, 12, 31, 16, 30)
    assert stored.ended_at is None
    # Comparisons happen in UTC on both engines.
    later = session.scalars(
        select(Outage).where(Outage.started_at > datetime(2025, 12, 31, 16, 0, tzinfo=UTC))
    ).all()
    assert later == [stored]
