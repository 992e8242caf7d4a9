"""Shared helper for the benchmarks: load the AMI fixtures and make many distinct copies.

A *copy* of a fixture is the same list of events with every id rewritten so that it is a
different call to a tracker:

* every header whose name ends in ``Uniqueid`` or ``Linkedid`` (``Uniqueid``, ``Linkedid``,
  ``DestUniqueid``, ``LocalOneLinkedid``, ``BridgeUniqueid``, ``SwapUniqueid``, ...) gets
  ``old + <copy number, 7 digits>``;
* every channel name (headers ending in ``Channel``, plus ``Newname``/``Oldname``) keeps its
  technology and endpoint and gets its hex counter prefixed by the copy number in hex:
  ``SIP/duty1-00000063`` -> ``SIP/duty1-0000abc00000063``, ``Local/2@ctx-0000000b;2`` ->
  ``Local/2@ctx-0000abc0000000b;2`` (still ``-<hex>[;1|;2]``, so endpoint parsing and the
  order of counters inside one copy are unchanged).

Both rewrites are pure functions of ``(copy number, old value)``, so inside one copy the same
old id always becomes the same new id in every header (``Uniqueid == Linkedid`` stays true
for a call's first channel, ``DestUniqueid`` still names that channel's ``Uniqueid``, ...),
and different copies never share an id. Empty ids stay empty (an Originate's ``DialBegin``
has ``Uniqueid: ""``). Nothing else in the event changes; the value objects that are not
rewritten are shared with the fixture (events are read-only for both trackers).

``build_mix`` lays copies out on one time line (each copy keeps its own relative times) and
merges them by time, so that about ``in_flight`` calls overlap at any moment.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Event = dict[str, Any]

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "ami"

#: Connection-level events: sent once when a manager session logs in, not part of any call.
#: Copied into the middle of a stream they would mean "the AMI connection was re-made"
#: (cacofonisk flushes all its channels on ``FullyBooted``), so copies leave them out.
CONNECTION_EVENTS = frozenset({"FullyBooted", "SuccessfulAuth"})

#: Recorder-only keys of the .jsonl transcripts (a live AMI event has none of them).
RECORDER_KEYS = frozenset({"_kind", "_recv", "_banner"})

#: Spacing of the synthetic clock given to fixtures recorded without any ``Timestamp``.
UNTIMED_STEP = 0.1

#: Epoch second the mixed time line starts at (the asterisk20 lab's recording day).
BASE_TIME = 1_795_432_800.0

_COUNTER = re.compile(r"^(.*-)([0-9a-fA-F]+)((?:;[12])?)$")
_ID_SUFFIXES = ("Uniqueid", "Linkedid")
_CHANNEL_KEYS = frozenset({"Newname", "Oldname"})


# -- loading ---------------------------------------------------------------------------------


def fixture_paths(root: Path = FIXTURES) -> list[Path]:
    """Every call transcript: asterisk20*/*.jsonl and cacofonisk/**/*.json, sorted."""
    paths = sorted(root.glob("asterisk20*/*.jsonl"))
    paths += sorted(root.glob("cacofonisk/**/*.json"))
    return paths


def load_events(path: Path) -> list[Event]:
    """The AMI events of one fixture, in order (.jsonl: objects with an ``Event`` key)."""
    if path.suffix == ".jsonl":
        with path.open(encoding="utf-8") as f:
            messages = [json.loads(line) for line in f if line.strip()]
    else:
        with path.open(encoding="utf-8") as f:
            messages = json.load(f)
    return [m for m in messages if isinstance(m, dict) and "Event" in m]


def fixture_name(path: Path, root: Path = FIXTURES) -> str:
    return path.relative_to(root).as_posix()


@dataclass
class Fixture:
    """One fixture ready for copying: its events and each event's time offset in seconds."""

    name: str
    events: list[Event]
    offsets: list[float]  # relative time of each event, non-decreasing, first = 0.0
    timed: list[bool]  # did the event carry a Timestamp (or get a synthetic one)?
    dropped: dict[str, int] = field(default_factory=dict)  # connection events left out

    @property
    def duration(self) -> float:
        return self.offsets[-1] if self.offsets else 0.0


