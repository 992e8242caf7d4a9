"""Device-status rules: phone_offline, forward_set, dnd_set (DeviceWatch), pure.

Changes are built from AMI events in the recorded shapes (``PeerStatus`` as in
``asterisk20/phone_offline.jsonl``, ``ContactStatus`` as in
``asterisk20-pjsip/pj_contact_unreachable.jsonl``, the ``Custom:DND2001`` lamp as in
``pj_dnd_and_forward_flags.jsonl``, ``DBGetResponse`` as main/db.c sends it) and fed through
:func:`device_change`, so these tests cover the whole path from event to violation.
Times are Beijing time (UTC+08:00); 2026-11-23 is a Monday.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from pytest import approx

from callcenter.ami.devices import DeviceChange, device_change
from callcenter.ami.transcripts import read_events
from callcenter.rules.devices import DeviceWatch, device_dedupe_key, format_duration
from callcenter.rules.policy import LinePolicy, Policies
from callcenter.rules.schedule import ScheduleError
from callcenter.rules.violations import Violation
from tests.unit.helpers import FIXTURES

BJ = timezone(timedelta(hours=8))
T0 = datetime(2026, 11, 23, 10, 0, tzinfo=BJ)  # Monday 10:00, inside any day schedule
LINE = "12345"


def bj(day: int, hour: int, minute: int = 0, second: float = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=BJ) + timedelta(seconds=second)


def policies(*lines: LinePolicy) -> Policies:
    return Policies({p.number: p for p in lines}, configured=True)


def desk(phones: Iterable[str] = ("PJSIP/2001",), grace: float = 300.0) -> Policies:
    return policies(LinePolicy(LINE, "县政府办", frozenset(phones), offline_grace_seconds=grace))


def event(fields: dict[str, Any], at: datetime) -> DeviceChange:
    change = device_change({**fields, "Timestamp": f"{at.timestamp():.6f}"})
    assert change is not None, fields
    return change


def peer(endpoint: str, status: str, at: datetime) -> DeviceChange:
    tech = endpoint.split("/", 1)[0]
    return event({"Event": "PeerStatus", "ChannelType": tech, "Peer": endpoint,
                  "PeerStatus": status}, at)  # fmt: skip


def contact(aor: str, uri: str, status: str, at: datetime) -> DeviceChange:
    return event({"Event": "ContactStatus", "URI": uri, "ContactStatus": status, "AOR": aor,
                  "EndpointName": aor, "RoundtripUsec": "0"}, at)  # fmt: skip


def device_state(device: str, state: str, at: datetime) -> DeviceChange:
    return event({"Event": "DeviceStateChange", "Device": device, "State": state}, at)


def astdb(family: str, key: str, value: str, at: datetime) -> DeviceChange:
    return event({"Event": "DBGetResponse", "Family": family, "Key": key, "Val": value,
                  "ActionID": f"poll-{family}-{key}"}, at)  # fmt: skip


def feed(watch: DeviceWatch, changes: Iterable[DeviceChange]) -> list[Violation]:
    out: list[Violation] = []
    for change in changes:
        out.extend(watch.observe(change))
    return out


def fixture_changes(path: Path) -> list[DeviceChange]:
    return [c for c in map(device_change, read_events(path)) if c is not None]


# ------------------------------------------------------------------------ phone_offline


def test_six_minutes_unreachable_is_one_violation_of_six_minutes() -> None:
    # PJSIP/2001 unreachable for 6 min (qualify marks it so; PeerStatus, ContactStatus and
    # DeviceStateChange all report it), then back: one violation of 360 s, known on return.
    watch = DeviceWatch(desk())
    going = [
        peer("PJSIP/2001", "Unreachable", T0),
        contact("2001", "sip:2001@10.0.0.5:5060", "Unreachable", T0 + timedelta(seconds=0.1)),
        device_state("PJSIP/2001", "UNAVAILABLE", T0 + timedelta(seconds=0.2)),
    ]
    assert feed(watch, going) == []
    assert watch.close(T0 + timedelta(minutes=4)) == []  # not yet past the grace
    back = [
        peer("PJSIP/2001", "Reachable", T0 + timedelta(minutes=6)),
        contact("2001", "sip:2001@10.0.0.5:5060", "Reachable", T0 + timedelta(minutes=6)),
        device_state("PJSIP/2001", "NOT_INUSE", T0 + timedelta(minutes=6)),
    ]
    (found,) = feed(watch, back)
    assert found.kind == "phone_offline"
    assert found.linkedid is None
    assert found.line == LINE
    assert found.endpoint == "PJSIP/2001"
    assert found.at == T0
    assert found.ended_at == T0 + timedelta(minutes=6)
    assert found.duration_seconds == approx(360.0)
    assert found.detail == (
        "desk phone offline for 6 min 0 s (grace 5 min 0 s): PeerStatus Unreachable"
    )
    assert found.to_json() == {
        "type": "violation", "kind": "phone_offline", "linkedid": None, "line": LINE,
        "endpoint": "PJSIP/2001", "at": "2026-11-23T10:00:00.000+08:00",
        "detail": found.detail,
    }  # fmt: skip
    assert watch.close(T0 + timedelta(minutes=10)) == []


def test_thirty_second_flaps_yield_nothing() -> None:
    # Unreachable 30 s, reachable 30 s, ten times over: never longer than the grace.
    watch = DeviceWatch(desk())
    changes = []
    for i in range(10):
        start = T0 + timedelta(minutes=i)
        changes.append(peer("PJSIP/2001", "Unreachable", start))
        changes.append(peer("PJSIP/2001", "Reachable", start + timedelta(seconds=30)))
    assert feed(watch, changes) == []
    assert watch.close(T0 + timedelta(hours=1)) == []


def test_phone_offline_fixture_default_grace_none_short_grace_one() -> None:
    # asterisk20/phone_offline: PeerStatus SIP/duty1 Unreachable at 11:22:06.919940 UTC,
    # Reachable at 11:22:16.922572: 10.0 s offline.
    changes = fixture_changes(FIXTURES / "asterisk20" / "phone_offline.jsonl")
    assert feed(DeviceWatch(desk(["SIP/duty1"])), changes) == []
    (found,) = feed(DeviceWatch(desk(["SIP/duty1"], grace=5)), changes)
    assert found.endpoint == "SIP/duty1"
    assert found.at == datetime(2026, 11, 23, 11, 22, 6, 919940, tzinfo=UTC)
    assert found.duration_seconds == approx(10.0026, abs=1e-3)
    (same,) = feed(DeviceWatch(desk(["SIP/duty1"]), grace_override=5), changes)
    assert same == found


def test_pj_contact_unreachable_fixture() -> None:
    # PeerStatus/ContactStatus/DeviceStateChange say offline at 11:44:55.796774 UTC; the
    # first sign of return is DeviceStateChange NOT_INUSE at 11:44:59.297334: 3.5 s. The
    # call in between failed at once. Nothing with a 5 min (or 5 s) grace; one with 2 s.
    changes = fixture_changes(FIXTURES / "asterisk20-pjsip" / "pj_contact_unreachable.jsonl")
    assert feed(DeviceWatch(desk()), changes) == []
    assert feed(DeviceWatch(desk(grace=5)), changes) == []
    (found,) = feed(DeviceWatch(desk(grace=2)), changes)
    assert found.at == datetime(2026, 11, 23, 11, 44, 55, 796774, tzinfo=UTC)
    assert found.ended_at == datetime(2026, 11, 23, 11, 44, 59, 297334, tzinfo=UTC)
    assert found.duration_seconds == approx(3.5006, abs=1e-3)


def test_pj_endpoint_status_query_fixture() -> None:
    # Offline from PeerStatus Unreachable 11:49:10.796373 to PeerStatus Reachable
    # 11:49:18.796795 (8.0 s); the EndpointDetail/ContactStatusDetail/EndpointList answers in
    # between repeat "offline" and change nothing. PJSIP/pstn (EndpointList, no AOR) is
    # skipped; 2002 and mobile are online.
    changes = fixture_changes(FIXTURES / "asterisk20-pjsip" / "pj_endpoint_status_query.jsonl")
    (found,) = feed(DeviceWatch(desk(["PJSIP/2001", "PJSIP/2002"], grace=5)), changes)
    assert found.endpoint == "PJSIP/2001"
    assert found.duration_seconds == approx(8.0, abs=1e-3)
    assert found.detail.endswith(": PeerStatus Unreachable")


def test_still_offline_at_close_is_an_open_violation_then_closed_under_the_same_key() -> None:
    watch = DeviceWatch(desk())
    assert feed(watch, [peer("PJSIP/2001", "Unreachable", T0)]) == []
    (open_,) = watch.close(T0 + timedelta(minutes=12))
    assert open_.ended_at is None
    assert open_.duration_seconds == approx(720.0)
    assert "so far, still offline" in open_.detail
    # close() changes nothing: asked again, the same open violation, longer
    (again,) = watch.close(T0 + timedelta(minutes=13))
    assert again.dedupe_key == open_.dedupe_key
    (closed,) = feed(watch, [peer("PJSIP/2001", "Reachable", T0 + timedelta(minutes=20))])
    assert closed.dedupe_key == open_.dedupe_key
    assert closed.ended_at == T0 + timedelta(minutes=20)
    assert closed.duration_seconds == approx(1200.0)
    assert open_.dedupe_key == "phone_offline:PJSIP/2001:2026-11-23T02:00:00.000000+00:00"
    assert device_dedupe_key("phone_offline", "PJSIP/2001", T0) == open_.dedupe_key


def test_only_desk_phones_of_a_line_count_when_configured() -> None:
    watch = DeviceWatch(desk(["PJSIP/2001"], grace=5))
    changes = [
        peer("PJSIP/2002", "Unreachable", T0),
        peer("PJSIP/2002", "Reachable", T0 + timedelta(minutes=10)),
    ]
    assert feed(watch, changes) == []


def test_configured_desk_phone_device_state_alone_counts() -> None:
    # chan_sip and PJSIP phones whose only report is DeviceStateChange UNAVAILABLE (no
    # qualify): with config the policy says it is a desk phone.
    watch = DeviceWatch(desk(["PJSIP/2001"]))
    changes = [
        device_state("PJSIP/2001", "UNAVAILABLE", T0),
        device_state("PJSIP/2001", "NOT_INUSE", T0 + timedelta(minutes=7)),
    ]
    (found,) = feed(watch, changes)
    assert found.duration_seconds == approx(420.0)


def test_no_config_trunk_device_state_never_counts() -> None:
    # Without config: PJSIP/pstn goes UNAVAILABLE after every call (no AOR) and stays so;
    # it never reported PeerStatus/ContactStatus, so it is no phone. PJSIP/2001 did.
    watch = DeviceWatch()
    changes = [
        device_state("PJSIP/pstn", "INUSE", T0),
        device_state("PJSIP/pstn", "UNAVAILABLE", T0 + timedelta(seconds=30)),
        peer("PJSIP/2001", "Unreachable", T0 + timedelta(minutes=1)),
        peer("PJSIP/2001", "Reachable", T0 + timedelta(minutes=8)),
    ]
    (found,) = feed(watch, changes)
    assert (found.endpoint, found.line) == ("PJSIP/2001", None)
    assert found.duration_seconds == approx(420.0)
    assert watch.close(T0 + timedelta(hours=5)) == []  # pstn still "unavailable": nothing


def test_no_config_device_state_before_the_peer_status_still_counts() -> None:
    # The order of the simultaneous reports does not matter: the endpoint reported a
    # registration status during the period, so it is a phone.
    watch = DeviceWatch()
    changes = [
        device_state("PJSIP/2001", "UNAVAILABLE", T0),
        peer("PJSIP/2001", "Unreachable", T0 + timedelta(seconds=0.1)),
        device_state("PJSIP/2001", "NOT_INUSE", T0 + timedelta(minutes=6)),
    ]
    (found,) = feed(watch, changes)
    assert found.at == T0


def test_one_contact_of_two_unreachable_is_not_offline() -> None:
    watch = DeviceWatch(desk())
    changes = [
        contact("2001", "sip:2001@10.0.0.5:5060", "Reachable", T0),
        contact("2001", "sip:2001@10.0.0.6:5060", "Reachable", T0),
        contact("2001", "sip:2001@10.0.0.5:5060", "Unreachable", T0 + timedelta(seconds=1)),
        contact("2001", "sip:2001@10.0.0.6:5060", "Reachable", T0 + timedelta(minutes=10)),
    ]
    assert feed(watch, changes) == []
    # the last contact removed (unregistered): offline
    more = [
        contact("2001", "sip:2001@10.0.0.6:5060", "Removed", T0 + timedelta(minutes=11)),
        contact("2001", "sip:2001@10.0.0.7:5060", "Created", T0 + timedelta(minutes=18)),
    ]
    (found,) = feed(watch, more)
    assert found.duration_seconds == approx(420.0)


def offline(start: datetime, end: datetime, endpoint: str = "PJSIP/2001") -> list[DeviceChange]:
    return [peer(endpoint, "Unreachable", start), peer(endpoint, "Reachable", end)]


def test_offline_only_counts_in_monitored_hours() -> None:
    # Line monitored 08:00-18:00. Offline 17:50 → 08:10 next day: 10 + 10 min monitored.
    lines = policies(LinePolicy(LINE, desk_phones=frozenset({"PJSIP/2001"})))
    watch = DeviceWatch(lines, schedules={LINE: "08:00-18:00"})
    (found,) = feed(watch, offline(bj(23, 17, 50), bj(24, 8, 10)))
    assert found.at == bj(23, 17, 50)
    assert found.duration_seconds == approx(1200.0)
    assert "20 min 0 s in monitored hours (14 h 20 min in all)" in found.detail
    # Offline 17:58 → 08:03: 2 + 3 = 5 min monitored, not longer than the grace.
    assert feed(watch, offline(bj(24, 17, 58), bj(25, 8, 3))) == []
    # Offline all night 20:00 → 07:00: nothing.
    assert feed(watch, offline(bj(25, 20), bj(26, 7))) == []
    # Offline from 06:00, monitored from 08:00: at = 08:00, 30 min.
    (late,) = feed(watch, offline(bj(27, 6), bj(27, 8, 30)))
    assert late.at == bj(27, 8)
    assert late.duration_seconds == approx(1800.0)


def test_phone_on_two_lines_is_judged_by_the_first_line_that_makes_it_a_violation() -> None:
    day_line = LinePolicy("12345", desk_phones=frozenset({"PJSIP/2001"}))
    group = LinePolicy("12346", desk_phones=frozenset({"PJSIP/2001", "PJSIP/2002"}))
    watch = DeviceWatch(
        policies(day_line, group), schedules={"12345": "08:00-18:00", "12346": "24h"}
    )
    night = [
        peer("PJSIP/2001", "Unreachable", bj(23, 22)),
        peer("PJSIP/2001", "Reachable", bj(23, 23)),
    ]
    (found,) = feed(watch, night)  # fmt: skip
    assert found.line == "12346"
    day = [
        peer("PJSIP/2001", "Unreachable", bj(24, 9)),
        peer("PJSIP/2001", "Reachable", bj(24, 10)),
    ]
    (found,) = feed(watch, day)  # fmt: skip
    assert found.line == "12345"


def test_naive_utc_times_from_the_database() -> None:
    watch = DeviceWatch(desk())
    start = datetime(2026, 11, 23, 2, 0)  # naive UTC, as SQLite gives it back
    changes = [
        DeviceChange("PJSIP/2001", "status", "offline", start, "PeerStatus Unreachable"),
        DeviceChange("PJSIP/2001", "status", "online", start + timedelta(minutes=6)),
    ]
    (found,) = feed(watch, changes)
    assert found.at == T0
    assert watch.close(datetime(2026, 11, 23, 3, 0)) == []


def test_untimed_changes_make_no_offline_period() -> None:
    watch = DeviceWatch(desk())
    changes = [
        DeviceChange("PJSIP/2001", "status", "offline", None, "PeerStatus Unreachable"),
        DeviceChange("PJSIP/2001", "status", "online", None),
    ]
    assert feed(watch, changes) == []


def test_a_bad_schedule_is_refused_at_once() -> None:
    with pytest.raises(ScheduleError, match="bad time 25:00"):
        DeviceWatch(desk(), schedules={LINE: "08:00-25:00"})


# ------------------------------------------------------------------- forward_set / dnd_set


def test_dnd_lamp_fixture_gives_dnd_set_at_once_and_closes_it() -> None:
    # pj_dnd_and_forward_flags: DeviceStateChange Custom:DND2001 BUSY at 11:45:05.508692 UTC,
    # NOT_INUSE at 11:45:11.510169. The lamp's 2001 is the desk phone PJSIP/2001.
    changes = fixture_changes(FIXTURES / "asterisk20-pjsip" / "pj_dnd_and_forward_flags.jsonl")
    watch = DeviceWatch(desk())
    (on,) = watch.observe(changes[0])
    assert on.kind == "dnd_set"
    assert (on.linkedid, on.line, on.endpoint) == (None, LINE, "PJSIP/2001")
    assert on.at == datetime(2026, 11, 23, 11, 45, 5, 508692, tzinfo=UTC)
    assert on.ended_at is None
    assert on.detail == "do-not-disturb switched on (Custom:DND2001)"
    assert watch.close(on.at + timedelta(seconds=1)) == [on]  # still on
    (off,) = watch.observe(changes[1])
    assert off.dedupe_key == on.dedupe_key
    assert off.ended_at == datetime(2026, 11, 23, 11, 45, 11, 510169, tzinfo=UTC)
    assert off.duration_seconds == approx(6.0015, abs=1e-3)
    assert off.detail == "do-not-disturb switched on (Custom:DND2001), switched off after 6.0 s"
    assert watch.close(off.ended_at + timedelta(seconds=1)) == []


def test_dnd_lamp_without_config_counts_for_the_bare_extension() -> None:
    changes = fixture_changes(FIXTURES / "asterisk20-pjsip" / "pj_dnd_and_forward_flags.jsonl")
    (on, off) = feed(DeviceWatch(), changes)
    assert (on.kind, on.endpoint, on.line) == ("dnd_set", "2001", None)
    assert off.dedupe_key == on.dedupe_key


def test_dnd_lamp_without_config_resolves_to_a_phone_seen_before() -> None:
    watch = DeviceWatch()
    changes = [
        peer("PJSIP/2001", "Reachable", T0),
        device_state("Custom:DND2001", "BUSY", T0 + timedelta(seconds=5)),
    ]
    (on,) = feed(watch, changes)
    assert on.endpoint == "PJSIP/2001"


def test_forward_polled_from_astdb() -> None:
    # DBGet CF/2001 answered with DBGetResponse Val=13800138000 (the DBPut of the fixture),
    # later answered "Database entry not found" (DBDel): forward_set, then closed.
    watch = DeviceWatch(desk())
    (on,) = watch.observe(astdb("CF", "2001", "13800138000", T0))
    assert on.kind == "forward_set"
    assert on.endpoint == "PJSIP/2001"
    assert on.detail == "call forwarding to 13800138000 switched on (AstDB CF/2001)"
    assert watch.observe(astdb("CF", "2001", "13800138000", T0 + timedelta(minutes=1))) == []
    from callcenter.ami.devices import astdb_poll_result

    gone = astdb_poll_result("CF", "2001", False, at=T0 + timedelta(minutes=2))
    assert gone is not None
    (off,) = watch.observe(gone)
    assert off.dedupe_key == on.dedupe_key
    assert off.duration_seconds == approx(120.0)


def test_forward_stays_set_while_any_switch_is_on() -> None:
    watch = DeviceWatch(desk())
    (on,) = watch.observe(astdb("CF", "2001", "13800138000", T0))
    assert watch.observe(astdb("CFB", "2001", "13900139000", T0 + timedelta(seconds=1))) == []
    assert watch.observe(astdb("CF", "2001", "", T0 + timedelta(seconds=2))) == []
    # a switch that never said "on" saying "off" changes nothing
    assert watch.observe(astdb("CFU", "2001", "", T0 + timedelta(seconds=3))) == []
    (off,) = watch.observe(astdb("CFB", "2001", "", T0 + timedelta(seconds=4)))
    assert off.dedupe_key == on.dedupe_key
    assert off.ended_at == T0 + timedelta(seconds=4)


def test_forward_and_dnd_are_separate_violations() -> None:
    watch = DeviceWatch(desk())
    found = feed(
        watch,
        [
            device_state("Custom:CF2001", "BUSY", T0),
            device_state("Custom:DND2001", "BUSY", T0 + timedelta(seconds=1)),
        ],
    )
    assert [v.kind for v in found] == ["forward_set", "dnd_set"]
    assert found[0].detail == "call forwarding switched on (Custom:CF2001)"


def test_flags_of_other_endpoints_are_ignored_when_configured() -> None:
    watch = DeviceWatch(desk(["PJSIP/2001"]))
    assert watch.observe(device_state("Custom:DND2002", "BUSY", T0)) == []
    assert watch.observe(astdb("CF", "mobile", "13800138000", T0)) == []


def test_flag_set_outside_monitored_hours_counts_from_the_next_span() -> None:
    lines = policies(LinePolicy(LINE, desk_phones=frozenset({"PJSIP/2001"})))
    watch = DeviceWatch(lines, schedules={LINE: "08:00-18:00"})
    assert watch.observe(device_state("Custom:DND2001", "BUSY", bj(23, 20))) == []
    assert watch.close(bj(24, 7, 59)) == []
    # the next change of any phone after 08:00 brings it out ...
    (found,) = watch.observe(peer("PJSIP/2002", "Reachable", bj(24, 8, 30)))
    assert found.at == bj(24, 8)
    assert found.detail.endswith("on since 2026-11-23 20:00 outside monitored hours")
    # ... and so does close(); it is the same violation
    assert [v.dedupe_key for v in watch.close(bj(24, 9))] == [found.dedupe_key]
    # switched off before 08:00 the next night: nothing at all
    watch2 = DeviceWatch(lines, schedules={LINE: "08:00-18:00"})
    assert watch2.observe(device_state("Custom:DND2001", "BUSY", bj(23, 20))) == []
    assert watch2.observe(device_state("Custom:DND2001", "NOT_INUSE", bj(24, 6))) == []
    assert watch2.close(bj(24, 12)) == []


# ------------------------------------------------------------------------------- helpers


def test_format_duration() -> None:
    assert format_duration(3.5) == "3.5 s"
    assert format_duration(360) == "6 min 0 s"
    assert format_duration(7500) == "2 h 5 min"


def test_call_violation_dedupe_key_is_its_linkedid() -> None:
    found = Violation("unanswered", "1795432842.106", LINE, "SIP/duty1", T0, "rang 20.0 s")
    assert found.dedupe_key == "unanswered:1795432842.106"
