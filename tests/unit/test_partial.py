"""Joining mid-stream: every fixture replayed with its first 1, 2, ... N events dropped.

As cacofonisk's ``test_partial``: the tracker must never crash and never invent a call that
the full replay does not have (a Linkedid of its own, or the same call twice).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from callcenter.tracking.tracker import CallTracker
from tests.unit.helpers import all_fixtures, fixture_id, load_events


def _replay(events: list[dict[str, object]]) -> list[str]:
    warnings: list[str] = []
    tracker = CallTracker(on_warning=warnings.append)
    calls = tracker.feed_all(events) + tracker.flush()
    return [call.linkedid for call in calls]


@pytest.mark.parametrize("path", all_fixtures(), ids=fixture_id)
def test_dropping_first_events_never_invents_calls(path: Path) -> None:
    events = load_events(path)
    full = _replay(events)
    assert len(full) == len(set(full)), "the full replay reports a call twice"
    for start in range(1, len(events) + 1):
        partial = _replay(events[start:])
        assert len(partial) == len(set(partial)), f"a call reported twice after dropping {start}"
        invented = set(partial) - set(full)
        assert not invented, f"dropping the first {start} events invented {sorted(invented)}"
