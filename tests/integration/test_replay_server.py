"""The built-in AMI replay server over real TCP on loopback: a real client, no mocks.

Each test runs its own event loop (``asyncio.run``); the client below speaks AMI with the
project's own parser, as the listener does.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib
import itertools
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Coroutine, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import pytest

from callcenter.ami.protocol import AmiParser, encode_action
from callcenter.ami.replay_server import AmiReplayServer, OriginateResult
from callcenter.tracking.tracker import CallTracker

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "ami"
ANSWERED = FIXTURES / "asterisk20" / "answered.jsonl"
CACOFONISK_SIMPLE = FIXTURES / "cacofonisk" / "simple" / "ab_success_a_hangup.json"
SECRET = secrets.token_urlsafe(12)  # per test run: no secret committed
BRIDGE = "a326637b-17cc-4745-bfff-77865c65e577"

T = TypeVar("T")
Message = dict[str, str]


def run(coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


def file_events(path: Path) -> list[dict[str, Any]]:
    """The events of a .jsonl fixture as recorded (metadata keys included)."""
    lines = path.read_text("utf-8").splitlines()
    return [obj for obj in map(json.loads, lines) if "Event" in obj]


def without_meta(event: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in event.items() if not k.startswith("_")}


def is_event(message: Mapping[str, str], name: str | None = None) -> bool:
    return "Event" in message and (name is None or message["Event"] == name)


class Client:
    """A minimal AMI client: send actions, read messages in arrival order."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.parser = AmiParser()
        self.buffer: deque[Message] = deque()
        self.raw = bytearray()

    @classmethod
    async def connect(cls, port: int) -> Client:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def read(self, timeout: float = 5.0) -> Message:
        while not self.buffer:
            data = await asyncio.wait_for(self.reader.read(65536), timeout)
            if not data:
                raise EOFError("the server closed the connection")
            self.raw += data
            self.buffer.extend(self.parser.feed(data))
        return self.buffer.popleft()

    async def read_until(
        self, done: Callable[[Message], bool], timeout: float = 5.0
    ) -> list[Message]:
        """Messages up to and including the first for which ``done`` is true."""
        seen: list[Message] = []
        while True:
            message = await self.read(timeout)
            seen.append(message)
            if done(message):
                return seen

    async def read_for(self, seconds: float) -> list[Message]:
        """Whatever arrives within ``seconds``."""
        seen: list[Message] = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                seen.append(await self.read(left))
            except TimeoutError:
                break
        return seen

    def send(self, action: Mapping[str, str]) -> None:
        self.writer.write(encode_action(action))

    async def action(self, action: Mapping[str, str]) -> tuple[Message, list[Message]]:
        """Send; return the response with this ActionID and the messages read before it."""
        action_id = action["ActionID"]
        self.send(action)
        seen = await self.read_until(
            lambda m: "Response" in m and "Event" not in m and m.get("ActionID") == action_id
        )
        return seen[-1], seen[:-1]

    async def login(self, secret: str = SECRET, **extra: str) -> Message:
        banner = await self.read()
        assert banner == {"_banner": "Asterisk Call Manager/9.0.0"}
        response, _ = await self.action(
            {"Action": "Login", "Username": "callcenter", "Secret": secret, "ActionID": "login"}
            | extra
        )
        return response

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.wait_closed()


async def logged_in(server: AmiReplayServer, **extra: str) -> Client:
    client = await Client.connect(server.port)
    response = await client.login(**extra)
    assert response["Response"] == "Success", response
    return client


async def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(0.01)


# ---------------------------------------------------------------------- login


def test_login_with_the_right_secret_is_accepted() -> None:
    async def scenario() -> Message:
        async with AmiReplayServer(secret=SECRET) as server:
            client = await Client.connect(server.port)
            response = await client.login()
            await client.close()
            return response

    assert run(scenario()) == {
        "Response": "Success",
        "ActionID": "login",
        "Message": "Authentication accepted",
    }


@pytest.mark.parametrize(("username", "secret"), [("callcenter", "wrong"), ("intruder", SECRET)])
def test_wrong_credentials_are_refused_and_the_connection_closed(
    username: str, secret: str
) -> None:
    async def scenario() -> tuple[Message, bool]:
        async with AmiReplayServer(secret=SECRET) as server:
            client = await Client.connect(server.port)
            await client.read()  # banner
            response, _ = await client.action(
                {"Action": "Login", "Username": username, "Secret": secret, "ActionID": "l1"}
            )
            try:
                await client.read()
                closed = False
            except EOFError:
                closed = True
            await client.close()
            return response, closed

    response, closed = run(scenario())
    assert response == {"Response": "Error", "ActionID": "l1", "Message": "Authentication failed"}
    assert closed


