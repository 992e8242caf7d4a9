#!/usr/bin/env python
"""Throughput: our CallTracker against cacofonisk's EventHandler on the same AMI events.

    python bench/bench_tracker.py [--events N | --calls N] [--repeat R] [--in-flight K]

Builds one list of ~200k real-shaped events (copies of every fixture with rewritten ids,
merged on one time line so that ~K calls are in flight, see ``fixture_mix``), parses it once,
then times both trackers on that same list in one process: same warm-up (one full untimed
pass each, which also checks the results), same ``gc`` state, ``time.perf_counter``, best of
R runs, runs alternated between the two. A benchmark, not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import platform
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parent))

import fixture_mix as fm  # noqa: E402

from callcenter.tracking.tracker import CallTracker  # noqa: E402

try:
    from cacofonisk.handlers import EventHandler
    from cacofonisk.reporters import BaseReporter
except ImportError:  # pragma: no cover - bench-only dependency
    raise SystemExit("cacofonisk is missing: pip install -e '.[bench]'") from None

Event = Mapping[str, Any]


# -- the two contestants ---------------------------------------------------------------------


class NullReporter(BaseReporter):
    """A cacofonisk reporter that does nothing (BaseReporter's hooks are all no-ops)."""


class CountingReporter(BaseReporter):
    """Counts cacofonisk's high-level notifications (validation pass only, not timed)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def on_b_dial(self, caller: Any, targets: Any) -> None:
        self.counts["b_dial"] += 1

    def on_up(self, caller: Any, target: Any) -> None:
        self.counts["up"] += 1

    def on_hangup(self, caller: Any, reason: Any) -> None:
        self.counts["hangup"] += 1

    def on_attended_transfer(self, caller: Any, transferer: Any, target: Any) -> None:
        self.counts["transfer"] += 1

    def on_blind_transfer(self, caller: Any, transferer: Any, targets: Any) -> None:
        self.counts["transfer"] += 1

    def on_blonde_transfer(self, caller: Any, transferer: Any, targets: Any) -> None:
        self.counts["transfer"] += 1


class _CountHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.by_level: Counter[str] = Counter()
        self.first: dict[str, str] = {}

    def emit(self, record: logging.LogRecord) -> None:
        self.by_level[record.levelname] += 1
        self.first.setdefault(record.levelname, record.getMessage()[:160])


def _silent_logger() -> logging.Logger:
    """cacofonisk's logger for timed runs: disabled, so a call costs one attribute check."""
    log = logging.getLogger("bench.cacofonisk.silent")
    log.propagate = False
    log.disabled = True
    return log


def _counting_logger() -> tuple[logging.Logger, _CountHandler]:
    log = logging.getLogger("bench.cacofonisk.counted")
    log.propagate = False
    log.setLevel(logging.WARNING)
    for h in list(log.handlers):
        log.removeHandler(h)
    handler = _CountHandler()
    log.addHandler(handler)
    return log, handler


def _ignore(_message: str) -> None:
    return None


def new_ours() -> Callable[[Event], Any]:
    return CallTracker(on_warning=_ignore).feed


def new_cacofonisk() -> Callable[[Event], Any]:
    return EventHandler(NullReporter(), logger=_silent_logger()).on_event


# -- validation (and warm-up) ----------------------------------------------------------------


def find_unhandled(events: Sequence[Event]) -> dict[int, str]:
    """Indexes of events on which either tracker raises, with the error; empty when none.

    Each tracker is fed the whole list once (the failing event is skipped, feeding goes on);
    this is repeated on the reduced list until both run through, since leaving an event out
    may make a later one fail.
    """
    bad: dict[int, str] = {}
    for _ in range(5):
        keep = [i for i in range(len(events)) if i not in bad]
        found = 0
        for who, make in (("ours", new_ours), ("cacofonisk", new_cacofonisk)):
            feed = make()
            for i in keep:
                try:
                    feed(events[i])
                except Exception as exc:
                    if i not in bad:
                        bad[i] = f"{who}: {exc!r}"[:200]
                        found += 1
        if not found:
            return bad
    return bad


def validate(events: Sequence[Event]) -> dict[str, Any]:
    """One untimed full pass of each tracker: what they made of the events."""
    warnings: list[str] = []
    tracker = CallTracker(on_warning=warnings.append)
    finished = 0
    peak_open = 0
    outcomes: Counter[str] = Counter()
    for n, e in enumerate(events):
        for call in tracker.feed(e):
            finished += 1
            outcomes[call.outcome] += 1
        if n % 1000 == 0:
            peak_open = max(peak_open, tracker.open_calls)
    open_at_end = tracker.open_calls
    flushed = len(tracker.flush())

    log, counter = _counting_logger()
    reporter = CountingReporter()
    handler = EventHandler(reporter, logger=log)
    for e in events:
        handler.on_event(e)
    return {
        "finished": finished,
        "outcomes": outcomes,
        "peak_open": peak_open,
        "open_at_end": open_at_end,
        "flushed": flushed,
        "warnings": len(warnings),
        "first_warning": warnings[0][:160] if warnings else "",
        "skipped": tracker.events_skipped,
        "caco_counts": reporter.counts,
        "caco_logs": counter.by_level,
        "caco_first_log": counter.first,
        "caco_channels_left": len(handler._channels),
        "caco_bridges_left": len(handler._bridges),
    }


def expected_alone(mix: fm.Mix) -> dict[str, Counter[str]]:
    """What each tracker makes of every fixture fed alone, times the copies of it in the mix.

    If interleaving and rewriting are faithful, the mixed run gives the same totals.
    """
    ours: Counter[str] = Counter()
    caco: Counter[str] = Counter()
    by_name = {f.name: f for f in mix.fixtures}
    for name, copies in mix.per_fixture.items():
        events = fm.copy_events(by_name[name], 0)
        tracker = CallTracker(on_warning=_ignore)
        one: Counter[str] = Counter()
        for e in events:
            one.update(c.outcome for c in tracker.feed(e))
        one.update(c.outcome for c in tracker.flush())
        log, counter = _counting_logger()
        reporter = CountingReporter()
        handler = EventHandler(reporter, logger=log)
        for e in events:
            handler.on_event(e)
        for key, value in one.items():
            ours[key] += value * copies
        for key, value in (reporter.counts + counter.by_level).items():
            caco[key] += value * copies
    return {"ours": ours, "caco": caco}


# -- timing ----------------------------------------------------------------------------------


def time_once(make: Callable[[], Callable[[Event], Any]], events: Sequence[Event]) -> float:
    feed = make()
    gc.collect()
    t0 = time.perf_counter()
    for e in events:
        feed(e)
    return time.perf_counter() - t0


def time_pair(
    events_ours: Sequence[Event],
    events_caco: Sequence[Event],
    repeat: int,
    gc_off: bool,
) -> tuple[list[float], list[float]]:
    """R runs of each, alternating which goes first; gc in the same state for both."""
    ours: list[float] = []
    caco: list[float] = []
    if gc_off:
        gc.disable()
    try:
        for r in range(repeat):
            order = [("ours", new_ours), ("caco", new_cacofonisk)]
            if r % 2:
                order.reverse()
            for who, make in order:
                dt = time_once(make, events_ours if who == "ours" else events_caco)
                (ours if who == "ours" else caco).append(dt)
    finally:
        if gc_off:
            gc.enable()
    return ours, caco


def _rate_line(label: str, n_input: int, times: list[float]) -> str:
    best = min(times)
    med = statistics.median(times)
    return (
        f"    {label:<38} {n_input / best:>11,.0f} events/s"
        f"   (best {best:.3f} s, median {med:.3f} s)"
    )


def _ratio(ours: list[float], caco: list[float]) -> float:
    return min(caco) / min(ours)


# -- long run: steady state past the remember_gone caps -----------------------------------------


def long_run(
    total: int, in_flight: int, chunk: int, fixtures: list[fm.Fixture], first: int
) -> None:
    """Both trackers, one instance each, fed ``total`` events made chunk by chunk.

    Every chunk is a fresh mix (new copies, the time line goes on), fed once to each tracker
    (which one goes first alternates). A chunk is timed once, so the rates are CPU time of
    this process (``time.process_time``): unlike wall time it does not count the moments
    another process had the CPU. The tracker's remembered-id sets (``_gone``/``_finished``)
    fill up to their cap (50,000 each) on the way: ``_gone`` after about 600k events.
    """
    tracker = CallTracker(on_warning=_ignore)
    cap = tracker._remember_gone
    feeds = {"ours": tracker.feed, "caco": new_cacofonisk()}
    start = fm.BASE_TIME
    done = 0
    totals = {(phase, who): 0.0 for phase in ("below", "at") for who in feeds}
    counts = {"below": 0, "at": 0}
    print(
        f"\nlong run: {total:,} events in chunks of {chunk:,}, one tracker of each kind "
        f"(remember_gone cap {cap:,}); rates in CPU time"
    )
    k = 0
    while done < total:
        mix = fm.build_mix(chunk, in_flight, fixtures, first_copy=first, start_time=start)
        first = mix.next_copy
        start += mix.span_seconds + 1.0
        events = mix.events
        phase = "at" if len(tracker._gone) >= cap else "below"
        gc.collect()
        gc.freeze()
        times = {}
        order = ["ours", "caco"] if k % 2 == 0 else ["caco", "ours"]
        for who in order:
            feed = feeds[who]
            gc.collect()
            t0 = time.process_time()
            for e in events:
                feed(e)
            times[who] = time.process_time() - t0
        gc.unfreeze()
        n = len(events)
        for who in feeds:
            totals[(phase, who)] += times[who]
        counts[phase] += n
        print(
            f"  events {done:>10,}+{n:,}: ours {n / times['ours']:>9,.0f}/s  cacofonisk "
            f"{n / times['caco']:>9,.0f}/s  ratio {times['caco'] / times['ours']:.2f}   "
            f"_gone {len(tracker._gone):,}  _finished {len(tracker._finished):,}  "
            f"open {tracker.open_calls}"
        )
        done += n
        k += 1
        del mix, events
    for phase, label in (("below", "_gone below its cap"), ("at", "_gone at its cap")):
        n = counts[phase]
        if n:
            o, c = totals[(phase, "ours")], totals[(phase, "caco")]
            print(
                f"  chunks that started with {label}: {n:,} events: ours {n / o:,.0f}/s, "
                f"cacofonisk {n / c:,.0f}/s, ratio {c / o:.2f}x"
            )


# -- profile ---------------------------------------------------------------------------------


def profile(events: Sequence[Event], top: int) -> None:
    import cProfile
    import pstats

    for label, make in (("ours", new_ours), ("cacofonisk", new_cacofonisk)):
        feed = make()
        prof = cProfile.Profile()
        prof.enable()
        for e in events:
            feed(e)
        prof.disable()
        print(f"\n== cProfile: {label} (sorted by own time; cProfile slows both down) ==")
        pstats.Stats(prof).strip_dirs().sort_stats("tottime").print_stats(top)


# -- main ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=200_000, help="at least this many events")
    ap.add_argument("--calls", type=int, default=None, help="exactly this many fixture copies")
    ap.add_argument("--repeat", type=int, default=5, help="timed runs of each (best is shown)")
    ap.add_argument("--in-flight", type=int, default=500, help="copies overlapping in time")
    ap.add_argument("--gc-off", action="store_true", help="disable gc during timed runs")
    ap.add_argument("--no-subscribed", action="store_true", help="skip the subscribed variant")
    ap.add_argument("--profile", action="store_true", help="also print cProfile of both")
    ap.add_argument("--top", type=int, default=25, help="rows of --profile output")
    ap.add_argument(
        "--long",
        type=int,
        default=0,
        metavar="N",
        help="then feed N more events chunk by chunk to one tracker of each (steady state)",
    )
    ap.add_argument("--chunk", type=int, default=200_000, help="chunk size of --long")
    args = ap.parse_args(argv)

    try:
        caco_version = version("cacofonisk")
    except PackageNotFoundError:  # pragma: no cover
        caco_version = "?"
    print(
        f"bench_tracker: Python {platform.python_version()} ({platform.machine()}), "
        f"{os.cpu_count()} CPUs, cacofonisk {caco_version}"
    )

    t0 = time.perf_counter()
    mix = fm.build_mix(n_events=args.events, in_flight=args.in_flight, copies=args.calls)
    events: list[Event] = mix.events
    groups = Counter(name.split("/", 1)[0] for name in mix.per_fixture)
    print(
        f"mix: {len(events):,} events from {mix.copies:,} copies of {len(mix.fixtures)} fixtures"
        f" ({', '.join(f'{g} {n}' for g, n in sorted(groups.items()))});"
        f" built in {time.perf_counter() - t0:.1f} s"
    )
    print(
        f"     event time line {mix.span_seconds:,.0f} s; copies in flight: "
        f"mean {mix.in_flight_mean:,.0f}, peak {mix.in_flight_peak:,}"
    )
    dropped = ", ".join(f"{k} x{v:,}" for k, v in sorted(mix.dropped.items()))
    print(f"     left out of every copy (connection-level, not call events): {dropped or 'none'}")
    kinds = Counter(e["Event"] for e in events)
    print("     top events: " + ", ".join(f"{k} {v:,}" for k, v in kinds.most_common(8)))

    bad = find_unhandled(events)
    if bad:
        by_type = Counter(events[i]["Event"] for i in bad)
        print(
            f"EXCLUDED for BOTH trackers: {len(bad):,} events a tracker raised on "
            f"({', '.join(f'{k} x{v}' for k, v in by_type.most_common())}); "
            f"first: {next(iter(bad.values()))}"
        )
        events = [e for i, e in enumerate(events) if i not in bad]
    else:
        print("excluded: none (neither tracker raised on any event of the mix)")

    v = validate(events)  # also the warm-up: one full pass of each
    outcomes = ", ".join(f"{k} {n:,}" for k, n in v["outcomes"].most_common())
    print(
        f"check: ours finished {v['finished']:,} calls ({outcomes}); peak open "
        f"{v['peak_open']:,}, open at end {v['open_at_end']}, warnings {v['warnings']}, "
        f"skipped {v['skipped']}"
    )
    if v["first_warning"]:
        print(f"       ours first warning: {v['first_warning']}")
    cc = v["caco_counts"]
    logs = ", ".join(f"{k} {n}" for k, n in sorted(v["caco_logs"].items())) or "none"
    print(
        f"       cacofonisk reported {cc['hangup']:,} hangups, {cc['b_dial']:,} b_dials, "
        f"{cc['up']:,} ups, {cc['transfer']:,} transfers; channels left "
        f"{v['caco_channels_left']}, bridges left {v['caco_bridges_left']}; log records: {logs}"
    )
    for level, msg in v["caco_first_log"].items():
        print(f"       cacofonisk first {level}: {msg}")
    if not bad:
        alone = expected_alone(mix)
        same_ours = alone["ours"] == v["outcomes"]
        same_caco = alone["caco"] == v["caco_counts"] + v["caco_logs"]
        print(
            "       same totals as every copy fed alone: "
            f"ours {'yes' if same_ours else 'NO ' + str(dict(alone['ours']))}, "
            f"cacofonisk {'yes' if same_caco else 'NO ' + str(dict(alone['caco']))}"
        )

    gc.collect()
    gc.freeze()  # the input list is not the trackers' garbage: keep it out of gc passes
    gc_state = "gc disabled during runs" if args.gc_off else "gc enabled"
    print(
        f"\ntiming: best of {args.repeat} runs each, alternating, {gc_state}, "
        "gc.collect() before each run, input list frozen (gc.freeze)"
    )
    n = len(events)
    print(f"  A. same list, every event fed to both ({n:,} events)")
    ours, caco = time_pair(events, events, args.repeat, args.gc_off)
    print(_rate_line("ours (CallTracker.feed)", n, ours))
    print(_rate_line("cacofonisk (EventHandler.on_event)", n, caco))
    ratio = _ratio(ours, caco)
    verdict = (
        "meets the aim"
        if ratio >= 1.5
        else "meets the target"
        if ratio >= 1.0
        else "BELOW the target"
    )
    print(f"    ratio ours/cacofonisk: {ratio:.2f}x  (target >= 1.0x, aim 1.5x: {verdict})")

    ours_sub: list[Event] = []
    caco_sub: list[Event] = []
    if not args.no_subscribed:
        handled = CallTracker().handled_events
        caco_handled = set(EventHandler.event_handlers())
        ours_sub = [e for e in events if e["Event"] in handled]
        caco_sub = [e for e in events if e["Event"] in caco_handled]
        print(
            f"  B. each fed only the events it subscribes to, as its AMI listener does "
            f"(ours {len(ours_sub):,}, cacofonisk {len(caco_sub):,}); rate per input event"
        )
        ours_b, caco_b = time_pair(ours_sub, caco_sub, args.repeat, args.gc_off)
        print(_rate_line("ours (handled_events)", n, ours_b))
        print(_rate_line("cacofonisk (event_handlers())", n, caco_b))
        print(f"    ratio ours/cacofonisk: {_ratio(ours_b, caco_b):.2f}x")
    print(f"\ncalls finished by ours: {v['finished']:,} (+{v['flushed']} closed by flush())")

    gc.unfreeze()
    if args.profile:
        profile(events, args.top)
    if args.long:
        del events, ours_sub, caco_sub  # make room: --long builds its own events
        mix.events = []
        long_run(args.long, args.in_flight, args.chunk, mix.fixtures, mix.next_copy)
    return 0


if __name__ == "__main__":
    sys.exit(main())
