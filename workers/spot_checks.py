"""Spot-check jobs (电话抽查): plan the day's checks, dial each one, judge what it found.

- :func:`plan_spot_checks` (RQ cron, hourly) inserts the ``SpotCheck`` rows of today and
  tomorrow (local dates) as :func:`callcenter.spotchecks.plan_day` draws them, and schedules
  :func:`run_spot_check` for each (``enqueue_at``). The plan depends only on the seed, the
  day and the line, and ``(line_id, scheduled_at)`` is unique: planning again plans nothing
  new, and a check whose job was lost is scheduled again.
- :func:`run_spot_check` claims the check (``action_id``, ``originated_at``; a second run
  finds it claimed and does nothing), queues the Originate for the listener
  (:func:`callcenter.clicktocall.request_spot_check`) and schedules :func:`judge_spot_check`
  after the ring timeout.
- :func:`judge_spot_check` reads the Originate's result (Redis) and the stored call the
  check made (an originated call to the line around that time), judges them
  (:func:`callcenter.spotchecks.judge_spot_check`) and stores the result, the call and the
  ``spot_check_failed`` violation (``dedupe_key`` ``spot_check_failed:spot_check:<id>``)
  with the duty officer on shift. Run twice, it stores one violation; while the call is not
  stored yet it looks again later, up to :data:`JUDGE_ATTEMPTS` times.
- :func:`schedule_spot_check_now` is the console's "check this line now".

The Redis connection is the running job's (as RQ gives it); the database URL is passed in
or the configured one.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.orm import Session, selectinload

from callcenter import clicktocall
from callcenter.config import SpotChecksConfig
from callcenter.rules.schedule import DEFAULT_TIMEZONE
from callcenter.spotchecks import (
    DEFAULT_PER_LINE,
    DEFAULT_RING_TIMEOUT,
    OriginateOutcome,
    PlanLine,
    Verdict,
    pick_call,
    plan_day,
)
from callcenter.spotchecks import judge_spot_check as judge
from callcenter.store.db import session_scope
from callcenter.store.duty import SpotCheck, ViolationCall
from callcenter.store.duty import Violation as ViolationRow
from callcenter.store.models import Call
from callcenter.store.org import DutyLine
from callcenter.store.policy import load_stored_lines, policy_of
from callcenter.store.roster import shift_for
from callcenter.workers.context import call_record
from callcenter.workers.storage import (
    insert_if_absent,
    resolve_database_url,
    sessions,
)

__all__ = [
    "DEFAULT_CONTEXT",
    "JUDGE_ATTEMPTS",
    "JUDGE_DELAY_SECONDS",
    "SPOT_CHECK_QUEUE",
    "enqueue_run_now",
    "judge_job_id",
    "judge_spot_check",
    "plan_spot_checks",
    "run_job_id",
    "run_spot_check",
    "schedule_spot_check_now",
]

logger = logging.getLogger(__name__)

#: The queue spot-check jobs run on (the ``default`` queue of ``callcenter worker``).
SPOT_CHECK_QUEUE = "default"
#: The dialplan context outside calls to a duty line arrive in: a spot check originates
#: ``Local/<line>@<context>`` (docker/asterisk/extensions.conf: ``from-trunk``).
DEFAULT_CONTEXT = "from-trunk"
#: Seconds after the ring timeout before the first judgement (the prompt plays, the call
#: ends and is stored, its evaluation runs).
JUDGE_DELAY_SECONDS = 60.0
#: Judgements of one check at most; the last one decides with whatever is known.
JUDGE_ATTEMPTS = 3
JOB_TIMEOUT = 120
_PENDING = frozenset({"queued", "started", "scheduled", "deferred"})


def run_job_id(spot_check_id: int) -> str:
    return f"spot-check-{spot_check_id}"


def judge_job_id(spot_check_id: int, attempt: int) -> str:
    return f"judge-spot-check-{spot_check_id}-{attempt}"


@dataclass(frozen=True, slots=True)
class _Options:
    """How checks are dialed (config ``spot_checks.*`` once it exists; job kwargs now)."""

    context: str = DEFAULT_CONTEXT
    prompt: str = clicktocall.SPOT_CHECK_PROMPT
    ring_timeout_seconds: float = DEFAULT_RING_TIMEOUT
    pbx: str | None = None

    def kwargs(self) -> dict[str, Any]:
        return {
            "context": self.context,
            "prompt": self.prompt,
            "ring_timeout_seconds": self.ring_timeout_seconds,
            "pbx": self.pbx,
        }


# --------------------------------------------------------------------------- planning


def dial_options(config: SpotChecksConfig) -> dict[str, Any]:
    """How checks are dialed, from the config's ``[spot_checks]`` (for the jobs' kwargs)."""
    return {
        "context": config.context,
        "prompt": config.prompt,
        "ring_timeout_seconds": config.ring_timeout_seconds,
        "pbx": config.pbx,
    }


def plan_options(config: SpotChecksConfig) -> dict[str, Any]:
    """:func:`plan_spot_checks`' settings from the config (how many, the secret seed, how)."""
    return {"per_line": config.per_line, "seed": config.seed or "", **dial_options(config)}


