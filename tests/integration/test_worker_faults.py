"""Faults: Redis stopped while calls arrive, a worker killed in the middle of a job, two
workers on one queue. Real Redis servers, real worker processes, SQLite and PostgreSQL.

What must hold each time: every stored call is evaluated, exactly once in effect — one
evaluation job that succeeded per call, and never a duplicate row.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from rq import Queue
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry, StartedJobRegistry
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from callcenter.config import Config
from callcenter.embedded_redis import EmbeddedRedis, connect
from callcenter.pipeline import StoreSink
from callcenter.store.db import make_session_factory, session_scope
from callcenter.store.duty import Callback, LogEntry, Violation, ViolationCall
from callcenter.store.models import Call
from callcenter.store.seed import seed_from_config
from callcenter.tracking import records
from callcenter.workers import jobs
from callcenter.workers.worker import DutyWorker
from tests.integration.test_jobs import (
    PATHS,
    callbacks,
    evaluated_at,
    failure,
    later,
    make_config,
    replayed,
    snapshot,
    store_calls,
    violations,
)

pytestmark = pytest.mark.redis

ROOT = Path(__file__).resolve().parents[2]


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


# --------------------------------------------------------------------------- helpers


def wait_for(predicate: Callable[[], bool], timeout: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not reached in {timeout:g} s: {what}")
        time.sleep(0.05)


def start_worker(redis_url: str, name: str, *, burst: bool = True) -> subprocess.Popen[bytes]:
    """``run_worker`` (the entry point of ``callcenter worker``) in a process of its own."""
    code = (
        "import logging, sys\n"
        "logging.basicConfig(level=logging.INFO)\n"
        "from callcenter.workers.worker import run_worker\n"
        "run_worker(sys.argv[1], burst=sys.argv[2] == 'burst', name=sys.argv[3])\n"
    )
    return subprocess.Popen(
        [sys.executable, "-c", code, redis_url, "burst" if burst else "forever", name],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Worker processes started by a test; any left running are killed at the end."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)  # reaps it and closes its pipe


def evaluation_results(redis_client: redis.Redis, call_ids: list[int]) -> list[int]:
    """How many times each call's evaluation job succeeded (RQ keeps every result)."""
    found = []
    for call_id in call_ids:
        job = Job.fetch(jobs.evaluation_job_id(call_id), connection=redis_client)
        found.append(sum(1 for r in job.results() if r.type.name == "SUCCESSFUL"))
    return found


def all_fixture_calls(config: Config) -> list[records.Call]:
    return replayed(config, *PATHS.values())


def copies(calls: list[records.Call], count: int) -> list[records.Call]:
    """``count`` copies of ``calls``, a day apart, each call with a Linkedid of its own."""
    return [later(call, n * 86_400, f"{call.linkedid}-{n}") for n in range(count) for call in calls]


def count(sessions: sessionmaker[Session], model: type[Any]) -> int:
    with sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


# Per copy of the fixtures (see test_jobs.EXPECTED): 4 unanswered, 1 forwarded, 1 unmanned
# (pj_no_answer at 19:42 and pj_two_missed at 19:45 are a streak of unanswered calls on 12345
# within 30 min); 7 missed inbound calls to call back; one log entry per call.
VIOLATIONS_PER_COPY = 6
VIOLATION_CALLS_PER_COPY = 4 + 1 + 2
CALLBACKS_PER_COPY = 7


# --------------------------------------------------------------------------- Redis stopped


