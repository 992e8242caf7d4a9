"""The missed-call report: figures worked out by hand on a small data set, on SQLite and
PostgreSQL; the page, the XLSX and the CSV hold the same figures; scoping by unit.

The data set (:func:`build_dataset`), November 2026 in Asia/Shanghai, "now" 2026-11-20 12:00
local. Lines 12345 and 12346 belong to county A, 22345 to county B.

line 12345 — inbound calls in the period (local time, outcome, ring s):
  #1 11-02 09:00 answered 5   #2 11-02 09:30 answered 20   #3 11-03 02:10 no_answer 30
  #4 11-03 02:40 abandoned 12 #5 11-05 23:59 busy 0        #6 11-10 10:00 answered 8 (forwarded)
  #8 11-01 00:05 no_answer 25 (still October in UTC: inside)
  left out: #7 12-01 00:10 local (November in UTC), #9 outbound, #10 originated spot check
  → calls 7, answered 3 (42.9 %), unanswered 3 (#3 #5 #8), abandoned 1, forwarded 1,
    ring 100 s / 7 = 14.3 avg, 30 max
line 12346: #11 11-15 14:00 failed (no ring time), #12 11-15 14:05 answered 3
  → calls 2, answered 1 (50.0 %), unanswered 1, ring 3.0 / 3.0
line 22345: #13 11-20 08:00 no_answer 40 → calls 1, answered 0 (0.0 %), unanswered 1

callbacks: #3 called_back, #4 open (overdue: > 24 h), #5 excused, #8 open due 12-01 (not
  overdue), #11 open (overdue), #13 open (4 h old: not overdue), #7 open (out of period)
violations: 12345: unanswered #3 confirmed 0.5, unanswered #8 flagged, unmanned confirmed
  0.5, slow_answer #2 dismissed, forwarded #6 confirmed (no stored points: table 0.5);
  county A without a line: late_report confirmed 1.0; 22345: unanswered #13 flagged,
  phone_offline confirmed 0.5; out of period: unanswered #7 confirmed
  → A deductions 2.5, score 7.5; B deductions 0.5, score 9.5
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openpyxl import load_workbook
from sqlalchemy.orm import Session

from callcenter.reports import Period, hour_of_day, missed_call_report, offset_spans
from callcenter.store.duty import Callback, Violation, ViolationCall
from callcenter.store.models import Call, Outage
from callcenter.store.org import DutyLine, Unit
from callcenter.web.reports.table import COLUMNS

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=SHANGHAI).astimezone(UTC)
NOVEMBER = Period.month(2026, 11)
KEYS = [column.key for column in COLUMNS]

BOTH_ENGINES = pytest.mark.parametrize(
    "web_db_url", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


def local(month: int, day: int, hour: int, minute: int = 0, zone: ZoneInfo = SHANGHAI) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=zone).astimezone(UTC)


# --------------------------------------------------------------------------- the data set


@dataclass
class Dataset:
    lines: dict[str, int]
    calls: dict[int, int]  # number in the docstring -> call id
    violations: dict[str, int]


def _call(
    session: Session,
    linkedid: str,
    line: str,
    started_at: datetime,
    outcome: str,
    ring: float | None,
    *,
    direction: str = "inbound",
    originated: bool = False,
    forwarded_to: str | None = None,
) -> int:
    answered_at = started_at + timedelta(seconds=ring or 0) if outcome == "answered" else None
    call = Call(
        linkedid=linkedid,
        caller="13800000000",
        dialed=line,
        line=line,
        direction=direction,
        started_at=started_at,
        answered_at=answered_at,
        ended_at=started_at + timedelta(seconds=(ring or 0) + 60),
        ring_seconds=ring,
        talk_seconds=60.0 if answered_at else None,
        outcome=outcome,
        answered_by="SIP/duty1" if answered_at else None,
        forwarded_to=forwarded_to,
        closed_by="hangup",
        originated=originated,
    )
    session.add(call)
    session.flush()
    return call.id


def build_dataset(session: Session, a: Unit, b: Unit) -> Dataset:
    """The data set of this module's docstring, in ``session`` (the caller commits)."""
    lines: dict[str, int] = {}
    for number, name, unit in (
        ("12345", "值班室", a),
        ("12346", "备用", a),
        ("22345", "值班室", b),
    ):
        line = DutyLine(number=number, name=name, unit_id=unit.id)
        session.add(line)
        session.flush()
        lines[number] = line.id
    calls = {
        1: _call(session, "c1", "12345", local(11, 2, 9), "answered", 5),
        2: _call(session, "c2", "12345", local(11, 2, 9, 30), "answered", 20),
        3: _call(session, "c3", "12345", local(11, 3, 2, 10), "no_answer", 30),
        4: _call(session, "c4", "12345", local(11, 3, 2, 40), "abandoned", 12),
        5: _call(session, "c5", "12345", local(11, 5, 23, 59), "busy", 0),
        6: _call(
            session, "c6", "12345", local(11, 10, 10), "answered", 8, forwarded_to="13900000000"
        ),
        7: _call(session, "c7", "12345", local(12, 1, 0, 10), "no_answer", 25),
        8: _call(session, "c8", "12345", local(11, 1, 0, 5), "no_answer", 25),
        9: _call(session, "c9", "12345", local(11, 4, 9), "answered", 2, direction="outbound"),
        10: _call(session, "c10", "12345", local(11, 4, 10), "no_answer", 30, originated=True),
        11: _call(session, "c11", "12346", local(11, 15, 14), "failed", None),
        12: _call(session, "c12", "12346", local(11, 15, 14, 5), "answered", 3),
        13: _call(session, "c13", "22345", local(11, 20, 8), "no_answer", 40),
    }
    for number, state, due in (
        (3, "called_back", None),
        (4, "open", None),
        (5, "excused", None),
        (8, "open", local(12, 1, 0)),
        (11, "open", None),
        (13, "open", None),
        (7, "open", None),
    ):
        session.add(
            Callback(
                call_id=calls[number], line_id=None, caller="13800000000", state=state, due_at=due
            )
        )

    violations: dict[str, int] = {}

    def violation(
        name: str,
        kind: str,
        unit: Unit,
        line: str | None,
        at: datetime,
        state: str,
        deduction: float | None = None,
        call: int | None = None,
        behind: tuple[int, ...] = (),
    ) -> None:
        row = Violation(
            dedupe_key=f"test:{name}",
            kind=kind,
            state=state,
            unit_id=unit.id,
            line_id=lines[line] if line else None,
            line_number=line,
            endpoint="SIP/duty1",
            at=at,
            detail=f"{kind} ({name})",
            call_id=calls[call] if call else None,
            officer="张三",
            deduction=deduction,
        )
        row.calls = [ViolationCall(call_id=calls[n]) for n in behind]
        session.add(row)
        session.flush()
        violations[name] = row.id

    violation("v1", "unanswered", a, "12345", local(11, 3, 2, 10), "confirmed", 0.5, call=3)
    violation("v2", "unanswered", a, "12345", local(11, 1, 0, 5), "flagged", call=8)
    violation("v3", "unmanned", a, "12345", local(11, 3, 2, 40), "confirmed", 0.5, 4, (3, 4))
    violation("v4", "slow_answer", a, "12345", local(11, 2, 9, 30), "dismissed", call=2)
    violation("v5", "forwarded", a, "12345", local(11, 10, 10), "confirmed", None, call=6)
    violation("v6", "late_report", a, None, local(11, 12, 15), "confirmed", 1.0)
    violation("v7", "unanswered", b, "22345", local(11, 20, 8), "flagged", call=13)
    violation("v8", "phone_offline", b, "22345", local(11, 18, 3), "confirmed", 0.5)
    violation("v9", "unanswered", a, "12345", local(12, 1, 0, 10), "confirmed", 0.5, call=7)
    session.flush()
    return Dataset(lines, calls, violations)


