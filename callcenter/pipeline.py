"""Where finished calls go: one database transaction per batch, then their evaluation jobs.

Nothing is lost and nothing blocks the writer:

- a call is committed before its job is queued; the calls that finished together are
  queued as one job per :data:`CHUNK` calls
  (:func:`callcenter.workers.jobs.enqueue_call_evaluations`);
- a *transient* database error (connection refused or lost, a lock wait timed out: see
  :func:`transient`) is retried with back-off while the calls wait in memory;
- any other error is the fault of one call (or device event): it is set aside — logged
  with its Linkedid and appended to ``<instance>/unsaved/rejected.jsonl`` — and the ones
  after it are stored;
- after :meth:`StoreSink.begin_shutdown` the retries end at a short deadline and what is
  still unstored goes to a spool file, ``<instance>/unsaved/spool-<time>-<pid>.jsonl``,
  which :meth:`StoreSink.recover` stores on the next start (storing a call twice keeps one
  row) and then removes;
- when Redis is down the stored calls keep ``evaluated_at`` empty and the outbox sweep
  queues them later.

Spool and rejected lines are the call's ``callcenter replay`` JSON form (with exact times)
plus ``pbx`` and what a reload needs (``caller_name``, ``originated``, ``times_estimated``,
``legs``); device events are ``{"type": "device", "pbx": ..., ...}``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import (
    DBAPIError,
    DisconnectionError,
    IntegrityError,
    InterfaceError,
    OperationalError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import Session, sessionmaker

from callcenter.store.calls import save_call
from callcenter.store.db import session_scope
from callcenter.store.duty import DeviceEvent
from callcenter.store.models import Outage
from callcenter.tracking.names import INT_MAX
from callcenter.tracking.records import Call, Leg

if TYPE_CHECKING:
    from callcenter.ami.devices import DeviceChange

__all__ = ["CHUNK", "REJECTED_FILE", "SPOOL_GLOB", "StoreSink", "brief", "transient"]

logger = logging.getLogger(__name__)

#: Calls and device events the database refused for good (a human looks at them).
REJECTED_FILE = "rejected.jsonl"
#: What a shutdown could not store; :meth:`StoreSink.recover` stores it on the next start.
SPOOL_GLOB = "spool-*.jsonl"

_TRANSIENT = (OperationalError, InterfaceError, DisconnectionError, PoolTimeoutError)
_POLL_SECONDS = 0.25  # how often a waiting writer looks whether shutdown began
_SHUTDOWN_RETRY_SECONDS = 0.5
_MIN_ATTEMPT_SECONDS = 1.0  # an attempt begun near the deadline still gets this long
#: Calls stored in one transaction before their evaluation is queued as one job: a burst of
#: finished calls (the writer takes all that ended while it stored the previous ones) is
#: stored and queued this many at a time, the first job queued after about CHUNK × 2 ms
#: rather than after the whole burst.
CHUNK = 10

T = TypeVar("T")
#: Stores one call or device event in the caller's transaction; its id (None: not stored).
_StoreOne = Callable[[Session, str, Any], "int | None"]


def transient(exc: BaseException) -> bool:
    """Whether a database error is about the connection or a lock (retry), not the data."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, _TRANSIENT)


class _Abandoned(Exception):
    """A storing attempt outlived the shutdown deadline."""


@dataclass
class _Delivery(Generic[T]):
    """Calls (or device changes) of one PBX on their way in; shared with the storing thread."""

    pbx: str
    items: list[T]
    #: (storing thread) what follows each commit, with the ids it stored: queue their jobs
    then: Callable[[list[int]], None] | None = None
    chunk: int = 0  # items stored per transaction (0: all of them)
    done: int = 0  # items[:done] are stored or set aside
    ids: list[int] = field(default_factory=list)
    abort: threading.Event = field(default_factory=threading.Event)

    @property
    def rest(self) -> list[T]:
        return self.items[self.done :]


