"""The RQ jobs on a real Redis and on SQLite and PostgreSQL.

The recorded fixtures are replayed with the tracker (``replay_calls``), stored as the listener
stores them (``save_call``), and judged by ``evaluate_call`` jobs that a real
``DutyWorker`` (``callcenter worker``'s ``SimpleWorker``) runs in burst mode. The duty lines
come from a config seeded into the database: line 12345 (desk phones ``SIP/duty1`` and
``PJSIP/2001``) and the queue line 12347 (desk phones ``PJSIP/2001`` and ``PJSIP/2002``) of
one unit, default thresholds (answer within 15 s, 2 unanswered calls within 30 min =
unmanned, 5 min offline grace).
Each expectation says why.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from rq import Queue
from rq.job import Job, JobStatus
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session, sessionmaker

from callcenter.ami.devices import DeviceChange, DeviceState, desk_phone_resolver, device_change
from callcenter.ami.transcripts import read_events
from callcenter.config import Config, load_config
from callcenter.replay import replay_calls
from callcenter.store.calls import save_call
from callcenter.store.db import make_session_factory, session_scope
from callcenter.store.duty import (
    Callback,
    DeviceEvent,
    LogEntry,
    LogEntryCall,
    Shift,
    Violation,
    ViolationCall,
)
from callcenter.store.models import Call
from callcenter.store.org import DeskPhone, DutyLine, Unit
from callcenter.store.policy import load_policies
from callcenter.store.seed import seed_from_config
from callcenter.tracking import records
from callcenter.workers import jobs
from callcenter.workers.worker import DutyWorker

pytestmark = pytest.mark.redis

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "ami"
SIP = FIXTURES / "asterisk20"
PJ = FIXTURES / "asterisk20-pjsip"
UNIT = "县政府办"
PBX = "lab"


# --------------------------------------------------------------------------- helpers


def make_config(**line_overrides: Any) -> Config:
    first = {"number": "12345", "unit": UNIT, "desk_phones": ["SIP/duty1", "PJSIP/2001"]}
    return load_config(
        env={},
        overrides={
            "lines": [
                first | line_overrides,
                {"number": "12347", "unit": UNIT, "desk_phones": ["PJSIP/2001", "PJSIP/2002"]},
            ]
        },
    )


@pytest.fixture
def config() -> Config:
    return make_config()


@pytest.fixture
def sessions(migrated_engine: Engine, config: Config) -> Iterator[sessionmaker[Session]]:
    """Sessions on a fresh migrated database whose duty lines are seeded from ``config``."""
    factory = make_session_factory(migrated_engine)
    with session_scope(factory) as session:
        seed_from_config(session, config)
    try:
        yield factory
    finally:
        jobs.dispose_engines()


def store_calls(
    sessions: sessionmaker[Session], calls: Iterable[records.Call], pbx: str = PBX
) -> list[int]:
    """Store finished calls as the listener does: one transaction per call."""
    ids = []
    for call in calls:
        with session_scope(sessions) as session:
            ids.append(save_call(session, call, pbx))
    return ids


def replayed(config: Config, *paths: Path) -> list[records.Call]:
    return list(replay_calls(paths, config=config))


def run_worker(redis_client: redis.Redis) -> None:
    """A real RQ worker in this process, until the queues are empty."""
    queues = [Queue(name, connection=redis_client) for name in ("calls", "default")]
    DutyWorker(queues, connection=redis_client).work(burst=True, with_scheduler=False)


def failure(job: Job | None) -> str | None:
    """The traceback of a job's last run, if it failed (for assertion messages)."""
    result = job.latest_result() if job is not None else None
    return result.exc_string if result is not None else None


