"""``callcenter replay``: recorded AMI transcripts through the tracker, JSON Lines out.

No database, no Redis: files in, one JSON object per finished call (and, with
``violations=True``, the violations each call raises and the device-status violations of the
desk phones) out, in the order calls ended and violations became known.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from callcenter.ami.devices import DeviceChange, device_change
from callcenter.ami.transcripts import TranscriptError, read_events
from callcenter.tracking.directory import EMPTY, Directory, DutyLine
from callcenter.tracking.names import event_time
from callcenter.tracking.records import Call
from callcenter.tracking.tracker import DEFAULT_IDLE_TIMEOUT, CallTracker

if TYPE_CHECKING:
    from callcenter.config import Config
    from callcenter.rules.violations import Violation

logger = logging.getLogger(__name__)


def directory_from_config(config: Config | None) -> Directory:
    if config is None:
        return EMPTY
    return Directory.of(
        DutyLine(number=line.number, desk_phones=frozenset(line.desk_phones))
        for line in config.lines
    )


def replay_calls(
    paths: Iterable[Path],
    *,
    config: Config | None = None,
    on_warning: Callable[[str], None] | None = None,
    on_file_error: Callable[[Path, str], None] | None = None,
) -> Iterator[Call]:
    """Finished calls from the transcripts, read in order by one tracker."""
    for item in _replay(
        paths, config=config, devices=False, on_warning=on_warning, on_file_error=on_file_error
    ):
        if isinstance(item, Call):
            yield item


@dataclass(frozen=True, slots=True)
class _EndOfInput:
    """The last event time seen (None when the transcripts carry no times)."""

    at: datetime | None


def _replay(
    paths: Iterable[Path],
    *,
    config: Config | None,
    devices: bool,
    on_warning: Callable[[str], None] | None,
    on_file_error: Callable[[Path, str], None] | None,
) -> Iterator[Call | DeviceChange | _EndOfInput]:
    """Calls as they finish and (with ``devices``) device changes, in input order."""
    warn = on_warning or logger.warning
    idle = config.tracker.idle_timeout_seconds if config is not None else DEFAULT_IDLE_TIMEOUT
    tracker = CallTracker(directory_from_config(config), idle_timeout=idle, on_warning=warn)
    last: datetime | None = None
    for path in paths:
        try:
            for event in read_events(Path(path), on_warning=warn):
                yield from tracker.feed(event)
                if devices:
                    change = device_change(event)  # DeviceWatch resolves lamp names
                    if change is not None:
                        yield change
                    at = event_time(event)
                    if at is not None and (last is None or at > last):
                        last = at
        except TranscriptError as exc:
            if on_file_error is None:
                raise
            on_file_error(Path(path), str(exc))
    yield from tracker.flush()
    yield _EndOfInput(last)


def replay_paths(
    paths: Iterable[Path],
    *,
    config: Config | None = None,
    violations: bool = False,
    on_warning: Callable[[str], None] | None = None,
    on_file_error: Callable[[Path, str], None] | None = None,
) -> Iterator[dict[str, object]]:
    """The DESIGN.md JSON objects for the transcripts, in the order they become known.

    Calls in the order they ended, each followed by its violations. With ``violations``,
    device-status violations (``phone_offline``, ``forward_set``, ``dnd_set``) come in
    between, when they become known: a ``phone_offline`` when the phone comes back (or at
    the end of the input while it is still offline), a flag when it is switched on. Each
    violation is printed once.
    """
    if not violations:
        for item in _replay(
            paths, config=config, devices=False, on_warning=on_warning, on_file_error=on_file_error
        ):
            if isinstance(item, Call):
                yield item.to_json()
        return

    from callcenter.rules.calls import Judge
    from callcenter.rules.devices import DeviceWatch

    judge = Judge.from_config(config)
    watch = DeviceWatch.from_config(config)
    printed: set[str] = set()

    def once(found: Iterable[Violation]) -> Iterator[dict[str, object]]:
        for violation in found:
            key = violation.dedupe_key
            if key not in printed:
                printed.add(key)
                yield violation.to_json()

    for item in _replay(
        paths, config=config, devices=True, on_warning=on_warning, on_file_error=on_file_error
    ):
        if isinstance(item, Call):
            yield item.to_json()
            yield from (v.to_json() for v in judge.judge_call(item))
        elif isinstance(item, DeviceChange):
            yield from once(watch.observe(item))
        elif item.at is not None:
            yield from once(watch.close(item.at))
