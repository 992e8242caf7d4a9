"""The RQ worker of ``callcenter worker``: which worker class, and why.

**The worker class: ``SimpleWorker`` (one process runs its jobs itself, no fork per job),
several processes side by side with RQ's own ``WorkerPool``.**

RQ's default ``Worker`` forks a "work horse" for every job; ``SpawnWorker`` starts a fresh
interpreter (``posix_spawn``) for every job. On the 2-CPU development machine
(``python bench/bench_latency.py --trivial 300``, no-op jobs, one process):

=============  ===========  ==========
class          jobs/s       ms per job
=============  ===========  ==========
Worker         67           14.8
SpawnWorker    5            186
SimpleWorker   207          4.8
=============  ===========  ==========

A forked horse also starts with a cold database pool: every evaluation would open a new
database connection. At 100 calls a second the forking worker's queue grows without bound,
and a p99 of seconds is far from the target (p99 < 500 ms from a call's last ``Hangup`` to
the commit of its evaluation).

``SimpleWorker`` runs each job in the worker process: what a job costs is RQ's own
bookkeeping in Redis (the 4.8 ms above, mostly about 50 Redis commands) and the evaluation
itself (about 5 ms of CPU on SQLite, with the connection pool and the duty-line policies
kept warm across jobs), so one process takes about 100-190 evaluations a second.
``--processes N`` runs N of them under RQ's ``WorkerPool`` (which restarts one that dies),
and more machines add more. What the fork bought is isolation from a job that leaks or
crashes the interpreter; our jobs are short, take ids, keep no state between runs, and
are bounded by a timeout (``SimpleWorker`` enforces it with ``SIGALRM`` in its main
thread), so we do not need it. RQ 3 has no threaded worker; a pool of ``SimpleWorker``
processes is RQ's own way to use several cores.

Job granularity: one job per batch of calls that finished together. The listener stores
the calls of a burst :data:`callcenter.pipeline.CHUNK` (10) at a time in one transaction and
queues each chunk as one :func:`~callcenter.workers.jobs.evaluate_calls` job as soon as it
is committed (a lone call gets ``evaluate-call-<id>``, the id the outbox sweep knows); the
job evaluates its calls in one transaction, falling back to one transaction per call when
the batch fails. This pays RQ's per-job cost (about 5 ms) and SQLite's per-transaction cost
(a turn at its single write lock, a commit) once per chunk instead of once per call; on
SQLite it matters most, because the listener and every worker take turns at one write lock
(:func:`callcenter.store.db.make_engine` polls for it every millisecond instead of SQLite's
sleeps of up to 100 ms). On SQLite one worker process is enough and two only contend for
that lock; on PostgreSQL run one per core.

Measured with ``bench/bench_latency.py`` (replay server, listener, Redis and the workers on
one 2-CPU machine; 100 calls/s for 60 s, 6,000 calls, every one evaluated), on an idle
machine: SQLite with one worker, p99 115–317 ms in four runs from a call's last ``Hangup``
to the end of its evaluation job (RQ's own enqueue→start p99 51–80 ms); PostgreSQL with two
workers, p99 153 and 266 ms. The target (p99 < 500 ms) holds. It did not in two of four
earlier runs while other work shared the two CPUs (2.6 s; 17 s). See ``bench/README.md``.

Safety with several workers on several machines: every row a job writes has a unique key
and is written with ``INSERT … ON CONFLICT DO NOTHING`` (see :mod:`callcenter.workers.jobs`),
so two workers that race on the same call store it once. A worker killed in the middle of
a job leaves the job in RQ's started registry; once its heartbeat lapses (the job timeout
plus 60 s) the maintenance of any other worker (every :data:`MAINTENANCE_INTERVAL` s) hands
it to its ``Retry`` (or the failed registry), and the job runs again elsewhere; the
transaction the dead worker had open was never committed. Every worker also runs RQ's
scheduler (``with_scheduler=True``), which moves retries back to their queue when due;
RQ's lock lets one of them do it at a time.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from rq import Queue, SimpleWorker
from rq.worker_pool import WorkerPool

from callcenter.embedded_redis import connect

__all__ = [
    "DEFAULT_QUEUES",
    "MAINTENANCE_INTERVAL",
    "PUBSUB_WAIT_SECONDS",
    "DutyWorker",
    "run_worker",
]

logger = logging.getLogger(__name__)

#: The queues a worker takes jobs from, most urgent first.
DEFAULT_QUEUES = ("calls", "default")
#: Seconds between a worker's maintenance runs (abandoned-job recovery among them); RQ's
#: default is 10 minutes, too long for a duty room waiting on an evaluation.
MAINTENANCE_INTERVAL = 60
#: How long the thread that listens for RQ's worker commands (shutdown, stop-job) waits for
#: a message per turn. RQ 3 waits 60 s; with redis-py 8.2, whose ``PubSubWorkerThread.stop``
#: joins the thread, a worker that stops (every burst run, every warm shutdown) then hung
#: for up to 60 s when the thread had already seen its unsubscription (a race). This bounds
#: that wait; polling twice a second costs nothing measurable.
PUBSUB_WAIT_SECONDS = 0.5


class DutyWorker(SimpleWorker):
    """RQ's ``SimpleWorker`` with a shorter maintenance interval (see the module doc), that
    logs jobs by id only: a job's description repeats its arguments, and those hold the
    database URL (with its password) and the spot-check seed, which belong in no log."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("maintenance_interval", MAINTENANCE_INTERVAL)
        kwargs["log_job_description"] = False
        super().__init__(*args, **kwargs)

    def subscribe(self) -> None:
        """RQ's own, with a short wait per turn (:data:`PUBSUB_WAIT_SECONDS`), so that the
        worker stops at once."""
        self.pubsub = self.connection.pubsub()
        self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
        self.pubsub_thread = self.pubsub.run_in_thread(  # type: ignore[assignment]  # RQ: None
            sleep_time=PUBSUB_WAIT_SECONDS,
            daemon=True,
            exception_handler=self._pubsub_exception_handler,
        )


def run_worker(
    redis_url: str,
    *,
    queues: Sequence[str] = DEFAULT_QUEUES,
    burst: bool = False,
    processes: int = 1,
    name: str | None = None,
    log_level: str = "INFO",
) -> bool:
    """Work on ``queues`` until stopped (SIGINT/SIGTERM), or until they are empty (``burst``).

    With ``processes`` > 1 the work is shared by that many worker processes under RQ's
    ``WorkerPool``. Every worker runs RQ's scheduler (retries). Returns whether any job ran
    (one process) or True (a pool).
    """
    if processes < 1:
        raise ValueError("processes must be at least 1")
    connection = connect(redis_url)
    try:
        if processes == 1:
            worker = DutyWorker(
                [Queue(q, connection=connection) for q in queues],
                connection=connection,
                name=name,
            )
            logger.info(
                "RQ worker %s on %s (%s)", worker.name, ", ".join(queues),
                "burst" if burst else "until stopped",
            )  # fmt: skip
            return bool(worker.work(burst=burst, with_scheduler=True, logging_level=log_level))
        pool = WorkerPool(
            list(queues), connection=connection, num_workers=processes, worker_class=DutyWorker
        )
        logger.info("RQ worker pool: %d processes on %s", processes, ", ".join(queues))
        pool.start(burst=burst, logging_level=log_level)
        return True
    finally:
        connection.close()
