"""The live AMI listener: panoramisk connection, our fast protocol, reconnect and re-sync.

One ``PbxListener`` per PBX. It connects with panoramisk's ``Manager`` (handed our
``FastAmiProtocol``, which decodes UTF-8 per complete message, so a Chinese caller name split
across TCP reads arrives intact, and parses faster than the stock protocol), logs in, feeds
every event to the pure ``CallTracker`` and hands finished calls to a ``CallSink`` (store,
then enqueue). On a drop it reconnects with back-off, then re-syncs the channels still up
(``CoreShowChannels``) and records the outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from panoramisk import Manager
from panoramisk.actions import Action
from panoramisk.ami_protocol import AMIProtocol
from panoramisk.message import Message

from callcenter.ami.devices import (
    ASTDB_FAMILIES,
    DeviceChange,
    astdb_poll_result,
    desk_phone_resolver,
    device_change,
)
from callcenter.ami.protocol import AmiParser, encode_action
from callcenter.tracking.directory import Directory
from callcenter.tracking.names import event_time, resource_of
from callcenter.tracking.records import Call, RingingCall
from callcenter.tracking.tracker import CallTracker

logger = logging.getLogger(__name__)

_SEQ = re.compile(r"(\d+)$")


class CallSink(Protocol):
    """Where the listener sends what it learns (the database and the job queue)."""

    async def calls_finished(self, pbx: str, calls: list[Call]) -> None: ...

    async def device_changes(self, pbx: str, changes: list[DeviceChange]) -> None: ...

    async def outage_started(self, pbx: str, at: datetime, reason: str) -> None: ...

    async def outage_ended(self, pbx: str, at: datetime, lost_estimate: int | None) -> None: ...

    async def outage_counted(self, pbx: str, lost_estimate: int) -> None:
        """The lost-call estimate of the last ended outage, known only later (see
        :meth:`PbxListener._count_late`)."""


class LiveSink(Protocol):
    def clear(self) -> object: ...

    def set_ringing(self, calls: list[RingingCall], now: datetime) -> object: ...

    def call_finished(self, call: Call) -> object: ...

    def set_listener_status(self, connected: bool, detail: str) -> object: ...


class EventArchive(Protocol):
    def write(self, event: Mapping[str, object], received: float) -> None: ...

    def close(self) -> None: ...


class FastAmiProtocol(AMIProtocol):
    """panoramisk protocol with our parser: events go straight to the listener as dicts."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.parser = AmiParser(on_warning=lambda text: self.log.warning("AMI stream: %s", text))
        self.last_received = time.monotonic()  # when bytes last came: the keepalive's clue

    def data_received(self, data: bytes) -> None:
        self.last_received = time.monotonic()
        for message in self.parser.feed(data):
            if "_banner" in message:
                self.version = message["_banner"].partition("/")[2]
                continue
            if "Event" in message:
                self.factory.raw_event(message)
                if message.get("ActionID") not in self.responses:
                    continue
            self.handle_message(Message(message))

    def send(self, data: Mapping[str, Any], as_list: bool | None = False) -> asyncio.Future[Any]:
        action = data if isinstance(data, Action) else Action(dict(data), as_list=as_list)
        action.as_list = as_list
        self.responses[action.id] = action
        payload = {k: str(v) for k, v in action.items() if not isinstance(v, list | tuple)}
        try:
            self.transport.write(encode_action(payload))
        except Exception:  # pragma: no cover - the transport is gone; reconnect handles it
            self.log.exception("failed to send AMI action %s", action.get("Action"))
        future: asyncio.Future[Any] = action.future
        return future


