"""Turn the facts gathered for one Linkedid into a finished call record.

All judgement lives here (who answered, forwarded where, outcome), as a pure function of the
channel facts, so it is easy to test and independent of event arrival order.
"""

from __future__ import annotations

from collections.abc import Mapping

from callcenter.tracking.channels import CallState, ChannelState
from callcenter.tracking.directory import Directory
from callcenter.tracking.names import (
    dial_target,
    is_number,
    looks_external,
    looks_internal,
    resource_of,
    same_number,
    to_datetime,
)
from callcenter.tracking.records import Call, ClosedBy, Direction, Leg, LegRole, Outcome

_MAX_DEPTH = 64
_BUSY_CAUSES = frozenset({17, 21})
_FAILED_CAUSES = frozenset({1, 2, 3, 20, 22, 27, 28, 29, 31, 34, 38, 41, 42, 44, 47, 58, 88, 102})
_FAILED_STATUSES = frozenset({"CHANUNAVAIL", "CONGESTION", "INVALIDARGS", "DONTCALL", "TORTURE"})
_NOTHING: set[str] = set()  # shared empty result: never mutated


class _View:
    """Navigation over one call's channels."""

    def __init__(
        self, call: CallState, channels: Mapping[str, ChannelState], legs: list[ChannelState]
    ) -> None:
        self.channels = channels
        self.legs = legs
        self.departed = call.departed
        self._paths: dict[str, list[ChannelState] | None] = {}
        self._reached: dict[int, set[str]] | None = None
        self.root = self._root(call)

    def end_of(self, ch: ChannelState) -> float | None:
        """When the leg left this call: its hangup, or its move to another call."""
        moved = self.departed.get(ch.uniqueid)
        return moved[1] if moved is not None else ch.hangup_at

    def _root(self, call: CallState) -> ChannelState:
        own = self.channels.get(call.linkedid)
        if own is not None and (own.uniqueid in call.legs or own.uniqueid in call.departed):
            return own
        undialed = [c for c in self.legs if c.dial is None and not (c.local and c.half == 2)]
        pool = [c for c in undialed if not c.local] or undialed or self.legs
        return min(pool, key=lambda c: c.created_seq)

    def parent(self, ch: ChannelState) -> ChannelState | None:
        if ch.dial is not None and ch.dial.parent is not None:
            return self.channels.get(ch.dial.parent)
        if ch.local and ch.half == 2 and ch.partner is not None:
            return self.channels.get(ch.partner)
        return None

    def path(self, ch: ChannelState) -> list[ChannelState] | None:
        """Channels from ``ch`` up to the root (both included), or None if not under the root."""
        key = ch.uniqueid
        if key not in self._paths:
            self._paths[key] = self._walk(ch)
        return self._paths[key]

    def _walk(self, ch: ChannelState) -> list[ChannelState] | None:
        out = [ch]
        node: ChannelState | None = ch
        for _ in range(_MAX_DEPTH):
            if node is self.root:
                return out
            node = self.parent(node) if node is not None else None
            if node is None:
                return None
            out.append(node)
        return None

    def connected(self, ch: ChannelState) -> bool:
        """Did the answer of ``ch`` reach the root (every dial on the way answered)?"""
        path = self.path(ch)
        if path is None:
            return False
        for node in path[:-1]:
            link = node.dial
            if link is None:
                continue  # a ;2 half reached through its ;1 partner
            if link.end_status is not None:
                if link.end_status != "ANSWER":
                    return False
            elif node.up_seq is None:
                return False
        return True

    def branch(self, ch: ChannelState) -> ChannelState | None:
        """The ancestor of ``ch`` right below the root."""
        path = self.path(ch)
        if path is None or len(path) < 2:
            return None
        return path[-2]

    def reached_resources(self, local: ChannelState) -> set[str]:
        """Resources (``2001`` of ``PJSIP/2001``) of the real endpoints dialed below the
        Local channel ``local``; computed once for the whole call (one walk per leg)."""
        if self._reached is None:
            reached: dict[int, set[str]] = {}
            for ch in self.legs:
                if ch.local or ch.dial is None:
                    continue
                path = self.path(ch)
                if not path:
                    continue
                resource = resource_of(ch.endpoint)
                for node in path:
                    if node.local:
                        reached.setdefault(id(node), set()).add(resource)
            self._reached = reached
        return self._reached.get(id(local), _NOTHING)

    def path_number(self, ch: ChannelState) -> str | None:
        """The first explicit number dialed on the way from the root down to ``ch``."""
        path = self.path(ch) or [ch]
        for node in reversed(path):
            if node.dial is not None and node is not self.root:
                _, number = dial_target(node.dial.dialstring, node.name)
                if number:
                    return number
        return None


