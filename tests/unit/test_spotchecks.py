"""Spot checks, the pure rules: the daily plan and the judgement of one check.

The call a check makes is the recorded spot-check transcript replayed through the tracker
(``spot_check_originate_answered.jsonl``: the Originate rings SIP/duty1, answered after
about 2 s), varied where a scenario needs it (answered late, not answered, answered on a
phone that is not a desk phone).
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from callcenter.clicktocall import OriginateRequest, spot_check_channel
from callcenter.config import load_config
from callcenter.replay import replay_calls
from callcenter.rules.calls import judge_call
from callcenter.rules.policy import LinePolicy
from callcenter.rules.schedule import is_monitored
from callcenter.spotchecks import (
    OriginateOutcome,
    PlanLine,
    judge_spot_check,
    pick_call,
    plan_day,
)
from callcenter.tracking.records import Call

FIXTURE = (
    Path(__file__).resolve().parent.parent
    / "fixtures"
    / "ami"
    / "asterisk20"
    / "spot_check_originate_answered.jsonl"
)
SHANGHAI = ZoneInfo("Asia/Shanghai")
POLICY = LinePolicy(
    number="12345",
    unit="县政府办",
    desk_phones=frozenset({"SIP/duty1", "PJSIP/2001"}),
    answer_within_seconds=15.0,
)


@pytest.fixture(scope="module")
def spot_call() -> Call:
    config = load_config(
        env={},
        overrides={
            "lines": [
                {"number": "12345", "unit": "县政府办", "desk_phones": ["SIP/duty1", "PJSIP/2001"]}
            ]
        },
    )
    (call,) = replay_calls([FIXTURE], config=config)
    return call


def originated_at(call: Call) -> datetime:
    assert call.started_at is not None
    return call.started_at - timedelta(milliseconds=300)


def judged(call: Call | None, outcome: OriginateOutcome, *, at: datetime, final: bool = True):
    return judge_spot_check(
        policy=POLICY,
        scheduled_at=at - timedelta(seconds=1),
        originated_at=at,
        outcome=outcome,
        call=call,
        officer="张三",
        final=final,
    )


# --------------------------------------------------------------------------- the call


def test_the_recorded_spot_check_is_an_originated_call_of_the_line(spot_call: Call) -> None:
    assert spot_call.originated
    assert spot_call.direction != "inbound"
    assert spot_call.line == "12345"
    assert spot_call.answered_by == "SIP/duty1"
    # a spot check's call is never judged as an unanswered (or slow) inbound call
    unanswered = dataclasses.replace(spot_call, outcome="no_answer", answered_by=None)
    assert judge_call(unanswered, POLICY) == []
    assert judge_call(spot_call, POLICY) == []


# --------------------------------------------------------------------------- judging


def test_answered_by_a_desk_phone_in_time_passes(spot_call: Call) -> None:
    at = originated_at(spot_call)
    verdict = judged(spot_call, OriginateOutcome("answered", "4"), at=at)
    assert verdict.result == "answered"
    assert verdict.passed
    assert verdict.violation is None
    assert verdict.detail == "answered by SIP/duty1 after 2.0 s"


def test_not_answered_is_a_violation_naming_line_unit_endpoint_time_officer(
    spot_call: Call,
) -> None:
    at = originated_at(spot_call)
    call = dataclasses.replace(
        spot_call, outcome="no_answer", answered_by=None, answered_at=None, ring_seconds=30.0
    )
    verdict = judged(call, OriginateOutcome("failed", "3"), at=at)
    assert verdict.result == "unanswered"
    assert not verdict.passed
    violation = verdict.violation
    assert violation is not None
    assert violation.kind == "spot_check_failed"
    assert violation.line == "12345"
    assert violation.endpoint == "SIP/duty1"
    assert violation.at == at
    assert violation.linkedid == spot_call.linkedid
    local = at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")
    assert violation.detail == (
        f"spot check of 12345 at {local} (县政府办, on duty: 张三): rang 30.0 s, nobody answered"
    )


def test_answered_too_late_is_a_violation(spot_call: Call) -> None:
    at = originated_at(spot_call)
    call = dataclasses.replace(spot_call, ring_seconds=21.5)
    verdict = judged(call, OriginateOutcome("answered", "4"), at=at)
    assert verdict.result == "late"
    assert verdict.violation is not None
    assert verdict.violation.endpoint == "SIP/duty1"
    assert verdict.violation.detail.endswith("answered after 21.5 s (limit 15 s)")


def test_answered_exactly_at_the_limit_passes(spot_call: Call) -> None:
    call = dataclasses.replace(spot_call, ring_seconds=15.0)
    verdict = judged(call, OriginateOutcome("answered", "4"), at=originated_at(spot_call))
    assert verdict.passed


def test_answered_away_from_the_desk_phones_fails(spot_call: Call) -> None:
    call = dataclasses.replace(spot_call, answered_by="SIP/mobile")
    verdict = judged(call, OriginateOutcome("answered", "4"), at=originated_at(spot_call))
    assert verdict.result == "unanswered"
    assert verdict.violation is not None
    assert verdict.violation.endpoint == "SIP/mobile"
    assert "not at a desk phone" in verdict.violation.detail


@pytest.mark.parametrize(
    ("reason", "result", "words"),
    [
        ("3", "unanswered", "not answered (no answer)"),
        ("1", "unanswered", "not answered (hung up)"),
        ("5", "failed", "the line could not be reached (busy)"),
        ("8", "failed", "the line could not be reached (congestion)"),
        ("0", "failed", "the line could not be reached (failed)"),
    ],
)
def test_a_failed_originate_without_a_call_is_a_violation(
    reason: str, result: str, words: str
) -> None:
    at = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    verdict = judged(None, OriginateOutcome("failed", reason), at=at)
    assert verdict.result == result
    assert verdict.violation is not None
    assert verdict.violation.linkedid is None
    assert verdict.violation.endpoint == "PJSIP/2001"  # a desk phone of the line
    assert verdict.violation.detail.endswith(words)


def test_without_the_call_the_judgement_waits_until_the_last_look(spot_call: Call) -> None:
    at = originated_at(spot_call)
    early = judged(None, OriginateOutcome("failed", "3"), at=at, final=False)
    assert early.pending and early.violation is None
    early = judged(None, OriginateOutcome("sent"), at=at, final=False)
    assert early.pending
    last = judged(None, OriginateOutcome("answered", "4"), at=at)
    assert last.passed  # the PBX says a desk phone answered; the time cannot be checked


@pytest.mark.parametrize(
    ("outcome", "detail"),
    [
        (OriginateOutcome("expired"), "never dialed: the request waited too long"),
        (OriginateOutcome(None), "never dialed: no listener took the request"),
        (OriginateOutcome("queued"), "never dialed: no listener took the request"),
        (OriginateOutcome("sent"), "dialed, but the PBX never said how it went"),
    ],
)
def test_a_check_the_system_never_dialed_is_no_violation(
    outcome: OriginateOutcome, detail: str
) -> None:
    verdict = judged(None, outcome, at=datetime(2026, 11, 23, 2, 0, tzinfo=UTC))
    assert verdict.result == "failed"
    assert verdict.violation is None
    assert verdict.detail.startswith(detail)


def test_pick_call_finds_the_check_s_call_and_no_other(spot_call: Call) -> None:
    at = originated_at(spot_call)
    inbound = dataclasses.replace(spot_call, linkedid="in.1", originated=False)
    other_line = dataclasses.replace(
        spot_call, linkedid="other.1", line="12347", caller="12347", legs=()
    )
    earlier = dataclasses.replace(
        spot_call, linkedid="early.1", started_at=at - timedelta(minutes=10)
    )
    calls = [inbound, other_line, earlier, spot_call]
    assert pick_call(calls, "12345", at) is spot_call
    assert pick_call(calls, "12345", at + timedelta(hours=1)) is None
    assert pick_call([other_line], "12345", at) is None


# --------------------------------------------------------------------------- planning


LINES = [
    PlanLine(1, "12345", "24h"),
    PlanLine(2, "12346", "08:00-12:00, 14:00-18:00"),
    PlanLine(3, "12347", "Sat-Sun 24h"),  # not monitored on weekdays
]
MONDAY = date(2026, 11, 23)


def test_the_plan_puts_n_checks_per_line_inside_its_monitored_hours() -> None:
    plan = plan_day(LINES, MONDAY, per_line=3, seed="test-seed")
    by_line: dict[int, list[datetime]] = {}
    for check in plan:
        by_line.setdefault(check.line_id, []).append(check.scheduled_at)
    assert sorted(by_line) == [1, 2]  # line 3 is not monitored on a Monday
    for line_id, times in by_line.items():
        line = LINES[line_id - 1]
        assert len(times) == 3
        for at in times:
            assert at.tzinfo is not None and at.microsecond == 0
            assert at.astimezone(SHANGHAI).date() == MONDAY
            assert is_monitored(line.schedule, at)
            # the ring (30 s) fits in the monitored span
            assert is_monitored(line.schedule, at + timedelta(seconds=29))
    # one check in each third of a 24 h day: morning, afternoon, evening
    hours = sorted(at.astimezone(SHANGHAI).hour for at in by_line[1])
    assert hours[0] < 8 and 8 <= hours[1] < 16 and hours[2] >= 16
    assert plan == sorted(plan, key=lambda c: (c.scheduled_at, c.line_id))


def test_the_plan_is_the_same_for_the_same_seed_and_differs_for_another() -> None:
    first = plan_day(LINES, MONDAY, per_line=4, seed="test-seed")
    assert plan_day(LINES, MONDAY, per_line=4, seed="test-seed") == first
    assert plan_day(LINES, MONDAY, per_line=4, seed="other") != first
    assert plan_day(LINES, MONDAY + timedelta(days=1), per_line=4, seed="test-seed") != first
    assert len(first) == 8
    assert plan_day(LINES, MONDAY, per_line=0) == []
    with pytest.raises(ValueError):
        plan_day(LINES, MONDAY, per_line=-1)


def test_a_line_with_a_bad_schedule_is_planned_around_the_clock() -> None:
    plan = plan_day([PlanLine(9, "999", "whenever")], MONDAY, per_line=2, seed=1)
    assert len(plan) == 2


# --------------------------------------------------------------------------- the Originate


def test_the_spot_check_originate_rings_the_line_and_plays_a_prompt() -> None:
    request = OriginateRequest(
        id="a" * 32,
        pbx="lab",
        from_endpoint=spot_check_channel("12345", "from-trunk"),
        number="12345",
        requested_by="system",
        requested_at=datetime(2026, 11, 23, 2, 0, tzinfo=UTC),
        kind="spot_check",
        spot_check_id=17,
        prompt="custom/spot-check",
        timeout_seconds=25,
    )
    # the listener passes its click-to-call context; a spot check keeps its own
    assert request.ami_action(context="from-internal") == {
        "Action": "Originate",
        "ActionID": "a" * 32,
        "Channel": "Local/12345@from-trunk",
        "Application": "Playback",
        "Data": "custom/spot-check",
        "Timeout": "25000",
        "CallerID": "抽查 <12345>",
        "Async": "true",
        "Variable": "CALLCENTER_SPOTCHECK=17",
    }
    assert OriginateRequest.from_json(request.to_json()) == request