def plan_spot_checks(
    day: str | None = None,
    database_url: str | None = None,
    *,
    per_line: int = DEFAULT_PER_LINE,
    seed: str = "",
    context: str = DEFAULT_CONTEXT,
    prompt: str = clicktocall.SPOT_CHECK_PROMPT,
    ring_timeout_seconds: float = DEFAULT_RING_TIMEOUT,
    pbx: str | None = None,
) -> dict[str, int]:
    """Plan the spot checks of ``day`` (ISO date; default today and tomorrow in
    Asia/Shanghai) for every active line and schedule the ones still to come.

    ``seed`` makes the times unpredictable to the duty rooms: keep it secret (config
    ``spot_checks.seed``). Returns how many rows were inserted and jobs scheduled.
    """
    queue = _queue()
    now = datetime.now(UTC)
    if day is None:
        today = now.astimezone(ZoneInfo(DEFAULT_TIMEZONE)).date()
        days = [today, today + timedelta(days=1)]
    else:
        days = [date.fromisoformat(day)]
    options = _Options(context, prompt, ring_timeout_seconds, pbx)
    inserted = 0
    todo: list[tuple[int, datetime]] = []
    with session_scope(sessions(resolve_database_url(database_url))) as session:
        lines = [
            PlanLine(line.line_id, line.number, line.schedule, line.unit_timezone)
            for line in load_stored_lines(session)
        ]
        planned_checks = [
            check
            for one_day in days
            for check in plan_day(
                lines,
                one_day,
                per_line=per_line,
                seed=seed,
                ring_timeout_seconds=ring_timeout_seconds,
            )
        ]
        for planned in planned_checks:
            if planned.scheduled_at <= now:
                continue  # planned late (the day began before the plan ran): not dialed now
            new_id = insert_if_absent(
                session,
                SpotCheck,
                {"line_id": planned.line_id, "scheduled_at": planned.scheduled_at, "detail": ""},
                ["line_id", "scheduled_at"],
            )
            inserted += new_id is not None
        todo = [
            (row.id, row.scheduled_at)
            for row in session.execute(
                select(SpotCheck.id, SpotCheck.scheduled_at).where(
                    SpotCheck.action_id.is_(None),
                    SpotCheck.result.is_(None),
                    SpotCheck.scheduled_at > now,
                )
            )
        ]
    scheduled = _schedule_runs(queue, todo, database_url, options)
    logger.info("spot checks of %s: %d planned, %d scheduled",
                ", ".join(map(str, days)), inserted, scheduled)  # fmt: skip
    return {"inserted": inserted, "scheduled": scheduled}


