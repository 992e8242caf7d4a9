"""Realistic AMI event streams in Asterisk 20's exact shapes: duty calls, duty days, endless.

The project's own PBX stand-in for demos, load tests and the replay server's ``--generate``
mode. Every call is written the way the lab's Asterisk 20.20.1 wrote the matching recorded
transcript (``tests/fixtures/ami/asterisk20*/``): the same events in the same order, the same
header sets, ``Privilege`` values, ``ChannelState`` numbers, ``Cause``/``Cause-txt`` pairs,
``DialString`` forms, dialplan noise (``Newexten``/``VarSet``), bridges, RTP statistics and,
for chan_pjsip, the device-state events (``DeviceStateChange``, ``ExtensionStatus``,
``QueueMemberStatus``). Two flavours: ``"sip"`` (chan_sip, ``SIP/duty1-0000006a``) and
``"pjsip"`` (chan_pjsip, ``PJSIP/2001-00000004``).

Where the lab recorded no transcript (abandoned calls, ring groups, PJSIP busy/forward/spot
checks, a chan_sip queue, a desk phone hanging up first) the shapes follow the recorded ones
and Asterisk 20's code paths (app_dial, app_queue, chan_sip, chan_pjsip); see
:data:`KIND_SOURCES`. A desk phone hanging up first (``hangup_by="callee"``) ends the Dial
(no ``g`` option): the caller is hung up after the bridge, without more dialplan.

Pure: no I/O and no wall clock. Time comes from the ``start`` argument, randomness from a
``random.Random`` (``seed``), so the same arguments give the same events.

Public API: :class:`Scenario` (the ground truth of one generated call), :func:`generate_call`,
:func:`generate_offline`, :func:`generate_day`, :func:`generate_stream`, :class:`Counters`.
"""

from __future__ import annotations

import heapq
import itertools
import math
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from random import Random
from typing import Literal, cast

from callcenter.tracking.records import DISPLAY_TZ, Direction, Outcome, iso

__all__ = [
    "DEFAULT_EPOCH",
    "KINDS",
    "KIND_SOURCES",
    "Counters",
    "Flavour",
    "HangupBy",
    "Kind",
    "Scenario",
    "generate_call",
    "generate_day",
    "generate_offline",
    "generate_stream",
]

Flavour = Literal["sip", "pjsip"]
Kind = Literal[
    "answered",
    "no_answer",
    "abandoned",
    "busy",
    "failed",
    "forwarded_mobile",
    "ring_group_answered",
    "queue_answered",
    "spot_check",
]
KINDS: tuple[Kind, ...] = (
    "answered",
    "no_answer",
    "abandoned",
    "busy",
    "failed",
    "forwarded_mobile",
    "ring_group_answered",
    "queue_answered",
    "spot_check",
)
HangupBy = Literal["caller", "callee"]
Event = dict[str, str]

#: Where each kind's shapes come from: recorded transcripts (``tests/fixtures/ami/``) as
#: (chan_sip, chan_pjsip); ``None`` where the lab recorded none and the shapes follow the
#: recorded neighbours and Asterisk 20's code paths.
KIND_SOURCES: dict[Kind, tuple[str | None, str | None]] = {
    "answered": ("asterisk20/answered.jsonl", "asterisk20-pjsip/pj_answered.jsonl"),
    "no_answer": ("asterisk20/no_answer_timeout.jsonl", "asterisk20-pjsip/pj_no_answer.jsonl"),
    # caller's CANCEL while ringing: HangupRequest, DialEnd CANCEL, callee dropped (app_dial);
    # the caller's cause: chan_sip 0 (queued hangup without cause), chan_pjsip 127 (487)
    "abandoned": (None, None),
    # chan_pjsip: the phone's 486 queues a hangup with cause 17 (HangupRequest on the leg)
    "busy": ("asterisk20/busy_dnd.jsonl", None),
    "failed": (
        "asterisk20/phone_offline.jsonl",
        "asterisk20-pjsip/pj_contact_unreachable.jsonl",
    ),
    "forwarded_mobile": ("asterisk20/pbx_forward_to_mobile.jsonl", None),
    # Dial(A&B): DialEnd ANSWER, DialEnd CANCEL to the other, which hangs up with cause 26
    "ring_group_answered": (None, None),
    "queue_answered": (None, "asterisk20-pjsip/pj_queue_answered.jsonl"),
    "spot_check": ("asterisk20/spot_check_originate_answered.jsonl", None),
}

#: Ring timeout of the duty line and the ring group (``DUTY_RING_TIMEOUT`` in the lab).
DUTY_RING_TIMEOUT = 20.0
#: Ring timeout of a PBX forward to a mobile (``MOBILE_RING_TIMEOUT``).
MOBILE_RING_TIMEOUT = 30.0
#: ``Originate`` timeout of a spot check (``Timeout: 15000``).
SPOT_CHECK_TIMEOUT = 15.0
#: Per-attempt ring time of the queue (queues.conf ``timeout``).
QUEUE_RING_TIMEOUT = 15.0

#: Default start of :func:`generate_stream`: 2026-11-23 09:00 in the duty rooms' zone (office
#: hours, so a paced demo has traffic at once and the morning spot check soon).
DEFAULT_EPOCH = datetime(2026, 11, 23, 9, 0, tzinfo=DISPLAY_TZ)

_US = 1_000_000
_DAY_US = 86_400 * _US
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_STATE_DESC = {0: "Down", 4: "Ring", 5: "Ringing", 6: "Up"}
_UNKNOWN = "<unknown>"
_CID_PRES = "0 (Presentation Allowed, Not Screened)"
_LAB_IP = "127.0.0.1"

_DIAL_VARS = (
    "DIALSTATUS",
    "DIALEDPEERNUMBER",
    "DIALEDPEERNAME",
    "ANSWEREDTIME",
    "ANSWEREDTIME_MS",
    "DIALEDTIME",
    "DIALEDTIME_MS",
    "RINGTIME",
    "RINGTIME_MS",
    "PROGRESSTIME",
    "PROGRESSTIME_MS",
)
_RTP_ALL = (
    "RTPAUDIOQOS",
    "RTPAUDIOQOSJITTER",
    "RTPAUDIOQOSLOSS",
    "RTPAUDIOQOSRTT",
    "RTPAUDIOQOSMES",
)

# Device states as app_queue / ExtensionStatus number them.
_EXT_STATUS = {
    "NOT_INUSE": ("0", "Idle"),
    "INUSE": ("1", "InUse"),
    "BUSY": ("2", "Busy"),
    "UNAVAILABLE": ("4", "Unavailable"),
    "RINGING": ("8", "Ringing"),
    "RINGINUSE": ("9", "InUse&Ringing"),
    "ONHOLD": ("16", "Hold"),
}
_MEMBER_STATUS = {
    "NOT_INUSE": "1",
    "INUSE": "2",
    "BUSY": "3",
    "UNAVAILABLE": "5",
    "RINGING": "6",
    "RINGINUSE": "7",
    "ONHOLD": "8",
}
_IDLE_STATES = frozenset({"NOT_INUSE", "UNAVAILABLE"})


# ----------------------------------------------------------------------------- public types


@dataclass(frozen=True)
class Scenario:
    """The ground truth of one generated call: what the tracker must report for it.

    The fields named as in DESIGN.md's call object hold exactly what a correct tracker
    reports (times from the generated events, seconds rounded to milliseconds); ``kind``,
    ``flavour`` and ``desk_phones`` say how the call was made.
    """

    linkedid: str
    kind: Kind
    flavour: Flavour
    caller: str
    dialed: str
    line: str
    direction: Direction
    outcome: Outcome
    answered_by: str | None
    forwarded_to: str | None
    ring_seconds: float
    talk_seconds: float | None
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime
    hangup_cause: int
    desk_phones: tuple[str, ...] = ()
    transferred_to: str | None = None
    closed_by: Literal["hangup"] = "hangup"

    def to_json(self) -> dict[str, object]:
        """The DESIGN.md call object this call must replay to."""
        return {
            "type": "call",
            "linkedid": self.linkedid,
            "caller": self.caller,
            "dialed": self.dialed,
            "line": self.line,
            "direction": self.direction,
            "started_at": iso(self.started_at),
            "answered_at": iso(self.answered_at),
            "ended_at": iso(self.ended_at),
            "ring_seconds": self.ring_seconds,
            "talk_seconds": self.talk_seconds,
            "outcome": self.outcome,
            "answered_by": self.answered_by,
            "forwarded_to": self.forwarded_to,
            "transferred_to": self.transferred_to,
            "hangup_cause": self.hangup_cause,
            "closed_by": self.closed_by,
        }


class Counters:
    """Asterisk's global counters: the Uniqueid sequence and the channel-name counter.

    Uniqueids read ``<epoch>.<sequence>``; channel names end in the channel drivers' counter
    as 8 hex digits (``SIP/duty1-0000006a``). Share one object between calls (a day does) so
    both keep counting like one running Asterisk.
    """

    def __init__(self, uniqueid: int = 100, channel: int | None = None) -> None:
        self.uniqueid = uniqueid
        self.channel = max(0, uniqueid - 4) if channel is None else channel

    def next_uniqueid(self) -> int:
        value = self.uniqueid
        self.uniqueid += 1
        return value

    def next_channel(self) -> int:
        value = self.channel
        self.channel += 1
        return value


class _IteratorCounters(Counters):
    """Counters fed by a caller's ``Iterator[int]``: one number names and numbers a channel."""

    def __init__(self, numbers: Iterator[int]) -> None:
        super().__init__(0, 0)
        self._numbers = numbers
        self._last = 0

    def next_uniqueid(self) -> int:
        self._last = next(self._numbers)
        return self._last

    def next_channel(self) -> int:
        return self._last


# ----------------------------------------------------------------------------- flavours


@dataclass(frozen=True, slots=True)
class _Flavour:
    name: Flavour
    tech: str
    duty_phones: tuple[str, ...]
    group_phones: tuple[str, ...]
    fail_cause: tuple[str, str, str | None]  # Cause, Cause-txt, TechCause
    dropped_cause: tuple[str, str]  # a ringing leg the Dial gave up on (timeout, cancel)
    cancel_request_cause: str | None  # HangupRequest Cause of a caller's CANCEL
    cancel_cause: tuple[str, str]  # the caller's Hangup after a CANCEL
    cidok: bool  # PJSIP lab dialplan: GotoIf(...?cidok) at priority 2
    devices: bool  # device-state events (the chan_sip lab shows none)