def evaluate(redis_client: redis.Redis, db_url: str, call_ids: Sequence[int]) -> list[Job]:
    """Queue the evaluations as the listener does, run a worker, check no job failed."""
    queue = Queue(jobs.EVALUATE_QUEUE, connection=redis_client)
    queued = [jobs.enqueue_call_evaluation(queue, call_id, db_url) for call_id in call_ids]
    run_worker(redis_client)
    for job in queued:
        assert job.get_status() == JobStatus.FINISHED, failure(job)
    return queued


def violations(sessions: sessionmaker[Session]) -> list[tuple[Any, ...]]:
    """(kind, line, endpoint, linkedids of the calls behind it) of every stored violation."""
    with sessions() as session:
        rows = session.scalars(select(Violation).order_by(Violation.id)).all()
        linked = {
            v.id: sorted(
                session.scalars(
                    select(Call.linkedid)
                    .join(ViolationCall, ViolationCall.call_id == Call.id)
                    .where(ViolationCall.violation_id == v.id)
                )
            )
            for v in rows
        }
        return [(v.kind, v.line_number, v.endpoint, linked[v.id]) for v in rows]


def callbacks(sessions: sessionmaker[Session]) -> list[tuple[str, str, str | None]]:
    """(caller, state, linkedid of the closing call) of every call-back task."""
    with sessions() as session:
        rows = session.execute(
            select(Callback.caller, Callback.state, Callback.closed_by_call_id).order_by(
                Callback.id
            )
        ).all()
        return [
            (caller, state, session.get(Call, by).linkedid if by else None)  # type: ignore[union-attr]
            for caller, state, by in rows
        ]


def snapshot(sessions: sessionmaker[Session]) -> dict[str, list[tuple[Any, ...]]]:
    """Every row the jobs write, whole."""
    tables = {
        "violations": Violation,
        "violation_calls": ViolationCall,
        "callbacks": Callback,
        "log_entries": LogEntry,
        "log_entry_calls": LogEntryCall,
    }
    out: dict[str, list[tuple[Any, ...]]] = {}
    with sessions() as session:
        for name, model in tables.items():
            columns = list(model.__table__.columns)
            out[name] = [tuple(row) for row in session.execute(select(*columns)).all()]
            out[name].sort(key=repr)
    return out


def evaluated_at(sessions: sessionmaker[Session]) -> list[datetime | None]:
    with sessions() as session:
        return list(session.scalars(select(Call.evaluated_at).order_by(Call.id)))


def later(call: records.Call, seconds: float, linkedid: str, **changes: Any) -> records.Call:
    """A copy of ``call`` moved ``seconds`` later, as a call of its own."""

    def shift(at: datetime | None) -> datetime | None:
        return None if at is None else at + timedelta(seconds=seconds)

    legs = tuple(
        dataclasses.replace(
            leg,
            uniqueid=f"{linkedid}.{i}",
            created_at=shift(leg.created_at),
            ringing_at=shift(leg.ringing_at),
            answered_at=shift(leg.answered_at),
            ended_at=shift(leg.ended_at),
        )
        for i, leg in enumerate(call.legs)
    )
    moved = dataclasses.replace(
        call,
        linkedid=linkedid,
        started_at=shift(call.started_at),
        answered_at=shift(call.answered_at),
        ended_at=shift(call.ended_at),
        legs=legs,
    )
    return dataclasses.replace(moved, **changes)


# --------------------------------------------------------------------------- the fixtures