def test_md5_challenge_login() -> None:
    async def scenario() -> Message:
        async with AmiReplayServer(secret=SECRET) as server:
            client = await Client.connect(server.port)
            await client.read()
            challenge, _ = await client.action(
                {"Action": "Challenge", "AuthType": "MD5", "ActionID": "c"}
            )
            key = hashlib.md5((challenge["Challenge"] + SECRET).encode()).hexdigest()
            response, _ = await client.action(
                {
                    "Action": "Login",
                    "AuthType": "MD5",
                    "Username": "callcenter",
                    "Key": key,
                    "ActionID": "l",
                }
            )
            await client.close()
            return response

    assert run(scenario())["Message"] == "Authentication accepted"


def test_actions_before_login_are_denied_and_unknown_actions_refused() -> None:
    async def scenario() -> tuple[Message, Message, Message]:
        async with AmiReplayServer(secret=SECRET) as server:
            client = await Client.connect(server.port)
            await client.read()
            denied, _ = await client.action({"Action": "Ping", "ActionID": "p0"})
            await client.action(
                {"Action": "Login", "Username": "callcenter", "Secret": SECRET, "ActionID": "l"}
            )
            unknown, _ = await client.action({"Action": "FlyToTheMoon", "ActionID": "u"})
            goodbye, _ = await client.action({"Action": "Logoff", "ActionID": "bye"})
            await client.close()
            return denied, unknown, goodbye

    denied, unknown, goodbye = run(scenario())
    assert denied == {"Response": "Error", "ActionID": "p0", "Message": "Permission denied"}
    assert unknown["Response"] == "Error"
    assert unknown["ActionID"] == "u"
    assert unknown["Message"].startswith("Invalid/unknown command")
    assert goodbye["Response"] == "Goodbye"


def test_ping() -> None:
    async def scenario() -> Message:
        async with AmiReplayServer(secret=SECRET) as server:
            client = await logged_in(server)
            response, _ = await client.action({"Action": "Ping", "ActionID": "ping-1"})
            await client.close()
            return response

    response = run(scenario())
    assert response["Response"] == "Success"
    assert response["ActionID"] == "ping-1"
    assert response["Ping"] == "Pong"
    assert abs(float(response["Timestamp"]) - time.time()) < 60


# ---------------------------------------------------------------------- playback


def test_answered_events_arrive_in_order_unchanged_at_full_speed() -> None:
    recorded = file_events(ANSWERED)

    async def scenario() -> list[Message]:
        async with AmiReplayServer([ANSWERED], speed=0, secret=SECRET) as server:
            client = await logged_in(server)
            await server.wait_until_finished()
            received = [m for m in await client.read_for(0.3) if is_event(m)]
            assert server.events_sent == len(recorded)
            assert server.events_dropped == 0
            await client.close()
            return received

    received = run(scenario())
    assert len(received) == len(recorded)
    for got, event in zip(received, recorded, strict=True):
        expected = without_meta(event)
        if "Timestamp" not in event:  # FullyBooted: the recorder's receive time stands in
            expected["Timestamp"] = f"{event['_recv']:.6f}"
        assert got == expected


def test_untimed_events_get_synthetic_timestamps() -> None:
    recorded = json.loads(CACOFONISK_SIMPLE.read_text("utf-8"))

    async def scenario() -> list[Message]:
        async with AmiReplayServer([CACOFONISK_SIMPLE], speed=0) as server:
            client = await logged_in(server, Secret="anything")
            await server.wait_until_finished()
            received = [m for m in await client.read_for(0.3) if is_event(m)]
            await client.close()
            return received

    received = run(scenario())
    assert [m["Event"] for m in received] == [e["Event"] for e in recorded]
    stamps = [float(m["Timestamp"]) for m in received]
    assert abs(stamps[0] - time.time()) < 60
    steps = {round(b - a, 3) for a, b in itertools.pairwise(stamps)}
    assert steps == {0.02}


