"""The per-call rules on calls the tracker made from AMI events (generated in Asterisk's shapes).

Issue 4's rules that no recorded fixture shows on its own: a caller who gives up after 3 s is
recorded as abandoned but is no violation; one who waited past the threshold is; a duty call
answered by a phone that is not one of the line's desk phones is ``forwarded``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from random import Random

import pytest

from callcenter.ami.generator import Flavour, generate_call
from callcenter.rules.calls import judge_call
from callcenter.rules.policy import LinePolicy
from callcenter.tracking.directory import Directory, DutyLine
from callcenter.tracking.records import Call
from callcenter.tracking.tracker import CallTracker

START = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)


def track(events: list[dict[str, str]], directory: Directory) -> Call:
    tracker = CallTracker(directory, on_warning=pytest.fail)
    calls = tracker.feed_all(events) + tracker.flush()
    assert len(calls) == 1
    return calls[0]


def policy_of(line: str, *desk_phones: str) -> LinePolicy:
    return LinePolicy(number=line, desk_phones=frozenset(desk_phones), answer_within_seconds=15)


@pytest.mark.parametrize("flavour", ["sip", "pjsip"])
@pytest.mark.parametrize(
    ("ring", "kinds"),
    [
        (3, []),  # gave up after 3 s: recorded as abandoned, no violation
        (18, ["unanswered"]),  # waited past the 15 s threshold before giving up
    ],
)
def test_an_abandoned_call_is_a_violation_only_past_the_threshold(
    flavour: Flavour, ring: int, kinds: list[str]
) -> None:
    events, scenario = generate_call(
        "abandoned", rng=Random(ring), start=START, flavour=flavour, ring_seconds=ring
    )
    directory = Directory.of([DutyLine(scenario.line, frozenset(scenario.desk_phones))])
    call = track(events, directory)
    assert call.outcome == "abandoned"
    assert call.ring_seconds == pytest.approx(ring, abs=0.01)
    found = judge_call(call, policy_of(scenario.line, *scenario.desk_phones))
    assert [v.kind for v in found] == kinds
    assert all(v.endpoint in scenario.desk_phones for v in found)


def duty2_answers(tracked_desk_phones: frozenset[str]) -> Call:
    """Ring group 12346 rings duty1 and duty2, duty2 answers after 4 s; tracked with the
    line's desk phones as the listener knew them."""
    events, scenario = generate_call(
        "ring_group_answered",
        rng=Random(3),
        start=START,
        desk_phones=("SIP/duty1", "SIP/duty2"),
        answer_on="SIP/duty2",
        ring_seconds=4,
    )
    call = track(events, Directory.of([DutyLine(scenario.line, tracked_desk_phones)]))
    assert call.outcome == "answered"
    assert call.answered_by == "SIP/duty2"
    return call


BOTH = frozenset({"SIP/duty1", "SIP/duty2"})
ONLY_DUTY1 = frozenset({"SIP/duty1"})


def test_answered_by_a_phone_that_is_not_a_desk_phone_is_forwarded() -> None:
    """The ring group 12346 rings duty1 and duty2; only duty1 is a desk phone of the line
    (duty2 is, say, the office next door): duty2 answering is the duty call leaving the
    desk, so it is ``forwarded``, naming the phone that took it."""
    call = duty2_answers(ONLY_DUTY1)
    assert call.forwarded_to == "SIP/duty2"
    found = judge_call(call, policy_of(call.line or "", *ONLY_DUTY1))
    assert [(v.kind, v.endpoint) for v in found] == [("forwarded", "SIP/duty2")]


def test_the_same_call_answered_by_a_desk_phone_is_no_violation() -> None:
    call = duty2_answers(BOTH)
    assert call.forwarded_to is None
    assert judge_call(call, policy_of(call.line or "", *BOTH)) == []


def test_desk_phones_edited_after_the_call_was_tracked_are_what_judges_it() -> None:
    """The listener tracked with the config's desk phones (duty1 and duty2); the unit admin
    has since taken duty2 off the line in the console: the worker judges with the stored
    policy, so duty2 answering is ``forwarded`` although the record has no forward."""
    call = duty2_answers(BOTH)
    assert call.forwarded_to is None
    found = judge_call(call, policy_of(call.line or "", *ONLY_DUTY1))
    assert [(v.kind, v.endpoint) for v in found] == [("forwarded", "SIP/duty2")]
    assert "not a desk phone of" in found[0].detail
