"""Spot-check and deadline jobs on a real Redis and on SQLite and PostgreSQL.

The jobs run in a real ``DutyWorker`` (burst mode). Duty line 12345 (desk phones
``SIP/duty1`` and ``PJSIP/2001``) and line 12346 (office hours) of one unit come from a
config seeded into the database. The end-to-end test dials a spot check through the real
listener over TCP to the AMI replay server, which answers the Originate by playing the
recorded spot-check transcript (``spot_check_originate_answered.jsonl``).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis
from rq import Queue
from rq.job import JobStatus
from rq.registry import ScheduledJobRegistry
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from callcenter import clicktocall
from callcenter.ami.replay_server import AmiReplayServer, OriginateResult
from callcenter.ami.transcripts import read_events
from callcenter.config import Config, load_config
from callcenter.listen import build_pipeline, run_pipeline
from callcenter.store.db import make_session_factory, session_scope
from callcenter.store.duty import (
    Incident,
    IncidentReport,
    Shift,
    SpotCheck,
    Violation,
    ViolationCall,
)
from callcenter.store.models import Call
from callcenter.store.org import DutyLine, Unit
from callcenter.store.seed import seed_from_config
from callcenter.workers import deadlines, spot_checks
from callcenter.workers.storage import dispose_engines
from callcenter.workers.worker import DutyWorker

pytestmark = pytest.mark.redis

FIXTURE = (
    Path(__file__).resolve().parent.parent
    / "fixtures"
    / "ami"
    / "asterisk20"
    / "spot_check_originate_answered.jsonl"
)
ANSWERED = FIXTURE.with_name("answered.jsonl")
UNIT = "县政府办"
PBX = "lab"
SECRET = secrets.token_urlsafe(12)  # per test run: no secret committed
SHANGHAI = ZoneInfo("Asia/Shanghai")


def make_config(**overrides: Any) -> Config:
    return load_config(
        env={},
        overrides={
            "lines": [
                {"number": "12345", "unit": UNIT, "desk_phones": ["SIP/duty1", "PJSIP/2001"]},
                {
                    "number": "12346",
                    "unit": UNIT,
                    "desk_phones": ["SIP/duty2"],
                    "schedule": "08:00-18:00",
                },
            ],
            **overrides,
        },
    )


@pytest.fixture
def sessions(migrated_engine: Engine) -> Iterator[sessionmaker[Session]]:
    factory = make_session_factory(migrated_engine)
    with session_scope(factory) as session:
        seed_from_config(session, make_config())
    try:
        yield factory
    finally:
        dispose_engines()


def run_worker(redis_client: redis.Redis) -> None:
    queue = Queue(spot_checks.SPOT_CHECK_QUEUE, connection=redis_client)
    DutyWorker([queue], connection=redis_client).work(burst=True, with_scheduler=False)


def run_job(redis_client: redis.Redis, func: Any, *args: Any, **kwargs: Any) -> Any:
    """Queue one job, run a worker until the queue is empty, return the job's result."""
    queue = Queue(spot_checks.SPOT_CHECK_QUEUE, connection=redis_client)
    job = queue.enqueue(func, *args, **kwargs)
    run_worker(redis_client)
    result = job.latest_result()
    assert job.get_status() == JobStatus.FINISHED, result.exc_string if result else None
    return job.return_value()


def line_id(sessions: sessionmaker[Session], number: str) -> int:
    with sessions() as session:
        found = session.scalar(select(DutyLine.id).where(DutyLine.number == number))
        assert found is not None
        return found


def add_shift(sessions: sessionmaker[Session], around: datetime, officer: str) -> None:
    with session_scope(sessions) as session:
        unit_id = session.scalar(select(Unit.id).where(Unit.name == UNIT))
        assert unit_id is not None
        session.add(
            Shift(
                unit_id=unit_id,
                day=around.astimezone(SHANGHAI).date(),
                name="白班",
                starts_at=around - timedelta(hours=4),
                ends_at=around + timedelta(hours=4),
                main_officer=officer,
            )
        )


def add_check(sessions: sessionmaker[Session], number: str, at: datetime) -> int:
    with session_scope(sessions) as session:
        check = SpotCheck(line_id=line_id(sessions, number), scheduled_at=at)
        session.add(check)
        session.flush()
        return check.id