def _schedule_runs(
    queue: Any, todo: Sequence[tuple[int, datetime]], database_url: str | None, options: _Options
) -> int:
    """``enqueue_at`` :func:`run_spot_check` for each check whose job RQ does not hold."""
    from rq.job import Job

    if not todo:
        return 0
    ids = [run_job_id(check_id) for check_id, _ in todo]
    held = Job.fetch_many(ids, connection=queue.connection)
    scheduled = 0
    for (check_id, at), job in zip(todo, held, strict=True):
        if job is not None and str(getattr(job.get_status(), "value", "")) in _PENDING:
            continue
        queue.enqueue_at(
            at,
            run_spot_check,
            check_id,
            database_url,
            **options.kwargs(),
            job_id=run_job_id(check_id),
            job_timeout=JOB_TIMEOUT,
        )
        scheduled += 1
    return scheduled


def schedule_spot_check_now(
    session: Session, line_id: int, *, requested_by: str, now: datetime | None = None
) -> int:
    """The console's "check this line now": insert a spot check at ``now`` (to the whole
    second) in the caller's transaction; the caller commits, then queues it with
    :func:`enqueue_run_now`. Returns its id; a second request in the same second returns
    the same check."""
    at = (now or datetime.now(UTC)).replace(microsecond=0)
    detail = f"requested by {requested_by}"[:255]
    new_id = insert_if_absent(
        session,
        SpotCheck,
        {"line_id": line_id, "scheduled_at": at, "detail": detail},
        ["line_id", "scheduled_at"],
    )
    if new_id is not None:
        return int(new_id)
    found = session.scalar(
        select(SpotCheck.id).where(SpotCheck.line_id == line_id, SpotCheck.scheduled_at == at)
    )
    if found is None:  # pragma: no cover - the insert said the key exists
        raise RuntimeError(f"spot check of line {line_id} at {at} neither inserted nor found")
    return int(found)


def enqueue_run_now(
    connection: Any, spot_check_id: int, database_url: str | None = None, **options: Any
) -> Any:
    """Queue :func:`run_spot_check` now (after the row is committed)."""
    from rq import Queue

    return Queue(SPOT_CHECK_QUEUE, connection=connection).enqueue(
        run_spot_check,
        spot_check_id,
        database_url,
        **_Options(**options).kwargs(),
        job_id=run_job_id(spot_check_id),
        job_timeout=JOB_TIMEOUT,
    )


# --------------------------------------------------------------------------- dialing


def run_spot_check(
    spot_check_id: int,
    database_url: str | None = None,
    *,
    context: str = DEFAULT_CONTEXT,
    prompt: str = clicktocall.SPOT_CHECK_PROMPT,
    ring_timeout_seconds: float = DEFAULT_RING_TIMEOUT,
    pbx: str | None = None,
) -> dict[str, object]:
    """Dial spot check ``spot_check_id``: queue its Originate for the listener of the PBX,
    record ``action_id``/``originated_at`` and schedule its judgement. A check already
    dialed (a second run) is left alone."""
    queue = _queue()
    options = _Options(context, prompt, ring_timeout_seconds, pbx)
    action_id = uuid.uuid4().hex
    now = datetime.now(UTC)
    factory = sessions(resolve_database_url(database_url))
    with session_scope(factory) as session:
        check = session.get(SpotCheck, spot_check_id)
        if check is None:
            logger.warning("spot check %s is not stored (deleted?): nothing to dial", spot_check_id)
            return {"spot_check_id": spot_check_id, "missing": True}
        line = session.get(DutyLine, check.line_id)
        claimed = session.execute(
            update(SpotCheck)
            .where(SpotCheck.id == spot_check_id, SpotCheck.action_id.is_(None))
            .values(action_id=action_id, originated_at=now)
        )
        if not claimed.rowcount:  # type: ignore[attr-defined]
            return {"spot_check_id": spot_check_id, "already_dialed": True}
        if line is None or not line.active:
            check.result, check.detail = "failed", "never dialed: the duty line is not active"
            return {"spot_check_id": spot_check_id, "result": "failed"}
        number = line.number
        target = pbx or _pbx_of(session, number)
    # Committed first: a job that dies now leaves a claimed check that the judge calls
    # "never dialed" (no violation), never one that is dialed twice.
    clicktocall.request_spot_check(
        queue.connection,
        target,
        number,
        spot_check_id,
        context=context,
        prompt=prompt,
        timeout_seconds=ring_timeout_seconds,
        request_id=action_id,
        now=now,
    )
    queue.enqueue_in(
        timedelta(seconds=ring_timeout_seconds + JUDGE_DELAY_SECONDS),
        judge_spot_check,
        spot_check_id,
        database_url,
        1,
        **options.kwargs(),
        job_id=judge_job_id(spot_check_id, 1),
        job_timeout=JOB_TIMEOUT,
    )
    logger.info("spot check %s: line %s dialed on %s (%s)", spot_check_id, number, target,
                action_id)  # fmt: skip
    return {"spot_check_id": spot_check_id, "action_id": action_id, "pbx": target}