def test_redis_stopped_while_calls_arrive_then_started_every_call_evaluated_once(
    tmp_path: Path, config: Config, sessions: sessionmaker[Session], db_url: str
) -> None:
    calls = all_fixture_calls(config)
    server = EmbeddedRedis(tmp_path / "redis", persist=False)  # ours to stop, not the shared one
    server.start()
    url = server.url
    listener_redis = connect(url, socket_timeout=2.0, socket_connect_timeout=1.0, retries=0)
    sink = StoreSink(sessions, Queue(jobs.EVALUATE_QUEUE, connection=listener_redis),
                     database_url=db_url)  # fmt: skip
    try:
        asyncio.run(sink.calls_finished("lab", calls[:3]))  # Redis up: stored and queued
        assert (sink.stored, sink.enqueued) == (3, 3)
        server.stop()  # Redis goes away, and with it (no persistence) the queued jobs
        asyncio.run(sink.calls_finished("lab", calls[3:]))  # stored; queueing fails
        assert (sink.stored, sink.enqueued) == (len(calls), 3)
        assert not any(evaluated_at(sessions))

        server.start()  # Redis is back (same socket), empty
        assert server.url == url
        client = connect(url)
        default = Queue(jobs.DEVICE_QUEUE, connection=client)
        sweep = default.enqueue(jobs.sweep_outbox, db_url, older_than=0)  # what cron does
        worker = DutyWorker([Queue("calls", connection=client), default], connection=client)
        worker.work(burst=True)
        assert sweep.get_status() == JobStatus.FINISHED, failure(sweep)
        assert sweep.return_value()["calls_queued"] == len(calls)  # type: ignore[index]

        ids = sorted(i for i in evaluation_ids(sessions))
        assert all(evaluated_at(sessions)), "every call evaluated"
        assert evaluation_results(client, ids) == [1] * len(ids), "each exactly once"
        again = default.enqueue(jobs.sweep_outbox, db_url, older_than=0)
        worker.work(burst=True)
        assert again.return_value()["calls_queued"] == 0  # type: ignore[index]
        assert count(sessions, Violation) == VIOLATIONS_PER_COPY
        assert count(sessions, Callback) == CALLBACKS_PER_COPY
        assert count(sessions, LogEntry) == len(calls)
        client.close()
    finally:
        listener_redis.close()
        server.stop()


def evaluation_ids(sessions: sessionmaker[Session]) -> list[int]:
    with sessions() as session:
        return list(session.scalars(select(Call.id)))


# --------------------------------------------------------------------------- a worker killed


def test_a_worker_killed_mid_job_the_job_is_retried_without_duplicates(
    config: Config, sessions: sessionmaker[Session], db_url: str, db_backend: str,
    redis_url: str, redis_client: redis.Redis, processes: list[subprocess.Popen[bytes]],
) -> None:  # fmt: skip
    (call_id,) = store_calls(sessions, replayed(config, PATHS["no_answer_timeout"]))
    queue = Queue(jobs.EVALUATE_QUEUE, connection=redis_client)
    job = jobs.enqueue_call_evaluation(queue, call_id, db_url)

    # Hold the job in the middle: our own uncommitted transaction blocks the worker's
    # writes. PostgreSQL: an uncommitted call-back row for the call, so the worker has
    # written its violation and log entry (uncommitted) and waits on the call-back insert.
    # SQLite: our write lock, so the worker waits at its first write.
    blocker = sessions()
    if db_backend == "postgres":
        blocker.add(Callback(call_id=call_id, caller="blocker", state="open"))
        blocker.flush()
        blocker_pid = blocker.connection().exec_driver_sql("SELECT pg_backend_pid()").scalar()
    else:
        blocker.execute(select(1))
        blocker.connection().exec_driver_sql("UPDATE calls SET id = id WHERE 0")
    try:
        doomed = start_worker(redis_url, "doomed")
        processes.append(doomed)
        wait_for(lambda: job.get_status() == JobStatus.STARTED, what="the job started")
        if db_backend == "postgres":
            wait_for(lambda: blocked_by(sessions, blocker_pid), what="the worker waits on our lock")
        else:
            time.sleep(1.0)  # it is inside the job, waiting for the write lock
        os.kill(doomed.pid, signal.SIGKILL)  # mid-job: nothing the worker did is committed
        doomed.wait(timeout=10)
    finally:
        blocker.rollback()
        blocker.close()
    assert job.get_status() == JobStatus.STARTED, "left behind in the started registry"
    assert count(sessions, Violation) == 0

    # RQ's abandoned-job handling, as the next worker's maintenance runs it once the dead
    # worker's heartbeat has lapsed (job timeout + 60 s; we do not wait that long): the job
    # goes to its Retry (5 s later), not to the failed registry.
    registry = StartedJobRegistry(queue=queue)
    registry.cleanup(timestamp=time.time() + jobs.JOB_TIMEOUT + 120)
    job.refresh()
    assert job.get_status() == JobStatus.SCHEDULED
    assert job.retries_left == len(jobs.RETRY_INTERVALS) - 1

    time.sleep(jobs.RETRY_INTERVALS[0] + 0.5)  # until the retry is due
    another = DutyWorker([queue], connection=redis_client)
    another.work(burst=True, with_scheduler=True)  # its scheduler queues the due retry
    job.refresh()
    assert job.get_status() == JobStatus.FINISHED, failure(job)
    assert violations(sessions) == [("unanswered", "12345", "SIP/duty1", ["1795432842.106"])]
    assert callbacks(sessions) == [("13811110003", "open", None)]
    assert count(sessions, LogEntry) == 1
    assert all(evaluated_at(sessions))
    assert FailedJobRegistry(queue=queue).count == 0


