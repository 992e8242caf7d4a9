"""read_events / write_jsonl_event on the recorded fixtures and on hand-made bad files."""

from __future__ import annotations

import gzip
import json
import zlib
from pathlib import Path

import pytest

from callcenter.ami.transcripts import (
    TranscriptError,
    read_events,
    transcript_kind,
    write_jsonl_event,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ami"
ASTERISK20 = FIXTURES / "asterisk20"
ANSWERED_JSONL = ASTERISK20 / "answered.jsonl"
ANSWERED_AMI = ASTERISK20 / "answered.ami"
CACOFONISK_JSON = FIXTURES / "cacofonisk" / "simple" / "ab_a_cancel.json"
NAME = "市应急管理局"


class Recorder:
    def __init__(self) -> None:
        self.messages: list[str] = []

    def __call__(self, message: str) -> None:
        self.messages.append(message)


def read(path: Path) -> tuple[list[dict[str, object]], list[str]]:
    warnings = Recorder()
    events = list(read_events(path, warnings))
    return events, warnings.messages


def gzip_copy(source: Path, target: Path) -> Path:
    with gzip.open(target, "wb") as fp:
        fp.write(source.read_bytes())
    return target


# --------------------------------------------------------------------- .jsonl


def test_jsonl_keeps_events_only_and_recv() -> None:
    events, warnings = read(ANSWERED_JSONL)
    assert warnings == []
    lines = [json.loads(line) for line in ANSWERED_JSONL.read_text("utf-8").splitlines()]
    assert len(events) == sum(1 for obj in lines if "Event" in obj)
    assert len(events) < len(lines)  # banner and action responses were skipped
    assert all("Event" in event for event in events)
    assert all("_banner" not in event and "_kind" not in event for event in events)
    assert all(isinstance(event["_recv"], float) for event in events)
    assert events[0]["Event"] == "FullyBooted"
    newchannel = next(e for e in events if e["Event"] == "Newchannel")
    assert newchannel["Timestamp"] == "1795432818.146992"
    assert newchannel["CallerIDNum"] == "13811110001"


def test_jsonl_keeps_originate_response_event() -> None:
    events, warnings = read(ASTERISK20 / "spot_check_originate_answered.jsonl")
    assert warnings == []
    originate = [e for e in events if e["Event"] == "OriginateResponse"]
    assert len(originate) == 1
    assert originate[0]["Response"] == "Success"
    assert originate[0]["ActionID"] == "spot-answered-1"
    # a plain action response (no Event) is not an event
    assert all(e.get("Response") is None or "Event" in e for e in events)


def test_every_recorded_jsonl_reads_cleanly() -> None:
    paths = sorted(FIXTURES.glob("asterisk20*/*.jsonl"))
    assert len(paths) >= 13
    for path in paths:
        events, warnings = read(path)
        assert events, path
        assert warnings == [], path


def test_bad_jsonl_lines_warn_with_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(
        b'{"Event": "Newchannel", "Channel": "SIP/pstn-1", "_kind": "event", "_recv": 1.5}\n'
        b'{"Event": "Hangup", \n'
        b"\n"
        b"[1, 2]\n"
        b'{"Response": "Success", "ActionID": "x"}\n'
        b'{"Event": "Newstate", "CallerIDName": "caller\xff"}\n'
        b'{"Event": "Hangup", "Channel": "SIP/pstn-1", "_unknown": 1}\n'
    )
    events, warnings = read(path)
    assert events == [
        {"Event": "Newchannel", "Channel": "SIP/pstn-1", "_recv": 1.5},
        {"Event": "Newstate", "CallerIDName": "caller\ufffd"},
        {"Event": "Hangup", "Channel": "SIP/pstn-1"},
    ]
    assert len(warnings) == 4
    assert warnings[0].startswith(f"{path}:2: ") and "invalid JSON" in warnings[0]
    assert warnings[1].startswith(f"{path}:3: ") and "blank" in warnings[1]
    assert warnings[2].startswith(f"{path}:4: ") and "not a JSON object" in warnings[2]
    assert warnings[3].startswith(f"{path}:6: ") and "UTF-8" in warnings[3]


def test_jsonl_is_read_lazily(tmp_path: Path) -> None:
    path = tmp_path / "lazy.jsonl"
    path.write_text('{"Event": "A"}\n', encoding="utf-8")
    events = read_events(path, Recorder())
    assert next(events) == {"Event": "A"}
    with path.open("a", encoding="utf-8") as fp:  # appended after reading started
        fp.write('{"Event": "B"}\n')
    assert list(events) == [{"Event": "B"}]


# --------------------------------------------------------------------- .json


def test_cacofonisk_json_array() -> None:
    events, warnings = read(CACOFONISK_JSON)
    assert warnings == []
    items = json.loads(CACOFONISK_JSON.read_text("utf-8"))
    assert events == items
    assert events[0]["Event"] == "FullyBooted"


def test_every_cacofonisk_fixture_reads_cleanly() -> None:
    paths = sorted((FIXTURES / "cacofonisk").rglob("*.json"))
    assert len(paths) > 40
    for path in paths:
        events, warnings = read(path)
        assert events, path
        assert warnings == [], path


def test_json_non_object_items_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "mixed.json"
    path.write_text(
        json.dumps([{"Event": "A", "_kind": "event"}, "junk", 3, {"Response": "Success"}]),
        encoding="utf-8",
    )
    events, warnings = read(path)
    assert events == [{"Event": "A"}]
    assert len(warnings) == 2
    assert "item 1" in warnings[0] and "item 2" in warnings[1]


@pytest.mark.parametrize(
    "content", [b'[{"Event": "A"}, ', b"\xff\xfe not json", b'{"Event": "A"}', b""]
)
def test_invalid_json_file_warns_once_and_yields_nothing(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "broken.json"
    path.write_bytes(content)
    events, warnings = read(path)
    assert events == []
    assert len(warnings) == 1
    assert warnings[0].startswith(f"{path}: ")


# --------------------------------------------------------------------- .ami


def test_ami_transcript_equals_jsonl_session() -> None:
    ami_events, warnings = read(ANSWERED_AMI)
    assert warnings == []
    jsonl_events, _ = read(ANSWERED_JSONL)
    for event in jsonl_events:
        del event["_recv"]
    assert ami_events == jsonl_events


def test_ami_truncated_file_warns(tmp_path: Path) -> None:
    path = tmp_path / "cut.ami"
    data = ANSWERED_AMI.read_bytes()
    last_event_end = data.rindex(b"\r\n\r\nResponse: Goodbye")
    path.write_bytes(data[: last_event_end - 10])  # cut inside the last event
    events, warnings = read(path)
    assert len(events) == len(read(ANSWERED_AMI)[0]) - 1
    assert len(warnings) == 1
    assert str(path) in warnings[0] and "unterminated" in warnings[0]


# --------------------------------------------------------------------- gzip


@pytest.mark.parametrize(
    ("source", "name"),
    [
        (ANSWERED_JSONL, "answered.jsonl.gz"),
        (ANSWERED_AMI, "answered.ami.gz"),
        (CACOFONISK_JSON, "ab_a_cancel.json.gz"),
    ],
)
def test_gzip_versions_read_like_plain(tmp_path: Path, source: Path, name: str) -> None:
    compressed = gzip_copy(source, tmp_path / name)
    assert read(compressed) == read(source)


def test_truncated_gzip_warns_and_keeps_what_was_read(tmp_path: Path) -> None:
    compressed = gzip_copy(ANSWERED_JSONL, tmp_path / "today.jsonl.gz")
    data = compressed.read_bytes()
    compressed.write_bytes(data[: len(data) * 2 // 3])
    events, warnings = read(compressed)
    assert 0 < len(events) < len(read(ANSWERED_JSONL)[0])
    assert len(warnings) == 1
    assert "truncated" in warnings[0]


def _complete_lines(compressed: bytes) -> list[bytes]:
    """The whole lines a streaming decompressor gets out of a (cut) gzip member."""
    text = zlib.decompressobj(zlib.MAX_WBITS | 16).decompress(compressed)
    return text.split(b"\n")[:-1]


def _events_in(lines: list[bytes]) -> list[dict[str, object]]:
    objects = [json.loads(line) for line in lines if line.strip()]
    return [
        {k: v for k, v in obj.items() if k[:1] != "_" or k == "_recv"}
        for obj in objects
        if "Event" in obj
    ]


def test_member_appended_after_a_truncated_one_is_read_past_the_damage(tmp_path: Path) -> None:
    """Older listener runs appended a gzip member to a file a crash had cut off: every
    event before the damage and every event of the later member are read back."""
    first = ANSWERED_JSONL.read_bytes()
    later = (ASTERISK20 / "busy_dnd.jsonl").read_bytes()
    cut = gzip.compress(first, mtime=0)
    cut = cut[: len(cut) // 2]
    path = tmp_path / "2026-11-23.jsonl.gz"
    path.write_bytes(gzip.compress(first, mtime=0) + cut + gzip.compress(later, mtime=0))
    events, warnings = read(path)
    before = _events_in(first.splitlines())
    kept = _events_in(_complete_lines(cut))
    after = _events_in(later.splitlines())
    assert kept and len(kept) < len(before)
    assert events[: len(before) + len(kept)] == before + kept
    assert events[-len(after) :] == after
    assert len(events) == len(before) + len(kept) + len(after)
    damaged = [w for w in warnings if "damaged" in w]
    assert len(damaged) == 1 and str(path) in damaged[0]
    assert "resumes" in damaged[0]


def test_damaged_gzip_with_nothing_after_it_keeps_what_came_before(tmp_path: Path) -> None:
    whole = gzip.compress(ANSWERED_JSONL.read_bytes())
    path = tmp_path / "2026-11-23.jsonl.gz"
    path.write_bytes(whole + b"\x1f\x8b\x08\x00garbage that is no deflate stream")
    events, warnings = read(path)
    assert events == _events_in(ANSWERED_JSONL.read_bytes().splitlines())
    assert len(warnings) == 1 and "damaged" in warnings[0]


def test_truncated_gzip_ami_transcript_keeps_what_was_read(tmp_path: Path) -> None:
    whole = gzip.compress(ANSWERED_AMI.read_bytes())
    path = tmp_path / "capture.ami.gz"
    path.write_bytes(whole[: len(whole) // 2])
    events, warnings = read(path)
    full, _ = read(ANSWERED_AMI)
    assert 0 < len(events) < len(full)
    assert events == full[: len(events)]
    assert any("truncated" in w and str(path) in w for w in warnings)


def test_not_a_gzip_file(tmp_path: Path) -> None:
    path = tmp_path / "plain.jsonl.gz"
    path.write_text('{"Event": "A"}\n', encoding="utf-8")
    with pytest.raises(TranscriptError) as caught:
        read_events(path)
    assert caught.value.path == path
    assert "gzip" in caught.value.reason


def test_write_jsonl_event_round_trip_through_gzip_archive(tmp_path: Path) -> None:
    path = tmp_path / "2026-11-23.jsonl.gz"
    event: dict[str, object] = {
        "Event": "Newchannel",
        "CallerIDName": NAME,
        "Channel": "SIP/pstn-00000062",
        "_kind": "event",
        "_recv": 1795432818.1475797,
    }
    with gzip.open(path, "at", encoding="utf-8") as fp:
        write_jsonl_event(fp, event)
        write_jsonl_event(fp, {"Response": "Success", "ActionID": "x", "_kind": "response"})
    with gzip.open(path, "at", encoding="utf-8") as fp:  # daily archive: appended to
        write_jsonl_event(fp, {"Event": "Hangup", "Cause": "16"})
    text = gzip.decompress(path.read_bytes()).decode("utf-8")
    assert NAME in text  # not \\u-escaped
    assert text.count("\n") == 3
    events, warnings = read(path)
    assert warnings == []
    assert events == [
        {
            "Event": "Newchannel",
            "CallerIDName": NAME,
            "Channel": "SIP/pstn-00000062",
            "_recv": 1795432818.1475797,
        },
        {"Event": "Hangup", "Cause": "16"},
    ]


# --------------------------------------------------------------------- errors


@pytest.mark.parametrize("name", ["calls.txt", "calls.csv.gz", "calls", "calls.jsonl.bz2"])
def test_unknown_extension_raises(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text("{}", encoding="utf-8")
    with pytest.raises(TranscriptError) as caught:
        read_events(path)
    assert caught.value.path == path
    assert "unknown transcript type" in str(caught.value)


def test_missing_or_unreadable_file_raises(tmp_path: Path) -> None:
    with pytest.raises(TranscriptError) as caught:
        read_events(tmp_path / "missing.jsonl")
    assert "cannot read" in caught.value.reason
    with pytest.raises(TranscriptError):
        read_events(tmp_path)  # a directory named like nothing known
    folder = tmp_path / "folder.jsonl"
    folder.mkdir()
    with pytest.raises(TranscriptError):
        read_events(folder)


def test_transcript_kind() -> None:
    assert transcript_kind(Path("a.jsonl")) == ("jsonl", False)
    assert transcript_kind(Path("a.JSON")) == ("json", False)
    assert transcript_kind(Path("a.b.ami.gz")) == ("ami", True)
    assert transcript_kind(Path("2026-11-23.jsonl.gz")) == ("jsonl", True)