def test_real_speed_pacing_keeps_the_recorded_gaps() -> None:
    async def scenario() -> tuple[list[Message], float]:
        async with AmiReplayServer([ANSWERED], speed=20, shift_to_now=True) as server:
            client = await logged_in(server, Secret="x")
            first = await client.read_until(lambda m: is_event(m))
            started = time.monotonic()
            rest = await client.read_until(
                lambda m: is_event(m, "Hangup") and m["Channel"].startswith("SIP/duty1")
            )
            elapsed = time.monotonic() - started
            await client.close()
            return first[-1:] + rest, elapsed

    events, elapsed = run(scenario())
    recorded = file_events(ANSWERED)
    recorded_span = float(recorded[-1]["Timestamp"]) - recorded[0]["_recv"]  # ~9.1 s
    assert recorded_span / 20 * 0.8 < elapsed < recorded_span / 20 + 2.0
    stamps = [float(m["Timestamp"]) for m in events]
    assert stamps[-1] - stamps[0] == pytest.approx(recorded_span, abs=1e-3)
    assert abs(stamps[0] - time.time()) < 30  # shifted to now


def test_core_show_channels_mid_call_lists_both_legs() -> None:
    async def scenario() -> tuple[list[Message], list[Message], Message, Message]:
        async with AmiReplayServer([ANSWERED], speed=0, secret=SECRET) as server:
            server.pause_on(lambda e: e["Event"] == "HangupRequest")
            client = await logged_in(server)
            await server.wait_paused()
            client.send({"Action": "CoreShowChannels", "ActionID": "cs1"})
            seen = await client.read_until(lambda m: is_event(m, "CoreShowChannelsComplete"))
            listed = [m for m in seen if is_event(m, "CoreShowChannel")]
            response = next(m for m in seen if m.get("Response") and m.get("ActionID") == "cs1")
            server.resume()
            await server.wait_until_finished()
            await client.action({"Action": "CoreShowChannels", "ActionID": "cs2"})
            complete = await client.read_until(lambda m: is_event(m, "CoreShowChannelsComplete"))
            await client.close()
            return seen, listed, response, complete[-1]

    seen, listed, response, empty = run(scenario())
    assert not any(is_event(m, "HangupRequest") for m in seen)
    assert response == {
        "Response": "Success",
        "ActionID": "cs1",
        "EventList": "start",
        "Message": "Channels will follow",
    }
    by_name = {m["Channel"]: m for m in listed}
    assert set(by_name) == {"SIP/pstn-00000062", "SIP/duty1-00000063"}
    pstn, duty = by_name["SIP/pstn-00000062"], by_name["SIP/duty1-00000063"]
    assert pstn["Uniqueid"] == "1795432818.102"
    assert duty["Uniqueid"] == "1795432818.103"
    for channel in (pstn, duty):
        assert channel["ActionID"] == "cs1"
        assert channel["Linkedid"] == "1795432818.102"
        assert (channel["ChannelState"], channel["ChannelStateDesc"]) == ("6", "Up")
        assert channel["BridgeId"] == BRIDGE
        assert channel["Duration"] == "00:00:08"  # 3 s ringing + 5 s talk so far
    assert (pstn["CallerIDNum"], pstn["Context"], pstn["Exten"]) == (
        "13811110001",
        "inbound",
        "12345",
    )
    assert (pstn["Application"], pstn["ApplicationData"]) == ("Dial", "SIP/duty1,20")
    assert (duty["Application"], duty["ApplicationData"]) == ("AppDial", "(Outgoing Line)")
    assert duty["ConnectedLineNum"] == "13811110001"
    assert set(pstn) >= {"CallerIDName", "ConnectedLineNum", "Exten", "Context", "Duration"}
    assert (empty["EventList"], empty["ListItems"]) == ("Complete", "0")


