"""RQ jobs and their enqueueing: thin module-level functions that take ids, are safe to run
twice, and let failures reach RQ's failed-job registry (nothing here catches an error to
hide it). What they do lives in the modules beside this one:

- :func:`evaluate_call` / :func:`evaluate_calls` judge stored calls with the pure rules
  (:mod:`callcenter.rules`) and the line policy from the database
  (:mod:`callcenter.workers.calls`: violations, :mod:`~callcenter.workers.unmanned`,
  :mod:`~callcenter.workers.duty_log`, :mod:`~callcenter.workers.callbacks`), each call in
  one transaction.
- :func:`evaluate_device_events` judges stored desk-phone status and flag changes
  (:mod:`callcenter.workers.devices`: ``phone_offline``, ``forward_set``, ``dnd_set``).
- :func:`sweep_outbox` (every minute, from :mod:`callcenter.workers.schedules`) queues again
  every stored call and device event whose evaluation never ran
  (:mod:`callcenter.workers.outbox`), so a Redis outage loses nothing, and closes call-back
  tasks that a race between two workers left open.

Idempotence and concurrency: see :mod:`callcenter.workers.storage`. State that spans calls
(the ``unmanned`` streak, call-backs) is computed from the stored calls, never from a
worker's memory, so any worker can evaluate any call in any order.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from callcenter.store.db import session_scope
from callcenter.workers.calls import evaluate_stored_call
from callcenter.workers.devices import evaluate_stored_device_events
from callcenter.workers.outbox import collect
from callcenter.workers.storage import (
    dispose_engines,
    resolve_database_url,
    sessions,
)

__all__ = [
    "BATCH_SIZE",
    "DEVICE_QUEUE",
    "EVALUATE_QUEUE",
    "JOB_TIMEOUT",
    "RETRY_INTERVALS",
    "SWEEP_AFTER_SECONDS",
    "device_job_id",
    "dispose_engines",
    "enqueue_call_evaluation",
    "enqueue_call_evaluations",
    "enqueue_device_evaluation",
    "evaluate_call",
    "evaluate_calls",
    "evaluate_device_events",
    "evaluation_job_id",
    "job_retry",
    "sweep_outbox",
]

logger = logging.getLogger(__name__)

#: The queue of call evaluations (the listener enqueues here, see ``callcenter.pipeline``).
EVALUATE_QUEUE = "calls"
#: The queue of everything else: device events, the outbox sweep.
DEVICE_QUEUE = "default"
#: A stored call or device event not evaluated this long after it was stored is queued again.
SWEEP_AFTER_SECONDS = 30.0
#: Seconds an evaluation may take before RQ stops it (and retries it).
JOB_TIMEOUT = 60
#: At most this many calls in one :func:`evaluate_calls` job.
BATCH_SIZE = 20
#: Retry intervals (s) of an evaluation that failed or whose worker died; then the failed
#: registry (``rq requeue`` brings it back).
RETRY_INTERVALS = (5, 30, 120)

_PENDING_STATES = frozenset({"queued", "started", "scheduled", "deferred", "failed"})
_DEVICE_BATCH = 500


def job_retry() -> Any:
    """RQ's ``Retry`` for evaluation jobs (imported lazily: the pure parts need no RQ)."""
    from rq import Retry

    return Retry(max=len(RETRY_INTERVALS), interval=list(RETRY_INTERVALS))


def evaluation_job_id(call_id: int) -> str:
    """The job id of a call's evaluation: the same for every enqueue, so duplicates collapse."""
    return f"evaluate-call-{call_id}"


def device_job_id(event_ids: Sequence[int]) -> str:
    ids = sorted(event_ids)
    return f"evaluate-device-events-{ids[0]}-{ids[-1]}-{len(ids)}"


# --------------------------------------------------------------------------- the jobs


def evaluate_call(call_id: int, database_url: str | None = None) -> dict[str, object]:
    """Judge the stored call ``call_id`` and store what follows from it (one transaction).

    Idempotent: a second run writes nothing new and changes nothing a first run (or a
    person since) wrote. Returns a short summary for RQ's result.
    """
    with session_scope(sessions(resolve_database_url(database_url))) as session:
        return evaluate_stored_call(session, call_id, datetime.now(UTC))


def evaluate_calls(call_ids: Sequence[int], database_url: str | None = None) -> list[object]:
    """:func:`evaluate_call` for several calls in one job and one transaction.

    The listener hands over the calls that finished together. One job saves RQ's per-job
    cost (a few ms), one transaction saves a write lock and a commit per call: on SQLite
    the listener and every worker take turns at one write lock, and each turn costs more
    than the statements it guards. If the batch fails, each call is evaluated again in a
    transaction of its own, so the calls before the failing one stay evaluated; the first
    failure then fails the job, and RQ's retry runs it all again, which is safe.
    """
    factory = sessions(resolve_database_url(database_url))
    try:
        with session_scope(factory) as session:
            results = []
            for call_id in call_ids:
                results.append(evaluate_stored_call(session, call_id, datetime.now(UTC)))
                session.flush()
                session.expunge_all()  # a lean session: autoflush and flush stay cheap
            return results
    except Exception:
        if len(call_ids) == 1:
            raise
        logger.warning("evaluating calls %s together failed; one by one", list(call_ids))
    results = []
    for call_id in call_ids:
        with session_scope(factory) as session:
            results.append(evaluate_stored_call(session, call_id, datetime.now(UTC)))
    return results


def evaluate_device_events(
    event_ids: Sequence[int], database_url: str | None = None
) -> dict[str, object]:
    """Judge stored device events (status, forward and DND flags of desk phones)."""
    with session_scope(sessions(resolve_database_url(database_url))) as session:
        return evaluate_stored_device_events(session, list(event_ids), datetime.now(UTC))


