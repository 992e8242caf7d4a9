"""Roster files (值班表): read and check the sheets duty rooms already fill in.

Pure parsing and validation, no database: the store (:mod:`callcenter.store.roster`) adds
the checks that need stored data (the unit's officers, shifts stored already) and writes.

The shape duty rooms use, one line per shift, columns in any order::

    日期        班次  主班  副班  带班领导  电话
    2026-11-23  白班  张伟  李娜  孙建国    13800000001
    2026-11-23  夜班  王磊  刘洋  孙建国    13800000002

- Files: CSV (UTF-8 with or without BOM, GB18030/GBK as Excel writes it on Chinese Windows,
  UTF-16 "Unicode text"; comma, tab or semicolon separated) or XLSX (the active sheet, or
  the one named; merged cells, e.g. a 日期 cell merged over a day's shifts, count for every
  row they cover; title rows above the header are skipped).
- Columns: ``日期, 班次, 主班, 副班, 带班领导, 电话`` (English ``date, shift, main, backup,
  leader, phone``), all six required in the header; 副班, 带班领导 and 电话 cells may be
  empty. An optional ``星期`` (weekday) column is checked against the date. Other columns
  are ignored with a warning.
- 日期: ``2026-11-23``, ``2026/11/23``, ``2026.11.23``, ``2026年11月23日``, optionally with
  the weekday (``2026年11月23日（星期一）``, checked), or an Excel date cell. The date a
  shift starts on (a night shift belongs to the evening's date).
- 班次: a name from the shift-type table (:data:`DEFAULT_SHIFT_TYPES`: 白班 08:30–17:30,
  夜班 17:30–08:30 next day, 全天 08:30–08:30 next day; configurable), or an explicit span
  ``08:00-20:00`` (optionally named: ``早班 08:00-12:00``). An end at or before the start is
  on the next day; a shift lasts at most 24 hours.
- Times are local to the unit's time zone (default Asia/Shanghai) and returned in UTC.

Every problem becomes a :class:`RowError` naming the row as the user sees it in Excel (the
header of a plain file is row 1), the column and the problem in words; a file-level problem
(a missing column, an unreadable file) has no row.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import unicodedata
import warnings
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "COLUMN_NAMES",
    "DEFAULT_SHIFT_TYPES",
    "DEFAULT_TIMEZONE",
    "REQUIRED_FIELDS",
    "RosterError",
    "RosterImport",
    "RowError",
    "ShiftRow",
    "ShiftType",
    "StoredShift",
    "Table",
    "check_officers",
    "check_shift",
    "decode_text",
    "find_overlaps",
    "normalize_name",
    "parse_day",
    "parse_roster",
    "parse_shift_types",
    "parse_table",
    "read_csv",
    "read_xlsx",
    "shift_label",
    "shift_times",
    "sort_errors",
    "split_names",
]

DEFAULT_TIMEZONE = "Asia/Shanghai"

#: The roster's fields and their column names as duty rooms write them.
COLUMN_NAMES: Mapping[str, str] = {
    "day": "日期",
    "shift": "班次",
    "main": "主班",
    "backup": "副班",
    "leader": "带班领导",
    "phone": "电话",
    "weekday": "星期",
}
REQUIRED_FIELDS: tuple[str, ...] = ("day", "shift", "main", "backup", "leader", "phone")
_ALIASES: Mapping[str, tuple[str, ...]] = {
    "day": ("日期", "值班日期", "date", "day"),
    "shift": ("班次", "shift"),
    "main": ("主班", "主班人员", "main", "main officer"),
    "backup": ("副班", "副班人员", "backup", "backup officer"),
    "leader": ("带班领导", "值班领导", "leader", "leader on duty"),
    "phone": ("电话", "联系电话", "值班电话", "phone", "tel", "telephone"),
    "weekday": ("星期", "weekday"),
}
HEADER_SEARCH_ROWS = 10  # the header may follow a title row or two
MAX_SHIFT_NAME = 32  # Shift.name
MAX_NAMES = 64  # Shift.main_officer / backup_officer / leader, Officer.name
MAX_PHONE = 32  # Shift.phone
NAME_SEPARATOR = "、"

ErrorCode = Literal[
    "unreadable",
    "empty_file",
    "no_header",
    "missing_column",
    "duplicate_column",
    "empty_date",
    "bad_date",
    "weekday_mismatch",
    "empty_shift",
    "unknown_shift",
    "bad_span",
    "empty_main",
    "several_main",
    "too_long",
    "bad_phone",
    "unknown_officer",
    "inactive_officer",
    "overlap",
    "overlap_stored",
]
_FILE_CODES = frozenset(
    {"unreadable", "empty_file", "no_header", "missing_column", "duplicate_column"}
)


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class RowError:
    """One problem: the row as Excel numbers it (``None``: the whole file or an edit), the
    column (its usual name, e.g. ``日期``; ``None`` for the file), a code for programs
    (``bad_date``, ``overlap`` ...; see :data:`ErrorCode`) and the message in words."""

    row: int | None
    column: str | None
    code: ErrorCode
    message: str

    def __str__(self) -> str:
        if self.row is not None:
            where = f"row {self.row}, {self.column}" if self.column else f"row {self.row}"
        elif self.code in _FILE_CODES or not self.column:
            where = "file"
        else:  # an edit in the console: no row, only the field
            where = self.column
        return f"{where}: {self.message}"


class RosterError(ValueError):
    """Problems that stop a roster change; ``errors`` names each one."""

    def __init__(self, errors: Sequence[RowError]) -> None:
        self.errors = list(errors)
        super().__init__("; ".join(str(error) for error in self.errors))


@dataclass(frozen=True, slots=True)
class ShiftRow:
    """One valid roster line: times in UTC, names normalised (several joined with ``、``)."""

    row: int | None  # as Excel numbers it; None when not from a file
    day: date
    name: str  # 班次
    starts_at: datetime
    ends_at: datetime
    main_officer: str
    backup_officer: str = ""
    leader: str = ""
    phone: str = ""

    def people(self) -> list[tuple[str, str]]:
        """``(column, name)`` for every person the line names."""
        found = [("主班", self.main_officer)]
        found += [("副班", name) for name in split_names(self.backup_officer)]
        found += [("带班领导", name) for name in split_names(self.leader)]
        return [(column, name) for column, name in found if name]


@dataclass(frozen=True, slots=True)
class RosterImport:
    """A parsed roster: the valid rows, every error, and warnings (ignored columns ...)."""

    rows: list[ShiftRow]
    errors: list[RowError]
    warnings: list[str] = field(default_factory=list)
    timezone: str = DEFAULT_TIMEZONE

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass(frozen=True, slots=True)
class StoredShift:
    """A shift stored already, as the overlap check needs it."""

    id: int
    day: date
    name: str
    starts_at: datetime
    ends_at: datetime


@dataclass(frozen=True, slots=True)
class Table:
    """Cells read from a file: ``(row number as Excel shows it, cells)``, and warnings."""

    rows: list[tuple[int, list[object]]]
    warnings: list[str] = field(default_factory=list)


def _file_error(code: ErrorCode, message: str) -> RosterError:
    return RosterError([RowError(None, None, code, message)])


# --------------------------------------------------------------------------- shift types


@dataclass(frozen=True, slots=True)
class ShiftType:
    """A named span of local time (白班 08:30–17:30); an end at or before the start is on
    the next day (夜班 17:30–08:30), an equal end a whole day later (全天 08:30–08:30)."""

    name: str
    start: time
    end: time

    @property
    def overnight(self) -> bool:
        return self.end <= self.start

    def span(self, day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
        """Start and end in UTC of this shift on ``day`` in ``zone``."""
        end_day = day + timedelta(days=1) if self.overnight else day
        starts = datetime.combine(day, self.start, tzinfo=zone)
        ends = datetime.combine(end_day, self.end, tzinfo=zone)
        return starts.astimezone(UTC), ends.astimezone(UTC)

    def __str__(self) -> str:
        return f"{self.name} ({_span_text(self.start, self.end, self.overnight)})"


def _span_text(start: time, end: time, overnight: bool) -> str:
    return f"{start:%H:%M}–{end:%H:%M}{' next day' if overnight else ''}"


DEFAULT_SHIFT_TYPES: Mapping[str, ShiftType] = {
    "白班": ShiftType("白班", time(8, 30), time(17, 30)),
    "夜班": ShiftType("夜班", time(17, 30), time(8, 30)),
    "全天": ShiftType("全天", time(8, 30), time(8, 30)),
}

_TIME = r"(\d{1,2})[:.](\d{2})"
_SPAN_RE = re.compile(
    rf"^(?P<name>.*?)\s*[(\[]?\s*{_TIME}\s*(?:-|–|—|~|至|到)\s*(?P<next>次日|翌日)?\s*{_TIME}"
    r"\s*[)\]]?$"
)


def _parse_time(hours: str, minutes: str, *, end: bool) -> time | None:
    h, m = int(hours), int(minutes)
    if end and h == 24 and m == 0:
        return time(0, 0)
    if h > 23 or m > 59:
        return None
    return time(h, m)


def _parse_span(text: str) -> tuple[str, time, time] | None:
    """``(name, start, end)`` of ``"08:00-20:00"`` / ``"早班 08:00-12:00"``; ``None`` if the
    text is no span. Raises :class:`ValueError` for a span that cannot be (25:00, > 24 h)."""
    match = _SPAN_RE.match(unicodedata.normalize("NFKC", text).strip())
    if match is None:
        return None
    _, h1, m1, next_day, h2, m2 = match.groups()
    start = _parse_time(h1, m1, end=False)
    end = _parse_time(h2, m2, end=True)
    if start is None or end is None:
        raise ValueError(f"'{text}' is not a time span: hours run 00–23, minutes 00–59")
    if next_day and end > start:
        raise ValueError(f"'{text}' is longer than 24 hours; a shift lasts at most a day")
    name = match.group("name").strip(" ()[]")
    return name, start, end


def parse_shift_types(
    spec: Mapping[str, str], *, base: Mapping[str, ShiftType] | None = None
) -> dict[str, ShiftType]:
    """The shift-type table: ``base`` (default :data:`DEFAULT_SHIFT_TYPES`) with ``spec``
    (``{"早班": "08:00-12:00"}``) added or overriding. Raises :class:`ValueError`."""
    table = dict(DEFAULT_SHIFT_TYPES if base is None else base)
    for raw_name, raw_span in spec.items():
        name = _shift_key(raw_name)
        if not name:
            raise ValueError("a shift type needs a name")
        if len(raw_name.strip()) > MAX_SHIFT_NAME:
            raise ValueError(f"shift type name '{raw_name}' is longer than {MAX_SHIFT_NAME}")
        parsed = _parse_span(raw_span)
        if parsed is None or parsed[0]:
            raise ValueError(f"shift type {raw_name}: '{raw_span}' is not a span like 08:30-17:30")
        table[name] = ShiftType(raw_name.strip(), parsed[1], parsed[2])
    return {_shift_key(key): value for key, value in table.items()}


def _shift_key(name: str) -> str:
    return "".join(unicodedata.normalize("NFKC", name).split()).lower()


def _zone(timezone: str) -> ZoneInfo:
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {timezone!r}") from exc


def shift_times(
    text: str,
    day: date,
    *,
    timezone: str = DEFAULT_TIMEZONE,
    shift_types: Mapping[str, ShiftType] | None = None,
) -> tuple[str, datetime, datetime]:
    """``(班次 name, starts_at, ends_at)`` in UTC for a 班次 cell on ``day``: a shift type's
    name or an explicit span. Raises :class:`RosterError` (for the console's edit form)."""
    try:
        return _resolve_shift(text, day, _zone(timezone), _types(shift_types))
    except _CellError as exc:
        raise RosterError([RowError(None, COLUMN_NAMES["shift"], exc.code, exc.message)]) from None


def _types(shift_types: Mapping[str, ShiftType] | None) -> dict[str, ShiftType]:
    source = DEFAULT_SHIFT_TYPES if shift_types is None else shift_types
    return {_shift_key(key): value for key, value in source.items()}


class _CellError(Exception):
    def __init__(self, code: ErrorCode, message: str) -> None:
        self.code: ErrorCode = code
        self.message = message
        super().__init__(message)


def _resolve_shift(
    text: str, day: date, zone: ZoneInfo, types: Mapping[str, ShiftType]
) -> tuple[str, datetime, datetime]:
    cell = " ".join(unicodedata.normalize("NFKC", text).split())
    if not cell:
        raise _CellError("empty_shift", "no 班次; name a shift type or a span like 08:00-20:00")
    known = types.get(_shift_key(cell))
    if known is not None:
        starts_at, ends_at = known.span(day, zone)
        return known.name, starts_at, ends_at
    try:
        parsed = _parse_span(cell)
    except ValueError as exc:
        raise _CellError("bad_span", str(exc)) from None
    if parsed is None:
        choices = ", ".join(str(t) for t in types.values())
        raise _CellError(
            "unknown_shift",
            f"unknown 班次 '{cell}'; use one of {choices}, or a span like 08:00-20:00",
        )
    name, start, end = parsed
    span = ShiftType(name or f"{start:%H:%M}-{end:%H:%M}", start, end)
    if len(span.name) > MAX_SHIFT_NAME:
        raise _CellError("too_long", f"班次 '{span.name}' is longer than {MAX_SHIFT_NAME}")
    starts_at, ends_at = span.span(day, zone)
    return span.name, starts_at, ends_at


# --------------------------------------------------------------------------- cells


_DATE_RE = re.compile(
    r"^(\d{4})\s*[-/.]\s*(\d{1,2})\s*[-/.]\s*(\d{1,2})(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?$"
)
_CN_DATE_RE = re.compile(r"^(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*[日号]?$")
_WEEKDAY_RE = re.compile(r"^(?:星期|周|礼拜)?\s*([一二三四五六日天1-7])$")
_WEEKDAY_SUFFIX_RE = re.compile(r"\s*\(?\s*((?:星期|周|礼拜)\s*[一二三四五六日天])\s*\)?$")
_WEEKDAYS = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6}
_WEEKDAY_NAMES = ("星期一", "星期二", "星期三", "星期四", "星期五", "星期六", "星期日")
_EXCEL_EPOCH = date(1899, 12, 30)
_EXCEL_SERIALS = (36526, 73415)  # 2000-01-01 .. 2100-12-31 as Excel day numbers
_DATE_HINT = "write it as 2026-11-23, 2026/11/23 or 2026年11月23日"