# The summary table by hand: (level, unit, line) and the figures in column order after them.
# fmt: off
EXPECTED: list[tuple[str, str, str | None, list[str]]] = [
    # calls, answered, %, unanswered, abandoned, forwarded, ring avg, ring max,
    # callbacks, done, overdue, flagged, confirmed, dismissed, deductions, score
    ("line", "甲县 County A", "12345 值班室",
     ["7", "3", "42.9", "3", "1", "1", "14.3", "30.0", "4", "2", "1", "1", "3", "1", "1.5", ""]),
    ("line", "甲县 County A", "12346 备用",
     ["2", "1", "50.0", "1", "0", "0", "3.0", "3.0", "1", "0", "1", "0", "0", "0", "0.0", ""]),
    ("line", "甲县 County A", None,  # the unit's violations that name no line
     ["0", "0", "", "0", "0", "0", "", "", "0", "0", "0", "0", "1", "0", "1.0", ""]),
    ("unit", "甲县 County A", None,
     ["9", "4", "44.4", "4", "1", "1", "12.9", "30.0", "5", "2", "2", "1", "4", "1", "2.5", "7.5"]),
    ("line", "乙县 County B", "22345 值班室",
     ["1", "0", "0.0", "1", "0", "0", "40.0", "40.0", "1", "0", "0", "1", "1", "0", "0.5", ""]),
    ("unit", "乙县 County B", None,
     ["1", "0", "0.0", "1", "0", "0", "40.0", "40.0", "1", "0", "0", "1", "1", "0", "0.5", "9.5"]),
    ("total", "", None,
     ["10", "4", "40.0", "5", "1", "1", "15.9", "40.0", "6", "2", "2", "2", "5", "1", "3.0", ""]),
]
# fmt: on
UNANSWERED_BY_HOUR = {0: 1, 2: 1, 8: 1, 14: 1, 23: 1}
ABANDONED_BY_HOUR = {2: 1}


