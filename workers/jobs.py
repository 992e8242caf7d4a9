"""RQ jobs: thin module-level functions that take ids, are safe to run twice, and let
failures reach RQ's failed-job registry (nothing here catches an error to hide it).

- :func:`evaluate_call` judges one stored call with the pure rules (:mod:`callcenter.rules`)
  and the line policy from the database, and stores what follows from it in one
  transaction: violations (``unanswered``, ``slow_answer``, ``forwarded``, ``unmanned``)
  with the calls behind them and the duty officer on shift, the duty-log entry of the call,
  the call-back task of a missed inbound call, the closing of call-back tasks this call
  settles, and ``calls.evaluated_at``.
- :func:`evaluate_device_events` judges stored desk-phone status and flag changes
  (``phone_offline``, ``forward_set``, ``dnd_set``).
- :func:`sweep_outbox` (every minute, from :mod:`callcenter.workers.schedules`) queues again
  every stored call and device event whose evaluation never ran, so a Redis outage loses
  nothing, and closes call-back tasks that a race between two workers left open.

Running twice yields the same rows: every row a job writes has a natural key — violations
``dedupe_key`` (``unanswered:call:12``), log entries ``source_key`` (``call:12``), call-backs
``call_id``, link rows their primary keys — and is written with an insert that does nothing
when the key exists (``INSERT … ON CONFLICT DO NOTHING`` on PostgreSQL and SQLite), which is
also what makes several workers on several machines safe: they may race on the same call,
the database keeps one row. Rows already stored are never overwritten, so an inspector's
decision or an officer's note survives a re-run.

State that spans calls (the ``unmanned`` streak, call-backs) is computed from the stored
calls, never from a worker's memory, so any worker can evaluate any call in any order.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, or_, select, text, update
from sqlalchemy.orm import Session, aliased, joinedload, selectinload, sessionmaker

from callcenter.ami.devices import DeviceChange, DeviceKind, DeviceState, desk_phone_resolver
from callcenter.rules.calls import UnmannedWatch, judge_call, rang_endpoint
from callcenter.rules.devices import DeviceWatch
from callcenter.rules.policy import Policies
from callcenter.rules.schedule import ScheduleError, is_monitored
from callcenter.rules.violations import Violation
from callcenter.store.db import make_engine, make_session_factory, session_scope
from callcenter.store.duty import (
    Callback,
    DeviceEvent,
    LogEntry,
    LogEntryCall,
    Shift,
    ViolationCall,
)
from callcenter.store.duty import Violation as ViolationRow
from callcenter.store.models import Call, CallLeg
from callcenter.store.policy import LineDirectory, StoredLine, load_line_directory
from callcenter.store.roster import shift_for
from callcenter.tracking import records
from callcenter.tracking.names import digits, resource_of, same_number

__all__ = [
    "DEVICE_QUEUE",
    "EVALUATE_QUEUE",
    "SWEEP_AFTER_SECONDS",
    "device_change",
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
#: Call-backs written this recently are checked again by the sweep for a closing call that a
#: concurrent evaluation missed.
RECONCILE_SECONDS = 600.0
#: At most this many calls (and device events) are queued again per sweep; the next takes
#: the rest.
SWEEP_BATCH = 5_000
#: Seconds an evaluation may take before RQ stops it (and retries it).
JOB_TIMEOUT = 60
#: At most this many calls in one :func:`evaluate_calls` job.
BATCH_SIZE = 20
#: Seconds a worker reuses the duty lines it read (their policy, desk phones, unit).
LINE_CACHE_SECONDS = 15.0
#: Retry intervals (s) of an evaluation that failed or whose worker died; then the failed
#: registry (``rq requeue`` brings it back).
RETRY_INTERVALS = (5, 30, 120)

#: How far before the events given a phone's stored history is replayed (a phone offline
#: since Friday night on a weekday-only line is judged on Monday morning).
DEVICE_LOOKBACK = timedelta(days=8)

_DEVICE_KINDS = ("phone_offline", "forward_set", "dnd_set")
_INBOUND_MISSED = ("no_answer", "abandoned", "busy", "failed")
_CALLING_ROLES = ("caller", "originated")  # the legs that place a call (a call-back)
_PENDING_STATES = frozenset({"queued", "started", "scheduled", "deferred", "failed"})


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
    with session_scope(_sessions(_database_url(database_url))) as session:
        return _evaluate_call(session, call_id, datetime.now(UTC))


def evaluate_calls(call_ids: Sequence[int], database_url: str | None = None) -> list[object]:
    """:func:`evaluate_call` for several calls, each in its own transaction, in one job.

    The listener hands over the calls that finished together; one job for them saves RQ's
    per-job cost (a few ms each) when calls end in bursts. The first failure fails the job
    (the calls before it stay evaluated); RQ's retry runs it all again, which is safe.
    """
    sessions = _sessions(_database_url(database_url))
    results: list[object] = []
    for call_id in call_ids:
        with session_scope(sessions) as session:
            results.append(_evaluate_call(session, call_id, datetime.now(UTC)))
    return results


def evaluate_device_events(
    event_ids: Sequence[int], database_url: str | None = None
) -> dict[str, object]:
    """Judge stored device events (status, forward and DND flags of desk phones)."""
    with session_scope(_sessions(_database_url(database_url))) as session:
        _begin_writing(session)
        return _evaluate_device_events(session, list(event_ids), datetime.now(UTC))


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
    url = _database_url(database_url)
    now = datetime.now(UTC)
    with session_scope(_sessions(url)) as session:
        _begin_writing(session)
        call_ids, event_ids = _unevaluated(session, now - timedelta(seconds=older_than))
        open_ids = _open_device_event_ids(session, now - DEVICE_LOOKBACK)
        closed = _reconcile_callbacks(session, now - timedelta(seconds=RECONCILE_SECONDS))
    queued_calls = _requeue_calls(job.connection, call_ids, database_url)
    queued_events = _requeue_device_events(job.connection, event_ids, database_url)
    if open_ids:  # phones still offline or flagged: judge them again at this time
        _requeue_device_events(job.connection, open_ids, database_url)
    if queued_calls or queued_events or closed:
        logger.warning(
            "outbox sweep: %d call(s) and %d device event(s) queued again, %d call-back(s) "
            "closed late",
            queued_calls,
            queued_events,
            closed,
        )
    return {
        "calls_unevaluated": len(call_ids),
        "calls_queued": queued_calls,
        "device_events_queued": queued_events,
        "callbacks_closed": closed,
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
    batches = [event_ids[i : i + 500] for i in range(0, len(event_ids), 500)]
    job_ids = [device_job_id(batch) for batch in batches]
    pending = _pending_job_ids(connection, job_ids)
    queue = Queue(DEVICE_QUEUE, connection=connection)
    queued = 0
    for batch, job_id in zip(batches, job_ids, strict=True):
        if job_id not in pending:
            enqueue_device_evaluation(queue, batch, database_url)
            queued += len(batch)
    return queued


def _unevaluated(session: Session, before: datetime) -> tuple[list[int], list[int]]:
    calls = session.scalars(
        select(Call.id)
        .where(Call.evaluated_at.is_(None), Call.created_at < before)
        .order_by(Call.id)
        .limit(SWEEP_BATCH)
    )
    events = session.scalars(
        select(DeviceEvent.id)
        .where(DeviceEvent.evaluated_at.is_(None), DeviceEvent.created_at < before)
        .order_by(DeviceEvent.id)
        .limit(SWEEP_BATCH)
    )
    return list(calls), list(events)


# --------------------------------------------------------------------------- plumbing


_factories: dict[str, sessionmaker[Session]] = {}


def _sessions(url: str) -> sessionmaker[Session]:
    """One engine (and connection pool) per database URL and worker process, kept warm."""
    factory = _factories.get(url)
    if factory is None:
        factory = _factories[url] = make_session_factory(make_engine(url))
    return factory


def dispose_engines() -> None:
    """Close the pooled connections of this process (tests; a worker keeps them)."""
    for factory in _factories.values():
        factory.kw["bind"].dispose()
    _factories.clear()
    _line_cache.clear()


@cache
def _configured_database_url() -> str:
    from callcenter.config import load_config

    return load_config().database.url


def _database_url(database_url: str | None) -> str:
    """The URL the job was given, else the configured one (``CALLCENTER_CONFIG`` …)."""
    return database_url or _configured_database_url()


_line_cache: dict[Any, tuple[float, LineDirectory]] = {}


def _lines(session: Session, *, fresh: bool = False) -> LineDirectory:
    """The active duty lines, read at most every :data:`LINE_CACHE_SECONDS` per process (a
    line edited in the console is judged by its new policy within that time)."""
    engine = session.get_bind()
    now = time.monotonic()
    cached = _line_cache.get(engine)
    if cached is None or fresh or now - cached[0] > LINE_CACHE_SECONDS:
        cached = (now, load_line_directory(session))
        _line_cache[engine] = cached
    return cached[1]


def _begin_writing(session: Session) -> None:
    """SQLite: take the write lock before the first read of the transaction.

    SQLite has one writer at a time. A transaction that reads and only then writes fails at
    once with "database is locked" when another process committed in between (WAL
    snapshots cannot be upgraded; the busy timeout does not help), while a transaction whose
    first statement writes waits its turn under the busy timeout. A write that changes
    nothing is enough to take the lock. PostgreSQL needs nothing of the sort.
    """
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text("UPDATE calls SET id = id WHERE 0"))


def _insert_if_absent(
    session: Session, model: type[Any], values: Mapping[str, Any], keys: Sequence[str]
) -> Any | None:
    """Insert a row unless one with the same ``keys`` exists; the new primary key or None.

    One statement, safe under concurrency: ``INSERT … ON CONFLICT (keys) DO NOTHING`` on
    PostgreSQL (a concurrent insert of the same key waits for the other transaction, then
    does nothing) and SQLite (one writer at a time).
    """
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql as dialect_dml
    elif dialect == "sqlite":
        from sqlalchemy.dialects import sqlite as dialect_dml  # type: ignore[no-redef]
    else:  # pragma: no cover - the two supported engines
        raise RuntimeError(f"unsupported database {dialect}")
    table = model.__table__
    primary = table.primary_key.columns
    statement = (
        dialect_dml.insert(table)
        .values(**values)
        .on_conflict_do_nothing(index_elements=list(keys))
        .returning(*primary)
    )
    row = session.execute(statement).first()
    if row is None:
        return None
    return row[0] if len(row) == 1 else tuple(row)


# --------------------------------------------------------------------------- calls


@dataclass(frozen=True, slots=True)
class _Context:
    """Where a call belongs: its duty line (if any), unit, shift, and the duty officer."""

    line: StoredLine | None
    unit_id: int | None
    shift_id: int | None
    officer: str | None


def _evaluate_call(session: Session, call_id: int, now: datetime) -> dict[str, object]:
    _begin_writing(session)
    row = (
        session.scalars(
            select(Call)
            .where(Call.id == call_id)
            .options(joinedload(Call.legs))
            # PostgreSQL: one evaluation of a call at a time. FOR NO KEY UPDATE, not FOR UPDATE:
            # another evaluation may insert a row that points to this call (the unmanned
            # violation of a streak, its link rows), and the foreign-key check's FOR KEY SHARE
            # must not wait for us while we wait for its violation key: a deadlock.
            .with_for_update(of=Call, key_share=True)
        )
        .unique()
        .first()
    )
    if row is None:  # deleted since it was stored: nothing to judge, nothing to retry
        logger.warning("call %s is not stored (deleted?); nothing to evaluate", call_id)
        return {"call_id": call_id, "missing": True}
    record = _record(row)
    context = _context(session, row)
    line = context.line

    judged = _judged(row, line)
    found = _violations(record, line) if judged and line is not None else []
    stored_kinds = []
    for violation in found:
        _store_violation(session, violation, f"{violation.kind}:call:{row.id}", row, context, {})
        stored_kinds.append(violation.kind)
    if line is not None and any(v.kind == "unanswered" for v in found):
        streak = _unmanned(session, row, line, context)
        if streak is not None:
            violation, trigger, ids = streak
            key = f"unmanned:call:{trigger.id}"
            _store_violation(session, violation, key, trigger, context, ids)
            stored_kinds.append("unmanned")

    _write_log_entry(session, row, context)
    callback = _open_callback(session, row, context) if judged else None
    closed = _close_callbacks_by(session, row, context)
    if row.evaluated_at is None:
        row.evaluated_at = now
    logger.debug("call %s (%s) evaluated: %s", call_id, row.linkedid, stored_kinds or "none")
    return {
        "call_id": call_id,
        "violations": stored_kinds,
        "callback": callback,
        "callbacks_closed": closed,
    }


def _record(row: Call) -> records.Call:
    """The stored call as the tracker's immutable record (what the pure rules take)."""
    return records.Call(
        linkedid=row.linkedid,
        caller=row.caller,
        caller_name=row.caller_name,
        dialed=row.dialed,
        line=row.line,
        direction=cast(records.Direction, row.direction),
        started_at=row.started_at,
        answered_at=row.answered_at,
        ended_at=row.ended_at,
        ring_seconds=row.ring_seconds,
        talk_seconds=row.talk_seconds,
        outcome=cast(records.Outcome, row.outcome),
        answered_by=row.answered_by,
        forwarded_to=row.forwarded_to,
        transferred_to=row.transferred_to,
        hangup_cause=row.hangup_cause,
        closed_by=cast(records.ClosedBy, row.closed_by),
        originated=row.originated,
        times_estimated=row.times_estimated,
        legs=tuple(_leg(leg) for leg in row.legs),
    )


