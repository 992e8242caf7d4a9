"""``callcenter worker``: RQ workers that judge calls and device events, with the scheduler."""

from __future__ import annotations

import logging
from pathlib import Path

import click

logger = logging.getLogger(__name__)


@click.command("worker")
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=None)
@click.option("--burst", is_flag=True, help="Run the queued jobs, then exit.")
@click.option(
    "--queues",
    default="calls,default",
    show_default=True,
    help="Comma-separated queues, most urgent first.",
)
@click.option(
    "--processes",
    "-n",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Worker processes on this machine (RQ's WorkerPool of SimpleWorkers).",
)
@click.option(
    "--cron/--no-cron",
    default=True,
    show_default=True,
    help="Also run RQ's cron scheduler here (outbox sweep, report deadlines, spot-check plan).",
)
@click.option("--name", default=None, help="Worker name (one process only).")
def worker(
    config_path: Path | None,
    burst: bool,
    queues: str,
    processes: int,
    cron: bool,
    name: str | None,
) -> None:
    """Judge stored calls and device events (RQ workers with the scheduler).

    Uses the configured Redis (``redis.url``) or the embedded one, started here when no
    other process of this instance runs it. Seeds the duty lines of the config into the
    database first (only the missing ones: the database wins). Run as many as needed, on
    as many machines: they share the queues and never store a row twice.
    """
    from callcenter.config import ConfigError, load_config
    from callcenter.embedded_redis import EmbeddedRedisError, redis_for
    from callcenter.listen import SetupError, prepare_database
    from callcenter.store.db import make_engine, make_session_factory, session_scope
    from callcenter.store.seed import seed_from_config
    from callcenter.workers.schedules import start_cron_process, stop_cron_process
    from callcenter.workers.spot_checks import plan_options
    from callcenter.workers.worker import run_worker

    names = [q.strip() for q in queues.split(",") if q.strip()]
    if not names:
        raise click.BadParameter("name at least one queue", param_hint="--queues")
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        raise click.ClickException(f"bad config: {exc}") from exc
    try:
        prepare_database(config.database.url)
        engine = make_engine(config.database.url)
        try:  # before any fork: the worker processes open their own connections
            with session_scope(make_session_factory(engine)) as session:
                report = seed_from_config(session, config)
        finally:
            engine.dispose()
        logger.info("duty lines: %s", report)
        with redis_for(config) as (_client, url):
            cron_process = None
            if cron and not burst:
                level = logging.getLogger().getEffectiveLevel()
                cron_process = start_cron_process(
                    url, config.database.url, level, plan_options(config.spot_checks)
                )
            try:
                run_worker(
                    url,
                    queues=names,
                    burst=burst,
                    processes=processes,
                    name=name,
                    log_level=logging.getLevelName(logging.getLogger().getEffectiveLevel()),
                )
            finally:
                if cron_process is not None:
                    stop_cron_process(cron_process)
    except (SetupError, EmbeddedRedisError) as exc:
        raise click.ClickException(str(exc)) from exc
