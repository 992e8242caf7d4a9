"""The replay server's answer to a spot check while it plays generated traffic: a generated
call that the tracker follows and the spot check finds and judges (the demo's spot checks
used to end as "answered, call not found")."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from callcenter.ami.generator import Counters, generate_stream
from callcenter.ami.replay_server import OriginateResult
from callcenter.ami.spot_check_answers import GeneratedSpotCheckAnswers
from callcenter.rules.policy import LinePolicy
from callcenter.spotchecks import OriginateOutcome, judge_spot_check, pick_call
from callcenter.tracking.directory import Directory, DutyLine
from callcenter.tracking.tracker import CallTracker

NOW = 1_795_000_000.0  # the wall clock at the Originate
LINE = "12346"
PHONES = frozenset({"SIP/duty1", "SIP/duty2"})
SPOT_CHECK = {"Channel": f"Local/{LINE}@duty-spot-check", "Application": "Playback"}


def test_every_spot_check_gets_a_call_that_it_finds_and_judges_as_the_originate_ended() -> None:
    answers = GeneratedSpotCheckAnswers(seed=11, numbering=Counters(1000), clock=lambda: NOW)
    tracker = CallTracker(Directory.of([DutyLine(LINE, PHONES)]))
    originated_at = datetime.fromtimestamp(NOW, UTC)
    policy = LinePolicy(number=LINE, unit="县政府办", desk_phones=PHONES)
    linkedids = set()
    verdicts = []
    for _ in range(20):
        result = answers(SPOT_CHECK)
        calls = tracker.feed_all(result.events)
        call = pick_call(calls, LINE, originated_at, desk_phones=PHONES)
        assert call is not None, "the check finds the call its Originate made"
        assert call.originated and call.direction != "inbound"
        assert call.linkedid not in linkedids, "every check makes a call of its own"
        linkedids.add(call.linkedid)
        assert (call.outcome == "answered") == result.success
        assert result.delay >= (call.ring_seconds or 0)  # the response comes after the call
        verdict = judge_spot_check(
            policy=policy,
            scheduled_at=originated_at,
            originated_at=originated_at,
            outcome=OriginateOutcome(
                "answered" if result.success else "failed", str(result.reason)
            ),
            call=call,
        )
        verdicts.append(verdict.result)
    assert tracker.open_calls == 0
    assert "answered" in verdicts


def test_other_originates_get_the_servers_plain_answer() -> None:
    answers = GeneratedSpotCheckAnswers(seed=11, numbering=Counters(1000))
    click_to_call = {"Channel": "SIP/duty1", "Context": "from-internal", "Exten": "13800138000"}
    assert answers(click_to_call) == OriginateResult()


def test_a_generated_day_and_its_spot_checks_share_one_numbering() -> None:
    """As one Asterisk numbers every channel: no Uniqueid or channel name of a spot check
    comes again in the generated day, which is the same day as without spot checks."""
    counters = Counters()
    day = generate_stream(7, counters=counters)
    before = [next(day) for _ in range(400)]
    assert before == list(itertools.islice(generate_stream(7), 400))
    answers = GeneratedSpotCheckAnswers(seed=7, numbering=counters, clock=lambda: NOW)
    checks = [answers(SPOT_CHECK) for _ in range(3)]
    after = [next(day) for _ in range(2000)]

    def names(events: Iterable[Mapping[str, str]]) -> set[str]:
        keys = ("Uniqueid", "Linkedid", "Channel")
        return {e[k] for e in events for k in keys if e.get(k)}

    spot = names(e for check in checks for e in check.events)
    assert spot and not spot & names(before + after)
