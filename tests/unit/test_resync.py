"""Re-sync after a listener outage: calls up at the drop complete with estimated times."""

from __future__ import annotations

from datetime import timedelta

import pytest

from callcenter.ami.listener import _estimate_missed_calls
from callcenter.tracking.names import event_time
from callcenter.tracking.tracker import CallTracker
from tests.unit.helpers import FIXTURES, load_events

ANSWERED = load_events(FIXTURES / "asterisk20" / "answered.jsonl")


def _until(events: list[dict[str, object]], name: str, state: str | None = None) -> int:
    return next(
        i
        for i, e in enumerate(events)
        if e["Event"] == name and (state is None or e.get("ChannelStateDesc") == state)
    )


def test_channels_gone_during_the_outage_end_at_resync_with_estimated_times() -> None:
    tracker = CallTracker()
    cut = _until(ANSWERED, "BridgeEnter")  # the call is answered and talking at the drop
    tracker.feed_all(ANSWERED[: cut + 1])
    at = event_time(ANSWERED[-1])
    assert at is not None
    (call,) = tracker.resync([], at + timedelta(seconds=30))  # nothing is up any more
    assert call.outcome == "answered"
    assert call.answered_by == "SIP/duty1"
    assert call.times_estimated
    assert call.talk_seconds is not None and call.talk_seconds > 30
    assert tracker.open_calls == 0


def test_calls_still_up_go_on_and_end_normally_after_resync() -> None:
    tracker = CallTracker()
    cut = _until(ANSWERED, "BridgeEnter")
    tracker.feed_all(ANSWERED[: cut + 1])
    up = [
        {
            "Event": "CoreShowChannel",
            "Channel": e["Channel"],
            "Uniqueid": e["Uniqueid"],
            "Linkedid": e["Linkedid"],
            "ChannelStateDesc": "Up",
            "Duration": "00:00:05",
        }
        for e in ANSWERED
        if e["Event"] == "Newchannel"
    ]
    at = event_time(ANSWERED[cut])
    assert at is not None
    assert tracker.resync(up, at + timedelta(seconds=1)) == []
    (call,) = tracker.feed_all(ANSWERED[cut + 1 :])
    assert call.outcome == "answered"
    assert call.closed_by == "hangup"
    assert not call.times_estimated  # every channel was seen all along


def test_a_call_that_began_during_the_outage_is_followed_from_the_listing() -> None:
    tracker = CallTracker()
    at = event_time(ANSWERED[-1])
    assert at is not None
    up = [
        {"Event": "CoreShowChannel", "Channel": "SIP/pstn-00000070", "Uniqueid": "1795.200",
         "Linkedid": "1795.200", "ChannelStateDesc": "Up", "CallerIDNum": "13800000001",
         "Exten": "12345", "Duration": "00:01:00"},
        {"Event": "CoreShowChannel", "Channel": "SIP/duty1-00000071", "Uniqueid": "1795.201",
         "Linkedid": "1795.200", "ChannelStateDesc": "Up", "Duration": "00:00:50"},
    ]  # fmt: skip
    assert tracker.resync(up, at) == []
    done = tracker.feed_all(
        [
            {"Event": "Hangup", "Channel": "SIP/duty1-00000071", "Uniqueid": "1795.201",
             "Linkedid": "1795.200", "Cause": "16", "Timestamp": f"{at.timestamp() + 10}"},
            {"Event": "Hangup", "Channel": "SIP/pstn-00000070", "Uniqueid": "1795.200",
             "Linkedid": "1795.200", "Cause": "16", "Timestamp": f"{at.timestamp() + 10}"},
        ]
    )  # fmt: skip
    (call,) = done
    assert call.outcome == "answered"
    assert call.answered_by == "SIP/duty1"
    assert call.caller == "13800000001"
    assert call.times_estimated
    assert call.started_at == at - timedelta(minutes=1)


def test_missed_calls_are_estimated_from_the_uniqueid_gap() -> None:
    up = [{"Uniqueid": "1795432900.140"}, {"Uniqueid": "1795432900.141"}]
    # last seen .120; .121-.139 came and went unseen: 19 channels, about 10 calls
    assert _estimate_missed_calls(120, up) == 10
    assert _estimate_missed_calls(None, up) is None
    # nothing created since the drop is up: not known at the re-sync, counted at the next
    # channel the PBX creates (tests/integration/test_listener_recovery.py)
    assert _estimate_missed_calls(150, up) is None


def test_a_channel_seen_after_the_listing_was_asked_for_is_not_ended() -> None:
    """Events that arrive while CoreShowChannels is in flight: their channels are alive."""
    tracker = CallTracker()
    cut = _until(ANSWERED, "BridgeEnter")
    tracker.feed_all(ANSWERED[:cut])
    mark = tracker.event_seq  # CoreShowChannels sent now
    tracker.feed_all(ANSWERED[cut : cut + 2])  # both legs bridge while it is in flight
    at = event_time(ANSWERED[cut])
    assert at is not None
    assert tracker.resync([], at + timedelta(seconds=1), since=mark) == []
    assert tracker.open_calls == 1
    (call,) = tracker.feed_all(ANSWERED[cut + 2 :])
    assert call.outcome == "answered"
    assert call.closed_by == "hangup"
    assert not call.times_estimated


@pytest.mark.parametrize(
    ("event", "restarted"),
    [
        ({"Event": "Newchannel", "Uniqueid": "1795432860.3"}, True),  # new, numbered lower
        ({"Event": "Newchannel", "Uniqueid": "1795432700.99"}, False),  # an older channel
        ({"Event": "FullyBooted", "Uptime": "20"}, True),  # booted after the drop
        ({"Event": "FullyBooted", "Uptime": "86400"}, False),  # a login's FullyBooted
    ],
)
def test_missed_calls_are_unknown_after_a_pbx_restart(
    event: dict[str, str], restarted: bool
) -> None:
    from datetime import UTC, datetime

    from callcenter.ami.listener import Outage, PbxListener

    start = datetime.fromtimestamp(1795432800, UTC)
    listener = PbxListener("lab", host="127.0.0.1", port=1, username="u", secret="s",
                           tracker=CallTracker(), sink=None, clock=lambda: 1795432900.0)  # type: ignore[arg-type]  # fmt: skip
    listener._outage = Outage(start, 120)
    listener.on_event({**event, "Timestamp": "1795432900.0"})
    assert listener._outage.restarted is restarted
