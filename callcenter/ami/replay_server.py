"""A built-in AMI server that replays recorded or generated traffic over real TCP.

It lets the live listener, the tests and the demo run with no PBX: clients connect, log in
and receive the events of AMI transcripts (``.jsonl``, ``.json``, ``.ami``, ``.gz``; see
:mod:`callcenter.ami.transcripts`) and/or of an iterator of event dicts (the traffic
generator), paced like the recording. It answers the actions the product uses::

    secret = os.environ["CALLCENTER_AMI__SECRET"]
    async with AmiReplayServer([Path("answered.jsonl")], speed=0, secret=secret) as server:
        print(server.port)
        await server.wait_until_finished()

Protocol, as Asterisk 20 does it:

* The banner line on connect. ``Login`` (``Secret``, or ``AuthType: MD5`` + ``Key`` after
  ``Challenge``); a failed login gets ``Authentication failed`` and the connection is
  closed. Any other action before login gets ``Permission denied``.
* ``Logoff``, ``Ping``, ``Events`` (``EventMask: off`` silences the client), ``Challenge``,
  ``CoreShowChannels`` (the channels up now in the replayed state), ``DBGet``/``DBPut``/
  ``DBDel``/``DBDelTree`` (on :attr:`AmiReplayServer.astdb`), ``Setvar`` (acknowledged;
  ``DEVICE_STATE(...)`` raises a ``DeviceStateChange`` event) and ``Originate`` (result
  scripted by :attr:`AmiReplayServer.originate_handler`; with ``Async: true`` the
  ``OriginateResponse`` event follows, without it the response waits for the result).
  Unknown actions get ``Invalid/unknown command: <Action>. ...``. Responses echo the
  ``ActionID``; action and header names are case-insensitive.

Playback:

* Only objects with an ``Event`` key are played; keys starting with ``_`` are never sent.
* Pacing follows the event times (``Timestamp``, else ``_recv``) divided by ``speed``;
  ``speed`` 0 or ``math.inf`` plays as fast as the clients take it. Events without any time
  (cacofonisk ``.json``) get synthetic times ``untimed_step`` (20 ms) apart. Each source
  is a segment of its own, ``gap`` seconds of stream time after the previous one; a jump
  backwards in time inside a source (a recording of several sessions) starts a new segment
  too, and ``max_idle`` (if set) shortens long silences.
* Every event sent carries a ``Timestamp`` (epoch seconds, 6 decimals). With
  ``shift_to_now`` (the default when looping) the times are shifted so each segment starts
  "now", keeping the recorded gaps between events (a 3 s ring stays 3 s at any speed);
  otherwise the recorded values are sent unchanged.
* With ``loop=True`` the sources play again and again (``max_passes`` bounds it). From the
  second pass on every Uniqueid/Linkedid (all ``*Uniqueid``/``*Linkedid`` headers, bridge
  ids included) and every channel-name counter (``SIP/duty1-00000063``) is rewritten to a
  fresh value, consistently within the pass and wherever the name appears (``*Channel``
  headers, ``Newname``, and channel names inside other values such as ``BRIDGEPEER``), so
  each pass makes new calls that never collide with earlier ones. An ``events`` iterator
  (a generator) is consumed once; a re-iterable collection is replayed on every pass.
* As a real PBX does, events played while no client is logged in are lost (counted in
  :attr:`AmiReplayServer.events_dropped`); the playback clock keeps running. With
  ``start_on_login`` (the default) the clock starts at the first successful login, so a
  client that connects after ``start()`` still sees the stream from the beginning.
* Every logged-in client gets every event through a queue of its own; a client whose
  queue reaches ``client_queue_limit`` messages is too slow and is disconnected (with a
  warning), so it never holds up the others. At full speed playback waits for a lagging
  client, but one that takes nothing for ``client_stall_timeout`` seconds is disconnected.
* The live channel state (Newchannel/Newstate/Rename/Hangup, Linkedid changes, bridges,
  dialplan application) is kept to answer ``CoreShowChannels``.

Failures, for the listener's tests: :meth:`AmiReplayServer.cut_off` (a pulled cable: open
connections stay open but nothing more comes back, new ones get no banner),
:meth:`AmiReplayServer.fail_next` (an action refused or left unanswered) and
:meth:`AmiReplayServer.restart` (Asterisk restarting: connections closed, channels gone, a new
Uniqueid sequence, ``FullyBooted`` at each later login).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import hmac
import inspect
import logging
import math
import re
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeAlias, TypeVar

from callcenter.ami.protocol import BANNER_KEY, AmiParser
from callcenter.ami.transcripts import TranscriptError, read_events, transcript_kind

__all__ = [
    "DEFAULT_BANNER",
    "AmiReplayServer",
    "OriginateHandler",
    "OriginateOutcome",
    "OriginateResult",
    "encode_message",
]

DEFAULT_BANNER = "Asterisk Call Manager/9.0.0"

#: Seconds between the synthetic times of events recorded without any time.
DEFAULT_UNTIMED_STEP = 0.02
#: Messages waiting for one client before it counts as too slow and is disconnected.
DEFAULT_CLIENT_QUEUE_LIMIT = 10_000
#: At full speed, a lagging client that takes nothing for this long (s) is disconnected.
DEFAULT_CLIENT_STALL_TIMEOUT = 10.0
#: A time this far (s) before the previous event's starts a new segment.
_BACKWARDS_TOLERANCE = 1.0
#: At full speed, hold back while a client has this many messages waiting.
_FAST_HIGH_WATER = 1_000
_READ_CHUNK = 64 * 1024
#: Hung-up Uniqueids remembered so that trailing events do not resurrect a channel.
_REMEMBER_GONE = 10_000

_log = logging.getLogger(__name__)
_T = TypeVar("_T")

# A channel name with Asterisk's "-<8 hex digits>" counter, e.g. SIP/duty1-00000063,
# Local/201@ctx-0000000c;1, SIP/x-00000001<ZOMBIE>.
_CHANNEL_NAME = re.compile(
    r"^(?P<base>.+)-(?P<counter>[0-9a-fA-F]{8})(?P<tail>(?:;[12])?(?:<\w+>)?)$"
)
# The same inside free text (BRIDGEPEER values, AppData).
_CHANNEL_IN_TEXT = re.compile(
    r"(?P<base>[A-Za-z][\w.+-]*/[^\s,;|'\"<>()]+)-(?P<counter>[0-9a-fA-F]{8})(?![0-9A-Za-z])"
)
# Asterisk Uniqueid/Linkedid: "[systemname-]<epoch>.<sequence>".
_UNIQUEID = re.compile(r"^(?P<prefix>(?:.*-)?)(?P<epoch>\d+)\.(?P<seq>\d+)$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_CHANNEL_KEY = re.compile(r"Channel[12]?$")
_ID_KEY = re.compile(r"(?:uniqueid|linkedid)[12]?$", re.IGNORECASE)
_EXTRA_CHANNEL_KEYS = frozenset({"Newname", "Oldname", "Original", "Clone"})
_DEVICE_STATE = re.compile(r"^DEVICE_STATE\((?P<device>[^)]+)\)$", re.IGNORECASE)
_CALLER_ID = re.compile(r'^\s*"?(?P<name>[^"<]*?)"?\s*<(?P<num>[^>]*)>\s*$')

# Channel snapshot headers (after the optional prefix: "", "Dest", "LocalOne", ...).
_SNAPSHOT_FIELDS = (
    "Channel",
    "ChannelState",
    "ChannelStateDesc",
    "CallerIDNum",
    "CallerIDName",
    "ConnectedLineNum",
    "ConnectedLineName",
    "Language",
    "AccountCode",
    "Context",
    "Exten",
    "Priority",
    "Uniqueid",
    "Linkedid",
)

# Events that name a channel without being a snapshot of a live one.
_NOT_SNAPSHOTS = frozenset({"OriginateResponse", "CoreShowChannel", "Cdr", "CEL"})

_KEY_OTHER, _KEY_CHANNEL, _KEY_ID = 0, 1, 2


# ---------------------------------------------------------------------- encoding


def _text(value: object) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def encode_message(message: Mapping[str, object]) -> bytes:
    """Encode an AMI message as ``Key: Value\\r\\n`` lines and a blank line, in UTF-8.

    Keys starting with ``_`` (recorder metadata) are left out; values that are not strings
    are turned into text. A value with line breaks is sent as one header line per line (as
    Asterisk sends ``Output``), so it can never inject a header or end the message early.
    """
    parts: list[str] = []
    for key, value in message.items():
        if key[:1] == "_" or not key or any(ch in key for ch in ":\r\n"):
            continue  # metadata, or a name that would break the framing
        text = _text(value)
        if "\n" in text or "\r" in text:
            lines = text.replace("\r\n", "\n").replace("\r", "\n").rstrip("\n").split("\n")
            parts.extend(f"{key}: {line}\r\n" for line in lines)
        else:
            parts.append(f"{key}: {text}\r\n")
    parts.append("\r\n")
    return "".join(parts).encode("utf-8")


def _event_time(event: Mapping[str, object]) -> tuple[float | None, bool]:
    """The event's time and whether it came from a ``Timestamp`` header."""
    for key in ("Timestamp", "_recv"):
        value = event.get(key)
        if value is None or value == "" or isinstance(value, bool):
            continue
        try:
            seconds = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            continue
        if math.isfinite(seconds):
            return seconds, key == "Timestamp"
    return None, False


