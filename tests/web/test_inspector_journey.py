"""Browser journey (Playwright + Debian's chromium): an inspector signs in, opens the
missed-call report, dismisses a violation with a reason, and exports XLSX; the file opens
with openpyxl and holds the figures the page shows.

Set ``CALLCENTER_SCREENSHOTS=<folder>`` to keep screenshots of the report (for the README).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from openpyxl import load_workbook

from tests.web.test_reports import (
    ABANDONED_BY_HOUR,
    EXPECTED,
    NOW,
    UNANSWERED_BY_HOUR,
    Dataset,
    build_dataset,
    check_summary,
    check_xlsx_matches_page,
)

READ_TABLE = """rows => rows.map(r => [
    r.dataset.level,
    Array.from(r.cells).map(c => c.textContent.trim().replace(/\\s+/g, ' '))
])"""


@pytest.fixture
def dataset(app: Flask, app_db: Callable[[], Any], tree: Any) -> Dataset:
    app.config["CLOCK"] = lambda: NOW  # "this month" is November 2026
    with app_db() as session:
        return build_dataset(session, tree.a, tree.b)


def summary(page: Any) -> list[tuple[str, list[str]]]:
    rows = page.eval_on_selector_all("#report-summary tbody tr", READ_TABLE)
    return [(level, cells) for level, cells in rows]


def screenshot(page: Any, name: str) -> None:
    folder = os.environ.get("CALLCENTER_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / name), full_page=True)


def test_inspector_reviews_the_missed_call_report(
    live_server: str, page: Any, dataset: Dataset, tree: Any, tmp_path: Path
) -> None:
    # sign in
    page.goto(f"{live_server}/login")
    page.fill("input[name=username]", "inspector_city")
    page.fill("input[name=password]", tree.password("inspector_city"))
    page.press("input[name=password]", "Enter")
    page.wait_for_url(lambda url: "/login" not in url)

    # open the report from the navigation: this month by default
    page.click("nav a[href='/reports/missed']")
    page.wait_for_selector("#report-summary")
    assert page.text_content("#report-period") == "2026-11-01 – 2026-11-30"
    check_summary(summary(page))

    # the chart was drawn: one bar per hour with unanswered (and abandoned) calls
    page.wait_for_selector("#hourly-chart svg")
    bars = page.eval_on_selector_all(
        "#hourly-chart svg rect.bar",
        "bars => bars.map(b => [b.dataset.series, b.dataset.hour, Number(b.dataset.value)])",
    )
    assert sorted(
        (hour, value) for series, hour, value in bars if series == "unanswered"
    ) == sorted((f"{h:02d}", n) for h, n in UNANSWERED_BY_HOUR.items())
    assert [(hour, value) for series, hour, value in bars if series == "abandoned"] == [
        (f"{h:02d}", n) for h, n in ABANDONED_BY_HOUR.items()
    ]
    screenshot(page, "report.png")

    # follow line 12345's flagged violations to the list, open the one there and dismiss it
    line_row = page.locator("#report-summary tbody tr[data-level=line]").first
    line_row.locator("td[data-key=violations_flagged] a").click()
    page.wait_for_selector("#violations")
    rows = page.locator("#violations tbody tr")
    assert rows.count() == 1
    violation_id = int(rows.first.get_attribute("data-violation-id") or 0)
    assert violation_id == dataset.violations["v2"]
    rows.first.locator("a").first.click()
    page.wait_for_selector("#dismiss-form")
    assert page.get_attribute("#violation-state", "data-state") == "flagged"
    page.select_option("#dismiss-form select[name=reason]", "drill")
    page.fill("#dismiss-form textarea[name=note]", "11月1日凌晨应急演练")
    page.click("#dismiss-form button[type=submit]")
    page.wait_for_selector("#violation-state[data-state=dismissed]")
    assert "11月1日凌晨应急演练" in (page.text_content("#violation-decision") or "")

    # back in the report: one flagged fewer, one dismissed more on line 12345 and in total
    page.click("nav a[href='/reports/missed']")
    page.wait_for_selector("#report-summary")
    after = summary(page)
    keys = page.eval_on_selector_all(
        "#report-summary thead th", "ths => ths.map(th => th.dataset.key)"
    )
    flagged, dismissed = keys.index("violations_flagged"), keys.index("violations_dismissed")
    line_before = EXPECTED[0][3]
    assert after[0][1][flagged] == str(int(line_before[flagged - 2]) - 1)
    assert after[0][1][dismissed] == str(int(line_before[dismissed - 2]) + 1)
    assert after[-1][1][flagged] == "1" and after[-1][1][dismissed] == "2"

    # export XLSX: the download opens with openpyxl and holds the page's figures
    with page.expect_download() as info:
        page.click("#export-xlsx")
    download = info.value
    assert download.suggested_filename == "missed-calls-2026-11.xlsx"
    target = tmp_path / download.suggested_filename
    download.save_as(str(target))
    book = load_workbook(target)
    check_xlsx_matches_page(book, after)
    screenshot(page, "report-after.png")