def _pbx_of(session: Session, number: str) -> str:
    """The PBX the line's calls come through (its latest stored call), else the first
    configured PBX."""
    found = session.scalar(
        select(Call.pbx).where(Call.line == number).order_by(Call.id.desc()).limit(1)
    )
    if found:
        return str(found)
    from callcenter.config import load_config

    return load_config().ami.pbx[0].name


# --------------------------------------------------------------------------- judging


def judge_spot_check(
    spot_check_id: int,
    database_url: str | None = None,
    attempt: int = JUDGE_ATTEMPTS,
    *,
    context: str = DEFAULT_CONTEXT,
    prompt: str = clicktocall.SPOT_CHECK_PROMPT,
    ring_timeout_seconds: float = DEFAULT_RING_TIMEOUT,
    pbx: str | None = None,
) -> dict[str, object]:
    """Judge spot check ``spot_check_id`` and store the result, its call and the violation.

    Safe to run twice: a judged check is left as it is, and the violation has a unique key.
    Attempt ``attempt`` of :data:`JUDGE_ATTEMPTS`: while the call is not stored yet, an
    earlier attempt schedules the next one instead of deciding.
    """
    queue = _queue()
    options = _Options(context, prompt, ring_timeout_seconds, pbx)
    with session_scope(sessions(resolve_database_url(database_url))) as session:
        check = session.get(SpotCheck, spot_check_id, with_for_update=True)
        if check is None:
            return {"spot_check_id": spot_check_id, "missing": True}
        if check.result is not None:
            return {"spot_check_id": spot_check_id, "result": check.result, "again": True}
        verdict, call_id = _judge(
            session, queue.connection, check, ring_timeout_seconds, attempt >= JUDGE_ATTEMPTS
        )
        if verdict.pending:
            result: dict[str, object] = {"spot_check_id": spot_check_id, "pending": attempt}
        else:
            _store(session, check, verdict, call_id)
            result = {
                "spot_check_id": spot_check_id,
                "result": verdict.result,
                "violation": verdict.violation is not None,
            }
    if verdict.pending:
        queue.enqueue_in(
            timedelta(seconds=JUDGE_DELAY_SECONDS),
            judge_spot_check,
            spot_check_id,
            database_url,
            attempt + 1,
            **options.kwargs(),
            job_id=judge_job_id(spot_check_id, attempt + 1),
            job_timeout=JOB_TIMEOUT,
        )
    return result


