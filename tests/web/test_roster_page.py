"""The roster page: a unit's week with who is on duty now; CSV/XLSX upload checked row by
row and imported all or nothing; single shifts added, edited and deleted with the same
checks; only the unit's own admin (and admins) change it; every change audited.

The last test is a browser journey: a unit admin uploads an XLSX roster and sees it
(``CALLCENTER_SCREENSHOTS=<folder>`` keeps a screenshot of the page).
"""

from __future__ import annotations

import html
import io
import json
import os
import re
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openpyxl import Workbook
from sqlalchemy import func, select, update

from callcenter.store.accounts import AuditEntry
from callcenter.store.duty import Shift
from callcenter.store.org import Officer, Unit

from .conftest import Tree, extract_csrf_token

BOTH_DATABASES = pytest.mark.parametrize(
    "web_db_url", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)

OFFICERS = ("张伟", "李娜", "王磊", "刘洋", "孙建国")
HEADER = "日期,班次,主班,副班,带班领导,电话"
GOOD_ROWS = [
    "2026-11-23,白班,张伟,李娜,孙建国,13800000101",
    "2026-11-23,夜班,王磊,刘洋,孙建国,13800000103",
    "2026-11-24,白班,李娜,张伟,孙建国,13800000105",
    "2026-11-24,夜班,刘洋,王磊,孙建国,13800000107",
]
#: Tuesday 2026-11-24 10:00 in Shanghai: the 白班 of that day is on duty.
NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
WEEK = "2026-11-23"


def csv_bytes(*rows: str) -> bytes:
    return ("\ufeff" + "\n".join([HEADER, *rows]) + "\n").encode("utf-8")


@pytest.fixture
def unit_a(app: Flask, tree: Tree, app_db: Callable[..., Any]) -> Unit:
    """County A with its officers; the console's clock at :data:`NOW`."""
    app.config["CLOCK"] = lambda: NOW
    with app_db() as session:
        session.add_all(Officer(unit_id=tree.a.id, name=name) for name in OFFICERS)
    return tree.a