def _weekday_number(text: str) -> int | None:
    match = _WEEKDAY_RE.match("".join(text.split()))
    if match is None:
        return None
    key = match.group(1)
    return int(key) - 1 if key.isdigit() else _WEEKDAYS[key]


def parse_day(value: object) -> date:
    """The date in a 日期 cell; raises :class:`ValueError` with the problem in words."""
    try:
        return _parse_day(value)
    except _CellError as exc:
        raise ValueError(exc.message) from None


def _parse_day(value: object) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        # A date cell formatted as a number shows Excel's day count.
        if _EXCEL_SERIALS[0] <= value <= _EXCEL_SERIALS[1]:
            return _EXCEL_EPOCH + timedelta(days=int(value))
        raise _CellError("bad_date", f"{value!r} is not a date; {_DATE_HINT}")
    raw = " ".join(unicodedata.normalize("NFKC", str(value or "")).split())
    if not raw:
        raise _CellError("empty_date", "no date")
    text, weekday = raw, None
    suffix = _WEEKDAY_SUFFIX_RE.search(text)
    if suffix is not None and suffix.start() > 0:
        weekday = _weekday_number(suffix.group(1))
        text = text[: suffix.start()].strip()
    match = _DATE_RE.match(text) or _CN_DATE_RE.match(text)
    if match is None:
        raise _CellError("bad_date", f"'{raw}' is not a date; {_DATE_HINT}")
    year, month, day_of_month = (int(part) for part in match.groups())
    try:
        found = date(year, month, day_of_month)
    except ValueError:
        raise _CellError(
            "bad_date", f"'{raw}' is no day of the calendar ({year}, month {month}, day "
            f"{day_of_month})"
        ) from None  # fmt: skip
    if weekday is not None and weekday != found.weekday():
        raise _CellError(
            "weekday_mismatch",
            f"'{raw}': {found.isoformat()} is a {_WEEKDAY_NAMES[found.weekday()]}, "
            f"not a {_WEEKDAY_NAMES[weekday]}",
        )
    return found


