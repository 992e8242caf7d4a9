"""Line policy in the console: a duty line's desk phones, thresholds and schedule are
seeded from the config once, then edited here by the unit's admin (audited, before and
after); bad values are refused with nothing saved; a later start (seeding again from the
config) keeps the edit, and the workers' policy reads it."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from callcenter.config import load_config
from callcenter.store.accounts import AuditEntry
from callcenter.store.org import DutyLine
from callcenter.store.policy import line_for_number
from callcenter.store.seed import seed_from_config

from .conftest import Tree, extract_csrf_token

BOTH_DATABASES = pytest.mark.parametrize(
    "web_db_url", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)

CONFIG = """
[[lines]]
number = "12345"
unit = "{unit}"
name = "县政府值班室"
desk_phones = ["PJSIP/2001", "PJSIP/2002"]
answer_within_seconds = 15
schedule = "24h"
"""

GOOD = {
    "name": "县政府值班室（主线）",
    "desk_phones": "PJSIP/2001\r\n  PJSIP/8001 \r\n\r\nPJSIP/8001\r\n",  # blanks, a repeat
    "answer_within_seconds": "20",
    "offline_grace_minutes": "10",
    "unmanned_count": "3",
    "unmanned_window_minutes": "45",
    "schedule": "Mon-Fri 18:00-08:30, Sat-Sun 24h",
    "active": "y",
}


def _config(tmp_path: Path, unit_name: str, database_url: str) -> Any:
    path = tmp_path / "callcenter.toml"
    path.write_text(CONFIG.format(unit=unit_name), encoding="utf-8")
    return load_config(path, env={}, overrides={"database.url": database_url})


@pytest.fixture
def line_id(
    app: Flask, tree: Tree, app_db: Callable[..., Any], tmp_path: Path, web_db_url: str
) -> int:
    """Line 12345 of county A, seeded from a config file as ``callcenter worker`` does."""
    with app_db() as session:
        report = seed_from_config(session, _config(tmp_path, tree.a.name, web_db_url))
        assert report.lines_created == ["12345"]
        return int(session.scalars(select(DutyLine.id)).one())


def _page(client: FlaskClient, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    return response.get_data(as_text=True)


def _post(client: FlaskClient, line_id: int, **fields: Any) -> Any:
    token = extract_csrf_token(_page(client, f"/lines/{line_id}"))
    return client.post(f"/lines/{line_id}", data={"csrf_token": token, **GOOD, **fields})


def _line(app_db: Callable[..., Any], line_id: int) -> dict[str, Any]:
    with app_db() as session:
        line = session.get(DutyLine, line_id)
        assert line is not None
        return {
            "name": line.name,
            "desk_phones": sorted(p.endpoint for p in line.desk_phones),
            "answer_within_seconds": line.answer_within_seconds,
            "offline_grace_seconds": line.offline_grace_seconds,
            "unmanned_count": line.unmanned_count,
            "unmanned_window_seconds": line.unmanned_window_seconds,
            "schedule": line.schedule,
            "active": line.active,
        }


def _entries(app_db: Callable[..., Any]) -> list[AuditEntry]:
    with app_db() as session:
        found = list(session.scalars(select(AuditEntry).where(AuditEntry.entity == "duty_line")))
        session.expunge_all()
        return found


SEEDED = {
    "name": "县政府值班室",
    "desk_phones": ["PJSIP/2001", "PJSIP/2002"],
    "answer_within_seconds": 15.0,
    "offline_grace_seconds": 300.0,
    "unmanned_count": 2,
    "unmanned_window_seconds": 1800.0,
    "schedule": "24h",
    "active": True,
}


@BOTH_DATABASES
def test_unit_admin_edits_the_policy_and_a_later_start_keeps_it(
    client: FlaskClient,
    tree: Tree,
    line_id: int,
    login: Callable[..., Any],
    app_db: Callable[..., Any],
    tmp_path: Path,
    web_db_url: str,
) -> None:
    assert _line(app_db, line_id) == SEEDED
    login(client, "admin_a")
    listing = _page(client, "/lines/")
    assert f'href="/lines/{line_id}">12345</a>' in listing and "PJSIP/2002" in listing
    page = _page(client, f"/lines/{line_id}")
    assert re.search(r'<textarea[^>]*name="desk_phones"[^>]*>\s*PJSIP/2001\nPJSIP/2002', page)

    response = _post(client, line_id)
    assert response.status_code == 302, response.get_data(as_text=True)
    edited = {
        "name": "县政府值班室（主线）",
        "desk_phones": ["PJSIP/2001", "PJSIP/8001"],
        "answer_within_seconds": 20.0,
        "offline_grace_seconds": 600.0,
        "unmanned_count": 3,
        "unmanned_window_seconds": 2700.0,
        "schedule": "Mon-Fri 18:00-08:30, Sat-Sun 24h",
        "active": True,
    }
    assert _line(app_db, line_id) == edited

    (entry,) = _entries(app_db)
    assert entry.action == "update" and entry.entity_id == str(line_id)
    assert entry.user_id == tree.admin_a.id
    before, after = json.loads(entry.before or "{}"), json.loads(entry.after or "{}")
    assert before["desk_phones"] == ["PJSIP/2001", "PJSIP/2002"]
    assert after["desk_phones"] == ["PJSIP/2001", "PJSIP/8001"]
    assert (before["answer_within_seconds"], after["answer_within_seconds"]) == (15.0, 20.0)
    assert (before["schedule"], after["schedule"]) == ("24h", "Mon-Fri 18:00-08:30, Sat-Sun 24h")

    # the same form again changes nothing: no second audit entry
    assert _post(client, line_id).status_code == 302
    assert len(_entries(app_db)) == 1

    # a later start seeds from the same config again: the database wins
    with app_db() as session:
        report = seed_from_config(session, _config(tmp_path, tree.a.name, web_db_url))
        assert report.lines_kept == ["12345"] and report.lines_created == []
    assert _line(app_db, line_id) == edited
    # ... and the workers judge the line by the edited policy
    with app_db() as session:
        stored = line_for_number(session, "12345")
        assert stored is not None
        assert stored.desk_phones == frozenset({"PJSIP/2001", "PJSIP/8001"})
        assert stored.policy.answer_within_seconds == 20.0
        assert stored.schedule == "Mon-Fri 18:00-08:30, Sat-Sun 24h"

    # switched off: no longer judged
    assert _post(client, line_id, active="").status_code == 302
    with app_db() as session:
        assert line_for_number(session, "12345") is None


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("answer_within_seconds", "0", "须在 1 至 600 秒之间"),
        ("answer_within_seconds", "-5", "须在 1 至 600 秒之间"),
        ("answer_within_seconds", "nan", "请填写数字"),
        ("answer_within_seconds", "", "请填写数字"),
        ("answer_within_seconds", "fast", ""),
        ("offline_grace_minutes", "-1", "须在 0 至 1440 分钟之间"),
        ("unmanned_count", "0", "须在 1 至 100 之间"),
        ("unmanned_count", "2.5", ""),
        ("unmanned_window_minutes", "0", "须在 1 至 1440 分钟之间"),
        ("schedule", "25:00-26:00", "监测时段格式有误"),
        ("schedule", "", "请填写监测时段"),
        ("desk_phones", "PJSIP/2001\n8001", "不是座机终端：8001"),
    ],
)
def test_bad_values_are_refused_and_nothing_is_saved(
    client: FlaskClient,
    line_id: int,
    login: Callable[..., Any],
    app_db: Callable[..., Any],
    field: str,
    value: str,
    message: str,
) -> None:
    login(client, "admin_a")
    response = _post(client, line_id, **{field: value})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    error = re.search(
        rf'<div class="field has-error">\s*<label for="{field}">.*?'
        r'<small class="error">(.*?)</small>',
        page,
        re.S,
    )
    assert error is not None, f"no error shown on {field}"
    assert message in error.group(1)
    assert _line(app_db, line_id) == SEEDED
    assert _entries(app_db) == []


def test_who_may_read_and_edit_a_line(
    app: Flask,
    client: FlaskClient,
    tree: Tree,
    line_id: int,
    login: Callable[..., Any],
    app_db: Callable[..., Any],
) -> None:
    # the unit's duty officer reads the policy, without a form, and cannot post
    login(client, "officer_a")
    page = _page(client, f"/lines/{line_id}")
    assert 'id="line-policy"' in page and 'name="answer_within_seconds"' not in page
    assert "PJSIP/2002" in page
    token = extract_csrf_token(page)
    data = {"csrf_token": token, **GOOD}
    assert client.post(f"/lines/{line_id}", data=data).status_code == 403

    # another unit's staff: not even the line, nor the list of unit A
    other = app.test_client()
    login(other, "officer_b")
    assert other.get(f"/lines/{line_id}").status_code == 403
    assert other.get(f"/lines/?unit={tree.a.id}").status_code == 403
    assert "12345" not in _page(other, "/lines/")
    assert other.get("/lines/99999").status_code == 404

    # the city's inspector reads county A's line, cannot change it
    inspector = app.test_client()
    login(inspector, "inspector_city")
    assert 'id="line-policy"' in _page(inspector, f"/lines/{line_id}")
    token = extract_csrf_token(_page(inspector, f"/lines/{line_id}"))
    refused = inspector.post(f"/lines/{line_id}", data={**data, "csrf_token": token})
    assert refused.status_code == 403

    # an admin edits any unit's line
    admin = app.test_client()
    login(admin, "admin")
    token = extract_csrf_token(_page(admin, f"/lines/{line_id}"))
    data = {**GOOD, "csrf_token": token, "answer_within_seconds": "12"}
    assert admin.post(f"/lines/{line_id}", data=data).status_code == 302
    assert _line(app_db, line_id)["answer_within_seconds"] == 12.0
    assert [e.user_id for e in _entries(app_db)] == [tree.admin.id]


def test_post_without_csrf_token_is_refused(
    client: FlaskClient, line_id: int, login: Callable[..., Any], app_db: Callable[..., Any]
) -> None:
    login(client, "admin_a")
    assert client.post(f"/lines/{line_id}", data=GOOD).status_code == 400
    data = {**GOOD, "csrf_token": "forged"}
    assert client.post(f"/lines/{line_id}", data=data).status_code == 400
    assert _line(app_db, line_id) == SEEDED
