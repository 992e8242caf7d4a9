"""The spot-check page: who sees which checks, who may check a line now, CSRF.

Units: city → county A, county B (``tree``). Line 12345 belongs to A, line 22345 to B. The
"check now" POST goes through a real Redis: the queued job runs in a real RQ worker and
leaves the Originate for the listener.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from rq import Queue
from sqlalchemy import select

from callcenter import clicktocall
from callcenter.embedded_redis import EmbeddedRedis, connect
from callcenter.store.accounts import AuditEntry
from callcenter.store.duty import SpotCheck, Violation
from callcenter.store.org import DeskPhone, DutyLine
from callcenter.workers.spot_checks import SPOT_CHECK_QUEUE, run_job_id
from callcenter.workers.storage import dispose_engines
from callcenter.workers.worker import DutyWorker

from .conftest import Tree, extract_csrf_token, password_for

AT = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def embedded_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    with EmbeddedRedis(tmp_path_factory.mktemp("redis"), persist=False) as server:
        yield server


@pytest.fixture
def redis_client(embedded_redis: EmbeddedRedis) -> Iterator[redis.Redis]:
    client = connect(embedded_redis.url)
    client.flushall()
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def spot_app(app: Flask, embedded_redis: EmbeddedRedis) -> Iterator[Flask]:
    """The console with the spot-check blueprint (registered here until ``create_app``
    lists it) and a Redis."""
    if "spotchecks" not in app.blueprints:
        from callcenter.web import spotchecks

        app.register_blueprint(spotchecks.bp)
    app.config["REDIS_URL"] = embedded_redis.url
    yield app
    dispose_engines()


@pytest.fixture
def lines(tree: Tree, app_db: Callable[..., Any]) -> dict[str, int]:
    with app_db() as session:
        a = DutyLine(number="12345", name="甲县值班室", unit_id=tree.a.id)
        b = DutyLine(number="22345", name="乙县值班室", unit_id=tree.b.id)
        a.desk_phones = [DeskPhone(endpoint="SIP/duty1")]
        b.desk_phones = [DeskPhone(endpoint="SIP/duty2")]
        session.add_all([a, b])
        session.flush()
        session.add_all(
            [
                SpotCheck(
                    line_id=a.id,
                    scheduled_at=AT,
                    originated_at=AT,
                    action_id="a" * 32,
                    result="unanswered",
                    detail="rang 30.0 s, nobody answered",
                ),
                SpotCheck(
                    line_id=b.id,
                    scheduled_at=AT + timedelta(hours=1),
                    result="answered",
                    detail="answered by SIP/duty2 after 4.0 s",
                ),
            ]
        )
        session.flush()
        check_a = session.scalar(select(SpotCheck.id).where(SpotCheck.line_id == a.id))
        session.add(
            Violation(
                dedupe_key=f"spot_check_failed:spot_check:{check_a}",
                kind="spot_check_failed",
                unit_id=tree.a.id,
                line_id=a.id,
                line_number="12345",
                endpoint="SIP/duty1",
                at=AT,
                detail="spot check of 12345: rang 30.0 s, nobody answered",
            )
        )
        return {"a": a.id, "b": b.id}


def sign_in(client: FlaskClient, login: Callable[..., Any], username: str) -> None:
    login(client, username, password_for(username))


def shown_checks(client: FlaskClient) -> list[str]:
    page = client.get("/spot-checks")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    return [number for number in ("12345", "22345") if f"<td>{number}</td>" in text]


def test_an_inspector_sees_the_checks_of_the_units_below(
    spot_app: Flask, client: FlaskClient, login: Callable[..., Any], lines: dict[str, int]
) -> None:
    sign_in(client, login, "inspector_city")
    assert shown_checks(client) == ["12345", "22345"]
    text = client.get("/spot-checks").get_data(as_text=True)
    assert "无人接听" in text and "按时接听" in text  # not answered; answered in time (zh UI)
    assert 'class="violation" href="/violations/' in text  # the failed check's violation
    assert 'id="spot-check-now"' in text  # and may check a line now


def test_an_officer_sees_only_the_own_unit_and_cannot_check(
    spot_app: Flask, client: FlaskClient, login: Callable[..., Any], lines: dict[str, int]
) -> None:
    sign_in(client, login, "officer_b")
    assert shown_checks(client) == ["22345"]
    text = client.get("/spot-checks").get_data(as_text=True)
    assert 'id="spot-check-now"' not in text
    token = extract_csrf_token(text)
    for line in ("a", "b"):  # another unit's line, and the own unit's
        response = client.post("/spot-checks", data={"line_id": lines[line], "csrf_token": token})
        assert response.status_code == 403
    assert count_checks(spot_app) == 2


def count_checks(app: Flask) -> int:
    from callcenter.store.db import make_engine, make_session_factory

    engine = make_engine(app.config["DATABASE_URL"])
    try:
        with make_session_factory(engine)() as session:
            return len(session.scalars(select(SpotCheck.id)).all())
    finally:
        engine.dispose()


def test_a_post_without_csrf_is_refused(
    spot_app: Flask, client: FlaskClient, login: Callable[..., Any], lines: dict[str, int]
) -> None:
    sign_in(client, login, "inspector_city")
    response = client.post("/spot-checks", data={"line_id": lines["a"]})
    assert response.status_code == 400
    assert count_checks(spot_app) == 2


def test_an_inspector_checks_a_line_now(
    spot_app: Flask,
    client: FlaskClient,
    login: Callable[..., Any],
    lines: dict[str, int],
    redis_client: redis.Redis,
    app_db: Callable[..., Any],
) -> None:
    sign_in(client, login, "inspector_city")
    token = extract_csrf_token(client.get("/spot-checks").get_data(as_text=True))
    response = client.post("/spot-checks", data={"line_id": lines["a"], "csrf_token": token})
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/spot-checks?line={lines['a']}")
    with app_db() as session:
        check = session.scalars(
            select(SpotCheck).where(SpotCheck.line_id == lines["a"]).order_by(SpotCheck.id.desc())
        ).first()
        assert check is not None and check.result is None and check.action_id is None
        check_id = check.id
        entry = session.scalars(select(AuditEntry).where(AuditEntry.entity == "spot_check")).one()
        assert (entry.action, entry.entity_id) == ("spot_check", str(check_id))
        assert '"number": "12345"' in (entry.after or "")
    # the job is queued; a real worker runs it and leaves the Originate for the listener
    queue = Queue(SPOT_CHECK_QUEUE, connection=redis_client)
    assert queue.job_ids == [run_job_id(check_id)]
    DutyWorker([queue], connection=redis_client).work(burst=True, with_scheduler=False)
    request = clicktocall.next_request(redis_client, "pbx", 1)
    assert request is not None and request.is_spot_check
    assert request.ami_action()["Channel"] == "Local/12345@from-trunk"
    with app_db() as session:
        dialed = session.get(SpotCheck, check_id)
        assert dialed is not None and dialed.action_id == request.id
