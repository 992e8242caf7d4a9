"""Numbers parsed from AMI headers never overflow the database columns they end up in."""

from __future__ import annotations

import logging

import pytest

from callcenter.tracking.names import INT_MAX, to_cause, to_int
from callcenter.tracking.tracker import CallTracker


@pytest.mark.parametrize(
    ("raw", "want"),
    [("16", 16), (" 17 ", 17), ("-3", -3), (21, 21), (str(INT_MAX), INT_MAX),
     ("", None), (None, None), ("abc", None), ("1_000", None), ("16.0", None), (True, None)],
)  # fmt: skip
def test_to_int_reads_plain_integers(raw: object, want: int | None) -> None:
    assert to_int(raw) == want


@pytest.mark.parametrize("raw", ["99999999999999999999", str(INT_MAX + 1), "9" * 5000, 2**40])
def test_an_out_of_range_number_is_none_with_a_warning(
    raw: object, caplog: pytest.LogCaptureFixture
) -> None:
    assert to_int(raw) is None
    assert any("out of range" in r.getMessage() for r in caplog.records)


def test_a_cause_is_bounded_to_cause_codes(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    assert to_cause("16") == 16
    assert to_cause("65536") is None
    assert to_cause("-1") is None


def test_a_huge_cause_header_gives_a_call_without_a_cause() -> None:
    tracker = CallTracker()
    base = {"Channel": "SIP/pstn-00000001", "Uniqueid": "1.1", "Linkedid": "1.1"}
    first = {"Event": "Newchannel", "ChannelStateDesc": "Ring", "CallerIDNum": "13800000009"}
    tracker.feed({**base, **first, "Exten": "12345", "Timestamp": "1795432818.1"})
    last = {"Event": "Hangup", "Cause": "99999999999999999999", "Timestamp": "1795432819.1"}
    (call,) = tracker.feed({**base, **last})
    assert call.hangup_cause is None