def _leg(leg: CallLeg) -> records.Leg:
    return records.Leg(
        uniqueid=leg.uniqueid,
        channel=leg.channel,
        endpoint=leg.endpoint,
        role=cast(records.LegRole, leg.role),
        created_at=leg.created_at,
        ringing_at=leg.ringing_at,
        answered_at=leg.answered_at,
        ended_at=leg.ended_at,
        hangup_cause=leg.hangup_cause,
        dial_status=leg.dial_status,
    )


def _at(row: Call) -> datetime:
    """When a call happened, for rows that need a time (a call always has ``created_at``)."""
    return row.started_at or row.ended_at or row.created_at


def _judged(row: Call, line: StoredLine | None) -> bool:
    """Only inbound calls to a duty line are judged (never a spot check or a call-back)."""
    return line is not None and row.direction == "inbound" and not row.originated


def _violations(record: records.Call, line: StoredLine) -> list[Violation]:
    """The pure call rules, during the line's monitored hours only (its ``schedule``)."""
    at = record.started_at or record.ended_at
    if at is not None and not _monitored(line, at):
        return []
    return judge_call(record, line.policy)


def _monitored(line: StoredLine, at: datetime) -> bool:
    try:
        return is_monitored(line.schedule, at, line.unit_timezone)
    except ScheduleError as exc:
        # A schedule typed wrong in the console must not hide violations: judge as 24 h.
        logger.error("duty line %s: %s; judged as monitored around the clock", line.number, exc)
        return True


