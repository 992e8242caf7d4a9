"""Desk-phone status and flag changes read from AMI events (pure, no I/O).

:func:`device_change` turns one AMI event into a :class:`DeviceChange` — a phone went
offline or came back, call forwarding or do-not-disturb was switched on or off — or
``None`` for every other event. The rules (:mod:`callcenter.rules.devices`) decide what the
changes mean for a duty line; this module only reads the PBX's words.

The events, as Asterisk 20 sends them (see ``tests/fixtures/ami/asterisk20*/``):

``PeerStatus``
    chan_sip and chan_pjsip: ``Peer: SIP/duty1`` / ``PJSIP/2001``, ``PeerStatus``
    Unreachable, Unregistered, Rejected → offline; Reachable, Registered, Lagged → online.
``ContactStatus``
    chan_pjsip, one per contact of an AOR: ``AOR: 2001``, ``EndpointName: 2001``, ``URI``,
    ``ContactStatus`` Unreachable, Removed → offline; Reachable, Created, NonQualified →
    online. The endpoint is ``PJSIP/<EndpointName>`` (else ``PJSIP/<AOR>``); ``contact`` is the
    URI, so the rules can tell one contact of several from the whole phone.
``ContactStatusDetail``
    the same per contact, listed by ``PJSIPShowEndpoint`` / ``PJSIPShowContacts`` (``Status``).
``DeviceStateChange``
    ``Device: PJSIP/2001``, ``State`` UNAVAILABLE → offline; NOT_INUSE, INUSE, BUSY, RINGING,
    RINGINUSE, ONHOLD → online. Every channel technology reports device state, trunks too
    (``PJSIP/pstn`` has no AOR and always reads UNAVAILABLE), so a device-state change alone
    does not make an endpoint a desk phone: the rules decide with the line policy.
    ``Device: Custom:DND2001`` / ``Custom:CF2001`` (also ``CFU``, ``CFB`` and FreePBX's
    ``DEVDND``/``DEVCF`` forms) are the feature lamps: BUSY, INUSE, RINGING, RINGINUSE,
    ONHOLD → dnd/forward on; NOT_INUSE → off. The lamp names an extension (``2001``), not
    an endpoint: it is resolved to the desk phone whose resource is ``2001`` when a
    ``resolve`` function is given, else left as the bare ``2001``.
``EndpointDetail`` / ``EndpointList``
    ``PJSIPShowEndpoint(s)``: ``ObjectName: 2001`` and ``DeviceState`` ("Unavailable" →
    offline, "Not in use", "In use", "Busy", "Ringing", "On Hold" → online). An endpoint
    listed with an empty ``Aor``/``Aors`` has nowhere to register (a trunk) and is skipped.
``DBGetResponse`` / ``DBGetTreeResponse``
    AstDB polled with ``DBGet`` / ``DBGetTree``: ``Family`` CF, CFU, CFB (forward) or DND,
    ``Key`` the extension or endpoint, ``Val`` the number (forward) or ``YES`` (DND) → on;
    an empty value → off. ``DBGetTreeResponse`` carries the whole path in ``Key``
    (``/CF/2001``). A ``DBGet`` answered with ``Response: Error`` ("Database entry not
    found") is no event: the poller reports it with :func:`astdb_poll_result`.

The event time is ``Timestamp`` (``timestampevents=yes``), else the recorder's ``_recv``
(the ``...Detail``/``...List`` answers to actions carry no ``Timestamp``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from callcenter.tracking.names import event_time, resource_of

__all__ = [
    "ASTDB_FAMILIES",
    "DEVICE_EVENTS",
    "REGISTRATION_SOURCES",
    "DeviceChange",
    "DeviceKind",
    "DeviceState",
    "Resolver",
    "astdb_poll_result",
    "desk_phone_resolver",
    "device_change",
]

DeviceKind = Literal["status", "forward", "dnd"]
DeviceState = Literal["offline", "online", "on", "off"]
#: ``resource -> endpoint`` (``"2001" -> "PJSIP/2001"``); None when it is no known phone.
Resolver = Callable[[str], str | None]

#: AstDB families that hold call forwarding (number) and do-not-disturb (YES) per phone.
ASTDB_FAMILIES: Mapping[str, DeviceKind] = {
    "CF": "forward",
    "CFU": "forward",
    "CFB": "forward",
    "DND": "dnd",
}
#: Sources that only a phone that registers or is qualified produces (a real phone).
REGISTRATION_SOURCES = frozenset({"PeerStatus", "ContactStatus", "ContactStatusDetail"})


@dataclass(frozen=True, slots=True)
class DeviceChange:
    """One desk-phone change as the PBX reported it.

    ``endpoint`` is ``Tech/resource`` (``PJSIP/2001``), or a bare resource (``2001``) for a
    feature lamp or AstDB key that could not be resolved to an endpoint. ``detail`` is the
    forward target number for ``forward`` changes, the AstDB value for ``dnd``, and a
    human-readable reason for ``status``. ``source`` says which event or key reported it
    (``PeerStatus``, ``ContactStatus``, ``DeviceStateChange``, ``EndpointDetail``,
    ``AstDB CF/2001``, ``Custom:DND2001``, ...); ``contact`` is the PJSIP contact URI for
    per-contact reports.
    """

    endpoint: str
    kind: DeviceKind
    state: DeviceState
    at: datetime | None
    detail: str = ""
    source: str = ""
    contact: str = ""

    @property
    def resolved(self) -> bool:
        """Whether ``endpoint`` names a channel technology (``PJSIP/2001``, not ``2001``)."""
        return "/" in self.endpoint


# ------------------------------------------------------------------------------- values

_PEER_STATUS: Mapping[str, DeviceState] = {
    "unreachable": "offline",
    "unregistered": "offline",
    "rejected": "offline",
    "reachable": "online",
    "registered": "online",
    "lagged": "online",
}
_CONTACT_STATUS: Mapping[str, DeviceState] = {
    "unreachable": "offline",
    "unavail": "offline",
    "unavailable": "offline",
    "removed": "offline",
    "reachable": "online",
    "avail": "online",
    "created": "online",
    "nonqualified": "online",
    "nonqual": "online",
}
_DEVICE_STATE: Mapping[str, DeviceState] = {
    "unavailable": "offline",
    "not_inuse": "online",
    "inuse": "online",
    "busy": "online",
    "ringing": "online",
    "ringinuse": "online",
    "onhold": "online",
}
# EndpointDetail/EndpointList "DeviceState" is the text form of the same states.
_DEVICE_STATE_TEXT: Mapping[str, DeviceState] = {
    "unavailable": "offline",
    "not in use": "online",
    "in use": "online",
    "busy": "online",
    "ringing": "online",
    "ring+inuse": "online",
    "on hold": "online",
}
_LAMP_ON = frozenset({"inuse", "busy", "ringing", "ringinuse", "onhold"})
_LAMP_OFF = frozenset({"not_inuse"})
_LAMP_RE = re.compile(r"^Custom:(?:DEV)?(DND|CFU|CFB|CF)(.+)$", re.IGNORECASE)
_DEVICE_RE = re.compile(r"^([A-Za-z][A-Za-z0-9_]*)/([^/]+)$")
_OFF_VALUES = frozenset({"", "no", "0", "off", "false"})


def _text(event: Mapping[str, object], key: str) -> str:
    value = event.get(key)
    return "" if value is None else str(value).strip()


def _resolve(resource: str, resolve: Resolver | None) -> str:
    """An endpoint for an AstDB key or lamp suffix: as given when it names one already."""
    if "/" in resource:
        return resource
    if resolve is not None:
        found = resolve(resource)
        if found:
            return found
    return resource


# ------------------------------------------------------------------------------ handlers


def _peer_status(
    event: Mapping[str, object], at: datetime | None, resolve: Resolver | None
) -> DeviceChange | None:
    peer = _text(event, "Peer")
    status = _text(event, "PeerStatus")
    state = _PEER_STATUS.get(status.lower())
    if not peer or state is None:
        return None
    if "/" not in peer:
        tech = _text(event, "ChannelType") or "SIP"
        peer = f"{tech}/{peer}"
    detail = f"PeerStatus {status}"
    cause = _text(event, "Cause")
    if cause:
        detail += f" ({cause})"
    return DeviceChange(peer, "status", state, at, detail, "PeerStatus")


def _pjsip_endpoint(event: Mapping[str, object]) -> str | None:
    name = _text(event, "EndpointName") or _text(event, "AOR")
    return f"PJSIP/{name}" if name else None


def _contact_status(
    event: Mapping[str, object], at: datetime | None, resolve: Resolver | None
) -> DeviceChange | None:
    name = str(event.get("Event"))
    key = "ContactStatus" if name == "ContactStatus" else "Status"
    status = _text(event, key)
    state = _CONTACT_STATUS.get(status.lower())
    endpoint = _pjsip_endpoint(event)
    if endpoint is None or state is None:
        return None
    uri = _text(event, "URI")
    detail = f"{name} {status}" + (f" {uri}" if uri else "")
    return DeviceChange(endpoint, "status", state, at, detail, name, uri or endpoint)


def _device_state(
    event: Mapping[str, object], at: datetime | None, resolve: Resolver | None
) -> DeviceChange | None:
    device = _text(event, "Device")
    state = _text(event, "State")
    lamp = _LAMP_RE.match(device)
    if lamp is not None:
        flag = lamp.group(1).upper()
        kind: DeviceKind = "dnd" if flag == "DND" else "forward"
        lowered = state.lower()
        if lowered in _LAMP_ON:
            on: DeviceState = "on"
        elif lowered in _LAMP_OFF:
            on = "off"
        else:
            return None
        endpoint = _resolve(lamp.group(2), resolve)
        return DeviceChange(endpoint, kind, on, at, "", device)
    match = _DEVICE_RE.match(device)
    if match is None or match.group(1).lower() == "local":
        return None
    status = _DEVICE_STATE.get(state.lower())
    if status is None:
        return None
    return DeviceChange(
        device, "status", status, at, f"DeviceStateChange {state}", "DeviceStateChange"
    )


def _endpoint_detail(
    event: Mapping[str, object], at: datetime | None, resolve: Resolver | None
) -> DeviceChange | None:
    name = _text(event, "ObjectName")
    state = _text(event, "DeviceState")
    status = _DEVICE_STATE_TEXT.get(state.lower())
    if not name or status is None:
        return None
    for key in ("Aor", "Aors"):
        if key in event and not _text(event, key):
            return None  # no AOR: nothing can register there (a trunk), no desk phone
    source = str(event.get("Event"))
    return DeviceChange(f"PJSIP/{name}", "status", status, at, f"{source} {state}", source)


def _astdb(
    event: Mapping[str, object], at: datetime | None, resolve: Resolver | None
) -> DeviceChange | None:
    family = _text(event, "Family")
    key = _text(event, "Key")
    if not family and key.startswith("/"):  # DBGetTreeResponse: Key is /Family/key
        family, _, key = key.strip("/").partition("/")
    elif family and key.startswith(f"/{family}/"):
        key = key[len(family) + 2 :]
    value = _text(event, "Val")
    return astdb_poll_result(family, key, True, value, at=at, resolve=resolve)


_HANDLERS: Mapping[
    str,
    Callable[[Mapping[str, object], datetime | None, Resolver | None], DeviceChange | None],
] = {
    "PeerStatus": _peer_status,
    "ContactStatus": _contact_status,
    "ContactStatusDetail": _contact_status,
    "DeviceStateChange": _device_state,
    "EndpointDetail": _endpoint_detail,
    "EndpointList": _endpoint_detail,
    "DBGetResponse": _astdb,
    "DBGetTreeResponse": _astdb,
}
#: The events :func:`device_change` reads (what the listener must receive).
DEVICE_EVENTS = frozenset(_HANDLERS)


def device_change(
    event: Mapping[str, object], *, resolve: Resolver | None = None
) -> DeviceChange | None:
    """The desk-phone change an AMI event reports, or None (most events report none).

    ``resolve`` maps a bare extension of a feature lamp or AstDB key to its endpoint
    (:func:`desk_phone_resolver`); without it such changes keep the bare name.
    Never raises on odd input: unknown events and values give None.
    """
    handler = _HANDLERS.get(str(event.get("Event", "")))
    if handler is None:
        return None
    return handler(event, event_time(event), resolve)


def astdb_poll_result(
    family: str,
    key: str,
    found: bool,
    value: str | None = None,
    *,
    at: datetime | None = None,
    resolve: Resolver | None = None,
) -> DeviceChange | None:
    """The change a polled AstDB key reports: set (``found`` with a value) → on, else off.

    ``found=False`` is a ``DBGet`` answered "Database entry not found" (the key was
    deleted: the feature is off). None for a family that is not CF/CFU/CFB/DND or an
    empty key.
    """
    fam = family.strip().strip("/").upper()
    kind = ASTDB_FAMILIES.get(fam)
    resource = key.strip().strip("/")
    if kind is None or not resource:
        return None
    text = (value or "").strip()
    on = found and text.lower() not in _OFF_VALUES
    endpoint = _resolve(resource, resolve)
    return DeviceChange(
        endpoint, kind, "on" if on else "off", at, text if on else "", f"AstDB {fam}/{resource}"
    )


def desk_phone_resolver(endpoints: Iterable[str]) -> Resolver:
    """A resolver from extension to endpoint by the endpoint's resource.

    ``desk_phone_resolver(["PJSIP/2001", "SIP/duty1"])("2001") == "PJSIP/2001"``; an exact
    match wins over a case-insensitive one; the first endpoint listed wins a tie.
    """
    exact: dict[str, str] = {}
    folded: dict[str, str] = {}
    for endpoint in endpoints:
        resource = resource_of(endpoint)
        exact.setdefault(resource, endpoint)
        folded.setdefault(resource.lower(), endpoint)

    def resolve(resource: str) -> str | None:
        return exact.get(resource) or folded.get(resource.lower())

    return resolve
