"""Reading roster files (值班表) the way duty rooms fill them in: every date format, the
encodings Excel writes, real XLSX date and merged cells, English aliases; and bad input,
where every problem names its row (as Excel numbers it), its column and what is wrong."""

from __future__ import annotations

import codecs
import io
from datetime import UTC, date, datetime, time
from pathlib import Path

import openpyxl
import pytest

from callcenter.roster import (
    DEFAULT_SHIFT_TYPES,
    RosterError,
    RosterImport,
    RowError,
    ShiftRow,
    StoredShift,
    check_shift,
    find_overlaps,
    normalize_name,
    parse_day,
    parse_roster,
    parse_shift_types,
    shift_times,
    split_names,
)

SAMPLES = Path(__file__).resolve().parents[2] / "docs" / "samples"
HEADER = "日期,班次,主班,副班,带班领导,电话"
OFFICERS = {"张伟", "李娜", "王磊", "刘洋", "陈静", "孙建国"}


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def csv_roster(*lines: str, header: str = HEADER, encoding: str = "utf-8") -> bytes:
    return "\r\n".join([header, *lines]).encode(encoding)


def parse_csv(*lines: str, header: str = HEADER, **kwargs: object) -> RosterImport:
    return parse_roster(csv_roster(*lines, header=header), filename="roster.csv", **kwargs)  # type: ignore[arg-type]


def xlsx_bytes(rows: list[list[object]], merges: tuple[str, ...] = ()) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    for merged in merges:
        sheet.merge_cells(merged)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def messages(parsed: RosterImport) -> list[str]:
    return [str(error) for error in parsed.errors]


# --------------------------------------------------------------------------- good input


def test_a_plain_roster_gives_shifts_in_utc_with_the_default_shift_types() -> None:
    parsed = parse_csv(
        "2026-11-23,白班,张伟,李娜,孙建国,13800000101",
        "2026-11-23,夜班,王磊,刘洋,孙建国,13800000102",
        "2026-11-24,全天,陈静,,,",
    )

    assert parsed.errors == []
    assert parsed.warnings == []
    assert parsed.rows == [
        ShiftRow(
            row=2,
            day=date(2026, 11, 23),
            name="白班",
            starts_at=utc(2026, 11, 23, 0, 30),  # 08:30 in Asia/Shanghai
            ends_at=utc(2026, 11, 23, 9, 30),
            main_officer="张伟",
            backup_officer="李娜",
            leader="孙建国",
            phone="13800000101",
        ),
        ShiftRow(
            row=3,
            day=date(2026, 11, 23),
            name="夜班",
            starts_at=utc(2026, 11, 23, 9, 30),  # 17:30 local
            ends_at=utc(2026, 11, 24, 0, 30),  # 08:30 local, next day
            main_officer="王磊",
            backup_officer="刘洋",
            leader="孙建国",
            phone="13800000102",
        ),
        ShiftRow(
            row=4,
            day=date(2026, 11, 24),
            name="全天",
            starts_at=utc(2026, 11, 24, 0, 30),
            ends_at=utc(2026, 11, 25, 0, 30),  # 24 hours
            main_officer="陈静",
        ),
    ]


@pytest.mark.parametrize(
    "cell",
    [
        "2026-11-23",
        "2026/11/23",
        "2026.11.23",
        "2026-11-23 00:00:00",  # a date cell exported with its time
        "2026年11月23日",
        "2026年11月23号",
        "2026 年 11 月 23 日",
        "２０２６年１１月２３日",  # full-width digits
        "2026年11月23日（星期一）",
        "2026-11-23 周一",
    ],
)
def test_every_date_format_duty_rooms_write(cell: str) -> None:
    assert parse_day(cell) == date(2026, 11, 23)
    parsed = parse_csv(f'"{cell}",白班,张伟,,,')
    assert parsed.errors == []
    assert parsed.rows[0].day == date(2026, 11, 23)


def test_single_digit_months_and_days() -> None:
    assert parse_day("2027/1/5") == date(2027, 1, 5)
    assert parse_day("2027年1月5日") == date(2027, 1, 5)