def interpret(
    call: CallState,
    channels: Mapping[str, ChannelState],
    directory: Directory,
    closed_by: ClosedBy,
) -> Call | None:
    """The finished call, or None when it holds no real endpoint (nothing to record)."""
    uids = [*call.legs, *call.departed]
    legs = sorted((channels[u] for u in uids if u in channels), key=lambda c: c.created_seq)
    if all(c.local for c in legs):
        return None  # nothing but Local plumbing (or nothing at all): no call to record
    view = _View(call, channels, legs)
    root = view.root
    callees = [
        c
        for c in view.legs
        if c is not root and not c.local and c.dial is not None and view.path(c) is not None
    ]
    if call.transfer_seq is not None:
        callees = [
            c for c in callees if c.dial is not None and c.dial.begin_seq < call.transfer_seq
        ]

    originated = root.originated or (root.dial is not None and root.dial.parent is None)
    caller = _clean(root.caller_num)
    dialed = _clean(root.exten)
    if dialed in (None, "s") and root.dial_exten:
        dialed = _clean(root.dial_exten)
    self_answer: ChannelState | None = None  # an Originate that dials nobody further
    if originated:
        a_leg = root if not root.local else _first_dialed(callees)
        a_branch = view.branch(a_leg) if a_leg is not None and a_leg is not root else None
        b_callees = [
            c
            for c in callees
            if c is not a_leg and (a_branch is None or view.branch(c) is not a_branch)
        ]
        if a_leg is not None and b_callees:
            caller = _number_of(view, a_leg) or caller
            dialed = _number_of(view, _first_dialed(b_callees)) or dialed
            callees = b_callees
        else:
            if root.dial is not None:
                peer, number = dial_target(root.dial.dialstring, root.name)
                dialed = number or peer or dialed
            if a_leg is not None and a_leg is not root:
                callees = [a_leg]
                dialed = _number_of(view, a_leg) or dialed
            else:
                callees = []
                self_answer = root

    answered = [c for c in callees if _answered(c) and view.connected(c)]
    if self_answer is not None and _answered(self_answer):
        answered = [self_answer]
    answer_leg = min(answered, key=_answer_seq) if answered else None
    answered_at = (
        (answer_leg.up_at or (answer_leg.dial.end_at if answer_leg.dial else None))
        if answer_leg
        else None
    )

    ended_at = _latest(view.end_of(c) for c in view.legs) or call.last_at
    started_at = root.created_at or _earliest(c.created_at for c in view.legs)

    rung = [c for c in ([self_answer] if self_answer else callees) if _rang(c)]
    ring_start = _earliest(_ring_time(c) for c in rung)
    if not rung:
        ring_seconds: float | None = 0.0
    elif ring_start is None:
        ring_seconds = None
    else:
        ring_end = answered_at or _latest(_ring_stop(c) for c in rung) or ended_at
        if ring_end is not None and ended_at is not None:
            ring_end = min(ring_end, ended_at)
        ring_seconds = _seconds(ring_start, ring_end)
    talk_seconds = _seconds(answered_at, ended_at) if answer_leg is not None else None

    direction = _direction(originated, caller, dialed, root, directory)
    line_cfg = directory.line_for_number(dialed)
    if line_cfg is None and originated:
        line_cfg = next(
            (
                ln
                for c in ([self_answer] if self_answer else callees)
                if (ln := directory.line_for_phone(c.endpoint)) is not None
            ),
            None,
        )
    line = line_cfg.number if line_cfg else (None if directory.configured else dialed)

    forwarded_to: str | None = None
    if direction == "inbound" and not originated:
        forwarded_to = _forward(view, call, dialed, answer_leg)
        if (
            forwarded_to is None
            and answer_leg is not None
            and line_cfg is not None
            and line_cfg.desk_phones
            and answer_leg.endpoint not in line_cfg.desk_phones
        ):
            forwarded_to = view.path_number(answer_leg) or answer_leg.endpoint

    outcome: Outcome = (
        "answered" if answer_leg is not None else _unanswered_outcome(view, call, callees, rung)
    )
    return Call(
        linkedid=call.linkedid,
        caller=caller,
        caller_name=_clean(root.caller_name),
        dialed=dialed,
        line=line,
        direction=direction,
        started_at=to_datetime(started_at),
        answered_at=to_datetime(answered_at),
        ended_at=to_datetime(ended_at),
        ring_seconds=ring_seconds,
        talk_seconds=talk_seconds,
        outcome=outcome,
        answered_by=answer_leg.endpoint if answer_leg else None,
        forwarded_to=forwarded_to,
        transferred_to=call.transferred_to,
        hangup_cause=root.cause,
        closed_by=closed_by,
        originated=originated,
        times_estimated=call.times_estimated,
        legs=tuple(_leg(view, c, root) for c in view.legs),
    )


