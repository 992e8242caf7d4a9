"""Where finished calls go: one database transaction per call, then its evaluation job.

Nothing is lost: a call is committed before its job is queued; when the database is down
the calls wait in memory and are retried with back-off; when Redis is down the stored calls
keep ``evaluated_at`` empty and the outbox sweep queues them later.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from callcenter.store.calls import save_call
from callcenter.store.db import session_scope
from callcenter.store.duty import DeviceEvent
from callcenter.store.models import Outage
from callcenter.tracking.records import Call

if TYPE_CHECKING:
    from callcenter.ami.devices import DeviceChange

logger = logging.getLogger(__name__)


class StoreSink:
    """The listener's sink: database first, then the RQ queue."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        queue: Any | None = None,  # an rq.Queue; None: store only
        *,
        database_url: str | None = None,
        retry_max: float = 30.0,
    ) -> None:
        self.sessions = sessions
        self.queue = queue
        self.database_url = database_url
        self.retry_max = retry_max
        self._open_outage: dict[str, int] = {}
        self._redis_down = False
        self.stored = 0
        self.enqueued = 0

    async def calls_finished(self, pbx: str, calls: list[Call]) -> None:
        ids = await self._until_stored(f"{len(calls)} call(s) of {pbx}", self._store, pbx, calls)
        if self.queue is not None:
            await asyncio.to_thread(self._enqueue, ids)

    async def _until_stored(
        self, what: str, store: Callable[..., list[int]], *args: object
    ) -> list[int]:
        """Run ``store`` in a thread until the database takes it (back-off; nothing lost)."""
        delay = 0.5
        while True:
            try:
                return await asyncio.to_thread(store, *args)
            except SQLAlchemyError as exc:
                logger.error("cannot store %s (%s); retrying in %.1f s", what, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry_max)

    def _store(self, pbx: str, calls: list[Call]) -> list[int]:
        ids = []
        for call in calls:
            with session_scope(self.sessions) as session:  # one transaction per call
                ids.append(save_call(session, call, pbx))
        self.stored += len(calls)
        return ids

    def _enqueue(self, ids: list[int]) -> None:
        from redis.exceptions import RedisError

        from callcenter.workers.jobs import enqueue_call_evaluation

        try:
            for call_id in ids:
                enqueue_call_evaluation(self.queue, call_id, self.database_url)
                self.enqueued += 1
            if self._redis_down:
                logger.info("Redis is back: evaluation jobs are queued again")
            self._redis_down = False
        except RedisError as exc:
            if not self._redis_down:
                logger.error(
                    "cannot queue evaluation jobs (%s): the calls are stored and the outbox "
                    "sweep will queue them", exc,
                )  # fmt: skip
            self._redis_down = True

    async def device_changes(self, pbx: str, changes: list[DeviceChange]) -> None:
        """Store desk-phone status and flag changes, then queue their evaluation."""
        what = f"{len(changes)} device event(s) of {pbx}"
        ids = await self._until_stored(what, self._store_devices, pbx, changes)
        if self.queue is not None and ids:
            await asyncio.to_thread(self._enqueue_devices, ids)

    def _store_devices(self, pbx: str, changes: list[DeviceChange]) -> list[int]:
        ids = []
        with session_scope(self.sessions) as session:
            for change in changes:
                values = {
                    "pbx": pbx, "endpoint": change.endpoint[:64], "kind": change.kind,
                    "state": change.state, "source": change.source[:64],
                    "contact": change.contact[:255], "at": change.at or datetime.now(UTC),
                }  # fmt: skip
                existing = session.scalar(select(DeviceEvent.id).filter_by(**values))
                if existing is not None:
                    ids.append(existing)
                    continue
                row = DeviceEvent(detail=change.detail[:255], **values)
                try:
                    with session.begin_nested():
                        session.add(row)
                except IntegrityError:  # stored concurrently: keep the other row
                    continue
                ids.append(row.id)
        return ids

    def _enqueue_devices(self, ids: list[int]) -> None:
        from redis.exceptions import RedisError

        from callcenter.workers.jobs import enqueue_device_evaluation

        try:
            enqueue_device_evaluation(self.queue, ids, self.database_url)
        except RedisError as exc:
            logger.error("cannot queue device evaluation (%s): the sweep will do it", exc)

    async def outage_started(self, pbx: str, at: datetime, reason: str) -> None:
        def write() -> int:
            with session_scope(self.sessions) as session:
                row = Outage(pbx=pbx, started_at=at, reason=reason[:200])
                session.add(row)
                session.flush()
                return row.id

        try:
            self._open_outage[pbx] = await asyncio.to_thread(write)
        except SQLAlchemyError as exc:
            logger.error("cannot record the outage of %s: %s", pbx, exc)

    async def outage_ended(self, pbx: str, at: datetime, lost_estimate: int | None) -> None:
        outage_id = self._open_outage.pop(pbx, None)
        if outage_id is None:
            return

        def write() -> None:
            with session_scope(self.sessions) as session:
                row = session.get(Outage, outage_id)
                if row is not None:
                    row.ended_at = at
                    row.calls_lost_estimate = lost_estimate

        try:
            await asyncio.to_thread(write)
        except SQLAlchemyError as exc:
            logger.error("cannot close the outage of %s: %s", pbx, exc)
        logger.warning(
            "PBX %s outage ended; calls that began and ended inside it: about %s",
            pbx, "unknown" if lost_estimate is None else lost_estimate,
        )  # fmt: skip
