"""CallTracker: AMI events in, finished call records out. Pure: no I/O, time from the events.

Feed it every event (``feed``); it follows channels by Uniqueid, groups them by Linkedid,
and when the last channel of a Linkedid hangs up it hands back the finished ``Call``. The
judgement (who answered, outcome, forwards) is done once at the end by ``interpret``.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from callcenter.tracking.ami_events import DOCUMENTED_EVENTS
from callcenter.tracking.channels import CallState, ChannelState, DialLink
from callcenter.tracking.directory import EMPTY, Directory
from callcenter.tracking.interpret import interpret
from callcenter.tracking.names import event_seconds, to_cause, to_datetime
from callcenter.tracking.records import Call, ClosedBy, RingingCall

logger = logging.getLogger(__name__)

Event = Mapping[str, Any]
Handler = Callable[[Event, "float | None"], None]  # event, its time in epoch seconds

DEFAULT_IDLE_TIMEOUT = 7200.0
MAX_UNKNOWN_TYPES_REPORTED = 100  # a damaged stream must not grow the set without bound
_PREFIXES = ("", "Dest", "Transferer", "Transferee", "OrigTransferer", "SecondTransferer",
             "TransferTarget", "LocalOne", "LocalTwo", "Target")  # fmt: skip
_KEYS = {
    p: tuple(
        p + k for k in ("Uniqueid", "Linkedid", "Channel", "CallerIDNum", "CallerIDName", "Exten")
    )
    for p in _PREFIXES
}
_SWEEP_EVERY = 60.0  # seconds of event time between idle sweeps


class CallTracker:
    """Follows channels and calls from AMI events; see the module docstring."""

    def __init__(
        self,
        directory: Directory = EMPTY,
        *,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        on_warning: Callable[[str], None] | None = None,
        remember_gone: int = 50_000,
    ) -> None:
        self.directory = directory
        self.idle_timeout = float(idle_timeout)
        self._warn = on_warning or logger.warning
        self._remember_gone = remember_gone
        self.channels: dict[str, ChannelState] = {}
        self.calls: dict[str, CallState] = {}
        self._by_name: dict[str, str] = {}
        self._seen: dict[str, int] = {}  # Uniqueid -> sequence number of its last event
        # Uniqueids and Linkedids of finished calls (insertion-ordered sets, bounded)
        self._gone: OrderedDict[str, None] = OrderedDict()
        self._finished: OrderedDict[str, None] = OrderedDict()
        self._done: list[Call] = []
        self._seq = 0
        self._next_sweep: float | None = None
        self.events_seen = 0
        self.events_skipped = 0
        self._unknown_types: set[str] = set()
        self._handlers: dict[str, Handler] = {
            "Newchannel": self._on_newchannel,
            "Newstate": self._on_newstate,
            "NewCallerid": self._on_newcallerid,
            "DialBegin": self._on_dial_begin,
            "DialState": self._on_dial_state,
            "DialEnd": self._on_dial_end,
            "Hangup": self._on_hangup,
            "HangupRequest": self._on_touch,
            "SoftHangupRequest": self._on_touch,
            "BridgeEnter": self._on_touch,
            "BridgeLeave": self._on_touch,
            "Hold": self._on_touch,
            "Unhold": self._on_touch,
            "NewConnectedLine": self._on_touch,
            "LocalOptimizationBegin": self._on_touch,
            "LocalOptimizationEnd": self._on_touch,
            "LocalBridge": self._on_local_bridge,
            "Rename": self._on_rename,
            "BlindTransfer": self._on_blind_transfer,
            "AttendedTransfer": self._on_attended_transfer,
            "Pickup": self._on_pickup,
            "QueueCallerJoin": self._on_touch,
            "QueueCallerLeave": self._on_touch,
            "QueueCallerAbandon": self._on_queue_abandon,
            "AgentConnect": self._on_touch,
            "OriginateResponse": self._on_originate_response,
        }

    # -- public API ---------------------------------------------------------------

    @property
    def handled_events(self) -> frozenset[str]:
        """The AMI events this tracker uses (the listener subscribes to these)."""
        return frozenset(self._handlers)

    def feed(self, event: Event) -> list[Call]:
        """Process one AMI event; return the calls it finished (usually none)."""
        self._seq += 1
        self.events_seen += 1
        name = event.get("Event")
        handler = self._handlers.get(name) if isinstance(name, str) else None
        if handler is None:
            # an event the tracker does not use (most VarSet/Newexten traffic)
            if isinstance(name, str) and name not in DOCUMENTED_EVENTS:
                self._unknown_event(name)
            return []
        at = event_seconds(event)
        if at is not None:
            self._advance(at)
        try:
            handler(event, at)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            self.events_skipped += 1
            self._warn(f"skipped malformed {name} event (#{self._seq}): {exc!r}")
        return self._drain() if self._done else []

    def _unknown_event(self, name: str) -> None:
        if name in self._unknown_types:
            return
        if len(self._unknown_types) < MAX_UNKNOWN_TYPES_REPORTED:
            self._unknown_types.add(name)
            self._warn(
                f"ignored an event of unknown type {name[:80]!r} (#{self._seq}); "
                "later events of this type are ignored silently"
            )

    def feed_all(self, events: Iterable[Event]) -> list[Call]:
        out: list[Call] = []
        for event in events:
            out.extend(self.feed(event))
        return out

    def expire(self, now: datetime) -> list[Call]:
        """Close calls whose events stopped more than ``idle_timeout`` before ``now``."""
        self._close_idle(now.timestamp())
        return self._drain()

    def _close_idle(self, now: float) -> None:
        limit = now - self.idle_timeout
        for call in [c for c in self.calls.values() if c.last_at is not None and c.last_at < limit]:
            self._finish(call, "idle")

    def flush(self) -> list[Call]:
        """Close every open call (end of input): they are reported as ``closed_by: idle``."""
        for call in sorted(self.calls.values(), key=lambda c: c.last_seq):
            self._finish(call, "idle")
        return self._drain()

    def ringing(self, now: datetime | None = None) -> list[RingingCall]:
        """Live state: calls where a callee rings now and nobody has answered yet."""
        out: list[RingingCall] = []
        for call in self.calls.values():
            legs = [self.channels[u] for u in call.legs if u in self.channels]
            root = self.channels.get(call.linkedid) or (legs[0] if legs else None)
            if root is None:
                continue
            callees = [c for c in legs if c is not root and not c.local and c.dial is not None]
            if root.dial is not None and root.dial.parent is None and not root.local:
                callees.append(root)  # an Originate rings its own first channel (spot check)
            if any(c.up_seq is not None for c in callees):
                continue
            ringing = [c for c in callees if c.state == "Ringing" and not c.hung_up]
            if not ringing:
                continue
            since = min((c.ringing_at for c in ringing if c.ringing_at), default=None)
            since = since or call.last_at or (now.timestamp() if now else None)
            if since is None:
                continue
            dialed = root.exten if root.exten not in (None, "", "s") else root.dial_exten
            line = self.directory.line_for_number(dialed)
            out.append(
                RingingCall(
                    linkedid=call.linkedid,
                    caller=root.caller_num,
                    line=line.number if line else dialed,
                    ringing_since=to_datetime(since),  # type: ignore[arg-type]
                    endpoints=tuple(sorted({c.endpoint for c in ringing})),
                )
            )
        return out

    @property
    def open_calls(self) -> int:
        return len(self.calls)

    @property
    def event_seq(self) -> int:
        """Sequence number of the last event fed: a mark to pass to :meth:`resync`."""
        return self._seq

    def resync(
        self, channels_up: Iterable[Event], when: datetime, *, since: int | None = None
    ) -> list[Call]:
        """Re-sync after events were missed (listener outage, PBX restart).

        ``channels_up`` are the ``CoreShowChannel`` entries the PBX lists as up now. Tracked
        channels not among them hung up during the outage: they end now. Listed channels
        the tracker does not know began during the outage: they are followed from now on.
        Either way the times that could not be observed are estimates, and the calls say so.

        ``since`` is :attr:`event_seq` taken when the listing was asked for: a channel with
        an event after it (one created or still talking while the listing was on its way)
        is alive whatever the listing says, and is not ended.
        """
        self._seq += 1
        at = when.timestamp()
        listed = {str(e.get("Uniqueid")): e for e in channels_up if e.get("Uniqueid")}
        for uid, ch in list(self.channels.items()):
            if ch.hung_up or uid in listed or ch.uniqueid in self._gone:
                continue
            if since is not None and self._seen.get(uid, 0) > since:
                continue  # seen after the listing was asked for: alive
            call = self.calls.get(ch.linkedid)
            if call is None:
                continue
            call.times_estimated = True
            ch.hangup_seq, ch.hangup_at = self._seq, at
            call.live.discard(uid)
            call.hangups += 1
            if not call.live:
                self._finish(call, "hangup")
        for uid, entry in listed.items():
            known = uid in self.channels
            found = self._touch(entry, at)
            live_call = self.calls.get(found.linkedid) if found is not None else None
            if found is None or live_call is None:
                continue
            ch, call = found, live_call
            state = str(entry.get("ChannelStateDesc") or "")
            if not known:
                call.times_estimated = True
                ch.created_at = _minus_duration(at, entry.get("Duration"))
                ch.state = state
                if uid != ch.linkedid and ch.dial is None:
                    ch.dial = DialLink(
                        parent=ch.linkedid, dialstring="", begin_seq=self._seq, begin_at=None
                    )
                    if state == "Up":
                        ch.dial.end_status = "ANSWER"
            if state == "Up" and ch.up_seq is None:
                call.times_estimated = True
                ch.up_seq, ch.up_at = self._seq, at
        return self._drain()

    # -- channel bookkeeping ------------------------------------------------------------

    def _advance(self, at: float) -> None:
        """Event time moves on: every minute of it, close the calls that went silent."""
        if self._next_sweep is None or at < self._next_sweep - 2 * _SWEEP_EVERY:
            self._next_sweep = at + _SWEEP_EVERY  # the first event, or time jumped back
        elif at >= self._next_sweep:
            self._next_sweep = at + _SWEEP_EVERY
            self._close_idle(at)

    def _touch(self, e: Event, at: float | None, prefix: str = "") -> ChannelState | None:
        """The channel an event names (with ``prefix``: Dest, Transferer, ...), created on
        first sight, moved when its Linkedid changed; None for channels not followed."""
        k_uid, k_linkedid, k_channel, k_cid, k_cname, k_exten = _KEYS[prefix]
        uid = e.get(k_uid)
        if not uid or uid in self._gone:
            return None
        ch = self.channels.get(uid)
        linkedid = e.get(k_linkedid)
        if ch is None:
            name = e.get(k_channel)
            if linkedid in self._finished:
                return None  # a straggler of a call already reported (joined mid-stream)
            if not linkedid or not name:
                self.events_skipped += 1
                self._warn(
                    f"{e.get('Event')} event (#{self._seq}) names channel {name or uid} "
                    "without a Linkedid: not tracked"
                )
                return None
            ch = ChannelState(uid, name, linkedid, self._seq, at)
            self.channels[uid] = ch
            self._by_name[name] = uid
            self._pair_local(ch)
            self._join(ch, linkedid)
        else:
            if linkedid and linkedid != ch.linkedid:
                self._move(ch, linkedid, at)
            name = e.get(k_channel)
            if name and name != ch.name:
                self._rename(ch, name)
        self._seen[uid] = self._seq
        call = self.calls.get(ch.linkedid)
        if call is not None:
            call.last_seq = self._seq
            if at is not None:
                call.last_at = at
        if ch.caller_num is None:
            cid = e.get(k_cid)
            if cid and cid != "<unknown>":
                ch.caller_num = cid
                cname = e.get(k_cname)
                ch.caller_name = cname if cname and cname != "<unknown>" else None
        if ch.exten is None:
            ch.exten = e.get(k_exten) or None
        return ch

    def _join(self, ch: ChannelState, linkedid: str) -> None:
        call = self.calls.get(linkedid)
        if call is None:
            call = CallState(linkedid, self._seq, self._seq, ch.created_at)
            self.calls[linkedid] = call
        call.legs.append(ch.uniqueid)
        if not ch.hung_up:
            call.live.add(ch.uniqueid)

    def _move(self, ch: ChannelState, linkedid: str, at: float | None) -> None:
        """The channel now belongs to another call; its past stays with the old one."""
        old = self.calls.get(ch.linkedid)
        if old is not None:
            ch.departed_from.add(old.linkedid)
        ch.linkedid = linkedid
        ch.moved_in = True
        if linkedid in self._finished:
            self._gone[ch.uniqueid] = None  # it joins a call already reported: stop following
        else:
            self._join(ch, linkedid)
        if old is not None:
            if ch.uniqueid in old.legs:
                old.legs.remove(ch.uniqueid)
                old.departed[ch.uniqueid] = (self._seq, at)
            old.live.discard(ch.uniqueid)
            if not old.live:
                self._finish(old, "hangup")

    def _rename(self, ch: ChannelState, name: str) -> None:
        if self._by_name.get(ch.name) == ch.uniqueid:
            del self._by_name[ch.name]
        ch.set_name(name)
        self._by_name[name] = ch.uniqueid

    def _pair_local(self, ch: ChannelState) -> None:
        if not ch.half:
            return
        other = self._by_name.get(ch.name[:-1] + ("2" if ch.half == 1 else "1"))
        if other is not None and other in self.channels:
            ch.partner = other
            self.channels[other].partner = ch.uniqueid

    def _finish(self, call: CallState, closed_by: ClosedBy) -> None:
        if self.calls.get(call.linkedid) is not call:
            return
        del self.calls[call.linkedid]
        record = None
        # A call none of whose channels hung up in it (they all moved on, e.g. the picker's
        # own call in a pickup) did not happen as a call of its own.
        if call.hangups or closed_by == "idle":
            try:
                record = interpret(call, self.channels, self.directory, closed_by)
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                self._warn(f"call {call.linkedid} could not be interpreted, dropped: {exc!r}")
        for uid in call.legs:
            ch = self.channels.get(uid)
            self._gone[uid] = None
            if ch is not None and not (ch.departed_from & self.calls.keys()):
                self._forget(ch)
        for uid in call.departed:
            ch = self.channels.get(uid)
            if ch is not None:
                ch.departed_from.discard(call.linkedid)
                if ch.linkedid not in self.calls and not (ch.departed_from & self.calls.keys()):
                    self._forget(ch)
        self._finished[call.linkedid] = None
        for seen in (self._gone, self._finished):
            while len(seen) > self._remember_gone:
                seen.popitem(last=False)
        if record is not None:
            self._done.append(record)

    def _forget(self, ch: ChannelState) -> None:
        del self.channels[ch.uniqueid]
        self._seen.pop(ch.uniqueid, None)
        if self._by_name.get(ch.name) == ch.uniqueid:
            del self._by_name[ch.name]

    def _drain(self) -> list[Call]:
        if not self._done:
            return []
        done, self._done = self._done, []
        return done

    # -- handlers -----------------------------------------------------------------------

    def _on_touch(self, e: Event, at: float | None) -> None:
        self._touch(e, at)

    def _on_newchannel(self, e: Event, at: float | None) -> None:
        ch = self._touch(e, at)
        if ch is not None:
            ch.state = e.get("ChannelStateDesc") or ch.state

    def _on_newstate(self, e: Event, at: float | None) -> None:
        ch = self._touch(e, at)
        if ch is None:
            return
        state = e.get("ChannelStateDesc") or ""
        ch.state = state
        if state == "Ringing" and ch.ringing_at is None:
            ch.ringing_at = at
        elif state == "Up" and ch.up_seq is None:
            ch.up_seq = self._seq
            ch.up_at = at

    def _on_newcallerid(self, e: Event, at: float | None) -> None:
        ch = self._touch(e, at)
        if ch is None or ch.dial_exten is not None or ch.up_seq is not None or ch.dial:
            return
        cid = e.get("CallerIDNum")
        if cid and cid != "<unknown>":
            ch.caller_num = cid
            name = e.get("CallerIDName")
            ch.caller_name = name if name and name != "<unknown>" else ch.caller_name

    def _dial_pair(
        self, e: Event, at: float | None
    ) -> tuple[ChannelState | None, ChannelState | None]:
        src = self._touch(e, at)
        dest = self._touch(e, at, "Dest")
        if dest is not None and dest.dial is None:
            dest.dial = DialLink(
                parent=src.uniqueid if src else None,
                dialstring=str(e.get("DialString") or ""),
                begin_seq=self._seq,
                begin_at=at,
            )
            if src is None and not e.get("Uniqueid"):
                dest.originated = True
        return src, dest

    def _on_dial_begin(self, e: Event, at: float | None) -> None:
        src = self._touch(e, at)
        dest = self._touch(e, at, "Dest")
        if dest is None:
            return
        if dest.dial is not None and src is not None and dest.dial.parent is not None:
            first = self.channels.get(dest.dial.parent)
            if first is not None and first.linkedid != src.linkedid:
                return  # re-dialed from another call (blonde transfer): the first dial stays
        dest.dial = DialLink(
            parent=src.uniqueid if src else None,
            dialstring=str(e.get("DialString") or ""),
            begin_seq=self._seq,
            begin_at=at,
        )
        if src is None:
            if not e.get("Uniqueid"):
                dest.originated = True
        elif src.dial_exten is None:
            src.dial_exten = e.get("Exten") or ""

    def _on_dial_state(self, e: Event, at: float | None) -> None:
        src, dest = self._dial_pair(e, at)
        if dest is None or dest.dial is None or not _same_dial(dest.dial, src):
            return
        if e.get("DialStatus") == "RINGING" and dest.dial.ringing_at is None:
            dest.dial.ringing_at = at
        if e.get("Forward"):
            dest.dial.forward = str(e["Forward"])

    def _on_dial_end(self, e: Event, at: float | None) -> None:
        src, dest = self._dial_pair(e, at)
        if dest is None or dest.dial is None or not _same_dial(dest.dial, src):
            return
        dest.dial.end_status = str(e.get("DialStatus") or "") or None
        dest.dial.end_seq = self._seq
        dest.dial.end_at = at
        if e.get("Forward"):
            dest.dial.forward = str(e["Forward"])

    def _on_hangup(self, e: Event, at: float | None) -> None:
        ch = self._touch(e, at)
        if ch is None or ch.hung_up:
            return
        ch.hangup_seq = self._seq
        ch.hangup_at = at
        ch.cause = to_cause(e.get("Cause"))
        call = self.calls.get(ch.linkedid)
        if call is None:
            return
        call.live.discard(ch.uniqueid)
        call.hangups += 1
        if not call.live:
            self._finish(call, "hangup")

    def _on_local_bridge(self, e: Event, at: float | None) -> None:
        one = self._touch(e, at, "LocalOne")
        two = self._touch(e, at, "LocalTwo")
        if one is not None and two is not None:
            one.partner, two.partner = two.uniqueid, one.uniqueid

    def _on_rename(self, e: Event, at: float | None) -> None:
        ch = self._touch(e, at)
        new = e.get("Newname")
        if ch is not None and new:
            self._rename(ch, str(new))

    def _on_blind_transfer(self, e: Event, at: float | None) -> None:
        transferer = self._touch(e, at, "Transferer")
        transferee = self._touch(e, at, "Transferee")
        if e.get("Result", "Success") != "Success":
            return
        party = transferer or transferee
        call = self.calls.get(party.linkedid) if party is not None else None
        if call is not None and call.transfer_seq is None:
            call.transfer_seq = self._seq
            call.transferred_to = str(e.get("Extension") or "") or None

    def _on_attended_transfer(self, e: Event, at: float | None) -> None:
        orig = self._touch(e, at, "OrigTransferer")
        second = self._touch(e, at, "SecondTransferer")
        self._touch(e, at, "Transferee")
        target = self._touch(e, at, "TransferTarget")
        if e.get("Result", "Success") != "Success" or orig is None:
            return
        call = self.calls.get(orig.linkedid)
        if call is None or call.transfer_seq is not None:
            return
        call.transfer_seq = self._seq
        call.transferred_to = self._consult_number(second, target, e)

    def _consult_number(
        self, second: ChannelState | None, target: ChannelState | None, e: Event
    ) -> str | None:
        """The number the consult call reached: what the transferer dialed, or who called it."""
        if second is not None:
            if second.dial is None:
                for value in (second.exten, second.dial_exten):
                    if value and value != "s":
                        return value
            else:
                consult = self.calls.get(second.linkedid)
                root = self.channels.get(consult.linkedid) if consult else None
                if root is not None and root is not second and root.caller_num:
                    return root.caller_num
        if target is not None and target.caller_num:
            return target.caller_num
        value = e.get("TransferTargetCallerIDNum") or e.get("SecondTransfererExten")
        return str(value) if value and value not in ("<unknown>", "s") else None

    def _on_pickup(self, e: Event, at: float | None) -> None:
        picker = self._touch(e, at)
        target = self._touch(e, at, "Target")
        if picker is None or target is None or target.dial is None or picker.dial is not None:
            return
        picker.dial = DialLink(
            parent=target.dial.parent,
            dialstring=target.dial.dialstring,
            begin_seq=self._seq,
            begin_at=at,
            ringing_at=target.dial.ringing_at or target.ringing_at,
            end_status="ANSWER",
            end_seq=self._seq,
            end_at=at,
        )
        if picker.up_seq is None:
            picker.up_seq, picker.up_at = self._seq, at

    def _on_queue_abandon(self, e: Event, at: float | None) -> None:
        ch = self._touch(e, at)
        call = self.calls.get(ch.linkedid) if ch is not None else None
        if call is not None:
            call.queue_abandoned = True

    def _on_originate_response(self, e: Event, at: float | None) -> None:
        uid = e.get("Uniqueid")
        ch = self.channels.get(uid) if isinstance(uid, str) else None
        if ch is None:
            return
        ch.originated = ch.dial is None or ch.dial.parent is None
        call = self.calls.get(ch.linkedid)
        if call is not None and e.get("Response") == "Failure":
            call.originate_failed = True


def _same_dial(link: DialLink, src: ChannelState | None) -> bool:
    """Does a DialState/DialEnd from ``src`` report on ``link`` (not on a later re-dial)?"""
    return src is None or link.parent is None or link.parent == src.uniqueid


def _minus_duration(at: float, duration: object) -> float | None:
    """``at`` minus a CoreShowChannel ``Duration`` (HH:MM:SS), or None when unknown."""
    try:
        h, m, sec = (int(part) for part in str(duration).split(":"))
    except ValueError:
        return None
    return at - (h * 3600 + m * 60 + sec)