def _calling_endpoints(row: Call) -> list[str]:
    return [leg.endpoint for leg in row.legs if leg.role in _CALLING_ROLES]


def _context(session: Session, row: Call) -> _Context:
    """The line a call belongs to: the one dialed (inbound, spot check), else the line of the
    desk phone that placed it (a call-back); its unit, and the shift on duty then."""
    directory = _lines(session)
    line = directory.for_number(row.line)
    if line is None and row.direction != "inbound":
        found = directory.for_endpoints(_calling_endpoints(row))
        line = found[0] if found else None
    if line is None:
        return _Context(None, None, None, None)
    shift = shift_for(session, line.unit_id, _at(row))
    return _Context(
        line,
        line.unit_id,
        shift.id if shift else None,
        shift.main_officer if shift else None,
    )


def _store_violation(
    session: Session,
    violation: Violation,
    dedupe_key: str,
    row: Call,
    context: _Context,
    call_ids: Mapping[str, int],
) -> int:
    """Store one violation (if absent) and the calls behind it; returns its id."""
    line = context.line
    values = {
        "dedupe_key": dedupe_key,
        "kind": violation.kind,
        "state": "flagged",
        "unit_id": context.unit_id,
        "line_id": line.line_id if line else None,
        "line_number": violation.line or (line.number if line else None),
        "endpoint": violation.endpoint,
        "at": violation.at or _at(row),
        "ended_at": None,
        "duration_seconds": violation.duration_seconds,
        "detail": violation.detail,
        "call_id": row.id,
        "shift_id": context.shift_id,
        "officer": context.officer,
    }
    violation_id = _insert_if_absent(session, ViolationRow, values, ["dedupe_key"])
    if violation_id is None:
        violation_id = session.scalar(
            select(ViolationRow.id).where(ViolationRow.dedupe_key == dedupe_key)
        )
        if violation_id is None:  # pragma: no cover - the insert said the key exists
            raise RuntimeError(f"violation {dedupe_key} neither inserted nor found")
    behind = {call_ids.get(linkedid) for linkedid in violation.linkedids} | {row.id}
    for call_id in sorted(i for i in behind if i is not None):
        _insert_if_absent(
            session,
            ViolationCall,
            {"violation_id": violation_id, "call_id": call_id},
            ["violation_id", "call_id"],
        )
    return int(violation_id)


