"""Calls: the list (filters, scoping, keyset pagination), the detail, click-to-call back.

The small factories at the top (``add_line``, ``add_call``, ``add_callback``, ...) are used by
the board, log and journey tests too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from callcenter import clicktocall
from callcenter.embedded_redis import EmbeddedRedis, connect
from callcenter.queries.calls import CallFilters, Cursor, call_page, list_select
from callcenter.store.accounts import AuditEntry
from callcenter.store.duty import Callback, LogEntry, LogEntryCall, Violation, ViolationCall
from callcenter.store.models import Call, CallLeg
from callcenter.store.org import DeskPhone, DutyLine, Unit
from tests.web.conftest import Tree

CST = timezone(timedelta(hours=8))
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=CST)
LINE_A = "12345"
LINE_B = "67890"


def earlier_today(minutes: float) -> datetime:
    """``minutes`` ago, but never before midnight in the units' zone (UTC+8).

    The board lists only today's missed calls: a test that runs just after local
    midnight must still place its call on today.
    """
    now = datetime.now(CST)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return max(now - timedelta(minutes=minutes), midnight).astimezone(UTC)


# --------------------------------------------------------------------------- factories


def add_line(
    app_db: Callable[[], Any],
    unit: Unit,
    number: str,
    *,
    desk_phones: Sequence[str] = ("SIP/duty1",),
    name: str = "",
    answer_within_seconds: float = 15.0,
) -> int:
    with app_db() as session:
        line = DutyLine(
            number=number,
            name=name or f"{unit.name} duty",
            unit_id=unit.id,
            answer_within_seconds=answer_within_seconds,
        )
        line.desk_phones = [DeskPhone(endpoint=endpoint) for endpoint in desk_phones]
        session.add(line)
        session.flush()
        return line.id


_linkedids = iter(range(1, 10**9))


def new_call(
    line: str,
    started_at: datetime,
    outcome: str = "no_answer",
    *,
    caller: str = "13811110001",
    caller_name: str | None = None,
    legs: bool = False,
    pbx: str = "default",
) -> Call:
    ring = 20.0 if outcome != "answered" else 5.0
    answered_at = started_at + timedelta(seconds=ring) if outcome == "answered" else None
    ended_at = started_at + timedelta(seconds=ring + (60 if answered_at else 0))
    call = Call(
        pbx=pbx,
        linkedid=f"1795432842.{next(_linkedids)}",
        caller=caller,
        caller_name=caller_name,
        dialed=line,
        line=line,
        direction="inbound",
        started_at=started_at,
        answered_at=answered_at,
        ended_at=ended_at,
        ring_seconds=ring,
        talk_seconds=60.0 if answered_at else None,
        outcome=outcome,
        answered_by="SIP/duty1" if answered_at else None,
        hangup_cause=16,
        closed_by="hangup",
    )
    if legs:
        call.legs = [
            CallLeg(
                uniqueid=f"{call.linkedid}.1",
                channel="SIP/trunk-00000001",
                endpoint="SIP/trunk",
                role="caller",
                created_at=started_at,
                ended_at=ended_at,
                hangup_cause=16,
            ),
            CallLeg(
                uniqueid=f"{call.linkedid}.2",
                channel="SIP/duty1-00000002",
                endpoint="SIP/duty1",
                role="callee",
                created_at=started_at + timedelta(milliseconds=50),
                ringing_at=started_at + timedelta(milliseconds=80),
                answered_at=answered_at,
                ended_at=ended_at,
                hangup_cause=16 if answered_at else 19,
                dial_status="ANSWER" if answered_at else "NOANSWER",
            ),
        ]
    return call


def add_call(app_db: Callable[[], Any], *args: Any, **kwargs: Any) -> int:
    with app_db() as session:
        call = new_call(*args, **kwargs)
        session.add(call)
        session.flush()
        return call.id


def add_callback(
    app_db: Callable[[], Any], call_id: int, *, due_in: timedelta = timedelta(hours=1)
) -> int:
    with app_db() as session:
        call = session.get(Call, call_id)
        line_id = session.scalar(select(DutyLine.id).where(DutyLine.number == call.line))
        callback = Callback(
            call_id=call_id,
            line_id=line_id,
            caller=call.caller or "",
            due_at=(call.started_at or datetime.now(UTC)) + due_in,
        )
        session.add(callback)
        session.flush()
        return callback.id


def add_violation(app_db: Callable[[], Any], call_id: int, kind: str = "unanswered") -> int:
    with app_db() as session:
        call = session.get(Call, call_id)
        line = session.scalar(select(DutyLine).where(DutyLine.number == call.line))
        violation = Violation(
            dedupe_key=f"{kind}:call:{call_id}",
            kind=kind,
            unit_id=line.unit_id if line else None,
            line_id=line.id if line else None,
            line_number=call.line,
            at=call.ended_at or call.started_at,
            call_id=call_id,
            detail="rang 20.0 s, nobody answered",
        )
        session.add(violation)
        session.flush()
        # as the workers store it: the calls behind a violation, its own call included
        session.add(ViolationCall(violation_id=violation.id, call_id=call_id))
        session.flush()
        return violation.id


def signed_in(login: Callable[..., Any], client: FlaskClient, username: str) -> FlaskClient:
    response = login(client, username)
    assert response.status_code in (302, 303), response.get_data(as_text=True)[:500]
    return client


def call_ids(html: str) -> list[int]:
    return [int(found) for found in re.findall(r'data-call-id="(\d+)"', html)]


def older_link(html: str) -> str | None:
    match = re.search(r'<a href="([^"]+)">[^<]*Older', html)
    return match.group(1).replace("&amp;", "&") if match else None


def newer_link(html: str) -> str | None:
    match = re.search(r'<a href="([^"]+)">←[^<]*Newer', html)
    return match.group(1).replace("&amp;", "&") if match else None


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    """English pages, so the tests can read the links."""
    return {**app_config, "BABEL_DEFAULT_LOCALE": "en"}


@pytest.fixture
def english(client: FlaskClient) -> FlaskClient:
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


@pytest.fixture
def lines(tree: Tree, app_db: Callable[[], Any]) -> dict[str, int]:
    return {
        LINE_A: add_line(app_db, tree.a, LINE_A, desk_phones=("SIP/duty1", "PJSIP/2001")),
        LINE_B: add_line(app_db, tree.b, LINE_B, desk_phones=("SIP/dutyb",)),
    }


# --------------------------------------------------------------------------- scoping


def test_officer_sees_only_own_units_calls(
    english: FlaskClient, login: Callable[..., Any], app_db: Any, lines: dict[str, int]
) -> None:
    a = add_call(app_db, LINE_A, T0)
    b = add_call(app_db, LINE_B, T0)
    unknown_line = add_call(app_db, "99999", T0)
    signed_in(login, english, "officer_a")
    html = english.get("/calls").get_data(as_text=True)
    assert call_ids(html) == [a]
    assert english.get(f"/calls/{a}").status_code == 200
    assert english.get(f"/calls/{b}").status_code == 403
    assert english.get(f"/calls/{unknown_line}").status_code == 404
    assert english.get("/calls/999999").status_code == 404


def test_officer_b_cannot_see_unit_a(
    english: FlaskClient, login: Callable[..., Any], app_db: Any, lines: dict[str, int], tree: Tree
) -> None:
    a = add_call(app_db, LINE_A, T0)
    signed_in(login, english, "officer_b")
    assert a not in call_ids(english.get("/calls").get_data(as_text=True))
    assert english.get(f"/calls/{a}").status_code == 403
    assert english.get(f"/calls?unit={tree.a.id}").status_code == 403


def test_inspector_sees_units_below_and_admin_everything(
    client: FlaskClient, login: Callable[..., Any], app_db: Any, lines: dict[str, int]
) -> None:
    a = add_call(app_db, LINE_A, T0)
    b = add_call(app_db, LINE_B, T0 + timedelta(minutes=1))
    unconfigured = add_call(app_db, "99999", T0 + timedelta(minutes=2))
    signed_in(login, client, "inspector_city")
    assert call_ids(client.get("/calls").get_data(as_text=True)) == [b, a]
    detail = client.get(f"/calls/{a}").get_data(as_text=True)
    assert 'class="tag-call"' not in detail  # read-only: no tagging form
    assert 'class="inline call-back"' not in detail
    admin = client.application.test_client()
    signed_in(login, admin, "admin")
    assert call_ids(admin.get("/calls").get_data(as_text=True)) == [unconfigured, b, a]


def test_pages_need_login(client: FlaskClient, lines: dict[str, int], app_db: Any) -> None:
    a = add_call(app_db, LINE_A, T0)
    for path in ("/calls", f"/calls/{a}"):
        response = client.get(path)
        assert response.status_code in (302, 303, 401)


# --------------------------------------------------------------------------- filters


def test_filters(
    english: FlaskClient,
    login: Callable[..., Any],
    app_db: Any,
    lines: dict[str, int],
    tree: Tree,
) -> None:
    answered = add_call(app_db, LINE_A, T0, "answered", caller="13900000001")
    missed = add_call(app_db, LINE_A, T0 + timedelta(minutes=5), "no_answer")
    abandoned = add_call(app_db, LINE_A, T0 + timedelta(minutes=6), "abandoned", caller="021555")
    # 23:30 local on the 23rd is 15:30 UTC; 00:30 local on the 24th is still the 23rd in UTC.
    late = add_call(app_db, LINE_A, datetime(2026, 11, 23, 23, 30, tzinfo=CST))
    next_day = add_call(app_db, LINE_A, datetime(2026, 11, 24, 0, 30, tzinfo=CST))
    add_violation(app_db, missed)
    with app_db() as session:
        entry = LogEntry(unit_id=tree.a.id, at=T0, summary="tagged")
        session.add(entry)
        session.flush()
        session.add(LogEntryCall(log_entry_id=entry.id, call_id=abandoned))
    signed_in(login, english, "admin_a")

    def ids(query: str) -> set[int]:
        response = english.get(f"/calls?{query}")
        assert response.status_code == 200
        return set(call_ids(response.get_data(as_text=True)))

    everything = {answered, missed, abandoned, late, next_day}
    assert ids("") == everything
    assert ids("outcome=answered") == {answered}
    assert ids("outcome=missed") == everything - {answered}
    assert ids("outcome=abandoned") == {abandoned}
    assert ids(f"line={LINE_A}") == everything
    assert ids(f"line={LINE_B}") == set()
    assert ids(f"unit={tree.a.id}") == everything
    assert ids("caller=13900") == {answered}
    assert ids("caller=555") == {abandoned}
    assert ids("caller=%25") == set()  # a LIKE wildcard is a plain character
    assert ids("from=2026-11-23&to=2026-11-23") == everything - {next_day}
    assert ids("from=2026-11-24") == {next_day}
    assert ids("to=2026-11-23") == everything - {next_day}
    assert ids("violation=1") == {missed}
    assert ids("violation=0") == everything - {missed}
    assert ids("untagged=1") == everything - {abandoned}
    assert ids("outcome=missed&untagged=1&violation=0&from=2026-11-23&to=2026-11-23") == {late}
    bad = english.get("/calls?outcome=nonsense&from=yesterday")
    assert bad.status_code == 200
    assert "outcome: unknown" in bad.get_data(as_text=True)


# --------------------------------------------------------------------------- keyset pagination


def _walk(client: FlaskClient, first: str) -> list[list[int]]:
    pages, url = [], first
    while url:
        html = client.get(url).get_data(as_text=True)
        pages.append(call_ids(html))
        url = older_link(html)
        assert len(pages) < 50, "pagination does not end"
    return pages


def test_keyset_pagination_with_equal_timestamps(
    english: FlaskClient, login: Callable[..., Any], app_db: Any, lines: dict[str, int]
) -> None:
    ids = []
    for minute in range(4):  # 4 distinct times, 3 calls each at exactly the same time
        for _ in range(3):
            ids.append(add_call(app_db, LINE_A, T0 + timedelta(minutes=minute)))
    expected = sorted(ids, key=lambda i: (ids.index(i) // 3, i), reverse=True)
    signed_in(login, english, "officer_a")

    pages = _walk(english, "/calls?per_page=5")
    assert [len(page) for page in pages] == [5, 5, 2]
    flat = [call_id for page in pages for call_id in page]
    assert flat == expected  # newest first, id breaks ties; no duplicates, no skips
    # page 2 starts right after page 1's last row
    assert pages[1][0] == expected[5]

    # links keep the filters; the "newer" link of page 2 leads back to page 1
    html1 = english.get("/calls?per_page=5&outcome=no_answer").get_data(as_text=True)
    page2_url = older_link(html1)
    assert page2_url is not None
    assert parse_qs(urlsplit(page2_url).query)["outcome"] == ["no_answer"]
    html2 = english.get(page2_url).get_data(as_text=True)
    assert call_ids(html2) == expected[5:10]
    back_url = newer_link(html2)
    assert back_url is not None
    assert call_ids(english.get(back_url).get_data(as_text=True)) == expected[:5]
    assert newer_link(html1) is None

    assert english.get("/calls?after=not-a-token").status_code == 400


@pytest.mark.parametrize(
    "web_db_url", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_call_page_query_on_both_engines(
    app: Flask, app_db: Any, tree: Tree, lines: dict[str, int]
) -> None:
    ids = []
    for minute in range(5):
        for _ in range(2):
            ids.append(add_call(app_db, LINE_A, T0 + timedelta(minutes=minute)))
    add_call(app_db, LINE_B, T0)
    with app_db() as session:
        filters = CallFilters(unit_ids={tree.a.id})
        seen: list[int] = []
        after = None
        while True:
            page = call_page(session, filters, after=after, limit=3)
            seen += [row.call.id for row in page.rows]
            if page.next_cursor is None:
                break
            after = page.next_cursor
        assert seen == sorted(ids, key=lambda i: (ids.index(i) // 2, i), reverse=True)
        # keyset, not OFFSET (SQLAlchemy writes a harmless "OFFSET 0" for SQLite)
        engine = app.extensions["callcenter.engine"]
        sql = str(
            list_select(filters, after=Cursor(T0, 5), limit=3).compile(
                engine, compile_kwargs={"literal_binds": True}
            )
        )
        assert re.findall(r"OFFSET\s+(\S+)", sql.upper()) in ([], ["0"])
        assert "calls.started_at <=" in sql
        # the cursor token survives a round trip
        cursor = Cursor(datetime(2026, 11, 23, 1, 2, 3, 456789, tzinfo=UTC), 42)
        assert Cursor.decode(cursor.encode()) == cursor


# --------------------------------------------------------------------------- detail


def test_detail_timeline_violations_log_entries_and_escaping(
    english: FlaskClient, login: Callable[..., Any], app_db: Any, lines: dict[str, int], tree: Tree
) -> None:
    call_id = add_call(app_db, LINE_A, T0, caller_name="<script>alert('x')</script>", legs=True)
    add_violation(app_db, call_id)
    with app_db() as session:
        entry = LogEntry(unit_id=tree.a.id, at=T0, summary="Caller asked about <b>flooding</b>")
        session.add(entry)
        session.flush()
        session.add(LogEntryCall(log_entry_id=entry.id, call_id=call_id))
    signed_in(login, english, "officer_a")
    html = english.get(f"/calls/{call_id}").get_data(as_text=True)
    assert "<script>alert(" not in html
    assert "&lt;script&gt;alert(" in html
    assert "<b>flooding</b>" not in html
    assert "SIP/duty1-00000002" in html  # a leg in the timeline
    assert "19 (no answer)" in html  # the callee leg's hang-up cause
    assert "unanswered" in html
    assert "flooding" in html
    listing = english.get("/calls").get_data(as_text=True)
    assert "<script>alert(" not in listing
    assert "&lt;script&gt;alert(" in listing


# --------------------------------------------------------------------------- click-to-call back


@pytest.fixture(scope="module")
def embedded_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    with EmbeddedRedis(tmp_path_factory.mktemp("redis"), persist=False) as server:
        yield server


@pytest.fixture
def redis_url(embedded_redis: EmbeddedRedis) -> str:
    client = connect(embedded_redis.url)
    try:
        client.flushall()
    finally:
        client.close()
    return embedded_redis.url


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = connect(redis_url)
    try:
        yield client
    finally:
        client.close()


def _form_token(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match
    return match.group(1)


@pytest.mark.redis
def test_call_back_queues_an_originate_request(
    app: Flask,
    english: FlaskClient,
    login: Callable[..., Any],
    app_db: Any,
    lines: dict[str, int],
    redis_url: str,
    redis_client: redis.Redis,
) -> None:
    app.config["REDIS_URL"] = redis_url
    call_id = add_call(app_db, LINE_A, T0, caller="13811110009")
    signed_in(login, english, "officer_a")
    html = english.get(f"/calls/{call_id}").get_data(as_text=True)
    assert "Call back 13811110009" in html
    response = english.post(
        f"/calls/{call_id}/call-back",
        data={"csrf_token": _form_token(html), "endpoint": "PJSIP/2001", "number": "13811110009"},
    )
    assert response.status_code == 302
    request_id = parse_qs(urlsplit(response.headers["Location"]).query)["request"][0]

    request = clicktocall.next_request(redis_client, "default", timeout=1)
    assert request is not None
    assert (request.id, request.from_endpoint, request.number, request.requested_by) == (
        request_id,
        "PJSIP/2001",
        "13811110009",
        "officer_a",
    )
    assert request.call_id == call_id
    result_url = f"/calls/{call_id}/call-back/{request_id}.json"
    assert english.get(result_url).get_json()["result"] == "queued"
    clicktocall.record_result(redis_client, request_id, "answered", "desk phone picked up")
    assert english.get(result_url).get_json()["result"] == "answered"
    page = english.get(f"/calls/{call_id}?request={request_id}").get_data(as_text=True)
    assert "answered" in page
    with app_db() as session:
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "call_back")).one()
        assert entry.entity == "call"
        assert entry.entity_id == str(call_id)
        assert json.loads(entry.after or "{}")["request_id"] == request_id


@pytest.mark.redis
def test_call_back_refused_for_others_and_without_csrf(
    app: Flask,
    client: FlaskClient,
    login: Callable[..., Any],
    app_db: Any,
    lines: dict[str, int],
    redis_url: str,
    redis_client: redis.Redis,
) -> None:
    app.config["REDIS_URL"] = redis_url
    call_id = add_call(app_db, LINE_A, T0)
    signed_in(login, client, "officer_a")
    assert client.post(f"/calls/{call_id}/call-back", data={}).status_code == 400  # no CSRF
    html = client.get(f"/calls/{call_id}").get_data(as_text=True)
    token = _form_token(html)
    bad = client.post(
        f"/calls/{call_id}/call-back", data={"csrf_token": token, "endpoint": "SIP/elsewhere"}
    )
    assert bad.status_code == 400  # not one of the line's desk phones
    for username in ("inspector_city", "officer_b"):
        other = client.application.test_client()
        signed_in(login, other, username)
        page = other.get("/calls").get_data(as_text=True)
        response = other.post(
            f"/calls/{call_id}/call-back",
            data={"csrf_token": _form_token(page), "endpoint": "SIP/duty1"},
        )
        assert response.status_code == 403
    assert redis_client.llen(clicktocall.queue_key("default")) == 0


def test_no_call_back_button_for_an_undialable_caller(
    english: FlaskClient, login: Callable[..., Any], app_db: Any, lines: dict[str, int]
) -> None:
    call_id = add_call(app_db, LINE_A, T0, caller="anonymous")
    signed_in(login, english, "officer_a")
    html = english.get(f"/calls/{call_id}").get_data(as_text=True)
    assert 'class="inline call-back"' not in html
    assert 'class="tag-call"' in html  # it can still go into the duty log


def test_call_back_without_redis_is_refused_politely(
    app: Flask, english: FlaskClient, login: Callable[..., Any], app_db: Any, lines: dict[str, int]
) -> None:
    app.config["REDIS_URL"] = "redis://127.0.0.1:9/0"  # nothing listens there
    call_id = add_call(app_db, LINE_A, T0)
    signed_in(login, english, "officer_a")
    html = english.get(f"/calls/{call_id}").get_data(as_text=True)
    response = english.post(
        f"/calls/{call_id}/call-back",
        data={"csrf_token": _form_token(html), "endpoint": "SIP/duty1"},
        follow_redirects=True,
    )
    assert response.status_code == 200
    assert "could not be sent" in response.get_data(as_text=True)
    with app_db() as session:
        assert (
            session.scalar(
                select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "call_back")
            )
            == 0
        )


def test_query_functions_need_no_flask(session: Session) -> None:
    """The query functions run on a plain session too (no Flask): the scope is explicit."""
    unit = Unit(name="Solo")
    session.add(unit)
    session.flush()
    session.add(DutyLine(number="555", unit_id=unit.id))
    session.add(new_call("555", T0))
    session.flush()
    page = call_page(session, CallFilters(unit_ids={unit.id}))
    assert [row.line.number for row in page.rows if row.line] == ["555"]
    assert call_page(session, CallFilters(unit_ids=set())).rows == []