def _format_time(seconds: float) -> str:
    return f"{seconds:.6f}"


def _is_true(value: str | None) -> bool:
    """Asterisk's ``ast_true``."""
    return (value or "").strip().lower() in {"yes", "true", "y", "t", "1", "on"}


@functools.lru_cache(maxsize=2048)
def _key_kind(key: str) -> int:
    if key in _EXTRA_CHANNEL_KEYS or _CHANNEL_KEY.search(key):
        return _KEY_CHANNEL
    if _ID_KEY.search(key):
        return _KEY_ID
    return _KEY_OTHER


def _duration(seconds: float) -> str:
    total = max(0, int(seconds))
    return f"{total // 3600:02d}:{total // 60 % 60:02d}:{total % 60:02d}"


def _split_caller_id(caller_id: str) -> tuple[str, str]:
    """``"Duty spot check" <12345>`` → (name, number); a bare value is the number."""
    match = _CALLER_ID.match(caller_id)
    if match:
        return match["name"].strip(), match["num"].strip()
    return "", caller_id.strip()


# ---------------------------------------------------------------------- identifiers


class _Counters:
    """The highest channel counter and Uniqueid sequence seen or handed out (server-wide)."""

    def __init__(self) -> None:
        self.channel = 0
        self.sequence = 0

    def observe(self, event: Mapping[str, str]) -> None:
        for key, value in event.items():
            kind = _key_kind(key)
            if kind == _KEY_CHANNEL:
                match = _CHANNEL_NAME.match(value)
                if match:
                    self.channel = max(self.channel, int(match["counter"], 16))
            elif kind == _KEY_ID:
                match = _UNIQUEID.match(value)
                if match:
                    self.sequence = max(self.sequence, int(match["seq"]))

    def next_channel(self) -> str:
        self.channel += 1
        return f"{self.channel:08x}"

    def next_sequence(self) -> int:
        self.sequence += 1
        return self.sequence


class _PassRewriter:
    """Rewrites the identifiers of one replay pass to fresh, consistent values."""

    def __init__(self, counters: _Counters, pass_number: int) -> None:
        self._counters = counters
        self._pass = pass_number
        self._channels: dict[tuple[str, str], str] = {}
        self._ids: dict[str, str] = {}

    def rewrite(self, event: dict[str, str], at: float) -> None:
        for key, value in event.items():
            if not value:
                continue
            kind = _key_kind(key)
            if kind == _KEY_CHANNEL:
                event[key] = self._channel(value)
            elif kind == _KEY_ID:
                event[key] = self._id(value, at)
            elif self._channels and "/" in value and "-" in value:
                event[key] = _CHANNEL_IN_TEXT.sub(self._in_text, value)

    def sources(self) -> dict[str, str]:
        """The identifiers handed out, each with the one of the source it replaced."""
        return {new: old for old, new in self._ids.items()}

    def _channel(self, name: str) -> str:
        match = _CHANNEL_NAME.match(name)
        if match is None:
            return name
        key = (match["base"], match["counter"].lower())
        counter = self._channels.get(key)
        if counter is None:
            counter = self._channels[key] = self._counters.next_channel()
        return f"{match['base']}-{counter}{match['tail']}"

    def _in_text(self, match: re.Match[str]) -> str:
        counter = self._channels.get((match["base"], match["counter"].lower()))
        return match[0] if counter is None else f"{match['base']}-{counter}"

    def _id(self, value: str, at: float) -> str:
        new = self._ids.get(value)
        if new is not None:
            return new
        match = _UNIQUEID.match(value)
        if match:
            new = f"{match['prefix']}{int(at)}.{self._counters.next_sequence()}"
        elif _UUID.match(value):
            new = str(uuid.uuid4())
        elif value.startswith("<"):
            return value  # <null>, <unknown>
        else:
            new = f"{value}-{self._pass}"
        self._ids[value] = new
        return new


# ---------------------------------------------------------------------- channel state