def test_utf8_with_and_without_bom_gb18030_and_utf16_read_alike() -> None:
    lines = ("2026-11-23,白班,张伟,李娜,孙建国,13800000101",)
    plain = csv_roster(*lines)
    variants = {
        "utf-8": plain,
        "utf-8 BOM": codecs.BOM_UTF8 + plain,
        "gb18030": csv_roster(*lines, encoding="gb18030"),
        "gbk": csv_roster(*lines, encoding="gbk"),
        "utf-16 (Excel Unicode text, tab-separated)": "\r\n".join(
            [HEADER.replace(",", "\t"), lines[0].replace(",", "\t")]
        ).encode("utf-16"),
    }
    results = {name: parse_roster(data, filename="r.csv") for name, data in variants.items()}

    for name, parsed in results.items():
        assert parsed.errors == [], name
        assert parsed.rows == results["utf-8"].rows, name
    assert results["gb18030"].rows[0].main_officer == "张伟"


def test_xlsx_with_real_date_cells_title_row_and_merged_date_cells() -> None:
    data = xlsx_bytes(
        [
            ["青山县人民政府值班室值班表"],
            ["日期", "星期", "班次", "主班", "副班", "带班领导", "电话"],
            [datetime(2026, 11, 23), "星期一", "白班", "张伟", "李娜", "孙建国", 13800000101],
            [None, None, "夜班", "王磊", "刘洋", "孙建国", 13800000102],
            [46350, "星期二", "全天", "陈静", None, None, None],  # a date shown as a number
        ],
        merges=("A1:G1", "A3:A4", "B3:B4"),
    )

    parsed = parse_roster(data, filename="roster.xlsx")

    assert parsed.errors == []
    assert [(r.row, r.day, r.name, r.main_officer, r.phone) for r in parsed.rows] == [
        (3, date(2026, 11, 23), "白班", "张伟", "13800000101"),
        (4, date(2026, 11, 23), "夜班", "王磊", "13800000102"),  # date from the merged cell
        (5, date(2026, 11, 24), "全天", "陈静", ""),
    ]


def test_xlsx_is_recognised_by_its_content_and_a_sheet_can_be_named() -> None:
    book = openpyxl.Workbook()
    first = book.active
    assert first is not None
    first.title = "说明"
    first.append(["本表每月更新"])
    second = book.create_sheet("11月")
    second.append(["日期", "班次", "主班", "副班", "带班领导", "电话"])
    second.append([date(2026, 11, 23), "白班", "张伟", "", "", ""])
    buffer = io.BytesIO()
    book.save(buffer)

    named = parse_roster(buffer.getvalue(), sheet="11月")  # no file name: detected as XLSX
    missing = parse_roster(buffer.getvalue(), sheet="12月")

    assert named.errors == []
    assert named.rows[0].day == date(2026, 11, 23)
    assert messages(missing) == ["file: no sheet named '12月' (the workbook has 说明, 11月)"]


def test_english_aliases_and_any_column_order() -> None:
    parsed = parse_csv(
        "13800000101,孙建国,李娜,张伟,day shift,2026-11-23",
        header="Phone,Leader,Backup,Main,Shift,Date",
        shift_types=parse_shift_types({"day shift": "08:30-17:30"}),
    )

    assert parsed.errors == []
    (row,) = parsed.rows
    assert (row.day, row.name, row.main_officer, row.backup_officer, row.leader, row.phone) == (
        date(2026, 11, 23),
        "day shift",
        "张伟",
        "李娜",
        "孙建国",
        "13800000101",
    )


def test_extra_columns_are_ignored_with_a_warning() -> None:
    parsed = parse_csv(
        "2026-11-23,白班,张伟,李娜,孙建国,13800000101,带班,x",
        header=HEADER + ",备注,",
    )

    assert parsed.errors == []
    assert len(parsed.rows) == 1
    assert parsed.warnings == [
        "column G ('备注') is not a roster column; ignored",
        "column H has no header; ignored",
    ]


@pytest.mark.parametrize(
    ("cell", "name", "start", "end"),
    [
        ("08:00-20:00", "08:00-20:00", utc(2026, 11, 23, 0, 0), utc(2026, 11, 23, 12, 0)),
        ("20:00-08:00", "20:00-08:00", utc(2026, 11, 23, 12, 0), utc(2026, 11, 24, 0, 0)),
        ("20:00-次日08:00", "20:00-08:00", utc(2026, 11, 23, 12, 0), utc(2026, 11, 24, 0, 0)),
        ("08：00～20：00", "08:00-20:00", utc(2026, 11, 23, 0, 0), utc(2026, 11, 23, 12, 0)),
        ("8:00至12:00", "08:00-12:00", utc(2026, 11, 23, 0, 0), utc(2026, 11, 23, 4, 0)),
        ("早班(08:00-12:00)", "早班", utc(2026, 11, 23, 0, 0), utc(2026, 11, 23, 4, 0)),
        ("00:00-24:00", "00:00-00:00", utc(2026, 11, 22, 16, 0), utc(2026, 11, 23, 16, 0)),
        (" 夜 班 ", "夜班", utc(2026, 11, 23, 9, 30), utc(2026, 11, 24, 0, 30)),
    ],
)
def test_an_explicit_span_in_the_shift_cell(
    cell: str, name: str, start: datetime, end: datetime
) -> None:
    parsed = parse_csv(f"2026-11-23,{cell},张伟,,,")

    assert parsed.errors == []
    assert (parsed.rows[0].name, parsed.rows[0].starts_at, parsed.rows[0].ends_at) == (
        name,
        start,
        end,
    )


