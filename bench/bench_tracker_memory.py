#!/usr/bin/env python
"""Memory of CallTracker with many calls in flight, and whether it goes back down after.

    python bench/bench_tracker_memory.py [--calls 10000] [--rounds 3] [--remember-gone N]

Each round makes ``--calls`` new copies of ``asterisk20/answered.jsonl`` (distinct ids, see
``fixture_mix``), feeds every copy's events up to the answer (the last ``BridgeEnter`` before
the first hang-up request), so that all of them are open calls at once, measures, then feeds
the rest of every copy so they all end, and measures again. The same tracker goes on to the
next round. Memory is measured with ``tracemalloc`` (Python allocations since the tracker
was made, after ``gc.collect()``); the RSS figures (``/proc/self/statm``, ``ru_maxrss``)
include tracemalloc's own bookkeeping and the allocator's free lists, so they only bound it.

By design the tracker remembers the Uniqueids (``_gone``) and Linkedids (``_finished``) of
finished calls, up to ``remember_gone`` (50,000) entries each, to recognise stragglers. That
memory is expected to remain after the calls end and to grow round over round until those
caps are reached; the report shows it separately, and what is left beyond it.
"""

from __future__ import annotations

import argparse
import gc
import linecache
import os
import resource
import sys
import time
import tracemalloc
from collections.abc import Iterable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parent))

import fixture_mix as fm  # noqa: E402

from callcenter.tracking.tracker import CallTracker  # noqa: E402

FIXTURE = fm.FIXTURES / "asterisk20" / "answered.jsonl"
HANGUP_EVENTS = frozenset({"Hangup", "HangupRequest", "SoftHangupRequest"})
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def answer_split(events: list[dict[str, Any]]) -> int:
    """Index just after the answer: after the last BridgeEnter before the first hang-up."""
    first_hangup = next(
        (i for i, e in enumerate(events) if e["Event"] in HANGUP_EVENTS), len(events)
    )
    bridged = [i for i, e in enumerate(events[:first_hangup]) if e["Event"] == "BridgeEnter"]
    if not bridged:
        raise SystemExit(f"{FIXTURE.name}: no BridgeEnter before the hang-up")
    return bridged[-1] + 1


def rss_now() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * _PAGE
    except OSError:  # pragma: no cover - not Linux
        return 0


def rss_peak() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def mib(n: float) -> str:
    return f"{n / 2**20:8.2f} MiB"


def deep_size_of_keys(d: dict[str, None]) -> int:
    """A remembered-id dict: its table plus its key strings (values are the None singleton)."""
    return sys.getsizeof(d) + sum(sys.getsizeof(k) for k in d)


def structures(t: CallTracker) -> str:
    return (
        f"channels {len(t.channels):,}, calls {len(t.calls):,}, by_name {len(t._by_name):,}, "
        f"_gone {len(t._gone):,}, _finished {len(t._finished):,}"
    )


class Meter:
    def __init__(self, use_tracemalloc: bool) -> None:
        self.on = use_tracemalloc
        self.base = 0

    def start(self) -> None:
        gc.collect()
        if self.on:
            self.base = tracemalloc.get_traced_memory()[0]

    def now(self) -> tuple[int, int]:
        """(held now, peak since the last reset), relative to the baseline."""
        gc.collect()
        if not self.on:
            return 0, 0
        cur, peak = tracemalloc.get_traced_memory()
        return cur - self.base, peak - self.base

    def reset_peak(self) -> None:
        if self.on:
            tracemalloc.reset_peak()