def test_loop_makes_new_calls_on_every_pass() -> None:
    per_pass = len(file_events(ANSWERED))

    async def scenario() -> list[Message]:
        server = AmiReplayServer([ANSWERED], speed=0, loop=True, max_passes=2, secret=SECRET)
        async with server:
            client = await logged_in(server)
            await server.wait_until_finished()
            received = [m for m in await client.read_for(0.3) if is_event(m)]
            await client.close()
            return received

    received = run(scenario())
    assert len(received) == 2 * per_pass
    first, second = received[:per_pass], received[per_pass:]
    assert [m["Event"] for m in first] == [m["Event"] for m in second]

    def ids(events: list[Message]) -> set[str]:
        return {v for m in events for k, v in m.items() if k.endswith(("Uniqueid", "Linkedid"))}

    assert ids(first) & ids(second) == set()
    # Every Linkedid of pass 2 is the Uniqueid of one of its channels.
    uniqueids_2 = {m["Uniqueid"] for m in second if "Uniqueid" in m}
    assert {m["Linkedid"] for m in second if "Linkedid" in m} <= uniqueids_2

    # Channel names and ids map one to one, the same way everywhere in the pass.
    names: dict[str, str] = {}
    id_map: dict[str, str] = {}
    for old, new in zip(first, second, strict=True):
        assert old.keys() == new.keys()
        for key, value in old.items():
            if key.endswith("Channel") and value:
                assert names.setdefault(value, new[key]) == new[key]
            elif key.endswith(("Uniqueid", "Linkedid")) and value:
                assert id_map.setdefault(value, new[key]) == new[key]
            elif key == "Value" and value in names:  # BRIDGEPEER and friends
                assert new[key] == names[value]
            elif key not in {"Timestamp", "Value"}:
                assert new[key] == value, key
    assert len(set(names.values())) == len(names)
    assert len(set(id_map.values())) == len(id_map)
    assert names.keys() == {"SIP/pstn-00000062", "SIP/duty1-00000063"}
    for old_name, new_name in names.items():
        assert new_name != old_name
        assert new_name.rsplit("-", 1)[0] == old_name.rsplit("-", 1)[0]
        assert re.fullmatch(r"[0-9a-f]{8}", new_name.rsplit("-", 1)[1])
    assert float(second[0]["Timestamp"]) > float(first[-1]["Timestamp"])

    # The tracker sees two separate answered calls.
    tracker = CallTracker()
    calls = [call for event in received for call in tracker.feed(event)] + tracker.flush()
    assert len(calls) == 2
    assert calls[0].linkedid != calls[1].linkedid
    for call in calls:
        assert (call.outcome, call.answered_by) == ("answered", "SIP/duty1")
        assert call.ring_seconds == pytest.approx(3.0, abs=0.1)


def test_events_are_dropped_while_no_client_is_logged_in() -> None:
    events = [
        {"Event": "UserEvent", "UserEvent": f"e{i}", "Timestamp": f"{1800000000 + i}.000000"}
        for i in range(6)
    ]

    async def scenario() -> tuple[list[str], list[Message], AmiReplayServer]:
        server = AmiReplayServer(events=events, speed=0)
        server.pause()
        async with server:
            early = await logged_in(server, Secret="x")
            server.pause_on(lambda e: e.get("UserEvent") == "e3")
            server.resume()
            await server.wait_paused()
            got = [m["UserEvent"] for m in await early.read_for(0.2) if is_event(m)]
            await early.action({"Action": "Logoff", "ActionID": "bye"})
            await early.close()
            await wait_for(lambda: server.clients == 0)
            server.resume()  # e3..e5 play with nobody there
            await server.wait_until_finished()
            late = await logged_in(server, Secret="x")
            _, before = await late.action({"Action": "Ping", "ActionID": "p"})
            after = await late.read_for(0.2)
            await late.close()
            return got, before + after, server

    got, late_messages, server = run(scenario())
    assert got == ["e0", "e1", "e2"]
    assert late_messages == []
    assert (server.events_sent, server.events_dropped) == (3, 3)


def test_nothing_is_queued_before_the_first_login_without_start_on_login() -> None:
    async def scenario() -> tuple[list[Message], AmiReplayServer]:
        events = [{"Event": "UserEvent", "UserEvent": "lost", "Timestamp": "1.000000"}]
        server = AmiReplayServer(events=events, speed=0, start_on_login=False)
        async with server:
            await server.wait_until_finished()
            client = await logged_in(server, Secret="x")
            messages = await client.read_for(0.2)
            await client.close()
            return messages, server

    messages, server = run(scenario())
    assert messages == []
    assert (server.events_sent, server.events_dropped) == (0, 1)