# fixture -> (violations, call-backs, why)
EXPECTED: dict[str, tuple[list[tuple[Any, ...]], list[tuple[str, str, None]], str]] = {
    "answered": (
        [],
        [],
        "SIP/duty1, a desk phone of 12345, answered after 3 s, within 15 s",
    ),
    "no_answer_timeout": (
        [("unanswered", "12345", "SIP/duty1", ["1795432842.106"])],
        [("13811110003", "open", None)],
        "duty1 rang 20 s (the Dial timeout), at least 15 s, and nobody answered; the caller "
        "waits for a call back",
    ),
    "busy_dnd": (
        [],
        [("13811110005", "open", None)],
        "duty1 answered 486 Busy at once: nothing rang, so no unanswered (do-not-disturb is "
        "judged from device events as dnd_set); the missed caller is still called back",
    ),
    "pbx_forward_to_mobile": (
        [("forwarded", "12345", "SIP/mobile", ["1795432883.112"])],
        [],
        "the PBX sent the duty call to the mobile 13800138000 (AstDB CF): 手机呼叫转移",
    ),
    "phone_offline": (
        [],
        [("13811110009", "open", None)],
        "the call failed at once (duty1 unreachable): nothing rang, no unanswered; the "
        "missed caller is called back, and the 10 s outage is under the 5 min grace",
    ),
    "spot_check_originate_answered": (
        [],
        [],
        "a spot check is a call the system originates, never an inbound call to judge",
    ),
    "pj_answered": (
        [],
        [],
        "PJSIP/2001, a desk phone of 12345, answered after 3 s",
    ),
    "pj_no_answer": (
        [("unanswered", "12345", "PJSIP/2001", ["1795434174.5"])],
        [("13811110002", "open", None)],
        "2001 rang 20 s and nobody answered",
    ),
    "pj_queue_answered": (
        [],
        [],
        "queue line 12347 rang 2001 and 2002; 2002, a desk phone of 12347, answered after "
        "3 s: the call was answered on the line, so no phone that rang counts as missing it",
    ),
    "pj_two_missed": (
        [
            ("unanswered", "12345", "PJSIP/2001", ["1795434315.29"]),
            ("unanswered", "12345", "PJSIP/2001", ["1795434320.31"]),
            ("unmanned", "12345", "PJSIP/2001", ["1795434315.29", "1795434320.31"]),
        ],
        [("13811110021", "open", None), ("13811110022", "open", None)],
        "two calls 5 s apart each rang 20 s unanswered: each is unanswered, and two in a row "
        "within 30 min on one line (one shift) is nobody at the desk; one unmanned for the "
        "streak, naming both calls",
    ),
    "pj_contact_unreachable": (
        [],
        [("13811110010", "open", None)],
        "the call failed at once (2001's contact unreachable): no ring to judge",
    ),
}
PATHS = {
    path.stem: path
    for path in [*sorted(SIP.glob("*.jsonl")), *sorted(PJ.glob("*.jsonl"))]
    if path.stem in EXPECTED
}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_fixture_violations_and_callbacks(
    name: str, config: Config, sessions: sessionmaker[Session], db_url: str,
    redis_client: redis.Redis,
) -> None:  # fmt: skip
    want_violations, want_callbacks, why = EXPECTED[name]
    ids = store_calls(sessions, replayed(config, PATHS[name]))
    evaluate(redis_client, db_url, ids)
    assert sorted(violations(sessions)) == sorted(want_violations), why
    assert callbacks(sessions) == want_callbacks, why
    assert all(evaluated_at(sessions)), "every call is marked evaluated"


def test_every_call_of_a_unit_gets_a_duty_log_entry(
    config: Config, sessions: sessionmaker[Session], db_url: str, redis_client: redis.Redis
) -> None:
    ids = store_calls(sessions, replayed(config, *PATHS.values()))
    evaluate(redis_client, db_url, ids)
    with sessions() as session:
        entries = session.execute(
            select(LogEntry.source_key, LogEntry.status, LogEntry.summary, LogEntryCall.call_id)
            .join(LogEntryCall, LogEntryCall.log_entry_id == LogEntry.id)
            .order_by(LogEntryCall.call_id)
        ).all()
        missed = set(session.scalars(select(Callback.call_id)))
    # every call here is on a duty line of the unit: one entry each, tied to its call
    assert [e.call_id for e in entries] == ids
    assert all(e.source_key == f"call:{e.call_id}" for e in entries)
    # 事事有回音: a missed call's entry stays open until it is called back; others are done
    assert {e.call_id for e in entries if e.status == "open"} == missed
    assert any("Spot check of 12345" in e.summary for e in entries)


