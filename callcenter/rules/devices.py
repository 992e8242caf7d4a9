"""Device-status rules: ``phone_offline``, ``forward_set``, ``dnd_set``. Pure, time passed in.

:class:`DeviceWatch` is fed the :class:`~callcenter.ami.devices.DeviceChange` s of a PBX in
time order and answers with violations:

``phone_offline``
    a desk phone of a duty line stays offline (unreachable, unregistered, device state
    unavailable) for longer than the line's ``offline_grace_seconds`` (default 300 s) of
    *monitored* time (the line's ``schedule``). One violation per offline period: returned
    by :meth:`DeviceWatch.observe` when the phone comes back (``at`` = the first monitored
    moment of the period, ``ended_at``, ``duration_seconds`` = the monitored seconds
    offline), or by :meth:`DeviceWatch.close` as an open violation (``ended_at`` None,
    ``duration_seconds`` so far) while it is still offline. Flapping shorter than the
    grace yields nothing.
``forward_set`` / ``dnd_set``
    call forwarding (AstDB ``CF``/``CFU``/``CFB``, ``Custom:CF…`` lamp) or do-not-disturb
    (AstDB ``DND``, ``Custom:DND…`` lamp) switched on for a desk phone: at once, no grace
    (or at the start of the next monitored span when switched on outside monitored hours).
    When it is switched off again (every source that said "on" says "off"), the same
    violation comes back closed, with ``ended_at`` and ``duration_seconds``.

Which endpoints count. With configured lines, the desk phones of the lines (a phone on
several lines is judged by the first line, in config order, whose grace and schedule make
it a violation). With no configuration (``callcenter replay`` without ``--config``), every
endpoint that reported a registration or qualify status (``PeerStatus``,
``ContactStatus``) is a phone — a bare ``DeviceStateChange``/``EndpointList`` UNAVAILABLE of
an endpoint that never did (a trunk such as ``PJSIP/pstn``) never makes a ``phone_offline``
— and every forward/DND flag counts.

Every violation has ``linkedid=None``; :attr:`Violation.dedupe_key
<callcenter.rules.violations.Violation.dedupe_key>` is the same for the open and the
closed form of one period, so a job stores each once and updates it when it closes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo

from callcenter.ami.devices import (
    REGISTRATION_SOURCES,
    DeviceChange,
    desk_phone_resolver,
)
from callcenter.rules.policy import DEFAULT_OFFLINE_GRACE, Policies
from callcenter.rules.schedule import (
    ALWAYS,
    DEFAULT_TIMEZONE,
    Schedule,
    monitored_intervals,
    next_monitored,
    parse_schedule,
)
from callcenter.rules.violations import Violation, dedupe_key
from callcenter.tracking.names import resource_of

if TYPE_CHECKING:
    from callcenter.config import Config

__all__ = ["DeviceWatch", "device_dedupe_key", "format_duration"]

FlagKind = Literal["forward", "dnd"]


@dataclass(frozen=True, slots=True)
class _Target:
    """One line a phone serves, as far as device rules care."""

    line: str | None
    grace: float
    schedule: Schedule


@dataclass(slots=True)
class _Status:
    offline: bool = False
    since: datetime | None = None
    why: str = ""
    contacts: set[str] = field(default_factory=set)  # PJSIP contacts known to be online


@dataclass(slots=True)
class _Flag:
    on: dict[str, str]  # source -> detail, for every source that says "on"
    since: datetime | None
    detail: str
    source: str
    due: datetime | None = None  # first monitored moment at or after ``since``
    line: str | None = None
    raised: Violation | None = None


def device_dedupe_key(kind: str, endpoint: str, at: datetime | None) -> str:
    """``phone_offline:PJSIP/2001:2026-11-23T11:51:35.796774+00:00`` (``at`` in UTC)."""
    return dedupe_key(kind, None, endpoint, at)


def _aware(at: datetime) -> datetime:
    """Times from the database may be naive UTC; the rules compare aware ones."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at