@pytest.fixture
def dataset(app: Flask, app_db: Callable[[], Any], tree: Any) -> Dataset:
    app.config["CLOCK"] = lambda: NOW
    with app_db() as session:
        return build_dataset(session, tree.a, tree.b)


# --------------------------------------------------------------------------- page helpers


class _Tables(HTMLParser):
    """The rows (cell texts) of every ``<table id=...>`` of a page, with row attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[tuple[dict[str, str], list[str]]]] = {}
        self._table: str | None = None
        self._row: list[str] | None = None
        self._row_attrs: dict[str, str] = {}
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        if tag == "table" and "id" in found:
            self._table = found["id"]
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self._row, self._row_attrs = [], found
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None and self._table:
            self.tables[self._table].append((self._row_attrs, self._row))
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def page_tables(html: str) -> dict[str, list[tuple[dict[str, str], list[str]]]]:
    parser = _Tables()
    parser.feed(html)
    return parser.tables


def summary_from_page(html: str) -> list[tuple[str, list[str]]]:
    rows = page_tables(html)["report-summary"]
    return [(attrs["data-level"], cells) for attrs, cells in rows if "data-level" in attrs]


def check_summary(rows: list[tuple[str, list[str]]]) -> None:
    """``rows`` (level, all cell texts) are the hand-computed table."""
    assert [level for level, _ in rows] == [level for level, *_ in EXPECTED]
    for (level, cells), (_, unit, line, figures) in zip(rows, EXPECTED, strict=True):
        assert cells[2:] == figures, (level, unit, line)
        if level != "total":
            assert cells[0] == unit
        if level == "line" and line is not None:
            assert cells[1] == line


def signed_in(client: FlaskClient, login: Callable[..., Any], username: str) -> FlaskClient:
    response = login(client, username)
    assert response.status_code in (302, 303), response.get_data(as_text=True)[:500]
    return client


# --------------------------------------------------------------------------- the figures


@BOTH_ENGINES
def test_report_figures_by_hand(app: Flask, dataset: Dataset, tree: Any) -> None:
    with app.app_context():
        from callcenter.web.extensions import db

        report = missed_call_report(db(), {tree.a.id, tree.b.id, tree.city.id}, NOVEMBER, now=NOW)
    assert [unit.name for unit in report.units] == ["甲县 County A", "乙县 County B"]
    a, b = report.units
    line = a.lines[0].figures
    assert (line.calls, line.answered, line.unanswered, line.abandoned, line.forwarded) == (
        7,
        3,
        3,
        1,
        1,
    )
    assert line.answered_pct == 42.9
    assert (line.ring_count, line.ring_total, line.ring_avg, line.ring_max) == (7, 100.0, 14.3, 30)
    assert (line.callbacks, line.callbacks_done, line.callbacks_open, line.callbacks_overdue) == (
        4,
        2,
        2,
        1,
    )
    assert line.violations == {
        ("unanswered", "confirmed"): 1,
        ("unanswered", "flagged"): 1,
        ("unmanned", "confirmed"): 1,
        ("slow_answer", "dismissed"): 1,
        ("forwarded", "confirmed"): 1,
    }
    assert line.deductions == 1.5
    assert a.lines[2].line_id is None and a.lines[2].figures.violations == {
        ("late_report", "confirmed"): 1
    }
    assert (a.figures.deductions, a.score, b.figures.deductions, b.score) == (2.5, 7.5, 0.5, 9.5)
    total = report.total
    assert total.calls == 10 and total.ring_avg == 15.9 and total.ring_max == 40.0
    assert {h: n for h, n in enumerate(total.unanswered_by_hour) if n} == UNANSWERED_BY_HOUR
    assert {h: n for h, n in enumerate(total.abandoned_by_hour) if n} == ABANDONED_BY_HOUR
    assert [(c.unit_name, c.line_number, c.kind, c.state, c.count, c.deduction) for c in
            report.violation_counts] == [
        ("甲县 County A", "", "late_report", "confirmed", 1, 1.0),
        ("甲县 County A", "12345", "unanswered", "flagged", 1, 0.0),
        ("甲县 County A", "12345", "unanswered", "confirmed", 1, 0.5),
        ("甲县 County A", "12345", "slow_answer", "dismissed", 1, 0.0),
        ("甲县 County A", "12345", "forwarded", "confirmed", 1, 0.5),
        ("甲县 County A", "12345", "unmanned", "confirmed", 1, 0.5),
        ("乙县 County B", "22345", "unanswered", "flagged", 1, 0.0),
        ("乙县 County B", "22345", "phone_offline", "confirmed", 1, 0.5),
    ]  # fmt: skip


@BOTH_ENGINES
def test_report_page_export_xlsx_and_csv_hold_the_same_figures(
    client: FlaskClient, login: Callable[..., Any], dataset: Dataset
) -> None:
    signed_in(client, login, "inspector_city")
    response = client.get("/reports/missed?month=2026-11")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    page_rows = summary_from_page(html)
    check_summary(page_rows)
    hourly = page_tables(html)["report-hourly"]
    assert hourly[1][1][1:] == [str(UNANSWERED_BY_HOUR.get(h, 0)) for h in range(24)]
    assert hourly[2][1][1:] == [str(ABANDONED_BY_HOUR.get(h, 0)) for h in range(24)]
    assert 'id="hourly-chart"' in html and "report.js" in html

    xlsx = client.get("/reports/missed.xlsx?month=2026-11")
    assert xlsx.status_code == 200
    assert xlsx.headers["Content-Disposition"].endswith('filename="missed-calls-2026-11.xlsx"')
    book = load_workbook(io.BytesIO(xlsx.get_data()))
    check_xlsx_matches_page(book, page_rows)
    by_hour = [list(r) for r in book.worksheets[2].iter_rows(min_row=2, values_only=True)]
    assert [r[1] for r in by_hour] == [UNANSWERED_BY_HOUR.get(h, 0) for h in range(24)]
    assert [r[2] for r in by_hour] == [ABANDONED_BY_HOUR.get(h, 0) for h in range(24)]
    kinds = [list(r) for r in book.worksheets[1].iter_rows(min_row=2, values_only=True)]
    assert len(kinds) == 7  # unit, line, kind: late_report, unanswered ×2 lines, ...
    assert sum(r[6] for r in kinds) == 3.0  # the deductions add up to the total

    exported = client.get("/reports/missed.csv?month=2026-11")
    assert exported.status_code == 200
    assert exported.mimetype == "text/csv"
    text = exported.get_data().decode("utf-8")
    assert text.startswith("\ufeff")
    csv_rows = list(csv.reader(io.StringIO(text[1:])))
    assert len(csv_rows[0]) == len(KEYS)
    assert [cells for _, cells in page_rows] == csv_rows[1:]


def check_xlsx_matches_page(book: Any, page_rows: list[tuple[str, list[str]]]) -> None:
    """The Summary sheet holds the page's figures: numbers equal, texts equal."""
    sheet = book.worksheets[0]
    rows = [list(r) for r in sheet.iter_rows(min_row=2, values_only=True)]
    assert len(rows) == len(page_rows)
    for values, (_level, cells) in zip(rows, page_rows, strict=True):
        for key, value, text in zip(KEYS, values, cells, strict=True):
            if isinstance(value, int | float) and not isinstance(value, bool):
                assert text != "" and float(text) == pytest.approx(value), (key, value, text)
            else:
                assert (value or "") == text, (key, value, text)