def test_running_the_jobs_twice_gives_the_same_rows(
    config: Config, sessions: sessionmaker[Session], db_url: str, redis_client: redis.Redis
) -> None:
    ids = store_calls(sessions, replayed(config, *PATHS.values()))
    evaluate(redis_client, db_url, ids)
    first, marked = snapshot(sessions), evaluated_at(sessions)
    assert first["violations"] and first["callbacks"] and first["log_entries"]

    evaluate(redis_client, db_url, ids)  # the same jobs again (a retry, a duplicate enqueue)
    assert snapshot(sessions) == first
    assert evaluated_at(sessions) == marked, "evaluated_at keeps the first evaluation's time"

    with session_scope(sessions) as session:  # as if the first run's mark had been lost
        session.execute(update(Call).values(evaluated_at=None))
    evaluate(redis_client, db_url, list(reversed(ids)))  # and in another order
    assert snapshot(sessions) == first


def test_unmanned_does_not_depend_on_the_order_of_evaluation(
    config: Config, sessions: sessionmaker[Session], db_url: str, redis_client: redis.Redis
) -> None:
    """Workers take calls in any order: the second missed call may be judged first."""
    ids = store_calls(sessions, replayed(config, PATHS["pj_two_missed"]))
    evaluate(redis_client, db_url, [ids[1]])
    evaluate(redis_client, db_url, [ids[0]])
    assert sorted(violations(sessions)) == sorted(EXPECTED["pj_two_missed"][0])


def test_an_answered_call_in_between_resets_the_unmanned_count(
    config: Config, sessions: sessionmaker[Session], db_url: str, redis_client: redis.Redis
) -> None:
    missed = replayed(config, PATHS["pj_no_answer"])[0]
    answered = replayed(config, PATHS["pj_answered"])[0]
    calls = [
        missed,
        later(answered, 60, "answered.1"),
        later(missed, 120, "missed.2", caller="13811110098"),
    ]
    ids = store_calls(sessions, calls)
    evaluate(redis_client, db_url, ids)
    kinds = [v[0] for v in violations(sessions)]
    assert kinds == ["unanswered", "unanswered"], "missed, answered, missed: no streak of two"


def test_callback_closes_when_the_caller_gets_through_later(
    config: Config, sessions: sessionmaker[Session], db_url: str, redis_client: redis.Redis
) -> None:
    missed = replayed(config, PATHS["no_answer_timeout"])[0]
    answered = replayed(config, PATHS["answered"])[0]
    again = later(answered, 600, "again.1", caller=missed.caller)
    ids = store_calls(sessions, [missed, again])
    evaluate(redis_client, db_url, ids)
    assert callbacks(sessions) == [("13811110003", "reached", "again.1")]
    with sessions() as session:
        entry = session.scalar(select(LogEntry).where(LogEntry.source_key == f"call:{ids[0]}"))
        assert entry is not None
        assert (entry.status, entry.action_taken) == (
            "done",
            f"caller got through (call {ids[1]}, again.1)",
        )


def test_callback_closes_when_a_desk_phone_calls_the_number_back(
    config: Config, sessions: sessionmaker[Session], db_url: str, redis_client: redis.Redis
) -> None:
    missed = replayed(config, PATHS["no_answer_timeout"])[0]
    answered = replayed(config, PATHS["answered"])[0]
    # duty1 dials the caller's number (with the trunk's 0 prefix) and gets an answer
    call_back = later(
        answered, 300, "back.1", direction="outbound", caller="duty1",
        dialed="0" + str(missed.caller), line=None,
        legs=tuple(
            dataclasses.replace(leg, endpoint="SIP/duty1" if leg.role == "caller" else "SIP/pstn")
            for leg in later(answered, 300, "back.1").legs
        ),
    )  # fmt: skip
    not_answered = later(call_back, -60, "back.0", outcome="no_answer", answered_at=None)
    ids = store_calls(sessions, [missed, not_answered, call_back])
    # the call-back is judged before the missed call: it closes it all the same
    evaluate(redis_client, db_url, [ids[2], ids[1], ids[0]])
    assert callbacks(sessions) == [("13811110003", "called_back", "back.1")], (
        "closed by the answered call-back from the desk phone, not by the unanswered try"
    )
    assert violations(sessions) == EXPECTED["no_answer_timeout"][0], "a call-back is never judged"


