"""Periodic work, with RQ's own scheduling only: :class:`rq.cron.CronScheduler`.

Registered here:

- :func:`callcenter.workers.jobs.sweep_outbox` every :data:`SWEEP_INTERVAL_SECONDS` on the
  ``default`` queue: queues again every stored call and device event whose evaluation never
  ran (the outbox), so a Redis outage loses nothing.

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
_PR_SET_PDEATHSIG = 1


def build_cron(connection: Any, database_url: str | None, *, name: str = "") -> Any:
    """An ``rq.cron.CronScheduler`` on ``connection`` with the periodic jobs registered."""
    from callcenter.workers.jobs import DEVICE_QUEUE, sweep_outbox
    from rq.cron import CronScheduler

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
    return cron


def run_cron(redis_url: str, database_url: str | None, log_level: int = logging.INFO) -> None:
    """A process's main function: run the cron scheduler until SIGTERM/SIGINT or the parent
    process dies."""
    _die_with_parent()
    logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from callcenter.embedded_redis import connect

    connection = connect(redis_url)
    try:
        build_cron(connection, database_url).start()
    finally:
        connection.close()


def start_cron_process(
    redis_url: str, database_url: str | None, log_level: int = logging.INFO
) -> BaseProcess:
    """Start :func:`run_cron` in a fresh (spawned) child process and return it."""
    context = multiprocessing.get_context("spawn")
    process = context.Process(
        target=run_cron,
        args=(redis_url, database_url, log_level),
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