def test_the_shift_type_table_is_configurable() -> None:
    types = parse_shift_types({"早班": "07:00-15:00", "白班": "09:00-17:00"})

    parsed = parse_csv("2026-11-23,早班,张伟,,,", "2026-11-24,白班,李娜,,,", shift_types=types)

    assert parsed.errors == []
    assert [(r.starts_at, r.ends_at) for r in parsed.rows] == [
        (utc(2026, 11, 22, 23, 0), utc(2026, 11, 23, 7, 0)),
        (utc(2026, 11, 24, 1, 0), utc(2026, 11, 24, 9, 0)),  # 白班 redefined
    ]
    assert types["夜班"] == DEFAULT_SHIFT_TYPES["夜班"]  # the other defaults stay
    with pytest.raises(ValueError, match="not a span"):
        parse_shift_types({"早班": "morning"})


def test_times_are_local_to_the_given_time_zone() -> None:
    parsed = parse_csv("2026-07-01,白班,张伟,,,", timezone="Europe/Berlin")

    assert parsed.timezone == "Europe/Berlin"
    assert parsed.rows[0].starts_at == utc(2026, 7, 1, 6, 30)  # 08:30 CEST (UTC+2)


def test_names_are_normalised_and_several_names_joined() -> None:
    parsed = parse_csv('2026-11-23,白班,王  伟,"刘洋 陈静",孙建国/李娜,"13800000101.0"')

    assert parsed.errors == []
    row = parsed.rows[0]
    assert (row.main_officer, row.backup_officer, row.leader, row.phone) == (
        "王伟",  # padded to line up with three-character names
        "刘洋、陈静",
        "孙建国、李娜",
        "13800000101",
    )
    assert normalize_name(" 王　伟 ") == "王伟"
    assert split_names("张伟、李娜，王磊") == ["张伟", "李娜", "王磊"]
    assert split_names("John Smith") == ["John Smith"]


def test_blank_lines_are_skipped_and_row_numbers_stay_those_of_the_file() -> None:
    parsed = parse_csv(",,,,,", "2026-11-23,白班,张伟,,,", "", "2026-11-23,夜班,李娜,,,")

    assert [row.row for row in parsed.rows] == [3, 5]


def test_the_sample_files_hold_the_same_week() -> None:
    from_csv = parse_roster(SAMPLES / "roster.csv", officers=None)
    from_xlsx = parse_roster(SAMPLES / "roster.xlsx")

    for parsed in (from_csv, from_xlsx):
        assert parsed.errors == []
        assert parsed.warnings == []
        assert len(parsed.rows) == 12
    strip = [
        (r.day, r.name, r.starts_at, r.ends_at, r.main_officer, r.leader) for r in from_csv.rows
    ]
    assert strip == [
        (r.day, r.name, r.starts_at, r.ends_at, r.main_officer, r.leader) for r in from_xlsx.rows
    ]
    assert from_csv.rows[0].starts_at == utc(2026, 11, 23, 0, 30)
    assert from_csv.rows[-1].ends_at == utc(2026, 11, 30, 0, 30)  # Sunday 全天 to Monday 08:30


# --------------------------------------------------------------------------- bad input


def test_a_missing_column_is_one_error_for_the_file_and_no_rows() -> None:
    parsed = parse_csv(
        "2026-11-23,白班,张伟,李娜,13800000101",
        "2026-11-23,夜班,王磊,刘洋,13800000102",
        header="日期,班次,主班,副班,电话",
    )

    assert parsed.rows == []
    assert parsed.errors == [
        RowError(
            None,
            "带班领导",
            "missing_column",
            "the header (row 1) has no column 带班领导; the roster needs 日期, 班次, 主班, 副班, "
            "带班领导, 电话",
        )
    ]
    assert messages(parsed)[0].startswith("file: the header (row 1) has no column 带班领导")