def test_report_scoped_to_the_units_the_user_sees(
    client: FlaskClient, login: Callable[..., Any], dataset: Dataset, tree: Any
) -> None:
    signed_in(client, login, "officer_b")
    html = client.get("/reports/missed?month=2026-11").get_data(as_text=True)
    rows = summary_from_page(html)
    assert [cells[0] for level, cells in rows if level != "total"] == ["乙县 County B"] * 2
    assert rows[-1][1][2] == "1"  # one call in total: county A is not counted
    # asking for county A by id changes nothing: it is not visible to county B's officer
    html = client.get(f"/reports/missed?month=2026-11&unit={tree.a.id}").get_data(as_text=True)
    assert [cells[0] for level, cells in summary_from_page(html) if level != "total"] == [
        "乙县 County B"
    ] * 2
    book = load_workbook(io.BytesIO(client.get("/reports/missed.xlsx?month=2026-11").get_data()))
    names = [r[0] for r in book.worksheets[0].iter_rows(min_row=2, values_only=True)]
    assert names[:2] == ["乙县 County B"] * 2 and len(names) == 3
    csv_text = client.get(f"/reports/missed.csv?month=2026-11&unit={tree.a.id}").get_data()
    assert "甲县".encode() not in csv_text


def test_report_for_one_unit_and_quarter_and_range(
    client: FlaskClient, login: Callable[..., Any], dataset: Dataset, tree: Any
) -> None:
    signed_in(client, login, "inspector_city")
    rows = summary_from_page(
        client.get(f"/reports/missed?month=2026-11&unit={tree.a.id}").get_data(as_text=True)
    )
    assert [level for level, _ in rows] == ["line", "line", "line", "unit", "total"]
    assert rows[-1][1][2:] == [*EXPECTED[3][3][:-1], ""]  # the total is county A's subtotal

    # the quarter holds November and the December call #7 (and its confirmed violation)
    rows = summary_from_page(client.get("/reports/missed?quarter=2026-Q4").get_data(as_text=True))
    total = rows[-1][1]
    assert total[2] == "11" and total[KEYS.index("deductions")] == "3.5"

    # a range: 2 and 3 November only → calls #1 #2 #3 #4
    rows = summary_from_page(
        client.get("/reports/missed?from=2026-11-02&to=2026-11-03").get_data(as_text=True)
    )
    assert rows[-1][1][2:6] == ["4", "2", "50.0", "1"]