def _text(value: object) -> str:
    """A cell as text: Excel's 13800000001.0 is ``13800000001``; NFKC (full-width digits,
    colons and spaces become plain ones); whitespace runs become one space."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, datetime):
        value = value.date() if value.time() == time(0) else value
    return " ".join(unicodedata.normalize("NFKC", str(value)).split())


_CJK_RE = re.compile(r"^[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f·• ]+$")
_FLOAT_NUMBER_RE = re.compile(r"^\d{5,}\.0+$")
_NAME_SPLIT_RE = re.compile(r"[、,;/\n\r]+")


def normalize_name(text: str) -> str:
    """A person's name as the roster stores and compares it: NFKC, whitespace collapsed,
    and removed inside Chinese names (``王  伟`` is padded to line up with three-character
    names in printed rosters; it is ``王伟``)."""
    name = " ".join(unicodedata.normalize("NFKC", text).split())
    if _CJK_RE.match(name):
        name = name.replace(" ", "")
    return name


def split_names(value: object) -> list[str]:
    """The names in a cell: separated by ``、 , ; /`` or new lines, or by spaces between
    Chinese names of two or more characters (``李娜 王磊``; ``王 伟`` is one name)."""
    if value is None:
        return []
    raw = unicodedata.normalize("NFKC", str(value))
    names: list[str] = []
    for part in _NAME_SPLIT_RE.split(raw):
        tokens = part.split()
        if len(tokens) > 1 and all(_CJK_RE.match(t) and len(t) >= 2 for t in tokens):
            names.extend(tokens)
        elif tokens:
            names.append(normalize_name(part))
    return names


# --------------------------------------------------------------------------- reading files


def decode_text(data: bytes) -> tuple[str, str]:
    """``(text, encoding)`` of a text file: UTF-8 (with or without BOM), UTF-16 with BOM
    (Excel's "Unicode text"), else GB18030 (which covers GBK and GB2312, what Excel on
    Chinese Windows writes as "CSV"). Raises :class:`RosterError`."""
    if data.startswith(codecs.BOM_UTF8):
        candidates = [("utf-8-sig", "UTF-8 with BOM")]
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        candidates = [("utf-16", "UTF-16")]
    else:
        # Chinese text in GB18030 is practically never valid UTF-8, so try UTF-8 first.
        candidates = [("utf-8", "UTF-8"), ("gb18030", "GB18030")]
    problem = ""
    for codec, label in candidates:
        try:
            return data.decode(codec), label
        except UnicodeDecodeError as exc:
            problem = f"byte {exc.start + 1} cannot be read as {label}"
    raise _file_error(
        "unreadable", f"the file is not UTF-8 or GB18030 text ({problem}); save it as CSV UTF-8"
    )


def read_csv(data: bytes) -> Table:
    """The records of a CSV file (encoding and separator detected), numbered from 1 like
    the rows Excel shows (a quoted cell with a line break is still one row)."""
    text, _encoding = decode_text(data)
    first_line = next((line for line in text.splitlines() if line.strip()), "")
    delimiter = max((",", "\t", ";"), key=first_line.count)
    if first_line.count(delimiter) == 0:
        delimiter = ","
    try:
        records = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error as exc:
        raise _file_error("unreadable", f"not a readable CSV file ({exc})") from None
    return Table([(number, list(cells)) for number, cells in enumerate(records, start=1)])


def read_xlsx(data: bytes, *, sheet: str | None = None) -> Table:
    """The cells of a worksheet (``sheet``, else the active one), rows numbered as Excel
    shows them; a merged range's value fills every cell of the range."""
    import openpyxl  # parsing only; kept out of the import of this module

    with warnings.catch_warnings():
        # openpyxl warns about workbook features it drops (data validation, styles ...);
        # they do not matter for reading values.
        warnings.simplefilter("ignore")
        try:
            book = openpyxl.load_workbook(io.BytesIO(data), data_only=True)
        except Exception as exc:  # any corrupt workbook: one clear message for the user
            raise _file_error(
                "unreadable", f"not a readable .xlsx workbook ({type(exc).__name__}: {exc})"
            ) from None
    notes: list[str] = []
    if sheet is not None:
        if sheet not in book.sheetnames:
            raise _file_error(
                "unreadable",
                f"no sheet named '{sheet}' (the workbook has {', '.join(book.sheetnames)})",
            )
        worksheet = book[sheet]
    else:
        active = book.active
        worksheet = active if active in book.worksheets else book.worksheets[0]
        if len(book.worksheets) > 1:
            notes.append(
                f"the workbook has {len(book.worksheets)} sheets; read '{worksheet.title}' "
                "(the active one); name another with --sheet"
            )
    grid = [list(values) for values in worksheet.iter_rows(values_only=True)]
    for merged in worksheet.merged_cells.ranges:
        value = worksheet.cell(merged.min_row, merged.min_col).value
        for row in range(merged.min_row, merged.max_row + 1):
            while len(grid) < row:
                grid.append([])
            cells = grid[row - 1]
            if len(cells) < merged.max_col:
                cells.extend([None] * (merged.max_col - len(cells)))
            for column in range(merged.min_col, merged.max_col + 1):
                cells[column - 1] = value
    book.close()
    return Table([(number, cells) for number, cells in enumerate(grid, start=1)], notes)