# --------------------------------------------------------------------------- unmanned


def _streak_start(row: Call, line: StoredLine, context: _Context, session: Session) -> datetime:
    """Where a streak of unanswered calls may begin: the start of the shift on duty, or with no
    roster the start of the unit's local day (a streak never spans two shifts)."""
    if context.shift_id is not None:
        shift = session.get(Shift, context.shift_id)
        if shift is not None:
            return shift.starts_at
    local = _at(row).astimezone(ZoneInfo(line.unit_timezone))
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


#: What the unmanned rule reads of the earlier calls of a streak (no legs, no free text).
_STREAK_COLUMNS = (
    Call.id,
    Call.linkedid,
    Call.started_at,
    Call.ended_at,
    Call.ring_seconds,
    Call.outcome,
    Call.forwarded_to,
)


def _unmanned(
    session: Session, row: Call, line: StoredLine, context: _Context
) -> tuple[Violation, Call, dict[str, int]] | None:
    """The ``unmanned`` violation of the streak ``row`` belongs to, if the streak has one.

    Replays the stored inbound calls of the line from the last answered call of the shift
    (else the start of the shift) up to ``row`` through the pure
    :class:`~callcenter.rules.calls.UnmannedWatch`, which raises once per streak (an answered
    call resets it). The result does not depend on which call of the streak is evaluated
    first, so it is stored under the key of the call that completed the streak
    (``unmanned:call:<id>``) and concurrent evaluations write it once.
    """
    if row.started_at is None:
        return None
    on_line = (
        Call.line == line.number,
        Call.direction == "inbound",
        Call.originated.is_(False),
        Call.started_at >= _streak_start(row, line, context, session),
        or_(
            Call.started_at < row.started_at,
            and_(Call.started_at == row.started_at, Call.id <= row.id),
        ),
    )
    reset = session.execute(
        select(Call.started_at, Call.id)
        .where(*on_line, Call.outcome == "answered")
        .order_by(Call.started_at.desc(), Call.id.desc())
        .limit(1)
    ).first()
    after_reset = (
        ()
        if reset is None
        else (
            or_(
                Call.started_at > reset.started_at,
                and_(Call.started_at == reset.started_at, Call.id > reset.id),
            ),
        )
    )
    streak = session.execute(
        select(*_STREAK_COLUMNS)
        .where(*on_line, *after_reset, Call.outcome != "answered")
        .order_by(Call.started_at, Call.id)
    ).all()
    watch = UnmannedWatch()
    found: tuple[Violation, int] | None = None
    for call in streak:
        record = _streak_record(call, line.number)
        raised = any(v.kind == "unanswered" for v in _violations(record, line))
        violation = watch.observe(record, line.policy, raised)
        if violation is not None:  # once per streak: the first is the one
            found = (violation, call.id)
            break
    if found is None:
        return None
    violation, trigger_id = found
    trigger = row if trigger_id == row.id else session.get(Call, trigger_id)
    if trigger is None:  # pragma: no cover - read in this transaction
        raise RuntimeError(f"call {trigger_id} vanished while judging call {row.id}")
    violation = replace(violation, endpoint=rang_endpoint(_record(trigger)))
    ids = {call.linkedid: call.id for call in streak if call.linkedid in violation.linkedids}
    return violation, trigger, ids