def test_default_period_is_this_month_in_the_users_zone(
    app: Flask, client: FlaskClient, login: Callable[..., Any], dataset: Dataset
) -> None:
    # 2026-11-30 17:00 UTC is already 1 December in Shanghai
    app.config["CLOCK"] = lambda: datetime(2026, 11, 30, 17, 0, tzinfo=UTC)
    signed_in(client, login, "inspector_city")
    html = client.get("/reports/missed").get_data(as_text=True)
    assert "2026-12-01 – 2026-12-31" in html
    assert summary_from_page(html)[-1][1][2] == "1"  # call #7 only


def test_bad_period_falls_back_with_a_message(
    client: FlaskClient, login: Callable[..., Any], dataset: Dataset
) -> None:
    signed_in(client, login, "inspector_city")
    response = client.get("/reports/missed?month=2026-13")
    assert response.status_code == 200
    assert "no month 13" in response.get_data(as_text=True)


def test_print_page_and_redirect(
    client: FlaskClient, login: Callable[..., Any], dataset: Dataset
) -> None:
    signed_in(client, login, "inspector_city")
    assert client.get("/reports").headers["Location"].endswith("/reports/missed")
    html = client.get("/reports/missed/print?month=2026-11").get_data(as_text=True)
    assert "@media print" in html and "@page" in html
    check_summary(summary_from_page(html))
    assert "/violations?" not in html  # no links on paper


