"""The stored roster on SQLite and PostgreSQL: imports are all or nothing, each problem is
named per row, and :func:`shift_for` finds the shift an instant fell in."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from callcenter.commands.roster import roster
from callcenter.roster import RosterError, RosterImport, parse_roster
from callcenter.store.db import make_session_factory, session_scope
from callcenter.store.duty import Shift
from callcenter.store.org import Officer, Unit
from callcenter.store.roster import (
    UnknownUnit,
    add_shift,
    delete_shift,
    import_roster,
    shift_for,
    shifts_between,
    update_shift,
)

SAMPLES = Path(__file__).resolve().parents[2] / "docs" / "samples"
SAMPLE_CSV = SAMPLES / "roster.csv"
SAMPLE_XLSX = SAMPLES / "roster.xlsx"
UNIT = "青山县人民政府"
SAMPLE_PEOPLE = (
    *("张伟", "李娜", "王磊", "刘洋", "陈静", "杨帆", "赵敏", "黄志强"),
    *("周婷", "吴涛", "徐丽", "孙浩", "孙建国", "马晓东", "胡立新", "郑永红"),
)
SHANGHAI = ZoneInfo("Asia/Shanghai")
HEADER = "日期,班次,主班,副班,带班领导,电话"


def local(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, us, tzinfo=SHANGHAI)


def make_unit(session: Session, name: str = UNIT, people: tuple[str, ...] = SAMPLE_PEOPLE) -> Unit:
    unit = Unit(name=name)
    session.add(unit)
    session.flush()
    session.add_all(Officer(unit_id=unit.id, name=person) for person in people)
    session.flush()
    return unit


def count(session: Session, model: type[Shift | Officer], unit: Unit | None = None) -> int:
    query = select(func.count()).select_from(model)
    if unit is not None:
        query = query.where(model.unit_id == unit.id)
    return session.scalar(query) or 0


def parse_text(*lines: str, header: str = HEADER) -> RosterImport:
    return parse_roster("\n".join([header, *lines]).encode("utf-8"), filename="roster.csv")


def stored_rows(session: Session, unit: Unit) -> list[tuple[object, ...]]:
    shifts = session.scalars(
        select(Shift).where(Shift.unit_id == unit.id).order_by(Shift.starts_at)
    ).all()
    return [(s.day, s.name, s.starts_at, s.ends_at, s.main_officer) for s in shifts]


# --------------------------------------------------------------------------- import


@pytest.mark.parametrize("sample", [SAMPLE_CSV, SAMPLE_XLSX], ids=["csv", "xlsx"])
def test_the_sample_roster_imports_whole(session: Session, sample: Path) -> None:
    unit = make_unit(session)

    result = import_roster(session, unit.id, parse_roster(sample))

    assert result.errors == []
    assert (result.added, result.updated, result.removed) == (12, 0, 0)
    assert (result.first_day, result.last_day) == (date(2026, 11, 23), date(2026, 11, 29))
    session.expire_all()
    first = session.scalars(select(Shift).order_by(Shift.starts_at)).first()
    assert first is not None
    assert (
        first.day,
        first.name,
        first.starts_at,
        first.ends_at,
        first.main_officer,
        first.backup_officer,
        first.leader,
        first.phone,
    ) == (
        date(2026, 11, 23),
        "白班",
        datetime(2026, 11, 23, 0, 30, tzinfo=UTC),  # stored UTC, read back aware
        datetime(2026, 11, 23, 9, 30, tzinfo=UTC),
        "张伟",
        "李娜",
        "孙建国",
        "13800000101",
    )
    assert count(session, Shift, unit) == 12


# Each bad file has good rows too: nothing of it may be stored.
BAD_FILES = {
    "missing column": (
        ["2026-11-23,白班,张伟,李娜,13800000101", "2026-11-23,夜班,王磊,刘洋,13800000103"],
        "日期,班次,主班,副班,电话",
        [(None, "带班领导", "missing_column")],
    ),
    "bad date": (
        ["2026-11-23,白班,张伟,李娜,孙建国,", "2026-11-31,夜班,王磊,刘洋,孙建国,"],
        HEADER,
        [(3, "日期", "bad_date")],
    ),
    "unknown officer": (
        ["2026-11-23,白班,张伟,李娜,孙建国,", "2026-11-23,夜班,王蕾,刘洋,孙局长,"],
        HEADER,
        [(3, "主班", "unknown_officer"), (3, "带班领导", "unknown_officer")],
    ),
    "overlap in the file": (
        [
            "2026-11-23,白班,张伟,李娜,孙建国,",
            "2026-11-23,夜班,王磊,刘洋,孙建国,",
            "2026-11-23,16:00-20:00,陈静,,孙建国,",
        ],
        HEADER,
        [(4, "班次", "overlap")],
    ),
    "overlap with a stored shift": (
        # The stored 2026-11-22 夜班 runs to 2026-11-23 08:30.
        ["2026-11-23,08:00-12:00,张伟,李娜,孙建国,", "2026-11-23,夜班,王磊,刘洋,孙建国,"],
        HEADER,
        [(2, "班次", "overlap_stored")],
    ),
    "empty main officer": (
        ["2026-11-23,白班,张伟,李娜,孙建国,", "2026-11-23,夜班,,刘洋,孙建国,"],
        HEADER,
        [(3, "主班", "empty_main")],
    ),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_rows_are_named_and_nothing_is_half_imported(session: Session, case: str) -> None:
    lines, header, expected = BAD_FILES[case]
    unit = make_unit(session)
    stored = import_roster(session, unit.id, parse_text("2026-11-22,夜班,赵敏,黄志强,马晓东,"))
    assert stored.added == 1
    before = (stored_rows(session, unit), count(session, Officer, unit))

    result = import_roster(
        session, unit.id, parse_text(*lines, header=header), create_officers=False
    )

    assert [(e.row, e.column, e.code) for e in result.errors] == expected
    assert all(str(e).startswith(f"row {e.row}, {e.column}: ") for e in result.errors if e.row)
    assert not result.written
    session.expire_all()
    assert (stored_rows(session, unit), count(session, Officer, unit)) == before


def test_every_problem_of_a_file_is_reported_in_one_go(session: Session) -> None:
    unit = make_unit(session)
    import_roster(session, unit.id, parse_text("2026-11-23,白班,张伟,,,"))

    result = import_roster(
        session,
        unit.id,
        parse_text(
            "2026-11-23,12:00-13:00,李娜,,,",  # row 2: overlaps the stored 白班
            "2026-11-24,午班,王磊,,,",  # row 3: unknown 班次
            "2026-11-25,白班,无名氏,,,",  # row 4: unknown officer
        ),
    )

    assert [str(e) for e in result.errors] == [
        "row 2, 班次: 2026-11-23 12:00–13:00 overlaps the stored shift 2026-11-23 白班 "
        "(08:30–17:30); replace the stored days to overwrite it",
        "row 3, 班次: unknown 班次 '午班'; use one of 白班 (08:30–17:30), 夜班 (17:30–08:30 "
        "next day), 全天 (08:30–08:30 next day), or a span like 08:00-20:00",
        "row 4, 主班: 无名氏 is not an officer of the unit; check the spelling or register the "
        "officer first",
    ]
    assert count(session, Shift, unit) == 1


def test_replace_overwrites_the_days_in_the_file_and_keeps_the_others(session: Session) -> None:
    unit = make_unit(session)
    import_roster(session, unit.id, parse_roster(SAMPLE_CSV))
    ids_before = {s.starts_at: s.id for s in shifts_between(session, unit.id, *WEEK)}

    again = import_roster(session, unit.id, parse_roster(SAMPLE_CSV))
    assert {e.code for e in again.errors} == {"overlap_stored"}
    assert len(again.errors) == 12

    replaced = import_roster(session, unit.id, parse_roster(SAMPLE_CSV), replace=True)
    assert (replaced.added, replaced.updated, replaced.removed) == (0, 12, 0)
    assert {s.starts_at: s.id for s in shifts_between(session, unit.id, *WEEK)} == ids_before

    # Tuesday becomes one 全天 shift: 白班 is updated in place (same start), 夜班 removed.
    changed = import_roster(
        session, unit.id, parse_text("2026-11-24,全天,陈静,杨帆,马晓东,"), replace=True
    )
    assert changed.errors == []
    assert (changed.added, changed.updated, changed.removed) == (0, 1, 1)
    session.expire_all()
    tuesday = [row for row in stored_rows(session, unit) if row[0] == date(2026, 11, 24)]
    assert tuesday == [
        (
            date(2026, 11, 24),
            "全天",
            datetime(2026, 11, 24, 0, 30, tzinfo=UTC),
            datetime(2026, 11, 25, 0, 30, tzinfo=UTC),
            "陈静",
        )
    ]
    assert count(session, Shift, unit) == 11


WEEK = (datetime(2026, 11, 22, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))


def test_replace_still_refuses_an_overlap_with_another_day(session: Session) -> None:
    unit = make_unit(session)
    import_roster(session, unit.id, parse_text("2026-11-22,夜班,赵敏,,,"))

    result = import_roster(
        session, unit.id, parse_text("2026-11-23,08:00-12:00,张伟,,,"), replace=True
    )

    assert [(e.row, e.code) for e in result.errors] == [(2, "overlap_stored")]
    assert "replace" not in result.errors[0].message  # replacing 11-23 would not help
    assert count(session, Shift, unit) == 1


def test_dry_run_checks_and_writes_nothing(session: Session) -> None:
    unit = make_unit(session)

    result = import_roster(session, unit.id, parse_roster(SAMPLE_CSV), dry_run=True)

    assert (result.ok, result.written, result.added) == (True, False, 12)
    assert count(session, Shift, unit) == 0


def test_new_names_can_be_registered_as_officers(session: Session) -> None:
    unit = make_unit(session, people=())

    refused = import_roster(session, unit.id, parse_roster(SAMPLE_CSV))
    assert {e.code for e in refused.errors} == {"unknown_officer"}
    assert count(session, Officer, unit) == 0

    result = import_roster(session, unit.id, parse_roster(SAMPLE_CSV), create_officers=True)
    assert result.errors == []
    assert sorted(result.officers_added) == sorted(SAMPLE_PEOPLE)
    assert count(session, Officer, unit) == len(SAMPLE_PEOPLE)
    assert count(session, Shift, unit) == 12


def test_an_inactive_officer_is_refused(session: Session) -> None:
    unit = make_unit(session, people=("张伟",))
    session.add(Officer(unit_id=unit.id, name="李娜", active=False))
    session.flush()

    result = import_roster(session, unit.id, parse_text("2026-11-23,白班,张伟,李娜,,"))

    assert [str(e) for e in result.errors] == [
        "row 2, 副班: 李娜 is no longer an active officer of the unit"
    ]


def test_officers_of_another_unit_do_not_count(session: Session) -> None:
    make_unit(session, "白石镇人民政府", people=("张伟",))
    unit = make_unit(session, people=())

    result = import_roster(session, unit.id, parse_text("2026-11-23,白班,张伟,,,"))

    assert [e.code for e in result.errors] == ["unknown_officer"]


def test_shifts_of_another_unit_do_not_overlap(session: Session) -> None:
    other = make_unit(session, "白石镇人民政府")
    unit = make_unit(session)
    import_roster(session, other.id, parse_roster(SAMPLE_CSV))

    result = import_roster(session, unit.id, parse_roster(SAMPLE_CSV))

    assert result.errors == []
    assert count(session, Shift) == 24


def test_wrong_unit_or_time_zone(session: Session) -> None:
    unit = make_unit(session)
    with pytest.raises(UnknownUnit):
        import_roster(session, unit.id + 1000, parse_roster(SAMPLE_CSV))
    berlin = parse_roster(SAMPLE_CSV, timezone="Europe/Berlin")
    with pytest.raises(ValueError, match="read in Europe/Berlin"):
        import_roster(session, unit.id, berlin)


def test_two_imports_of_one_unit_run_one_after_the_other(migrated_engine: Engine) -> None:
    """The second import waits for the first to commit, then sees its shifts: it must not
    pass the overlap check on a snapshot from before and store the week twice."""
    factory = make_session_factory(migrated_engine)
    with session_scope(factory) as setup:
        unit_id = make_unit(setup).id
    parsed = parse_roster(SAMPLE_CSV)
    second: dict[str, object] = {}

    def import_second() -> None:
        with session_scope(factory) as other:
            result = import_roster(other, unit_id, parsed)
            second["codes"] = {e.code for e in result.errors}
            second["finished"] = time.monotonic()

    with session_scope(factory) as first:
        assert import_roster(first, unit_id, parsed).added == 12
        thread = threading.Thread(target=import_second)
        thread.start()
        thread.join(timeout=1.0)
        assert thread.is_alive()  # waiting for the first import's lock
        committed = time.monotonic()
    thread.join(timeout=60)

    assert not thread.is_alive()
    assert second["codes"] == {"overlap_stored"}
    assert second["finished"] >= committed  # type: ignore[operator]
    with session_scope(factory) as check:
        assert count(check, Shift) == 12


# --------------------------------------------------------------------------- shift_for


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (local(2026, 11, 23, 8, 29, 59), None),  # before the first shift
        (local(2026, 11, 23, 8, 30), ("白班", date(2026, 11, 23))),  # start inclusive
        (local(2026, 11, 23, 17, 29, 59, 999999), ("白班", date(2026, 11, 23))),
        (local(2026, 11, 23, 17, 30), ("夜班", date(2026, 11, 23))),  # end exclusive
        (local(2026, 11, 23, 23, 59, 59), ("夜班", date(2026, 11, 23))),
        (local(2026, 11, 24, 0, 0), ("夜班", date(2026, 11, 23))),  # across midnight
        (local(2026, 11, 24, 8, 29), ("夜班", date(2026, 11, 23))),
        (local(2026, 11, 24, 8, 30), ("白班", date(2026, 11, 24))),
        (local(2026, 11, 28, 3, 0), ("夜班", date(2026, 11, 27))),  # Friday night
        (local(2026, 11, 29, 8, 29), ("全天", date(2026, 11, 28))),  # Saturday 全天
        (local(2026, 11, 30, 8, 29), ("全天", date(2026, 11, 29))),
        (local(2026, 11, 30, 8, 30), None),  # after the last shift
        (datetime(2026, 11, 23, 0, 30, tzinfo=UTC), ("白班", date(2026, 11, 23))),
    ],
)
def test_shift_for_an_instant(
    session: Session, at: datetime, expected: tuple[str, date] | None
) -> None:
    unit = make_unit(session)
    import_roster(session, unit.id, parse_roster(SAMPLE_CSV))

    found = shift_for(session, unit.id, at)

    assert (None if found is None else (found.name, found.day)) == expected


def test_shift_for_in_a_gap_and_for_another_unit(session: Session) -> None:
    unit = make_unit(session)
    other = make_unit(session, "白石镇人民政府")
    import_roster(
        session, unit.id, parse_text("2026-11-23,白班,张伟,,,", "2026-11-25,白班,李娜,,,")
    )

    assert shift_for(session, unit.id, local(2026, 11, 24, 12, 0)) is None  # the gap
    assert shift_for(session, other.id, local(2026, 11, 23, 12, 0)) is None
    found = shift_for(session, unit.id, local(2026, 11, 25, 12, 0))
    assert found is not None and found.main_officer == "李娜"
    with pytest.raises(ValueError, match="naive"):
        shift_for(session, unit.id, datetime(2026, 11, 23, 12, 0))


# --------------------------------------------------------------------------- edits


def test_add_update_delete_with_the_import_checks(session: Session) -> None:
    unit = make_unit(session)
    day = date(2026, 11, 23)
    shift = add_shift(
        session,
        unit.id,
        day=day,
        name="白班",
        starts_at=local(2026, 11, 23, 8, 30),
        ends_at=local(2026, 11, 23, 17, 30),
        main_officer="张伟",
        backup_officer="李娜",
        leader="孙建国",
    ).shift
    assert shift.id is not None
    assert shift_for(session, unit.id, local(2026, 11, 23, 9, 0)) is shift

    with pytest.raises(RosterError) as overlapping:
        add_shift(
            session,
            unit.id,
            day=day,
            name="午班",
            starts_at=local(2026, 11, 23, 12, 0),
            ends_at=local(2026, 11, 23, 14, 0),
            main_officer="王磊",
        )
    assert [str(e) for e in overlapping.value.errors] == [
        "班次: 2026-11-23 午班 (12:00–14:00) overlaps the stored shift 2026-11-23 白班 "
        "(08:30–17:30); replace the stored days to overwrite it"
    ]
    with pytest.raises(RosterError) as stranger:
        add_shift(
            session,
            unit.id,
            day=day,
            name="夜班",
            starts_at=local(2026, 11, 23, 17, 30),
            ends_at=local(2026, 11, 24, 8, 30),
            main_officer="路人甲",
        )
    assert [(e.column, e.code) for e in stranger.value.errors] == [("主班", "unknown_officer")]
    assert count(session, Shift, unit) == 1

    # Changing the officer keeps the times: the shift does not overlap itself.
    update_shift(session, shift.id, main_officer="王  磊")
    assert shift.main_officer == "王磊"
    update_shift(session, shift.id, ends_at=local(2026, 11, 23, 18, 0))
    night = add_shift(
        session,
        unit.id,
        day=day,
        name="夜班",
        starts_at=local(2026, 11, 23, 18, 0),
        ends_at=local(2026, 11, 24, 8, 30),
        main_officer="刘洋",
    ).shift
    with pytest.raises(RosterError) as late:
        update_shift(session, shift.id, ends_at=local(2026, 11, 23, 19, 0))
    assert [e.code for e in late.value.errors] == ["overlap_stored"]
    session.refresh(shift)
    assert shift.ends_at == local(2026, 11, 23, 18, 0)

    assert delete_shift(session, night.id) is True
    assert delete_shift(session, night.id) is False
    assert shift_for(session, unit.id, local(2026, 11, 23, 20, 0)) is None


def test_editing_a_shift_of_an_officer_who_left(session: Session) -> None:
    unit = make_unit(session)
    import_roster(session, unit.id, parse_text("2026-11-23,白班,张伟,,,"))
    for officer in session.scalars(select(Officer).where(Officer.name.in_(["张伟", "李娜"]))):
        officer.active = False
    shift = session.scalars(select(Shift).where(Shift.unit_id == unit.id)).one()

    update_shift(session, shift.id, phone="13800000101")  # the stored name stays acceptable

    assert shift.phone == "13800000101"
    with pytest.raises(RosterError):
        update_shift(session, shift.id, backup_officer="李娜")  # but no new one who left


# --------------------------------------------------------------------------- the command


@pytest.fixture
def cli_db(migrated_engine: Engine, db_url: str, tmp_path: Path) -> Iterator[tuple[Path, Engine]]:
    """A migrated database with the sample's unit and officers, and a config naming it."""
    with session_scope(make_session_factory(migrated_engine)) as session:
        make_unit(session)
    config = tmp_path / "callcenter.toml"
    config.write_text(f"[database]\nurl = {db_url!r}\n".replace("'", '"'), encoding="utf-8")
    yield config, migrated_engine


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(roster, [str(arg) for arg in args], catch_exceptions=False)


