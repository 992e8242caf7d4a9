"""An officer's shift in a real browser (Chromium through Playwright, over real HTTP):

signs in, sees a call ringing on the live board the moment the listener reports it (no
reload), opens today's missed call, enters it in the duty log as a new entry and records
the call-back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from callcenter.embedded_redis import EmbeddedRedis, connect
from callcenter.live import LiveState
from callcenter.store.duty import Callback, LogEntry, LogEntryCall
from callcenter.tracking.records import RingingCall
from tests.web.conftest import Tree
from tests.web.test_calls import LINE_A, add_call, add_callback, add_line, earlier_today

pytestmark = pytest.mark.redis


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
def config_overrides(redis_url: str) -> dict[str, Any]:
    return {"redis.url": redis_url}


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    # short keep-alives and stream lifetime, so the test server's threads end promptly
    return {**app_config, "BOARD_SSE_KEEPALIVE": 1.0, "BOARD_SSE_MAX_SECONDS": 20.0}


@pytest.fixture
def listener(redis_url: str) -> Iterator[LiveState]:
    """The listener's side of the live state (what the AMI listener writes)."""
    client = connect(redis_url)
    try:
        yield LiveState(client, "pbx1")
    finally:
        client.close()


def test_officer_sees_ringing_call_tags_missed_call_and_records_callback(
    live_server: str,
    page: Any,
    tree: Tree,
    app_db: Callable[[], Any],
    listener: LiveState,
) -> None:
    add_line(app_db, tree.a, LINE_A, desk_phones=("SIP/duty1",), name="甲县值班室")
    missed = add_call(app_db, LINE_A, earlier_today(10), caller="13811112222")
    callback_id = add_callback(app_db, missed)
    listener.set_listener_status(True)

    # 1. sign in: duty staff land on the live board
    page.goto(f"{live_server}/login")
    page.fill("input[name=username]", "officer_a")
    page.fill("input[name=password]", tree.password("officer_a"))
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url(f"{live_server}/")
    row = page.locator(f"tr[data-line='{LINE_A}']")
    assert row.get_attribute("data-state") == "idle"
    page.locator(f"#board-callbacks tr[data-callback='{callback_id}']").wait_for()
    page.wait_for_selector("#board[data-mode='live']")  # the event stream is open
    page.evaluate("window.__sameDocument = true")

    # 2. a call starts ringing: the board shows it without a reload, then as an alert
    listener.set_ringing(
        [
            RingingCall(
                linkedid="1795432842.900",
                caller="13900001111",
                line=LINE_A,
                ringing_since=datetime.now(UTC) - timedelta(seconds=12),
                endpoints=("SIP/duty1",),
            )
        ],
        datetime.now(UTC),
    )
    page.wait_for_selector(f"tr[data-line='{LINE_A}'][data-state='ringing']", timeout=5000)
    assert "13900001111" in row.inner_text()
    assert page.evaluate("window.__sameDocument") is True
    page.wait_for_selector(f"tr[data-line='{LINE_A}'] .ringing-call.alert", timeout=8000)
    assert page.locator("#alert-banner").is_visible()

    # the call is answered: the board goes back to quiet
    listener.set_ringing([], datetime.now(UTC))
    listener.set_line_state(LINE_A, "in_call")
    page.wait_for_selector(f"tr[data-line='{LINE_A}'][data-state='in_call']", timeout=5000)
    assert not page.locator("#alert-banner").is_visible()

    # 3. today's missed call: open it and enter it in the duty log as a new entry
    page.locator(f"#board-callbacks tr[data-callback='{callback_id}'] a").click()
    page.wait_for_url(f"{live_server}/calls/{missed}")
    page.select_option("form.tag-call select[name=entry_id]", "new")
    page.fill("form.tag-call input[name=summary]", "群众反映路灯损坏")
    page.fill("form.tag-call textarea[name=action_taken]", "已转城管部门处理")
    page.click("form.tag-call button[type=submit]")
    page.wait_for_url(f"{live_server}/calls/{missed}")
    page.locator("#duty-log .log-entries").get_by_text("群众反映路灯损坏").wait_for()

    # 4. record the call-back: the caller was reached
    page.check("form.callback-result input[value=reached]")
    page.fill("form.callback-result input[name=reason]", "已回电说明处理进展")
    page.click("form.callback-result button[type=submit]")
    page.wait_for_url(f"{live_server}/calls/{missed}")
    page.wait_for_selector("#callback .callback-state.callback-reached")
    assert page.locator("form.callback-result").count() == 0

    with app_db() as session:
        entry = session.scalars(select(LogEntry)).one()
        assert (entry.summary, entry.action_taken, entry.unit_id) == (
            "群众反映路灯损坏",
            "已转城管部门处理",
            tree.a.id,
        )
        assert session.scalars(select(LogEntryCall.call_id)).all() == [missed]
        callback = session.get(Callback, callback_id)
        assert callback is not None
        assert (callback.state, callback.reason) == ("reached", "已回电说明处理进展")

    # 5. back on the board the call-back is no longer awaited
    page.goto(f"{live_server}/")
    assert page.locator(f"#board-callbacks tr[data-callback='{callback_id}']").count() == 0
