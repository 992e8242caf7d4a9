"""The report as tables: one list of columns for the page, the CSV and the XLSX file.

The page, the print page and both exports are built from :func:`summary_rows`,
:func:`violation_rows` and :func:`hourly_rows`, so they show the same figures: numbers are
rounded once (in :mod:`callcenter.reports`), written as numbers into XLSX and as text by
:func:`cell_text` on the page and in CSV.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from callcenter.reports import Figures, LineReport, MissedCallReport, UnitReport
from callcenter.store.duty import VIOLATION_STATES

__all__ = [
    "COLUMNS",
    "Column",
    "Row",
    "cell_text",
    "hourly_rows",
    "summary_rows",
    "to_csv",
    "to_xlsx",
    "violation_rows",
]

Value = str | int | float | None


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    label: Any  # a lazy string
    value: Callable[[str, UnitReport | None, LineReport | None, Figures], Value]
    number_format: str | None = None  # XLSX number format for numeric columns
    width: int = 10


def _unit_name(level: str, unit: UnitReport | None, _l: LineReport | None, _f: Figures) -> Value:
    return unit.name if unit is not None else _("Total")


def _line_name(level: str, _u: UnitReport | None, line: LineReport | None, _f: Figures) -> Value:
    if level == "unit":
        return _("Subtotal")
    if level == "total" or line is None:
        return ""
    if line.line_id is None:
        return _("(no line)")
    return f"{line.number} {line.name}".strip()


def _score(level: str, unit: UnitReport | None, _l: LineReport | None, _f: Figures) -> Value:
    return unit.score if level == "unit" and unit is not None else None


def _figure(name: str) -> Callable[[str, UnitReport | None, LineReport | None, Figures], Value]:
    def get(_level: str, _u: UnitReport | None, _l: LineReport | None, f: Figures) -> Value:
        value: Value = getattr(f, name)
        return value

    return get


def _in_state(state: str) -> Callable[[str, UnitReport | None, LineReport | None, Figures], Value]:
    def get(_level: str, _u: UnitReport | None, _l: LineReport | None, f: Figures) -> Value:
        return f.violations_in(state)

    return get


COLUMNS: tuple[Column, ...] = (
    Column("unit", _l("Unit"), _unit_name, width=22),
    Column("line", _l("Line"), _line_name, width=22),
    Column("calls", _l("Calls"), _figure("calls")),
    Column("answered", _l("Answered"), _figure("answered")),
    Column("answered_pct", _l("Answered %"), _figure("answered_pct"), "0.0"),
    Column("unanswered", _l("Unanswered"), _figure("unanswered")),
    Column("abandoned", _l("Abandoned"), _figure("abandoned")),
    Column("forwarded", _l("Forwarded"), _figure("forwarded")),
    Column("ring_avg", _l("Avg ring (s)"), _figure("ring_avg"), "0.0"),
    Column("ring_max", _l("Max ring (s)"), _figure("ring_max"), "0.0"),
    Column("callbacks", _l("Callbacks"), _figure("callbacks")),
    Column("callbacks_done", _l("Called back"), _figure("callbacks_done")),
    Column("callbacks_overdue", _l("Overdue (>24 h)"), _figure("callbacks_overdue")),
    Column("violations_flagged", _l("Violations flagged"), _in_state("flagged")),
    Column("violations_confirmed", _l("Confirmed"), _in_state("confirmed")),
    Column("violations_dismissed", _l("Dismissed"), _in_state("dismissed")),
    Column("deductions", _l("Deductions"), _figure("deductions"), "0.0#"),
    Column("score", _l("Score"), _score, "0.0#"),
)


def _round(value: Value) -> Value:
    if isinstance(value, float):
        return round(value, 2)
    return value


def cell_text(value: Value, key: str = "") -> str:
    """A figure as the page and the CSV show it."""
    if value is None:
        return ""
    if isinstance(value, bool):  # pragma: no cover - no boolean figures
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if key in ("deductions", "score"):
            text = f"{value:.2f}".rstrip("0")
            return text + "0" if text.endswith(".") else text
        return f"{value:.1f}"
    return str(value)


@dataclass(frozen=True, slots=True)
class Row:
    level: str  # line | unit | total
    unit: UnitReport | None
    line: LineReport | None
    values: list[Value]

    @property
    def texts(self) -> list[str]:
        return [cell_text(v, c.key) for v, c in zip(self.values, COLUMNS, strict=True)]


def summary_rows(report: MissedCallReport) -> list[Row]:
    rows = []
    for level, unit, line, figures in report.rows():
        values = [_round(column.value(level, unit, line, figures)) for column in COLUMNS]
        rows.append(Row(level, unit, line, values))
    return rows


VIOLATION_HEADERS = (
    _l("Unit"),
    _l("Line"),
    _l("Kind"),
    _l("Flagged"),
    _l("Confirmed"),
    _l("Dismissed"),
    _l("Deductions"),
)


def violation_rows(report: MissedCallReport, kind_label: Callable[[str], str]) -> list[list[Value]]:
    """Violations by kind, one row per unit, line and kind: counts per state, deductions."""
    pivot: dict[tuple[str, str, str], dict[str, Any]] = {}
    for count in report.violation_counts:
        key = (count.unit_name, count.line_number, count.kind)
        row = pivot.setdefault(key, {state: 0 for state in VIOLATION_STATES} | {"points": 0.0})
        row[count.state] = row.get(count.state, 0) + count.count
        row["points"] = round(row["points"] + count.deduction, 2)
    out: list[list[Value]] = []
    for (unit, line, kind), row in pivot.items():
        out.append(
            [
                unit,
                line or _("(no line)"),
                kind_label(kind),
                row["flagged"],
                row["confirmed"],
                row["dismissed"],
                row["points"],
            ]
        )
    return out


def hourly_rows(report: MissedCallReport) -> list[list[Value]]:
    """Hour of day (the units' own zones), unanswered and abandoned calls."""
    total = report.total
    return [
        [f"{hour:02d}:00", total.unanswered_by_hour[hour], total.abandoned_by_hour[hour]]
        for hour in range(24)
    ]


HOURLY_HEADERS = (_l("Hour"), _l("Unanswered"), _l("Abandoned"))


# --------------------------------------------------------------------------- files


def _csv_lines(rows: Iterator[list[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for row in rows:
        writer.writerow(row)
    return out.getvalue()


def to_csv(report: MissedCallReport) -> bytes:
    """The summary table as CSV: UTF-8 with a byte-order mark (Excel reads Chinese then)."""

    def lines() -> Iterator[list[str]]:
        yield [str(column.label) for column in COLUMNS]
        for row in summary_rows(report):
            yield row.texts

    return ("\ufeff" + _csv_lines(lines())).encode("utf-8")


_HEADER_FONT = Font(bold=True)
_HEADER_FILL = PatternFill("solid", fgColor="DDE4EE")
_SUBTOTAL_FONT = Font(bold=True)


def _sheet_header(sheet: Any, headers: list[str], widths: list[int]) -> None:
    sheet.append(headers)
    for index, width in enumerate(widths, start=1):
        cell = sheet.cell(row=1, column=index)
        cell.font = _HEADER_FONT
        cell.fill = _HEADER_FILL
        cell.alignment = Alignment(wrap_text=True, vertical="top")
        sheet.column_dimensions[get_column_letter(index)].width = width
    sheet.freeze_panes = "A2"


def to_xlsx(
    report: MissedCallReport, kind_label: Callable[[str], str], about: list[tuple[str, str]]
) -> bytes:
    """The report as an XLSX workbook: Summary, Violations, By hour and About sheets."""
    book = Workbook()
    summary = book.active
    summary.title = _("Summary")
    _sheet_header(summary, [str(c.label) for c in COLUMNS], [c.width for c in COLUMNS])
    for row in summary_rows(report):
        summary.append(row.values)
        excel_row = summary.max_row
        for index, column in enumerate(COLUMNS, start=1):
            cell = summary.cell(row=excel_row, column=index)
            if column.number_format and isinstance(cell.value, int | float):
                cell.number_format = column.number_format
            if row.level != "line":
                cell.font = _SUBTOTAL_FONT

    violations = book.create_sheet(_("Violations"))
    _sheet_header(violations, [str(h) for h in VIOLATION_HEADERS], [22, 22, 24, 10, 10, 10, 10])
    for values in violation_rows(report, kind_label):
        violations.append(values)

    hourly = book.create_sheet(_("By hour"))
    _sheet_header(hourly, [str(h) for h in HOURLY_HEADERS], [10, 12, 12])
    for values in hourly_rows(report):
        hourly.append(values)

    sheet = book.create_sheet(_("About"))
    _sheet_header(sheet, [_("Item"), _("Value")], [24, 60])
    for name, value in about:
        sheet.append([name, value])

    gaps = book.create_sheet(_("Monitoring gaps"))
    _sheet_header(gaps, [str(h) for h in GAP_HEADERS], [12, 20, 20, 10, 14, 40])
    for gap_values in gap_rows(report):
        gaps.append(gap_values)

    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


GAP_HEADERS = (
    _l("PBX"), _l("From (UTC)"), _l("To (UTC)"), _l("Minutes"), _l("Calls unseen"), _l("Reason"),
)  # fmt: skip


def gap_rows(report: MissedCallReport) -> list[list[Value]]:
    """One row per monitoring gap; an unknown count or a gap still going on stays empty."""
    rows: list[list[Value]] = []
    for gap in report.gaps:
        until = gap.ended_at or report.generated_at
        rows.append(
            [
                gap.pbx,
                gap.started_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
                gap.ended_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if gap.ended_at else "",
                round(max((until - gap.started_at).total_seconds(), 0) / 60, 1),
                gap.calls_lost_estimate,
                gap.reason,
            ]
        )
    return rows