def blocked_by(sessions: sessionmaker[Session], pid: object) -> bool:
    """Whether a PostgreSQL backend waits on a lock that backend ``pid`` holds (a fresh
    transaction each time: pg_stat_activity is a snapshot per transaction)."""
    with sessions() as session:
        waiting = session.execute(
            text("SELECT count(*) FROM pg_stat_activity WHERE :pid = ANY(pg_blocking_pids(pid))"),
            {"pid": pid},
        )
        return bool(waiting.scalar())


# --------------------------------------------------------------------------- two workers


def test_two_workers_on_one_queue_store_no_duplicates(
    config: Config, sessions: sessionmaker[Session], db_url: str,
    redis_url: str, redis_client: redis.Redis, processes: list[subprocess.Popen[bytes]],
) -> None:  # fmt: skip
    n = 10
    calls = copies(all_fixture_calls(config), n)
    ids = store_calls(sessions, calls)
    queue = Queue(jobs.EVALUATE_QUEUE, connection=redis_client)
    for call_id in ids:
        jobs.enqueue_call_evaluation(queue, call_id, db_url)
    for call_id in ids:  # every call a second time, so the two workers race on each one
        queue.enqueue(jobs.evaluate_call, call_id, db_url, job_id=f"again-{call_id}")

    workers = [start_worker(redis_url, name) for name in ("left", "right")]
    processes.extend(workers)
    logs = []
    for worker in workers:
        _, err = worker.communicate(timeout=300)
        logs.append(err.decode())
        assert worker.returncode == 0, logs[-1][-2000:]
    trouble = [log[log.find("Traceback") :][:3000] for log in logs if "Traceback" in log]

    assert not trouble, trouble  # no job raised: no deadlock, no "database is locked"
    assert FailedJobRegistry(queue=queue).count == 0
    done = Job.fetch_many(
        [jobs.evaluation_job_id(i) for i in ids] + [f"again-{i}" for i in ids],
        connection=redis_client,
    )
    assert all(j is not None for j in done)
    finished = [j for j in done if j is not None]
    unfinished = [(j.id, j.get_status(), failure(j)) for j in finished if not j.is_finished]
    assert not unfinished, unfinished[:3]
    assert {j.worker_name for j in finished} == {"left", "right"}, "both worked"
    assert all(evaluated_at(sessions))
    assert count(sessions, Violation) == VIOLATIONS_PER_COPY * n
    assert count(sessions, ViolationCall) == VIOLATION_CALLS_PER_COPY * n
    assert count(sessions, Callback) == CALLBACKS_PER_COPY * n
    assert count(sessions, LogEntry) == len(calls)
    rows = snapshot(sessions)
    assert len({v[1] for v in rows["violations"]}) == len(rows["violations"])