def prepare(path: Path, root: Path = FIXTURES) -> Fixture:
    """Load one fixture, drop connection and recorder keys/events, compute time offsets.

    A fixture recorded with ``timestampevents = yes`` keeps its real relative times; an event
    of it without ``Timestamp`` (AMI action responses such as ``EndpointDetail``) stays
    untimed. A fixture without any ``Timestamp`` (the cacofonisk ones) gets a synthetic clock
    of ``UNTIMED_STEP`` seconds per event, as if recorded with ``timestampevents = yes``.
    """
    raw = load_events(path)
    dropped: dict[str, int] = {}
    events: list[Event] = []
    for e in raw:
        if e["Event"] in CONNECTION_EVENTS:
            dropped[e["Event"]] = dropped.get(e["Event"], 0) + 1
            continue
        events.append({k: v for k, v in e.items() if k not in RECORDER_KEYS})
    stamps = [_float(e.get("Timestamp")) for e in events]
    if any(s is not None for s in stamps):
        first = next(s for s in stamps if s is not None)
        offsets, timed, last = [], [], 0.0
        for s in stamps:
            if s is not None:
                last = max(last, s - first)
            offsets.append(last)
            timed.append(s is not None)
    else:
        offsets = [i * UNTIMED_STEP for i in range(len(events))]
        timed = [True] * len(events)
    return Fixture(fixture_name(path, root), events, offsets, timed, dropped)


def load_fixtures(root: Path = FIXTURES) -> list[Fixture]:
    return [f for f in (prepare(p, root) for p in fixture_paths(root)) if f.events]


def _float(value: object) -> float | None:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


# -- rewriting ids ---------------------------------------------------------------------------


def new_id(old: str, copy: int) -> str:
    """``1795432818.102`` of copy 42 -> ``1795432818.1020000042`` (empty stays empty)."""
    return f"{old}{copy:07d}" if old else old


def new_channel(old: str, copy: int) -> str:
    """``SIP/duty1-00000063`` of copy 42 -> ``SIP/duty1-00002a00000063`` (hex counter)."""
    m = _COUNTER.match(old)
    if m is None:
        return f"{old}-{copy:06x}" if old else old
    return f"{m.group(1)}{copy:06x}{m.group(2)}{m.group(3)}"


def is_id_key(key: str) -> bool:
    return key.endswith(_ID_SUFFIXES)


def is_channel_key(key: str) -> bool:
    return key.endswith("Channel") or key in _CHANNEL_KEYS


class Rewriter:
    """Rewrites the events of one copy; memoised per (header, old value).

    The memo only saves work: the result is the pure ``new_id``/``new_channel``. It is keyed
    by header name too, so that (as when a real AMI client parses each header) ``Uniqueid``
    and ``Linkedid`` of one channel are equal strings but not the same string object.
    """

    __slots__ = ("_ids", "copy")

    def __init__(self, copy: int) -> None:
        self.copy = copy
        self._ids: dict[tuple[str, str], str] = {}

    def value(self, key: str, value: Any) -> Any:
        if not isinstance(value, str) or not value:
            return value
        memo = self._ids.get((key, value))
        if memo is None:
            if is_id_key(key):
                memo = new_id(value, self.copy)
            elif is_channel_key(key):
                memo = new_channel(value, self.copy)
            else:
                memo = value
            self._ids[(key, value)] = memo
        return memo

    def event(self, e: Mapping[str, Any], timestamp: float | None = None) -> Event:
        out = {k: self.value(k, v) for k, v in e.items()}
        if timestamp is not None:
            out["Timestamp"] = f"{timestamp:.6f}"
        return out