def test_a_call_back_from_a_phone_of_no_duty_line_leaves_it_open(
    config: Config, sessions: sessionmaker[Session], db_url: str, redis_client: redis.Redis
) -> None:
    missed = replayed(config, PATHS["no_answer_timeout"])[0]
    answered = replayed(config, PATHS["answered"])[0]
    elsewhere = later(
        answered, 300, "other.1", direction="outbound", caller="9999", dialed=missed.caller,
        line=None,
        legs=tuple(dataclasses.replace(leg, endpoint="SIP/office9")
                   for leg in later(answered, 300, "other.1").legs),
    )  # fmt: skip
    ids = store_calls(sessions, [missed, elsewhere])
    evaluate(redis_client, db_url, ids)
    assert callbacks(sessions) == [("13811110003", "open", None)]


# --------------------------------------------------------------------------- policy, roster


def test_seeding_is_idempotent_and_the_database_wins(
    migrated_engine: Engine, config: Config
) -> None:
    sessions = make_session_factory(migrated_engine)
    with session_scope(sessions) as session:
        first = seed_from_config(session, config)
    assert (first.units_created, first.lines_created) == ([UNIT], ["12345", "12347"])
    with session_scope(sessions) as session:  # edited in the console afterwards
        line = session.scalar(select(DutyLine).where(DutyLine.number == "12345"))
        assert line is not None
        line.answer_within_seconds = 10.0
        line.desk_phones.append(DeskPhone(endpoint="SIP/duty2"))
    changed = make_config(answer_within_seconds=30.0, desk_phones=["SIP/duty9"])
    more = load_config(
        env={},
        overrides={"lines": [*(dataclasses.asdict(x) for x in changed.lines),
                             {"number": "12399", "unit": "乡镇", "desk_phones": ["SIP/t1"]}]},
    )  # fmt: skip
    with session_scope(sessions) as session:
        again = seed_from_config(session, more)
    assert (again.units_created, again.lines_created) == (["乡镇"], ["12399"])
    assert again.lines_kept == ["12345", "12347"]
    with sessions() as session:
        policies = load_policies(session)
        assert session.scalar(select(Unit.id).where(Unit.name == UNIT)) is not None
    line_12345 = policies.by_line["12345"]
    assert line_12345.answer_within_seconds == 10.0, "the stored threshold, not the config's"
    assert line_12345.desk_phones == {"SIP/duty1", "PJSIP/2001", "SIP/duty2"}
    assert line_12345.unit == UNIT
    assert policies.by_line["12399"].desk_phones == {"SIP/t1"}


def test_the_stored_policy_is_what_calls_are_judged_by(
    config: Config, sessions: sessionmaker[Session], db_url: str, redis_client: redis.Redis
) -> None:
    with session_scope(sessions) as session:
        session.execute(
            update(DutyLine).where(DutyLine.number == "12345").values(answer_within_seconds=2.0)
        )
    ids = store_calls(sessions, replayed(config, PATHS["answered"]))
    evaluate(redis_client, db_url, ids)
    assert [v[0] for v in violations(sessions)] == ["slow_answer"], (
        "answered after 3 s while the line (edited in the database) asks for 2 s"
    )


