"""Wiring of the live pipeline: one PbxListener per configured PBX, their sink and state.

The one place that puts the collaborators together (config → database, Redis, tracker,
listener); the command line and the demo call :func:`run_pipeline`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from callcenter.ami.listener import PbxListener
from callcenter.archive import RawArchive
from callcenter.config import Config
from callcenter.pipeline import StoreSink, brief
from callcenter.store.db import make_engine, make_session_factory, reading, session_scope
from callcenter.store.policy import load_tracking_directory
from callcenter.store.seed import seed_from_config
from callcenter.tracking.directory import Directory
from callcenter.tracking.tracker import CallTracker

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlalchemy.orm import sessionmaker

logger = logging.getLogger(__name__)

#: Python's GIL switch interval while the pipeline runs (its default: 5 ms). The event loop
#: (reading and tracking the PBX's events) and the thread that stores calls share the GIL.
#: The storing thread lets it go at every database call and at every try for SQLite's write
#: lock, and with the loop busy it waits up to the interval to get it back: at 5 ms a busy
#: listener stored calls slower than 100 a second, most of the time waiting for the GIL
#: (``bench/bench_latency.py``).
GIL_SWITCH_SECONDS = 0.001
#: How often the listeners re-read the duty lines and desk phones from the database: a desk
#: phone added in the console is known to the tracker (not "forwarded" when it answers) and
#: watched (status, AstDB flags) within this time.
DIRECTORY_REFRESH_SECONDS = 30.0


class SetupError(Exception):
    """A part of the pipeline cannot start; the message says which and why."""


def prepare_database(url: str) -> None:
    """Embedded SQLite is migrated on start; any other database must be migrated already."""
    from callcenter.store.migrate import current_revision, head_revision, upgrade

    if url.startswith("sqlite"):
        upgrade(url)
        return
    try:
        current = current_revision(url)
    except Exception as exc:  # any driver error: say which database and why, in one line
        raise SetupError(f"cannot open the database {_redact(url)}: {exc}") from exc
    if current != head_revision():
        raise SetupError(
            f"the database {_redact(url)} is at revision {current or 'none'}, not "
            f"{head_revision()}: run `callcenter db upgrade` first"
        )


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@dataclass
class Pipeline:
    listeners: list[PbxListener]
    sink: StoreSink
    engine: Engine
    directory_refresh: float = DIRECTORY_REFRESH_SECONDS

    def close(self) -> None:
        self.engine.dispose()


def build_pipeline(config: Config, redis_url: str | None) -> Pipeline:
    """Everything the listeners need; ``redis_url`` None stores calls without queueing."""
    secrets = {pbx.name: _secret(config, pbx.name, pbx.secret) for pbx in config.ami.pbx}
    prepare_database(config.database.url)
    engine = make_engine(config.database.url)
    queue = None
    live_for: Any = None
    originate_client: Any = None
    if redis_url is not None:
        from rq import Queue

        from callcenter.embedded_redis import connect
        from callcenter.live import LiveState
        from callcenter.workers.jobs import EVALUATE_QUEUE

        queue = Queue(EVALUATE_QUEUE, connection=connect(redis_url))
        # live state must never hold the listener up: short timeouts, one retry
        live_client = connect(redis_url, socket_timeout=2.0, retries=1)
        live_for = lambda name: LiveState(live_client, pbx=name)  # noqa: E731
        originate_client = connect(redis_url, socket_timeout=30.0)
    sessions = make_session_factory(engine)
    sink = StoreSink(
        sessions,
        queue,
        database_url=config.database.url,
        unsaved_dir=config.instance_path / "unsaved",
    )
    directory = _seeded_directory(sessions, config)
    listeners = []
    for pbx in config.ami.pbx:
        listeners.append(
            PbxListener(
                pbx.name,
                host=pbx.host,
                port=pbx.port,
                username=pbx.username,
                secret=secrets[pbx.name],
                tracker=CallTracker(directory, idle_timeout=config.tracker.idle_timeout_seconds),
                sink=sink,
                live=live_for(pbx.name) if live_for else None,
                archive=RawArchive(config.instance_path / "archive", pbx.name),
                reconnect_max=pbx.reconnect_max_seconds,
                ping_interval=pbx.ping_interval_seconds,
                ping_timeout=pbx.ping_timeout_seconds,
                login_timeout=pbx.login_timeout_seconds,
                desk_phones=sorted({p for line in directory.lines for p in line.desk_phones}),
                originates=originate_client,
                originate_context=pbx.originate_context,
            )
        )
    return Pipeline(listeners, sink, engine)


def _secret(config: Config, pbx: str, own: str | None) -> str:
    secret = own or config.ami.secret
    if not secret:
        raise SetupError(
            f"no AMI secret for PBX {pbx}: set CALLCENTER_AMI__SECRET (or "
            f"ami.pbx secret in a config file outside git)"
        )
    return secret


def _seeded_directory(sessions: sessionmaker[Session], config: Config) -> Directory:
    """Add the config's duty lines the database lacks (as `callcenter worker` does: the
    config seeds, the database wins), then read the lines and desk phones as stored."""
    try:
        with session_scope(sessions) as session:
            seed_from_config(session, config)
            return load_tracking_directory(session)
    except SQLAlchemyError as exc:
        raise SetupError(
            f"cannot read the duty lines from {_redact(config.database.url)}: {brief(exc)}"
        ) from exc


async def run_pipeline(pipeline: Pipeline, stop: asyncio.Event) -> None:
    """Run every listener until ``stop`` is set; they shut down cleanly together.

    First the calls an earlier run spooled at shutdown are stored; once ``stop`` is set the
    sink gets a short deadline for the database, then spools what it could not store.
    """
    sink = pipeline.sink
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(GIL_SWITCH_SECONDS)

    async def shutdown_when_stopped() -> None:
        await stop.wait()
        sink.begin_shutdown()

    watcher = asyncio.create_task(shutdown_when_stopped())
    refresher = asyncio.create_task(refresh_directory(pipeline, stop))
    recovery = asyncio.create_task(sink.recover())
    try:
        await asyncio.gather(*(listener.run(stop) for listener in pipeline.listeners))
    finally:
        sink.begin_shutdown()
        watcher.cancel()
        refresher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await refresher
        try:
            await recovery  # ends within the shutdown deadline
        except Exception:
            logger.exception("storing the spooled calls of an earlier run failed")
        pipeline.close()
        sys.setswitchinterval(switch_interval)


def load_directory(engine: Engine) -> Directory:
    """The duty lines and desk phones as stored (what the listeners' trackers know); read
    without taking SQLite's write lock from the calls being stored."""
    with Session(reading(engine)) as session:
        return load_tracking_directory(session)


async def refresh_directory(pipeline: Pipeline, stop: asyncio.Event) -> None:
    """Every ``pipeline.directory_refresh`` seconds hand the listeners the lines and desk
    phones as stored now; while the database cannot be read they keep the last ones."""
    failing = False
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), pipeline.directory_refresh)
            return
        except TimeoutError:
            pass
        try:
            directory = await asyncio.to_thread(load_directory, pipeline.engine)
            for listener in pipeline.listeners:
                listener.set_directory(directory)
        except Exception as exc:
            if not failing:
                logger.error(
                    "cannot read the duty lines and desk phones (%s); the listeners keep the "
                    "last ones read", brief(exc),
                )  # fmt: skip
            failing = True
            continue
        if failing:
            logger.info("the duty lines and desk phones can be read again")
        failing = False