_XLSX_MAGIC = b"PK\x03\x04"
_XLS_MAGIC = b"\xd0\xcf\x11\xe0"


def _read_table(data: bytes, filename: str | None, sheet: str | None) -> Table:
    suffix = Path(filename).suffix.lower() if filename else ""
    if not data.strip():
        raise _file_error("empty_file", "the file is empty")
    if data.startswith(_XLS_MAGIC) or suffix == ".xls":
        raise _file_error(
            "unreadable", "this is an old Excel .xls workbook; save it as .xlsx or CSV"
        )
    if data.startswith(_XLSX_MAGIC) or suffix in (".xlsx", ".xlsm"):
        return read_xlsx(data, sheet=sheet)
    return read_csv(data)


# --------------------------------------------------------------------------- parsing


def _header_key(text: str) -> str:
    key = "".join(unicodedata.normalize("NFKC", text).split()).lower()
    return key.strip(":*").replace("_", "").replace("-", "")


_FIELD_BY_HEADER: Mapping[str, str] = {
    _header_key(alias): name for name, aliases in _ALIASES.items() for alias in aliases
}


def _column_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def parse_roster(
    source: Path | str | bytes,
    *,
    filename: str | None = None,
    timezone: str = DEFAULT_TIMEZONE,
    shift_types: Mapping[str, ShiftType] | None = None,
    officers: Collection[str] | None = None,
    sheet: str | None = None,
) -> RosterImport:
    """Read and check a roster file (a path, or its bytes; ``filename`` tells the type of
    bytes, else their content does).

    ``timezone`` is the unit's; ``shift_types`` the 班次 table (default
    :data:`DEFAULT_SHIFT_TYPES`); with ``officers``, a name not among them is an error.
    Never raises for bad content: every problem is in ``errors``.
    """
    zone = _zone(timezone)
    if isinstance(source, str):
        source = Path(source)
    if isinstance(source, Path):
        filename = filename or source.name
        try:
            data = source.read_bytes()
        except OSError as exc:
            error = RowError(None, None, "unreadable", f"cannot read {source}: {exc.strerror}")
            return RosterImport([], [error], timezone=timezone)
    else:
        data = source
    try:
        table = _read_table(data, filename, sheet)
    except RosterError as exc:
        return RosterImport([], exc.errors, timezone=timezone)
    parsed = parse_table(table.rows, timezone=zone.key, shift_types=shift_types, officers=officers)
    parsed.warnings[:0] = table.warnings
    return parsed


