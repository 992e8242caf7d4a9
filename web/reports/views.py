"""The missed-call report: the page, its XLSX and CSV exports and a print-ready page.

- ``GET /reports`` redirects to the missed-call report;
- ``GET /reports/missed`` (``reports.index``): the report for the period and units asked
  for (see :mod:`callcenter.web.reports.params`), with the chart of unanswered calls by hour;
- ``GET /reports/missed.xlsx`` (``reports.export_xlsx``), ``GET /reports/missed.csv``
  (``reports.export_csv``): the same figures as files;
- ``GET /reports/missed/print`` (``reports.print_view``): the same, laid out for paper.

Inspectors see the units below their own; a unit's staff see their own unit; admins see
every unit (:func:`callcenter.web.security.visible_unit_ids`).
"""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import login_required
from sqlalchemy import select

from callcenter.reports import MissedCallReport, missed_call_report
from callcenter.scoring import BASE_POINTS
from callcenter.store.org import Unit
from callcenter.web.extensions import db
from callcenter.web.reports import bp
from callcenter.web.reports.params import ReportParams, read_params
from callcenter.web.reports.table import (
    COLUMNS,
    HOURLY_HEADERS,
    VIOLATION_HEADERS,
    cell_text,
    hourly_rows,
    summary_rows,
    to_csv,
    to_xlsx,
    violation_rows,
)
from callcenter.web.security import ALL_ROLES, roles_required, visible_unit_ids
from callcenter.web.violations.decisions import assessment_table, now
from callcenter.web.violations.views import violation_kind_label


def _report(params: ReportParams) -> MissedCallReport:
    return missed_call_report(
        db(),
        params.unit_ids,
        params.period,
        now=now(),
        table=assessment_table(),
        base_points=float(current_app.config.get("ASSESSMENT_BASE_POINTS", BASE_POINTS)),
        default_zone=str(current_app.config["CALLCENTER"].timezone),
    )


def _title(report: MissedCallReport) -> str:
    if report.period.kind == "month":
        return _("Missed calls %(period)s (值班要情)", period=report.period.label)
    if report.period.kind == "quarter":
        return _("Missed calls %(period)s (值班通报)", period=report.period.label)
    return _(
        "Missed calls %(first)s – %(last)s",
        first=report.period.first.isoformat(),
        last=report.period.last.isoformat(),
    )


def _context(params: ReportParams, report: MissedCallReport) -> dict[str, Any]:
    visible = sorted(visible_unit_ids())
    units = list(db().scalars(select(Unit).where(Unit.id.in_(visible)).order_by(Unit.name)))
    rows = summary_rows(report)
    hourly = hourly_rows(report)
    return {
        "params": params,
        "args": params.args(),
        "report": report,
        "title": _title(report),
        "columns": COLUMNS,
        "rows": rows,
        "violation_headers": VIOLATION_HEADERS,
        "violation_rows": violation_rows(report, violation_kind_label),
        "hourly_headers": HOURLY_HEADERS,
        "hourly": hourly,
        "chart": {
            "labels": [f"{hour:02d}" for hour in range(24)],
            "series": [
                {"key": "unanswered", "label": _("Unanswered"), "values": [r[1] for r in hourly]},
                {"key": "abandoned", "label": _("Abandoned"), "values": [r[2] for r in hourly]},
            ],
            "title": _("Unanswered calls by hour of day"),
        },
        "units": units,
        "cell_text": cell_text,
        "violations_url": _violations_url,
    }


def _violations_url(params: ReportParams, row: Any) -> str | None:
    """The violations list behind a row's counts (same period and unit or line)."""
    args = {"from": params.period.first.isoformat(), "to": params.period.last.isoformat()}
    if row.level == "line" and row.line is not None and row.line.line_id is not None:
        args["line"] = str(row.line.line_id)
    elif row.level in ("line", "unit") and row.unit is not None:
        args["unit"] = str(row.unit.unit_id)
    elif params.unit_id is not None:
        args["unit"] = str(params.unit_id)
    return url_for("violations.index", **args)


@bp.get("/reports")
@bp.get("/reports/")
@login_required
def home() -> Response:
    return redirect(url_for("reports.index"))  # type: ignore[return-value]


@bp.get("/reports/missed")
@login_required
@roles_required(*ALL_ROLES)
def index() -> str:
    params = read_params()
    report = _report(params)
    return render_template("reports/missed.html", **_context(params, report))


@bp.get("/reports/missed/print")
@login_required
@roles_required(*ALL_ROLES)
def print_view() -> str:
    params = read_params()
    report = _report(params)
    return render_template("reports/print.html", **_context(params, report))


def _filename(report: MissedCallReport, ending: str) -> str:
    return f"missed-calls-{report.period.label}.{ending}"


def _about(report: MissedCallReport, params: ReportParams) -> list[tuple[str, str]]:
    names = [unit.name for unit in report.units]
    return [
        (_("Report"), _title(report)),
        (_("Period"), f"{report.period.first.isoformat()} – {report.period.last.isoformat()}"),
        (_("Units"), ", ".join(names) or "—"),
        (_("Generated at (UTC)"), report.generated_at.strftime("%Y-%m-%d %H:%M:%S")),
        (_("Base points"), cell_text(report.base_points, "score")),
        (
            _("Definitions"),
            _(
                "Inbound calls to duty lines; unanswered = no answer, busy or failed; "
                "abandoned = the caller hung up while it rang; callbacks overdue = open "
                "more than 24 h after the missed call; deductions = confirmed violations."
            ),
        ),
    ]


@bp.get("/reports/missed.xlsx")
@login_required
@roles_required(*ALL_ROLES)
def export_xlsx() -> Response:
    params = read_params()
    report = _report(params)
    body = to_xlsx(report, violation_kind_label, _about(report, params))
    return Response(
        body,
        mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": f'attachment; filename="{_filename(report, "xlsx")}"'},
    )


@bp.get("/reports/missed.csv")
@login_required
@roles_required(*ALL_ROLES)
def export_csv() -> Response:
    params = read_params()
    report = _report(params)
    return Response(
        to_csv(report),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{_filename(report, "csv")}"'},
    )