def feed(tracker: CallTracker, events: Iterable[dict[str, Any]]) -> int:
    ended = 0
    for e in events:
        ended += len(tracker.feed(e))  # the records are dropped: only the tracker holds memory
    return ended


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=10_000, help="calls in flight per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--remember-gone", type=int, default=None, help="CallTracker(remember_gone=N)")
    ap.add_argument("--rss-only", action="store_true", help="no tracemalloc (faster)")
    ap.add_argument("--top", type=int, default=8, help="allocation sites listed at the end")
    args = ap.parse_args(argv)

    fx = fm.prepare(FIXTURE)
    split = answer_split(fx.events)
    n_events = len(fx.events)
    use_tm = not args.rss_only
    print(
        f"bench_tracker_memory: {args.calls:,} copies of {fx.name} per round, {args.rounds} "
        f"rounds; {n_events} events per copy, the first {split} up to the answer "
        f"(left out: {', '.join(f'{k} x{v}' for k, v in fx.dropped.items()) or 'nothing'})"
    )
    print(
        "memory: "
        + ("tracemalloc, relative to the empty tracker" if use_tm else "RSS only")
        + "; gc.collect() before each measurement"
    )

    if use_tm:
        tracemalloc.start()
    kwargs = {} if args.remember_gone is None else {"remember_gone": args.remember_gone}
    tracker = CallTracker(on_warning=lambda _m: None, **kwargs)
    cap = tracker._remember_gone
    meter = Meter(use_tm)
    meter.start()
    base_snapshot = tracemalloc.take_snapshot() if use_tm else None
    print(f"baseline: RSS {mib(rss_now())}; remember_gone cap {cap:,}\n")

    def tm(held: int, peak: int) -> str:
        return f"held {mib(held)}  peak {mib(peak)}  " if use_tm else ""

    rows: list[tuple[int, int, int, int, int]] = []
    tables = 0
    for r in range(1, args.rounds + 1):
        first = 1 + (r - 1) * args.calls
        copies = range(first, first + args.calls)
        start = fm.BASE_TIME + (r - 1) * 120.0  # each round two minutes later
        meter.reset_peak()
        t0 = time.perf_counter()
        early = feed(tracker, (e for c in copies for e in fm.iter_copy(fx, c, start, 0, split)))
        t_a = time.perf_counter() - t0
        held_open, peak_open = meter.now()
        open_calls = tracker.open_calls
        print(
            f"round {r}: after the answer  open_calls {open_calls:,} (ended early: {early})  "
            f"{tm(held_open, peak_open)}RSS {mib(rss_now())}  "
            f"[{t_a:.1f} s]"
        )
        print(f"         {structures(tracker)}")
        if open_calls and use_tm:
            before = deep_size_of_keys(tracker._gone) + deep_size_of_keys(tracker._finished)
            print(
                f"         per open call: {(held_open - before) / open_calls:,.0f} bytes "
                f"(not counting the {mib(before).strip()} of _gone + _finished)"
            )

        meter.reset_peak()
        t0 = time.perf_counter()
        ended = feed(
            tracker, (e for c in copies for e in fm.iter_copy(fx, c, start, split, n_events))
        )
        t_b = time.perf_counter() - t0
        held_end, peak_end = meter.now()
        remembered = deep_size_of_keys(tracker._gone) + deep_size_of_keys(tracker._finished)
        rows.append((r, held_open, held_end, remembered, tracker.open_calls))
        print(
            f"round {r}: after they ended  open_calls {tracker.open_calls:,} "
            f"(ended {ended:,})  {tm(held_end, peak_end)}"
            f"RSS {mib(rss_now())}  [{t_b:.1f} s]"
        )
        print(f"         {structures(tracker)}")
        tables = sum(sys.getsizeof(d) for d in (tracker.channels, tracker._by_name, tracker.calls))
        tables -= 3 * sys.getsizeof({})
        if use_tm:
            print(
                f"         of which _gone + _finished (tables + id strings): {mib(remembered)};"
                f" the emptied channels/_by_name/calls dicts' tables (CPython does not"
                f" shrink a dict on deletion): {mib(tables)};"
                f" unexplained: {mib(held_end - remembered - tables)}"
            )
        print()

    print(f"peak RSS of the process (ru_maxrss): {mib(rss_peak())}")
    if use_tm:
        print("\nsummary (held after each round's calls ended):")
        print("  round   open calls held     ended: held   _gone+_finished   rest")
        for r, h_open, h_end, rem, _open in rows:
            print(f"  {r:5}   {mib(h_open)}      {mib(h_end)}   {mib(rem)}     {mib(h_end - rem)}")
        print(
            f"  rest = the high-water tables of the emptied dicts ({mib(tables).strip()} now),"
            " sized by the most calls in flight at once, not by the rounds"
        )
        print(
            f"  expected: each round adds {args.calls * 2:,} Uniqueids (two channels a call) to"
            f" _gone and {args.calls:,} Linkedids to _finished, until each holds its {cap:,}"
            " cap; from then on 'held' stays flat (rounds to the caps: _gone "
            f"{-(-cap // (2 * args.calls))}, _finished {-(-cap // args.calls)})"
        )
        snap = tracemalloc.take_snapshot()
        assert base_snapshot is not None
        print(f"\ntop {args.top} allocation sites of what is still held (vs. the baseline):")
        for stat in snap.compare_to(base_snapshot, "lineno")[: args.top]:
            frame = stat.traceback[0]
            where = f"{Path(frame.filename).name}:{frame.lineno}"
            code = linecache.getline(frame.filename, frame.lineno).strip()[:60]
            print(f"  {where:<28} {mib(stat.size_diff)}  {stat.count_diff:+8,} blocks  {code}")
        print(
            "  (fixture_mix.py's blocks are the id strings of the events, as an AMI parser would"
            " make them: kept alive only as keys of _gone/_finished)"
        )
        tracemalloc.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