def _streak_record(call: Any, line: str) -> records.Call:
    """An earlier call of a streak, with just what the unanswered and unmanned rules read."""
    return records.Call(
        linkedid=call.linkedid,
        caller=None,
        caller_name=None,
        dialed=line,
        line=line,
        direction="inbound",
        started_at=call.started_at,
        answered_at=None,
        ended_at=call.ended_at,
        ring_seconds=call.ring_seconds,
        talk_seconds=None,
        outcome=call.outcome,
        answered_by=None,
        forwarded_to=call.forwarded_to,
        transferred_to=None,
        hangup_cause=None,
        closed_by="hangup",
    )


# --------------------------------------------------------------------------- duty log


def _write_log_entry(session: Session, row: Call, context: _Context) -> None:
    """The duty-log entry of a call (``source_key`` ``call:<id>``), tied to the call."""
    if context.unit_id is None:
        return  # not a call of any monitored unit: the call log has it, the duty log not
    missed = _judged(row, context.line) and row.outcome in _INBOUND_MISSED
    entry_id = _insert_if_absent(
        session,
        LogEntry,
        {
            "source_key": f"call:{row.id}",
            "unit_id": context.unit_id,
            "shift_id": context.shift_id,
            "at": _at(row),
            "kind": "call",
            "summary": _summary(row),
            "action_taken": "",
            "status": "open" if missed else "done",
        },
        ["source_key"],
    )
    if entry_id is None:
        entry_id = session.scalar(
            select(LogEntry.id).where(LogEntry.source_key == f"call:{row.id}")
        )
    _insert_if_absent(
        session,
        LogEntryCall,
        {"log_entry_id": entry_id, "call_id": row.id},
        ["log_entry_id", "call_id"],
    )