def _page(client: FlaskClient, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    return response.get_data(as_text=True)


def _upload(
    client: FlaskClient, unit_id: int, data: bytes, filename: str = "roster.csv", **fields: Any
) -> Any:
    token = extract_csrf_token(_page(client, f"/roster/?unit={unit_id}"))
    return client.post(
        f"/roster/{unit_id}/upload",
        data={"csrf_token": token, "file": (io.BytesIO(data), filename), **fields},
        content_type="multipart/form-data",
    )


def _shifts(app_db: Callable[..., Any], unit_id: int) -> list[Shift]:
    with app_db() as session:
        found = list(
            session.scalars(select(Shift).where(Shift.unit_id == unit_id).order_by(Shift.starts_at))
        )
        session.expunge_all()
        return found


def _audit(app_db: Callable[..., Any], entity: str) -> list[AuditEntry]:
    with app_db() as session:
        found = list(
            session.scalars(
                select(AuditEntry).where(AuditEntry.entity == entity).order_by(AuditEntry.id)
            )
        )
        session.expunge_all()
        return found


def _error_rows(page: str) -> list[tuple[str, str, str, str]]:
    """The upload's problem table: (row, column, problem, details), unescaped."""
    section = page.split('id="upload-errors"', 1)[1].split("</table>", 1)[0]
    cells = re.findall(
        r"<tr><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td></tr>", section
    )
    return [tuple(html.unescape(c) for c in row) for row in cells]  # type: ignore[misc]


# --------------------------------------------------------------------------- upload


@BOTH_DATABASES
def test_unit_admin_uploads_a_roster_and_sees_who_is_on_duty(
    client: FlaskClient, unit_a: Unit, tree: Tree, login: Callable[..., Any], app_db: Any
) -> None:
    login(client, "admin_a")
    response = _upload(client, unit_a.id, csv_bytes(*GOOD_ROWS))
    assert response.status_code == 302, response.get_data(as_text=True)
    assert response.headers["Location"] == f"/roster/?unit={unit_a.id}&week={WEEK}"

    stored = _shifts(app_db, unit_a.id)
    assert [(s.day.isoformat(), s.name, s.main_officer, s.backup_officer) for s in stored] == [
        ("2026-11-23", "白班", "张伟", "李娜"),
        ("2026-11-23", "夜班", "王磊", "刘洋"),
        ("2026-11-24", "白班", "李娜", "张伟"),
        ("2026-11-24", "夜班", "刘洋", "王磊"),
    ]
    # times in the unit's zone (Asia/Shanghai): 白班 08:30–17:30 is 00:30–09:30 UTC
    assert (stored[0].starts_at, stored[0].ends_at) == (
        datetime(2026, 11, 23, 0, 30, tzinfo=UTC),
        datetime(2026, 11, 23, 9, 30, tzinfo=UTC),
    )

    page = _page(client, response.headers["Location"])
    assert "roster.csv：已导入 4 个班次" in page  # the flash
    for s in stored:
        assert f'data-shift-id="{s.id}"' in page
    on_duty = stored[2]  # Tuesday's 白班 at 10:00
    assert f'<tr data-shift-id="{on_duty.id}" class="on-duty" aria-current="true">' in page
    assert page.count('class="on-duty"') == 1
    now_box = page.split('id="on-duty-now"', 1)[1].split("</p>", 1)[0]
    assert "李娜" in now_box and "张伟" in now_box and "08:30–17:30" in now_box
    assert f'id="week-range">{WEEK} – 2026-11-29<' in page

    # week navigation: the next week is empty, the previous link goes back
    page = _page(client, f"/roster/?unit={unit_a.id}&week=2026-12-01")
    assert "2026-11-30 – 2026-12-06" in page and "data-shift-id" not in page
    assert f'href="/roster/?unit={unit_a.id}&amp;week=2026-11-23"' in page

    (entry,) = _audit(app_db, "roster")
    assert entry.action == "import" and entry.entity_id == str(unit_a.id)
    assert entry.user_id == tree.admin_a.id
    after = json.loads(entry.after or "{}")
    assert after["added"] == 4 and after["file"] == "roster.csv"
    assert [s["main_officer"] for s in after["shifts"]] == ["张伟", "王磊", "李娜", "刘洋"]


@BOTH_DATABASES
def test_a_file_with_bad_rows_shows_each_error_and_stores_nothing(
    client: FlaskClient, unit_a: Unit, login: Callable[..., Any], app_db: Any
) -> None:
    login(client, "admin_a")
    bad = csv_bytes(
        "2026-11-23,白班,张伟,李娜,孙建国,13800000101",  # row 2: fine
        "2026-13-45,夜班,王磊,刘洋,孙建国,13800000103",  # row 3: no such date
        "2026-11-24,白班,无名氏,张伟,孙建国,13800000105",  # row 4: not an officer of A
        "2026-11-24,08:00-12:00,刘洋,,孙建国,13800000107",  # row 5: overlaps row 4
    )
    response = _upload(client, unit_a.id, bad, "bad.csv")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "bad.csv：3 处问题" in page
    rows = _error_rows(page)
    assert [(row, column) for row, column, _what, _detail in rows] == [
        ("3", "日期"),
        ("4", "主班"),
        ("5", "班次"),
    ]
    assert "2026-13-45" in rows[0][3]
    assert "无名氏" in rows[1][3] and "not an officer" in rows[1][3]
    assert "overlaps row 4" in rows[2][3]
    assert rows[1][2] == "不是本单位的值班人员"  # the problem, in the reader's language
    assert _shifts(app_db, unit_a.id) == []
    assert _audit(app_db, "roster") == []

    # a missing column is a file problem: one error, nothing stored
    response = _upload(client, unit_a.id, "日期,班次,主班\n2026-11-23,白班,张伟\n".encode())
    assert response.status_code == 400
    ((row, _column, _what, detail),) = _error_rows(response.get_data(as_text=True))
    assert row == "文件" and "副班" in detail
    assert _shifts(app_db, unit_a.id) == []


def test_an_oversized_file_is_refused_unread(
    client: FlaskClient, unit_a: Unit, login: Callable[..., Any], app_db: Any
) -> None:
    # the default is 5 MB; a smaller limit keeps the test's upload in memory
    client.application.config["ROSTER_MAX_UPLOAD_BYTES"] = 256 * 1024
    login(client, "admin_a")
    padding = "," * (300 * 1024)
    response = _upload(client, unit_a.id, csv_bytes(GOOD_ROWS[0] + padding))
    assert response.status_code == 400
    assert "文件超过 0.25 MB" in response.get_data(as_text=True)
    assert _shifts(app_db, unit_a.id) == []


def test_upload_can_register_new_officers_and_replace_days(
    client: FlaskClient, unit_a: Unit, login: Callable[..., Any], app_db: Any
) -> None:
    login(client, "admin_a")
    assert _upload(client, unit_a.id, csv_bytes(*GOOD_ROWS)).status_code == 302
    newcomer = "2026-11-24,白班,赵敏,李娜,孙建国,13800000109"
    response = _upload(client, unit_a.id, csv_bytes(newcomer), replace="y")
    assert response.status_code == 400  # 赵敏 is not an officer of the unit yet
    assert "赵敏" in _error_rows(response.get_data(as_text=True))[0][3]
    response = _upload(client, unit_a.id, csv_bytes(newcomer), replace="y", add_officers="y")
    assert response.status_code == 302
    assert [(s.day.isoformat(), s.name, s.main_officer) for s in _shifts(app_db, unit_a.id)] == [
        ("2026-11-23", "白班", "张伟"),
        ("2026-11-23", "夜班", "王磊"),
        ("2026-11-24", "白班", "赵敏"),  # replaced in place; the 24th's 夜班 removed
    ]
    entry = _audit(app_db, "roster")[-1]
    before, after = json.loads(entry.before or "{}"), json.loads(entry.after or "{}")
    assert [s["main_officer"] for s in before["shifts"]] == ["李娜", "刘洋"]
    assert after["officers_added"] == ["赵敏"] and after["removed"] == 1


# --------------------------------------------------------------------------- single shifts


def _shift_form(client: FlaskClient, path: str, **fields: Any) -> Any:
    token = extract_csrf_token(_page(client, path))
    data = {
        "csrf_token": token,
        "day": "2026-11-25",
        "name": "白班",
        "starts_at": "",
        "ends_at": "",
        "main_officer": "张伟",
        "backup_officer": "李娜",
        "leader": "孙建国",
        "phone": "13800000101",
        **fields,
    }
    return client.post(path, data=data)


@BOTH_DATABASES
def test_add_edit_and_delete_a_shift_are_checked_and_audited(
    client: FlaskClient, unit_a: Unit, login: Callable[..., Any], app_db: Any
) -> None:
    login(client, "admin_a")
    new = f"/roster/{unit_a.id}/shifts/new"
    response = _shift_form(client, new)
    assert response.status_code == 302, response.get_data(as_text=True)
    (shift,) = _shifts(app_db, unit_a.id)
    assert (shift.day, shift.name, shift.main_officer) == (date(2026, 11, 25), "白班", "张伟")
    assert shift.starts_at == datetime(2026, 11, 25, 0, 30, tzinfo=UTC)  # 08:30 Shanghai

    # a 夜班 from 17:30 the same day touches the 白班's end: no overlap
    assert _shift_form(client, new, name="夜班", main_officer="王磊").status_code == 302
    # 12:00–20:00 overlaps both: refused, nothing stored
    response = _shift_form(
        client, new, name="加班", starts_at="2026-11-25T12:00", ends_at="2026-11-25T20:00"
    )
    assert response.status_code == 400
    problems = response.get_data(as_text=True).split('id="shift-problems"', 1)[1]
    assert "与已存班次重叠" in problems.split("</div>", 1)[0]
    # an end before the start, an unknown 班次, an unknown officer: each on its field
    response = _shift_form(
        client, new, name="加班", starts_at="2026-11-26T12:00", ends_at="2026-11-26T11:00"
    )
    assert response.status_code == 400
    assert "the shift must end after it starts" in response.get_data(as_text=True)
    response = _shift_form(client, new, day="2026-11-26", name="午班")
    assert response.status_code == 400 and "unknown 班次" in html.unescape(
        response.get_data(as_text=True)
    )
    response = _shift_form(client, new, day="2026-11-26", main_officer="无名氏")
    assert response.status_code == 400 and "无名氏 is not an officer" in response.get_data(
        as_text=True
    )
    assert len(_shifts(app_db, unit_a.id)) == 2

    # edit: the form leaves a standard shift's times empty; moving it to the 26th moves them
    edit = f"/roster/shifts/{shift.id}"
    page = _page(client, edit)
    assert 'name="starts_at" type="datetime-local" value=""' in page
    response = _shift_form(client, edit, day="2026-11-26", backup_officer="刘洋")
    assert response.status_code == 302
    moved = next(s for s in _shifts(app_db, unit_a.id) if s.id == shift.id)
    assert moved.starts_at == datetime(2026, 11, 26, 0, 30, tzinfo=UTC)
    assert moved.backup_officer == "刘洋"
    # editing into the 夜班 of the 25th is an overlap
    response = _shift_form(
        client, edit, day="2026-11-25", starts_at="2026-11-25T18:00", ends_at="2026-11-25T20:00"
    )
    assert response.status_code == 400

    token = extract_csrf_token(_page(client, edit))
    assert client.post(f"{edit}/delete", data={"csrf_token": token}).status_code == 302
    assert [s.name for s in _shifts(app_db, unit_a.id)] == ["夜班"]

    entries = [e for e in _audit(app_db, "shift") if e.entity_id == str(shift.id)]
    assert [e.action for e in entries] == ["create", "update", "delete"]
    update = entries[1]
    assert json.loads(update.before or "{}")["backup_officer"] == "李娜"
    assert json.loads(update.after or "{}")["backup_officer"] == "刘洋"
    assert entries[2].after is None and json.loads(entries[2].before or "{}")["day"] == "2026-11-26"


@BOTH_DATABASES
def test_a_shift_form_can_register_new_officers_but_not_bring_back_a_former_one(
    client: FlaskClient, unit_a: Unit, login: Callable[..., Any], app_db: Any
) -> None:
    login(client, "admin_a")
    new = f"/roster/{unit_a.id}/shifts/new"
    assert 'name="add_officers"' in _page(client, new)
    response = _shift_form(client, new, main_officer="赵敏", backup_officer="李娜、钱八")
    assert response.status_code == 400  # not officers of the unit yet, and not registered
    assert _shifts(app_db, unit_a.id) == []

    response = _shift_form(
        client, new, main_officer="赵敏", backup_officer="李娜、钱八", add_officers="y"
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    (shift,) = _shifts(app_db, unit_a.id)
    assert (shift.main_officer, shift.backup_officer) == ("赵敏", "李娜、钱八")
    with app_db() as session:
        names = set(session.scalars(select(Officer.name).where(Officer.unit_id == unit_a.id)))
    assert {"赵敏", "钱八"} <= names
    (created,) = _audit(app_db, "shift")
    assert json.loads(created.after or "{}")["officers_added"] == ["赵敏", "钱八"]
    assert "赵敏、钱八" in client.get(response.headers["Location"]).get_data(as_text=True)

    # an officer who left stays an error: the box registers strangers only
    with app_db() as session:
        session.execute(
            update(Officer)
            .where(Officer.unit_id == unit_a.id, Officer.name == "王磊")
            .values(active=False)
        )
    edit = f"/roster/shifts/{shift.id}"
    response = _shift_form(client, edit, main_officer="王磊", add_officers="y")
    assert response.status_code == 400
    assert _shifts(app_db, unit_a.id)[0].main_officer == "赵敏"
    # an edit registers a newcomer too, and the audit names them
    response = _shift_form(client, edit, main_officer="赵敏", leader="周九", add_officers="y")
    assert response.status_code == 302
    assert _shifts(app_db, unit_a.id)[0].leader == "周九"
    updated = _audit(app_db, "shift")[-1]
    assert updated.action == "update"
    assert json.loads(updated.after or "{}")["officers_added"] == ["周九"]


# --------------------------------------------------------------------------- who may


@pytest.fixture
def stored_shifts(unit_a: Unit, tree: Tree, app_db: Callable[..., Any]) -> Iterator[dict[str, int]]:
    with app_db() as session:
        session.add(Officer(unit_id=tree.b.id, name="钱七"))
        shifts = {
            "a": Shift(
                unit_id=unit_a.id,
                day=date(2026, 11, 24),
                name="白班",
                starts_at=datetime(2026, 11, 24, 0, 30, tzinfo=UTC),
                ends_at=datetime(2026, 11, 24, 9, 30, tzinfo=UTC),
                main_officer="张伟",
            ),
            "b": Shift(
                unit_id=tree.b.id,
                day=date(2026, 11, 24),
                name="白班",
                starts_at=datetime(2026, 11, 24, 0, 30, tzinfo=UTC),
                ends_at=datetime(2026, 11, 24, 9, 30, tzinfo=UTC),
                main_officer="钱七",
            ),
        }
        session.add_all(shifts.values())
        session.flush()
        ids = {key: shift.id for key, shift in shifts.items()}
    yield ids


def test_duty_officer_reads_the_roster_but_cannot_change_it(
    client: FlaskClient,
    unit_a: Unit,
    stored_shifts: dict[str, int],
    login: Callable[..., Any],
    app_db: Any,
) -> None:
    login(client, "officer_a")
    page = _page(client, "/roster/")  # their own unit by default
    assert f'data-shift-id="{stored_shifts["a"]}" class="on-duty"' in page
    assert 'id="roster-upload"' not in page and 'id="add-shift"' not in page
    token = extract_csrf_token(page)
    response = client.post(
        f"/roster/{unit_a.id}/upload",
        data={"csrf_token": token, "file": (io.BytesIO(csv_bytes(*GOOD_ROWS)), "r.csv")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 403
    assert client.get(f"/roster/{unit_a.id}/shifts/new").status_code == 403
    assert client.get(f"/roster/shifts/{stored_shifts['a']}").status_code == 403
    delete = client.post(f"/roster/shifts/{stored_shifts['a']}/delete", data={"csrf_token": token})
    assert delete.status_code == 403
    assert len(_shifts(app_db, unit_a.id)) == 1


def test_other_units_roster_is_out_of_reach(
    client: FlaskClient,
    unit_a: Unit,
    tree: Tree,
    stored_shifts: dict[str, int],
    login: Callable[..., Any],
) -> None:
    login(client, "officer_b")
    assert client.get(f"/roster/?unit={unit_a.id}").status_code == 403
    assert client.get("/roster/?unit=99999").status_code == 404
    page = _page(client, "/roster/")
    assert f'data-shift-id="{stored_shifts["b"]}"' in page
    assert f'data-shift-id="{stored_shifts["a"]}"' not in page and unit_a.name not in page

    # unit A's admin cannot change unit B's roster
    admin_a = client.application.test_client()
    login(admin_a, "admin_a")
    assert admin_a.get(f"/roster/?unit={tree.b.id}").status_code == 403
    assert admin_a.get(f"/roster/shifts/{stored_shifts['b']}").status_code == 403
    assert admin_a.get(f"/roster/{tree.b.id}/shifts/new").status_code == 403

    # the city's inspector reads both counties, changes neither
    inspector = client.application.test_client()
    login(inspector, "inspector_city")
    page = _page(inspector, f"/roster/?unit={unit_a.id}")
    assert f'data-shift-id="{stored_shifts["a"]}"' in page and 'id="roster-upload"' not in page
    assert inspector.get(f"/roster/shifts/{stored_shifts['a']}").status_code == 403
    assert inspector.get(f"/roster/?unit={tree.city.id}").status_code == 403  # not their own


def test_post_without_csrf_token_is_refused(
    client: FlaskClient, unit_a: Unit, stored_shifts: dict[str, int], login: Any, app_db: Any
) -> None:
    login(client, "admin_a")
    response = client.post(
        f"/roster/{unit_a.id}/upload",
        data={"file": (io.BytesIO(csv_bytes(*GOOD_ROWS[2:])), "r.csv"), "replace": "y"},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    assert client.post(f"/roster/shifts/{stored_shifts['a']}/delete").status_code == 400
    (kept,) = _shifts(app_db, unit_a.id)
    assert kept.main_officer == "张伟"


def test_nav_shows_the_roster_to_every_role(
    client: FlaskClient, tree: Tree, login: Callable[..., Any]
) -> None:
    login(client, "officer_a")
    page = _page(client, "/roster/")
    assert 'href="/roster/"' in page and 'href="/lines/"' not in page
    assert re.search(r'<a href="/roster/" class="active" aria-current="page">值班表</a>', page)
    admin = client.application.test_client()
    login(admin, "admin_a")
    page = _page(admin, "/roster/")
    nav = page.split('class="nav"', 1)[1].split("</nav>", 1)[0]
    assert nav.index('href="/roster/"') < nav.index('href="/lines/"') < nav.index('"/admin/"')


# --------------------------------------------------------------------------- the browser


def test_unit_admin_uploads_an_xlsx_roster_in_the_browser(
    live_server: str,
    page: Any,
    unit_a: Unit,
    tree: Tree,
    app_db: Callable[..., Any],
    tmp_path: Path,
) -> None:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["甲县值班表 2026年11月"])  # a title row above the header
    sheet.append(HEADER.split(","))
    for row in GOOD_ROWS:
        day, *rest = row.split(",")
        sheet.append([datetime.fromisoformat(day), *rest])  # a real Excel date cell
    path = tmp_path / "值班表.xlsx"
    workbook.save(path)

    page.goto(f"{live_server}/login")
    page.fill("input[name=username]", "admin_a")
    page.fill("input[name=password]", tree.password("admin_a"))
    page.press("input[name=password]", "Enter")
    page.wait_for_url(lambda url: "/login" not in url)
    page.click("nav a[href='/roster/']")
    page.wait_for_selector("#roster-upload")
    assert page.locator("#roster-week tr[data-shift-id]").count() == 0

    page.set_input_files("#roster-upload input[type=file]", str(path))
    with page.expect_navigation():
        page.click("#roster-upload button[type=submit]")
    # the week of the file's first day, with the four shifts and Tuesday's 白班 on duty
    assert "week=2026-11-23" in page.url
    assert page.text_content("#week-range") == "2026-11-23 – 2026-11-29"
    rows = page.eval_on_selector_all(
        "#roster-week tr[data-shift-id]",
        "rows => rows.map(r => Array.from(r.cells).slice(1, 5).map(c => c.textContent.trim()))",
    )
    assert [(r[0].split()[0], r[2], r[3]) for r in rows] == [
        ("白班", "张伟", "李娜"),
        ("夜班", "王磊", "刘洋"),
        ("白班", "李娜", "张伟"),
        ("夜班", "刘洋", "王磊"),
    ]
    assert rows[1][1] == "17:30–08:30 (后一天)"
    on_duty = page.eval_on_selector_all(
        "#roster-week tr.on-duty", "rows => rows.map(r => r.cells[3].textContent.trim())"
    )
    assert on_duty == ["李娜"]
    assert "李娜" in (page.text_content("#on-duty-now") or "")
    with app_db() as session:
        count = session.scalar(select(func.count()).select_from(Shift))
    assert count == 4
    folder = os.environ.get("CALLCENTER_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.set_viewport_size({"width": 1280, "height": 800})
        page.screenshot(path=str(Path(folder) / "roster.png"), full_page=True)