def test_report_needs_login(client: FlaskClient) -> None:
    for path in ("/reports/missed", "/reports/missed.xlsx", "/reports/missed.csv"):
        response = client.get(path)
        assert response.status_code in (302, 401)
        if response.status_code == 302:
            assert "/login" in response.headers["Location"]


# --------------------------------------------------------------------------- time zones


@BOTH_ENGINES
def test_hour_of_day_follows_daylight_saving_and_half_hour_zones(
    app: Flask, app_db: Callable[[], Any]
) -> None:
    new_york = ZoneInfo("America/New_York")
    kolkata = ZoneInfo("Asia/Kolkata")
    with app_db() as session:
        ny = Unit(name="New York", timezone="America/New_York")
        india = Unit(name="Kolkata", timezone="Asia/Kolkata")
        session.add_all([ny, india])
        session.flush()
        session.add_all(
            [
                DutyLine(number="1001", unit_id=ny.id),
                DutyLine(number="2001", unit_id=india.id),
            ]
        )
        session.flush()
        # 12:00 local on either side of the switch to summer time (8 March 2026)
        _call(session, "ny1", "1001", local(3, 7, 12, zone=new_york), "no_answer", 20)
        _call(session, "ny2", "1001", local(3, 9, 12, zone=new_york), "no_answer", 20)
        # 1 March 00:30 local is still February in UTC: inside March for New York
        _call(session, "ny3", "1001", local(3, 1, 0, 30, zone=new_york), "abandoned", 20)
        _call(session, "in1", "2001", local(3, 10, 9, 45, zone=kolkata), "no_answer", 20)
        ny_id, india_id = ny.id, india.id
    with app.app_context():
        from callcenter.web.extensions import db

        report = missed_call_report(db(), {ny_id, india_id}, Period.month(2026, 3), now=NOW)
    by_name = {unit.name: unit.figures for unit in report.units}
    assert {h: n for h, n in enumerate(by_name["New York"].unanswered_by_hour) if n} == {12: 2}
    assert {h: n for h, n in enumerate(by_name["New York"].abandoned_by_hour) if n} == {0: 1}
    assert {h: n for h, n in enumerate(by_name["Kolkata"].unanswered_by_hour) if n} == {9: 1}


def test_offset_spans_cut_at_the_switch() -> None:
    zone = ZoneInfo("America/New_York")
    start, end = Period.month(2026, 3).bounds(zone)
    spans = offset_spans(zone, start, end)
    assert spans == [(start, -300), (datetime(2026, 3, 8, 7, 0, tzinfo=UTC), -240)]
    assert offset_spans(SHANGHAI, *NOVEMBER.bounds(SHANGHAI)) == [
        (datetime(2026, 10, 31, 16, 0, tzinfo=UTC), 480)
    ]