def format_duration(seconds: float) -> str:
    """``10.0 s``, ``6 min 0 s``, ``2 h 5 min``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600} h {whole % 3600 // 60} min"


class DeviceWatch:
    """Device-status violations from a stream of device changes (see the module doc).

    ``policies`` are the lines (``None`` or unconfigured: the no-config rule above);
    ``grace_override`` replaces every line's offline grace; ``schedules`` maps a line number
    to its schedule text (else the policy's ``schedule`` attribute, else ``24h``); ``tz``
    is the time zone schedules are read in. A bad schedule raises
    :class:`~callcenter.rules.schedule.ScheduleError` here, not later.
    """

    def __init__(
        self,
        policies: Policies | None = None,
        *,
        grace_override: float | None = None,
        schedules: Mapping[str, str] | None = None,
        tz: str = DEFAULT_TIMEZONE,
    ) -> None:
        self.policies = policies if policies is not None else Policies()
        self.configured = self.policies.configured
        self.tz = tz
        self._zone = ZoneInfo(tz)
        self._grace_override = grace_override
        self._schedules: dict[str, Schedule] = {}
        for number, policy in self.policies.by_line.items():
            text = (schedules or {}).get(number) or getattr(policy, "schedule", "24h")
            self._schedules[number] = parse_schedule(text)
        desk_phones = sorted({p for pol in self.policies.by_line.values() for p in pol.desk_phones})
        self._desk_resolver = desk_phone_resolver(desk_phones)
        self._targets_of: dict[str, tuple[_Target, ...]] = {}
        self._registered: set[str] = set()  # endpoints seen in PeerStatus/ContactStatus
        self._known: dict[str, str] = {}  # resource -> endpoint (no-config resolution)
        self._bare: dict[str, str] = {}  # bare lamp/AstDB name -> endpoint, fixed once used
        self._status: dict[str, _Status] = {}
        self._flags: dict[tuple[str, FlagKind], _Flag] = {}

    @classmethod
    def from_config(
        cls, config: Config | None, *, grace_override: float | None = None
    ) -> DeviceWatch:
        if config is None:
            return cls(grace_override=grace_override)
        return cls(
            Policies.from_config(config),
            grace_override=grace_override,
            schedules={line.number: line.schedule for line in config.lines},
            tz=config.timezone,
        )

    # ------------------------------------------------------------------------- feeding

    def observe(self, change: DeviceChange) -> list[Violation]:
        """Feed one change (in time order); the violations it makes known."""
        if change.at is not None and change.at.tzinfo is None:
            change = replace(change, at=_aware(change.at))
        out = self._advance(change.at) if change.at is not None else []
        endpoint = self._resolve(change.endpoint)
        if change.kind == "status":
            out.extend(self._status_change(endpoint, change))
        else:
            out.extend(self._flag_change(endpoint, change.kind, change))
        return out

    def close(self, now: datetime) -> list[Violation]:
        """Every violation open at ``now``: phones offline past the grace, flags still on.

        For the end of a replay and for periodic sweeps. It changes nothing that a later
        :meth:`observe` relies on: a phone reported open here comes back closed, under the
        same :attr:`~callcenter.rules.violations.Violation.dedupe_key`.
        """
        now = _aware(now)
        out = self._advance(now)
        raised = {id(v) for v in out}
        out.extend(
            f.raised
            for f in self._flags.values()
            if f.raised is not None and id(f.raised) not in raised
        )
        for endpoint, status in self._status.items():
            if status.offline and status.since is not None:
                found = self._offline_violation(endpoint, status, now, closed=False)
                if found is not None:
                    out.append(found)
        out.sort(key=_order)
        return out

    # ------------------------------------------------------------------------- who counts

    def _resolve(self, endpoint: str) -> str:
        if "/" in endpoint:
            return endpoint
        fixed = self._bare.get(endpoint)
        if fixed is not None:
            return fixed
        if self.configured:
            found = self._desk_resolver(endpoint) or endpoint
        else:
            found = self._known.get(endpoint) or self._known.get(endpoint.lower()) or endpoint
        self._bare[endpoint] = found
        return found

    def _targets(self, endpoint: str) -> tuple[_Target, ...]:
        found = self._targets_of.get(endpoint)
        if found is not None:
            return found
        override = self._grace_override
        if self.configured:
            found = tuple(
                _Target(
                    number,
                    policy.offline_grace_seconds if override is None else override,
                    self._schedules[number],
                )
                for number, policy in self.policies.by_line.items()
                if endpoint in policy.desk_phones
            )
        else:
            grace = DEFAULT_OFFLINE_GRACE if override is None else override
            found = (_Target(None, grace, ALWAYS),)
        self._targets_of[endpoint] = found
        return found

    def _is_phone(self, endpoint: str, kind: str) -> bool:
        if self.configured:
            return bool(self._targets(endpoint))
        return kind != "status" or endpoint in self._registered

    # ------------------------------------------------------------------------- status

    def _status_change(self, endpoint: str, change: DeviceChange) -> list[Violation]:
        if change.source in REGISTRATION_SOURCES and endpoint not in self._registered:
            self._registered.add(endpoint)
            resource = resource_of(endpoint)
            self._known.setdefault(resource, endpoint)
            self._known.setdefault(resource.lower(), endpoint)
        status = self._status.setdefault(endpoint, _Status())
        if change.contact:
            if change.state == "online":
                status.contacts.add(change.contact)
            else:
                status.contacts.discard(change.contact)
            online = bool(status.contacts)
        else:
            online = change.state == "online"
        if not online:
            if not status.offline:
                status.offline, status.since, status.why = True, change.at, change.detail
            return []
        if not status.offline:
            return []
        found = None
        if status.since is not None and change.at is not None:
            found = self._offline_violation(endpoint, status, change.at, closed=True)
        status.offline, status.since, status.why = False, None, ""
        return [found] if found is not None else []

    def _offline_violation(
        self, endpoint: str, status: _Status, end: datetime, *, closed: bool
    ) -> Violation | None:
        since = status.since
        if since is None or not self._is_phone(endpoint, "status"):
            return None
        end = max(end, since)
        for target in self._targets(endpoint):
            spans = monitored_intervals(target.schedule, since, end, self.tz)
            monitored = sum((e - s).total_seconds() for s, e in spans)
            if not spans or monitored <= target.grace:
                continue
            start = spans[0][0]
            wall = (end - start).total_seconds()
            length = format_duration(monitored)
            if wall - monitored >= 1:
                length += f" in monitored hours ({format_duration(wall)} in all)"
            state = "" if closed else " so far, still offline"
            detail = (
                f"desk phone offline for {length}{state} "
                f"(grace {format_duration(target.grace)}): {status.why}"
            )
            return Violation(
                "phone_offline",
                None,
                target.line,
                endpoint,
                start,
                detail,
                duration_seconds=round(monitored, 3),
                ended_at=end if closed else None,
            )
        return None

    # ------------------------------------------------------------------------- flags

    def _flag_change(self, endpoint: str, kind: FlagKind, change: DeviceChange) -> list[Violation]:
        if not self._is_phone(endpoint, kind):
            return []
        key = (endpoint, kind)
        flag = self._flags.get(key)
        source = change.source or kind
        if change.state == "on":
            if flag is not None:
                flag.on[source] = change.detail
                return []
            flag = _Flag({source: change.detail}, change.at, change.detail, source)
            if change.at is not None:
                flag.due, flag.line = self._first_monitored(endpoint, change.at)
            else:
                flag.line = next((t.line for t in self._targets(endpoint)), None)
            self._flags[key] = flag
            if change.at is None or (flag.due is not None and flag.due <= change.at):
                return [self._raise(endpoint, kind, flag)]
            return []
        if flag is None or source not in flag.on:
            return []
        del flag.on[source]
        if flag.on:
            return []
        del self._flags[key]
        raised = flag.raised
        if raised is None:
            return []
        end = change.at
        duration = None
        if end is not None and raised.at is not None:
            end = max(end, raised.at)
            duration = round((end - raised.at).total_seconds(), 3)
        after = f", switched off after {format_duration(duration)}" if duration is not None else ""
        return [
            Violation(
                raised.kind,
                None,
                raised.line,
                raised.endpoint,
                raised.at,
                raised.detail + after,
                duration_seconds=duration,
                ended_at=end,
            )
        ]

    def _first_monitored(
        self, endpoint: str, since: datetime
    ) -> tuple[datetime | None, str | None]:
        best: tuple[datetime | None, str | None] = (None, None)
        for target in self._targets(endpoint):
            due = next_monitored(target.schedule, since, self.tz)
            if due is not None and (best[0] is None or due < best[0]):
                best = (due, target.line)
        return best

    def _raise(self, endpoint: str, kind: FlagKind, flag: _Flag) -> Violation:
        at = flag.due if flag.due is not None else flag.since
        if kind == "forward":
            what = f"call forwarding to {flag.detail}" if flag.detail else "call forwarding"
            violation_kind: Literal["forward_set", "dnd_set"] = "forward_set"
        else:
            what, violation_kind = "do-not-disturb", "dnd_set"
        detail = f"{what} switched on ({flag.source})"
        if flag.since is not None and at is not None and at > flag.since:
            local = flag.since.astimezone(self._zone).strftime("%Y-%m-%d %H:%M")
            detail += f", on since {local} outside monitored hours"
        flag.raised = Violation(violation_kind, None, flag.line, endpoint, at, detail)
        return flag.raised

    def _advance(self, now: datetime) -> list[Violation]:
        """Raise the flags whose first monitored moment has come by ``now``."""
        out = [
            self._raise(endpoint, kind, flag)
            for (endpoint, kind), flag in self._flags.items()
            if flag.raised is None and flag.due is not None and flag.due <= now
        ]
        out.sort(key=_order)
        return out


def _order(violation: Violation) -> tuple[datetime, str]:
    at = violation.at
    if at is None:
        return (datetime.min.replace(tzinfo=UTC), violation.dedupe_key)
    return (at if at.tzinfo is not None else at.replace(tzinfo=UTC), violation.dedupe_key)
