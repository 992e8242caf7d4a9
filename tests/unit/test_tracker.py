"""CallTracker behaviour beyond the per-fixture records: live state, idle close, robustness."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from callcenter.tracking.names import event_time
from callcenter.tracking.tracker import CallTracker
from tests.unit.helpers import FIXTURES, all_fixtures, fixture_id, load_events

NO_ANSWER = FIXTURES / "asterisk20" / "no_answer_timeout.jsonl"


def records(events: list[dict[str, object]]) -> list[dict[str, object]]:
    tracker = CallTracker(on_warning=lambda _: None)
    return [c.to_json() for c in tracker.feed_all(events) + tracker.flush()]


def test_ringing_now_is_live_state_until_the_call_ends() -> None:
    events = load_events(NO_ANSWER)
    tracker = CallTracker()
    ringing_at = next(
        event_time(e)
        for e in events
        if e["Event"] == "Newstate" and e["ChannelStateDesc"] == "Ringing"
    )
    assert ringing_at is not None
    seen_ringing = False
    for event in events:
        tracker.feed(event)
        at = event_time(event)
        live = tracker.ringing(at)
        if live:
            seen_ringing = True
            (call,) = live
            assert call.line == "12345"
            assert call.caller == "13811110003"
            assert call.endpoints == ("SIP/duty1",)
            assert call.ringing_since == ringing_at
    assert seen_ringing
    assert tracker.ringing() == []
    assert tracker.open_calls == 0


def test_answered_call_is_not_ringing() -> None:
    tracker = CallTracker()
    for event in load_events(FIXTURES / "asterisk20" / "answered.jsonl"):
        tracker.feed(event)
        if event["Event"] == "Newstate" and event["ChannelStateDesc"] == "Up":
            assert tracker.ringing() == []


def test_a_call_whose_events_stop_is_closed_as_idle() -> None:
    events = load_events(NO_ANSWER)
    cut = next(i for i, e in enumerate(events) if e["Event"] == "DialState")
    tracker = CallTracker(idle_timeout=60)
    assert tracker.feed_all(events[: cut + 1]) == []
    last = event_time(events[cut])
    assert last is not None
    assert tracker.expire(last + timedelta(seconds=59)) == []
    (call,) = tracker.expire(last + timedelta(seconds=61))
    assert call.closed_by == "idle"
    assert call.outcome == "abandoned"  # nothing after ringing: treated as given up
    assert tracker.open_calls == 0


def test_idle_close_happens_by_itself_as_event_time_passes() -> None:
    events = load_events(NO_ANSWER)
    cut = next(i for i, e in enumerate(events) if e["Event"] == "DialState")
    tracker = CallTracker(idle_timeout=600)
    tracker.feed_all(events[: cut + 1])
    later = float(str(events[cut]["Timestamp"])) + 3600
    done = tracker.feed(  # another call, an hour later
        {"Event": "Newchannel", "Channel": "SIP/pstn-00000999", "Uniqueid": "9.1",
         "Linkedid": "9.1", "Timestamp": f"{later:.6f}"}
    )  # fmt: skip
    assert [c.closed_by for c in done] == ["idle"]


@pytest.mark.parametrize("path", all_fixtures(), ids=fixture_id)
def test_duplicated_events_change_nothing(path: Path) -> None:
    events = load_events(path)
    doubled = [e for event in events for e in (event, event)]
    assert records(doubled) == records(events)


def test_events_out_of_order_within_a_burst() -> None:
    # Asterisk may deliver DialEnd before the callee's Newstate Up (different threads).
    events = load_events(FIXTURES / "asterisk20" / "answered.jsonl")
    up = next(
        i
        for i, e in enumerate(events)
        if e["Event"] == "Newstate" and e["ChannelStateDesc"] == "Up"
    )
    dial_end = next(i for i, e in enumerate(events) if e["Event"] == "DialEnd")
    swapped = list(events)
    swapped[up], swapped[dial_end] = swapped[dial_end], swapped[up]
    (call,) = records(swapped)
    assert call["outcome"] == "answered"
    assert call["answered_by"] == "SIP/duty1"
    assert call["ring_seconds"] == pytest.approx(3.0, abs=0.01)


def test_hangup_before_newchannel_does_not_crash() -> None:
    events = load_events(FIXTURES / "asterisk20" / "busy_dnd.jsonl")
    hangups = [e for e in events if e["Event"] == "Hangup"]
    others = [e for e in events if e["Event"] != "Hangup"]
    out = records(hangups + others)
    assert len(out) <= 1


def test_handled_events_cover_what_the_listener_must_subscribe_to() -> None:
    handled = CallTracker().handled_events
    for name in ("Newchannel", "DialBegin", "DialEnd", "Hangup", "BridgeEnter", "AttendedTransfer"):
        assert name in handled
    assert "VarSet" not in handled  # the bulk of AMI traffic is not needed


def test_malformed_values_are_skipped_with_a_warning() -> None:
    warnings: list[str] = []
    tracker = CallTracker(on_warning=warnings.append)
    events = load_events(FIXTURES / "asterisk20" / "answered.jsonl")
    tracker.feed({"Event": "DialBegin", "Uniqueid": ["not", "a", "string"], "DestUniqueid": 5})
    tracker.feed({"Event": "Hangup", "Channel": None, "Uniqueid": None})
    tracker.feed({"Event": 42})
    calls = tracker.feed_all(events)
    assert [c.outcome for c in calls] == ["answered"]
    assert warnings


def test_a_ringing_spot_check_is_live_state_too() -> None:
    tracker = CallTracker()
    seen = []
    for event in load_events(FIXTURES / "asterisk20" / "spot_check_originate_answered.jsonl"):
        tracker.feed(event)
        seen.extend(call.endpoints for call in tracker.ringing())
    assert ("SIP/duty1",) in seen