def stored_count(engine: Engine) -> int:
    with session_scope(make_session_factory(engine)) as session:
        return count(session, Shift)


def test_command_imports_the_sample_and_shows_it(cli_db: tuple[Path, Engine]) -> None:
    config, engine = cli_db

    result = run("import", SAMPLE_XLSX, "--unit", UNIT, "--config", config)

    assert result.exit_code == 0, result.output
    assert result.stdout == (
        f"roster.xlsx: imported 12 shift(s) for {UNIT} (2026-11-23 to 2026-11-29)\n"
    )
    assert stored_count(engine) == 12

    shown = run("show", "--unit", UNIT, "--date", "2026-11-23", "--config", config)
    assert shown.exit_code == 0, shown.output
    assert shown.stdout.splitlines() == [
        f"{UNIT} 2026-11-23 (Asia/Shanghai)",
        "日期        班次  时间             主班  副班  带班领导  电话",
        "2026-11-23  白班  08:30–17:30      张伟  李娜  孙建国    13800000101",
        "2026-11-23  夜班  17:30–次日08:30  王磊  刘洋  孙建国    13800000103",
    ]


def test_command_prints_one_line_per_problem_and_exits_1(
    cli_db: tuple[Path, Engine], tmp_path: Path
) -> None:
    config, engine = cli_db
    bad = tmp_path / "bad.csv"
    bad.write_bytes(
        "\n".join(
            [
                HEADER,
                "2026-11-23,白班,张伟,李娜,孙建国,",
                "2026/11/32,夜班,王磊,刘洋,孙建国,",
                "2026-11-24,白班,王蕾,,孙建国,",
                "2026-11-24,全天,陈静,,孙建国,",
            ]
        ).encode("gb18030")
    )

    result = run("import", bad, "--unit", UNIT, "--config", config)

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "row 3, 日期: '2026/11/32' is no day of the calendar (2026, month 11, day 32)",
        "row 4, 主班: 王蕾 is not an officer of the unit; check the spelling or register the "
        "officer first",
        "row 5, 班次: 2026-11-24 全天 (08:30–08:30 next day) overlaps row 4: 2026-11-24 白班 "
        "(08:30–17:30)",
        f"bad.csv: 3 problem(s); nothing imported for {UNIT}",
        "hint: --add-officers registers the names the unit does not know yet",
    ]
    assert stored_count(engine) == 0