@dataclass(slots=True)
class _LiveChannel:
    fields: dict[str, str]
    created: float
    bridge_id: str = ""
    application: str = ""
    application_data: str = ""


class _ChannelTable:
    """The channels up now, keyed by Uniqueid, from the events played."""

    def __init__(self) -> None:
        self.channels: dict[str, _LiveChannel] = {}
        self._gone: dict[str, None] = {}

    def apply(self, event: Mapping[str, str], at: float) -> None:
        name = event.get("Event", "")
        if name in _NOT_SNAPSHOTS:
            return
        for key, uniqueid in event.items():
            if not key.endswith("Uniqueid") or not uniqueid or uniqueid[0] == "<":
                continue
            prefix = key[: -len("Uniqueid")]
            if prefix + "Channel" not in event:
                continue  # BridgeUniqueid, SwapUniqueid: not a channel snapshot
            if name == "Hangup" and not prefix:
                self.channels.pop(uniqueid, None)
                self._gone[uniqueid] = None
                if len(self._gone) > _REMEMBER_GONE:
                    del self._gone[next(iter(self._gone))]
                continue
            channel = self.channels.get(uniqueid)
            if channel is None:
                if uniqueid in self._gone:
                    continue
                channel = self.channels[uniqueid] = _LiveChannel({}, at)
            for item in _SNAPSHOT_FIELDS:
                value = event.get(prefix + item)
                if value is not None:
                    channel.fields[item] = value
            if name == "DialBegin" and prefix == "Dest" and not channel.application:
                channel.application, channel.application_data = "AppDial", "(Outgoing Line)"
            if prefix:
                continue
            if name == "Newexten":
                channel.application = event.get("Application", "")
                channel.application_data = event.get("AppData", "")
            elif name == "BridgeEnter":
                channel.bridge_id = event.get("BridgeUniqueid", "")
            elif name == "BridgeLeave" and channel.bridge_id == event.get("BridgeUniqueid"):
                channel.bridge_id = ""
            elif name == "Rename" and event.get("Newname"):
                channel.fields["Channel"] = event["Newname"]


# ---------------------------------------------------------------------- originate


@dataclass(frozen=True, slots=True)
class OriginateResult:
    """The scripted outcome of an ``Originate`` action.

    ``reason`` is Asterisk's: 4 answered, 0 failed (default on failure), 1 hung up,
    3 no answer (ring timeout), 5 busy, 8 congestion. ``delay`` is the seconds before the
    result (ringing time). ``channel``/``uniqueid`` default to fresh values on success and
    to the dialled channel / ``<null>`` on failure. ``events`` are played just before the
    ``OriginateResponse`` (e.g. the Newchannel/Newstate/Hangup of the test call).
    """

    success: bool = True
    reason: int | None = None
    delay: float = 0.0
    channel: str | None = None
    uniqueid: str | None = None
    events: tuple[Mapping[str, object], ...] = ()

    @classmethod
    def coerce(cls, value: OriginateOutcome) -> OriginateResult:
        """From an :class:`OriginateResult`, a bool, or a dict with the same keys
        (``response: "Success" | "Failure"`` is accepted instead of ``success``)."""
        if isinstance(value, OriginateResult):
            return value
        if isinstance(value, bool):
            return cls(success=value)
        success = value.get("success")
        if success is None:
            success = _text(value.get("response", "Success")).lower() == "success"
        reason = value.get("reason")
        delay = value.get("delay", 0.0)
        events = value.get("events", ())
        return cls(
            success=bool(success),
            reason=None if reason is None else int(_text(reason)),
            delay=float(_text(delay)),
            channel=None if value.get("channel") is None else _text(value.get("channel")),
            uniqueid=None if value.get("uniqueid") is None else _text(value.get("uniqueid")),
            events=tuple(events) if isinstance(events, Iterable) else (),
        )


OriginateOutcome: TypeAlias = OriginateResult | Mapping[str, object] | bool
#: A fixed outcome, or a callable given the Originate action (headers as sent) that returns
#: an outcome (or an awaitable of one).
OriginateHandler: TypeAlias = (
    OriginateOutcome
    | Callable[[Mapping[str, str]], OriginateOutcome | Awaitable[OriginateOutcome]]
    | None
)


# ---------------------------------------------------------------------- clients


class _Client:
    """One AMI connection: a reader task (the server callback) and a writer task fed by a
    queue, so that a slow client never blocks playback or the other clients."""

    def __init__(self, writer: asyncio.StreamWriter, queue_limit: int) -> None:
        self.writer = writer
        peer = writer.get_extra_info("peername")
        self.name = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and peer else str(peer)
        self.authenticated = False
        self.events_on = True
        self.closing = False
        #: Cut off (see AmiReplayServer.cut_off): open, but sends and answers nothing.
        self.cut = False
        self.challenge: str | None = None
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._limit = queue_limit
        self.writer_task: asyncio.Task[None] | None = None
        #: When the client last took data (or had nothing waiting), time.monotonic().
        self.last_progress = time.monotonic()

    @property
    def receives_events(self) -> bool:
        return self.authenticated and self.events_on and not self.closing and not self.cut

    @property
    def backlog(self) -> int:
        return self._queue.qsize()

    def send(self, data: bytes) -> bool:
        if self.closing or self.cut:
            return False
        if self._queue.qsize() >= self._limit:
            _log.warning(
                "AMI client %s is too slow (%d messages waiting); disconnecting it",
                self.name,
                self._queue.qsize(),
            )
            self.abort()
            return False
        if self._queue.empty():
            self.last_progress = time.monotonic()
        self._queue.put_nowait(data)
        return True

    def close_after_flush(self) -> None:
        if not self.closing:
            self.closing = True
            self._queue.put_nowait(None)

    def abort(self) -> None:
        """Drop the connection at once (no flush)."""
        self.closing = True
        self.writer.transport.abort()
        self._queue.put_nowait(None)

    async def flushed(self) -> None:
        await self._queue.join()

    async def write_loop(self) -> None:
        queue = self._queue
        try:
            while True:
                item = await queue.get()
                taken = 1
                batch = [] if item is None else [item]
                end = item is None
                while not end and not queue.empty():
                    item = queue.get_nowait()
                    taken += 1
                    if item is None:
                        end = True
                    else:
                        batch.append(item)
                try:
                    if batch and not self.writer.is_closing():
                        self.writer.write(b"".join(batch))
                        await self.writer.drain()
                        self.last_progress = time.monotonic()
                finally:
                    for _ in range(taken):
                        queue.task_done()
                if end or self.writer.is_closing():
                    break
        except (ConnectionError, OSError) as exc:
            _log.debug("AMI client %s: write failed: %s", self.name, exc)
        finally:
            self.closing = True
            while not queue.empty():
                queue.get_nowait()
                queue.task_done()
            self.writer.close()


