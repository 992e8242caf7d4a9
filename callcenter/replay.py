"""``callcenter replay``: recorded AMI transcripts through the tracker, JSON Lines out.

No database, no Redis: files in, one JSON object per finished call (and, with
``violations=True``, the violations each call raises) out, in the order calls ended.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from callcenter.ami.transcripts import TranscriptError, read_events
from callcenter.tracking.directory import EMPTY, Directory, DutyLine
from callcenter.tracking.records import Call
from callcenter.tracking.tracker import DEFAULT_IDLE_TIMEOUT, CallTracker

if TYPE_CHECKING:
    from callcenter.config import Config

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
    warn = on_warning or logger.warning
    idle = config.tracker.idle_timeout_seconds if config is not None else DEFAULT_IDLE_TIMEOUT
    tracker = CallTracker(directory_from_config(config), idle_timeout=idle, on_warning=warn)
    for path in paths:
        try:
            for event in read_events(Path(path), on_warning=warn):
                yield from tracker.feed(event)
        except TranscriptError as exc:
            if on_file_error is None:
                raise
            on_file_error(Path(path), str(exc))
    yield from tracker.flush()


def replay_paths(
    paths: Iterable[Path],
    *,
    config: Config | None = None,
    violations: bool = False,
    on_warning: Callable[[str], None] | None = None,
    on_file_error: Callable[[Path, str], None] | None = None,
) -> Iterator[dict[str, object]]:
    """The DESIGN.md JSON objects for the transcripts (calls, then their violations)."""
    judge = None
    if violations:
        from callcenter.rules.calls import Judge

        judge = Judge.from_config(config)
    for call in replay_calls(
        paths, config=config, on_warning=on_warning, on_file_error=on_file_error
    ):
        yield call.to_json()
        if judge is not None:
            for violation in judge.judge_call(call):
                yield violation.to_json()