def _summary(row: Call) -> str:
    ring = f"{row.ring_seconds:.1f} s" if row.ring_seconds is not None else "unknown time"
    talk = f", talk {row.talk_seconds:.0f} s" if row.talk_seconds is not None else ""
    caller = row.caller or "an unknown number"
    if row.originated and row.direction != "inbound" and not row.dialed:
        return f"Originated call to {row.answered_by or row.line}: {row.outcome}"
    if row.direction == "inbound" and not row.originated:
        if row.outcome == "answered":
            forwarded = f", forwarded to {row.forwarded_to}" if row.forwarded_to else ""
            return (
                f"Call from {caller} to {row.line}: answered by {row.answered_by} "
                f"after {ring}{forwarded}{talk}"
            )
        return f"Missed call from {caller} to {row.line}: {row.outcome} after {ring}; call back"
    if row.originated and row.line and row.caller == row.line:
        return f"Spot check of {row.line}: {row.outcome} after {ring}{talk}"
    who = ", ".join(_calling_endpoints(row)) or caller
    return f"{row.direction.capitalize()} call from {who} to {row.dialed}: {row.outcome}{talk}"


# --------------------------------------------------------------------------- call-backs


def _open_callback(session: Session, row: Call, context: _Context) -> str | None:
    """事事有回音: a missed inbound call becomes a call-back task, closed at once if a later
    stored call already settled it (an evaluation may run after the call that closes it)."""
    if row.outcome not in _INBOUND_MISSED or context.line is None:
        return None
    number = row.caller if digits(row.caller) else None
    values: dict[str, Any] = {
        "call_id": row.id,
        "line_id": context.line.line_id,
        "caller": (number or "")[:64],
        "state": "open",
        "reason": "",
    }
    if number is None:
        values |= {
            "state": "excused",
            "reason": "no caller number to call back",
            "closed_at": _at(row),
        }
    _insert_if_absent(session, Callback, values, ["call_id"])
    callback = session.scalar(select(Callback).where(Callback.call_id == row.id))
    if callback is None:  # pragma: no cover - inserted or found above
        raise RuntimeError(f"call-back of call {row.id} neither inserted nor found")
    if callback.state == "open":
        _settle(session, callback, row, context.line)
    return callback.state


def _settle(session: Session, callback: Callback, missed: Call, line: StoredLine) -> bool:
    """Close ``callback`` if a stored call after ``missed`` settled it; True if closed."""
    closer = _closing_call(session, missed, line)
    if closer is None:
        return False
    state, call = closer
    return _close(session, callback.id, state, call)


def _closing_call(session: Session, missed: Call, line: StoredLine) -> tuple[str, Call] | None:
    """The earliest answered call after ``missed`` that settles it: the caller got through on
    the line (``reached``), or a desk phone of the line called the number back
    (``called_back``)."""
    if missed.started_at is None or not missed.caller:
        return None
    tail = digits(missed.caller)[-7:]
    candidates = session.scalars(
        select(Call)
        .where(
            Call.outcome == "answered",
            Call.started_at > missed.started_at,
            Call.id != missed.id,
            or_(
                and_(
                    Call.direction == "inbound",
                    Call.originated.is_(False),
                    Call.line == line.number,
                    Call.caller.like(f"%{tail}"),
                ),
                and_(Call.direction != "inbound", Call.dialed.like(f"%{tail}")),
            ),
        )
        .options(selectinload(Call.legs))
        .order_by(Call.started_at, Call.id)
    )
    for call in candidates:
        if call.direction == "inbound":
            if same_number(call.caller, missed.caller):
                return "reached", call
        elif same_number(call.dialed, missed.caller) and any(
            endpoint in line.desk_phones for endpoint in _calling_endpoints(call)
        ):
            return "called_back", call
    return None