def test_chinese_caller_name_is_intact() -> None:
    name = "市应急管理局"
    event = {
        "Event": "Newchannel",
        "Privilege": "call,all",
        "Timestamp": "1795432818.146992",
        "Channel": "SIP/pstn-00000001",
        "ChannelState": "4",
        "ChannelStateDesc": "Ring",
        "CallerIDNum": "01088886666",
        "CallerIDName": name,
        "Exten": "12345",
        "Context": "inbound",
        "Uniqueid": "1795432818.1",
        "Linkedid": "1795432818.1",
        "_recv": 1795432818.2,
    }

    async def scenario() -> tuple[Message, bytes, list[Message]]:
        async with AmiReplayServer(events=[event], speed=0) as server:
            client = await logged_in(server, Secret="x")
            received = await client.read_until(lambda m: is_event(m, "Newchannel"))
            await server.wait_until_finished()
            _, _ = await client.action({"Action": "CoreShowChannels", "ActionID": "c"})
            listed = await client.read_until(lambda m: is_event(m, "CoreShowChannelsComplete"))
            await client.close()
            return received[-1], bytes(client.raw), listed

    received, raw, listed = run(scenario())
    assert received == without_meta(event)
    assert f"CallerIDName: {name}\r\n".encode() in raw
    assert [m["CallerIDName"] for m in listed if is_event(m, "CoreShowChannel")] == [name]


def test_two_clients_both_receive_every_event_and_events_off_silences_one() -> None:
    async def scenario() -> tuple[list[Message], list[Message], list[Message]]:
        server = AmiReplayServer([ANSWERED], speed=0)
        server.pause()
        async with server:
            first = await logged_in(server, Secret="x")
            second = await logged_in(server, Secret="x")
            quiet = await logged_in(server, Secret="x")
            off, _ = await quiet.action({"Action": "Events", "EventMask": "off", "ActionID": "e"})
            assert off["Events"] == "Off"
            server.resume()
            await server.wait_until_finished()
            a = [m for m in await first.read_for(0.3) if is_event(m)]
            b = [m for m in await second.read_for(0.1) if is_event(m)]
            c = await quiet.read_for(0.1)
            for client in (first, second, quiet):
                await client.close()
            return a, b, c

    a, b, c = run(scenario())
    assert len(a) == len(file_events(ANSWERED))
    assert a == b
    assert c == []


def test_drop_clients_closes_connections_abruptly_and_reconnecting_works() -> None:
    async def scenario() -> tuple[int, bool, Message]:
        async with AmiReplayServer(secret=SECRET) as server:
            client = await logged_in(server)
            dropped = server.drop_clients()
            try:
                await client.read()
                eof = False
            except (EOFError, ConnectionError):
                eof = True
            await client.close()
            again = await logged_in(server)
            pong, _ = await again.action({"Action": "Ping", "ActionID": "p"})
            await again.close()
            return dropped, eof, pong

    dropped, eof, pong = run(scenario())
    assert dropped == 1
    assert eof
    assert pong["Ping"] == "Pong"


def test_stop_listening_refuses_connections_until_resumed() -> None:
    async def scenario() -> tuple[bool, Message]:
        async with AmiReplayServer(secret=SECRET) as server:
            port = server.port
            await server.stop_listening()
            try:
                await Client.connect(port)
                refused = False
            except ConnectionRefusedError:
                refused = True
            await server.resume_listening()
            assert server.port == port
            client = await logged_in(server)
            pong, _ = await client.action({"Action": "Ping", "ActionID": "p"})
            await client.close()
            return refused, pong

    refused, pong = run(scenario())
    assert refused
    assert pong["Response"] == "Success"


def test_a_stalled_client_never_holds_up_the_others() -> None:
    count = 3000
    pad = "x" * 4000  # 12 MB in all: more than the socket buffers of the stalled client

    def stream() -> Iterator[dict[str, str]]:
        for i in range(count):
            yield {"Event": "UserEvent", "UserEvent": f"e{i}", "Pad": pad}

    async def scenario() -> tuple[int, int, AmiReplayServer]:
        server = AmiReplayServer(
            events=stream(), speed=0, client_queue_limit=100, client_stall_timeout=0.5
        )
        server.pause()
        async with server:
            reading = await logged_in(server, Secret="x")
            stalled = await logged_in(server, Secret="x")  # never reads again
            server.resume()
            received = 0
            while received < count:
                if is_event(await reading.read(10)):
                    received += 1
            await server.wait_until_finished()
            clients = server.clients
            for client in (reading, stalled):
                await client.close()
            return received, clients, server

    received, clients, server = run(scenario())
    assert received == count
    assert clients == 1  # the stalled one was disconnected
    assert server.events_sent == count


