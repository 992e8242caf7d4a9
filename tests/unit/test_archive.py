"""The raw AMI archive: one file per run, so a crash never makes a later run unreadable."""

from __future__ import annotations

import gzip
import logging
from pathlib import Path

import pytest

from callcenter.ami.transcripts import read_events
from callcenter.archive import RawArchive
from callcenter.replay import replay_calls
from tests.unit.helpers import FIXTURES, load_events

ANSWERED = load_events(FIXTURES / "asterisk20" / "answered.jsonl")
BUSY = load_events(FIXTURES / "asterisk20" / "busy_dnd.jsonl")
DAY = 1795432818.0  # 2026-11-23 08:40 UTC


def _run(folder: Path, events: list[dict[str, object]], start: float) -> RawArchive:
    archive = RawArchive(folder, "lab", flush_every=0)
    for i, event in enumerate(events):
        archive.write(event, start + i * 0.01)
    return archive


def test_a_run_after_a_crash_writes_a_file_of_its_own_that_reads_back_whole(
    tmp_path: Path,
) -> None:
    crashed = _run(tmp_path, ANSWERED, DAY)
    assert crashed.path is not None
    on_disk = crashed.path.read_bytes()  # flushed, but the gzip member never finished
    crashed.close()
    crashed.path.write_bytes(on_disk)  # the file as the crash left it
    later = _run(tmp_path, BUSY, DAY + 60)
    later.close()

    files = sorted((tmp_path / "lab").glob("*.jsonl.gz"))
    assert files == [crashed.path, later.path]
    assert files[0].name.startswith("2026-11-23.")
    # the later run's file is intact for any gzip reader, whatever happened before it
    assert gzip.decompress(files[1].read_bytes()).count(b"\n") == len(BUSY)

    warnings: list[str] = []
    events = [e for path in files for e in read_events(path, warnings.append)]
    assert [e["Event"] for e in events] == [e["Event"] for e in ANSWERED + BUSY]
    assert len(warnings) == 1 and "truncated" in warnings[0]
    assert str(files[0]) in warnings[0]
    calls = replay_calls(files)  # `callcenter replay <day>.*.jsonl.gz`
    assert [c.outcome for c in calls] == ["answered", "busy"]


def test_two_runs_in_the_same_second_never_share_a_file(tmp_path: Path) -> None:
    first = _run(tmp_path, ANSWERED[:3], DAY)
    second = _run(tmp_path, ANSWERED[3:6], DAY)
    first.close()
    second.close()
    assert first.path != second.path
    for archive, part in ((first, ANSWERED[:3]), (second, ANSWERED[3:6])):
        assert archive.path is not None
        assert [e["Event"] for e in read_events(archive.path)] == [e["Event"] for e in part]


def test_a_new_utc_day_opens_a_new_file(tmp_path: Path) -> None:
    archive = RawArchive(tmp_path, "lab", flush_every=0)
    archive.write(ANSWERED[0], DAY)
    archive.write(ANSWERED[1], DAY + 86_400)
    archive.close()
    names = sorted(p.name.split(".")[0] for p in (tmp_path / "lab").iterdir())
    assert names == ["2026-11-23", "2026-11-24"]


def test_write_errors_are_one_line_and_do_not_spray_files(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "lab"
    blocker.write_text("a file where the folder should be", encoding="utf-8")
    archive = RawArchive(tmp_path, "lab", flush_every=0)
    with caplog.at_level(logging.ERROR):
        for i, event in enumerate(ANSWERED):
            archive.write(event, DAY + i)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "cannot write the raw AMI archive" in errors[0].getMessage()
    assert archive.dropped == len(ANSWERED)
