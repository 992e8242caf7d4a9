"""The AMI generator: recorded shapes, ground truth the tracker agrees with, days and streams."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from random import Random
from typing import Any

import pytest
from pytest import approx

from callcenter.ami.generator import (
    DEFAULT_EPOCH,
    KIND_SOURCES,
    KINDS,
    Counters,
    Flavour,
    Kind,
    Scenario,
    generate_call,
    generate_day,
    generate_offline,
    generate_stream,
)
from callcenter.tracking.records import Call
from callcenter.tracking.tracker import CallTracker
from tests.unit.helpers import FIXTURES, load_events

START = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
LOCAL = timezone(timedelta(hours=8))
FLAVOURS: tuple[Flavour, ...] = ("sip", "pjsip")
DEVICE_EVENTS = frozenset(
    {"PeerStatus", "ContactStatus", "DeviceStateChange", "ExtensionStatus", "QueueMemberStatus"}
)


def replay(events: Sequence[Mapping[str, Any]]) -> list[Call]:
    tracker = CallTracker(on_warning=pytest.fail)
    return tracker.feed_all(events) + tracker.flush()


def assert_matches(call: Call, scenario: Scenario) -> None:
    assert call.linkedid == scenario.linkedid
    assert call.outcome == scenario.outcome
    assert call.answered_by == scenario.answered_by
    assert call.forwarded_to == scenario.forwarded_to
    assert call.caller == scenario.caller
    assert call.dialed == scenario.dialed
    assert call.direction == scenario.direction
    assert call.hangup_cause == scenario.hangup_cause
    assert call.closed_by == "hangup"
    assert call.ring_seconds == approx(scenario.ring_seconds, abs=0.01)
    if scenario.talk_seconds is None:
        assert call.talk_seconds is None
    else:
        assert call.talk_seconds == approx(scenario.talk_seconds, abs=0.01)
    assert call.started_at == scenario.started_at
    assert call.ended_at == scenario.ended_at


# ----------------------------------------------------------------------------- one call


@pytest.mark.parametrize("hangup_by", ["caller", "callee"])
@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("kind", KINDS)
def test_generated_call_replays_to_its_scenario(
    kind: Kind, flavour: Flavour, hangup_by: str
) -> None:
    events, scenario = generate_call(
        kind,
        rng=Random(7),
        start=START,
        flavour=flavour,
        hangup_by="caller" if hangup_by == "caller" else "callee",
    )
    (call,) = replay(events)
    assert_matches(call, scenario)
    assert scenario.kind == kind and scenario.flavour == flavour
    if kind == "spot_check":
        assert scenario.direction != "inbound"
        assert scenario.caller == "12345"
    else:
        assert scenario.direction == "inbound"
    expected_outcome = {
        "answered": "answered",
        "forwarded_mobile": "answered",
        "ring_group_answered": "answered",
        "queue_answered": "answered",
        "spot_check": "answered",
    }.get(kind, kind)
    assert scenario.outcome == expected_outcome
    tech = "SIP" if flavour == "sip" else "PJSIP"
    if kind == "forwarded_mobile":
        assert scenario.answered_by == f"{tech}/mobile" and scenario.forwarded_to
    elif scenario.outcome == "answered":
        assert scenario.answered_by in scenario.desk_phones and scenario.forwarded_to is None


def test_call_times_ring_and_talk_follow_the_arguments() -> None:
    events, scenario = generate_call(
        "answered", rng=Random(1), start=START, ring_seconds=4.0, talk_seconds=30.0
    )
    assert events[0]["Timestamp"] == f"{START.timestamp():.6f}"
    assert scenario.started_at == START
    assert scenario.ring_seconds == approx(4.0, abs=0.01)
    assert scenario.talk_seconds == approx(30.0, abs=0.01)
    stamps = [float(e["Timestamp"]) for e in events]
    assert stamps == sorted(stamps)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_spot_check_rung_past_the_originate_timeout_is_not_answered(flavour: Flavour) -> None:
    events, scenario = generate_call(
        "spot_check", rng=Random(3), start=START, flavour=flavour, ring_seconds=15.0
    )
    assert scenario.outcome == "no_answer" and scenario.answered_by is None
    assert scenario.ring_seconds == approx(15.0, abs=0.1)
    response = events[-1]
    assert response["Event"] == "OriginateResponse" and response["Response"] == "Failure"
    (call,) = replay(events)
    assert_matches(call, scenario)


def test_ring_group_loser_is_cancelled_with_cause_26() -> None:
    events, scenario = generate_call(
        "ring_group_answered", rng=Random(2), start=START, answer_on="SIP/duty2"
    )
    assert scenario.answered_by == "SIP/duty2" and scenario.dialed == "12346"
    ends = {
        e["DestChannel"].rsplit("-", 1)[0]: e["DialStatus"]
        for e in events
        if e["Event"] == "DialEnd"
    }
    assert ends == {"SIP/duty2": "ANSWER", "SIP/duty1": "CANCEL"}
    loser = next(
        e for e in events if e["Event"] == "Hangup" and e["Channel"].startswith("SIP/duty1")
    )
    assert (loser["Cause"], loser["Cause-txt"]) == ("26", "Answered elsewhere")


def test_same_seed_same_call_and_counters_keep_counting() -> None:
    first, _ = generate_call("queue_answered", rng=Random(5), start=START, flavour="pjsip")
    again, _ = generate_call("queue_answered", rng=Random(5), start=START, flavour="pjsip")
    assert first == again

    counters = Counters(uniqueid=500, channel=0x1F0)
    _, one = generate_call("answered", rng=Random(1), start=START, uniqueid_seq=counters)
    events, two = generate_call("no_answer", rng=Random(1), start=START, uniqueid_seq=counters)
    assert one.linkedid == f"{int(START.timestamp())}.500"
    assert two.linkedid == f"{int(START.timestamp())}.502"
    assert events[0]["Channel"] == "SIP/pstn-000001f2"

    events, scenario = generate_call(
        "answered", rng=Random(1), start=START, uniqueid_seq=itertools.count(40)
    )
    assert scenario.linkedid.endswith(".40") and events[0]["Channel"].endswith("-00000028")


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="ring_seconds"):
        generate_call("answered", rng=Random(1), start=START, ring_seconds=25.0)
    with pytest.raises(ValueError, match="PJSIP"):
        generate_call(
            "answered", rng=Random(1), start=START, flavour="pjsip", desk_phones=["SIP/duty1"]
        )
    with pytest.raises(ValueError, match="flavour"):
        generate_call("answered", rng=Random(1), start=START, flavour="iax")  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- recorded shapes


def shape(event: Mapping[str, Any]) -> tuple[object, ...]:
    """What must match the recording: event, header set, and the values that carry meaning."""
    keys = tuple(sorted(k for k in event if not k.startswith("_")))
    meaning = tuple(
        event.get(k)
        for k in (
            "Privilege",
            "ChannelState",
            "ChannelStateDesc",
            "DestChannelState",
            "Context",
            "Priority",
            "Application",
            "Variable",
            "DialStatus",
            "Cause",
            "Cause-txt",
            "Device",
            "State",
            "Status",
            "BridgeNumChannels",
            "BridgeTechnology",
            "Reason",
            "Response",
        )
    )
    return (event["Event"], keys, meaning)


def recorded(path: str) -> list[dict[str, Any]]:
    """A fixture's events without the recorder's own login (FullyBooted, AMI SuccessfulAuth)."""
    return [
        e
        for e in load_events(FIXTURES / path)
        if e["Event"] != "FullyBooted"
        and not (e["Event"] == "SuccessfulAuth" and e.get("Service") == "AMI")
    ]


SHAPE_CASES = [
    (kind, flavour, path)
    for kind, paths in KIND_SOURCES.items()
    for flavour, path in zip(FLAVOURS, paths, strict=True)
    if path is not None
]


@pytest.mark.parametrize(("kind", "flavour", "path"), SHAPE_CASES, ids=[p for *_, p in SHAPE_CASES])
def test_generated_call_has_the_recorded_shape(kind: Kind, flavour: Flavour, path: str) -> None:
    events, _ = generate_call(
        kind,
        rng=Random(11),
        start=START,
        flavour=flavour,
        hangup_by="caller",
        answer_on="PJSIP/2002" if kind == "queue_answered" else None,
    )
    expected = recorded(path)
    if kind == "failed":  # there the device events are the phone going offline, not the call
        expected = [e for e in expected if e["Event"] not in DEVICE_EVENTS]
    assert [shape(e) for e in events] == [shape(e) for e in expected]


def test_shape_cases_cover_every_recorded_call() -> None:
    assert len(SHAPE_CASES) == 10


@pytest.mark.parametrize(
    ("flavour", "path"),
    [
        ("sip", "asterisk20/phone_offline.jsonl"),
        ("pjsip", "asterisk20-pjsip/pj_contact_unreachable.jsonl"),
    ],
)
def test_offline_phone_has_the_recorded_shape(flavour: Flavour, path: str) -> None:
    endpoint = "SIP/duty1" if flavour == "sip" else "PJSIP/2001"
    events = generate_offline(endpoint, START, 10.0, flavour)
    expected = [e for e in recorded(path) if e["Event"] in DEVICE_EVENTS]
    assert [shape(e) for e in events] == [shape(e) for e in expected]
    assert float(events[-1]["Timestamp"]) - float(events[0]["Timestamp"]) == approx(10.0, abs=0.01)
    assert replay(events) == []


# ----------------------------------------------------------------------------- days and streams


@pytest.fixture(scope="module")
def sip_day() -> tuple[list[dict[str, str]], list[Scenario]]:
    return generate_day(1, start=datetime(2026, 11, 23, tzinfo=LOCAL))


def test_day_is_deterministic_and_time_ordered(
    sip_day: tuple[list[dict[str, str]], list[Scenario]],
) -> None:
    events, scenarios = sip_day
    again, scenarios_again = generate_day(1, start=datetime(2026, 11, 23, tzinfo=LOCAL))
    assert events == again and scenarios == scenarios_again
    stamps = [float(e["Timestamp"]) for e in events]
    assert stamps == sorted(stamps)
    other, _ = generate_day(2, start=datetime(2026, 11, 23, tzinfo=LOCAL))
    assert other != events


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_day_replays_to_one_call_per_scenario(
    flavour: Flavour, sip_day: tuple[list[dict[str, str]], list[Scenario]]
) -> None:
    if flavour == "sip":
        events, scenarios = sip_day
    else:
        events, scenarios = generate_day(
            1, start=datetime(2026, 11, 23, tzinfo=LOCAL), flavour=flavour
        )
    calls = {c.linkedid: c for c in replay(events)}
    assert len(calls) == len(scenarios) == len({s.linkedid for s in scenarios})
    for scenario in scenarios:
        assert_matches(calls[scenario.linkedid], scenario)
    # the daily mix: every kind, mostly answered, three spot checks, the phone offline once
    kinds = [s.kind for s in scenarios]
    assert set(kinds) == set(KINDS)
    assert kinds.count("spot_check") == 3
    assert 150 < len(scenarios) < 450
    assert sum(s.outcome == "answered" for s in scenarios) > 0.7 * len(scenarios)
    offline = [e for e in events if e["Event"] == "PeerStatus"]
    assert [e["PeerStatus"] for e in offline] == ["Unreachable", "Reachable"]
    down, up = (float(e["Timestamp"]) for e in offline)
    failed = [s for s in scenarios if s.kind == "failed"]
    assert failed and all(down <= s.started_at.timestamp() < up for s in failed)
    overlapping = sum(a.ended_at > b.started_at for a, b in itertools.pairwise(scenarios))
    assert overlapping > 0


def test_stream_is_endless_ordered_and_keeps_uniqueids_unique() -> None:
    midnight = datetime(2026, 11, 24, tzinfo=LOCAL).timestamp()
    stream = generate_stream(3, start=datetime(2026, 11, 23, 23, 50, tzinfo=LOCAL))
    events = list(itertools.islice(stream, 5000))
    assert len(events) == 5000
    stamps = [float(e["Timestamp"]) for e in events]
    assert stamps == sorted(stamps)
    assert stamps[0] < midnight < stamps[-1]
    created = [e["Uniqueid"] for e in events if e["Event"] == "Newchannel"]
    assert len(created) == len(set(created))
    names: dict[str, str] = {}
    for e in events:
        if "Uniqueid" in e and "Channel" in e and e["Event"] != "OriginateResponse":
            assert names.setdefault(e["Uniqueid"], e["Channel"]) == e["Channel"]
    assert len(set(names.values())) == len(names)


def test_stream_default_start_is_fixed() -> None:
    first = next(generate_stream(9))
    assert first == next(generate_stream(9))
    start = DEFAULT_EPOCH.timestamp()
    assert start <= float(first["Timestamp"]) < start + 120