def _clean(value: str | None) -> str | None:
    if value is None or value in ("", "<unknown>"):
        return None
    return value


def _first_dialed(chans: list[ChannelState]) -> ChannelState | None:
    dialed = [c for c in chans if c.dial is not None]
    return min(dialed, key=lambda c: c.dial.begin_seq if c.dial else 0) if dialed else None


def _number_of(view: _View, ch: ChannelState | None) -> str | None:
    if ch is None:
        return None
    number = view.path_number(ch)
    if number:
        return number
    if ch.dial is not None:
        peer, _ = dial_target(ch.dial.dialstring, ch.name)
        if peer:
            return peer
    return resource_of(ch.endpoint)


def _answered(ch: ChannelState) -> bool:
    if ch.dial is not None and ch.dial.end_status is not None:
        return ch.dial.end_status == "ANSWER"
    return ch.up_seq is not None


def _answer_seq(ch: ChannelState) -> int:
    if ch.up_seq is not None:
        return ch.up_seq
    if ch.dial is not None and ch.dial.end_seq is not None:
        return ch.dial.end_seq
    return ch.created_seq


def _rang(ch: ChannelState) -> bool:
    if ch.ringing_at is not None or ch.up_seq is not None or ch.state in ("Ringing", "Up"):
        return True
    return ch.dial is not None and ch.dial.ringing_at is not None


def _ring_time(ch: ChannelState) -> float | None:
    times = [ch.ringing_at, ch.dial.ringing_at if ch.dial else None]
    found = _earliest(times)
    if found is None and ch.up_at is not None:
        return ch.up_at
    return found


def _ring_stop(ch: ChannelState) -> float | None:
    if ch.dial is not None and ch.dial.end_at is not None:
        return ch.dial.end_at
    return ch.hangup_at


def _earliest(values: object) -> float | None:
    found = [v for v in values if v is not None]  # type: ignore[attr-defined]
    return min(found) if found else None


def _latest(values: object) -> float | None:
    found = [v for v in values if v is not None]  # type: ignore[attr-defined]
    return max(found) if found else None


def _seconds(start: float | None, end: float | None) -> float | None:
    if start is None or end is None:
        return None
    return round(max(0.0, end - start), 3)


def _direction(
    originated: bool,
    caller: str | None,
    dialed: str | None,
    root: ChannelState,
    directory: Directory,
) -> Direction:
    if originated:
        return "outbound" if looks_external(dialed) else "internal"
    if directory.configured:
        from_desk = directory.is_desk_phone(root.endpoint) or directory.line_for_number(caller)
        if not from_desk and directory.line_for_number(dialed) is not None:
            return "inbound"
        if from_desk:
            return "outbound" if looks_external(dialed) else "internal"
    if looks_internal(caller):
        return "outbound" if looks_external(dialed) else "internal"
    return "inbound"