def spot_check_violations(sessions: sessionmaker[Session]) -> list[Violation]:
    with sessions() as session:
        return list(
            session.scalars(
                select(Violation)
                .where(Violation.kind == "spot_check_failed")
                .order_by(Violation.id)
            )
        )


# --------------------------------------------------------------------------- planning


def test_planning_a_day_twice_plans_it_once(
    sessions: sessionmaker[Session], db_url: str, redis_client: redis.Redis
) -> None:
    day = datetime.now(SHANGHAI).date() + timedelta(days=2)  # wholly in the future
    first = run_job(
        redis_client, spot_checks.plan_spot_checks, day.isoformat(), db_url, seed="test-seed"
    )
    assert first == {"inserted": 6, "scheduled": 6}  # 3 per line, both lines
    with sessions() as session:
        rows = session.execute(
            select(SpotCheck.id, SpotCheck.line_id, SpotCheck.scheduled_at).order_by(
                SpotCheck.scheduled_at
            )
        ).all()
    assert len(rows) == 6
    office = line_id(sessions, "12346")
    for row in rows:
        local = row.scheduled_at.astimezone(SHANGHAI)
        assert local.date() == day
        if row.line_id == office:
            assert 8 <= local.hour < 18
    # each check's run is scheduled at its own time, under a deterministic job id
    registry = ScheduledJobRegistry(spot_checks.SPOT_CHECK_QUEUE, connection=redis_client)
    assert sorted(registry.get_job_ids()) == sorted(spot_checks.run_job_id(row.id) for row in rows)
    for row in rows:
        job_id = spot_checks.run_job_id(row.id)
        assert registry.get_scheduled_time(job_id) == row.scheduled_at.replace(microsecond=0)

    again = run_job(
        redis_client, spot_checks.plan_spot_checks, day.isoformat(), db_url, seed="test-seed"
    )
    assert again == {"inserted": 0, "scheduled": 0}
    with sessions() as session:
        assert len(session.scalars(select(SpotCheck.id)).all()) == 6
    assert len(registry.get_job_ids()) == 6


def test_a_plan_for_a_day_already_past_dials_nothing(
    sessions: sessionmaker[Session], db_url: str, redis_client: redis.Redis
) -> None:
    past = date.today() - timedelta(days=3)
    assert run_job(redis_client, spot_checks.plan_spot_checks, past.isoformat(), db_url) == {
        "inserted": 0,
        "scheduled": 0,
    }


# --------------------------------------------------------------------------- dial and judge