def parse_table(
    rows: Iterable[tuple[int, Sequence[object]]],
    *,
    timezone: str = DEFAULT_TIMEZONE,
    shift_types: Mapping[str, ShiftType] | None = None,
    officers: Collection[str] | None = None,
) -> RosterImport:
    """Check rows of cells (``(row number, cells)``, header included) as a roster."""
    zone = _zone(timezone)
    types = _types(shift_types)
    numbered = [(number, list(cells)) for number, cells in rows]
    warnings_: list[str] = []
    found = _find_header(numbered)
    if found is None:
        if not any(_text(cell) for _, cells in numbered for cell in cells):
            return _failed("empty_file", "the file has no rows", timezone)
        wanted = ", ".join(COLUMN_NAMES[name] for name in REQUIRED_FIELDS)
        return _failed(
            "no_header",
            f"no header row in the first {HEADER_SEARCH_ROWS} rows; one row must name the "
            f"columns {wanted}",
            timezone,
        )
    header_index, header_number, columns, problems = found
    for index, title in columns.pop("", []):
        warnings_.append(
            f"column {_column_letter(index)} ('{title}') is not a roster column; ignored"
        )
    missing = [name for name in REQUIRED_FIELDS if name not in columns]
    if missing:
        names = ", ".join(COLUMN_NAMES[name] for name in missing)
        problems.append(
            RowError(
                None,
                names,
                "missing_column",
                f"the header (row {header_number}) has no column {names}; the roster needs "
                + ", ".join(COLUMN_NAMES[name] for name in REQUIRED_FIELDS),
            )
        )
    if problems:
        return RosterImport([], problems, warnings_, timezone)

    position = {name: places[0][0] for name, places in columns.items()}
    unnamed_with_data: set[int] = set()
    result_rows: list[ShiftRow] = []
    errors: list[RowError] = []
    header_width = len(numbered[header_index][1])
    for number, cells in numbered[header_index + 1 :]:
        values = {
            name: cells[index] if index < len(cells) else None for name, index in position.items()
        }
        if not any(_text(value) for value in values.values()):
            continue  # a blank line
        for index in range(len(cells)):
            unnamed = index >= header_width or not _text(numbered[header_index][1][index])
            if unnamed and _text(cells[index]):
                unnamed_with_data.add(index)
        row, row_errors = _parse_row(number, values, zone, types)
        errors.extend(row_errors)
        if row is not None:
            result_rows.append(row)
    for index in sorted(unnamed_with_data):
        warnings_.append(f"column {_column_letter(index)} has no header; ignored")
    if not result_rows and not errors:
        errors.append(
            RowError(None, None, "empty_file", f"no shifts below the header (row {header_number})")
        )
    if officers is not None:
        errors.extend(check_officers(result_rows, officers))
    errors.extend(find_overlaps(result_rows, timezone=zone.key))
    return RosterImport(result_rows, sort_errors(errors), warnings_, timezone)