_FLAVOURS: dict[str, _Flavour] = {
    "sip": _Flavour(
        name="sip",
        tech="SIP",
        duty_phones=("SIP/duty1",),
        group_phones=("SIP/duty1", "SIP/duty2"),
        fail_cause=("20", "Subscriber absent", None),
        dropped_cause=("16", "Normal Clearing"),
        cancel_request_cause=None,
        cancel_cause=("0", "Unknown"),
        cidok=False,
        devices=False,
    ),
    "pjsip": _Flavour(
        name="pjsip",
        tech="PJSIP",
        duty_phones=("PJSIP/2001",),
        group_phones=("PJSIP/2001", "PJSIP/2002"),
        fail_cause=("3", "No route to destination", "404"),
        dropped_cause=("0", "Unknown"),
        cancel_request_cause="127",
        cancel_cause=("127", "Interworking, unspecified"),
        cidok=True,
        devices=True,
    ),
}

_DEFAULT_LINES: dict[Kind, str] = {
    "ring_group_answered": "12346",
    "queue_answered": "12347",
}
_QUEUE = "duty"
_MEMBER_NAMES = {"2001": "Duty desk 2001", "2002": "Backup desk 2002"}


def _flavour(name: str) -> _Flavour:
    try:
        return _FLAVOURS[name]
    except KeyError:
        raise ValueError(f"unknown flavour {name!r}: use 'sip' or 'pjsip'") from None


def _resource(endpoint: str) -> str:
    return endpoint.split("/", 1)[-1]


def _member_name(endpoint: str) -> str:
    res = _resource(endpoint)
    return _MEMBER_NAMES.get(res, f"Desk {res}")


# ----------------------------------------------------------------------------- time


def _to_us(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(microseconds=1)


def _from_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def _stamp(us: int) -> str:
    return f"{us // _US}.{us % _US:06d}"


def _event_tv(us: int) -> str:
    moment = _from_us(us)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}+0000"


def _secs(us: int) -> float:
    return round(us / _US, 3)


def _local_hour(us: int) -> float:
    moment = _from_us(us).astimezone(DISPLAY_TZ)
    return moment.hour + moment.minute / 60 + moment.second / 3600


# ----------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class _Dev:
    """A device-state fact behind a device event, settled against the other calls later."""

    kind: Literal["state", "ext", "member"]
    device: str
    state: str
    owner: str | None  # the call's Linkedid; None: the device itself changed (registration)
    idle: str = "NOT_INUSE"
    in_call: bool = False
    completed: bool = False  # a queue call this member answered is over (CallsTaken + 1)


@dataclass(slots=True)
class _Ev:
    t: int
    headers: Event
    dev: _Dev | None = None


@dataclass(slots=True)
class _Chan:
    name: str
    uniqueid: str
    linkedid: str
    endpoint: str
    state: int = 0
    cid_num: str = _UNKNOWN
    cid_name: str = _UNKNOWN
    cl_num: str = _UNKNOWN
    cl_name: str = _UNKNOWN
    context: str = ""
    exten: str = ""
    priority: int = 1
    call_id: str = ""
    peer_number: str = ""

    def block(self, prefix: str = "") -> Event:
        return {
            f"{prefix}Channel": self.name,
            f"{prefix}ChannelState": str(self.state),
            f"{prefix}ChannelStateDesc": _STATE_DESC[self.state],
            f"{prefix}CallerIDNum": self.cid_num,
            f"{prefix}CallerIDName": self.cid_name,
            f"{prefix}ConnectedLineNum": self.cl_num,
            f"{prefix}ConnectedLineName": self.cl_name,
            f"{prefix}Language": "en",
            f"{prefix}AccountCode": "",
            f"{prefix}Context": self.context,
            f"{prefix}Exten": self.exten,
            f"{prefix}Priority": str(self.priority),
            f"{prefix}Uniqueid": self.uniqueid,
            f"{prefix}Linkedid": self.linkedid,
        }


@dataclass(slots=True)
class _Bridge:
    uniqueid: str
    channels: int = 0
    technology: str = "simple_bridge"

    def fields(self) -> Event:
        return {
            "BridgeUniqueid": self.uniqueid,
            "BridgeType": "basic",
            "BridgeTechnology": self.technology,
            "BridgeCreator": _UNKNOWN,
            "BridgeName": _UNKNOWN,
            "BridgeNumChannels": str(self.channels),
            "BridgeVideoSourceMode": "none",
        }


class _Pbx:
    """What persists across the calls of one simulated Asterisk: counters, randomness."""

    def __init__(self, rng: Random, flavour: _Flavour, counters: Counters, login_us: int):
        self.rng = rng
        self.flavour = flavour
        self.counters = counters
        self.login_time = login_us // _US
        self.sipp_pid = rng.randint(2000, 60000)
        self.sipp_call = rng.randint(1, 50)
        self.spot_checks = 0

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def trunk_call_id(self) -> str:
        self.sipp_call += 1
        return f"{self.sipp_call}-{self.sipp_pid}@{_LAB_IP}"

    def phone_call_id(self) -> str:
        if self.flavour.name == "sip":
            return f"{self.rng.getrandbits(128):032x}@{_LAB_IP}:5060"
        return self.uuid()

    def session_id(self) -> str:
        return f"0x{self.rng.randrange(0x7F0000000000, 0x7FFFFFFFFFFF):x}"