def test_command_missing_column_dry_run_and_unknown_unit(
    cli_db: tuple[Path, Engine], tmp_path: Path
) -> None:
    config, engine = cli_db
    no_leader = tmp_path / "no_leader.csv"
    no_leader.write_text("日期,班次,主班,副班,电话\n2026-11-23,白班,张伟,李娜,\n", "utf-8")

    missing = run("import", no_leader, "--unit", UNIT, "--config", config)
    dry = run("import", SAMPLE_CSV, "--unit", UNIT, "--config", config, "--dry-run")
    unknown = run("import", SAMPLE_CSV, "--unit", "无此单位", "--config", config)

    assert missing.exit_code == 1
    assert missing.stderr.splitlines()[0] == (
        "file: the header (row 1) has no column 带班领导; the roster needs 日期, 班次, 主班, "
        "副班, 带班领导, 电话"
    )
    assert dry.exit_code == 0, dry.output
    assert dry.stdout == (
        f"roster.csv: would import 12 shift(s) for {UNIT} (2026-11-23 to 2026-11-29); "
        "dry run, nothing stored\n"
    )
    assert unknown.exit_code == 1
    assert f"no unit named '无此单位' (units: {UNIT})" in unknown.stderr
    assert stored_count(engine) == 0


def test_command_replace_add_officers_and_shift_types(
    cli_db: tuple[Path, Engine], tmp_path: Path
) -> None:
    config, engine = cli_db
    first = run("import", SAMPLE_CSV, "--unit", UNIT, "--config", config)
    assert first.exit_code == 0, first.output
    monday = tmp_path / "monday.csv"
    monday.write_text(f"{HEADER}\n2026-11-23,早班,新同志,,孙建国,\n", "utf-8")

    replaced = run(
        "import",
        monday,
        "--unit",
        UNIT,
        "--config",
        config,
        "--replace",
        "--add-officers",
        "--shift-type",
        "早班=08:30-20:30",
    )

    assert replaced.exit_code == 0, replaced.output
    assert replaced.stdout == (
        f"monday.csv: imported 1 shift(s) for {UNIT} (2026-11-23 to 2026-11-23); 1 replaced "
        "in place, 1 removed; officers added: 新同志\n"
    )
    assert stored_count(engine) == 11
    bad_type = run("import", monday, "--unit", UNIT, "--config", config, "--shift-type", "早班")
    assert bad_type.exit_code == 2
    assert "NAME=HH:MM-HH:MM" in bad_type.stderr


def test_command_migrates_a_fresh_sqlite_database(tmp_path: Path) -> None:
    config = tmp_path / "callcenter.toml"
    database = tmp_path / "instance" / "callcenter.db"
    config.write_text(f'[database]\nurl = "sqlite:///{database.as_posix()}"\n', "utf-8")

    result = run("show", "--unit", UNIT, "--config", config)

    assert result.exit_code == 1
    assert f"no unit named '{UNIT}' (no units are stored yet)" in result.stderr
    assert database.exists()


def test_show_defaults_to_a_week_from_today(cli_db: tuple[Path, Engine]) -> None:
    config, _engine = cli_db
    today = datetime.now(SHANGHAI).date()

    result = run("show", "--unit", UNIT, "--config", config)

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"{UNIT} {today.isoformat()} – {(today + timedelta(days=6)).isoformat()} (Asia/Shanghai)",
        "no shifts",
    ]