def test_hour_of_day_refuses_other_databases() -> None:
    from callcenter.reports import ReportError

    with pytest.raises(ReportError):
        hour_of_day(Call.started_at, SHANGHAI, NOW, NOW, "mysql")


def test_periods() -> None:
    assert Period.month(2026, 2) == Period(date(2026, 2, 1), date(2026, 2, 28), "month")
    assert Period.quarter(2026, 4).label == "2026-Q4"
    assert Period.quarter_of(date(2026, 5, 17)) == Period.quarter(2026, 2)
    assert Period.month_of(date(2026, 12, 31)).label == "2026-12"
    start, end = Period.month(2026, 11).bounds(SHANGHAI)
    assert (start, end) == (
        datetime(2026, 10, 31, 16, tzinfo=UTC),
        datetime(2026, 11, 30, 16, tzinfo=UTC),
    )


@BOTH_ENGINES
def test_outages_in_the_period_are_shown_as_monitoring_gaps(
    app: Flask, client: FlaskClient, login: Callable[..., Any], dataset: Dataset, tree: Any
) -> None:
    """Figures are only as complete as the listener's view of the PBX: the report names the
    spans it could not see, with the calls estimated lost, and only those in the period."""
    with app.app_context():
        from callcenter.web.extensions import db

        session = db()
        session.add_all(
            [
                Outage(
                    pbx="pbx1",
                    started_at=datetime(2026, 11, 10, 2, 0, tzinfo=UTC),
                    ended_at=datetime(2026, 11, 10, 2, 12, tzinfo=UTC),
                    reason="no reply to Ping within 10 s",
                    calls_lost_estimate=2,
                ),
                Outage(  # began before November, ended in it: overlaps
                    pbx="pbx1",
                    started_at=datetime(2026, 10, 31, 15, 50, tzinfo=UTC),
                    ended_at=datetime(2026, 10, 31, 16, 5, tzinfo=UTC),
                    reason="connection lost",
                    calls_lost_estimate=None,
                ),
                Outage(  # wholly in October (local time): not in the report
                    pbx="pbx1",
                    started_at=datetime(2026, 10, 20, 1, 0, tzinfo=UTC),
                    ended_at=datetime(2026, 10, 20, 1, 30, tzinfo=UTC),
                    reason="connection lost",
                    calls_lost_estimate=0,
                ),
            ]
        )
        session.commit()
        report = missed_call_report(session, {tree.a.id}, NOVEMBER, now=NOW)
    assert [(g.started_at.day, g.calls_lost_estimate) for g in report.gaps] == [(31, None), (10, 2)]

    signed_in(client, login, "inspector_city")
    tables = page_tables(client.get("/reports/missed?month=2026-11").get_data(as_text=True))
    rows = [cells for _attrs, cells in tables["report-gaps"]]
    ping = next(cells for cells in rows if "no reply to Ping within 10 s" in cells)
    assert ping == [
        "pbx1", "2026-11-10 10:00:00", "2026-11-10 10:12:00", "12.0", ping[4],
        "no reply to Ping within 10 s",
    ]  # fmt: skip
    assert "2" in ping[4]  # about 2 calls unseen
    assert not any("2026-10-20" in cell for cells in rows for cell in cells)

    book = load_workbook(io.BytesIO(client.get("/reports/missed.xlsx?month=2026-11").get_data()))
    sheet = [list(r) for r in book.worksheets[-1].iter_rows(min_row=2, values_only=True)]
    assert sheet == [
        ["pbx1", "2026-10-31 15:50:00", "2026-10-31 16:05:00", 15, None, "connection lost"],
        ["pbx1", "2026-11-10 02:00:00", "2026-11-10 02:12:00", 12, 2, ping[5]],
    ]