class StoreSink:
    """The listener's sink: database first, then the RQ queue."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        queue: Any | None = None,  # an rq.Queue; None: store only
        *,
        database_url: str | None = None,
        retry_max: float = 30.0,
        unsaved_dir: Path | None = None,  # rejected and spooled calls; None: only logged
        shutdown_grace: float = 10.0,
    ) -> None:
        self.sessions = sessions
        self.queue = queue
        self.database_url = database_url
        self.retry_max = retry_max
        self.unsaved_dir = unsaved_dir
        self.shutdown_grace = shutdown_grace
        self._open_outage: dict[str, int] = {}
        self._ended_outage: dict[str, int] = {}  # the last one, for a late lost-call count
        self._redis_down = False
        self._db_down = False
        self._shutdown_at: float | None = None  # time.monotonic() deadline once stopping
        self._spool_path: Path | None = None
        self._lock = threading.Lock()  # counters and files, shared with storing threads
        self.stored = 0
        self.enqueued = 0
        self.rejected = 0
        self.spooled = 0

    # -- calls --------------------------------------------------------------------------

    async def calls_finished(self, pbx: str, calls: list[Call]) -> None:
        """Store the calls and queue their evaluation :data:`CHUNK` calls at a time (one
        transaction, one job): the first calls of a burst are judged while the rest are
        stored."""
        delivery = _Delivery(pbx, list(calls), self._calls_queue(), CHUNK)
        await self._deliver(delivery, self._store_call, f"{len(calls)} call(s) of {pbx}")

    def _calls_queue(self) -> Callable[[list[int]], None] | None:
        return None if self.queue is None else self._enqueue

    def _store_call(self, session: Session, pbx: str, call: Call) -> int:
        return save_call(session, call, pbx)

    def _enqueue(self, ids: list[int]) -> None:
        from redis.exceptions import RedisError

        from callcenter.workers.jobs import enqueue_call_evaluations

        try:
            enqueue_call_evaluations(self.queue, ids, self.database_url)
            self.enqueued += len(ids)
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

    # -- device changes -----------------------------------------------------------------

    async def device_changes(self, pbx: str, changes: list[DeviceChange]) -> None:
        """Store desk-phone status and flag changes, then queue their evaluation."""
        delivery = _Delivery(pbx, list(changes), self._devices_queue())
        what = f"{len(changes)} device event(s) of {pbx}"
        await self._deliver(delivery, self._store_device, what)

    def _devices_queue(self) -> Callable[[list[int]], None] | None:
        return None if self.queue is None else self._enqueue_devices

    def _store_device(self, session: Session, pbx: str, change: DeviceChange) -> int | None:
        values = {
            "pbx": pbx, "endpoint": change.endpoint[:64], "kind": change.kind,
            "state": change.state, "source": change.source[:64],
            "contact": change.contact[:255], "at": change.at or datetime.now(UTC),
        }  # fmt: skip
        existing = session.scalar(select(DeviceEvent.id).filter_by(**values))
        if existing is not None:
            return existing
        row = DeviceEvent(detail=change.detail[:255], **values)
        try:
            with session.begin_nested():
                session.add(row)
        except IntegrityError:  # stored concurrently: keep the other row
            return None
        return row.id

    def _enqueue_devices(self, ids: list[int]) -> None:
        from redis.exceptions import RedisError

        from callcenter.workers.jobs import enqueue_device_evaluation

        try:
            enqueue_device_evaluation(self.queue, ids, self.database_url)
        except RedisError as exc:
            logger.error("cannot queue device evaluation (%s): the sweep will do it", exc)

    # -- storing with retries, setting aside, spooling ----------------------------------

    async def _deliver(
        self,
        delivery: _Delivery[Any],
        store_one: _StoreOne,
        what: str,
        *,
        spool: bool = True,
    ) -> bool:
        """Store every item of ``delivery``; True unless given up at shutdown.

        Transient errors are retried with back-off (until the shutdown deadline once
        :meth:`begin_shutdown` was called); what is left then is spooled (``spool``) or
        left where it came from (a recovery). Other errors set one item aside each.
        """
        delay = 0.5
        while delivery.done < len(delivery.items):
            if self._past_deadline() and self._db_down:
                break  # the database was down a moment ago: do not wait for it again
            try:
                await self._attempt(self._store_run, delivery, store_one)
            except _Abandoned:
                logger.error("storing %s took past the shutdown deadline: given up", what)
                break
            except Exception as exc:
                if not transient(exc):
                    raise  # _store_run sets such items aside: this is a bug
                self._db_down = True
                if self._shutdown_at is not None:
                    if self._past_deadline():
                        break
                    logger.error("cannot store %s (%s) while stopping; retrying", what, brief(exc))
                    await self._sleep(_SHUTDOWN_RETRY_SECONDS)
                    continue
                logger.error("cannot store %s (%s); retrying in %.1f s", what, brief(exc), delay)
                await self._sleep(delay)
                delay = min(delay * 2, self.retry_max)
            else:
                if self._db_down:
                    logger.info("the database is back: stored %s", what)
                self._db_down = False
        rest = delivery.rest
        if not rest:
            return True
        delivery.abort.set()  # a storing thread still running stops after its current item
        if spool:
            self._spool(delivery.pbx, rest)
        return False

    async def _attempt(self, store: Callable[..., None], *args: Any) -> None:
        """Run ``store`` in a thread; once shutdown began, wait no longer than the deadline."""
        work = asyncio.ensure_future(asyncio.to_thread(store, *args))
        work.add_done_callback(_consume)
        started = time.monotonic()
        while not work.done():
            if self._shutdown_at is not None:
                limit = max(self._shutdown_at, started + _MIN_ATTEMPT_SECONDS)
                if time.monotonic() >= limit:
                    raise _Abandoned
            await asyncio.wait({work}, timeout=_POLL_SECONDS)
        work.result()

    def _store_run(self, delivery: _Delivery[Any], store_one: _StoreOne) -> None:
        """(thread) Store the items a chunk at a time, each chunk in one transaction, and
        queue the jobs of each chunk as soon as it is committed; set aside each item the
        database refuses.

        One transaction (one write lock, one commit) for up to ``chunk`` calls that finished
        together, not one per call: on SQLite the listener and the workers take turns at a
        single write lock, and every turn costs more than the statements it guards. Queueing
        from this thread, not from the event loop, keeps the loop (busy reading the PBX) out
        of the way between one chunk and the next. Should the database refuse a chunk (one
        bad item, or the commit), each of its items gets a transaction of its own, and the
        ones it refuses are set aside.
        """
        while delivery.done < len(delivery.items) and not delivery.abort.is_set():
            size = delivery.chunk or len(delivery.items)
            until = min(delivery.done + size, len(delivery.items))
            try:
                self._store_some(delivery, store_one, until)
                continue
            except _Abandoned:
                return
            except Exception as exc:
                if transient(exc):
                    raise
                logger.warning(
                    "storing %d item(s) of %s together failed (%s); storing them one by one",
                    until - delivery.done, delivery.pbx, brief(exc),
                )  # fmt: skip
            while delivery.done < until and not delivery.abort.is_set():
                item = delivery.items[delivery.done]
                try:
                    self._store_some(delivery, store_one, delivery.done + 1)
                except _Abandoned:
                    return
                except Exception as exc:
                    if transient(exc):
                        raise
                    self._refuse(delivery.pbx, item, exc)
                    delivery.done += 1

    def _store_some(self, delivery: _Delivery[Any], store_one: _StoreOne, until: int) -> None:
        """(thread) Store ``items[done:until]`` in one transaction, then queue their jobs.

        Nothing counts as stored before the commit: an abandoned delivery rolls back (its
        spool then holds exactly what was not stored), and an item that fails takes the
        transaction down with it (the caller then stores the items one by one)."""
        ids: list[int] = []
        with session_scope(self.sessions) as session:
            for item in delivery.items[delivery.done : until]:
                if delivery.abort.is_set():
                    raise _Abandoned
                item_id = store_one(session, delivery.pbx, item)
                if item_id is not None:
                    ids.append(item_id)
        stored = delivery.items[delivery.done : until]
        delivery.ids.extend(ids)
        delivery.done = until
        with self._lock:
            self.stored += sum(isinstance(item, Call) for item in stored)
        if ids and delivery.then is not None:
            delivery.then(ids)

    def _refuse(self, pbx: str, item: Any, exc: Exception) -> None:
        logger.error(
            "cannot store %s of %s; set aside (see %s)",
            _name(item), pbx, self._rejected_path() or "the log", exc_info=exc,
        )  # fmt: skip
        self._set_aside(_line(pbx, item), exc)

    def _set_aside(self, line: dict[str, object], exc: BaseException | str) -> None:
        error = exc if isinstance(exc, str) else f"{type(exc).__name__}: {brief(exc)}"
        line = {**line, "error": error, "set_aside_at": datetime.now(UTC).isoformat()}
        with self._lock:
            self.rejected += 1
        self._write_lines(self._rejected_path(), [line], "set aside")

    def _spool(self, pbx: str, items: list[Any]) -> None:
        if self._spool_path is None and self.unsaved_dir is not None:
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
            self._spool_path = self.unsaved_dir / f"spool-{stamp}-{os.getpid()}.jsonl"
        calls = sum(1 for item in items if isinstance(item, Call))
        with self._lock:
            self.spooled += len(items)
        if self._write_lines(self._spool_path, [_line(pbx, i) for i in items], "spooled"):
            logger.warning(
                "stopping with the database unavailable: %d call(s) and %d device event(s) "
                "of %s spooled to %s; they are stored on the next start",
                calls, len(items) - calls, pbx, self._spool_path,
            )  # fmt: skip

    def _rejected_path(self) -> Path | None:
        return None if self.unsaved_dir is None else self.unsaved_dir / REJECTED_FILE

    def _write_lines(self, path: Path | None, lines: list[dict[str, object]], what: str) -> bool:
        """Append JSON lines to ``path`` (synced to disk); if that fails, into the log."""
        text = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
        if path is not None:
            try:
                with self._lock:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    with path.open("a", encoding="utf-8") as out:
                        out.write(text)
                        out.flush()
                        os.fsync(out.fileno())
                return True
            except OSError as exc:
                logger.error("cannot write %s: %s", path, exc)
        for line in text.splitlines():  # the log is the last place that keeps them
            logger.error("not stored (%s): %s", what, line)
        return False

    # -- shutdown and the next start ----------------------------------------------------

    def begin_shutdown(self) -> None:
        """From now on give the database ``shutdown_grace`` seconds, then spool the rest."""
        if self._shutdown_at is None:
            self._shutdown_at = time.monotonic() + self.shutdown_grace

    def _past_deadline(self) -> bool:
        return self._shutdown_at is not None and time.monotonic() >= self._shutdown_at

    async def _sleep(self, seconds: float) -> None:
        """Back-off that ends early when shutdown begins (and never past its deadline)."""
        until = time.monotonic() + seconds
        stopping = self._shutdown_at is not None
        while time.monotonic() < until:
            if self._shutdown_at is not None and (not stopping or self._past_deadline()):
                return
            await asyncio.sleep(min(_POLL_SECONDS, max(until - time.monotonic(), 0)))

    async def recover(self) -> None:
        """Store what earlier runs spooled (``unsaved/spool-*.jsonl``), queue its evaluation,
        and remove each file once all of it is committed; call once on start."""
        if self.unsaved_dir is None:
            return
        for path in sorted(self.unsaved_dir.glob(SPOOL_GLOB)):
            if path == self._spool_path:
                continue
            try:
                text = await asyncio.to_thread(path.read_text, encoding="utf-8")
            except OSError as exc:
                logger.error("cannot read the spool %s: %s", path, exc)
                continue
            calls, changes = self._read_spool(path, text)
            total = sum(map(len, calls.values())) + sum(map(len, changes.values()))
            logger.info("storing %d item(s) spooled by an earlier run in %s", total, path)
            complete = True
            for pbx, pbx_calls in calls.items():
                delivery = _Delivery(pbx, pbx_calls, self._calls_queue(), CHUNK)
                what = f"{len(pbx_calls)} spooled call(s) of {pbx}"
                complete &= await self._deliver(delivery, self._store_call, what, spool=False)
            for pbx, pbx_changes in changes.items():
                device_delivery: _Delivery[DeviceChange] = _Delivery(
                    pbx, pbx_changes, self._devices_queue()
                )
                what = f"{len(pbx_changes)} spooled device event(s) of {pbx}"
                complete &= await self._deliver(
                    device_delivery, self._store_device, what, spool=False
                )
            if not complete:
                logger.warning("the spool %s is kept for the next start", path)
                continue
            path.unlink(missing_ok=True)
            logger.info("stored the %d spooled item(s) of %s and removed it", total, path)

    def _read_spool(
        self, path: Path, text: str
    ) -> tuple[dict[str, list[Call]], dict[str, list[DeviceChange]]]:
        calls: dict[str, list[Call]] = {}
        changes: dict[str, list[DeviceChange]] = {}
        for number, raw in enumerate(text.splitlines(), 1):
            if not raw.strip():
                continue
            try:
                data = json.loads(raw)
                pbx = str(data["pbx"])
                if data.get("type") == "call":
                    calls.setdefault(pbx, []).append(_call_from(data))
                elif data.get("type") == "device":
                    changes.setdefault(pbx, []).append(_device_from(data))
                else:
                    raise ValueError(f"unknown type {data.get('type')!r}")
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                logger.error("%s line %d is unreadable (%s): set aside", path, number, exc)
                line: dict[str, object] = {
                    "type": "unreadable", "source": f"{path}:{number}", "line": raw,
                }  # fmt: skip
                self._set_aside(line, f"{type(exc).__name__}: {exc}")
        return calls, changes

    # -- outages ------------------------------------------------------------------------

    async def outage_started(self, pbx: str, at: datetime, reason: str) -> None:
        def write() -> int:
            with session_scope(self.sessions) as session:
                row = Outage(pbx=pbx, started_at=at, reason=reason[:200])
                session.add(row)
                session.flush()
                return row.id

        try:
            self._open_outage[pbx] = await asyncio.to_thread(write)
        except Exception as exc:
            logger.error("cannot record the outage of %s: %s", pbx, brief(exc))

    async def outage_ended(self, pbx: str, at: datetime, lost_estimate: int | None) -> None:
        if lost_estimate is not None and not 0 <= lost_estimate <= INT_MAX:
            logger.warning("PBX %s: implausible lost-call estimate %s ignored", pbx, lost_estimate)
            lost_estimate = None
        outage_id = self._open_outage.pop(pbx, None)
        if outage_id is None:
            return
        self._ended_outage[pbx] = outage_id

        def write() -> None:
            with session_scope(self.sessions) as session:
                row = session.get(Outage, outage_id)
                if row is not None:
                    row.ended_at = at
                    if lost_estimate is not None:  # None: unknown, or counted later
                        row.calls_lost_estimate = lost_estimate

        try:
            await asyncio.to_thread(write)
        except Exception as exc:
            logger.error("cannot close the outage of %s: %s", pbx, brief(exc))
        logger.warning(
            "PBX %s outage ended; calls that began and ended inside it: about %s",
            pbx, "unknown" if lost_estimate is None else lost_estimate,
        )  # fmt: skip

    async def outage_counted(self, pbx: str, lost_estimate: int) -> None:
        """The lost-call estimate of ``pbx``'s last ended outage, learnt after it ended."""
        outage_id = self._ended_outage.pop(pbx, None)
        if outage_id is None or not 0 <= lost_estimate <= INT_MAX:
            return

        def write() -> None:
            with session_scope(self.sessions) as session:
                row = session.get(Outage, outage_id)
                if row is not None and row.calls_lost_estimate is None:
                    row.calls_lost_estimate = lost_estimate

        try:
            await asyncio.to_thread(write)
        except Exception as exc:
            logger.error("cannot count the outage of %s: %s", pbx, brief(exc))
            return
        logger.warning(
            "PBX %s: calls that began and ended inside the last outage: about %d",
            pbx, lost_estimate,
        )  # fmt: skip


