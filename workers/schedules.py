"""Periodic work, with RQ's own scheduling only: :class:`rq.cron.CronScheduler`.

Registered here:

- :func:`callcenter.workers.jobs.sweep_outbox` every :data:`SWEEP_INTERVAL_SECONDS` on the
  ``default`` queue: queues again every stored call and device event whose evaluation never
  ran (the outbox), so a Redis outage loses nothing;
- :func:`callcenter.workers.deadlines.check_deadlines` every
  :data:`DEADLINE_INTERVAL_SECONDS`: incidents whose first report is overdue (``late_report``);
- :func:`callcenter.workers.spot_checks.plan_spot_checks` every
  :data:`SPOT_CHECK_PLAN_INTERVAL_SECONDS`: today's and tomorrow's spot checks, each then
  queued for its time with ``enqueue_at`` (``[spot_checks] per_line = 0`` leaves it out).

Retries of failed jobs (``Retry(interval=...)``) are RQ's scheduled jobs: the worker's own
scheduler (``work(with_scheduler=True)``) moves them back to their queue when due.

``callcenter worker`` runs the cron scheduler in a child process of its own
(:func:`run_cron`, via :func:`start_cron_process`), because RQ's ``CronScheduler.start``
installs signal handlers and so must own a process's main thread. Every worker that runs
it enqueues a sweep each minute; several sweeps are harmless (a sweep skips jobs that are
still pending, and evaluations are idempotent), and ``callcenter worker --no-cron`` leaves
it out on extra machines.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
from collections.abc import Mapping
from multiprocessing.process import BaseProcess
from typing import Any

__all__ = [
    "SWEEP_INTERVAL_SECONDS",
    "build_cron",
    "run_cron",
    "start_cron_process",
]

logger = logging.getLogger(__name__)

SWEEP_INTERVAL_SECONDS = 60
_SWEEP_TIMEOUT = 300
DEADLINE_INTERVAL_SECONDS = 60  # incidents whose first report is overdue: late_report
SPOT_CHECK_PLAN_INTERVAL_SECONDS = 3600  # plans today and tomorrow; idempotent
_PR_SET_PDEATHSIG = 1


def build_cron(
    connection: Any,
    database_url: str | None,
    *,
    name: str = "",
    spot_checks: Mapping[str, Any] | None = None,
) -> Any:
    """An ``rq.cron.CronScheduler`` on ``connection`` with the periodic jobs registered:
    the outbox sweep, the incident-report deadline check, and the spot-check plan
    (``spot_checks``: :func:`callcenter.workers.spot_checks.plan_options`; none with
    ``per_line`` 0)."""
    from rq.cron import CronScheduler

    from callcenter.workers.deadlines import check_deadlines
    from callcenter.workers.jobs import DEVICE_QUEUE, sweep_outbox
    from callcenter.workers.spot_checks import plan_spot_checks

    cron = CronScheduler(connection=connection, name=name)
    cron.register(
        sweep_outbox,
        queue_name=DEVICE_QUEUE,
        kwargs={"database_url": database_url},
        interval=SWEEP_INTERVAL_SECONDS,
        job_timeout=_SWEEP_TIMEOUT,
        # a sweep that finds the next one queued is pointless: let an unrun one expire
        ttl=SWEEP_INTERVAL_SECONDS * 2,
    )
    cron.register(
        check_deadlines,
        queue_name=DEVICE_QUEUE,
        kwargs={"database_url": database_url},
        interval=DEADLINE_INTERVAL_SECONDS,
        job_timeout=120,
        ttl=DEADLINE_INTERVAL_SECONDS * 2,
    )
    options = dict(spot_checks or {})
    if options.get("per_line", 1) > 0:
        cron.register(
            plan_spot_checks,
            queue_name=DEVICE_QUEUE,
            kwargs={"database_url": database_url, **options},
            interval=SPOT_CHECK_PLAN_INTERVAL_SECONDS,
            job_timeout=300,
            ttl=SPOT_CHECK_PLAN_INTERVAL_SECONDS * 2,
        )
    return cron


def run_cron(
    redis_url: str,
    database_url: str | None,
    log_level: int = logging.INFO,
    spot_checks: Mapping[str, Any] | None = None,
) -> None:
    """A process's main function: run the cron scheduler until SIGTERM/SIGINT or the parent
    process dies."""
    _die_with_parent()
    logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from callcenter.embedded_redis import connect

    connection = connect(redis_url)
    try:
        build_cron(connection, database_url, spot_checks=spot_checks).start()
    finally:
        connection.close()


def start_cron_process(
    redis_url: str,
    database_url: str | None,
    log_level: int = logging.INFO,
    spot_checks: Mapping[str, Any] | None = None,
) -> BaseProcess:
    """Start :func:`run_cron` in a fresh (spawned) child process and return it."""
    context = multiprocessing.get_context("spawn")
    process = context.Process(
        target=run_cron,
        args=(redis_url, database_url, log_level, dict(spot_checks or {})),
        name="callcenter-cron",
        daemon=True,
    )
    process.start()
    logger.info("RQ cron scheduler started (pid %s): outbox sweep every %d s",
                process.pid, SWEEP_INTERVAL_SECONDS)  # fmt: skip
    return process


def stop_cron_process(process: BaseProcess, timeout: float = 10.0) -> None:
    """Stop the cron child (SIGTERM: its scheduler registers its death), then reap it."""
    if process.is_alive() and process.pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGTERM)
    process.join(timeout)
    if process.is_alive():
        process.kill()
        process.join(timeout)


def _die_with_parent() -> None:
    """Linux: SIGTERM when the worker that started us dies, even by SIGKILL."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() == 1:  # the parent died before prctl: do not outlive it
        raise SystemExit(0)