class _Builder:
    """Writes one call's events, advancing its own clock; device facts tagged for settling."""

    def __init__(self, pbx: _Pbx, start_us: int) -> None:
        self.pbx = pbx
        self.rng = pbx.rng
        self.flavour = pbx.flavour
        self.t = start_us
        self.events: list[_Ev] = []
        self.linkedid = ""
        self.marks: dict[str, int] = {}
        self.answered_by: str | None = None

    # -- clock ------------------------------------------------------------------

    def step(self, low: int = 8, high: int = 120) -> None:
        self.t += self.rng.randint(low, high)

    def wait_until(self, us: int) -> None:
        self.t = max(self.t + 1, us)

    def mark(self, name: str) -> None:
        """Remember the time of the event just written (the first time only)."""
        self.marks.setdefault(name, self.t)

    def mark_last(self, name: str) -> None:
        """Remember the time of the event just written (the latest time)."""
        self.marks[name] = self.t

    def answer(self, ch: _Chan) -> None:
        """The callee goes Up: the call's answer (its time and endpoint are the truth)."""
        self.newstate(ch, 6)
        self.mark("answer")
        self.answered_by = self.answered_by or ch.endpoint

    # -- raw events ---------------------------------------------------------------

    def emit(
        self,
        name: str,
        privilege: str,
        *blocks: Event,
        fields: Event | None = None,
        dev: _Dev | None = None,
    ) -> None:
        """Append one event, a few microseconds after the previous one (the first at start)."""
        if self.events:
            self.step()
        headers: Event = {
            "Event": name,
            "Privilege": f"{privilege},all",
            "Timestamp": _stamp(self.t),
        }
        for block in blocks:
            headers.update(block)
        if fields:
            headers.update(fields)
        self.events.append(_Ev(self.t, headers, dev))

    def channel(
        self,
        endpoint: str,
        *,
        context: str,
        exten: str,
        state: int = 0,
        cid: tuple[str, str] = (_UNKNOWN, _UNKNOWN),
        linkedid: str | None = None,
    ) -> _Chan:
        counters = self.pbx.counters
        seq = counters.next_uniqueid()
        uniqueid = f"{self.t // _US}.{seq}"
        name = f"{endpoint}-{counters.next_channel():08x}"
        ch = _Chan(
            name=name,
            uniqueid=uniqueid,
            linkedid=linkedid or uniqueid,
            endpoint=endpoint,
            state=state,
            cid_num=cid[0],
            cid_name=cid[1],
            context=context,
            exten=exten,
        )
        if not self.linkedid:
            self.linkedid = ch.linkedid
        return ch

    # -- channel events -------------------------------------------------------------

    def newchannel(self, ch: _Chan) -> None:
        self.emit("Newchannel", "call", ch.block())

    def varset(self, ch: _Chan, variable: str, value: str) -> None:
        self.emit("VarSet", "dialplan", ch.block(), fields={"Variable": variable, "Value": value})

    def newexten(self, ch: _Chan, application: str, data: str, priority: int | None = None) -> None:
        if priority is not None:
            ch.priority = priority
        self.emit(
            "Newexten",
            "dialplan",
            ch.block(),
            fields={"Extension": ch.exten, "Application": application, "AppData": data},
        )

    def newstate(self, ch: _Chan, state: int) -> None:
        ch.state = state
        self.emit("Newstate", "call", ch.block())

    def newcallerid(self, ch: _Chan) -> None:
        self.emit("NewCallerid", "call", ch.block(), fields={"CID-CallingPres": _CID_PRES})

    def newconnectedline(self, ch: _Chan) -> None:
        self.emit("NewConnectedLine", "call", ch.block())

    def dial(
        self,
        name: str,
        src: _Chan | None,
        dest: _Chan,
        fields: Event,
        *,
        dest_snapshot: _Chan | None = None,
        privilege: str = "call",
    ) -> None:
        """DialBegin/DialState/DialEnd and app_queue's Agent* events: caller and Dest blocks."""
        blocks = [src.block()] if src is not None else []
        blocks.append((dest_snapshot or dest).block("Dest"))
        self.emit(name, privilege, *blocks, fields=fields)

    def hangup_request(self, ch: _Chan, cause: str | None) -> None:
        self.emit("HangupRequest", "call", ch.block(), fields={"Cause": cause} if cause else None)

    def soft_hangup(self, ch: _Chan, cause: str = "16") -> None:
        self.emit("SoftHangupRequest", "call", ch.block(), fields={"Cause": cause})

    def hangup(self, ch: _Chan, cause: str, text: str, tech_cause: str | None = None) -> None:
        fields = {"Cause": cause, "Cause-txt": text}
        if tech_cause is not None:
            fields["TechCause"] = tech_cause
        self.emit("Hangup", "call", ch.block(), fields=fields)

    def bridge(self, name: str, bridge: _Bridge, ch: _Chan | None = None) -> None:
        if ch is None:
            self.emit(name, "call", bridge.fields())
        else:
            self.emit(name, "call", bridge.fields(), ch.block())

    def successful_auth(self, account: str) -> None:
        self.emit(
            "SuccessfulAuth",
            "security",
            fields={
                "EventTV": _event_tv(self.t),
                "Severity": "Informational",
                "Service": "SIP",
                "EventVersion": "1",
                "AccountID": account,
                "SessionID": self.pbx.session_id(),
                "LocalAddress": f"IPV4/UDP/{_LAB_IP}/5060",
                "RemoteAddress": f"IPV4/UDP/{_LAB_IP}/5061",
                "UsingPassword": "0",
            },
        )

    # -- device events (chan_pjsip) -----------------------------------------------------

    def device(self, device: str, state: str, *, idle: str = "NOT_INUSE") -> None:
        if not self.flavour.devices:
            return
        dev = _Dev("state", device, state, self.linkedid, idle=idle)
        self.emit("DeviceStateChange", "call", fields={"Device": device, "State": state}, dev=dev)

    def extension(self, device: str, state: str) -> None:
        if not self.flavour.devices:
            return
        code, text = _EXT_STATUS[state]
        self.emit(
            "ExtensionStatus",
            "call",
            fields={
                "Exten": _resource(device),
                "Context": "from-phones",
                "Hint": device,
                "Status": code,
                "StatusText": text,
            },
            dev=_Dev("ext", device, state, self.linkedid),
        )

    def member(
        self, device: str, state: str, *, in_call: bool = False, completed: bool = False
    ) -> None:
        if not self.flavour.devices:
            return
        dev = _Dev("member", device, state, self.linkedid, in_call=in_call, completed=completed)
        self.emit("QueueMemberStatus", "agent", fields=_member_fields(device, self.pbx), dev=dev)

    def desk(self, device: str, state: str, order: str = "xdm", **member: bool) -> None:
        """A desk phone's state change: ExtensionStatus (x), DeviceStateChange (d), member (m)."""
        for part in order:
            if part == "x":
                self.extension(device, state)
            elif part == "d":
                self.device(device, state)
            else:
                self.member(device, state, **member)

    def trunk(self, state: str) -> None:
        self.device(f"{self.flavour.tech}/pstn", state, idle="UNAVAILABLE")

    # -- RTP statistics -------------------------------------------------------------------

    def rtp_stats(self, talk_us: int) -> dict[str, str]:
        rng = self.rng
        packets = max(0, talk_us // 20_000)
        lost = rng.randint(0, max(1, packets // 500))
        jitter = (rng.uniform(0.0, 0.004), rng.uniform(0.0, 0.004))
        rtt = rng.uniform(0.002, 0.03)
        mes = (rng.uniform(86.0, 93.0), rng.uniform(86.0, 93.0))
        qos = (
            f"ssrc={rng.getrandbits(31)};themssrc={rng.getrandbits(31)};lp={lost};"
            f"rxjitter={jitter[0]:.6f};rxcount={packets};txjitter={jitter[1]:.6f};"
            f"txcount={packets};rlp=0;rtt={rtt:.6f};rxmes={mes[0]:.6f};txmes={mes[1]:.6f}"
        )

        def spread(name: str, pad: str, rx: float, tx: float, both: bool = True) -> str:
            parts = []
            for direction, value in (("rx", rx), ("tx", tx)) if both else (("", rx),):
                for stat, factor in (("min", 0.2), ("max", 2.5), ("avg", 1.0), ("stdev", 0.6)):
                    parts.append(f"{pad}{stat}{direction}{name}={value * factor:010.6f};")
            return "".join(parts)

        return {
            "RTPAUDIOQOS": qos,
            "RTPAUDIOQOSJITTER": spread("jitter", "", *jitter),
            "RTPAUDIOQOSLOSS": spread("lost", "  ", float(lost), 0.0),
            "RTPAUDIOQOSRTT": spread("rtt", "     ", rtt, rtt, both=False),
            "RTPAUDIOQOSMES": spread("mes", "   ", *mes),
        }


def _member_fields(device: str, pbx: _Pbx) -> Event:
    # CallsTaken, LastCall, InCall and Status are filled in when the device facts settle.
    return {
        "Queue": _QUEUE,
        "MemberName": _member_name(device),
        "Interface": device,
        "StateInterface": device,
        "Membership": "static",
        "Penalty": "0",
        "CallsTaken": "0",
        "LastCall": "0",
        "LastPause": "0",
        "LoginTime": str(pbx.login_time),
        "InCall": "0",
        "Status": "0",
        "Paused": "0",
        "PausedReason": "",
        "Ringinuse": "0",
        "Wrapuptime": "0",
    }


# ----------------------------------------------------------------------------- device settling


class _Devices:
    """Aggregates every call's view of a device into the device's one state, like Asterisk.

    A call says "in me, PJSIP/2001 now rings"; the device shows RINGING, INUSE, RINGINUSE...
    over all calls (and UNAVAILABLE while unregistered). Repeats of the shown state are
    dropped, which also merges two overlapping calls' trunk ``INUSE`` into one.
    """

    def __init__(self) -> None:
        self.by_call: dict[str, dict[str, str]] = {}
        self.in_call: dict[str, set[str]] = {}
        self.base: dict[str, str] = {}
        self.shown: dict[tuple[str, str], object] = {}
        self.taken: dict[str, int] = {}
        self.last_call: dict[str, int] = {}
        self.completed: set[tuple[str, str]] = set()

    def settle(self, ev: _Ev) -> Event | None:
        fact = ev.dev
        if fact is None:
            return ev.headers
        dev = fact.device
        if fact.owner is None:
            self.base[dev] = fact.state
        else:
            owners = self.by_call.setdefault(dev, {})
            if fact.state in _IDLE_STATES:
                owners.pop(fact.owner, None)
            else:
                owners[fact.owner] = fact.state
            if fact.kind == "member":
                busy = self.in_call.setdefault(dev, set())
                if fact.in_call:
                    busy.add(fact.owner)
                else:
                    busy.discard(fact.owner)
                if fact.completed and (dev, fact.owner) not in self.completed:
                    self.completed.add((dev, fact.owner))
                    self.taken[dev] = self.taken.get(dev, 0) + 1
                    self.last_call[dev] = ev.t // _US
        state = _aggregate(self.by_call.get(dev, {}).values(), self.base.get(dev, fact.idle))
        headers = dict(ev.headers)
        shown: object
        if fact.kind == "state":
            shown = state
            headers["State"] = state
        elif fact.kind == "ext":
            code, text = _EXT_STATUS[state]
            shown = code
            headers["Status"], headers["StatusText"] = code, text
        else:
            taken, last = self.taken.get(dev, 0), self.last_call.get(dev, 0)
            in_call = "1" if self.in_call.get(dev) else "0"
            status = _MEMBER_STATUS[state]
            shown = (status, in_call, taken)
            headers.update(CallsTaken=str(taken), LastCall=str(last), InCall=in_call, Status=status)
        key = (fact.kind, dev)
        if self.shown.get(key) == shown:
            return None
        self.shown[key] = shown
        return headers


def _aggregate(states: Iterable[str], base: str) -> str:
    found = set(states)
    if base == "UNAVAILABLE" and not found:
        return base
    if "INUSE" in found and "RINGING" in found:
        return "RINGINUSE"
    for state in ("INUSE", "RINGING", "BUSY", "ONHOLD"):
        if state in found:
            return state
    return base


def _settled(events: Iterable[_Ev], devices: _Devices | None = None) -> Iterator[Event]:
    devices = devices or _Devices()
    for ev in events:
        headers = devices.settle(ev)
        if headers is not None:
            yield headers


# ----------------------------------------------------------------------------- one call


@dataclass(slots=True)
class _CallSpec:
    kind: Kind
    line: str
    caller: str
    phones: tuple[str, ...]
    ring_us: int
    talk_us: int
    hangup_by: HangupBy
    answer_on: str | None
    forward_to: str
    unavailable: frozenset[str] = frozenset()


@dataclass(slots=True)
class _Teardown:
    caller: _Chan
    callee: _Chan
    bridge: _Bridge
    answered_us: int
    dial_us: int


def _digits(rng: Random, n: int) -> str:
    return "".join(str(rng.randrange(10)) for _ in range(n))


def _mobile_number(rng: Random) -> str:
    prefix = rng.choice(("13", "13", "15", "18", "17", "19"))
    return prefix + str(rng.randrange(10)) + _digits(rng, 8)


def _landline_number(rng: Random) -> str:
    area = rng.choice(("010", "021", "022", "023", "0571", "0731", "0871", "0351", "0451"))
    return area + str(rng.randint(2, 8)) + _digits(rng, 10 - len(area))


def _random_caller(rng: Random) -> str:
    return _mobile_number(rng) if rng.random() < 0.6 else _landline_number(rng)


def _dial_status_vars(b: _Builder, ch: _Chan) -> None:
    for name in _DIAL_VARS:
        b.varset(ch, name, "")


def _inbound(b: _Builder, spec: _CallSpec) -> _Chan:
    """The caller's channel from the trunk, up to the start of its dialplan."""
    fl = b.flavour
    trunk = f"{fl.tech}/pstn"
    cid = (spec.caller, spec.caller)
    if fl.name == "sip":
        ch = b.channel(trunk, context="inbound", exten=spec.line, cid=cid)
        ch.call_id = b.pbx.trunk_call_id()
        b.newchannel(ch)
        b.mark("start")
        b.varset(ch, "SIPURI", f"sip:{spec.caller}@{_LAB_IP}:5061")
        b.varset(ch, "SIPDOMAIN", _LAB_IP)
        b.varset(ch, "SIPCALLID", ch.call_id)
        b.newstate(ch, 4)
        b.successful_auth(spec.line)
    else:
        ch = b.channel(trunk, context="inbound", exten=spec.line, state=4, cid=cid)
        ch.call_id = b.pbx.trunk_call_id()
        b.newchannel(ch)
        b.mark("start")
        b.varset(ch, "SIPDOMAIN", _LAB_IP)
    return ch


def _duty_dialplan(b: _Builder, ch: _Chan, spec: _CallSpec, forward: str | None) -> int:
    """Priorities 1.. of ``[inbound] 12345`` up to its Dial; returns the Dial's priority."""
    fl = b.flavour
    desk = _resource(spec.phones[0])
    b.newexten(ch, "NoOp", f"Duty line call from {spec.caller} to {spec.line}", 1)
    prio = 2
    if fl.cidok:
        b.newexten(ch, "GotoIf", "1?cidok", 2)
        prio = 4
    b.newexten(ch, "Set", "__FORWARD_CONTEXT=from-forward", prio)
    b.varset(ch, "__FORWARD_CONTEXT", "from-forward")
    if forward:
        b.varset(ch, "DB_RESULT", forward)
    b.newexten(ch, "Set", f"CF_TARGET={forward or ''}", prio + 1)
    b.varset(ch, "CF_TARGET", forward or "")
    b.newexten(ch, "GotoIf", f"{1 if forward else 0}?pbxforward", prio + 2)
    if forward is None:
        dial = prio + 3
        b.newexten(ch, "Dial", f"{'&'.join(spec.phones)},{DUTY_RING_TIMEOUT:.0f}", dial)
        return dial
    b.newexten(ch, "NoOp", f"PBX call forward: {desk} -> {forward}", prio + 6)
    dial = prio + 7
    target = f"SIP/mobile/{forward}" if fl.name == "sip" else f"PJSIP/{forward}@mobile"
    b.newexten(ch, "Dial", f"{target},{MOBILE_RING_TIMEOUT:.0f}", dial)
    return dial


def _group_dialplan(b: _Builder, ch: _Chan, spec: _CallSpec) -> int:
    b.newexten(ch, "NoOp", f"Duty ring group call from {spec.caller}", 1)
    b.newexten(ch, "Set", "__FORWARD_CONTEXT=from-forward", 2)
    b.varset(ch, "__FORWARD_CONTEXT", "from-forward")
    b.newexten(ch, "Dial", f"{'&'.join(spec.phones)},{DUTY_RING_TIMEOUT:.0f}", 3)
    return 3


def _after_dial(b: _Builder, ch: _Chan, label: str, dial_priority: int, status: str) -> None:
    b.newexten(ch, "NoOp", f"{label} DIALSTATUS={status}", dial_priority + 1)
    b.newexten(ch, "Hangup", "", dial_priority + 2)
    b.soft_hangup(ch)


def _dial_out(
    b: _Builder,
    caller: _Chan,
    endpoint: str,
    *,
    dialstring: str,
    peer_number: str,
    context: str,
    first: bool,
) -> _Chan:
    """app_dial requests one target: the new channel up to its DialBegin."""
    fl = b.flavour
    b.step(150, 900)
    callee = b.channel(endpoint, context=context, exten="s", linkedid=caller.linkedid)
    callee.call_id = b.pbx.phone_call_id()
    callee.peer_number = peer_number
    b.newchannel(callee)
    if fl.name == "sip":
        b.varset(callee, "SIPCALLID", callee.call_id)
        callee.exten = ""
    b.varset(callee, "DIALEDPEERNUMBER", peer_number)
    b.varset(callee, "__FORWARD_CONTEXT", "from-forward")
    callee.cid_num, callee.cid_name = caller.exten, _UNKNOWN
    callee.cl_num, callee.cl_name = caller.cid_num, caller.cid_name
    callee.exten = caller.exten
    b.newexten(callee, "AppDial", "(Outgoing Line)")
    b.newcallerid(callee)
    b.newconnectedline(callee)
    b.dial("DialBegin", caller, callee, {"DialString": dialstring})
    if fl.name == "pjsip" and first:
        caller.cl_num = caller.exten
        b.newconnectedline(caller)
    return callee


def _ringing(
    b: _Builder, caller: _Chan, callee: _Chan, *, first: bool, dial_us: int, order: str
) -> None:
    """The target's 180 Ringing. ``order``: "answered" or "no_answer" transcript order."""
    fl = b.flavour
    b.step(1800, 4200)
    since = max(0, b.t - dial_us)

    def ringtime() -> None:
        if first:  # app_dial sets RINGTIME on the first ringing target only
            b.varset(caller, "RINGTIME", str(since // _US))
            b.varset(caller, "RINGTIME_MS", str(since // 1000))

    if fl.name == "sip":
        b.newstate(callee, 5)
        b.mark("ring")
        ringtime()
        b.dial("DialState", caller, callee, {"DialStatus": "RINGING"})
        return
    device = callee.endpoint
    desk = _is_desk(callee)
    if order == "answered":
        ringtime()
        b.dial("DialState", caller, callee, {"DialStatus": "RINGING"})
        b.mark("ring")
        if first:
            b.trunk("INUSE")
        b.newstate(callee, 5)
        if desk:
            b.desk(device, "RINGING", "xdm")
        else:
            b.device(device, "RINGING")
        return
    b.newstate(callee, 5)
    b.mark("ring")
    if desk:
        b.desk(device, "RINGING", "dxm")
    else:
        b.device(device, "RINGING")
    ringtime()
    b.dial("DialState", caller, callee, {"DialStatus": "RINGING"})
    if first:
        b.trunk("INUSE")


def _is_desk(ch: _Chan) -> bool:
    res = _resource(ch.endpoint)
    return res not in ("pstn", "mobile")


def _answer_dial(b: _Builder, caller: _Chan, callee: _Chan, others: Sequence[_Chan]) -> _Bridge:
    """The target answers: DialEnd ANSWER (CANCEL to the others), both up, bridged."""
    fl = b.flavour
    b.answer(callee)
    b.varset(caller, "DIALSTATUS", "ANSWER")
    b.varset(caller, "DIALEDPEERNAME", callee.name)
    b.varset(caller, "DIALEDPEERNUMBER", callee.peer_number)
    if fl.devices:
        if _is_desk(callee):
            b.desk(callee.endpoint, "INUSE", "xdm")
        else:
            b.device(callee.endpoint, "INUSE")
    callee.exten = ""
    b.dial("DialEnd", caller, callee, {"DialStatus": "ANSWER"})
    for other in others:
        b.dial("DialEnd", caller, other, {"DialStatus": "CANCEL"})
    for other in others:
        b.hangup(other, "26", "Answered elsewhere")
        if _is_desk(other):
            b.desk(other.endpoint, "NOT_INUSE", "dmx")
    b.newstate(caller, 6)
    bridge = _Bridge(b.pbx.uuid())
    b.step(100, 500)
    b.bridge("BridgeCreate", bridge)
    b.newexten(callee, "AppDial", "(Outgoing Line)")
    _enter(b, bridge, caller, callee)
    for _ in range(3):
        _bridge_peer(b, caller, callee)
        _bridge_peer(b, callee, caller)
    return bridge


def _enter(b: _Builder, bridge: _Bridge, caller: _Chan, callee: _Chan) -> None:
    bridge.channels = 1
    b.bridge("BridgeEnter", bridge, callee)
    bridge.channels = 2
    b.bridge("BridgeEnter", bridge, caller)


def _bridge_peer(b: _Builder, ch: _Chan, peer: _Chan) -> None:
    b.varset(ch, "BRIDGEPEER", peer.name)
    b.varset(ch, "BRIDGEPVTCALLID", peer.call_id)


def _rtp_exchange(b: _Builder, first: _Chan, second: _Chan, talk_us: int) -> None:
    """The first leg's BYE: RTP statistics of the first (and, chan_sip, the second) leg."""
    pairs = [(first, second)] if b.flavour.name == "pjsip" else [(first, second), (second, first)]
    for own, peer in pairs:
        stats = b.rtp_stats(talk_us)
        for name in _RTP_ALL:
            b.varset(own, name, stats[name])
            b.varset(peer, f"{name}BRIDGED", stats[name])


def _rtp_own(b: _Builder, ch: _Chan, talk_us: int, names: Sequence[str] = _RTP_ALL) -> None:
    stats = b.rtp_stats(talk_us)
    for name in names:
        b.varset(ch, name, stats[name])


def _answered_vars(b: _Builder, ch: _Chan, answered_us: int, dial_us: int, status: bool) -> None:
    talk = max(0, b.t - answered_us)
    dialed = max(0, b.t - dial_us)
    b.varset(ch, "ANSWEREDTIME", str(talk // _US))
    b.varset(ch, "ANSWEREDTIME_MS", str(talk // 1000))
    b.varset(ch, "DIALEDTIME", str(dialed // _US))
    b.varset(ch, "DIALEDTIME_MS", str(dialed // 1000))
    if status:
        b.varset(ch, "DIALSTATUS", "ANSWER")


def _clear_peers(b: _Builder, first: _Chan, second: _Chan) -> None:
    for ch in (first, second):
        b.varset(ch, "BRIDGEPEER", "")
        b.varset(ch, "BRIDGEPVTCALLID", "")


def _end_device(b: _Builder, ch: _Chan) -> None:
    if _is_desk(ch):
        b.desk(ch.endpoint, "NOT_INUSE", "dmx")
    else:
        b.device(ch.endpoint, "NOT_INUSE")


def _teardown(b: _Builder, td: _Teardown, hangup_by: HangupBy, variant: str) -> None:
    """The end of a bridged Dial call. ``variant``: "a" answered.jsonl, "b" the forward one."""
    caller, callee, bridge = td.caller, td.callee, td.bridge
    talk = max(0, b.t - td.answered_us)
    sip = b.flavour.name == "sip"
    bridge.technology = "native_rtp"
    if hangup_by == "caller":
        _rtp_exchange(b, caller, callee, talk)
        b.hangup_request(caller, "16")
        _clear_peers(b, caller, callee)
        bridge.channels = 1
        b.bridge("BridgeLeave", bridge, caller)
        if sip and variant == "b":
            bridge.channels = 0
            b.bridge("BridgeLeave", bridge, callee)
            _rtp_own(b, callee, talk, ("RTPAUDIOQOS",))
            b.hangup(callee, "16", "Normal Clearing")
            b.bridge("BridgeDestroy", bridge)
            _answered_vars(b, caller, td.answered_us, td.dial_us, True)
            b.soft_hangup(caller)
            b.hangup(caller, "16", "Normal Clearing")
            return
        _answered_vars(b, caller, td.answered_us, td.dial_us, True)
        b.soft_hangup(caller)
        if sip:
            b.hangup(caller, "16", "Normal Clearing")
            bridge.channels = 0
            b.bridge("BridgeLeave", bridge, callee)
            b.bridge("BridgeDestroy", bridge)
            _rtp_own(b, callee, talk, ("RTPAUDIOQOS",))
            b.hangup(callee, "16", "Normal Clearing")
            return
        bridge.channels = 0
        b.bridge("BridgeLeave", bridge, callee)
        b.bridge("BridgeDestroy", bridge)
        b.hangup(caller, "16", "Normal Clearing")
        _rtp_own(b, callee, talk)
        b.trunk("UNAVAILABLE")
        if _is_desk(callee):
            b.extension(callee.endpoint, "NOT_INUSE")
        b.step(200, 2500)
        b.hangup(callee, "16", "Normal Clearing")
        if _is_desk(callee):
            b.desk(callee.endpoint, "NOT_INUSE", "dm")
        else:
            b.device(callee.endpoint, "NOT_INUSE")
        return
    # the desk phone (or the mobile) hangs up first; Dial() returns -1 (no 'g' option)
    _rtp_exchange(b, callee, caller, talk)
    b.hangup_request(callee, "16")
    _clear_peers(b, callee, caller)
    bridge.channels = 1
    b.bridge("BridgeLeave", bridge, callee)
    if sip:
        _rtp_own(b, callee, talk, ("RTPAUDIOQOS",))
    else:
        _rtp_own(b, callee, talk)
    b.hangup(callee, "16", "Normal Clearing")
    _end_device(b, callee)
    bridge.channels = 0
    b.bridge("BridgeLeave", bridge, caller)
    b.bridge("BridgeDestroy", bridge)
    _answered_vars(b, caller, td.answered_us, td.dial_us, True)
    b.soft_hangup(caller)
    _rtp_own(b, caller, talk, ("RTPAUDIOQOS",) if sip else _RTP_ALL)
    b.hangup(caller, "16", "Normal Clearing")
    b.trunk("UNAVAILABLE")


def _dial_call(b: _Builder, spec: _CallSpec) -> _Chan:
    """Every kind that goes through Dial() on a duty line, a ring group or a forward."""
    fl = b.flavour
    caller = _inbound(b, spec)
    kind = spec.kind
    forward = spec.forward_to if kind == "forwarded_mobile" else None
    if kind == "ring_group_answered":
        dial_prio = _group_dialplan(b, caller, spec)
        label = "Ring group"
    else:
        dial_prio = _duty_dialplan(b, caller, spec, forward)
        label = "Forwarded" if forward else "Duty line"
    caller.priority = dial_prio
    dial_us = b.t
    _dial_status_vars(b, caller)
    if kind == "failed":
        b.varset(caller, "DIALSTATUS", "CHANUNAVAIL")
        _after_dial(b, caller, label, dial_prio, "CHANUNAVAIL")
        cause, text, tech = fl.fail_cause
        b.hangup(caller, cause, text, tech)
        return caller

    # endpoint, DialString, DIALEDPEERNUMBER, context of the target's channel
    targets: list[tuple[str, str, str, str]] = []
    if forward:
        if fl.name == "sip":
            targets.append(("SIP/mobile", f"mobile/{forward}", f"mobile/{forward}", "from-mobile"))
        else:
            targets.append(
                ("PJSIP/mobile", f"{forward}@mobile", f"{forward}@mobile", "from-mobile")
            )
    else:
        for phone in spec.phones:
            if phone in spec.unavailable:
                continue
            res = _resource(phone)
            targets.append((phone, res, res, "from-phones"))
    if not targets:
        raise ValueError("no reachable desk phone to dial")
    callees = [
        _dial_out(
            b,
            caller,
            endpoint,
            dialstring=dialstring,
            peer_number=number,
            context=context,
            first=i == 0,
        )
        for i, (endpoint, dialstring, number, context) in enumerate(targets)
    ]

    if kind == "busy":
        callee = callees[0]
        b.step(1500, 3500)
        if fl.name == "pjsip":
            b.hangup_request(callee, "17")
        b.dial("DialEnd", caller, callee, {"DialStatus": "BUSY"})
        b.hangup(callee, "17", "User busy")
        b.varset(caller, "DIALSTATUS", "BUSY")
        _after_dial(b, caller, label, dial_prio, "BUSY")
        b.hangup(caller, "17", "User busy")
        return caller

    order = "no_answer" if kind in ("no_answer", "abandoned") else "answered"
    for i, callee in enumerate(callees):
        _ringing(b, caller, callee, first=i == 0, dial_us=dial_us, order=order)
    ring_start = b.marks["ring"]

    if kind == "no_answer":
        b.wait_until(dial_us + int(DUTY_RING_TIMEOUT * _US) + b.rng.randint(12_000, 22_000))
        for callee in callees:
            b.dial("DialEnd", caller, callee, {"DialStatus": "NOANSWER"})
            b.mark_last("ring_end")
        for callee in callees:
            b.hangup(callee, *b.flavour.dropped_cause)
        b.varset(caller, "DIALSTATUS", "NOANSWER")
        _after_dial(b, caller, label, dial_prio, "NOANSWER")
        for callee in callees:
            if _is_desk(callee):
                b.desk(callee.endpoint, "NOT_INUSE", "dmx")
        b.hangup(caller, "16", "Normal Clearing")
        b.trunk("UNAVAILABLE")
        return caller

    if kind == "abandoned":
        b.wait_until(ring_start + spec.ring_us)
        b.hangup_request(caller, fl.cancel_request_cause)
        for callee in callees:
            b.dial("DialEnd", caller, callee, {"DialStatus": "CANCEL"})
            b.mark_last("ring_end")
        for callee in callees:
            b.hangup(callee, *fl.dropped_cause)
        b.varset(caller, "DIALSTATUS", "CANCEL")
        for callee in callees:
            if _is_desk(callee):
                b.desk(callee.endpoint, "NOT_INUSE", "dmx")
        b.hangup(caller, *fl.cancel_cause)
        b.trunk("UNAVAILABLE")
        return caller

    # answered, forwarded_mobile, ring_group_answered
    b.wait_until(ring_start + spec.ring_us)
    answerer = _pick(callees, spec.answer_on, b.rng)
    others = [c for c in callees if c is not answerer]
    bridge = _answer_dial(b, caller, answerer, others)
    answered_us = b.marks["answer"]
    b.wait_until(answered_us + spec.talk_us)
    variant = "b" if kind == "forwarded_mobile" else "a"
    _teardown(b, _Teardown(caller, answerer, bridge, answered_us, dial_us), spec.hangup_by, variant)
    return caller


def _pick(callees: Sequence[_Chan], endpoint: str | None, rng: Random) -> _Chan:
    if endpoint is not None:
        for ch in callees:
            if ch.endpoint == endpoint:
                return ch
        raise ValueError(f"{endpoint} is not among the dialed phones")
    return callees[0] if len(callees) == 1 else rng.choice(list(callees))


def _queue_call(b: _Builder, spec: _CallSpec) -> _Chan:
    """``Queue(duty,r,,,60)`` with ringall: every free member rings, the first to answer wins."""
    fl = b.flavour
    caller = _inbound(b, spec)
    b.newexten(caller, "NoOp", f"Duty queue call from {spec.caller}", 1)
    b.newexten(caller, "Queue", f"{_QUEUE},r,,,60", 2)
    for name in ("ANSWEREDTIME", "ANSWEREDTIME_MS", "DIALEDTIME", "DIALEDTIME_MS"):
        b.varset(caller, name, "")
    b.varset(caller, "QUEUEWAIT", "")
    b.varset(caller, "QUEUEWAIT_MS", "")
    b.device(f"Queue:{_QUEUE}", "RINGING")
    join_us = b.t
    b.emit(
        "QueueCallerJoin",
        "agent",
        caller.block(),
        fields={"Queue": _QUEUE, "Position": "1", "Count": "1"},
    )
    dial_us = b.t
    b.trunk("INUSE")
    b.step(2000, 4000)
    members: list[_Chan] = []
    for phone in spec.phones:
        if phone in spec.unavailable:
            continue
        ch = b.channel(phone, context="from-phones", exten="s", linkedid=caller.linkedid)
        ch.call_id = b.pbx.phone_call_id()
        ch.peer_number = _resource(phone)
        b.newchannel(ch)
        if fl.name == "sip":
            b.varset(ch, "SIPCALLID", ch.call_id)
        ch.cid_num = spec.line
        b.newexten(ch, "AppQueue", "(Outgoing Line)")
        b.newcallerid(ch)
        b.varset(ch, "DIALEDPEERNUMBER", ch.peer_number)
        called = replace(
            ch, cl_num=caller.cid_num, cl_name=caller.cid_name, exten=spec.line, priority=1
        )
        b.dial(
            "AgentCalled",
            caller,
            ch,
            {"Queue": _QUEUE, "Interface": phone, "MemberName": _member_name(phone)},
            dest_snapshot=called,
            privilege="agent",
        )
        b.dial("DialBegin", caller, ch, {"DialString": phone})
        members.append(ch)
    if not members:
        raise ValueError("no reachable queue member to ring")
    for i, ch in enumerate(members):
        b.step(600, 2400)
        ring_state = replace(ch)
        ch.exten, ch.cl_num, ch.cl_name = spec.line, caller.cid_num, caller.cid_name
        if i == 0:
            b.newstate(ch, 5)
            b.mark("ring")
            b.newexten(ch, "AppQueue", "(Outgoing Line)")
            b.newconnectedline(ch)
            b.desk(ch.endpoint, "RINGING", "xdm")
            b.dial("DialState", caller, ch, {"DialStatus": "RINGING"})
        else:
            ring_state.exten, ring_state.cl_num = spec.line, caller.cid_num
            ring_state.cl_name = caller.cid_name
            b.dial("DialState", caller, ch, {"DialStatus": "RINGING"}, dest_snapshot=ring_state)
            b.mark("ring")
            b.newstate(ch, 5)
            b.newexten(ch, "AppQueue", "(Outgoing Line)")
            b.newconnectedline(ch)
            b.desk(ch.endpoint, "RINGING", "xdm")
    b.device(f"Queue:{_QUEUE}_avail", "INUSE")
    ring_start = b.marks["ring"]
    b.wait_until(ring_start + spec.ring_us)
    answerer = _pick(members, spec.answer_on, b.rng)
    others = [c for c in members if c is not answerer]
    b.answer(answerer)
    answered_us = b.marks["answer"]
    b.dial("DialEnd", caller, answerer, {"DialStatus": "ANSWER"})
    for other in others:
        b.dial("DialEnd", caller, other, {"DialStatus": "CANCEL"})
    caller.cl_num, caller.cl_name = spec.line, _UNKNOWN
    b.newconnectedline(caller)
    for other in others:
        b.dial("DialEnd", caller, other, {"DialStatus": "CANCEL"})
    b.device(f"Queue:{_QUEUE}", "NOT_INUSE")
    b.emit(
        "QueueCallerLeave",
        "agent",
        caller.block(),
        fields={"Queue": _QUEUE, "Position": "1", "Count": "0"},
    )
    wait_s = (b.t - join_us) // _US
    b.varset(caller, "QUEUEPOSITION", "1")
    b.varset(caller, "QUEUEWAIT", str(wait_s))
    b.varset(caller, "QUEUEWAIT_MS", str(wait_s * 1000))
    ring_s = (answered_us - ring_start) // _US
    hold_s = wait_s
    agent = {
        "Queue": _QUEUE,
        "Interface": answerer.endpoint,
        "MemberName": _member_name(answerer.endpoint),
    }
    connect = {**agent, "HoldTime": str(hold_s), "RingTime": str(ring_s)}
    b.dial("AgentConnect", caller, answerer, connect, privilege="agent")
    b.newstate(caller, 6)
    for other in others:
        b.hangup(other, "26", "Answered elsewhere")
    b.extension(answerer.endpoint, "INUSE")
    bridge = _Bridge(b.pbx.uuid())
    b.step(100, 500)
    b.bridge("BridgeCreate", bridge)
    _enter(b, bridge, caller, answerer)
    _bridge_peer(b, caller, answerer)
    for other in others:
        b.extension(other.endpoint, "NOT_INUSE")
    _bridge_peer(b, answerer, caller)
    b.device(answerer.endpoint, "INUSE")
    _bridge_peer(b, caller, answerer)
    _bridge_peer(b, answerer, caller)
    for other in others:
        b.device(other.endpoint, "NOT_INUSE")
    b.member(answerer.endpoint, "INUSE", in_call=True)
    _bridge_peer(b, caller, answerer)
    for other in others:
        b.member(other.endpoint, "NOT_INUSE")
    b.device(f"Queue:{_QUEUE}_avail", "NOT_INUSE")
    _bridge_peer(b, answerer, caller)

    b.wait_until(answered_us + spec.talk_us)
    talk = max(0, b.t - answered_us)
    bridge.technology = "native_rtp"
    complete = {**agent, "HoldTime": str(hold_s), "TalkTime": str(talk // _US)}
    if spec.hangup_by == "caller":
        _rtp_exchange(b, caller, answerer, talk)
        b.hangup_request(caller, None)
        b.dial(
            "AgentComplete", caller, answerer, {**complete, "Reason": "caller"}, privilege="agent"
        )
        _clear_peers(b, caller, answerer)
        bridge.channels = 1
        b.bridge("BridgeLeave", bridge, caller)
        _answered_vars(b, caller, answered_us, dial_us, False)
        b.soft_hangup(caller)
        b.step(300, 1500)
        bridge.channels = 0
        b.bridge("BridgeLeave", bridge, answerer)
        b.bridge("BridgeDestroy", bridge)
        _rtp_own(b, answerer, talk, _RTP_ALL if fl.name == "pjsip" else ("RTPAUDIOQOS",))
        b.hangup(answerer, "16", "Normal Clearing")
        b.hangup(caller, "16", "Normal Clearing")
        b.step(300, 1500)
        b.device(answerer.endpoint, "NOT_INUSE")
        b.trunk("UNAVAILABLE")
        b.member(answerer.endpoint, "NOT_INUSE", completed=True)
        b.extension(answerer.endpoint, "NOT_INUSE")
        return caller
    _rtp_exchange(b, answerer, caller, talk)
    b.hangup_request(answerer, "16")
    b.dial("AgentComplete", caller, answerer, {**complete, "Reason": "agent"}, privilege="agent")
    _clear_peers(b, answerer, caller)
    bridge.channels = 1
    b.bridge("BridgeLeave", bridge, answerer)
    _rtp_own(b, answerer, talk, _RTP_ALL if fl.name == "pjsip" else ("RTPAUDIOQOS",))
    b.hangup(answerer, "16", "Normal Clearing")
    b.device(answerer.endpoint, "NOT_INUSE")
    b.member(answerer.endpoint, "NOT_INUSE", completed=True)
    b.extension(answerer.endpoint, "NOT_INUSE")
    bridge.channels = 0
    b.bridge("BridgeLeave", bridge, caller)
    b.bridge("BridgeDestroy", bridge)
    _answered_vars(b, caller, answered_us, dial_us, False)
    b.soft_hangup(caller)
    _rtp_own(b, caller, talk, _RTP_ALL if fl.name == "pjsip" else ("RTPAUDIOQOS",))
    b.hangup(caller, "16", "Normal Clearing")
    b.trunk("UNAVAILABLE")
    return caller


def _spot_check(b: _Builder, spec: _CallSpec) -> _Chan:
    """AMI ``Originate`` of the desk phone into ``[originate-target]`` (Answer, Wait, Hangup)."""
    fl = b.flavour
    phone = spec.phones[0]
    res = _resource(phone)
    b.pbx.spot_checks += 1
    action_id = f"spot-check-{b.pbx.spot_checks}"
    ch = b.channel(phone, context="from-phones", exten="s")
    ch.call_id = b.pbx.phone_call_id()
    b.newchannel(ch)
    b.mark("start")
    if fl.name == "sip":
        b.varset(ch, "SIPCALLID", ch.call_id)
    ch.exten = ""
    b.newexten(ch, "AppDial2", "(Outgoing Line)")
    b.varset(ch, "SPOTCHECK", "1")
    ch.cid_num, ch.cid_name = spec.line, "Duty spot check"
    b.newcallerid(ch)
    ch.cl_num, ch.cl_name = spec.line, "Duty spot check"
    b.newconnectedline(ch)
    b.step(500, 1800)
    b.dial("DialBegin", None, ch, {"DialString": res})
    dial_us = b.t
    b.step(1500, 3000)
    b.newstate(ch, 5)
    b.mark("ring")
    b.desk(phone, "RINGING", "dxm")
    b.dial("DialState", None, ch, {"DialStatus": "RINGING"})
    ring_start = b.marks["ring"]
    originate = {"ActionID": action_id}
    if spec.ring_us >= int(SPOT_CHECK_TIMEOUT * _US):
        # nobody answers within the Originate timeout: the dial gives up, Originate fails
        b.wait_until(dial_us + int(SPOT_CHECK_TIMEOUT * _US) + b.rng.randint(500, 3000))
        b.dial("DialEnd", None, ch, {"DialStatus": "NOANSWER"})
        b.mark_last("ring_end")
        b.hangup(ch, *fl.dropped_cause)
        b.desk(phone, "NOT_INUSE", "dmx")
        b.emit(
            "OriginateResponse",
            "call",
            fields={
                **originate,
                "Response": "Failure",
                "Channel": phone,
                "Context": "originate-target",
                "Exten": "s",
                "Reason": "3",
                "Uniqueid": "<null>",
                "CallerIDNum": spec.line,
                "CallerIDName": "Duty spot check",
            },
        )
        return ch
    b.wait_until(ring_start + spec.ring_us)
    b.answer(ch)
    answered_us = b.marks["answer"]
    b.dial("DialEnd", None, ch, {"DialStatus": "ANSWER"})
    b.desk(phone, "INUSE", "xdm")
    ch.context, ch.exten = "originate-target", "s"
    b.newexten(ch, "NoOp", f"Originate spot check answered by {ch.name}", 1)
    b.newexten(ch, "Answer", "", 2)
    wait = spec.talk_us / _US
    b.newexten(ch, "Wait", f"{wait:g}", 3)
    b.emit(
        "OriginateResponse",
        "call",
        fields={
            **originate,
            "Response": "Success",
            "Channel": ch.name,
            "Context": "originate-target",
            "Exten": "s",
            "Reason": "4",
            "Uniqueid": ch.uniqueid,
            "CallerIDNum": spec.line,
            "CallerIDName": "Duty spot check",
        },
    )
    b.wait_until(answered_us + spec.talk_us)
    talk = b.t - answered_us
    b.newexten(ch, "Hangup", "", 4)
    b.soft_hangup(ch)
    _rtp_own(b, ch, talk)
    if fl.name == "sip":
        _rtp_own(b, ch, talk, ("RTPAUDIOQOS",))
    b.hangup(ch, "16", "Normal Clearing")
    b.desk(phone, "NOT_INUSE", "dmx")
    return ch


_BUILDERS: dict[Kind, Callable[[_Builder, _CallSpec], _Chan]] = {
    "answered": _dial_call,
    "no_answer": _dial_call,
    "abandoned": _dial_call,
    "busy": _dial_call,
    "failed": _dial_call,
    "forwarded_mobile": _dial_call,
    "ring_group_answered": _dial_call,
    "queue_answered": _queue_call,
    "spot_check": _spot_check,
}


def _build(pbx: _Pbx, spec: _CallSpec, start_us: int) -> tuple[list[_Ev], Scenario]:
    """One call's raw events (device facts not settled yet) and its ground truth."""
    b = _Builder(pbx, start_us)
    root = _BUILDERS[spec.kind](b, spec)
    hangups = [ev for ev in b.events if ev.headers["Event"] == "Hangup"]
    ended = max(ev.t for ev in hangups)
    cause = next(
        int(ev.headers["Cause"]) for ev in hangups if ev.headers["Uniqueid"] == root.uniqueid
    )
    ring = b.marks.get("ring")
    answer = b.marks.get("answer")
    if ring is None:
        ring_seconds = 0.0
    else:
        ring_end = answer if answer is not None else b.marks.get("ring_end", ended)
        ring_seconds = _secs(min(ring_end, ended) - ring)
    forwarded_to = spec.forward_to if spec.kind == "forwarded_mobile" else None
    outcome: Outcome
    if answer is not None:
        outcome = "answered"
    elif spec.kind in ("no_answer", "spot_check"):
        outcome = "no_answer"
    else:
        outcome = cast(Outcome, spec.kind)
    spot = spec.kind == "spot_check"
    scenario = Scenario(
        linkedid=root.linkedid,
        kind=spec.kind,
        flavour=pbx.flavour.name,
        caller=spec.line if spot else spec.caller,
        dialed=_resource(spec.phones[0]) if spot else spec.line,
        line=spec.line,
        direction="internal" if spot else "inbound",
        outcome=outcome,
        answered_by=b.answered_by,
        forwarded_to=forwarded_to,
        ring_seconds=ring_seconds,
        talk_seconds=_secs(ended - answer) if answer is not None else None,
        started_at=_from_us(b.marks["start"]),
        answered_at=_from_us(answer) if answer is not None else None,
        ended_at=_from_us(ended),
        hangup_cause=cause,
        desk_phones=spec.phones,
    )
    return b.events, scenario


def _talk_us(rng: Random) -> int:
    """Conversation length: median about a minute, a long tail up to 15 minutes."""
    seconds = min(900.0, max(8.0, rng.lognormvariate(math.log(60.0), 0.85)))
    return int(seconds * _US)


def _default_ring(kind: Kind, rng: Random) -> float:
    if kind == "abandoned":
        return rng.uniform(3.0, 12.0)
    if kind == "forwarded_mobile":
        return rng.uniform(2.0, 12.0)
    if kind == "spot_check":
        return rng.uniform(2.0, 8.0)
    return rng.uniform(3.0, 10.0)


_RING_LIMITS: dict[Kind, float] = {
    "answered": DUTY_RING_TIMEOUT,
    "ring_group_answered": DUTY_RING_TIMEOUT,
    "abandoned": DUTY_RING_TIMEOUT,
    "forwarded_mobile": MOBILE_RING_TIMEOUT,
    "queue_answered": QUEUE_RING_TIMEOUT,
}


def _spec(
    kind: Kind,
    fl: _Flavour,
    rng: Random,
    *,
    line: str | None,
    desk_phones: Sequence[str] | None,
    caller: str | None,
    ring_seconds: float | None,
    talk_seconds: float | None,
    hangup_by: HangupBy | None,
    answer_on: str | None,
    forward_to: str | None,
    unavailable: frozenset[str] = frozenset(),
) -> _CallSpec:
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; one of {', '.join(KINDS)}")
    group = kind in ("ring_group_answered", "queue_answered")
    phones = tuple(desk_phones) if desk_phones else (fl.group_phones if group else fl.duty_phones)
    for phone in phones:
        if not phone.startswith(f"{fl.tech}/"):
            raise ValueError(f"desk phone {phone!r} is not a {fl.tech} endpoint ({fl.name})")
    ring = _default_ring(kind, rng) if ring_seconds is None else float(ring_seconds)
    limit = _RING_LIMITS.get(kind)
    if ring <= 0 or (limit is not None and ring >= limit):
        raise ValueError(f"ring_seconds {ring} out of range for {kind} (0 < ring < {limit})")
    if talk_seconds is not None:
        talk_us = int(float(talk_seconds) * _US)
    elif kind == "spot_check":
        talk_us = 3 * _US  # [originate-target] Wait(3)
    else:
        talk_us = _talk_us(rng)
    if hangup_by is None:
        hangup_by = "caller" if rng.random() < 0.6 else "callee"
    return _CallSpec(
        kind=kind,
        line=line or _DEFAULT_LINES.get(kind, "12345"),
        caller=caller or _random_caller(rng),
        phones=phones,
        ring_us=int(ring * _US),
        talk_us=max(_US, talk_us),
        hangup_by=hangup_by,
        answer_on=answer_on,
        forward_to=forward_to or _mobile_number(rng),
        unavailable=unavailable,
    )


def _counters(seq: Iterator[int] | Counters | None, rng: Random) -> Counters:
    if seq is None:
        return Counters(rng.randint(100, 900))
    if isinstance(seq, Counters):
        return seq
    return _IteratorCounters(seq)


def generate_call(
    kind: Kind,
    *,
    rng: Random,
    start: datetime,
    uniqueid_seq: Iterator[int] | Counters | None = None,
    flavour: Flavour = "sip",
    line: str | None = None,
    desk_phones: Sequence[str] | None = None,
    caller: str | None = None,
    ring_seconds: float | None = None,
    talk_seconds: float | None = None,
    hangup_by: HangupBy | None = None,
    answer_on: str | None = None,
    forward_to: str | None = None,
) -> tuple[list[Event], Scenario]:
    """One call's AMI events (time-ordered, each with ``Timestamp``) and its ground truth.

    ``kind`` picks the flow (see :data:`KINDS`); ``start`` is the caller's ``Newchannel``.
    ``uniqueid_seq`` numbers the channels: a :class:`Counters` shared between calls, or any
    ``Iterator[int]`` (then one number gives both the Uniqueid sequence and the channel
    counter). ``line`` defaults to 12345 (12346 ring group, 12347 queue); ``desk_phones`` to
    the flavour's duty desk phone (both desk phones for a ring group or the queue).
    ``ring_seconds`` (the callee's ringing until the answer, the caller's hang-up or, for
    ``abandoned``, the CANCEL) and ``talk_seconds`` are drawn from ``rng`` when not given; a
    spot check rung 15 s or longer is not answered (the Originate times out). ``hangup_by``
    says who ends an answered call, ``answer_on`` which of several phones answers,
    ``forward_to`` the mobile a ``forwarded_mobile`` call goes to.
    """
    fl = _flavour(flavour)
    spec = _spec(
        kind,
        fl,
        rng,
        line=line,
        desk_phones=desk_phones,
        caller=caller,
        ring_seconds=ring_seconds,
        talk_seconds=talk_seconds,
        hangup_by=hangup_by,
        answer_on=answer_on,
        forward_to=forward_to,
    )
    start_us = _to_us(start)
    pbx = _Pbx(rng, fl, _counters(uniqueid_seq, rng), start_us - 7 * 86_400 * _US)
    events, scenario = _build(pbx, spec, start_us)
    return list(_settled(events)), scenario


# ----------------------------------------------------------------------------- devices offline


def _contact_uri(endpoint: str) -> str:
    res = _resource(endpoint)
    port = 5170 + (int(res) % 100 if res.isdigit() else 1)
    return f"sip:{res}@{_LAB_IP}:{port}"


def _offline_events(pbx: _Pbx, endpoint: str, start_us: int, duration_us: int) -> list[_Ev]:
    """A desk phone stops answering qualify, and comes back ``duration_us`` later."""
    fl = pbx.flavour
    if not endpoint.startswith(f"{fl.tech}/"):
        raise ValueError(f"{endpoint!r} is not a {fl.tech} endpoint ({fl.name})")
    b = _Builder(pbx, start_us)
    b.linkedid = ""
    peer = {"ChannelType": fl.tech, "Peer": endpoint}
    if fl.name == "sip":
        b.emit("PeerStatus", "system", fields={**peer, "PeerStatus": "Unreachable", "Time": "-1"})
        b.wait_until(start_us + duration_us)
        b.emit("PeerStatus", "system", fields={**peer, "PeerStatus": "Reachable"})
        return b.events
    res = _resource(endpoint)
    contact = {"URI": _contact_uri(endpoint)}
    aor = {"AOR": res, "EndpointName": res}

    def device(kind: Literal["state", "ext", "member"], state: str) -> None:
        fact = _Dev(kind, endpoint, state, None)
        if kind == "state":
            b.emit(
                "DeviceStateChange", "call", fields={"Device": endpoint, "State": state}, dev=fact
            )
        elif kind == "ext":
            code, text = _EXT_STATUS[state]
            fields = {"Exten": res, "Context": "from-phones", "Hint": endpoint}
            b.emit(
                "ExtensionStatus",
                "call",
                fields={**fields, "Status": code, "StatusText": text},
                dev=fact,
            )
        else:
            b.emit("QueueMemberStatus", "agent", fields=_member_fields(endpoint, pbx), dev=fact)

    b.emit("PeerStatus", "system", fields={**peer, "PeerStatus": "Unreachable"})
    b.emit(
        "ContactStatus",
        "system",
        fields={**contact, "ContactStatus": "Unreachable", **aor, "RoundtripUsec": "0"},
    )
    device("state", "UNAVAILABLE")
    device("ext", "UNAVAILABLE")
    device("member", "UNAVAILABLE")
    b.wait_until(start_us + duration_us)
    device("ext", "NOT_INUSE")
    device("state", "NOT_INUSE")
    b.emit("PeerStatus", "system", fields={**peer, "PeerStatus": "Reachable"})
    roundtrip = str(pbx.rng.randint(1_500, 45_000))
    b.emit(
        "ContactStatus",
        "system",
        fields={**contact, "ContactStatus": "Reachable", **aor, "RoundtripUsec": roundtrip},
    )
    device("member", "NOT_INUSE")
    return b.events


def generate_offline(
    endpoint: str,
    start: datetime,
    duration: float | timedelta,
    flavour: Flavour = "sip",
    *,
    rng: Random | None = None,
) -> list[Event]:
    """A desk phone unreachable from ``start`` for ``duration`` (seconds or a timedelta).

    chan_sip: ``PeerStatus`` Unreachable / Reachable (phone_offline.jsonl); chan_pjsip:
    ``PeerStatus``, ``ContactStatus``, ``DeviceStateChange``, ``ExtensionStatus`` and
    ``QueueMemberStatus`` (pj_contact_unreachable.jsonl).
    """
    seconds = duration.total_seconds() if isinstance(duration, timedelta) else float(duration)
    if seconds <= 0:
        raise ValueError("duration must be positive")
    start_us = _to_us(start)
    rng = rng or Random(start_us)
    pbx = _Pbx(rng, _flavour(flavour), Counters(), start_us - 7 * 86_400 * _US)
    return list(_settled(_offline_events(pbx, endpoint, start_us, int(seconds * _US))))


# ----------------------------------------------------------------------------- duty days

#: Relative call volume per local hour (office hours busy, nights quiet).
_HOURLY = (
    0.25, 0.2, 0.15, 0.15, 0.15, 0.2, 0.35, 0.7, 1.5, 2.0, 2.0, 1.8,
    1.2, 1.1, 1.7, 1.9, 1.8, 1.5, 1.0, 0.8, 0.7, 0.6, 0.45, 0.35,
)  # fmt: skip
_HOURLY_MEAN = sum(_HOURLY) / len(_HOURLY)
#: The kinds of ordinary calls, in per cent, by day (08-18 h) and by night (22-07 h).
_MIX_DAY: dict[Kind, float] = {
    "answered": 72,
    "no_answer": 5,
    "abandoned": 6,
    "busy": 4,
    "forwarded_mobile": 1,
    "ring_group_answered": 7,
    "queue_answered": 5,
}
_MIX_NIGHT: dict[Kind, float] = {
    "answered": 60,
    "no_answer": 12,
    "abandoned": 7,
    "busy": 3,
    "forwarded_mobile": 8,
    "ring_group_answered": 6,
    "queue_answered": 4,
}
#: Supervisors' spot checks: morning, afternoon and evening windows (local hours).
_SPOT_WINDOWS = ((9.0, 10.5), (14.5, 16.0), (19.5, 21.0))
_DUTY_KINDS = frozenset({"answered", "no_answer", "abandoned", "busy"})


@dataclass(order=True, slots=True)
class _Planned:
    t: int
    seq: int
    realize: Callable[[_Pbx], tuple[list[_Ev], Scenario | None]] = field(compare=False)


class _Day:
    """Plans duty days: when calls come, of which kind, spot checks, a phone offline."""

    def __init__(self, rng: Random, fl: _Flavour, calls_per_hour: float) -> None:
        if calls_per_hour < 0:
            raise ValueError("calls_per_hour must not be negative")
        self.rng = rng
        self.fl = fl
        self.calls_per_hour = calls_per_hour
        self.callers = [_random_caller(rng) for _ in range(150)]
        self.mobile = _mobile_number(rng)
        self.seq = itertools.count()

    def plan(self, start_us: int, hours: float) -> list[_Planned]:
        rng, fl = self.rng, self.fl
        end_us = start_us + int(hours * 3600 * _US)
        items: list[_Planned] = []
        spots = self._spot_times(start_us, end_us)
        for t in spots:
            answered = rng.random() >= (0.2 if _local_hour(t) >= 19 else 0.1)
            spot_ring = rng.uniform(2.0, 9.0) if answered else SPOT_CHECK_TIMEOUT
            items.append(self._call(t, "spot_check", ring_seconds=spot_ring))
        window = self._offline_window(start_us, end_us, spots)
        desk = fl.duty_phones[0]
        if window is not None:
            off_start, off_end = window
            items.append(
                _Planned(
                    off_start,
                    next(self.seq),
                    lambda pbx: (_offline_events(pbx, desk, off_start, off_end - off_start), None),
                )
            )
            at = off_start + int((off_end - off_start) * rng.uniform(0.2, 0.8))
            items.append(self._call(at, "failed"))
        for t in self._arrivals(start_us, end_us):
            kind = self._kind(t)
            offline = window is not None and window[0] <= t < window[1]
            unavailable: frozenset[str] = frozenset()
            if offline and kind in _DUTY_KINDS:
                kind = "failed"
            elif offline and kind in ("ring_group_answered", "queue_answered"):
                unavailable = frozenset({desk})
            ring: float | None = None
            if kind == "answered":
                slow = rng.random() < (0.2 if _local_hour(t) < 7 or _local_hour(t) >= 22 else 0.1)
                ring = rng.uniform(16.0, 19.5) if slow else rng.uniform(3.0, 10.0)
            items.append(self._call(t, kind, ring_seconds=ring, unavailable=unavailable))
        items.sort()
        return items

    def _call(
        self,
        t: int,
        kind: Kind,
        *,
        ring_seconds: float | None = None,
        unavailable: frozenset[str] = frozenset(),
    ) -> _Planned:
        rng = self.rng
        caller = rng.choice(self.callers) if rng.random() < 0.65 else _random_caller(rng)

        def realize(pbx: _Pbx) -> tuple[list[_Ev], Scenario | None]:
            spec = _spec(
                kind,
                self.fl,
                pbx.rng,
                line=None,
                desk_phones=None,
                caller=caller,
                ring_seconds=ring_seconds,
                talk_seconds=None,
                hangup_by=None,
                answer_on=None,
                forward_to=self.mobile,
                unavailable=unavailable,
            )
            return _build(pbx, spec, t)

        return _Planned(t, next(self.seq), realize)

    def _kind(self, t: int) -> Kind:
        hour = _local_hour(t)
        if 8 <= hour < 18:
            mix = _MIX_DAY
        elif hour >= 22 or hour < 7:
            mix = _MIX_NIGHT
        else:
            mix = {k: (_MIX_DAY[k] + _MIX_NIGHT[k]) / 2 for k in _MIX_DAY}
        kinds = list(mix)
        return self.rng.choices(kinds, weights=[mix[k] for k in kinds])[0]

    def _arrivals(self, start_us: int, end_us: int) -> Iterator[int]:
        """Poisson arrivals following the hourly profile (thinning)."""
        if self.calls_per_hour <= 0:
            return
        peak = self.calls_per_hour * max(_HOURLY) / _HOURLY_MEAN
        t = float(start_us)
        while True:
            t += self.rng.expovariate(peak / 3600.0) * _US
            if t >= end_us:
                return
            hour = int(_local_hour(int(t))) % 24
            if self.rng.random() < _HOURLY[hour] / max(_HOURLY):
                yield int(t)

    def _spot_times(self, start_us: int, end_us: int) -> list[int]:
        out: list[int] = []
        local = _from_us(start_us).astimezone(DISPLAY_TZ)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        day = _to_us(midnight)
        while day < end_us:
            for low, high in _SPOT_WINDOWS:
                t = day + int(self.rng.uniform(low, high) * 3600 * _US)
                if start_us <= t < end_us:
                    out.append(t)
            day += _DAY_US
        return out

    def _offline_window(
        self, start_us: int, end_us: int, spots: Sequence[int]
    ) -> tuple[int, int] | None:
        """Once a day a desk phone drops off the network for 4-20 minutes."""
        if end_us - start_us < 3600 * _US:
            return None
        for _ in range(50):
            duration = int(self.rng.uniform(4.0, 20.0) * 60 * _US)
            low, high = start_us + 15 * 60 * _US, end_us - duration - 15 * 60 * _US
            if high <= low:
                return None
            begin = self.rng.randint(low, high)
            margin = 5 * 60 * _US
            if all(not (begin - margin <= s < begin + duration + margin) for s in spots):
                return begin, begin + duration
        return None


def _run(
    pbx: _Pbx, plan: Iterable[_Planned], on_scenario: Callable[[Scenario], None]
) -> Iterator[Event]:
    """Realize the planned items in time order and merge their events into one stream."""
    heap: list[tuple[int, int, _Ev]] = []
    tie = itertools.count()
    devices = _Devices()
    for item in plan:
        while heap and heap[0][0] < item.t:
            headers = devices.settle(heapq.heappop(heap)[2])
            if headers is not None:
                yield headers
        events, scenario = item.realize(pbx)
        if scenario is not None:
            on_scenario(scenario)
        for ev in events:
            heapq.heappush(heap, (ev.t, next(tie), ev))
    while heap:
        headers = devices.settle(heapq.heappop(heap)[2])
        if headers is not None:
            yield headers


def generate_day(
    seed: int,
    *,
    start: datetime,
    hours: float = 24.0,
    calls_per_hour: float = 12.0,
    flavour: Flavour = "sip",
) -> tuple[list[Event], list[Scenario]]:
    """A duty day: every event in time order, and one :class:`Scenario` per call.

    The mix, in per cent of ordinary calls by day / by night (``_MIX_DAY``/``_MIX_NIGHT``):
    answered 72/60 (rung 3-10 s; one in ten, by night one in five, slow at 16-19.5 s, under
    the 20 s ring timeout), no answer 5/12, abandoned 6/7 (after 3-12 s), busy 4/3, forwarded
    to the duty officer's mobile 1/8, ring group 7/6, queue 5/4; evenings in between. Spot
    checks thrice a day (09:00-10:30, 14:30-16:00, 19:30-21:00 local; one in ten, in the
    evening one in five, unanswered), and once a day the duty desk phone unreachable for
    4-20 minutes: calls to its line fail meanwhile (at least one does), ring groups and the
    queue ring the other phone. Volume follows office hours (``calls_per_hour`` is the daily
    average); calls overlap freely. ``hours`` over 24 plans day by day.
    """
    rng = Random(seed)
    fl = _flavour(flavour)
    start_us = _to_us(start)
    pbx = _Pbx(rng, fl, Counters(rng.randint(100, 900)), start_us - rng.randint(1, 30) * 3600 * _US)
    days = _Day(rng, fl, calls_per_hour)
    plan: list[_Planned] = []
    for day in range(math.ceil(hours / 24)):  # planned day by day: once a day, thrice a day
        plan.extend(days.plan(start_us + day * _DAY_US, min(24.0, hours - 24 * day)))
    scenarios: list[Scenario] = []
    events = list(_run(pbx, plan, scenarios.append))
    return events, scenarios


def generate_stream(
    seed: int,
    *,
    start: datetime | None = None,
    calls_per_hour: float = 120.0,
    flavour: Flavour = "sip",
    counters: Counters | None = None,
) -> Iterator[Event]:
    """An endless, time-ordered event stream: duty day after duty day from ``start``.

    ``start`` defaults to :data:`DEFAULT_EPOCH` (the stream stays pure; the replay server
    shifts timestamps to now). Uniqueids and channel counters keep counting across days;
    given ``counters``, the stream numbers its channels with them (set to the seed's first
    numbers), so calls made beside it (a spot check's) can share one numbering.
    """
    rng = Random(seed)
    fl = _flavour(flavour)
    start_us = _to_us(start or DEFAULT_EPOCH)
    first = Counters(rng.randint(100, 900))
    if counters is None:
        counters = first
    else:
        counters.uniqueid, counters.channel = first.uniqueid, first.channel
    pbx = _Pbx(rng, fl, counters, start_us - rng.randint(1, 30) * 3600 * _US)
    days = _Day(rng, fl, calls_per_hour)

    def plan() -> Iterator[_Planned]:
        day = start_us
        while True:
            yield from days.plan(day, 24.0)
            day += _DAY_US

    return _run(pbx, plan(), lambda _scenario: None)
