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
import logging
import re
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

    def data_received(self, data: bytes) -> None:
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
    """panoramisk's Manager with back-off reconnects, clear login errors and raw events."""

    def __init__(self, listener: PbxListener, **config: Any) -> None:
        super().__init__(protocol_factory=FastAmiProtocol, **config)
        self.listener = listener
        self.backoff = 1.0
        self.stopping = False
        self._retry_handle: asyncio.TimerHandle | None = None

    def raw_event(self, message: dict[str, str]) -> None:
        self.listener.on_event(message)

    def dispatch(self, event: Message) -> list[str]:
        return []  # events are handled in raw_event; nothing is registered here

    def connection_made(self, f: asyncio.Future[Any]) -> None:
        if self.stopping:
            return
        try:
            f.result()
        except OSError as exc:
            self.listener.note_unreachable(exc)
            self._retry()
            return
        super().connection_made(f)

    def login(self, future: asyncio.Future[Any]) -> bool:
        try:
            ok = super().login(future)
        except Exception as exc:  # the connection died during login
            logger.warning("AMI login to %s interrupted: %s", self.listener.name, exc)
            return False
        if ok:
            self.backoff = 1.0
            self.listener.logged_in(self)
        else:
            response = future.result()
            self.listener.login_failed(str(response.get("Message") or "refused"))
            if self.protocol is not None:
                self.protocol.closed = True  # we close it ourselves: no double reconnect
                self.protocol.transport.close()
            self._retry()
        return bool(ok)

    def connection_lost(self, exc: Exception | None) -> None:
        pinger: asyncio.TimerHandle | None = getattr(self, "pinger", None)
        if pinger is not None:
            pinger.cancel()
            self.pinger = None
        if self.stopping:
            return
        self.listener.disconnected(exc)
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

    def ping(self) -> None:  # pragma: no cover - timer driven
        if self.protocol is not None and not self.protocol.closed:
            super().ping()

    def stop(self) -> None:
        self.stopping = True
        if self._retry_handle is not None:
            self._retry_handle.cancel()
        self.close()


@dataclass
class Outage:
    started_at: datetime
    last_seq: int | None


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
    ) -> None:
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
        self._outage: Outage | None = None
        self._logged_in = False
        self._last_seq: int | None = None
        self._last_event_at: datetime | None = None  # the PBX's clock, from event times
        self._last_event_wall = 0.0
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
            self, loop=loop, ping_delay=10, ping_interval=10, events="on", **self._config
        )
        if self.live is not None:
            await asyncio.to_thread(self.live.clear)  # no stale state from an earlier run
        self._connection.connect()
        ticker = self._spawn(self._tick(stop))
        writer = self._spawn(self._write())
        if self.originates is not None:
            self._spawn(self._serve_originates())
        await stop.wait()
        ticker.cancel()
        self._connection.stop()
        self._outbox.put_nowait(None)  # the writer stores what is left, then ends
        await writer
        for task in list(self._tasks):  # a re-sync waiting on a PBX that went quiet
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.archive is not None:
            self.archive.close()

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

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
        return self._last_event_at + timedelta(seconds=self.clock() - self._last_event_wall)

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

    def logged_in(self, connection: AmiConnection) -> None:
        self._failure = None
        logger.info("logged in to PBX %s (AMI %s)", self.name, connection.protocol.version or "?")
        self._logged_in = True
        self.connected.set()
        if self.live is not None:
            self._spawn(asyncio.to_thread(self.live.set_listener_status, True, "connected"))
        self._spawn(self._resync(connection))

    def disconnected(self, exc: Exception | None) -> None:
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
            self._outage = Outage(self._pbx_now(), self._last_seq)
            self._spawn(self.sink.outage_started(self.name, self._outage.started_at, reason))

    # -- events -------------------------------------------------------------------------

    def on_event(self, event: dict[str, str]) -> None:
        received = self.clock()
        self.events_received += 1
        at = event_time(event)
        if at is not None:
            self._last_event_at, self._last_event_wall = at, received
        if self.archive is not None:
            self.archive.write(event, received)
        uid = event.get("Uniqueid")
        if uid:
            match = _SEQ.search(uid)
            if match:
                seq = int(match.group(1))
                if self._last_seq is None or seq > self._last_seq:
                    self._last_seq = seq
        self._collect(self.tracker.feed(event))
        change = device_change(event, resolve=self._resolve)
        if change is not None:
            self._device(change)

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

    async def _write(self) -> None:
        """The one writer: finished calls go to the sink in the order they ended."""
        done = False
        while not done:
            batch: list[Call | DeviceChange] = []
            item = await self._outbox.get()
            while True:
                if item is None:
                    done = True
                else:
                    batch.extend(item)
                if self._outbox.empty() or done:
                    break
                item = self._outbox.get_nowait()
            calls = [c for c in batch if isinstance(c, Call)]
            changes = [c for c in batch if isinstance(c, DeviceChange)]
            if calls:
                await self.sink.calls_finished(self.name, calls)
                if self.live is not None:
                    await asyncio.to_thread(_each, self.live.call_finished, calls)
            if changes:
                await self.sink.device_changes(self.name, changes)

    async def _poll_astdb(self, connection: AmiConnection) -> None:
        """Forwarding and DND switched on at the phone or by a feature code live in AstDB
        (``CF/2001``, ``DND/2001``...): ask for them regularly. A found key arrives as a
        ``DBGetResponse`` event (see :meth:`on_event`); "not found" means switched off."""
        keys = sorted({resource_of(p) for p in self.desk_phones})
        while True:
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
        """After (re)login: list the channels up now and let the tracker catch up."""
        try:
            reply = await asyncio.wait_for(
                connection.send_action({"Action": "CoreShowChannels"}, as_list=True), timeout=30
            )
        except Exception as exc:  # timeout, or the connection died meanwhile
            logger.warning("PBX %s: CoreShowChannels failed (%s); not re-synced", self.name, exc)
            return
        messages = reply if isinstance(reply, list) else [reply]
        up = [dict(m) for m in messages if str(m.get("Event", "")) == "CoreShowChannel"]
        up = [{_canonical(k): v for k, v in entry.items()} for entry in up]
        now = self._pbx_now()
        self._collect(self.tracker.resync(up, now))
        if self.desk_phones and self.astdb_poll_seconds > 0 and not self._polling:
            self._polling = True
            self._spawn(self._poll_astdb(connection))
        if self._outage is not None:
            outage, self._outage = self._outage, None
            lost = _estimate_missed_calls(outage.last_seq, up)
            await self.sink.outage_ended(self.name, now, lost)
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
        return 0
    unseen = max(newer) - last_seq - len(newer)
    return max(0, (unseen + 1) // 2)


def _each(func: Callable[[Call], object], calls: list[Call]) -> None:
    for call in calls:
        func(call)