def _forward(
    view: _View, call: CallState, dialed: str | None, answer_leg: ChannelState | None
) -> str | None:
    """The number an inbound call was forwarded to (302, PBX forward, Local forward)."""
    candidates: list[tuple[int, int, str]] = []
    answer_path = set(map(id, view.path(answer_leg) or [])) if answer_leg else set()
    for ch in view.legs:
        link = ch.dial
        if link is None or ch is view.root or view.path(ch) is None:
            continue
        if call.transfer_seq is not None and link.begin_seq >= call.transfer_seq:
            continue
        number: str | None = None
        rank = 2
        if link.forward:
            number, rank = link.forward, 1
        else:
            peer, explicit = dial_target(link.dialstring, ch.name)
            if explicit and not same_number(explicit, dialed) and explicit != peer:
                if ch.local and _reaches_own_extension(view, ch, explicit):
                    continue
                number = explicit
        if number:
            if id(ch) in answer_path:
                rank = 0
            candidates.append((rank, link.begin_seq, number))
    if not candidates:
        return None
    return min(candidates)[2]


def _reaches_own_extension(view: _View, local: ChannelState, number: str) -> bool:
    """``Local/2001@from-internal`` that rings ``PJSIP/2001`` is routing, not forwarding."""
    return number in view.reached_resources(local)


def _unanswered_outcome(
    view: _View, call: CallState, callees: list[ChannelState], rung: list[ChannelState]
) -> Outcome:
    if call.queue_abandoned:
        return "abandoned"
    root = view.root
    top = {
        c.dial.end_status
        for c in view.legs
        if c.dial is not None
        and c.dial.end_status
        and c.dial.parent in (root.uniqueid, root.partner)
        and (call.transfer_seq is None or c.dial.begin_seq < call.transfer_seq)
    }
    statuses = {c.dial.end_status for c in callees if c.dial and c.dial.end_status} | top
    causes = {c.cause for c in callees if c.cause is not None}
    if "CANCEL" in top:
        return "abandoned"
    top_end = max(
        (
            c.dial.end_seq
            for c in view.legs
            if c.dial is not None
            and c.dial.end_seq is not None
            and c.dial.parent in (root.uniqueid, root.partner)
        ),
        default=None,
    )
    callee_statuses = {  # what the phones said while the caller still waited
        c.dial.end_status
        for c in callees
        if c.dial and c.dial.end_status and (top_end is None or (c.dial.end_seq or 0) <= top_end)
    }
    if rung:
        if callee_statuses == {"BUSY"}:
            return "busy"  # every phone that rang refused it (reject, DND after ringing)
        if "NOANSWER" in top:
            return "no_answer"
        if "BUSY" in top or (not top and "BUSY" in statuses):
            return "busy"
        if not top and not any(c.dial and c.dial.end_status for c in rung):
            return "abandoned"  # the caller hung up while it still rang
        return "no_answer"
    if "BUSY" in statuses or causes & _BUSY_CAUSES:
        return "busy"
    if statuses & _FAILED_STATUSES or causes & _FAILED_CAUSES or call.originate_failed:
        return "failed"
    if "NOANSWER" in statuses:
        return "no_answer"
    if not callees:
        cause = root.cause
        if cause in _BUSY_CAUSES:
            return "busy"
        if cause in _FAILED_CAUSES:
            return "failed"
        if cause == 19:
            return "no_answer"
    return "abandoned"


def _leg(view: _View, ch: ChannelState, root: ChannelState) -> Leg:
    role: LegRole
    if ch is root:
        role = "originated" if ch.originated else "caller"
    elif ch.local:
        role = "local"
    elif ch.dial is not None:
        role = "callee"
    else:
        role = "other"
    return Leg(
        uniqueid=ch.uniqueid,
        channel=ch.name,
        endpoint=ch.endpoint,
        role=role,
        created_at=to_datetime(ch.created_at),
        ringing_at=to_datetime(_ring_time(ch) if ch.ringing_at or ch.dial else None),
        answered_at=to_datetime(ch.up_at),
        ended_at=to_datetime(ch.hangup_at),
        hangup_cause=ch.cause,
        dial_status=ch.dial.end_status if ch.dial else None,
    )


__all__ = ["interpret", "is_number"]