def _close_callbacks_by(session: Session, row: Call, context: _Context) -> int:
    """Close the open call-backs that ``row`` settles (it may be evaluated after them)."""
    if row.outcome != "answered" or row.started_at is None:
        return 0
    if row.direction == "inbound":
        if row.originated or context.line is None or not row.caller:
            return 0
        state, number, line_ids = "reached", row.caller, [context.line.line_id]
    else:
        lines = _lines(session).for_endpoints(_calling_endpoints(row))
        if not lines or not row.dialed:
            return 0
        state, number, line_ids = "called_back", row.dialed, [line.line_id for line in lines]
    tail = digits(number)[-7:]
    if not tail:
        return 0
    open_ones = session.execute(
        select(Callback.id, Callback.caller)
        .join(Call, Call.id == Callback.call_id)
        .where(
            Callback.state == "open",
            Callback.line_id.in_(line_ids),
            Callback.caller.like(f"%{tail}"),
            Call.started_at < row.started_at,
        )
        .order_by(Callback.id)
    ).all()
    return sum(
        _close(session, callback_id, state, row)
        for callback_id, caller in open_ones
        if same_number(caller, number)
    )


def _close(session: Session, callback_id: int, state: str, by: Call) -> bool:
    """Close an open call-back (a closed one stays as it is); mark its log entry done."""
    closed_at = by.answered_at or _at(by)
    done = session.execute(
        update(Callback)
        .where(Callback.id == callback_id, Callback.state == "open")
        .values(state=state, closed_at=closed_at, closed_by_call_id=by.id)
        .execution_options(synchronize_session=False)
    )
    if not done.rowcount:  # type: ignore[attr-defined]
        return False
    missed_id = session.scalar(select(Callback.call_id).where(Callback.id == callback_id))
    how = "caller got through" if state == "reached" else "called back"
    session.execute(
        update(LogEntry)
        .where(
            LogEntry.source_key == f"call:{missed_id}",
            LogEntry.status == "open",
            LogEntry.action_taken == "",
        )
        .values(status="done", action_taken=f"{how} (call {by.id}, {by.linkedid})")
        .execution_options(synchronize_session=False)
    )
    return True


def _reconcile_callbacks(session: Session, since: datetime, limit: int = 1_000) -> int:
    """Close the open call-backs written since ``since`` whose closing call was evaluated
    while they were being written (two workers at the same moment): the sweep's safety net.
    """
    rows = session.execute(
        select(Callback, Call)
        .join(Call, Call.id == Callback.call_id)
        .where(
            Callback.state == "open",
            Callback.line_id.is_not(None),
            Callback.created_at >= since,
        )
        .order_by(Callback.id)
        .limit(limit)
    ).all()
    closed = 0
    directory = _lines(session, fresh=True)
    for callback, missed in rows:
        line = directory.for_number(missed.line)
        if line is not None and line.line_id == callback.line_id:
            closed += _settle(session, callback, missed, line)
    return closed


# --------------------------------------------------------------------------- device events


def device_change(row: DeviceEvent) -> DeviceChange:
    """A stored device event as the pure device rules take it."""
    return DeviceChange(
        endpoint=row.endpoint,
        kind=cast(DeviceKind, row.kind),
        state=cast(DeviceState, row.state),
        at=row.at,
        detail=row.detail,
        source=row.source or row.kind,
        contact=row.contact,
    )


def _evaluate_device_events(
    session: Session, event_ids: list[int], now: datetime
) -> dict[str, object]:
    """Judge the desk phones the events ``event_ids`` concern, from their stored history.

    The pure :class:`~callcenter.rules.devices.DeviceWatch` is stateful (offline since when,
    which flags are on), so each phone's stored events are replayed through a fresh one,
    from :data:`DEVICE_LOOKBACK` before the earliest event given (or the start of a
    violation still open), up to the last stored; ``close(now)`` adds what is open now (a
    phone offline past its grace, a flag still on). Every violation is stored under its
    dedupe key; a stored one still open gets its end, duration and detail when it closes.
    """
    events = session.scalars(select(DeviceEvent).where(DeviceEvent.id.in_(event_ids))).all()
    directory = _lines(session)
    phones: dict[tuple[str, str], datetime] = {}
    for event in events:
        key = (event.pbx, _phone_of(event.endpoint, directory))
        phones[key] = min(phones.get(key, event.at), event.at)
    stored: list[str] = []
    for (pbx, phone), earliest in sorted(phones.items()):
        stored.extend(_judge_phone(session, directory, pbx, phone, earliest, now))
    session.execute(
        update(DeviceEvent)
        .where(DeviceEvent.id.in_(event_ids), DeviceEvent.evaluated_at.is_(None))
        .values(evaluated_at=now)
        .execution_options(synchronize_session=False)
    )
    return {"device_events": len(events), "phones": len(phones), "violations": stored}