def test_no_violation_outside_the_monitored_hours(
    config: Config, sessions: sessionmaker[Session], db_url: str, redis_client: redis.Redis
) -> None:
    # the fixture's call rang at 19:20 Beijing time; the line is staffed 08:00-18:00
    with session_scope(sessions) as session:
        session.execute(
            update(DutyLine).where(DutyLine.number == "12345").values(schedule="08:00-18:00")
        )
    ids = store_calls(sessions, replayed(config, PATHS["no_answer_timeout"]))
    evaluate(redis_client, db_url, ids)
    assert violations(sessions) == []
    assert callbacks(sessions) == [("13811110003", "open", None)], "the caller is still owed"


def test_violations_name_the_duty_officer_on_shift(
    config: Config, sessions: sessionmaker[Session], db_url: str, redis_client: redis.Redis
) -> None:
    call = replayed(config, PATHS["no_answer_timeout"])[0]
    assert call.started_at is not None
    with session_scope(sessions) as session:
        unit_id = session.scalar(select(Unit.id).where(Unit.name == UNIT))
        assert unit_id is not None
        evening = call.started_at.replace(hour=10, minute=0, second=0, microsecond=0)
        session.add(Shift(unit_id=unit_id, day=evening.date(), name="夜班", starts_at=evening,
                          ends_at=evening + timedelta(hours=12), main_officer="张三",
                          backup_officer="李四", leader="王五"))  # fmt: skip
    ids = store_calls(sessions, [call])
    evaluate(redis_client, db_url, ids)
    with sessions() as session:
        row = session.scalar(select(Violation))
        entry = session.scalar(select(LogEntry))
        assert row is not None and entry is not None
        assert (row.kind, row.officer, row.state) == ("unanswered", "张三", "flagged")
        assert row.shift_id is not None and entry.shift_id == row.shift_id
        assert row.unit_id == unit_id and row.line_id is not None


# --------------------------------------------------------------------------- device events


def store_device_events(
    sessions: sessionmaker[Session], changes: Iterable[DeviceChange], pbx: str = PBX
) -> list[int]:
    """Store desk-phone changes as device events (what the listener does)."""
    ids = []
    with session_scope(sessions) as session:
        for change in changes:
            assert change.at is not None
            row = DeviceEvent(
                pbx=pbx,
                endpoint=change.endpoint,
                kind=change.kind,
                state=change.state,
                detail=change.detail[:255],
                source=change.source[:64],
                contact=change.contact[:255],
                at=change.at,
            )
            session.add(row)
            session.flush()
            ids.append(row.id)
    return ids


def fixture_changes(path: Path) -> list[DeviceChange]:
    resolve = desk_phone_resolver(["SIP/duty1", "PJSIP/2001", "PJSIP/2002"])
    found = (device_change(event, resolve=resolve) for event in read_events(path))
    return [change for change in found if change is not None]


def peer(endpoint: str, status: str, at: datetime) -> DeviceChange:
    state: DeviceState = "offline" if status == "Unreachable" else "online"
    return DeviceChange(endpoint, "status", state, at, f"PeerStatus {status}", "PeerStatus")


def evaluate_devices(redis_client: redis.Redis, db_url: str, ids: Sequence[int]) -> None:
    queue = Queue(jobs.DEVICE_QUEUE, connection=redis_client)
    job = jobs.enqueue_device_evaluation(queue, ids, db_url)
    run_worker(redis_client)
    assert job.get_status() == JobStatus.FINISHED, failure(job)


def device_violations(sessions: sessionmaker[Session]) -> list[Violation]:
    with sessions() as session:
        return list(session.scalars(select(Violation).order_by(Violation.id)))