def test_a_file_without_a_header_and_a_duplicated_column() -> None:
    no_header = parse_csv("2026-11-23,白班,张伟,,,", header="a,b,c,d,e,f")
    twice = parse_csv("2026-11-23,白班,张伟,,,,x", header=HEADER + ",main")

    assert [e.code for e in no_header.errors] == ["no_header"]
    assert messages(twice) == ["file: columns C ('主班') and G ('main') both mean 主班; keep one"]


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        (
            "2026-13-01",
            "'2026-13-01' is no day of the calendar (2026, month 13, day 1)",
        ),
        ("2026-02-30", "'2026-02-30' is no day of the calendar (2026, month 2, day 30)"),
        (
            "11/23/2026",
            "'11/23/2026' is not a date; write it as 2026-11-23, 2026/11/23 or 2026年11月23日",
        ),
        ("明天", "'明天' is not a date; write it as 2026-11-23, 2026/11/23 or 2026年11月23日"),
        ("", "no date"),
        (
            "2026年11月23日（星期二）",
            "'2026年11月23日(星期二)': 2026-11-23 is a 星期一, not a 星期二",
        ),
    ],
)
def test_a_bad_date_names_its_row_and_column(cell: str, message: str) -> None:
    parsed = parse_csv("2026-11-22,白班,张伟,,,", f"{cell},夜班,李娜,,,")

    assert messages(parsed) == [f"row 3, 日期: {message}"]
    assert [row.row for row in parsed.rows] == [2]  # the good row is parsed, nothing else


def test_a_weekday_column_that_disagrees_with_the_date() -> None:
    parsed = parse_csv(
        "2026-11-23,周二,白班,张伟,,,", header="日期,星期,班次,主班,副班,带班领导,电话"
    )

    assert messages(parsed) == ["row 2, 星期: 2026-11-23 is a 星期一, not a 星期二"]


def test_unknown_shift_empty_main_officer_and_other_cell_problems() -> None:
    parsed = parse_csv(
        "2026-11-23,早班,张伟,,,",
        "2026-11-23,白班,,李娜,,",
        "2026-11-24,白班,张伟、李娜,,,",
        "2026-11-24,夜班,王磊,,,电话号码",
        "2026-11-25,08:00-25:00,王磊,,,",
        "2026-11-25,,王磊,,,",
    )

    assert messages(parsed) == [
        "row 2, 班次: unknown 班次 '早班'; use one of 白班 (08:30–17:30), 夜班 (17:30–08:30 next "
        "day), 全天 (08:30–08:30 next day), or a span like 08:00-20:00",
        "row 3, 主班: no 主班 (main duty officer); every shift needs one",
        "row 4, 主班: 主班 names one person, not 2 (张伟、李娜); put the others under 副班",
        "row 5, 电话: '电话号码' is not a phone number (it has no digits)",
        "row 6, 班次: '08:00-25:00' is not a time span: hours run 00–23, minutes 00–59",
        "row 7, 班次: no 班次; name a shift type or a span like 08:00-20:00",
    ]
    assert parsed.rows == []


def test_every_problem_of_a_row_is_reported_at_once() -> None:
    parsed = parse_csv("2026-11-31,早班,,,,")

    assert [(e.row, e.column, e.code) for e in parsed.errors] == [
        (2, "日期", "bad_date"),
        (2, "班次", "unknown_shift"),
        (2, "主班", "empty_main"),
    ]


def test_unknown_officers_when_the_known_names_are_given() -> None:
    parsed = parse_csv(
        "2026-11-23,白班,张伟,李娜,孙建国,",
        "2026-11-23,夜班,张卫,李娜、赵敏,钱局长,",
        officers=OFFICERS,
    )

    assert messages(parsed) == [
        "row 3, 主班: 张卫 is not an officer of the unit; check the spelling or register the "
        "officer first",
        "row 3, 副班: 赵敏 is not an officer of the unit; check the spelling or register the "
        "officer first",
        "row 3, 带班领导: 钱局长 is not an officer of the unit; check the spelling or register "
        "the officer first",
    ]


def test_a_shift_overlapping_another_in_the_file() -> None:
    parsed = parse_csv(
        "2026-11-23,白班,张伟,,,",
        "2026-11-23,夜班,李娜,,,",  # touches 白班 at 17:30: no overlap
        "2026-11-24,全天,王磊,,,",  # starts 08:30 when 夜班 ends: no overlap
        "2026-11-23,12:00-20:00,刘洋,,,",  # overlaps 白班 and 夜班
        "2026-11-24,白班,陈静,,,",  # inside 全天
    )

    assert messages(parsed) == [
        "row 5, 班次: 2026-11-23 12:00–20:00 overlaps row 2: 2026-11-23 白班 (08:30–17:30)",
        "row 6, 班次: 2026-11-24 白班 (08:30–17:30) overlaps row 4: 2026-11-24 全天 "
        "(08:30–08:30 next day)",
    ]


