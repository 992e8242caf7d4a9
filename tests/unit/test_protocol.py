"""AmiParser: the incremental AMI wire-format parser, on real recorded bytes."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from callcenter.ami.protocol import AmiParser, encode_action

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ami"
ANSWERED_AMI = FIXTURES / "asterisk20" / "answered.ami"
ANSWERED_JSONL = FIXTURES / "asterisk20" / "answered.jsonl"
BANNER = {"_banner": "Asterisk Call Manager/9.0.0"}
NAME = "市应急管理局"


def jsonl_events(path: Path) -> list[dict[str, object]]:
    """Events of a recorded .jsonl session, recorder metadata removed (read independently)."""
    events = []
    with path.open(encoding="utf-8") as fp:
        for line in fp:
            obj = json.loads(line)
            if "Event" in obj:
                events.append({k: v for k, v in obj.items() if not k.startswith("_")})
    return events


def parse_chunked(data: bytes, size: int, parser: AmiParser) -> list[dict[str, str]]:
    messages: list[dict[str, str]] = []
    for start in range(0, len(data), size):
        messages.extend(parser.feed(data[start : start + size]))
    return messages


class Recorder:
    """Collects warnings; a real callable, no mock."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def __call__(self, message: str) -> None:
        self.messages.append(message)


# --------------------------------------------------------------------- real recording


def test_answered_ami_equals_jsonl_for_every_chunk_size() -> None:
    data = ANSWERED_AMI.read_bytes()
    expected = jsonl_events(ANSWERED_JSONL)
    assert len(expected) > 90
    for size in range(1, 98):
        warnings = Recorder()
        parser = AmiParser(warnings)
        messages = parse_chunked(data, size, parser)
        parser.close()
        assert messages[0] == BANNER, size
        events = [m for m in messages if "Event" in m]
        assert events == expected, f"chunk size {size}"
        assert warnings.messages == [], f"chunk size {size}"
        assert parser.buffered_bytes == 0


def test_answered_ami_whole_and_responses() -> None:
    parser = AmiParser(Recorder())
    messages = parser.feed(ANSWERED_AMI.read_bytes())
    assert messages[0] == BANNER
    assert messages[1]["Response"] == "Success"
    assert messages[1]["ActionID"] == "recorder-login"
    assert messages[-1] == {
        "Response": "Goodbye",
        "ActionID": "recorder-logoff",
        "Message": "Thanks for all the fish.",
    }
    assert parser.message_count == len(messages)
    assert parser.offset == ANSWERED_AMI.stat().st_size


def test_values_keep_their_padding_as_recorded() -> None:
    # RTCP statistics come as "Value:   minrxlost=..." and the recording keeps the spaces.
    parser = AmiParser(Recorder())
    events = [m for m in parser.feed(ANSWERED_AMI.read_bytes()) if "Event" in m]
    padded = [e["Value"] for e in events if e.get("Value", "").startswith(" ")]
    assert padded
    assert all(value.startswith("  ") for value in padded)
    empty = [e for e in events if e.get("AccountCode") == ""]
    assert empty


@pytest.mark.parametrize(
    ("label", "old", "new"),
    [("bare LF", b"\r\n", b"\n"), ("CRLF lines, LF blank line", b"\r\n\r\n", b"\r\n\n")],
)
def test_bare_lf_recordings(label: str, old: bytes, new: bytes) -> None:
    data = ANSWERED_AMI.read_bytes().replace(old, new)
    expected = jsonl_events(ANSWERED_JSONL)
    for size in (1, 2, 3, 7, 64, 4096, len(data)):
        warnings = Recorder()
        messages = parse_chunked(data, size, AmiParser(warnings))
        assert messages[0] == BANNER, (label, size)
        assert [m for m in messages if "Event" in m] == expected, (label, size)
        assert warnings.messages == [], (label, size)


# --------------------------------------------------------------------- UTF-8


def test_multibyte_name_split_inside_a_character() -> None:
    data = f"Event: Newchannel\r\nCallerIDName: {NAME}\r\nExten: 12345\r\n\r\n".encode()
    start = data.index(NAME.encode())
    # every cut inside the six 3-byte characters, including mid-character cuts
    for cut in range(start + 1, start + len(NAME.encode())):
        warnings = Recorder()
        parser = AmiParser(warnings)
        first = parser.feed(data[:cut])
        second = parser.feed(data[cut:])
        assert first == []
        assert second == [{"Event": "Newchannel", "CallerIDName": NAME, "Exten": "12345"}]
        assert warnings.messages == []