# -- JSON lines of the spool and the rejected file ----------------------------------------


def _consume(future: asyncio.Future[Any]) -> None:
    """Retrieve an abandoned attempt's outcome, so asyncio does not warn about it."""
    if not future.cancelled():
        future.exception()


def brief(exc: BaseException) -> str:
    """An error in one line: its message's first line, else its type's name."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _name(item: Any) -> str:
    if isinstance(item, Call):
        return f"call {item.linkedid}"
    return f"device event {item.endpoint} {item.kind} {item.state}"


def _exact(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _when(value: object) -> datetime | None:
    if value is None:
        return None
    parsed = datetime.fromisoformat(str(value))
    if parsed.tzinfo is None:
        raise ValueError(f"time without a zone: {value}")
    return parsed


def _line(pbx: str, item: Any) -> dict[str, object]:
    if isinstance(item, Call):
        return _call_line(pbx, item)
    return {
        "type": "device", "pbx": pbx, "endpoint": item.endpoint, "kind": item.kind,
        "state": item.state, "at": _exact(item.at), "detail": item.detail,
        "source": item.source, "contact": item.contact,
    }  # fmt: skip


def _call_line(pbx: str, call: Call) -> dict[str, object]:
    """The call's replay JSON form, with exact times and what a reload needs besides."""
    line = call.to_json()
    line.update(
        pbx=pbx,
        started_at=_exact(call.started_at),
        answered_at=_exact(call.answered_at),
        ended_at=_exact(call.ended_at),
        caller_name=call.caller_name,
        originated=call.originated,
        times_estimated=call.times_estimated,
        legs=[
            {
                "uniqueid": leg.uniqueid,
                "channel": leg.channel,
                "endpoint": leg.endpoint,
                "role": leg.role,
                "created_at": _exact(leg.created_at),
                "ringing_at": _exact(leg.ringing_at),
                "answered_at": _exact(leg.answered_at),
                "ended_at": _exact(leg.ended_at),
                "hangup_cause": leg.hangup_cause,
                "dial_status": leg.dial_status,
            }
            for leg in call.legs
        ],
    )
    return line