def test_a_desk_phone_offline_for_6_minutes_is_one_phone_offline_of_6_minutes(
    sessions: sessionmaker[Session], db_url: str, redis_client: redis.Redis
) -> None:
    t0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # 10:00 Beijing time
    ids = store_device_events(sessions, [
        peer("SIP/duty1", "Unreachable", t0),
        peer("SIP/duty1", "Reachable", t0 + timedelta(minutes=6)),
    ])  # fmt: skip
    evaluate_devices(redis_client, db_url, ids)
    evaluate_devices(redis_client, db_url, ids)  # twice: still one
    (row,) = device_violations(sessions)
    assert (row.kind, row.endpoint, row.line_number, row.at) == (
        "phone_offline", "SIP/duty1", "12345", t0,
    )  # fmt: skip
    assert row.ended_at == t0 + timedelta(minutes=6)
    assert row.duration_seconds == pytest.approx(360.0)
    with sessions() as session:
        assert all(session.scalars(select(DeviceEvent.evaluated_at)))


def test_a_desk_phone_that_flaps_for_30_seconds_is_no_violation(
    sessions: sessionmaker[Session], db_url: str, redis_client: redis.Redis
) -> None:
    t0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    ids = store_device_events(sessions, [
        peer("PJSIP/2001", "Unreachable", t0),
        peer("PJSIP/2001", "Reachable", t0 + timedelta(seconds=30)),
    ])  # fmt: skip
    evaluate_devices(redis_client, db_url, ids)
    assert device_violations(sessions) == [], "30 s offline is within the 5 min grace"


def test_a_phone_still_offline_is_flagged_open_then_closed_when_it_is_back(
    sessions: sessionmaker[Session], db_url: str, redis_client: redis.Redis
) -> None:
    now = datetime.now(UTC)
    down = store_device_events(
        sessions, [peer("SIP/duty1", "Unreachable", now - timedelta(minutes=10))]
    )
    evaluate_devices(redis_client, db_url, down)
    (row,) = device_violations(sessions)
    assert (row.kind, row.ended_at) == ("phone_offline", None), "still offline past the grace"
    assert row.duration_seconds == pytest.approx(600, abs=30)

    up = store_device_events(sessions, [peer("SIP/duty1", "Reachable", now - timedelta(minutes=1))])
    evaluate_devices(redis_client, db_url, up)
    (closed,) = device_violations(sessions)
    assert closed.id == row.id, "the open violation is closed, not a second one written"
    assert closed.ended_at == now - timedelta(minutes=1)
    assert closed.duration_seconds == pytest.approx(540.0)


@pytest.mark.parametrize(
    ("name", "want", "why"),
    [
        ("phone_offline", [], "duty1 was unreachable for 10 s: under the 5 min grace"),
        ("pj_contact_unreachable", [], "2001 was unreachable for 3.5 s: under the grace"),
        ("pj_dnd_and_forward_flags", [("dnd_set", "PJSIP/2001", 6.0)],
         "the Custom:DND2001 lamp went on for 6 s: DND on a desk phone counts at once"),
    ],
)  # fmt: skip
def test_device_fixtures(
    name: str, want: list[tuple[str, str, float]], why: str,
    sessions: sessionmaker[Session], db_url: str, redis_client: redis.Redis,
) -> None:  # fmt: skip
    path = SIP / f"{name}.jsonl" if (SIP / f"{name}.jsonl").exists() else PJ / f"{name}.jsonl"
    ids = store_device_events(sessions, fixture_changes(path))
    evaluate_devices(redis_client, db_url, ids)
    got = [
        (v.kind, v.endpoint, round(v.duration_seconds or 0, 0)) for v in device_violations(sessions)
    ]
    assert got == want, why
    assert all(v.ended_at is not None for v in device_violations(sessions))


# --------------------------------------------------------------------------- the outbox