def test_invalid_utf8_is_replaced_and_reported() -> None:
    good = b"Event: Hangup\r\nChannel: SIP/duty1-00000001\r\n\r\n"
    bad = b"Event: Newchannel\r\nCallerIDName: caller\xff\r\n\r\n"
    warnings = Recorder()
    parser = AmiParser(warnings)
    messages = parser.feed(good + bad + good)
    assert [m["Event"] for m in messages] == ["Hangup", "Newchannel", "Hangup"]
    assert messages[1]["CallerIDName"] == "caller\ufffd"
    assert messages[2] == messages[0]
    assert len(warnings.messages) == 1
    assert "UTF-8" in warnings.messages[0]
    assert f"offset {len(good)}" in warnings.messages[0]


# --------------------------------------------------------------------- limits


def test_one_megabyte_header_value_parses() -> None:
    value = "x" * (1024 * 1024) + NAME
    data = f"Event: UserEvent\r\nBody: {value}\r\nTail: end\r\n\r\n".encode()
    warnings = Recorder()
    messages = parse_chunked(data, 64 * 1024, AmiParser(warnings))
    assert messages == [{"Event": "UserEvent", "Body": value, "Tail": "end"}]
    assert warnings.messages == []


def test_unterminated_huge_message_keeps_memory_bounded_and_resyncs() -> None:
    warnings = Recorder()
    parser = AmiParser(warnings)
    limit = parser.max_message_bytes
    assert 1024 * 1024 < limit < 3 * 1024 * 1024
    good = b"Event: Newchannel\r\nChannel: SIP/pstn-00000001\r\n\r\n"
    parser.feed(good)
    chunk = b"y" * (64 * 1024)
    parser.feed(b"Event: Flood\r\nData: ")
    for _ in range(3 * 16):  # 3 MiB without a terminator
        assert parser.feed(chunk) == []
        assert parser.buffered_bytes <= limit
    assert len(warnings.messages) == 1
    assert f"offset {len(good)}" in warnings.messages[0]
    assert str(limit) in warnings.messages[0]
    messages = parser.feed(b"yyyy\r\n\r\n" + good)
    assert messages == [{"Event": "Newchannel", "Channel": "SIP/pstn-00000001"}]
    assert len(warnings.messages) == 2
    assert "resynchronised" in warnings.messages[1]
    assert parser.buffered_bytes == 0


def test_terminator_split_across_feeds_ends_discarding() -> None:
    warnings = Recorder()
    parser = AmiParser(warnings, max_message_bytes=1024)
    parser.feed(b"Event: Flood\r\nData: " + b"z" * 2000 + b"\r\n\r")
    assert parser.buffered_bytes <= 1024
    assert parser.feed(b"\nEvent: Next\r\n\r\n") == [{"Event": "Next"}]
    assert len(warnings.messages) == 2


def test_message_of_exactly_the_limit_is_kept_in_any_chunking() -> None:
    head = b"Event: Big\r\nData: "
    message = head + b"z" * (1024 - len(head))
    assert len(message) == 1024
    data = message + b"\r\n\r\nEvent: Next\r\n\r\n"
    for size in (1, 2, 3, 5, 1024, len(data)):
        warnings = Recorder()
        parser = AmiParser(warnings, max_message_bytes=1024)
        messages = parse_chunked(data, size, parser)
        assert [m["Event"] for m in messages] == ["Big", "Next"], size
        assert warnings.messages == [], size
        assert parser.buffered_bytes == 0


def test_oversized_complete_message_in_one_feed_is_dropped() -> None:
    warnings = Recorder()
    parser = AmiParser(warnings, max_message_bytes=1024)
    big = b"Event: Big\r\nData: " + b"z" * 2000 + b"\r\n\r\n"
    messages = parser.feed(big + b"Event: Small\r\n\r\n")
    assert messages == [{"Event": "Small"}]
    assert len(warnings.messages) == 1
    assert "offset 0" in warnings.messages[0]


def test_overlong_line_is_dropped_rest_of_message_kept() -> None:
    warnings = Recorder()
    parser = AmiParser(warnings, max_message_bytes=8192, max_line_bytes=1024)
    data = b"Event: VarSet\r\nValue: " + b"v" * 2000 + b"\r\nVariable: x\r\n\r\n"
    assert parser.feed(data) == [{"Event": "VarSet", "Variable": "x"}]
    assert len(warnings.messages) == 1
    assert "line" in warnings.messages[0]
    assert "offset 0" in warnings.messages[0]


# --------------------------------------------------------------------- malformed input