def _failed(code: ErrorCode, message: str, timezone: str) -> RosterImport:
    return RosterImport([], [RowError(None, None, code, message)], timezone=timezone)


_COLUMN_ORDER = {name: index for index, name in enumerate(COLUMN_NAMES.values())}


def sort_errors(errors: Iterable[RowError]) -> list[RowError]:
    """``errors`` without repeats, the file's first, then by row and column."""
    return sorted(
        dict.fromkeys(errors),
        key=lambda e: (
            -1 if e.row is None else e.row,
            _COLUMN_ORDER.get(e.column or "", len(_COLUMN_ORDER)),
        ),
    )


def _find_header(
    rows: list[tuple[int, list[object]]],
) -> tuple[int, int, dict[str, list[tuple[int, str]]], list[RowError]] | None:
    """``(index, row number, {field: [(column index, title)]}, problems)`` of the header:
    the first of the first rows naming two roster columns. Unknown titles go under ``""``."""
    for index, (number, cells) in enumerate(rows[:HEADER_SEARCH_ROWS]):
        columns: dict[str, list[tuple[int, str]]] = {}
        for column, cell in enumerate(cells):
            title = _text(cell)
            if not title:
                continue
            name = _FIELD_BY_HEADER.get(_header_key(title), "")
            columns.setdefault(name, []).append((column, title))
        if sum(1 for name in columns if name) < 2:
            continue
        problems = []
        for name, places in columns.items():
            if name and len(places) > 1:
                where = " and ".join(f"{_column_letter(i)} ('{t}')" for i, t in places)
                problems.append(
                    RowError(
                        None,
                        COLUMN_NAMES[name],
                        "duplicate_column",
                        f"columns {where} both mean {COLUMN_NAMES[name]}; keep one",
                    )
                )
        return index, number, columns, problems
    return None