def copy_events(
    fixture: Fixture, copy: int, start: float | None = BASE_TIME, lo: int = 0, hi: int | None = None
) -> list[Event]:
    """Copy ``copy`` of ``fixture.events[lo:hi]``; timed events get ``start + offset``.

    With ``start=None`` the Timestamps are left as recorded (untimed events stay untimed).
    """
    rw = Rewriter(copy)
    end = len(fixture.events) if hi is None else hi
    out: list[Event] = []
    for i in range(lo, end):
        ts = start + fixture.offsets[i] if start is not None and fixture.timed[i] else None
        out.append(rw.event(fixture.events[i], ts))
    return out


def iter_copy(
    fixture: Fixture, copy: int, start: float | None, lo: int, hi: int
) -> Iterator[Event]:
    """Like ``copy_events`` but lazy (the memory benchmark does not keep the events)."""
    rw = Rewriter(copy)
    for i in range(lo, hi):
        ts = start + fixture.offsets[i] if start is not None and fixture.timed[i] else None
        yield rw.event(fixture.events[i], ts)


# -- the mix ---------------------------------------------------------------------------------


@dataclass
class Mix:
    events: list[Event]
    copies: int
    per_fixture: dict[str, int]  # copies made of each fixture
    fixtures: list[Fixture]
    in_flight_mean: float
    in_flight_peak: int
    span_seconds: float
    dropped: dict[str, int]  # connection events left out (all copies)
    next_copy: int  # first copy number not used (to build a following, distinct mix)


def build_mix(
    n_events: int = 200_000,
    in_flight: int = 500,
    fixtures: list[Fixture] | None = None,
    first_copy: int = 1,
    copies: int | None = None,
    start_time: float = BASE_TIME,
) -> Mix:
    """At least ``n_events`` events (or exactly ``copies`` copies): every fixture in turn.

    Copy ``i`` starts ``i * spacing`` seconds after ``start_time``, with ``spacing`` chosen so
    that about ``in_flight`` copies overlap (spacing = mean copy duration / in_flight). Events
    are ordered by (time, copy, position in the fixture), so each copy keeps its own order.
    """
    fixtures = fixtures if fixtures is not None else load_fixtures()
    if not fixtures:
        raise SystemExit(f"no fixtures found under {FIXTURES}")
    # Untimed single events (dnd flags) are "calls" of ~0 s: count at least 1 s each.
    mean_duration = sum(max(f.duration, 1.0) for f in fixtures) / len(fixtures)
    spacing = mean_duration / max(1, in_flight)
    keyed: list[tuple[float, int, int, Event]] = []
    per_fixture: dict[str, int] = {}
    dropped: dict[str, int] = {}
    intervals: list[tuple[float, float]] = []
    total, n = 0, 0
    while (n < copies) if copies is not None else (total < n_events):
        fx = fixtures[n % len(fixtures)]
        copy = first_copy + n
        start = start_time + n * spacing
        for i, e in enumerate(copy_events(fx, copy, start)):
            keyed.append((start + fx.offsets[i], copy, i, e))
        intervals.append((start, start + fx.duration))
        per_fixture[fx.name] = per_fixture.get(fx.name, 0) + 1
        for name, count in fx.dropped.items():
            dropped[name] = dropped.get(name, 0) + count
        total += len(fx.events)
        n += 1
    keyed.sort(key=lambda item: item[:3])
    mean, peak = _overlap(intervals)
    span = keyed[-1][0] - keyed[0][0] if keyed else 0.0
    return Mix(
        [k[3] for k in keyed], n, per_fixture, fixtures, mean, peak, span, dropped, first_copy + n
    )


def _overlap(intervals: list[tuple[float, float]]) -> tuple[float, int]:
    """Time-weighted mean and peak number of overlapping [start, end] intervals."""
    points = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    if not points:
        return 0.0, 0
    live = peak = 0
    area = 0.0
    prev = points[0][0]
    for t, step in points:
        area += live * (t - prev)
        prev = t
        live += step
        peak = max(peak, live)
    span = points[-1][0] - points[0][0]
    return (area / span if span else float(peak)), peak