# ---------------------------------------------------------------------- the server


Action: TypeAlias = Callable[[_Client, "_Headers", str | None], Awaitable[None]]


class AmiReplayServer:
    """An AMI server on ``host:port`` that replays ``sources`` then ``events``.

    See the module docstring for the protocol and playback rules. Test hooks:
    :attr:`astdb`, :attr:`originate_handler`, :attr:`events_sent`,
    :attr:`events_dropped`, :meth:`pause`, :meth:`resume`, :meth:`pause_on`,
    :meth:`wait_paused`, :meth:`emit`, :meth:`drop_clients`, :meth:`stop_listening`,
    :meth:`resume_listening`, :meth:`wait_until_finished`, :meth:`wait_flushed`,
    :meth:`cut_off`, :meth:`restore`,
    :meth:`fail_next`, :meth:`restart`.
    """

    def __init__(
        self,
        sources: Sequence[Path] | None = None,
        events: Iterable[Mapping[str, object]] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        speed: float = 1.0,
        loop: bool = False,
        max_passes: int | None = None,
        shift_to_now: bool | None = None,
        username: str = "callcenter",
        secret: str | None = None,
        banner: str = DEFAULT_BANNER,
        start_on_login: bool = True,
        gap: float = 1.0,
        max_idle: float | None = None,
        untimed_step: float = DEFAULT_UNTIMED_STEP,
        client_queue_limit: int = DEFAULT_CLIENT_QUEUE_LIMIT,
        client_stall_timeout: float = DEFAULT_CLIENT_STALL_TIMEOUT,
        astdb: Mapping[str, str] | None = None,
        originate_handler: OriginateHandler = None,
    ) -> None:
        if math.isnan(speed) or speed < 0:
            raise ValueError(f"speed must be >= 0 (0 or inf: as fast as possible), got {speed}")
        if max_passes is not None and max_passes < 1:
            raise ValueError("max_passes must be at least 1")
        if gap < 0 or untimed_step < 0 or (max_idle is not None and max_idle < 0):
            raise ValueError("gap, max_idle and untimed_step must be >= 0")
        if client_queue_limit < 1 or client_stall_timeout <= 0:
            raise ValueError("client_queue_limit and client_stall_timeout must be positive")
        self.sources: list[Path] = [Path(p) for p in sources or ()]
        self._events = events
        self.host = host
        self._requested_port = port
        self.speed = speed
        self.loop = loop
        self.max_passes = max_passes
        self.shift_to_now = loop if shift_to_now is None else shift_to_now
        self.username = username
        self.secret = secret
        self.banner = banner
        self.start_on_login = start_on_login
        self.gap = gap
        self.max_idle = max_idle
        self.untimed_step = untimed_step
        self.client_queue_limit = client_queue_limit
        self.client_stall_timeout = client_stall_timeout
        #: The in-memory AstDB, keys "family/key".
        self.astdb: dict[str, str] = dict(astdb or {})
        #: How ``Originate`` turns out; None: success (reason 4) at once.
        self.originate_handler: OriginateHandler = originate_handler
        #: Events handed to at least one logged-in client.
        self.events_sent = 0
        #: Events played while no logged-in client wanted events (lost, as on a PBX).
        self.events_dropped = 0
        #: The replay pass being played (1 = the sources as recorded).
        self.pass_number = 0

        self._fast = speed == 0 or math.isinf(speed)
        self._server: asyncio.Server | None = None
        self._port: int | None = None
        self._clients: set[_Client] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._handlers: set[asyncio.Task[Any]] = set()
        self._play_task: asyncio.Task[None] | None = None
        self._closing = False
        self._counters = _Counters()
        self._table = _ChannelTable()
        self._actions: dict[str, Action] = {
            "login": self._action_login,
            "logoff": self._action_logoff,
            "challenge": self._action_challenge,
            "ping": self._action_ping,
            "events": self._action_events,
            "coreshowchannels": self._action_core_show_channels,
            "dbget": self._action_db_get,
            "dbput": self._action_db_put,
            "dbdel": self._action_db_del,
            "dbdeltree": self._action_db_del_tree,
            "setvar": self._action_setvar,
            "originate": self._action_originate,
        }
        # Playback clock (time.monotonic for waiting, epoch seconds for the stream).
        self._paused = False
        self._pause_started = 0.0
        self._pause_predicate: Callable[[Mapping[str, str]], bool] | None = None
        self._resumed = asyncio.Event()
        self._resumed.set()
        self._at_gate = asyncio.Event()
        self._wake = asyncio.Event()
        self._logged_in = asyncio.Event()
        self._finished = asyncio.Event()
        self._anchor_wall = 0.0
        self._anchor_src = 0.0
        self._offset = 0.0
        self._anchored = False
        self._last_due_wall = 0.0
        self._last_out: float | None = None
        self._last_play_wall = 0.0
        # Failure hooks (cut_off, fail_next, restart).
        self._cut_off = False
        self._faults: dict[str, list[str | None]] = {}
        self._rewriter: _PassRewriter | None = None  # ids of this pass (or since a restart)
        self._dead_ids: set[str] = set()  # source ids of the channels a restart killed
        self._booted_at: float | None = None  # time.monotonic() of the last restart
        #: How many times :meth:`restart` ran.
        self.restarts = 0

    # ------------------------------------------------------------------ lifecycle

    @property
    def port(self) -> int:
        """The port listened on (the one picked when ``port=0``); valid after start()."""
        if self._port is None:
            raise RuntimeError("the AMI replay server is not started")
        return self._port

    @property
    def clients(self) -> int:
        """Connections open now (logged in or not)."""
        return len(self._clients)

    @property
    def channels_up(self) -> list[dict[str, str]]:
        """The channel snapshots of the replayed state (what CoreShowChannels lists)."""
        return [dict(ch.fields) for ch in self._table.channels.values()]

    async def start(self) -> None:
        """Check the sources, listen, and start the playback task."""
        if self._server is not None:
            raise RuntimeError("the AMI replay server is already started")
        for path in self.sources:
            transcript_kind(path)  # raises TranscriptError for an unknown ending
            if not path.is_file():
                raise TranscriptError(path, "no such file")
        await self._listen(self._requested_port)
        _log.info("AMI replay server listening on %s:%d", self.host, self.port)
        self._play_task = asyncio.create_task(self._play(), name="ami-replay-playback")

    async def close(self) -> None:
        """Stop playback, close every connection and stop listening."""
        if self._closing:
            return
        self._closing = True
        self._wake.set()
        self._resumed.set()
        if self._server is not None:
            self._server.close()
        for client in list(self._clients):
            client.abort()
        tasks = [t for t in (self._play_task, *self._tasks) if t is not None and not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        # The connection handlers end by themselves once their transport is aborted (they
        # are not cancelled: asyncio.streams would log the CancelledError as an error).
        handlers = [t for t in self._handlers if not t.done()]
        if handlers:
            _, pending = await asyncio.wait(handlers, timeout=5)
            for task in pending:  # pragma: no cover - last resort
                task.cancel()
        if self._server is not None:
            await self._server.wait_closed()
        self._finished.set()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def wait_until_finished(self) -> None:
        """Wait until the sources are exhausted and every client got what was sent to it.

        Never returns while looping without ``max_passes`` (until :meth:`close`).
        """
        await self._finished.wait()
        await asyncio.gather(*(c.flushed() for c in list(self._clients)))

    async def wait_flushed(self) -> None:
        """Wait until every client was handed (written to its socket) all queued so far,
        e.g. before :meth:`drop_clients`, which loses what is still queued."""
        clients = list(self._clients)
        await asyncio.gather(*(c.flushed() for c in clients))
        while any(
            c.writer.transport.get_write_buffer_size() and not c.writer.is_closing()
            for c in clients
        ):  # drained below the high-water mark is not yet written out
            await asyncio.sleep(0.01)

    @property
    def finished(self) -> bool:
        return self._finished.is_set()

    async def _listen(self, port: int) -> None:
        self._server = await asyncio.start_server(self._serve_client, self.host, port)
        sockets = self._server.sockets
        self._port = sockets[0].getsockname()[1] if sockets else port

    async def stop_listening(self, *, drop_clients: bool = True) -> None:
        """Refuse new connections (a PBX that went away); by default also drop clients."""
        if self._server is None:
            return
        self._server.close()
        if drop_clients:
            self.drop_clients()
            await self._server.wait_closed()

    async def resume_listening(self) -> None:
        """Listen again on the same port after :meth:`stop_listening`."""
        if self._server is not None and self._server.is_serving():
            return
        await self._listen(self.port)

    def drop_clients(self) -> int:
        """Close every client connection abruptly; return how many there were."""
        clients = list(self._clients)
        for client in clients:
            client.abort()
        if clients:
            _log.info("dropped %d AMI client connection(s)", len(clients))
        return len(clients)

    def cut_off(self) -> int:
        """As if the network cable were pulled: every open connection stays open but gets
        nothing more (no event, no answer to any action, Ping included), and a connection
        opened meanwhile gets no banner and no answer either. Events played meanwhile are
        lost. Returns how many open connections were cut off. See :meth:`restore`."""
        clients = [c for c in self._clients if not c.cut]
        self._cut_off = True
        for client in clients:
            client.cut = True
        if clients:
            _log.info("cut off %d AMI client connection(s)", len(clients))
        return len(clients)

    def restore(self) -> None:
        """New connections are served again after :meth:`cut_off`; the connections cut off
        stay silent (their clients must notice and reconnect)."""
        self._cut_off = False

    def fail_next(
        self, action: str, *, times: int = 1, message: str | None = "Internal error"
    ) -> None:
        """The next ``times`` ``action`` actions (any client, after login) fail: answered
        ``Response: Error`` with ``message``, or with ``message=None`` never answered at all
        (a PBX too busy to answer)."""
        self._faults.setdefault(action.lower(), []).extend([message] * times)

    def restart(self) -> None:
        """Restart the PBX, as Asterisk's ``core restart now`` does.

        Logged-in clients get a ``Shutdown`` event, then every connection is closed; no
        channel is up any more, and the rest of the events of the calls that were up are
        never played (those calls died with the PBX). The playback goes on with a new
        Uniqueid sequence (``<epoch>.1`` on) and channel numbering, and from now on every
        login is followed by ``FullyBooted`` whose ``Uptime`` counts from this restart.
        """
        at = self.stream_time()
        shutdown = encode_message(
            {"Event": "Shutdown", "Privilege": "system,all", "Timestamp": _format_time(at),
             "Shutdown": "Cleanly", "Restart": "True"}
        )  # fmt: skip
        for client in list(self._clients):
            if client.receives_events:
                client.send(shutdown)
            client.close_after_flush()
        sent_to_source = {} if self._rewriter is None else self._rewriter.sources()
        for uniqueid, channel in self._table.channels.items():
            for value in (uniqueid, channel.fields.get("Linkedid", "")):
                if value:
                    self._dead_ids.add(sent_to_source.get(value, value))
        self._table = _ChannelTable()
        self._counters = _Counters()
        self._rewriter = _PassRewriter(self._counters, max(1, self.pass_number))
        self._booted_at = time.monotonic()
        self.restarts += 1
        _log.info("AMI replay: PBX restarted (%d channel(s) lost)", len(self._dead_ids))

    # ------------------------------------------------------------------ playback control

    def pause(self) -> None:
        """Stop playback before the next event (the stream's clock stops too)."""
        if not self._paused:
            self._paused = True
            self._pause_started = time.monotonic()
            self._resumed.clear()
            self._wake.set()

    def resume(self) -> None:
        """Continue playback where it stopped."""
        if self._paused:
            paused_for = time.monotonic() - self._pause_started
            self._anchor_wall += paused_for
            self._last_due_wall += paused_for
            self._last_play_wall += paused_for
            self._paused = False
            self._at_gate.clear()
            self._resumed.set()
            self._wake.set()

    @property
    def paused(self) -> bool:
        return self._paused

    def pause_on(self, predicate: Callable[[Mapping[str, str]], bool] | None) -> None:
        """Pause before playing the next event (as it would be sent) for which
        ``predicate`` is true; one-shot. None cancels."""
        self._pause_predicate = predicate

    async def wait_paused(self) -> None:
        """Wait until playback is actually held by :meth:`pause` / :meth:`pause_on`."""
        await self._at_gate.wait()

    def stream_time(self) -> float:
        """The stream's "now" (epoch seconds): the last event's time plus the playback
        time since, scaled by ``speed``."""
        last = self._last_out
        if last is None:
            return time.time()
        if self._fast:
            return max(last, time.time()) if self.shift_to_now else last
        wall = self._pause_started if self._paused else time.monotonic()
        return last + max(0.0, wall - self._last_play_wall) * self.speed

    def emit(self, event: Mapping[str, object]) -> bool:
        """Send an event now, outside the playback (stamped with the stream's time).

        Returns whether a logged-in client took it.
        """
        out: dict[str, str] = {}
        for key, value in event.items():
            if key[:1] != "_":
                out[key] = _text(value)
        at = self.stream_time()
        if "Timestamp" not in out:
            out = _with_timestamp(out, _format_time(at))
        return self._play_event(out, at)

    # ------------------------------------------------------------------ playback

    async def _play(self) -> None:
        try:
            if self.start_on_login:
                await self._logged_in.wait()
            while not self._closing:
                self.pass_number += 1
                self._dead_ids = set()  # a restart kills calls of its own pass only
                self._rewriter = (
                    _PassRewriter(self._counters, self.pass_number)
                    if self.pass_number > 1 or self._booted_at is not None
                    else None
                )
                played = 0
                for segment in self._segments():
                    played += await self._play_segment(segment)
                if not self.loop or played == 0:
                    break
                if self.max_passes is not None and self.pass_number >= self.max_passes:
                    break
            _log.info(
                "AMI replay finished: %d event(s) sent, %d dropped (no client)",
                self.events_sent,
                self.events_dropped,
            )
        except Exception:
            _log.exception("AMI replay playback failed (pass %d)", self.pass_number)
        finally:
            self._finished.set()

    def _segments(self) -> Iterator[Iterable[Mapping[str, object]]]:
        for path in self.sources:
            try:
                yield read_events(path, on_warning=_log.warning)
            except TranscriptError as exc:
                _log.error("AMI replay: %s; skipped", exc)
        events = self._events
        if events is None:
            return
        if self.pass_number == 1 or not isinstance(events, Iterator):
            yield events

    async def _play_segment(self, events: Iterable[Mapping[str, object]]) -> int:
        played = 0
        previous: float | None = None
        try:
            for raw in events:
                if "Event" not in raw:
                    continue
                at, stamped = _event_time(raw)
                if at is None and previous is not None:
                    at = previous + self.untimed_step
                if at is None:
                    at = self._fresh_start(self.gap)
                    self._anchor(at, self.gap)
                elif previous is None or at < previous - _BACKWARDS_TOLERANCE:
                    self._anchor(at, self.gap)
                elif self.max_idle is not None and at - previous > self.max_idle:
                    self._anchor(at, self.max_idle)
                previous = at
                await self._wait_until(at)
                if self._closing:
                    break
                out_at = at + self._offset
                keep_stamp = stamped and not self.shift_to_now
                out = self._prepare(raw, out_at, keep_stamp)
                if out is None:
                    continue
                predicate = self._pause_predicate
                if predicate is not None and predicate(out):
                    self._pause_predicate = None
                    self.pause()
                    restarts = self.restarts
                    await self._gate()
                    if self._closing:
                        break
                    if self.restarts != restarts:  # restarted while held: judged anew
                        out = self._prepare(raw, out_at, keep_stamp)
                        if out is None:
                            continue
                self._last_due_wall = max(self._due(at), time.monotonic())
                self._play_event(out, out_at)
                played += 1
        except TranscriptError as exc:
            _log.error("AMI replay: %s; rest of the file skipped", exc)
        return played

    def _prepare(
        self, raw: Mapping[str, object], at: float, keep_stamp: bool
    ) -> dict[str, str] | None:
        """The event as it will be sent, or None for one of a call a restart killed."""
        out = _outgoing(raw, at, keep_stamp=keep_stamp)
        if self._dead_ids and _mentions(out, self._dead_ids):
            return None  # a call that was up at a restart: it died with the PBX
        if self._rewriter is not None:
            self._rewriter.rewrite(out, at)
        return out

    def _fresh_start(self, gap: float) -> float:
        """A start time for a segment that has no times of its own."""
        now = time.time()
        return now if self._last_out is None else max(now, self._last_out + gap)

    def _anchor(self, at: float, gap: float) -> None:
        """Start a new segment: the event at source time ``at`` is due now, or ``gap``
        seconds of stream time after the previous event, whichever is later."""
        now = time.monotonic()
        wall = now
        if self._anchored and not self._fast and self.speed > 0:
            wall = max(now, self._last_due_wall + gap / self.speed)
        self._anchored = True
        self._anchor_wall = wall
        self._anchor_src = at
        if self.shift_to_now:
            start = time.time() + (wall - now)
            if self._last_out is not None:
                start = max(start, self._last_out + gap)
            self._offset = start - at
        else:
            self._offset = 0.0

    def _due(self, at: float) -> float:
        if self._fast:
            return self._anchor_wall
        return self._anchor_wall + (at - self._anchor_src) / self.speed

    async def _gate(self) -> None:
        while self._paused and not self._closing:
            self._at_gate.set()
            await self._resumed.wait()
        self._at_gate.clear()

    async def _wait_until(self, at: float) -> None:
        while not self._closing:
            await self._gate()
            if self._closing:
                return
            if self._fast:
                # As fast as the clients take it: hold back while one lags, unless it has
                # made no progress for client_stall_timeout (then it is dropped).
                await asyncio.sleep(0)
                while self._lagging() and not (self._paused or self._closing):
                    await asyncio.sleep(0.005)
                if not self._paused:
                    return
                continue
            delay = self._due(at) - time.monotonic()
            if delay <= 0:
                return
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    def _lagging(self) -> bool:
        high_water = min(_FAST_HIGH_WATER, max(1, self.client_queue_limit // 2))
        now = time.monotonic()
        lagging = False
        for client in list(self._clients):
            if client.backlog <= high_water or client.closing:
                continue
            if now - client.last_progress > self.client_stall_timeout:
                _log.warning(
                    "AMI client %s took nothing for %.1f s (%d messages waiting); disconnecting it",
                    client.name,
                    now - client.last_progress,
                    client.backlog,
                )
                client.abort()
            else:
                lagging = True
        return lagging

    def _play_event(self, out: dict[str, str], at: float) -> bool:
        self._counters.observe(out)
        self._table.apply(out, at)
        if self._last_out is None or at > self._last_out:
            self._last_out = at
        self._last_play_wall = time.monotonic()
        data = encode_message(out)
        delivered = False
        for client in list(self._clients):
            if client.receives_events and client.send(data):
                delivered = True
        if delivered:
            self.events_sent += 1
        else:
            self.events_dropped += 1
        return delivered

    # ------------------------------------------------------------------ connections

    async def _serve_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)
        client = _Client(writer, self.client_queue_limit)
        client.cut = self._cut_off
        if self._closing:
            writer.transport.abort()
            return
        self._clients.add(client)
        client.writer_task = self._track(
            asyncio.create_task(client.write_loop(), name=f"ami-replay-writer-{client.name}")
        )
        _log.info("AMI client %s connected", client.name)
        client.send(f"{self.banner}\r\n".encode())

        def parser_warning(message: str) -> None:
            _log.warning("AMI client %s: %s", client.name, message)

        parser = AmiParser(parser_warning)
        try:
            while not client.closing:
                data = await reader.read(_READ_CHUNK)
                if not data:
                    break
                for message in parser.feed(data):
                    if BANNER_KEY in message or client.cut:
                        continue
                    await self._handle_action(client, message)
                    if client.closing:
                        break
        except (ConnectionError, OSError) as exc:
            _log.debug("AMI client %s: read failed: %s", client.name, exc)
        finally:
            self._clients.discard(client)
            client.close_after_flush()
            _log.info("AMI client %s disconnected", client.name)

    def _track(self, task: asyncio.Task[_T]) -> asyncio.Task[_T]:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _handle_action(self, client: _Client, message: dict[str, str]) -> None:
        headers = _Headers(message)
        action_id = headers.get("actionid")
        action = headers.get("action", "").strip()
        if not action:
            self._respond(client, action_id, "Error", "Missing action in request")
            return
        name = action.lower()
        if not client.authenticated and name not in {"login", "challenge", "logoff"}:
            self._respond(client, action_id, "Error", "Permission denied")
            return
        faults = self._faults.get(name)
        if faults:
            message_text = faults.pop(0)
            if message_text is not None:
                self._respond(client, action_id, "Error", message_text)
            return
        handler = self._actions.get(name)
        if handler is None:
            self._respond(
                client,
                action_id,
                "Error",
                f"Invalid/unknown command: {action}. "
                "Use Action: ListCommands to show available commands.",
            )
            return
        await handler(client, headers, action_id)

    def _respond(
        self,
        client: _Client,
        action_id: str | None,
        response: str,
        message: str | None = None,
        **extra: str,
    ) -> None:
        reply: dict[str, str] = {"Response": response}
        if action_id is not None:
            reply["ActionID"] = action_id
        if message is not None:
            reply["Message"] = message
        reply.update(extra)
        client.send(encode_message(reply))

    # ------------------------------------------------------------------ actions

    async def _action_login(
        self, client: _Client, headers: _Headers, action_id: str | None
    ) -> None:
        if not self._credentials_ok(client, headers):
            _log.warning(
                "AMI client %s: authentication failed for user %r",
                client.name,
                headers.get("username", ""),
            )
            self._respond(client, action_id, "Error", "Authentication failed")
            client.close_after_flush()
            return
        client.authenticated = True
        if "events" in headers:
            client.events_on = headers["events"].strip().lower() != "off"
        self._respond(client, action_id, "Success", "Authentication accepted")
        if self._booted_at is not None and client.events_on:  # after a restart()
            uptime = str(int(time.monotonic() - self._booted_at))
            booted = {"Event": "FullyBooted", "Privilege": "system,all",
                      "Timestamp": _format_time(self.stream_time()), "Uptime": uptime,
                      "LastReload": uptime, "Status": "Fully Booted"}  # fmt: skip
            client.send(encode_message(booted))
        _log.info("AMI client %s logged in as %r", client.name, headers.get("username", ""))
        self._logged_in.set()

    def _credentials_ok(self, client: _Client, headers: _Headers) -> bool:
        if self.secret is None:
            return True
        if headers.get("username", "") != self.username:
            return False
        if headers.get("authtype", "").lower() == "md5":
            if client.challenge is None:
                return False
            expected = hashlib.md5((client.challenge + self.secret).encode()).hexdigest()
            return hmac.compare_digest(expected, headers.get("key", "").lower())
        return hmac.compare_digest(self.secret.encode(), headers.get("secret", "").encode())

    async def _action_logoff(
        self, client: _Client, headers: _Headers, action_id: str | None
    ) -> None:
        self._respond(client, action_id, "Goodbye", "Thanks for all the fish.")
        client.close_after_flush()

    async def _action_challenge(
        self, client: _Client, headers: _Headers, action_id: str | None
    ) -> None:
        if headers.get("authtype", "").lower() != "md5":
            self._respond(client, action_id, "Error", "Must specify AuthType")
            return
        client.challenge = str(secrets.randbelow(900_000_000) + 100_000_000)
        self._respond(client, action_id, "Success", Challenge=client.challenge)

    async def _action_ping(self, client: _Client, headers: _Headers, action_id: str | None) -> None:
        self._respond(client, action_id, "Success", Ping="Pong", Timestamp=f"{time.time():.6f}")

    async def _action_events(
        self, client: _Client, headers: _Headers, action_id: str | None
    ) -> None:
        mask = headers.get("eventmask", "on").strip().lower()
        client.events_on = mask not in {"off", "no", "false", "0"}
        self._respond(client, action_id, "Success", Events="On" if client.events_on else "Off")

    async def _action_core_show_channels(
        self, client: _Client, headers: _Headers, action_id: str | None
    ) -> None:
        self._respond(client, action_id, "Success", "Channels will follow", EventList="start")
        now = self.stream_time()
        listed = 0
        for channel in list(self._table.channels.values()):
            item: dict[str, str] = {"Event": "CoreShowChannel"}
            if action_id is not None:
                item["ActionID"] = action_id
            for name in _SNAPSHOT_FIELDS:
                item[name] = channel.fields.get(name, "en" if name == "Language" else "")
            item["BridgeId"] = channel.bridge_id
            item["Application"] = channel.application
            item["ApplicationData"] = channel.application_data
            item["Duration"] = _duration(now - channel.created)
            client.send(encode_message(item))
            listed += 1
        self._list_complete(client, action_id, "CoreShowChannelsComplete", listed)

    def _list_complete(self, client: _Client, action_id: str | None, event: str, n: int) -> None:
        done: dict[str, str] = {"Event": event}
        if action_id is not None:
            done["ActionID"] = action_id
        done["EventList"] = "Complete"
        done["ListItems"] = str(n)
        client.send(encode_message(done))

    def _family_key(
        self, client: _Client, headers: _Headers, action_id: str | None, need_key: bool
    ) -> tuple[str, str] | None:
        family = headers.get("family", "")
        key = headers.get("key", "")
        if not family:
            self._respond(client, action_id, "Error", "No family specified.")
            return None
        if need_key and not key:
            self._respond(client, action_id, "Error", "No key specified.")
            return None
        return family, key

    async def _action_db_get(
        self, client: _Client, headers: _Headers, action_id: str | None
    ) -> None:
        names = self._family_key(client, headers, action_id, need_key=True)
        if names is None:
            return
        family, key = names
        value = self.astdb.get(f"{family}/{key}")
        if value is None:
            self._respond(client, action_id, "Error", "Database entry not found")
            return
        self._respond(client, action_id, "Success", "Result will follow", EventList="start")
        result: dict[str, str] = {"Event": "DBGetResponse", "Family": family, "Key": key}
        result["Val"] = value
        if action_id is not None:
            result["ActionID"] = action_id
        client.send(encode_message(result))
        self._list_complete(client, action_id, "DBGetComplete", 1)

    async def _action_db_put(
        self, client: _Client, headers: _Headers, action_id: str | None
    ) -> None:
        names = self._family_key(client, headers, action_id, need_key=True)
        if names is None:
            return
        family, key = names
        self.astdb[f"{family}/{key}"] = headers.get("val", "")
        self._respond(client, action_id, "Success", "Updated database successfully")

    async def _action_db_del(
        self, client: _Client, headers: _Headers, action_id: str | None
    ) -> None:
        names = self._family_key(client, headers, action_id, need_key=True)
        if names is None:
            return
        family, key = names
        if self.astdb.pop(f"{family}/{key}", None) is None:
            self._respond(client, action_id, "Error", "Database entry not found")
            return
        self._respond(client, action_id, "Success", "Key deleted successfully")

    async def _action_db_del_tree(
        self, client: _Client, headers: _Headers, action_id: str | None
    ) -> None:
        names = self._family_key(client, headers, action_id, need_key=False)
        if names is None:
            return
        family, key = names
        prefix = f"{family}/{key}" if key else f"{family}/"
        doomed = [k for k in self.astdb if k == prefix or k.startswith(prefix.rstrip("/") + "/")]
        for name in doomed:
            del self.astdb[name]
        if not doomed:
            self._respond(client, action_id, "Error", "Database entry not found")
            return
        self._respond(client, action_id, "Success", "Key tree deleted successfully")

    async def _action_setvar(
        self, client: _Client, headers: _Headers, action_id: str | None
    ) -> None:
        variable = headers.get("variable", "")
        if not variable:
            self._respond(client, action_id, "Error", "No variable specified")
            return
        self._respond(client, action_id, "Success", "Variable Set")
        match = _DEVICE_STATE.match(variable.strip())
        if match:
            self.emit(
                {
                    "Event": "DeviceStateChange",
                    "Privilege": "call,all",
                    "Device": match["device"],
                    "State": headers.get("value", "").upper(),
                }
            )

    async def _action_originate(
        self, client: _Client, headers: _Headers, action_id: str | None
    ) -> None:
        if not headers.get("channel"):
            self._respond(client, action_id, "Error", "Channel not specified")
            return
        if _is_true(headers.get("async")):
            self._respond(client, action_id, "Success", "Originate successfully queued")
            self._track(
                asyncio.create_task(
                    self._originate_async(headers, action_id), name="ami-replay-originate"
                )
            )
            return
        pending = self._track(
            asyncio.create_task(
                self._originate_result(headers, action_id), name="ami-replay-originate"
            )
        )
        try:
            result = await pending
        except asyncio.CancelledError:
            if pending.cancelled() and self._closing:
                return  # server closing: no answer
            raise
        if result.success:
            self._respond(client, action_id, "Success", "Originate successfully queued")
        else:
            self._respond(client, action_id, "Error", "Originate failed")

    async def _originate_result(self, headers: _Headers, action_id: str | None) -> OriginateResult:
        """Ask :attr:`originate_handler`, wait its delay, play its events; never raises
        (a failing handler is logged and counts as a failed originate)."""
        handler = self.originate_handler
        try:
            outcome: object
            if handler is None:
                outcome = OriginateResult()
            elif callable(handler):
                outcome = handler(headers)
                if inspect.isawaitable(outcome):
                    outcome = await outcome
            else:
                outcome = handler
            if not isinstance(outcome, OriginateResult | Mapping | bool):
                raise TypeError(f"expected an OriginateResult, got {type(outcome).__name__}")
            result = OriginateResult.coerce(outcome)
        except Exception:
            _log.exception("originate_handler failed (ActionID %s)", action_id)
            return OriginateResult(success=False)
        if result.delay > 0:
            await asyncio.sleep(result.delay)
        for event in result.events:
            self.emit(event)
        return result

    async def _originate_async(self, headers: _Headers, action_id: str | None) -> None:
        result = await self._originate_result(headers, action_id)
        dialled = headers.get("channel", "")
        if result.success:
            channel = result.channel or f"{dialled}-{self._counters.next_channel()}"
            uniqueid = result.uniqueid or (
                f"{int(self.stream_time())}.{self._counters.next_sequence()}"
            )
        else:
            channel = result.channel or dialled
            uniqueid = result.uniqueid or "<null>"
        name, number = _split_caller_id(headers.get("callerid", ""))
        event: dict[str, str] = {"Event": "OriginateResponse", "Privilege": "call,all"}
        if action_id is not None:
            event["ActionID"] = action_id
        event["Response"] = "Success" if result.success else "Failure"
        event["Channel"] = channel
        if headers.get("application"):
            event["Application"] = headers["application"]
            event["Data"] = headers.get("data", "")
        else:
            event["Context"] = headers.get("context", "")
            event["Exten"] = headers.get("exten", "")
        reason = result.reason if result.reason is not None else (4 if result.success else 0)
        event["Reason"] = str(reason)
        event["Uniqueid"] = uniqueid
        event["CallerIDNum"] = number or "<unknown>"
        event["CallerIDName"] = name or "<unknown>"
        self.emit(event)


class _Headers(Mapping[str, str]):
    """An action's headers as sent, looked up case-insensitively (as Asterisk does)."""

    def __init__(self, message: Mapping[str, str]) -> None:
        self._message = dict(message)
        self._keys = {key.lower(): key for key in message}

    def __getitem__(self, key: str) -> str:
        return self._message[self._keys[key.lower()]]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._keys

    def __iter__(self) -> Iterator[str]:
        return iter(self._message)

    def __len__(self) -> int:
        return len(self._message)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._message!r})"


