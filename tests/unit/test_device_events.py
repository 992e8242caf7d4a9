"""AMI device events → DeviceChange, on every recorded fixture and on the shapes it lacks.

Each fixture's expectation was written from its events (named in the comments), not by
running the code. Events the lab did not record (AstDB answers, chan_sip registration
states, contact removal) are built in the exact shape Asterisk 20 sends them (main/db.c,
chan_sip.c, res_pjsip) next to the recorded ones they resemble.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from callcenter.ami.devices import (
    DEVICE_EVENTS,
    DeviceChange,
    astdb_poll_result,
    desk_phone_resolver,
    device_change,
)
from callcenter.ami.transcripts import read_events
from tests.unit.helpers import FIXTURES, all_fixtures, fixture_id

PJSIP = FIXTURES / "asterisk20-pjsip"
SIP = FIXTURES / "asterisk20"


def changes(path: Path) -> list[tuple[str, str, str, str, str]]:
    """(event, endpoint, kind, state, source) of every change a fixture reports."""
    out = []
    for event in read_events(path):
        change = device_change(event)
        if change is not None:
            out.append(
                (str(event["Event"]), change.endpoint, change.kind, change.state, change.source)
            )
    return out


def at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


# --------------------------------------------------------------------------- fixtures


def test_phone_offline_chan_sip_peer_status() -> None:
    # PeerStatus Peer=SIP/duty1 PeerStatus=Unreachable (Time -1) at 1795432926.919940, the
    # failed call in between reports no device state, PeerStatus Reachable at .922572.
    assert changes(SIP / "phone_offline.jsonl") == [
        ("PeerStatus", "SIP/duty1", "status", "offline", "PeerStatus"),
        ("PeerStatus", "SIP/duty1", "status", "online", "PeerStatus"),
    ]
    first = next(filter(None, map(device_change, read_events(SIP / "phone_offline.jsonl"))))
    assert first == DeviceChange(
        "SIP/duty1", "status", "offline", at(1795432926.919940), "PeerStatus Unreachable",
        "PeerStatus",
    )  # fmt: skip


def test_pj_contact_unreachable() -> None:
    # Going: PeerStatus PJSIP/2001 Unreachable, ContactStatus AOR=2001 EndpointName=2001
    # Unreachable, DeviceStateChange PJSIP/2001 UNAVAILABLE (ExtensionStatus and
    # QueueMemberStatus say the same and are not read). The call in between fails at once.
    # Back: DeviceStateChange NOT_INUSE (first, at .297334), PeerStatus Reachable,
    # ContactStatus Reachable.
    assert changes(PJSIP / "pj_contact_unreachable.jsonl") == [
        ("PeerStatus", "PJSIP/2001", "status", "offline", "PeerStatus"),
        ("ContactStatus", "PJSIP/2001", "status", "offline", "ContactStatus"),
        ("DeviceStateChange", "PJSIP/2001", "status", "offline", "DeviceStateChange"),
        ("DeviceStateChange", "PJSIP/2001", "status", "online", "DeviceStateChange"),
        ("PeerStatus", "PJSIP/2001", "status", "online", "PeerStatus"),
        ("ContactStatus", "PJSIP/2001", "status", "online", "ContactStatus"),
    ]
    contact = [
        device_change(e)
        for e in read_events(PJSIP / "pj_contact_unreachable.jsonl")
        if e["Event"] == "ContactStatus"
    ]
    assert contact[0] is not None
    assert contact[0].contact == "sip:2001@127.0.0.1:5171"
    assert contact[0].at == at(1795434295.796812)


def test_pj_dnd_and_forward_flags() -> None:
    # DBPut CF/2001 and DBDel raise no events (only their responses, which are no events);
    # the DND lamp: DeviceStateChange Device=Custom:DND2001 State=BUSY, later NOT_INUSE.
    # ExtensionStatus of hint *762001 repeats it and is not read. The lamp names extension
    # 2001; without a resolver the change keeps the bare name.
    assert changes(PJSIP / "pj_dnd_and_forward_flags.jsonl") == [
        ("DeviceStateChange", "2001", "dnd", "on", "Custom:DND2001"),
        ("DeviceStateChange", "2001", "dnd", "off", "Custom:DND2001"),
    ]
    resolve = desk_phone_resolver(["SIP/duty1", "PJSIP/2001"])
    found = [
        device_change(e, resolve=resolve)
        for e in read_events(PJSIP / "pj_dnd_and_forward_flags.jsonl")
    ]
    assert [(c.endpoint, c.state) for c in found if c is not None] == [
        ("PJSIP/2001", "on"),
        ("PJSIP/2001", "off"),
    ]


def test_pj_endpoint_status_query() -> None:
    # PJSIPShowEndpoint 2001 while online: EndpointDetail DeviceState "Not in use",
    # ContactStatusDetail Status Reachable (TransportDetail/AorDetail carry no state).
    # Then 2001 drops: PeerStatus Unreachable, DeviceStateChange UNAVAILABLE, ContactStatus
    # Unreachable. PJSIPShowEndpoint again: EndpointDetail "Unavailable", ContactStatusDetail
    # Unreachable. PJSIPShowEndpoints: EndpointList 2001 Unavailable, 2002 and mobile
    # "Not in use", pstn Unavailable with an empty Aor (a trunk: skipped). PJSIPShowContacts
    # answers "No Contacts found" (a response, no event); AorList has no state. Back:
    # PeerStatus Reachable, ContactStatus Reachable, DeviceStateChange NOT_INUSE; the last
    # PJSIPShowEndpoint shows it online.
    online = ("EndpointDetail", "PJSIP/2001", "status", "online", "EndpointDetail")
    reachable = ("ContactStatusDetail", "PJSIP/2001", "status", "online", "ContactStatusDetail")
    assert changes(PJSIP / "pj_endpoint_status_query.jsonl") == [
        online,
        reachable,
        ("PeerStatus", "PJSIP/2001", "status", "offline", "PeerStatus"),
        ("DeviceStateChange", "PJSIP/2001", "status", "offline", "DeviceStateChange"),
        ("ContactStatus", "PJSIP/2001", "status", "offline", "ContactStatus"),
        ("EndpointDetail", "PJSIP/2001", "status", "offline", "EndpointDetail"),
        ("ContactStatusDetail", "PJSIP/2001", "status", "offline", "ContactStatusDetail"),
        ("EndpointList", "PJSIP/2001", "status", "offline", "EndpointList"),
        ("EndpointList", "PJSIP/2002", "status", "online", "EndpointList"),
        ("EndpointList", "PJSIP/mobile", "status", "online", "EndpointList"),
        ("PeerStatus", "PJSIP/2001", "status", "online", "PeerStatus"),
        ("ContactStatus", "PJSIP/2001", "status", "online", "ContactStatus"),
        ("DeviceStateChange", "PJSIP/2001", "status", "online", "DeviceStateChange"),
        online,
        reachable,
    ]


def test_list_events_without_timestamp_use_the_receive_time() -> None:
    events = list(read_events(PJSIP / "pj_endpoint_status_query.jsonl"))
    detail = next(e for e in events if e["Event"] == "EndpointDetail")
    assert "Timestamp" not in detail
    change = device_change(detail)
    assert change is not None
    assert change.at == at(1795434544.9848385)


def test_call_fixtures_report_device_state_of_phones_and_trunk() -> None:
    # pj_answered: DeviceStateChange PJSIP/pstn INUSE, PJSIP/2001 RINGING, INUSE, then
    # PJSIP/pstn UNAVAILABLE (the trunk has no AOR: unavailable when idle) and 2001 NOT_INUSE.
    assert changes(PJSIP / "pj_answered.jsonl") == [
        ("DeviceStateChange", "PJSIP/pstn", "status", "online", "DeviceStateChange"),
        ("DeviceStateChange", "PJSIP/2001", "status", "online", "DeviceStateChange"),
        ("DeviceStateChange", "PJSIP/2001", "status", "online", "DeviceStateChange"),
        ("DeviceStateChange", "PJSIP/pstn", "status", "offline", "DeviceStateChange"),
        ("DeviceStateChange", "PJSIP/2001", "status", "online", "DeviceStateChange"),
    ]
    # pj_queue_answered also has Queue:duty and Queue:duty_avail device states: not phones.
    queue = changes(PJSIP / "pj_queue_answered.jsonl")
    assert {endpoint for _, endpoint, *_ in queue} == {"PJSIP/pstn", "PJSIP/2001", "PJSIP/2002"}


@pytest.mark.parametrize(
    "path",
    [p for p in all_fixtures() if "cacofonisk" in str(p)] + [SIP / "answered.jsonl"],
    ids=fixture_id,
)
def test_fixtures_without_device_events_report_none(path: Path) -> None:
    # chan_sip call fixtures (no device-state subscription in that lab) and cacofonisk.
    assert changes(path) == []


@pytest.mark.parametrize("path", all_fixtures(), ids=fixture_id)
def test_every_fixture_reads_without_error(path: Path) -> None:
    for event in read_events(path):
        change = device_change(event)
        if change is not None:
            assert change.kind in ("status", "forward", "dnd")
            assert event["Event"] in DEVICE_EVENTS


# ------------------------------------------------------- shapes the lab did not record

STATUS_CASES: list[tuple[dict[str, Any], tuple[str, str] | None]] = [
    # chan_sip registration states (PeerStatus with ChannelType SIP, as in phone_offline)
    ({"Event": "PeerStatus", "ChannelType": "SIP", "Peer": "SIP/duty1",
      "PeerStatus": "Unregistered", "Cause": "Expired"}, ("SIP/duty1", "offline")),
    ({"Event": "PeerStatus", "ChannelType": "SIP", "Peer": "SIP/duty1",
      "PeerStatus": "Rejected", "Cause": "AUTH_SECRET_FAILED"}, ("SIP/duty1", "offline")),
    ({"Event": "PeerStatus", "ChannelType": "SIP", "Peer": "SIP/duty1",
      "PeerStatus": "Registered", "Address": "127.0.0.1:5071"}, ("SIP/duty1", "online")),
    ({"Event": "PeerStatus", "ChannelType": "SIP", "Peer": "SIP/duty1",
      "PeerStatus": "Lagged", "Time": "2100"}, ("SIP/duty1", "online")),
    ({"Event": "PeerStatus", "ChannelType": "IAX2", "Peer": "remote",
      "PeerStatus": "Unreachable"}, ("IAX2/remote", "offline")),
    ({"Event": "PeerStatus", "Peer": "SIP/duty1", "PeerStatus": "Unknown"}, None),
    # PJSIP contact life cycle (ContactStatus as in pj_contact_unreachable)
    ({"Event": "ContactStatus", "URI": "sip:2001@10.0.0.5:5060", "ContactStatus": "Created",
      "AOR": "2001", "EndpointName": "2001"}, ("PJSIP/2001", "online")),
    ({"Event": "ContactStatus", "URI": "sip:2001@10.0.0.5:5060", "ContactStatus": "Removed",
      "AOR": "2001", "EndpointName": "2001"}, ("PJSIP/2001", "offline")),
    ({"Event": "ContactStatus", "URI": "sip:2001@10.0.0.5:5060", "ContactStatus": "NonQualified",
      "AOR": "2001", "EndpointName": "2001"}, ("PJSIP/2001", "online")),
    ({"Event": "ContactStatus", "URI": "sip:2001@10.0.0.5:5060", "ContactStatus": "Updated",
      "AOR": "2001", "EndpointName": "2001"}, None),
    # no EndpointName (older Asterisk): the AOR names the endpoint
    ({"Event": "ContactStatus", "URI": "sip:2001@10.0.0.5:5060", "ContactStatus": "Unreachable",
      "AOR": "2001"}, ("PJSIP/2001", "offline")),
    ({"Event": "DeviceStateChange", "Device": "PJSIP/2001", "State": "ONHOLD"},
     ("PJSIP/2001", "online")),
    ({"Event": "DeviceStateChange", "Device": "PJSIP/2001", "State": "UNKNOWN"}, None),
    ({"Event": "DeviceStateChange", "Device": "PJSIP/2001", "State": "INVALID"}, None),
    ({"Event": "DeviceStateChange", "Device": "Local/2001@from-phones", "State": "INUSE"}, None),
    ({"Event": "DeviceStateChange", "Device": "Queue:duty_avail", "State": "INUSE"}, None),
    ({"Event": "DeviceStateChange", "Device": "Custom:OTHER1", "State": "BUSY"}, None),
    ({"Event": "EndpointList", "ObjectName": "pstn", "Aor": "", "DeviceState": "Unavailable"},
     None),
    ({"Event": "EndpointDetail", "ObjectName": "2002", "Aors": "2002",
      "DeviceState": "Unknown"}, None),
    ({"Event": "ExtensionStatus", "Hint": "PJSIP/2001", "Status": "4"}, None),
    ({"Event": "PeerStatus"}, None),
    ({"Event": 42}, None),
    ({}, None),
]  # fmt: skip


@pytest.mark.parametrize(("event", "expected"), STATUS_CASES)
def test_status_shapes(event: dict[str, Any], expected: tuple[str, str] | None) -> None:
    change = device_change(event)
    if expected is None:
        assert change is None
    else:
        assert change is not None
        assert (change.endpoint, change.state) == expected
        assert change.kind == "status"
        assert change.at is None  # no Timestamp, no _recv


FLAG_CASES: list[tuple[dict[str, Any], tuple[str, str, str, str] | None]] = [
    # the DND lamp as recorded, and the forward lamp of the same dialplan style
    ({"Event": "DeviceStateChange", "Device": "Custom:DND2001", "State": "INUSE"},
     ("2001", "dnd", "on", "")),
    ({"Event": "DeviceStateChange", "Device": "Custom:CF2001", "State": "BUSY"},
     ("2001", "forward", "on", "")),
    ({"Event": "DeviceStateChange", "Device": "Custom:CF2001", "State": "NOT_INUSE"},
     ("2001", "forward", "off", "")),
    ({"Event": "DeviceStateChange", "Device": "Custom:CFU2001", "State": "BUSY"},
     ("2001", "forward", "on", "")),
    ({"Event": "DeviceStateChange", "Device": "Custom:DEVDND2001", "State": "BUSY"},
     ("2001", "dnd", "on", "")),
    ({"Event": "DeviceStateChange", "Device": "Custom:DNDduty1", "State": "BUSY"},
     ("duty1", "dnd", "on", "")),
    ({"Event": "DeviceStateChange", "Device": "Custom:DND2001", "State": "UNKNOWN"}, None),
    # DBGet CF/2001 (main/db.c manager_dbget): Family, Key, Val, ActionID; no Timestamp
    ({"Event": "DBGetResponse", "Family": "CF", "Key": "2001", "Val": "13800138000",
      "ActionID": "poll-cf-2001", "_recv": 1795434304.0},
     ("2001", "forward", "on", "13800138000")),
    ({"Event": "DBGetResponse", "Family": "DND", "Key": "2001", "Val": "YES",
      "ActionID": "poll-dnd-2001"}, ("2001", "dnd", "on", "YES")),
    ({"Event": "DBGetResponse", "Family": "CFB", "Key": "duty1", "Val": "13900139000"},
     ("duty1", "forward", "on", "13900139000")),
    ({"Event": "DBGetResponse", "Family": "CF", "Key": "2001", "Val": ""},
     ("2001", "forward", "off", "")),
    ({"Event": "DBGetResponse", "Family": "CW", "Key": "2001", "Val": "ENABLED"}, None),
    # DBGetTree CF (main/db.c manager_db_tree_get): Key is the whole path, no Family
    ({"Event": "DBGetTreeResponse", "Key": "/CF/2001", "Val": "13800138000",
      "ActionID": "tree-cf"}, ("2001", "forward", "on", "13800138000")),
    ({"Event": "DBGetTreeResponse", "Key": "/DND/2002", "Val": "YES"},
     ("2002", "dnd", "on", "YES")),
    ({"Event": "DBGetTreeResponse", "Family": "CF", "Key": "/CF/2002", "Val": "13700137000"},
     ("2002", "forward", "on", "13700137000")),
    ({"Event": "DBGetTreeResponse", "Key": "/AMPUSER/2001/cidnum", "Val": "2001"}, None),
]  # fmt: skip


@pytest.mark.parametrize(("event", "expected"), FLAG_CASES)
def test_flag_shapes(event: dict[str, Any], expected: tuple[str, str, str, str] | None) -> None:
    change = device_change(event)
    if expected is None:
        assert change is None
    else:
        assert change is not None
        assert (change.endpoint, change.kind, change.state, change.detail) == expected


def test_astdb_source_names_family_and_key() -> None:
    change = device_change({"Event": "DBGetResponse", "Family": "cfb", "Key": "2001", "Val": "1"})
    assert change is not None
    assert change.source == "AstDB CFB/2001"
    assert change.resolved is False


def test_astdb_poll_result() -> None:
    when = at(1795434310.0)
    resolve = desk_phone_resolver(["PJSIP/2001"])
    on = astdb_poll_result("CF", "2001", True, "13800138000", at=when, resolve=resolve)
    assert on == DeviceChange("PJSIP/2001", "forward", "on", when, "13800138000", "AstDB CF/2001")
    # DBGet answered "Response: Error / Database entry not found": the key was deleted
    off = astdb_poll_result("CF", "2001", False, None, at=when, resolve=resolve)
    assert off is not None
    assert (off.endpoint, off.kind, off.state, off.detail) == ("PJSIP/2001", "forward", "off", "")
    assert off.source == on.source  # the same switch, so the rules can pair them
    dnd = astdb_poll_result("DND", "PJSIP/2002", True, "YES")
    assert dnd is not None
    assert (dnd.endpoint, dnd.kind, dnd.state) == ("PJSIP/2002", "dnd", "on")
    assert astdb_poll_result("DND", "2001", True, "NO") is not None
    assert astdb_poll_result("DND", "2001", True, "NO").state == "off"  # type: ignore[union-attr]
    assert astdb_poll_result("CW", "2001", True, "ENABLED") is None
    assert astdb_poll_result("CF", "", True, "1") is None


def test_desk_phone_resolver() -> None:
    resolve = desk_phone_resolver(["SIP/Duty1", "PJSIP/2001", "SIP/2001"])
    assert resolve("2001") == "PJSIP/2001"  # the first listed wins a tie
    assert resolve("Duty1") == "SIP/Duty1"
    assert resolve("duty1") == "SIP/Duty1"  # case-insensitive fallback
    assert resolve("2002") is None
