"""The raw AMI archive: one file per run, so a crash never makes a later run unreadable."""

from __future__ import annotations

import gzip
import json
import logging
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from callcenter import archive as archive_module
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
    archive.flush()  # the writer thread has written (and flushed) all of it
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
        archive.flush()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "cannot write the raw AMI archive" in errors[0].getMessage()
    assert archive.dropped == len(ANSWERED)


def test_close_writes_every_queued_event_and_replay_reads_the_file(tmp_path: Path) -> None:
    """The writer thread lags behind write(); close() still writes all of it, in order,
    and ``callcenter replay`` reads the file back (each call once, in order)."""
    archive = RawArchive(tmp_path, "lab")  # flushed once a second: close() must finish it
    copies = 150  # ~14,000 events: many of the writer's batches
    for n in range(copies):
        for i, event in enumerate(ANSWERED):
            renamed = {
                k: f"{v}{n:04d}" if v and k.endswith(("Uniqueid", "Linkedid")) else v
                for k, v in event.items()
            }
            archive.write(renamed, DAY + n + i * 0.001)
    archive.close()

    assert archive.dropped == 0
    assert archive.path is not None and [p.name for p in (tmp_path / "lab").iterdir()] == [
        archive.path.name
    ]
    warnings: list[str] = []
    events = list(read_events(archive.path, warnings.append))
    assert warnings == []
    assert len(events) == copies * len(ANSWERED)
    assert [e["_recv"] for e in events[: len(ANSWERED)]] == [
        DAY + i * 0.001 for i in range(len(ANSWERED))
    ]
    proc = subprocess.run(
        [sys.executable, "-m", "callcenter.cli", "replay", str(archive.path)],
        capture_output=True,
        timeout=120,
        check=True,
    )
    calls = [json.loads(line) for line in proc.stdout.decode("utf-8").splitlines()]
    assert [c["linkedid"] for c in calls if c["type"] == "call"] == [
        f"1795432818.102{n:04d}" for n in range(copies)
    ]
    assert {c["outcome"] for c in calls if c["type"] == "call"} == {"answered"}


def test_a_full_queue_drops_and_counts_events_and_never_waits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    writing, release = threading.Event(), threading.Event()
    real_write = archive_module.write_jsonl_event

    def stuck_disk(fp: object, event: dict[str, object]) -> None:  # the first write hangs
        writing.set()
        release.wait()
        real_write(fp, event)  # type: ignore[arg-type]

    monkeypatch.setattr(archive_module, "write_jsonl_event", stuck_disk)
    archive = RawArchive(tmp_path, "lab", flush_every=0, max_queued=10)
    archive.write(ANSWERED[0], DAY)
    assert writing.wait(30)  # the writer holds event 0; the queue is empty
    with caplog.at_level(logging.ERROR):
        for i, event in enumerate(ANSWERED[1:16], start=1):
            archive.write(event, DAY + i)  # 1..10 are queued, 11..15 dropped
    assert archive.dropped == 5
    assert len([r for r in caplog.records if "not archived" in r.getMessage()]) == 1
    release.set()
    archive.close()

    assert archive.path is not None
    assert [e["_recv"] for e in read_events(archive.path)] == [DAY + i for i in range(11)]
    assert archive.dropped == 5


def test_an_archive_closed_and_written_again_opens_a_new_file(tmp_path: Path) -> None:
    archive = _run(tmp_path, ANSWERED[:3], DAY)
    first = archive.path
    archive.close()
    archive.write(ANSWERED[3], DAY + 1)
    archive.close()

    assert first is not None and archive.path is not None and archive.path != first
    assert [e["Event"] for e in read_events(archive.path)] == [ANSWERED[3]["Event"]]


def test_a_writer_that_dies_is_logged_never_hangs_flush_and_is_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real = archive_module.write_jsonl_event
    calls = {"n": 0}

    def breaks_once(fp: object, event: dict[str, object]) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("a bug in the writer")
        real(fp, event)  # type: ignore[arg-type]

    monkeypatch.setattr(archive_module, "write_jsonl_event", breaks_once)
    archive = RawArchive(tmp_path, "lab", flush_every=0)
    for i, event in enumerate(ANSWERED[:3]):
        archive.write(event, DAY + i)
    archive.flush()  # returns although the writer died
    assert "raw AMI archive writer" in caplog.text and "a bug in the writer" in caplog.text
    for i, event in enumerate(ANSWERED[3:6]):
        archive.write(event, DAY + 3 + i)  # a new writer takes over
    archive.close()
    written = [e["Event"] for path in sorted((tmp_path / "lab").glob("*.gz"))
               for e in read_events(path)]  # fmt: skip
    # the event in hand when it died is lost; what was queued behind it and after is not
    assert written == [e["Event"] for e in ANSWERED[:1] + ANSWERED[2:6]]