def _mentions(event: Mapping[str, str], ids: set[str]) -> bool:
    """Whether any ``*Uniqueid``/``*Linkedid`` of ``event`` is one of ``ids``."""
    return any(value in ids for key, value in event.items() if _key_kind(key) == _KEY_ID)


def _with_timestamp(event: dict[str, str], stamp: str) -> dict[str, str]:
    """``event`` with a ``Timestamp`` header where Asterisk puts it (after Privilege)."""
    out: dict[str, str] = {}
    placed = False
    anchor = "Privilege" if "Privilege" in event else "Event"
    for key, value in event.items():
        if key == "Timestamp":
            continue
        out[key] = value
        if key == anchor:
            out["Timestamp"] = stamp
            placed = True
    if not placed:
        out["Timestamp"] = stamp
    return out


def _outgoing(raw: Mapping[str, object], at: float, *, keep_stamp: bool) -> dict[str, str]:
    """The event as sent: text values, no ``_`` keys, a ``Timestamp``."""
    out: dict[str, str] = {}
    for key, value in raw.items():
        if key[:1] != "_":
            out[key] = _text(value)
    if keep_stamp:
        return out
    if "Timestamp" in out:
        out["Timestamp"] = _format_time(at)
        return out
    return _with_timestamp(out, _format_time(at))