def _call_from(data: Mapping[str, Any]) -> Call:
    legs = tuple(
        Leg(
            uniqueid=str(leg["uniqueid"]),
            channel=str(leg["channel"]),
            endpoint=str(leg["endpoint"]),
            role=leg["role"],
            created_at=_when(leg.get("created_at")),
            ringing_at=_when(leg.get("ringing_at")),
            answered_at=_when(leg.get("answered_at")),
            ended_at=_when(leg.get("ended_at")),
            hangup_cause=leg.get("hangup_cause"),
            dial_status=leg.get("dial_status"),
        )
        for leg in data.get("legs") or ()
    )
    return Call(
        linkedid=str(data["linkedid"]), caller=data.get("caller"),
        caller_name=data.get("caller_name"), dialed=data.get("dialed"), line=data.get("line"),
        direction=data["direction"], started_at=_when(data.get("started_at")),
        answered_at=_when(data.get("answered_at")), ended_at=_when(data.get("ended_at")),
        ring_seconds=data.get("ring_seconds"), talk_seconds=data.get("talk_seconds"),
        outcome=data["outcome"], answered_by=data.get("answered_by"),
        forwarded_to=data.get("forwarded_to"), transferred_to=data.get("transferred_to"),
        hangup_cause=data.get("hangup_cause"), closed_by=data["closed_by"],
        originated=bool(data.get("originated", False)),
        times_estimated=bool(data.get("times_estimated", False)), legs=legs,
    )  # fmt: skip


def _device_from(data: Mapping[str, Any]) -> DeviceChange:
    from callcenter.ami.devices import DeviceChange

    return DeviceChange(
        endpoint=str(data["endpoint"]), kind=data["kind"], state=data["state"],
        at=_when(data.get("at")), detail=str(data.get("detail") or ""),
        source=str(data.get("source") or ""), contact=str(data.get("contact") or ""),
    )  # fmt: skip