class AmiConnection(Manager):
    """panoramisk's Manager with back-off reconnects, clear login errors and raw events.

    It also notices a PBX that stops answering while the TCP connection stays open (a pulled
    cable, a hung Asterisk), which panoramisk's own Ping never does: every ``ping_interval``
    seconds a ``Ping`` is sent, and when neither its reply nor any other byte arrived within
    ``ping_timeout`` the transport is aborted, so the usual reconnect, re-sync and outage
    path runs. A server that never answers ``Login`` is given up after ``login_timeout``.
    The timing is ours, in float seconds (panoramisk rounds its ping settings to whole
    seconds); the socket also gets ``SO_KEEPALIVE`` for the kernel's own probes.
    """

    def __init__(
        self,
        listener: PbxListener,
        *,
        ping_interval: float = 10.0,
        ping_timeout: float = 10.0,
        login_timeout: float = 10.0,
        **config: Any,
    ) -> None:
        super().__init__(protocol_factory=FastAmiProtocol, **config)
        self.listener = listener
        self.ping_every = ping_interval
        self.ping_timeout = ping_timeout
        self.login_timeout = login_timeout
        self.backoff = 1.0
        self.stopping = False
        self._retry_handle: asyncio.TimerHandle | None = None
        self._timer: asyncio.TimerHandle | None = None  # the login deadline, then the keepalive
        self._abort_reason: str | None = None
        self._quiet_for = 0.0

    def raw_event(self, message: dict[str, str]) -> None:
        self.listener.on_event(message)

    def dispatch(self, event: Message) -> list[str]:
        return []  # events are handled in raw_event; nothing is registered here

    def connection_made(self, f: asyncio.Future[Any]) -> None:
        if self.stopping:
            with contextlib.suppress(Exception):
                f.result()[0].abort()  # connected while stopping: leave nothing open
            return
        try:
            f.result()
        except OSError as exc:
            self.listener.note_unreachable(exc)
            self._retry()
            return
        super().connection_made(f)  # sends Login
        self._cancel_pinger()
        protocol = self.protocol
        if protocol is None:  # pragma: no cover - set by panoramisk just above
            return
        _keepalive_socket(protocol.transport)
        self._set_timer(self.login_timeout, self._login_timed_out, protocol)

    def login(self, future: asyncio.Future[Any]) -> bool:
        self._cancel_timer()
        try:
            ok = super().login(future)
        except Exception as exc:  # the connection died during login
            logger.warning("AMI login to %s interrupted: %s", self.listener.name, exc)
            return False
        finally:
            self._cancel_pinger()  # panoramisk's whole-second pinger: ours runs instead
        if ok:
            self.backoff = 1.0
            self.listener.logged_in(self)
            if self.protocol is not None:
                self._set_timer(self.ping_every, self._ping, self.protocol)
        else:
            response = future.result()
            self.listener.login_failed(str(response.get("Message") or "refused"))
            if self.protocol is not None:
                self.protocol.closed = True  # we close it ourselves: no double reconnect
                self.protocol.transport.close()
            self._retry()
        return bool(ok)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        self._cancel_pinger()
        self._fail_awaiting(exc)
        reason, quiet_for = self._abort_reason, self._quiet_for
        self._abort_reason, self._quiet_for = None, 0.0
        if self.stopping:
            return
        if exc is None and reason is not None:
            exc = TimeoutError(reason)
        self.listener.disconnected(exc, quiet_for=quiet_for)
        self._retry()

    def _retry(self) -> None:
        if self._retry_handle is not None or self.stopping:
            return  # one reconnect at a time (a failed login also closes the connection)
        delay = self.backoff
        self.backoff = min(self.backoff * 2, self.listener.reconnect_max)
        logger.info("reconnecting to %s in %.0f s", self.listener.name, delay)
        self._retry_handle = self.loop.call_later(delay, self._reconnect)

    def _reconnect(self) -> None:
        self._retry_handle = None
        if not self.stopping:
            self.connect()

    # -- liveness ---------------------------------------------------------------------

    def ping(self) -> None:  # pragma: no cover - panoramisk's timer; ours is _ping
        self.pinger = None

    def _ping(self, protocol: FastAmiProtocol) -> None:
        if protocol is not self.protocol or protocol.closed:
            return
        sent = time.monotonic()
        protocol.send({"Action": "Ping"})
        self._set_timer(self.ping_timeout, self._check_alive, protocol, sent)

    def _check_alive(self, protocol: FastAmiProtocol, sent: float) -> None:
        """The Ping's reply, or any other byte, came since it was sent: alive."""
        if protocol is not self.protocol or protocol.closed:
            return
        now = time.monotonic()
        if protocol.last_received >= sent:
            self._set_timer(max(0.0, sent + self.ping_every - now), self._ping, protocol)
            return
        quiet = now - protocol.last_received
        self._abort(
            protocol,
            f"no reply to Ping within {self.ping_timeout:g} s (nothing received for {quiet:.1f} s)",
            quiet_for=quiet,
        )

    def _login_timed_out(self, protocol: FastAmiProtocol) -> None:
        if protocol is not self.protocol or protocol.closed or self.authenticated:
            return
        self.listener.login_timed_out(self.login_timeout)
        self._abort(protocol, f"no answer to Login within {self.login_timeout:g} s")

    def _abort(self, protocol: FastAmiProtocol, reason: str, quiet_for: float = 0.0) -> None:
        """Drop the connection at once (no flush: the peer may never read again).

        ``transport.abort()``, not ``protocol.close()``: panoramisk's close marks the
        protocol closed, and then its ``connection_lost`` tells nobody, so no reconnect.
        """
        self._abort_reason, self._quiet_for = reason, quiet_for
        protocol.transport.abort()

    def _set_timer(self, delay: float, callback: Callable[..., None], *args: Any) -> None:
        self._cancel_timer()
        self._timer = self.loop.call_later(delay, callback, *args)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _cancel_pinger(self) -> None:
        pinger: asyncio.TimerHandle | None = getattr(self, "pinger", None)
        if pinger is not None:
            pinger.cancel()
            self.pinger = None

    def _fail_awaiting(self, exc: Exception | None) -> None:
        """Actions in flight at a drop fail now, not at their own timeout.

        panoramisk keeps them to send again after the next ``FullyBooted``; we never do (an
        ``Originate`` sent twice would dial twice), so their waiters learn of the drop."""
        error = ConnectionError(f"AMI connection lost: {exc}" if exc else "AMI connection lost")
        while self.awaiting_actions:
            future: asyncio.Future[Any] = self.awaiting_actions.popleft().future
            if not future.done():
                future.set_exception(error)
                future.add_done_callback(_consume)

    def stop(self) -> None:
        self.stopping = True
        self._cancel_timer()
        if self._retry_handle is not None:
            self._retry_handle.cancel()
        self.close()


