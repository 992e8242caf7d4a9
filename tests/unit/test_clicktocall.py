"""Click-to-call back: the request format and the AMI action (pure), and the Redis request
queue between console and listener (on a real Redis)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import redis

from callcenter import clicktocall
from callcenter.clicktocall import ClickToCallError, OriginateRequest
from callcenter.embedded_redis import EmbeddedRedis, connect

NOW = datetime(2026, 11, 23, 11, 20, 42, 120000, tzinfo=UTC)


def request(**fields: object) -> OriginateRequest:
    values: dict[str, object] = {
        "id": "0" * 32,
        "pbx": "pbx1",
        "from_endpoint": "SIP/duty1",
        "number": "13811110001",
        "requested_by": "officer_a",
        "requested_at": NOW,
        "call_id": 12,
    }
    values.update(fields)
    return OriginateRequest(**values)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- pure


def test_request_json_round_trip() -> None:
    original = request(extra={"unit": "甲县"})
    assert OriginateRequest.from_json(original.to_json()) == original
    assert OriginateRequest.from_json(original.to_json().encode()) == original
    assert json.loads(original.to_json())["requested_at"] == "2026-11-23T11:20:42.120+00:00"


@pytest.mark.parametrize(
    "raw",
    [
        "not json",
        "[]",
        "{}",
        '{"id": "x", "pbx": "p", "from_endpoint": "SIP/a", "number": "1"}',  # no time
        request(number="123\r\nAction: Command").to_json(),
        request(from_endpoint="SIP/duty1\r\nX: y").to_json(),
    ],
)
def test_malformed_requests_are_refused(raw: str) -> None:
    with pytest.raises(ClickToCallError):
        OriginateRequest.from_json(raw)


def test_ami_action_rings_the_desk_phone_then_dials_the_number() -> None:
    action = request().ami_action(context="duty-callback", timeout_seconds=25)
    assert action == {
        "Action": "Originate",
        "ActionID": "0" * 32,
        "Channel": "SIP/duty1",
        "Context": "duty-callback",
        "Exten": "13811110001",
        "Priority": "1",
        "Timeout": "25000",
        "CallerID": "Callback <13811110001>",
        "Async": "true",
        "Variable": "CALLCENTER_CALLBACK=" + "0" * 32,
    }
    assert all("\r" not in v and "\n" not in v for v in action.values())


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        ("13811110001", "13811110001"),
        ("010-5555 1234", "01055551234"),
        ("+8613811110001", "+8613811110001"),
        ("anonymous", None),
        ("", None),
        (None, None),
        ("1" * 40, None),
    ],
)
def test_dialable(number: str | None, expected: str | None) -> None:
    assert clicktocall.dialable(number) == expected


# --------------------------------------------------------------------------- on Redis


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    with EmbeddedRedis(tmp_path_factory.mktemp("redis"), persist=False) as server:
        yield server


@pytest.fixture
def client(redis_server: EmbeddedRedis) -> Iterator[redis.Redis]:
    client = connect(redis_server.url)
    client.flushall()
    try:
        yield client
    finally:
        client.close()


@pytest.mark.redis
def test_request_then_serve_in_order(client: redis.Redis) -> None:
    first = clicktocall.request_call(client, "pbx1", "SIP/duty1", "138 1111 0001", "a", call_id=1)
    second = clicktocall.request_call(client, "pbx1", "PJSIP/2001", "010-5555", "b")
    other_pbx = clicktocall.request_call(client, "pbx2", "SIP/duty9", "110", "c")
    assert len({first, second, other_pbx}) == 3
    assert client.llen("callcenter:originate:pbx1") == 2

    served = clicktocall.next_request(client, "pbx1", timeout=1)
    assert served is not None
    assert (served.id, served.number, served.from_endpoint, served.call_id) == (
        first,
        "13811110001",  # spaces and dashes dropped
        "SIP/duty1",
        1,
    )
    served = clicktocall.next_request(client, "pbx1", timeout=1)
    assert served is not None
    assert (served.id, served.number) == (second, "0105555")
    assert clicktocall.next_request(client, "pbx1", timeout=0.1) is None
    assert clicktocall.result_of(client, other_pbx)["result"] == "queued"  # type: ignore[index]


@pytest.mark.redis
def test_results_are_recorded_and_read_back(client: redis.Redis) -> None:
    request_id = clicktocall.request_call(client, "pbx1", "SIP/duty1", "13811110001", "a")
    queued = clicktocall.result_of(client, request_id)
    assert queued is not None
    assert (queued["result"], queued["final"], queued["from_endpoint"]) == (
        "queued",
        False,
        "SIP/duty1",
    )
    clicktocall.record_result(client, request_id, "sent", now=NOW)
    clicktocall.record_result(client, request_id, "failed", "desk phone did not answer", now=NOW)
    result = clicktocall.result_of(client, request_id)
    assert result is not None
    assert result["result"] == "failed"
    assert result["final"] is True
    assert result["detail"] == "desk phone did not answer"
    assert result["number"] == "13811110001"  # the request's fields are kept
    assert 0 < client.ttl(clicktocall.result_key(request_id)) <= clicktocall.RESULT_TTL_SECONDS
    assert clicktocall.result_of(client, "f" * 32) is None
    assert clicktocall.result_of(client, "../etc") is None
    with pytest.raises(ClickToCallError):
        clicktocall.record_result(client, request_id, "exploded")


@pytest.mark.redis
def test_bad_input_never_reaches_the_queue(client: redis.Redis) -> None:
    for endpoint, number in [
        ("SIP/duty1", "123\nAction: Command"),
        ("SIP/duty1", ""),
        ("SIP/duty1", "abc"),
        ("duty1", "110"),
        ("SIP/duty1\r\n", "110"),
    ]:
        with pytest.raises(ClickToCallError):
            clicktocall.request_call(client, "pbx1", endpoint, number, "a")
    with pytest.raises(ClickToCallError):
        clicktocall.request_call(client, "pbx 1", "SIP/duty1", "110", "a")
    assert client.llen("callcenter:originate:pbx1") == 0


@pytest.mark.redis
def test_stale_and_malformed_requests_are_skipped(client: redis.Redis) -> None:
    stale = clicktocall.request_call(
        client, "pbx1", "SIP/duty1", "110", "a", now=NOW - timedelta(minutes=10)
    )
    client.lpush("callcenter:originate:pbx1", "garbage")
    fresh = clicktocall.request_call(client, "pbx1", "SIP/duty1", "120", "a", now=NOW)
    served = clicktocall.next_request(client, "pbx1", timeout=1, max_age_seconds=120, now=NOW)
    assert served is not None
    assert served.id == fresh
    expired = clicktocall.result_of(client, stale)
    assert expired is not None
    assert (expired["result"], expired["final"]) == ("expired", True)


@pytest.mark.redis
def test_a_waiting_listener_gets_the_request_at_once(client: redis.Redis) -> None:
    got: list[OriginateRequest | None] = []
    waiter = threading.Thread(
        target=lambda: got.append(clicktocall.next_request(client, "pbx1", timeout=5))
    )
    waiter.start()
    time.sleep(0.2)
    started = time.monotonic()
    request_id = clicktocall.request_call(client, "pbx1", "SIP/duty1", "110", "a")
    waiter.join(5)
    assert time.monotonic() - started < 2
    assert got and got[0] is not None and got[0].id == request_id
