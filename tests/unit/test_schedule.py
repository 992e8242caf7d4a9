"""Line schedules (when a duty line is monitored) and the roster lookup (who is on shift).

Times are written in Beijing time (UTC+08:00, the default zone); the functions take UTC.
2026-11-23 is a Monday.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from callcenter.rules.schedule import (
    ALWAYS,
    ScheduleError,
    ShiftSpan,
    is_monitored,
    monitored_intervals,
    monitored_seconds,
    next_monitored,
    parse_schedule,
    shift_at,
)

BJ = timezone(timedelta(hours=8))


def bj(day: int, hour: int, minute: int = 0) -> datetime:
    """A moment in Beijing time on 2026-11-<day>, as UTC."""
    return datetime(2026, 11, day, hour, minute, tzinfo=BJ).astimezone(UTC)


# ---------------------------------------------------------------------------- parsing


def test_24h_is_always() -> None:
    assert parse_schedule("24h") is ALWAYS
    assert parse_schedule(" 24H ") is ALWAYS
    assert is_monitored("24h", bj(23, 3))


def test_spans_and_weekday_prefix() -> None:
    sched = parse_schedule("Mon-Fri 08:00-12:00, 14:00-18:00, Sat 09:00-11:00")
    weekdays = frozenset(range(5))
    assert [(s.days, s.start, s.end) for s in sched.spans] == [
        (weekdays, 8 * 3600, 12 * 3600),
        (weekdays, 14 * 3600, 18 * 3600),  # the prefix carries over
        (frozenset({5}), 9 * 3600, 11 * 3600),
    ]


def test_full_width_punctuation_and_24h_span() -> None:
    sched = parse_schedule("Mon-Fri 18:00～08:30，Sat-Sun 24h")
    assert [(sorted(s.days), s.start, s.end) for s in sched.spans] == [
        ([0, 1, 2, 3, 4], 18 * 3600, 8 * 3600 + 1800),
        ([5, 6], 0, 86400),
    ]


def test_weekday_range_may_wrap() -> None:
    (span,) = parse_schedule("Fri-Mon 10:00-11:00").spans
    assert span.days == frozenset({4, 5, 6, 0})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("08:00", "is not HH:MM-HH:MM"),
        ("8-18", "is not HH:MM-HH:MM"),
        ("08:00-18:00,", "empty span between commas"),
        ("25:00-26:00", "bad time 25:00"),
        ("08:61-09:00", "bad time 08:61"),
        ("24:00-08:00", "starts at 24:00"),
        ("24:30-08:00", "bad time 24:30"),
        ("08:00-08:00", "is empty (start equals end)"),
        ("Mox-Fri 08:00-18:00", "unknown weekday 'Mox'"),
        ("Mon-Fri", "cannot read 'Mon-Fri'"),
        ("weekdays please", "unknown weekday 'weekdays'"),
    ],
)
def test_bad_schedules_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        parse_schedule(text)
    assert message in str(caught.value)
    assert str(caught.value).startswith(f"schedule {text!r}: ")
    assert caught.value.text == text


# ------------------------------------------------------------------------ monitored


def test_day_span_end_is_exclusive() -> None:
    assert not is_monitored("08:00-18:00", bj(23, 7, 59))
    assert is_monitored("08:00-18:00", bj(23, 8, 0))
    assert is_monitored("08:00-18:00", bj(23, 17, 59))
    assert not is_monitored("08:00-18:00", bj(23, 18, 0))


def test_span_crossing_midnight() -> None:
    night = "18:00-08:30"
    assert is_monitored(night, bj(23, 18, 0))
    assert is_monitored(night, bj(23, 23, 59))
    assert is_monitored(night, bj(24, 0, 0))
    assert is_monitored(night, bj(24, 8, 29))
    assert not is_monitored(night, bj(24, 8, 30))
    assert not is_monitored(night, bj(24, 12, 0))


def test_weekday_night_span_belongs_to_the_day_it_starts() -> None:
    # Mon-Fri nights: Friday 18:00 to Saturday 08:30 is monitored; Saturday night is not,
    # and the early hours of Monday are not (Sunday started no span).
    sched = "Mon-Fri 18:00-08:30"
    assert is_monitored(sched, bj(28, 7, 0))  # Saturday 07:00, Friday's night
    assert not is_monitored(sched, bj(28, 20, 0))  # Saturday evening
    assert not is_monitored(sched, bj(30, 7, 0))  # Monday 07:00 (Sunday night)
    assert is_monitored(sched, bj(30, 19, 0))  # Monday evening


def test_other_time_zone() -> None:
    at = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # 17:00 in Shanghai, 10:00 in Berlin
    assert is_monitored("08:00-12:00", at, tz="Europe/Berlin")
    assert not is_monitored("08:00-12:00", at)


def test_naive_times_are_utc() -> None:
    assert is_monitored("08:00-18:00", datetime(2026, 11, 23, 1, 0))  # 09:00 Beijing


def test_monitored_intervals_are_clipped_and_merged() -> None:
    # Offline from Monday 17:00 to Tuesday 09:00; monitored 08:00-18:00 → 1 h + 1 h.
    spans = monitored_intervals("08:00-18:00", bj(23, 17), bj(24, 9))
    assert spans == [(bj(23, 17), bj(23, 18)), (bj(24, 8), bj(24, 9))]
    assert monitored_seconds("08:00-18:00", bj(23, 17), bj(24, 9)) == 7200
    # Adjacent spans across midnight merge into one stretch.
    merged = monitored_intervals("18:00-24:00, 00:00-08:00", bj(23, 20), bj(24, 7))
    assert merged == [(bj(23, 20), bj(24, 7))]
    assert monitored_intervals("24h", bj(23, 1), bj(23, 2)) == [(bj(23, 1), bj(23, 2))]
    assert monitored_intervals("24h", bj(23, 2), bj(23, 1)) == []


def test_next_monitored() -> None:
    assert next_monitored("08:00-18:00", bj(23, 20)) == bj(24, 8)
    assert next_monitored("08:00-18:00", bj(23, 9)) == bj(23, 9)
    assert next_monitored("Sat 09:00-10:00", bj(23, 9)) == bj(28, 9)


# ----------------------------------------------------------------------------- roster


def test_shift_at_picks_the_shift_the_moment_falls_in() -> None:
    day = ShiftSpan(1, bj(23, 8), bj(23, 18), "张三", "李四", "王局长")
    night = ShiftSpan(2, bj(23, 18), bj(24, 8), "赵六", "", "王局长")
    shifts = [night, day]
    assert shift_at(shifts, bj(23, 9)) is day
    assert shift_at(shifts, bj(23, 18)) is night  # the end is exclusive, the start not
    assert shift_at(shifts, bj(24, 7, 59)) is night
    assert shift_at(shifts, bj(24, 8)) is None
    assert shift_at(shifts, None) is None
    assert shift_at([], bj(23, 9)) is None


def test_shift_at_with_naive_utc_times_from_the_database() -> None:
    shift = ShiftSpan("s1", datetime(2026, 11, 23, 0, 0), datetime(2026, 11, 23, 10, 0), "张三")
    assert shift_at([shift], bj(23, 9)) is shift  # 01:00 UTC
    assert shift_at([shift], datetime(2026, 11, 23, 9, 59)) is shift


def test_overlapping_shifts_the_later_start_wins() -> None:
    early = ShiftSpan(1, bj(23, 8), bj(23, 20), "张三")
    late = ShiftSpan(2, bj(23, 17), bj(24, 8), "赵六")
    assert shift_at([late, early], bj(23, 18)) is late