@pytest.mark.parametrize(
    "path",
    [
        FIXTURES / "asterisk20" / "pbx_forward_to_mobile.jsonl",
        FIXTURES / "asterisk20" / "spot_check_originate_answered.jsonl",
        FIXTURES / "asterisk20-pjsip" / "pj_queue_answered.jsonl",
        FIXTURES / "asterisk20-pjsip" / "pj_two_missed.jsonl",
        FIXTURES / "cacofonisk" / "xfer_attended" / "xfer_abbcac.json",
        FIXTURES / "cacofonisk" / "xfer_blind" / "xfer_blind_group.json",
        FIXTURES / "cacofonisk" / "xfer_misc" / "call_forwarding.json",
        FIXTURES / "cacofonisk" / "originate" / "ctd-account-world-xfer-attn-abacbc.json",
    ],
    ids=lambda p: p.name,
)
def test_every_pass_tracks_to_the_same_calls_under_new_ids(path: Path) -> None:
    """Local channels (;1/;2), transfers, queues and originates keep their shape."""
    if path.suffix == ".jsonl":
        per_pass = len(file_events(path))
    else:
        per_pass = sum("Event" in e for e in json.loads(path.read_text("utf-8")))

    async def scenario() -> list[Message]:
        server = AmiReplayServer([path], speed=0, loop=True, max_passes=2)
        async with server:
            client = await logged_in(server, Secret="x")
            events: list[Message] = []
            while len(events) < 2 * per_pass:
                message = await client.read()
                if is_event(message):
                    events.append(message)
            await client.close()
            return events

    events = run(scenario())

    def track(stream: list[Message]) -> list[Any]:
        tracker = CallTracker(on_warning=lambda _: None)
        return [call for event in stream for call in tracker.feed(event)] + tracker.flush()

    def shape(call: Any) -> tuple[object, ...]:
        def rounded(value: float | None) -> float | None:
            return None if value is None else round(value, 3)

        return (
            call.caller, call.dialed, call.direction, call.outcome, call.answered_by,
            call.forwarded_to, call.transferred_to, call.hangup_cause,
            rounded(call.ring_seconds), rounded(call.talk_seconds),
        )  # fmt: skip

    first, second = track(events[:per_pass]), track(events[per_pass:])
    assert first
    assert [shape(c) for c in second] == [shape(c) for c in first]
    assert not {c.linkedid for c in first} & {c.linkedid for c in second}
    assert len(track(events)) == len(first) + len(second)


# ---------------------------------------------------------------------- AstDB


def test_dbget_dbput_dbdel() -> None:
    async def scenario() -> tuple[list[tuple[Message, list[Message]]], dict[str, str]]:
        async with AmiReplayServer(secret=SECRET, astdb={"DND/duty2": "YES"}) as server:
            client = await logged_in(server)
            results = []
            for action in (
                {"Action": "DBGet", "Family": "CF", "Key": "duty1", "ActionID": "g1"},
                {
                    "Action": "DBPut",
                    "Family": "CF",
                    "Key": "duty1",
                    "Val": "13800138000",
                    "ActionID": "p1",
                },
                {"Action": "DBGet", "Family": "CF", "Key": "duty1", "ActionID": "g2"},
                {"Action": "DBDel", "Family": "CF", "Key": "duty1", "ActionID": "d1"},
                {"Action": "DBDel", "Family": "CF", "Key": "duty1", "ActionID": "d2"},
            ):
                results.append(await client.action(action))
                if action["ActionID"] == "g2":
                    listed = await client.read_until(lambda m: is_event(m, "DBGetComplete"))
                    results.append((results[-1][0], listed))
                if action["ActionID"] == "p1":
                    assert server.astdb["CF/duty1"] == "13800138000"
            await client.close()
            return results, dict(server.astdb)

    results, astdb = run(scenario())
    (missing, _), (put, _), (found, _), (_, listed), (deleted, _), (gone, _) = results
    assert missing == {"Response": "Error", "ActionID": "g1", "Message": "Database entry not found"}
    assert put == {
        "Response": "Success",
        "ActionID": "p1",
        "Message": "Updated database successfully",
    }
    assert found == {
        "Response": "Success",
        "ActionID": "g2",
        "EventList": "start",
        "Message": "Result will follow",
    }
    assert listed == [
        {"Event": "DBGetResponse", "Family": "CF", "Key": "duty1", "Val": "13800138000",
         "ActionID": "g2"},
        {"Event": "DBGetComplete", "ActionID": "g2", "EventList": "Complete", "ListItems": "1"},
    ]  # fmt: skip
    assert deleted["Message"] == "Key deleted successfully"
    assert (gone["Response"], gone["Message"]) == ("Error", "Database entry not found")
    assert astdb == {"DND/duty2": "YES"}