def _keepalive_socket(transport: asyncio.BaseTransport) -> None:
    """TCP keepalive probes: the kernel's own check of a silent peer (a backstop to Ping)."""
    sock = transport.get_extra_info("socket")
    if sock is None:  # pragma: no cover - not a socket transport
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for name, value in (("TCP_KEEPIDLE", 60), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 3)):
            option = getattr(socket, name, None)
            if option is not None:
                sock.setsockopt(socket.IPPROTO_TCP, option, value)
    except OSError as exc:  # pragma: no cover - platform without these options
        logger.debug("TCP keepalive not set: %s", exc)


def _consume(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


@dataclass
class Outage:
    started_at: datetime
    last_seq: int | None
    restarted: bool = False  # the PBX restarted meanwhile: Uniqueid numbers start again
    began_mono: float | None = None  # time.monotonic() then: durations need no PBX clock


class PbxListener:
    """Feeds one PBX's events to the tracker and its finished calls to the sink."""

    def __init__(
        self,
        name: str,
        *,
        host: str,
        port: int,
        username: str,
        secret: str,
        tracker: CallTracker,
        sink: CallSink,
        live: LiveSink | None = None,
        archive: EventArchive | None = None,
        reconnect_max: float = 60.0,
        desk_phones: Sequence[str] = (),
        astdb_poll_seconds: float = 60.0,
        originates: Any | None = None,  # a Redis client: serve click-to-call requests
        originate_context: str = "from-internal",
        clock: Callable[[], float] = time.time,
        resync_timeout: float = 30.0,
        resync_retry: float = 1.0,
        ping_interval: float = 10.0,
        ping_timeout: float = 10.0,
        login_timeout: float = 10.0,
    ) -> None:
        self.resync_timeout = resync_timeout
        self.resync_retry = resync_retry
        # read at run(): a silent PBX is noticed within ping_interval + ping_timeout seconds
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.login_timeout = login_timeout
        self.name = name
        self.tracker = tracker
        self.sink = sink
        self.live = live
        self.archive = archive
        self.reconnect_max = reconnect_max
        self.clock = clock
        self._config = {"host": host, "port": port, "username": username, "secret": secret}
        self._connection: AmiConnection | None = None
        self._outbox: asyncio.Queue[list[Call] | list[DeviceChange] | None] = asyncio.Queue()
        self.desk_phones = tuple(desk_phones)
        self._resolve = desk_phone_resolver(self.desk_phones)
        self.astdb_poll_seconds = astdb_poll_seconds
        # last state per (endpoint, kind, source, contact): only changes are stored
        self._device_states: dict[tuple[str, str, str, str], str] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._pending: list[Call | DeviceChange] = []  # taken from the outbox, not stored yet
        self._writer_done = False
        self._outage: Outage | None = None
        # an ended outage whose lost calls are counted at the next new channel: its last_seq
        self._uncounted: int | None = None
        self._logged_in = False
        self._logins = 0  # a re-sync belongs to one login: a later login does its own
        self._last_seq: int | None = None
        self._last_event_at: datetime | None = None  # the PBX's clock, from event times
        self._last_event_mono = 0.0  # time.monotonic() when that event came
        self.monotonic: Callable[[], float] = time.monotonic
        self._stopping = False
        self._writer: asyncio.Task[Any] | None = None
        self._polling = False
        self.originates = originates
        self.originate_context = originate_context
        self._failure: str | None = None
        self.connected = asyncio.Event()
        self.resynced = asyncio.Event()
        self.events_received = 0
        self.calls_finished = 0

    # -- life cycle ----------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        self._connection = AmiConnection(
            self,
            ping_interval=self.ping_interval,
            ping_timeout=self.ping_timeout,
            login_timeout=self.login_timeout,
            loop=loop,
            events="on",
            **self._config,
        )
        if self.live is not None:
            await asyncio.to_thread(self.live.clear)  # no stale state from an earlier run
        self._connection.connect()
        ticker = self._spawn(self._tick(stop))
        self._writer = self._spawn(self._write())
        if self.originates is not None:
            self._spawn(self._serve_originates())
        await stop.wait()
        ticker.cancel()
        self._stopping = True
        self._connection.stop()
        self._outbox.put_nowait(None)  # the writer stores what is left, then ends
        for _ in range(3):  # a writer that fails now gets two more tries
            try:
                await self._writer
                break
            except Exception:  # already logged by _task_done
                self._writer = self._spawn(self._write())
        else:
            left = [c.linkedid for c in self._pending if isinstance(c, Call)]
            logger.error("PBX %s: %d finished call(s) NOT stored at shutdown: %s",
                         self.name, len(left), ", ".join(left))  # fmt: skip
        for task in list(self._tasks):  # a re-sync waiting on a PBX that went quiet
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.archive is not None:  # writes what is queued: off the event loop
            await asyncio.to_thread(self.archive.close)

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        """No background task dies silently; a dead writer is restarted (nothing lost)."""
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is None:
            return
        logger.error(
            "PBX %s: background task %s failed (%d item(s) kept for the writer)",
            self.name, getattr(task.get_coro(), "__qualname__", task.get_name()),
            len(self._pending), exc_info=exc,
        )  # fmt: skip
        if task is self._writer and not self._stopping:
            self._writer = self._spawn(self._write(delay=1.0))

    async def _tick(self, stop: asyncio.Event) -> None:
        """Twice a second: live ringing state; every minute of silence: idle calls."""
        while not stop.is_set():
            now = self._pbx_now()
            if self.live is not None:  # Redis I/O off the event loop
                await asyncio.to_thread(self.live.set_ringing, self.tracker.ringing(now), now)
            if self._last_event_at is not None:  # judge silence on the PBX's clock only
                self._collect(self.tracker.expire(now))
            await asyncio.sleep(0.5)

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def _pbx_now(self) -> datetime:
        """Now on the PBX's clock: the last event's time plus the wall time since it came.

        Idle calls and ringing durations are judged on this clock, so a PBX whose clock is
        off (or a replay of old events) is never judged against our wall clock.
        """
        if self._last_event_at is None:
            return self._now()
        elapsed = self.monotonic() - self._last_event_mono  # wall-clock jumps do not count
        return self._last_event_at + timedelta(seconds=elapsed)

    # -- callbacks from the connection ------------------------------------------------

    def note_unreachable(self, exc: OSError) -> None:
        text = (
            f"cannot reach PBX {self.name} at {self._config['host']}:{self._config['port']}: {exc}"
        )
        if text != self._failure:  # one line per kind of failure, not one per retry
            logger.error("%s; retrying with back-off", text)
            self._failure = text

    def login_failed(self, message: str) -> None:
        text = (
            f"AMI login to PBX {self.name} as {self._config['username']!r} failed: {message} "
            "(check ami.pbx username/secret and manager.conf permit/deny)"
        )
        if text != self._failure:
            logger.error("%s; retrying with back-off", text)
            self._failure = text

    def login_timed_out(self, seconds: float) -> None:
        text = (
            f"PBX {self.name} at {self._config['host']}:{self._config['port']} accepted the "
            f"connection but did not answer the AMI login within {seconds:g} s (is it the AMI "
            "port, and is Asterisk running?)"
        )
        if text != self._failure:
            logger.error("%s; retrying with back-off", text)
            self._failure = text

    def logged_in(self, connection: AmiConnection) -> None:
        self._failure = None
        logger.info("logged in to PBX %s (AMI %s)", self.name, connection.protocol.version or "?")
        self._logged_in = True
        self._logins += 1
        self.connected.set()
        if self.live is not None:
            self._spawn(asyncio.to_thread(self.live.set_listener_status, True, "connected"))
        self._spawn(self._resync(connection))

    def disconnected(self, exc: Exception | None, *, quiet_for: float = 0.0) -> None:
        """The connection is gone; ``quiet_for``: it had been silent that long already
        (a PBX that stopped answering), so the outage began that much earlier."""
        self.connected.clear()
        self.resynced.clear()
        if not self._logged_in:
            return  # a refused login closes the connection: already reported
        self._logged_in = False
        reason = f"connection lost: {exc}" if exc else "connection closed by the PBX"
        logger.warning("PBX %s: %s", self.name, reason)
        if self.live is not None:
            self._spawn(asyncio.to_thread(self.live.set_listener_status, False, reason))
        if self._outage is None:
            self._uncounted = None  # a second drop before the first was counted: unknown
            self._outage = Outage(
                self._pbx_now() - timedelta(seconds=quiet_for),
                self._last_seq,
                began_mono=self.monotonic() - quiet_for,
            )
            self._spawn(self.sink.outage_started(self.name, self._outage.started_at, reason))

    # -- events -------------------------------------------------------------------------

    def on_event(self, event: dict[str, str]) -> None:
        received = self.clock()
        self.events_received += 1
        at = event_time(event)
        if at is not None:
            self._last_event_at, self._last_event_mono = at, self.monotonic()
        if self.archive is not None:
            self.archive.write(event, received)
        uid = event.get("Uniqueid")
        if uid:
            match = _SEQ.search(uid)
            if match:
                seq = int(match.group(1))
                if self._last_seq is None or seq > self._last_seq:
                    self._last_seq = seq
                if self._uncounted is not None:
                    self._count_late(seq)
                outage = self._outage
                if outage is not None and outage.last_seq is not None and seq < outage.last_seq:
                    created = _uid_epoch(uid)  # a channel of after the drop, numbered lower
                    if created is not None and created > outage.started_at.timestamp() + 2:
                        outage.restarted = True
        if self._outage is not None and event.get("Event") == "FullyBooted":
            uptime = event.get("Uptime")
            gone = (self._pbx_now() - self._outage.started_at).total_seconds()
            if self._outage.began_mono is not None:  # the PBX's clock may stand still
                gone = max(gone, self.monotonic() - self._outage.began_mono)
            if uptime is None or not str(uptime).isdigit() or int(uptime) <= gone + 2:
                self._outage.restarted = True  # booted during the outage (or cannot tell)
        self._collect(self.tracker.feed(event))
        change = device_change(event, resolve=self._resolve)
        if change is not None:
            self._device(change)

    def _count_late(self, seq: int) -> None:
        """No channel was up at the re-sync, so the outage's unseen channels show only now:
        the first channel numbered after the last one seen before the drop tells how many
        were created (and ended) unseen, about two per call. A lower number means the PBX
        restarted: the count stays unknown."""
        last = self._uncounted
        if last is None or seq <= last:
            return  # a channel of before the drop
        self._uncounted = None
        self._spawn(self.sink.outage_counted(self.name, (seq - last) // 2))

    def set_directory(self, directory: Directory) -> None:
        """The duty lines and desk phones as they stand now (the console edits them): the
        tracker judges the calls that end from now on by them, and the desk phones' status
        and AstDB flags are watched for the new list."""
        self.tracker.directory = directory
        phones = tuple(sorted({p for line in directory.lines for p in line.desk_phones}))
        if phones != self.desk_phones:
            logger.info("PBX %s: desk phones now %s", self.name, ", ".join(phones) or "none")
            self.desk_phones = phones
            self._resolve = desk_phone_resolver(phones)

    def _device(self, change: DeviceChange) -> None:
        key = (change.endpoint, change.kind, change.source, change.contact)
        if self._device_states.get(key) == change.state:
            return  # a repeat (qualify, a poll): nothing changed
        self._device_states[key] = change.state
        if change.at is None:
            change = replace(change, at=self._pbx_now())
        self._outbox.put_nowait([change])

    def _collect(self, calls: list[Call]) -> None:
        if calls:
            self.calls_finished += len(calls)
            self._outbox.put_nowait(calls)

    async def _write(self, delay: float = 0.0) -> None:
        """The one writer: finished calls go to the sink in the order they ended.

        A batch stays in ``_pending`` until the sink took it: a writer that dies (and is
        restarted by :meth:`_task_done`) leaves it for the next one."""
        if delay:
            await asyncio.sleep(delay)
        while True:
            if not self._pending:
                if self._writer_done:
                    return
                item = await self._outbox.get()
                while True:
                    if item is None:
                        self._writer_done = True
                    else:
                        self._pending.extend(item)
                    if self._outbox.empty() or self._writer_done:
                        break
                    item = self._outbox.get_nowait()
                continue
            calls = [c for c in self._pending if isinstance(c, Call)]
            if calls:
                await self.sink.calls_finished(self.name, calls)
                self._pending = [c for c in self._pending if not isinstance(c, Call)]
                if self.live is not None:
                    try:
                        await asyncio.to_thread(_each, self.live.call_finished, calls)
                    except Exception:
                        logger.exception("PBX %s: live state not updated", self.name)
            changes = [c for c in self._pending if isinstance(c, DeviceChange)]
            if changes:
                await self.sink.device_changes(self.name, changes)
            self._pending = []

    async def _poll_astdb(self, connection: AmiConnection) -> None:
        """Forwarding and DND switched on at the phone or by a feature code live in AstDB
        (``CF/2001``, ``DND/2001``...): ask for them regularly. A found key arrives as a
        ``DBGetResponse`` event (see :meth:`on_event`); "not found" means switched off."""
        while True:
            keys = sorted({resource_of(p) for p in self.desk_phones})  # as they stand now
            for family in ASTDB_FAMILIES:
                for key in keys:
                    if not self.connected.is_set():
                        break
                    try:
                        reply = await asyncio.wait_for(
                            connection.send_action(
                                {"Action": "DBGet", "Family": family, "Key": key}
                            ),
                            timeout=10,
                        )
                    except Exception:
                        continue
                    reply = reply[0] if isinstance(reply, list) and reply else reply
                    if str(reply.get("Response", "")) == "Error":
                        change = astdb_poll_result(
                            family, key, False, at=self._pbx_now(), resolve=self._resolve
                        )
                        if change is not None:
                            self._device(change)
            await asyncio.sleep(self.astdb_poll_seconds)

    async def _serve_originates(self) -> None:
        """Click-to-call back: dial what the console queued for this PBX (Redis list)."""
        from redis.exceptions import RedisError

        from callcenter.clicktocall import next_request, record_result

        client: Any = self.originates
        failing = False
        while True:
            await self.connected.wait()
            try:
                request = await asyncio.to_thread(next_request, client, self.name, 2.0)
                failing = False
            except RedisError as exc:
                if not failing:
                    logger.error("click-to-call queue of %s unreachable: %s", self.name, exc)
                failing = True
                await asyncio.sleep(5)
                continue
            if request is None or self._connection is None:
                continue
            action = request.ami_action(context=self.originate_context)
            logger.info("click-to-call %s: %s dials %s", request.id, request.from_endpoint,
                        request.number)  # fmt: skip
            await asyncio.to_thread(
                record_result, client, request.id, "sent", "ringing the desk phone"
            )
            try:
                reply = await asyncio.wait_for(
                    self._connection.send_action(action),
                    timeout=float(action["Timeout"]) / 1000 + 30,
                )
            except Exception as exc:
                await asyncio.to_thread(
                    record_result, client, request.id, "failed", str(exc) or "timeout"
                )
                continue
            messages = reply if isinstance(reply, list) else [reply]
            final = messages[-1]
            ok = str(final.get("Response", "")) == "Success" and (
                len(messages) > 1 or str(final.get("Event", "")) == "OriginateResponse"
            )
            detail = str(final.get("Message") or final.get("Reason") or "")
            await asyncio.to_thread(
                record_result, client, request.id, "answered" if ok else "failed", detail
            )

    async def _resync(self, connection: AmiConnection) -> None:
        """After (re)login: list the channels up now and let the tracker catch up.

        A failed listing is asked again with back-off while this connection lasts (the next
        login re-syncs anyway). Channels with events after the listing was asked for are
        alive whatever it says (``since``)."""
        delay = self.resync_retry
        login = self._logins
        while True:
            since = self.tracker.event_seq
            try:
                # as_list=None: a list when channels follow, one message for an Error (with
                # as_list=True panoramisk would wait for a list that never comes)
                reply = await asyncio.wait_for(
                    connection.send_action({"Action": "CoreShowChannels"}, as_list=None),
                    timeout=self.resync_timeout,
                )
                if not isinstance(reply, list):
                    raise ResyncRefused(str(reply.get("Message") or reply.get("Response")))
                break
            except Exception as exc:  # timeout, or the connection died meanwhile
                if not self.connected.is_set() or self._logins != login:
                    logger.warning("PBX %s: CoreShowChannels failed (%s); connection gone, "
                                   "the next login re-syncs", self.name, exc)  # fmt: skip
                    return
                logger.warning("PBX %s: CoreShowChannels failed (%r); retrying in %g s",
                               self.name, exc, delay)  # fmt: skip
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.reconnect_max)
                if not self.connected.is_set() or self._logins != login:
                    return  # gone, or logged in again: that login re-syncs
        messages = reply if isinstance(reply, list) else [reply]
        up = [dict(m) for m in messages if str(m.get("Event", "")) == "CoreShowChannel"]
        up = [{_canonical(k): v for k, v in entry.items()} for entry in up]
        now = self._pbx_now()
        self._collect(self.tracker.resync(up, now, since=since))
        if self.astdb_poll_seconds > 0 and not self._polling:  # desk phones may come later
            self._polling = True
            self._spawn(self._poll_astdb(connection))
        if self._outage is not None:
            outage, self._outage = self._outage, None
            lost = None if outage.restarted else _estimate_missed_calls(outage.last_seq, up)
            if lost is None and not outage.restarted and outage.last_seq is not None:
                self._uncounted = outage.last_seq  # counted at the next channel created
            # never before its start, even if the PBX's clock went back (a restart, NTP)
            await self.sink.outage_ended(self.name, max(now, outage.started_at), lost)
        self.resynced.set()
        logger.info("PBX %s re-synced: %d channel(s) up", self.name, len(up))


_CANONICAL = {
    k.lower(): k
    for k in (
        "Event", "Channel", "Uniqueid", "Linkedid", "ChannelState", "ChannelStateDesc",
        "CallerIDNum", "CallerIDName", "ConnectedLineNum", "Exten", "Context", "Application",
        "ApplicationData", "BridgeId", "Duration", "ActionID",
    )
}  # fmt: skip


class ResyncRefused(Exception):
    """The PBX answered ``CoreShowChannels`` with an error (a missing AMI right...)."""


def _canonical(key: str) -> str:
    """panoramisk's messages lower-case keys; give the tracker AMI's own spelling back."""
    return _CANONICAL.get(key.lower(), key)


def _estimate_missed_calls(last_seq: int | None, up: list[dict[str, Any]]) -> int | None:
    """Channels created during the outage that are no longer up, as a count of calls.

    Asterisk numbers channels ``<epoch>.<seq>``: the gap in ``seq`` between the last channel
    seen before the outage and the newest one listed after it, minus the listed ones, is
    how many channels came and went unseen (about two per call).
    """
    if last_seq is None:
        return None
    seqs = [int(m.group(1)) for e in up if (m := _SEQ.search(str(e.get("Uniqueid", ""))))]
    newer = [s for s in seqs if s > last_seq]
    if not newer:
        return None  # not known yet: the next channel created tells (_count_late)
    unseen = max(newer) - last_seq - len(newer)
    return max(0, (unseen + 1) // 2)


def _uid_epoch(uid: str) -> float | None:
    """The creation time in an Asterisk Uniqueid ``[system-]<epoch>.<seq>``."""
    match = re.search(r"(\d+)\.\d+$", uid)
    return float(match.group(1)) if match else None


def _each(func: Callable[[Call], object], calls: list[Call]) -> None:
    for call in calls:
        func(call)