def test_line_without_colon_is_skipped_with_warning() -> None:
    first = b"Event: FullyBooted\r\n\r\n"
    data = first + b"Event: Hangup\r\nthis line has no colon\r\nCause: 16\r\n\r\n"
    warnings = Recorder()
    messages = AmiParser(warnings).feed(data)
    assert messages == [{"Event": "FullyBooted"}, {"Event": "Hangup", "Cause": "16"}]
    assert len(warnings.messages) == 1
    assert "without a colon" in warnings.messages[0]
    assert f"offset {len(first)}" in warnings.messages[0]


def test_colon_without_space_repeated_keys_and_output() -> None:
    data = (
        b"Response: Success\r\nActionID: 1\r\nOutput: line one\r\nOutput: line two\r\n\r\n"
        b"Event: VarSet\r\nVariable:CF\r\nValue:\r\nValue: second\r\n\r\n"
        b"Event: Newexten\r\nAppData: Dial: SIP/duty1\r\n\r\n"
    )
    warnings = Recorder()
    messages = AmiParser(warnings).feed(data)
    assert messages == [
        {"Response": "Success", "ActionID": "1", "Output": "line one\nline two"},
        {"Event": "VarSet", "Variable": "CF", "Value": "second"},
        {"Event": "Newexten", "AppData": "Dial: SIP/duty1"},
    ]
    assert warnings.messages == []


def test_empty_key_is_skipped_with_warning() -> None:
    warnings = Recorder()
    messages = AmiParser(warnings).feed(b"Event: A\r\n: orphan value\r\nB: 1\r\n\r\n")
    assert messages == [{"Event": "A", "B": "1"}]
    assert len(warnings.messages) == 1
    assert "empty key" in warnings.messages[0]


def test_truncated_final_message_is_not_returned_and_close_warns() -> None:
    data = b"Event: Newchannel\r\nChannel: SIP/pstn-1\r\n\r\nEvent: Hangup\r\nChannel: SIP/p"
    warnings = Recorder()
    parser = AmiParser(warnings)
    assert parser.feed(data) == [{"Event": "Newchannel", "Channel": "SIP/pstn-1"}]
    assert warnings.messages == []
    parser.close()
    assert len(warnings.messages) == 1
    assert "unterminated" in warnings.messages[0]
    assert "offset 42" in warnings.messages[0]
    assert parser.buffered_bytes == 0
    # a clean end of stream (or trailing blank lines) does not warn
    parser = AmiParser(warnings)
    parser.feed(b"Event: A\r\n\r\n\r\n")
    parser.flush()
    assert len(warnings.messages) == 1


def test_stream_without_banner_and_concatenated_sessions() -> None:
    warnings = Recorder()
    parser = AmiParser(warnings)
    assert parser.feed(b"Event: A\r\n\r\n") == [{"Event": "A"}]
    second_session = b"Asterisk Call Manager/9.0.0\r\nResponse: Success\r\n\r\n"
    assert parser.feed(second_session) == [BANNER, {"Response": "Success"}]
    assert warnings.messages == []


def test_banner_split_byte_by_byte_arrives_before_login() -> None:
    parser = AmiParser(Recorder())
    banner = b"Asterisk Call Manager/9.0.0\r\n"
    received: list[dict[str, str]] = []
    for byte in banner:
        received.extend(parser.feed(bytes([byte])))
    # the banner is delivered as soon as its line ends, without waiting for a blank line
    assert received == [BANNER]


def test_default_warning_goes_to_logging(caplog: pytest.LogCaptureFixture) -> None:
    parser = AmiParser()
    with caplog.at_level(logging.WARNING, logger="callcenter.ami.protocol"):
        parser.feed(b"Event: X\r\nbroken\r\n\r\n")
    assert any("without a colon" in record.getMessage() for record in caplog.records)
    assert parser.warning_count == 1


# --------------------------------------------------------------------- encode_action


def test_encode_action_round_trip() -> None:
    action = {
        "Action": "Originate",
        "Channel": "SIP/duty1",
        "CallerID": f'"{NAME}" <12345>',
        "ActionID": "spot-1",
    }
    data = encode_action(action)
    assert data.startswith(b"Action: Originate\r\nChannel: SIP/duty1\r\n")
    assert data.endswith(b"\r\n\r\n")
    assert AmiParser(Recorder()).feed(data) == [action]


def test_encode_action_repeated_header_and_injection() -> None:
    data = encode_action({"Action": "Originate", "Variable": ["A=1", "B=2"]})
    assert data == b"Action: Originate\r\nVariable: A=1\r\nVariable: B=2\r\n\r\n"
    with pytest.raises(ValueError):
        encode_action({"Action": "Ping\r\n\r\nAction: Logoff"})
    with pytest.raises(ValueError):
        encode_action({"Bad:Key": "x"})