# ---------------------------------------------------------------------- Originate

SPOT_CHECK = {
    "Action": "Originate",
    "Channel": "SIP/duty1",
    "Context": "originate-target",
    "Exten": "s",
    "Priority": "1",
    "Timeout": "15000",
    "CallerID": '"Duty spot check" <12345>',
    "Async": "true",
}


def originate(
    handler: Any, action: Mapping[str, str]
) -> tuple[Message, list[Message], AmiReplayServer]:
    """Send one Originate; return the response and the events up to OriginateResponse."""

    async def scenario() -> tuple[Message, list[Message], AmiReplayServer]:
        async with AmiReplayServer(secret=SECRET, originate_handler=handler) as server:
            client = await logged_in(server)
            response, _ = await client.action(action)
            events: list[Message] = []
            if response["Response"] == "Success" and action.get("Async") == "true":
                events = await client.read_until(lambda m: is_event(m, "OriginateResponse"))
            else:
                events = [m for m in await client.read_for(0.2) if is_event(m)]
            await client.close()
            return response, events, server

    return run(scenario())


def test_originate_succeeds_by_default_with_an_originate_response() -> None:
    response, events, _ = originate(None, SPOT_CHECK | {"ActionID": "spot-1"})
    assert response == {
        "Response": "Success",
        "ActionID": "spot-1",
        "Message": "Originate successfully queued",
    }
    (event,) = events
    assert event["ActionID"] == "spot-1"
    assert (event["Response"], event["Reason"]) == ("Success", "4")
    assert re.fullmatch(r"SIP/duty1-[0-9a-f]{8}", event["Channel"])
    assert re.fullmatch(r"\d+\.\d+", event["Uniqueid"])
    assert (event["Context"], event["Exten"]) == ("originate-target", "s")
    assert (event["CallerIDNum"], event["CallerIDName"]) == ("12345", "Duty spot check")
    assert abs(float(event["Timestamp"]) - time.time()) < 60


def test_originate_scripted_failure_by_dict() -> None:
    handler = {"response": "Failure", "reason": 3, "delay": 0.05}
    response, events, _ = originate(handler, SPOT_CHECK | {"ActionID": "spot-2"})
    assert response["Message"] == "Originate successfully queued"
    (event,) = events
    assert (event["ActionID"], event["Response"], event["Reason"]) == ("spot-2", "Failure", "3")
    assert (event["Channel"], event["Uniqueid"]) == ("SIP/duty1", "<null>")


def test_originate_callable_handler_sees_the_action_and_plays_its_events() -> None:
    seen: list[Mapping[str, str]] = []

    async def handler(action: Mapping[str, str]) -> OriginateResult:
        seen.append(dict(action))
        assert action["channel"] == action["Channel"] == "SIP/duty1"  # case-insensitive
        ring = {
            "Event": "Newchannel",
            "Privilege": "call,all",
            "Channel": "SIP/duty1-000000aa",
            "ChannelState": "5",
            "ChannelStateDesc": "Ringing",
            "Uniqueid": "1795432940.500",
            "Linkedid": "1795432940.500",
        }
        hangup = ring | {"Event": "Hangup", "Cause": "19"}
        return OriginateResult(success=False, reason=3, events=(ring, hangup))

    response, events, server = originate(handler, SPOT_CHECK | {"ActionID": "spot-3"})
    assert response["Response"] == "Success"
    assert [e["Event"] for e in events] == ["Newchannel", "Hangup", "OriginateResponse"]
    assert all("Timestamp" in e for e in events)
    assert events[-1]["Reason"] == "3"
    assert seen[0]["ActionID"] == "spot-3"
    assert server.channels_up == []


def test_synchronous_originate_answers_after_the_result() -> None:
    def handler(action: Mapping[str, str]) -> OriginateResult:
        return OriginateResult(success=False)

    sync = {k: v for k, v in SPOT_CHECK.items() if k != "Async"}
    response, events, _ = originate(handler, sync | {"ActionID": "spot-4"})
    assert response == {"Response": "Error", "ActionID": "spot-4", "Message": "Originate failed"}
    assert events == []  # Asterisk sends OriginateResponse only for Async originates


# ---------------------------------------------------------------------- the command