def _judge(
    session: Session, connection: Any, check: SpotCheck, ring_timeout: float, final: bool
) -> tuple[Verdict, int | None]:
    line = session.scalar(
        select(DutyLine)
        .where(DutyLine.id == check.line_id)
        .options(selectinload(DutyLine.unit), selectinload(DutyLine.desk_phones))
    )
    if line is None:  # pragma: no cover - the foreign key cascades
        raise RuntimeError(f"spot check {check.id}: line {check.line_id} vanished")
    policy = policy_of(line)
    recorded = clicktocall.result_of(connection, check.action_id) if check.action_id else None
    outcome = OriginateOutcome(
        str(recorded["result"]) if recorded else None,
        str(recorded.get("detail") or "") if recorded else "",
    )
    call_row: Call | None = None
    if check.originated_at is not None:
        call_row = _find_call(session, check, policy.number, policy.desk_phones, ring_timeout)
    at = check.originated_at or check.scheduled_at
    shift = shift_for(session, line.unit_id, at)
    verdict = judge(
        policy=policy,
        scheduled_at=check.scheduled_at,
        originated_at=check.originated_at,
        outcome=outcome,
        call=call_record(call_row) if call_row is not None else None,
        officer=shift.main_officer if shift else None,
        final=final,
        timezone=line.unit.timezone,
    )
    return verdict, call_row.id if call_row is not None else None


def _find_call(
    session: Session,
    check: SpotCheck,
    number: str,
    desk_phones: frozenset[str],
    ring_timeout: float,
) -> Call | None:
    """The stored originated call the check made (not one another check already took)."""
    originated_at = check.originated_at
    if originated_at is None:
        return None
    taken = select(SpotCheck.call_id).where(
        SpotCheck.call_id.is_not(None), SpotCheck.id != check.id
    )
    rows = session.scalars(
        select(Call)
        .where(
            Call.originated.is_(True),
            Call.started_at >= originated_at - timedelta(seconds=10),
            Call.started_at <= originated_at + timedelta(seconds=ring_timeout + 300),
            Call.id.not_in(taken),
        )
        .options(selectinload(Call.legs))
        .order_by(Call.started_at, Call.id)
        .limit(50)
    ).all()
    by_linkedid = {row.linkedid: row for row in rows}
    found = pick_call(
        (call_record(row) for row in rows),
        number,
        originated_at,
        ring_timeout_seconds=ring_timeout,
        desk_phones=desk_phones,
    )
    return by_linkedid.get(found.linkedid) if found is not None else None


def _store(session: Session, check: SpotCheck, verdict: Verdict, call_id: int | None) -> None:
    check.result = verdict.result
    check.detail = verdict.detail[:255]
    check.call_id = call_id
    violation = verdict.violation
    if violation is None:
        return
    line = session.get(DutyLine, check.line_id)
    at = violation.at or check.originated_at or check.scheduled_at
    shift = shift_for(session, line.unit_id, at) if line is not None else None
    key = f"spot_check_failed:spot_check:{check.id}"
    values = {
        "dedupe_key": key,
        "kind": violation.kind,
        "state": "flagged",
        "unit_id": line.unit_id if line is not None else None,
        "line_id": check.line_id,
        "line_number": violation.line,
        "endpoint": violation.endpoint,
        "at": at,
        "ended_at": None,
        "duration_seconds": None,
        "detail": violation.detail,
        "call_id": call_id,
        "shift_id": shift.id if shift else None,
        "officer": shift.main_officer if shift else None,
    }
    violation_id = insert_if_absent(session, ViolationRow, values, ["dedupe_key"])
    if violation_id is None:
        violation_id = session.scalar(select(ViolationRow.id).where(ViolationRow.dedupe_key == key))
    if call_id is not None and violation_id is not None:
        insert_if_absent(
            session,
            ViolationCall,
            {"violation_id": violation_id, "call_id": call_id},
            ["violation_id", "call_id"],
        )


def _queue() -> Any:
    """The queue of the running job, on its Redis connection."""
    from rq import Queue, get_current_job

    job = get_current_job()
    if job is None:
        raise RuntimeError("spot-check jobs run as RQ jobs (they queue on the job's Redis)")
    return Queue(SPOT_CHECK_QUEUE, connection=job.connection)