def _parse_row(
    number: int | None,
    values: Mapping[str, object],
    zone: ZoneInfo,
    types: Mapping[str, ShiftType],
) -> tuple[ShiftRow | None, list[RowError]]:
    errors: list[RowError] = []

    def problem(name: str, code: ErrorCode, message: str) -> None:
        errors.append(RowError(number, COLUMN_NAMES[name], code, message))

    day: date | None = None
    try:
        day = _parse_day(values.get("day"))
    except _CellError as exc:
        problem("day", exc.code, exc.message)
    weekday_cell = _text(values.get("weekday"))
    if day is not None and weekday_cell:
        weekday = _weekday_number(weekday_cell)
        if weekday is not None and weekday != day.weekday():
            problem(
                "weekday",
                "weekday_mismatch",
                f"{day.isoformat()} is a {_WEEKDAY_NAMES[day.weekday()]}, not a "
                f"{_WEEKDAY_NAMES[weekday]}",
            )

    span: tuple[str, datetime, datetime] | None = None
    try:
        # Resolved on a stand-in day when the date is bad, to report the 班次 problem too.
        span = _resolve_shift(_text(values.get("shift")), day or date(2000, 1, 3), zone, types)
    except _CellError as exc:
        problem("shift", exc.code, exc.message)

    names, phone = _check_people(values, problem)
    if errors or day is None or span is None:
        return None, errors
    name, starts_at, ends_at = span
    row = ShiftRow(
        row=number,
        day=day,
        name=name,
        starts_at=starts_at,
        ends_at=ends_at,
        main_officer=names["main"],
        backup_officer=names["backup"],
        leader=names["leader"],
        phone=phone,
    )
    return row, []


def _check_people(
    values: Mapping[str, object], problem: Callable[[str, ErrorCode, str], None]
) -> tuple[dict[str, str], str]:
    """The normalised 主班, 副班, 带班领导 and 电话 of a row; problems reported."""
    main = split_names(values.get("main"))
    if not main:
        problem("main", "empty_main", "no 主班 (main duty officer); every shift needs one")
    elif len(main) > 1:
        problem(
            "main",
            "several_main",
            f"主班 names one person, not {len(main)} ({NAME_SEPARATOR.join(main)}); put the "
            "others under 副班",
        )
    names = {
        "main": main[0] if len(main) == 1 else "",
        "backup": NAME_SEPARATOR.join(split_names(values.get("backup"))),
        "leader": NAME_SEPARATOR.join(split_names(values.get("leader"))),
    }
    for name, text in names.items():
        if len(text) > MAX_NAMES:
            problem(name, "too_long", f"'{text}' is longer than {MAX_NAMES} characters")

    phone = _text(values.get("phone"))
    if _FLOAT_NUMBER_RE.match(phone):  # a number cell that went through a float: 138...01.0
        phone = phone.split(".")[0]
    if phone and not any(ch.isdigit() for ch in phone):
        problem("phone", "bad_phone", f"'{phone}' is not a phone number (it has no digits)")
    elif len(phone) > MAX_PHONE:
        problem("phone", "too_long", f"'{phone}' is longer than {MAX_PHONE} characters")
    return names, phone


def check_shift(
    *,
    day: date,
    name: str,
    starts_at: datetime,
    ends_at: datetime,
    main_officer: str,
    backup_officer: str = "",
    leader: str = "",
    phone: str = "",
) -> ShiftRow:
    """One shift as the console edits it, checked and normalised like a file row (times
    given, aware). Raises :class:`RosterError`."""
    errors: list[RowError] = []
    for label, moment in (("starts_at", starts_at), ("ends_at", ends_at)):
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError(f"{label} must be an aware datetime, got {moment.isoformat()}")
    shift_name = " ".join(unicodedata.normalize("NFKC", name).split())
    if not shift_name:
        errors.append(RowError(None, "班次", "empty_shift", "no 班次 name"))
    elif len(shift_name) > MAX_SHIFT_NAME:
        errors.append(
            RowError(None, "班次", "too_long", f"'{shift_name}' is longer than {MAX_SHIFT_NAME}")
        )
    if ends_at <= starts_at:
        errors.append(RowError(None, "班次", "bad_span", "the shift must end after it starts"))
    elif ends_at - starts_at > timedelta(days=1):
        errors.append(RowError(None, "班次", "bad_span", "a shift lasts at most 24 hours"))
    values = {"main": main_officer, "backup": backup_officer, "leader": leader, "phone": phone}

    def problem(name: str, code: ErrorCode, message: str) -> None:
        errors.append(RowError(None, COLUMN_NAMES[name], code, message))

    names, clean_phone = _check_people(values, problem)
    if errors:
        raise RosterError(errors)
    return ShiftRow(
        row=None,
        day=day,
        name=shift_name,
        starts_at=starts_at.astimezone(UTC),
        ends_at=ends_at.astimezone(UTC),
        main_officer=names["main"],
        backup_officer=names["backup"],
        leader=names["leader"],
        phone=clean_phone,
    )