def sweep_outbox(
    database_url: str | None = None, older_than: float = SWEEP_AFTER_SECONDS
) -> dict[str, int]:
    """Queue again what was stored but never evaluated (RQ cron, every minute).

    A call or device event still unevaluated ``older_than`` seconds (default
    :data:`SWEEP_AFTER_SECONDS`) after it was stored had its job lost (Redis down when the
    listener queued it, Redis restarted without the job) or failed for good. Jobs that are
    queued, running, scheduled for a retry, or in the failed registry (an operator's
    business: ``rq requeue``) are left alone; the others are queued under their
    deterministic ids. Phones still offline or with a flag on are judged again (a violation
    becomes due once the grace has passed, with no new event). Also closes call-back tasks
    that a concurrent evaluation left open.
    """
    from rq import get_current_job

    job = get_current_job()
    if job is None:
        raise RuntimeError("sweep_outbox runs as an RQ job (it queues on the job's Redis)")
    with session_scope(sessions(resolve_database_url(database_url))) as session:
        found = collect(session, datetime.now(UTC), older_than)
    queued_calls = _requeue_calls(job.connection, found.call_ids, database_url)
    queued_events = _requeue_device_events(job.connection, found.event_ids, database_url)
    if found.open_event_ids:  # phones still offline or flagged: judge them again at this time
        _requeue_device_events(job.connection, found.open_event_ids, database_url)
    if queued_calls or queued_events or found.callbacks_closed:
        logger.warning(
            "outbox sweep: %d call(s) and %d device event(s) queued again, %d call-back(s) "
            "closed late",
            queued_calls,
            queued_events,
            found.callbacks_closed,
        )
    return {
        "calls_unevaluated": len(found.call_ids),
        "calls_queued": queued_calls,
        "device_events_queued": queued_events,
        "callbacks_closed": found.callbacks_closed,
    }


# --------------------------------------------------------------------------- enqueueing


def enqueue_call_evaluation(queue: Any, call_id: int, database_url: str | None) -> Any:
    """Queue :func:`evaluate_call` for ``call_id`` on ``queue`` (an ``rq.Queue``)."""
    return queue.enqueue(
        evaluate_call,
        call_id,
        database_url,
        job_id=evaluation_job_id(call_id),
        retry=job_retry(),
        job_timeout=JOB_TIMEOUT,
    )


def enqueue_call_evaluations(
    queue: Any, call_ids: Sequence[int], database_url: str | None
) -> list[Any]:
    """Queue the evaluation of calls that finished together: one :func:`evaluate_call` job
    for a single call (``evaluate-call-<id>``, what the sweep looks for), one
    :func:`evaluate_calls` job per :data:`BATCH_SIZE` calls otherwise."""
    ids = list(call_ids)
    if len(ids) == 1:
        return [enqueue_call_evaluation(queue, ids[0], database_url)]
    out = []
    for i in range(0, len(ids), BATCH_SIZE):
        batch = ids[i : i + BATCH_SIZE]
        out.append(
            queue.enqueue(
                evaluate_calls,
                batch,
                database_url,
                job_id=f"evaluate-calls-{batch[0]}-{batch[-1]}-{len(batch)}",
                retry=job_retry(),
                job_timeout=JOB_TIMEOUT,
            )
        )
    return out


def enqueue_device_evaluation(
    queue: Any, event_ids: Sequence[int], database_url: str | None
) -> Any:
    """Queue :func:`evaluate_device_events` for stored device events (the listener's hook)."""
    ids = sorted(set(event_ids))
    return queue.enqueue(
        evaluate_device_events,
        ids,
        database_url,
        job_id=device_job_id(ids),
        retry=job_retry(),
        job_timeout=JOB_TIMEOUT,
    )


def _pending_job_ids(connection: Any, job_ids: list[str]) -> set[str]:
    """The ids among ``job_ids`` whose job RQ still holds as queued/running/retrying/failed."""
    from rq.job import Job

    pending: set[str] = set()
    for job_id, job in zip(job_ids, Job.fetch_many(job_ids, connection=connection), strict=True):
        if job is None:
            continue
        status = job.get_status(refresh=False)
        if status is not None and str(getattr(status, "value", status)) in _PENDING_STATES:
            pending.add(job_id)
    return pending


def _requeue_calls(connection: Any, call_ids: list[int], database_url: str | None) -> int:
    from rq import Queue

    if not call_ids:
        return 0
    job_ids = [evaluation_job_id(call_id) for call_id in call_ids]
    pending = _pending_job_ids(connection, job_ids)
    todo = [
        Queue.prepare_data(
            evaluate_call,
            (call_id, database_url),
            job_id=job_id,
            retry=job_retry(),
            timeout=JOB_TIMEOUT,
        )
        for call_id, job_id in zip(call_ids, job_ids, strict=True)
        if job_id not in pending
    ]
    if todo:
        Queue(EVALUATE_QUEUE, connection=connection).enqueue_many(todo)
    return len(todo)


def _requeue_device_events(connection: Any, event_ids: list[int], database_url: str | None) -> int:
    from rq import Queue

    if not event_ids:
        return 0
    batches = [event_ids[i : i + _DEVICE_BATCH] for i in range(0, len(event_ids), _DEVICE_BATCH)]
    job_ids = [device_job_id(batch) for batch in batches]
    pending = _pending_job_ids(connection, job_ids)
    queue = Queue(DEVICE_QUEUE, connection=connection)
    queued = 0
    for batch, job_id in zip(batches, job_ids, strict=True):
        if job_id not in pending:
            enqueue_device_evaluation(queue, batch, database_url)
            queued += len(batch)
    return queued