def test_run_queues_the_originate_once_and_judging_twice_stores_one_violation(
    sessions: sessionmaker[Session], db_url: str, redis_client: redis.Redis
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    add_shift(sessions, now, "张三")
    check_id = add_check(sessions, "12345", now)

    first = run_job(redis_client, spot_checks.run_spot_check, check_id, db_url, pbx=PBX)
    again = run_job(redis_client, spot_checks.run_spot_check, check_id, db_url, pbx=PBX)
    assert again == {"spot_check_id": check_id, "already_dialed": True}
    with sessions() as session:
        check = session.get(SpotCheck, check_id)
        assert check is not None
        assert check.action_id == first["action_id"]
        assert check.originated_at is not None
    # exactly one Originate waits for the listener of the PBX
    assert redis_client.llen(clicktocall.queue_key(PBX)) == 1
    request = clicktocall.next_request(redis_client, PBX, 1)
    assert request is not None
    assert request.id == check.action_id
    action = request.ami_action(context="from-internal")
    assert action["Channel"] == "Local/12345@from-trunk"
    assert action["Variable"] == f"CALLCENTER_SPOTCHECK={check_id}"
    # the judgement waits for the ring timeout
    registry = ScheduledJobRegistry(spot_checks.SPOT_CHECK_QUEUE, connection=redis_client)
    assert registry.get_job_ids() == [spot_checks.judge_job_id(check_id, 1)]

    # the listener reports: nobody answered (Asterisk reason 3), and no call is stored
    clicktocall.record_result(redis_client, request.id, "failed", "3")
    early = run_job(redis_client, spot_checks.judge_spot_check, check_id, db_url, 1)
    assert early == {"spot_check_id": check_id, "pending": 1}  # waits for the call
    assert spot_check_violations(sessions) == []
    assert spot_checks.judge_job_id(check_id, 2) in registry.get_job_ids()

    for _ in range(2):
        run_job(
            redis_client,
            spot_checks.judge_spot_check,
            check_id,
            db_url,
            spot_checks.JUDGE_ATTEMPTS,
        )
    (violation,) = spot_check_violations(sessions)
    assert violation.dedupe_key == f"spot_check_failed:spot_check:{check_id}"
    assert violation.line_id == line_id(sessions, "12345")
    assert violation.line_number == "12345"
    assert violation.endpoint == "PJSIP/2001"
    assert violation.officer == "张三"
    assert violation.shift_id is not None
    assert violation.at == check.originated_at
    assert violation.state == "flagged"
    assert violation.detail.endswith("not answered (no answer)")
    with sessions() as session:
        judged = session.get(SpotCheck, check_id)
        assert judged is not None
        assert (judged.result, judged.detail) == ("unanswered", "not answered (no answer)")


def test_a_check_the_listener_never_dialed_is_failed_without_a_violation(
    sessions: sessionmaker[Session], db_url: str, redis_client: redis.Redis
) -> None:
    check_id = add_check(sessions, "12345", datetime.now(UTC).replace(microsecond=0))
    run_job(redis_client, spot_checks.run_spot_check, check_id, db_url, pbx=PBX)
    last = run_job(
        redis_client, spot_checks.judge_spot_check, check_id, db_url, spot_checks.JUDGE_ATTEMPTS
    )
    assert last == {"spot_check_id": check_id, "result": "failed", "violation": False}
    assert spot_check_violations(sessions) == []


# --------------------------------------------------------------------------- end to end


def _answer_with_transcript(sent: list[dict[str, str]]) -> Any:
    """The replay server's Originate handler: play the recorded spot check (moved to now,
    the recorded gaps kept: the desk phone rings 2 s), then answer the Originate as the
    recording did."""
    recorded = [
        event
        for event in read_events(FIXTURE)
        if event.get("Event") not in (None, "OriginateResponse", "FullyBooted", "SuccessfulAuth")
    ]
    first = float(recorded[0]["Timestamp"])

    def handler(action: dict[str, str]) -> OriginateResult:
        sent.append(dict(action))
        now = time.time()
        events = tuple(
            {k: v for k, v in event.items() if not k.startswith("_")}
            | {"Timestamp": f"{now + float(event['Timestamp']) - first:.6f}"}
            for event in recorded
        )
        return OriginateResult(
            success=True,
            reason=4,
            channel="SIP/duty1-00000075",
            uniqueid="1795432940.123",
            events=events,
        )

    return handler


def _answer_with_generated_call(sent: list[dict[str, str]]) -> Any:
    """The handler of ``callcenter ami-replay --generate`` (the demo's PBX)."""
    from callcenter.ami.generator import Counters
    from callcenter.ami.spot_check_answers import GeneratedSpotCheckAnswers

    # its first check: answered after 3.9 s
    generated = GeneratedSpotCheckAnswers(seed=7, numbering=Counters(1000))

    def handler(action: dict[str, str]) -> OriginateResult:
        sent.append(dict(action))
        return generated(action)

    return handler


@pytest.mark.parametrize(
    "answer", [_answer_with_transcript, _answer_with_generated_call], ids=["recorded", "generated"]
)
def test_a_spot_check_dialed_through_the_listener_is_judged_answered(
    tmp_path: Path,
    sessions: sessionmaker[Session],
    db_url: str,
    redis_url: str,
    redis_client: redis.Redis,
    answer: Any,
) -> None:
    check_id = add_check(sessions, "12345", datetime.now(UTC).replace(microsecond=0))
    dialed = run_job(redis_client, spot_checks.run_spot_check, check_id, db_url, pbx=PBX)
    sent: list[dict[str, str]] = []

    def stored_spot_call() -> bool:
        with sessions() as session:
            return session.scalar(select(Call.id).where(Call.originated.is_(True))) is not None

    async def scenario() -> None:
        async with AmiReplayServer(
            [ANSWERED], speed=0, secret=SECRET, originate_handler=answer(sent)
        ) as server:
            config = make_config(
                instance_path=str(tmp_path / "instance"),
                database={"url": db_url},
                ami={"pbx": [{"name": PBX, "port": server.port, "secret": SECRET}]},
            )
            pipeline = build_pipeline(config, redis_url)
            stop = asyncio.Event()
            task = asyncio.create_task(run_pipeline(pipeline, stop))
            try:
                deadline = asyncio.get_running_loop().time() + 20
                while not (
                    (clicktocall.result_of(redis_client, dialed["action_id"]) or {}).get("final")
                    and await asyncio.to_thread(stored_spot_call)
                ):
                    assert asyncio.get_running_loop().time() < deadline, "spot check not done"
                    await asyncio.sleep(0.05)
            finally:
                stop.set()
                await asyncio.wait_for(task, timeout=20)

    asyncio.run(scenario())
    (action,) = sent
    assert action["Channel"] == "Local/12345@from-trunk"
    assert action["Application"] == "Playback"
    assert action["CallerID"] == "抽查 <12345>"
    assert action["Variable"] == f"CALLCENTER_SPOTCHECK={check_id}"
    assert clicktocall.result_of(redis_client, dialed["action_id"])["result"] == "answered"

    for _ in range(2):
        judged = run_job(redis_client, spot_checks.judge_spot_check, check_id, db_url, 1)
    assert judged == {"spot_check_id": check_id, "result": "answered", "again": True}
    with sessions() as session:
        check = session.get(SpotCheck, check_id)
        assert check is not None
        call = session.get(Call, check.call_id)
        assert call is not None and call.originated and call.answered_by == "SIP/duty1"
        assert check.result == "answered"
        assert check.detail.startswith("answered by SIP/duty1")
    assert spot_check_violations(sessions) == []
    # and the call itself is not judged as an unanswered inbound call
    assert run_job(redis_client, _evaluate, call.id, db_url)["violations"] == []


def _evaluate(call_id: int, db_url: str) -> Any:
    from callcenter.workers.jobs import evaluate_call

    return evaluate_call(call_id, db_url)


# --------------------------------------------------------------------------- deadlines


def test_late_reports_are_flagged_once_per_incident(
    sessions: sessionmaker[Session], db_url: str, redis_client: redis.Redis
) -> None:
    now = datetime.now(UTC)
    due = now - timedelta(hours=1)
    add_shift(sessions, due, "李四")
    with session_scope(sessions) as session:
        unit_id = session.scalar(select(Unit.id).where(Unit.name == UNIT))
        assert unit_id is not None

        def incident(title: str, due_at: datetime, *reports: tuple[str, datetime]) -> None:
            row = Incident(
                unit_id=unit_id,
                title=title,
                occurred_at=due_at - timedelta(hours=2),
                report_due_at=due_at,
            )
            row.reports = [IncidentReport(kind=k, reported_at=at) for k, at in reports]
            session.add(row)

        incident("on time", due, ("first", due - timedelta(minutes=5)))
        incident("late", due, ("first", due + timedelta(minutes=20)))
        # a follow-up in time is no first report
        incident("never", due, ("follow_up", due - timedelta(minutes=30)))
        incident("not due yet", now + timedelta(hours=1))

    for _ in range(2):
        result = run_job(redis_client, deadlines.check_deadlines, db_url)
    assert result == {"checked": 1, "late_report": 0}  # only "on time" is looked at again
    with sessions() as session:
        rows = session.execute(
            select(Incident.title, Violation.officer, Violation.at, Violation.detail)
            .join(
                Violation,
                Violation.dedupe_key
                == "late_report:incident:" + Incident.id.cast(Violation.dedupe_key.type),
            )
            .order_by(Incident.title)
        ).all()
        assert session.scalars(select(ViolationCall.call_id)).all() == []
    assert [(r.title, r.officer) for r in rows] == [("late", "李四"), ("never", "李四")]
    assert all(r.at == due for r in rows)
    assert rows[0].detail.endswith("20 min late")
    assert rows[1].detail.endswith("no first report sent")