# --------------------------------------------------------------------------- cross-row checks


def check_officers(
    rows: Iterable[ShiftRow],
    known: Collection[str],
    *,
    inactive: Collection[str] = (),
) -> list[RowError]:
    """An error for every name in 主班, 副班 or 带班领导 that is not one of ``known``
    (compared as :func:`normalize_name` does), or is one of ``inactive``."""
    known_names = {normalize_name(name) for name in known}
    inactive_names = {normalize_name(name) for name in inactive}
    errors: list[RowError] = []
    for row in rows:
        for column, name in row.people():
            if name in inactive_names:
                errors.append(
                    RowError(
                        row.row,
                        column,
                        "inactive_officer",
                        f"{name} is no longer an active officer of the unit",
                    )
                )
            elif name not in known_names:
                errors.append(
                    RowError(
                        row.row,
                        column,
                        "unknown_officer",
                        f"{name} is not an officer of the unit; check the spelling or "
                        "register the officer first",
                    )
                )
    return errors


def shift_label(
    day: date, name: str, starts_at: datetime, ends_at: datetime, zone: ZoneInfo
) -> str:
    """``2026-11-23 夜班 (17:30–08:30 next day)`` in the unit's local time."""
    start, end = starts_at.astimezone(zone), ends_at.astimezone(zone)
    times = f"{start:%H:%M}–{end:%H:%M}"
    if end.date() > start.date():
        times += " next day" if end.date() == start.date() + timedelta(days=1) else f" {end:%m-%d}"
    if start.date() != day:
        times = f"{start:%Y-%m-%d} {times}"
    if name.replace("-", "–") == f"{start:%H:%M}–{end:%H:%M}":
        return f"{day.isoformat()} {times}"
    return f"{day.isoformat()} {name} ({times})"


def _row_label(row: ShiftRow | StoredShift, zone: ZoneInfo) -> str:
    return shift_label(row.day, row.name, row.starts_at, row.ends_at, zone)


def find_overlaps(
    rows: Sequence[ShiftRow],
    stored: Iterable[StoredShift] = (),
    *,
    timezone: str = DEFAULT_TIMEZONE,
) -> list[RowError]:
    """An error for every row that overlaps another row or a ``stored`` shift (a shift
    ending exactly when the next starts is no overlap). Between two rows, the one further
    down the file gets the error, naming the other; each row gets at most one per kind."""
    zone = _zone(timezone)
    errors: list[RowError] = []
    flagged: set[int] = set()
    ordered = sorted(enumerate(rows), key=lambda item: (item[1].starts_at, item[0]))
    reach: tuple[int, ShiftRow] | None = None  # the row reaching furthest so far
    for position, row in ordered:
        if reach is not None and row.starts_at < reach[1].ends_at:
            (_, first), (later_position, later) = sorted(
                [reach, (position, row)], key=lambda item: item[0]
            )
            if later_position not in flagged:
                flagged.add(later_position)
                other = f"row {first.row}" if first.row is not None else "another shift"
                errors.append(
                    RowError(
                        later.row,
                        COLUMN_NAMES["shift"],
                        "overlap",
                        f"{_row_label(later, zone)} overlaps {other}: {_row_label(first, zone)}",
                    )
                )
        if reach is None or row.ends_at > reach[1].ends_at:
            reach = (position, row)

    stored_list = sorted(stored, key=lambda s: s.starts_at)
    days = {row.day for row in rows}
    for row in rows:
        clash = next(
            (s for s in stored_list if s.starts_at < row.ends_at and row.starts_at < s.ends_at),
            None,
        )
        if clash is None:
            continue
        hint = "; replace the stored days to overwrite it" if clash.day in days else ""
        errors.append(
            RowError(
                row.row,
                COLUMN_NAMES["shift"],
                "overlap_stored",
                f"{_row_label(row, zone)} overlaps the stored shift "
                f"{_row_label(clash, zone)}{hint}",
            )
        )
    return sort_errors(errors)