def test_sweep_queues_what_was_never_evaluated_and_nothing_else(
    config: Config, sessions: sessionmaker[Session], db_url: str, redis_client: redis.Redis
) -> None:
    ids = store_calls(sessions, replayed(config, PATHS["answered"], PATHS["no_answer_timeout"]))
    evaluate(redis_client, db_url, ids[:1])  # the first was evaluated; the second's job lost
    default = Queue(jobs.DEVICE_QUEUE, connection=redis_client)
    sweep = default.enqueue(jobs.sweep_outbox, db_url, older_than=0)
    run_worker(redis_client)
    assert sweep.get_status() == JobStatus.FINISHED, failure(sweep)
    assert sweep.return_value() == {
        "calls_unevaluated": 1, "calls_queued": 1, "device_events_queued": 0,
        "callbacks_closed": 0,
    }  # fmt: skip
    assert all(evaluated_at(sessions))
    assert Job.fetch(jobs.evaluation_job_id(ids[1]), connection=redis_client).get_status() == (
        JobStatus.FINISHED
    )
    again = default.enqueue(jobs.sweep_outbox, db_url, older_than=0)
    run_worker(redis_client)
    assert again.return_value()["calls_queued"] == 0  # type: ignore[index]


def test_sweep_leaves_calls_whose_job_is_still_queued(
    config: Config, sessions: sessionmaker[Session], db_url: str, redis_client: redis.Redis
) -> None:
    ids = store_calls(sessions, replayed(config, PATHS["answered"]))
    calls = Queue(jobs.EVALUATE_QUEUE, connection=redis_client)
    jobs.enqueue_call_evaluation(calls, ids[0], db_url)
    sweep = Queue(jobs.DEVICE_QUEUE, connection=redis_client).enqueue(
        jobs.sweep_outbox, db_url, older_than=0
    )
    # run only the sweep: the evaluation is still waiting in its queue
    DutyWorker([Queue(jobs.DEVICE_QUEUE, connection=redis_client)],
               connection=redis_client).work(burst=True)  # fmt: skip
    assert sweep.return_value()["calls_queued"] == 0  # type: ignore[index]
    assert calls.count == 1, "no duplicate job queued"


def test_sweep_flags_a_phone_that_stays_offline_with_no_new_event(
    sessions: sessionmaker[Session], db_url: str, redis_client: redis.Redis
) -> None:
    now = datetime.now(UTC)
    ids = store_device_events(
        sessions, [peer("PJSIP/2001", "Unreachable", now - timedelta(minutes=7))]
    )
    with session_scope(sessions) as session:  # judged when it arrived: under the grace then
        session.execute(update(DeviceEvent).values(evaluated_at=now - timedelta(minutes=7)))
    assert device_violations(sessions) == []
    sweep = Queue(jobs.DEVICE_QUEUE, connection=redis_client).enqueue(jobs.sweep_outbox, db_url)
    run_worker(redis_client)
    assert sweep.get_status() == JobStatus.FINISHED, failure(sweep)
    (row,) = device_violations(sessions)
    assert (row.kind, row.endpoint, row.ended_at) == ("phone_offline", "PJSIP/2001", None)
    assert row.duration_seconds == pytest.approx(420, abs=30)
    assert ids


def test_calls_that_finished_together_are_evaluated_in_one_job(
    config: Config, sessions: sessionmaker[Session], db_url: str, redis_client: redis.Redis
) -> None:
    single = store_calls(sessions, replayed(config, PATHS["pbx_forward_to_mobile"]))
    together = store_calls(sessions, replayed(config, PATHS["pj_two_missed"], PATHS["answered"]))
    queue = Queue(jobs.EVALUATE_QUEUE, connection=redis_client)
    (one,) = jobs.enqueue_call_evaluations(queue, single, db_url)
    (batch,) = jobs.enqueue_call_evaluations(queue, together, db_url)
    assert one.id == jobs.evaluation_job_id(single[0]), "one call: the job the sweep knows"
    run_worker(redis_client)
    assert batch.get_status() == JobStatus.FINISHED, failure(batch)
    assert all(evaluated_at(sessions))
    assert sorted(v[0] for v in violations(sessions)) == [
        "forwarded", "unanswered", "unanswered", "unmanned",
    ]  # fmt: skip
