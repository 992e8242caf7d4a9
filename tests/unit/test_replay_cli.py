"""``callcenter replay`` as a user runs it: a real process, JSON Lines on stdout only.

Bad input of every kind named in the tracker issue gets a warning on stderr while the
replay goes on and the good calls still come out, with exit code 0.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from callcenter.ami.transcripts import read_events
from callcenter.tracking.tracker import CallTracker
from tests.unit.helpers import FIXTURES

ANSWERED_AMI = FIXTURES / "asterisk20" / "answered.ami"
ANSWERED_JSONL = FIXTURES / "asterisk20" / "answered.jsonl"
ANSWERED_ID = "1795432818.102"


def run_replay(*args: str | Path) -> tuple[list[dict[str, object]], str, int]:
    proc = subprocess.run(
        [sys.executable, "-m", "callcenter.cli", "replay", *map(str, args)],
        capture_output=True,
        timeout=120,
        check=False,
    )
    lines = proc.stdout.decode("utf-8").splitlines()
    objects = [json.loads(line) for line in lines]  # every stdout line must be JSON
    return objects, proc.stderr.decode("utf-8", "replace"), proc.returncode


def calls(objects: list[dict[str, object]]) -> list[dict[str, object]]:
    return [o for o in objects if o["type"] == "call"]


def test_stdout_is_json_lines_and_the_schema_of_design_md() -> None:
    objects, _, code = run_replay(ANSWERED_JSONL, FIXTURES / "asterisk20" / "busy_dnd.jsonl")
    assert code == 0
    assert [c["linkedid"] for c in calls(objects)] == [ANSWERED_ID, "1795432879.110"]
    assert set(objects[0]) == {
        "type", "linkedid", "caller", "dialed", "line", "direction", "started_at",
        "answered_at", "ended_at", "ring_seconds", "talk_seconds", "outcome", "answered_by",
        "forwarded_to", "transferred_to", "hangup_cause", "closed_by",
    }  # fmt: skip
    assert objects[0]["started_at"] == "2026-11-23T19:20:18.146+08:00"


def test_raw_ami_replays_like_its_jsonl_twin() -> None:
    from_ami, _, code = run_replay(ANSWERED_AMI)
    from_jsonl, _, _ = run_replay(ANSWERED_JSONL)
    assert code == 0
    assert from_ami == from_jsonl


def test_truncated_raw_message_warns_and_keeps_the_call(tmp_path: Path) -> None:
    raw = ANSWERED_AMI.read_bytes()
    cut = raw.index(b"Event: Newexten")  # a message cut in the middle of its headers
    broken = raw[:cut] + b"Event: Newexten\r\nChannel: SIP/pst" + b"\r\n\r\n" + raw[cut:]
    broken = broken + b"Event: Hangup\r\nChannel: SIP/x-1"  # the stream ends mid-message
    path = tmp_path / "truncated.ami"
    path.write_bytes(broken)
    objects, stderr, code = run_replay(path)
    assert code == 0
    assert [c["linkedid"] for c in calls(objects)] == [ANSWERED_ID]
    assert "WARNING" in stderr


def test_non_utf8_byte_is_replaced_with_a_warning(tmp_path: Path) -> None:
    raw = ANSWERED_AMI.read_bytes().replace(b"Caller 13811110001", b"Caller \xff\xfe1381", 1)
    path = tmp_path / "latin.ami"
    path.write_bytes(raw)
    objects, stderr, code = run_replay(path)
    assert code == 0
    assert [c["linkedid"] for c in calls(objects)] == [ANSWERED_ID]
    assert "UTF-8" in stderr or "utf-8" in stderr


@pytest.mark.parametrize("suffix", [".jsonl", ".ami"])
def test_one_megabyte_header_value(tmp_path: Path, suffix: str) -> None:
    huge = "x" * 1_000_000
    events = [json.loads(line) for line in ANSWERED_JSONL.read_text("utf-8").splitlines()]
    for event in events:
        if event.get("Event") == "VarSet":
            event["Value"] = huge
            break
    path = tmp_path / f"huge{suffix}"
    if suffix == ".jsonl":
        path.write_text("\n".join(json.dumps(e) for e in events), "utf-8")
    else:
        body = b"Asterisk Call Manager/9.0.0\r\n" + b"".join(
            "".join(f"{k}: {v}\r\n" for k, v in e.items() if not k.startswith("_")).encode()
            + b"\r\n"
            for e in events
            if "Event" in e
        )
        path.write_bytes(body)
    objects, _, code = run_replay(path)
    assert code == 0
    assert [c["outcome"] for c in calls(objects)] == ["answered"]


def test_unknown_event_and_event_without_linkedid(tmp_path: Path) -> None:
    lines = ANSWERED_JSONL.read_text("utf-8").splitlines()
    extra = [
        {"Event": "SomethingNewInAsterisk42", "Channel": "SIP/duty1-00000063"},
        {"Event": "Newchannel", "Channel": "SIP/ghost-00000001", "Uniqueid": "999.1"},
        "{not json at all",
        "[1, 2, 3]",
    ]
    text = [lines[0], *[e if isinstance(e, str) else json.dumps(e) for e in extra], *lines[1:]]
    path = tmp_path / "odd.jsonl"
    path.write_text("\n".join(text), "utf-8")
    objects, stderr, code = run_replay(path)
    assert code == 0
    assert [c["linkedid"] for c in calls(objects)] == [ANSWERED_ID]
    assert "without a Linkedid" in stderr
    assert "odd.jsonl:4" in stderr  # the bad JSON line is named, with its line number
    assert "unknown type 'SomethingNewInAsterisk42'" in stderr


def test_unknown_event_type_is_reported_once_and_documented_ones_never() -> None:
    warnings: list[str] = []
    tracker = CallTracker(on_warning=warnings.append)
    for _ in range(3):
        tracker.feed({"Event": "SomethingNewInAsterisk42", "Uniqueid": "1.1"})
    # documented events the tracker has no use for are normal traffic, not warnings
    tracker.feed({"Event": "VarSet", "Uniqueid": "1.1", "Variable": "X", "Value": "1"})
    tracker.feed({"Event": "RTCPSent", "Uniqueid": "1.1"})
    assert len(warnings) == 1
    assert "SomethingNewInAsterisk42" in warnings[0]


def test_no_fixture_raises_an_unknown_event_warning() -> None:
    """Every event type in the real transcripts is one Asterisk documents."""
    for path in sorted(FIXTURES.rglob("*.json*")):
        warnings: list[str] = []
        tracker = CallTracker(on_warning=warnings.append)
        for event in read_events(path, on_warning=warnings.append):
            tracker.feed(event)
        assert not [w for w in warnings if "unknown type" in w], path


def test_unreadable_file_is_an_error_but_the_others_replay(tmp_path: Path) -> None:
    objects, stderr, code = run_replay(tmp_path / "missing.jsonl", ANSWERED_JSONL)
    assert code == 1
    assert [c["linkedid"] for c in calls(objects)] == [ANSWERED_ID]
    assert "missing.jsonl" in stderr


def test_violations_follow_their_call() -> None:
    objects, _, code = run_replay(
        "--violations", FIXTURES / "asterisk20" / "pbx_forward_to_mobile.jsonl"
    )
    assert code == 0
    assert [o["type"] for o in objects] == ["call", "violation"]
    assert objects[1]["kind"] == "forwarded"
    assert objects[1]["linkedid"] == objects[0]["linkedid"]