def start_command(*args: str) -> tuple[subprocess.Popen[bytes], int]:
    env = {k: v for k, v in os.environ.items() if k != "CALLCENTER_AMI__SECRET"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from callcenter.commands.ami_replay import ami_replay; ami_replay()",
            "--port",
            "0",
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stderr is not None
    for raw in proc.stderr:
        line = raw.decode("utf-8", "replace")
        match = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
        if match:
            return proc, int(match[1])
    proc.wait(timeout=10)
    raise AssertionError(f"ami-replay did not start (exit code {proc.returncode})")


def stop_command(proc: subprocess.Popen[bytes]) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=20)
    return proc.returncode, stderr.decode("utf-8", "replace")


def read_events_from(port: int, secret: str, count: int) -> list[Message]:
    async def scenario() -> list[Message]:
        client = await Client.connect(port)
        response = await client.login(secret)
        assert response["Response"] == "Success"
        events: list[Message] = []
        while len(events) < count:
            message = await client.read(10)
            if is_event(message):
                events.append(message)
        await client.close()
        return events

    return run(scenario())


def test_command_serves_transcripts_and_stops_cleanly_on_sigterm() -> None:
    proc, port = start_command("--speed", "0", "--secret", SECRET, str(ANSWERED))
    try:
        events = read_events_from(port, SECRET, len(file_events(ANSWERED)))
    finally:
        code, stderr = stop_command(proc)
    assert events[-1]["Event"] == "Hangup"
    assert code == 0, stderr
    assert "stopped" in stderr


def test_command_needs_something_to_play() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "from callcenter.commands.ami_replay import ami_replay; ami_replay()",
            "--port",
            "0",
        ],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert b"--generate" in proc.stderr


def generator_available() -> bool:
    try:
        module = importlib.import_module("callcenter.ami.generator")
    except ImportError:
        return False
    return hasattr(module, "generate_stream")


def test_command_generate() -> None:
    if not generator_available():
        failed = subprocess.run(
            [
                sys.executable,
                "-c",
                "from callcenter.commands.ami_replay import ami_replay; ami_replay()",
                "--generate",
                "--port",
                "0",
            ],
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert failed.returncode == 1
        assert b"callcenter.ami.generator" in failed.stderr
        return
    proc, port = start_command("--generate", "--seed", "7", "--speed", "0")
    try:
        events = read_events_from(port, "any", 20)
    finally:
        code, stderr = stop_command(proc)
    assert all(abs(float(e["Timestamp"]) - time.time()) < 3600 for e in events)  # now
    assert code == 0, stderr


def test_command_generate_rings_a_desk_phone_for_a_spot_check() -> None:
    """With generated traffic (the demo's PBX), a spot check's Originate of
    ``Local/<line>@<context>`` is answered with a generated call on the line's desk phone,
    its events before the OriginateResponse, instead of a bare "success"."""
    proc, port = start_command("--generate", "--seed", "7", "--speed", "1")
    spot_check = {
        "Action": "Originate",
        "Channel": "Local/12345@duty-spot-check",
        "Application": "Playback",
        "Data": "custom/spot-check",
        "CallerID": "抽查 <12345>",
        "Timeout": "15000",
        "Async": "true",
        "ActionID": "spot-7",
    }

    async def scenario() -> list[Message]:
        client = await Client.connect(port)
        assert (await client.login("any"))["Response"] == "Success"
        client.send(spot_check)
        seen = await client.read_until(
            lambda m: is_event(m, "OriginateResponse") and m.get("ActionID") == "spot-7",
            timeout=60,
        )
        await client.close()
        return seen

    try:
        seen = run(scenario())
    finally:
        code, stderr = stop_command(proc)
    assert code == 0, stderr
    response = seen[-1]
    call = [m for m in seen if is_event(m) and m.get("Linkedid") == response["Uniqueid"]]
    events = [m["Event"] for m in call]
    assert events[0] == "Newchannel" and "Hangup" in events
    assert call[0]["Channel"].startswith("SIP/duty1-")  # the generated desk phone rang
    # numbered on from the stream (no jump the listener would take for a PBX restart), and
    # a Uniqueid of its own
    stream = [m["Uniqueid"] for m in seen[: seen.index(call[0])] if "." in m.get("Uniqueid", "")]
    sequence = int(response["Uniqueid"].split(".")[1])
    assert stream and abs(sequence - max(int(u.split(".")[1]) for u in stream)) < 100
    assert response["Uniqueid"] not in stream
    answered = any(m["Event"] == "Newstate" and m["ChannelStateDesc"] == "Up" for m in call)
    assert answered == (response["Response"] == "Success")  # as the call went