def _phone_of(endpoint: str, directory: LineDirectory) -> str:
    """``PJSIP/2001`` as stored, or the desk phone a bare lamp/AstDB name (``2001``) means."""
    if "/" in endpoint:
        return endpoint
    phones = sorted({p for line in directory.lines for p in line.desk_phones})
    return desk_phone_resolver(phones)(endpoint) or endpoint


def _judge_phone(
    session: Session,
    directory: LineDirectory,
    pbx: str,
    phone: str,
    earliest: datetime,
    now: datetime,
) -> list[str]:
    lines = directory.for_endpoints([phone])
    if not lines:
        return []  # not a desk phone of any duty line: nothing to judge
    watch = DeviceWatch(
        Policies({line.number: line.policy for line in lines}, configured=True),
        schedules={line.number: line.schedule for line in lines},
        tz=lines[0].unit_timezone,
    )
    suffix = f"@{pbx}"
    open_since = session.scalar(
        select(func.min(ViolationRow.at)).where(
            ViolationRow.endpoint == phone,
            ViolationRow.kind.in_(_DEVICE_KINDS),
            ViolationRow.ended_at.is_(None),
            ViolationRow.dedupe_key.like(f"%{suffix}"),
        )
    )
    start = min(earliest, open_since or earliest) - DEVICE_LOOKBACK
    names = {phone, resource_of(phone)}
    history = session.scalars(
        select(DeviceEvent)
        .where(DeviceEvent.pbx == pbx, DeviceEvent.endpoint.in_(names), DeviceEvent.at >= start)
        .order_by(DeviceEvent.at, DeviceEvent.id)
    )
    found: list[Violation] = []
    for event in history:
        found.extend(watch.observe(device_change(event)))
    found.extend(watch.close(now))
    for violation in found:
        _store_device_violation(session, violation, pbx, directory)
    return [v.kind for v in found]


def _store_device_violation(
    session: Session, violation: Violation, pbx: str, directory: LineDirectory
) -> None:
    key = f"{violation.dedupe_key}@{pbx}"
    line = directory.for_number(violation.line)
    at = violation.at
    if at is None:  # pragma: no cover - stored device events always have a time
        raise ValueError(f"device violation {key} has no time")
    shift = shift_for(session, line.unit_id, at) if line is not None else None
    values = {
        "dedupe_key": key,
        "kind": violation.kind,
        "state": "flagged",
        "unit_id": line.unit_id if line else None,
        "line_id": line.line_id if line else None,
        "line_number": violation.line,
        "endpoint": violation.endpoint,
        "at": at,
        "ended_at": violation.ended_at,
        "duration_seconds": violation.duration_seconds,
        "detail": violation.detail,
        "call_id": None,
        "shift_id": shift.id if shift else None,
        "officer": shift.main_officer if shift else None,
    }
    if _insert_if_absent(session, ViolationRow, values, ["dedupe_key"]) is not None:
        return
    # Stored already: while it is open, bring its end, duration and detail up to date.
    session.execute(
        update(ViolationRow)
        .where(ViolationRow.dedupe_key == key, ViolationRow.ended_at.is_(None))
        .values(
            ended_at=violation.ended_at,
            duration_seconds=violation.duration_seconds,
            detail=violation.detail,
        )
        .execution_options(synchronize_session=False)
    )


def _open_device_event_ids(session: Session, since: datetime) -> list[int]:
    """The latest event of every phone whose last word is "offline" or "on": the phones to
    judge again each sweep (offline past the grace, a flag switched on outside hours)."""
    later = aliased(DeviceEvent)
    newer = (
        select(later.id)
        .where(
            later.pbx == DeviceEvent.pbx,
            later.endpoint == DeviceEvent.endpoint,
            later.kind == DeviceEvent.kind,
            or_(
                later.at > DeviceEvent.at,
                and_(later.at == DeviceEvent.at, later.id > DeviceEvent.id),
            ),
        )
        .exists()
    )
    return list(
        session.scalars(
            select(func.max(DeviceEvent.id))
            .where(DeviceEvent.state.in_(("offline", "on")), DeviceEvent.at >= since, ~newer)
            .group_by(DeviceEvent.pbx, DeviceEvent.endpoint)
            .order_by(func.max(DeviceEvent.id))
        )
    )