def test_the_same_shift_twice_is_an_overlap() -> None:
    parsed = parse_csv("2026-11-23,白班,张伟,,,", "2026/11/23,白班,李娜,,,")

    assert [(e.row, e.code) for e in parsed.errors] == [(3, "overlap")]


def test_overlap_with_stored_shifts() -> None:
    parsed = parse_csv("2026-11-23,白班,张伟,,,", "2026-11-23,夜班,李娜,,,")
    stored = [
        StoredShift(
            7, date(2026, 11, 22), "夜班", utc(2026, 11, 22, 9, 30), utc(2026, 11, 23, 0, 30)
        ),
        StoredShift(
            8, date(2026, 11, 23), "白班", utc(2026, 11, 23, 1, 0), utc(2026, 11, 23, 5, 0)
        ),
    ]

    errors = find_overlaps(parsed.rows, stored)

    assert [str(e) for e in errors] == [
        "row 2, 班次: 2026-11-23 白班 (08:30–17:30) overlaps the stored shift 2026-11-23 白班 "
        "(09:00–13:00); replace the stored days to overwrite it"
    ]


@pytest.mark.parametrize(
    ("data", "filename", "message"),
    [
        (b"", "roster.csv", "file: the file is empty"),
        (
            b"\xd0\xcf\x11\xe0rest",
            "roster.xls",
            "file: this is an old Excel .xls workbook; save it as .xlsx or CSV",
        ),
        (b"PK\x03\x04broken", "roster.xlsx", "file: not a readable .xlsx workbook"),
        (b"date,\xff\xff", "roster.csv", "file: the file is not UTF-8 or GB18030 text"),
    ],
)
def test_unreadable_files(data: bytes, filename: str, message: str) -> None:
    parsed = parse_roster(data, filename=filename)

    assert parsed.rows == []
    assert len(parsed.errors) == 1
    assert str(parsed.errors[0]).startswith(message)


def test_a_header_without_shifts() -> None:
    parsed = parse_csv(",,,,,")

    assert messages(parsed) == ["file: no shifts below the header (row 1)"]


def test_a_missing_file_is_an_error_not_an_exception(tmp_path: Path) -> None:
    parsed = parse_roster(tmp_path / "nope.csv")

    assert [e.code for e in parsed.errors] == ["unreadable"]


# --------------------------------------------------------------------------- console helpers


def test_shift_times_for_the_edit_form() -> None:
    assert shift_times("夜班", date(2026, 11, 23)) == (
        "夜班",
        utc(2026, 11, 23, 9, 30),
        utc(2026, 11, 24, 0, 30),
    )
    with pytest.raises(RosterError) as caught:
        shift_times("午班", date(2026, 11, 23))
    assert [e.code for e in caught.value.errors] == ["unknown_shift"]
    assert str(caught.value.errors[0]).startswith("班次: unknown 班次 '午班'")


def test_check_shift_checks_like_a_file_row() -> None:
    start = utc(2026, 11, 23, 0, 30)
    row = check_shift(
        day=date(2026, 11, 23),
        name="白班",
        starts_at=start,
        ends_at=utc(2026, 11, 23, 9, 30),
        main_officer=" 王  伟 ",
        backup_officer="刘洋 陈静",
    )
    assert (row.main_officer, row.backup_officer) == ("王伟", "刘洋、陈静")

    with pytest.raises(RosterError) as caught:
        check_shift(
            day=date(2026, 11, 23), name="", starts_at=start, ends_at=start, main_officer=""
        )
    assert [(e.column, e.code) for e in caught.value.errors] == [
        ("班次", "empty_shift"),
        ("班次", "bad_span"),
        ("主班", "empty_main"),
    ]
    with pytest.raises(ValueError, match="aware"):
        check_shift(
            day=date(2026, 11, 23),
            name="白班",
            starts_at=datetime(2026, 11, 23, 8, 30),
            ends_at=utc(2026, 11, 23, 9, 30),
            main_officer="张伟",
        )


def test_default_shift_types() -> None:
    assert {name: (t.start, t.end) for name, t in DEFAULT_SHIFT_TYPES.items()} == {
        "白班": (time(8, 30), time(17, 30)),
        "夜班": (time(17, 30), time(8, 30)),
        "全天": (time(8, 30), time(8, 30)),
    }
