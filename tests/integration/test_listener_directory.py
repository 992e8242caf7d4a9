"""What the listener knows of the site: the duty lines and desk phones as stored (the config
seeds them, the console edits them), re-read while it runs, on SQLite and PostgreSQL.

(A call answered by a desk phone stored but not in the config, and a desk phone added while
the listener runs: ``test_listener.py``.)
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from sqlalchemy import text, update

from callcenter.config import load_config
from callcenter.listen import SetupError, build_pipeline, refresh_directory
from callcenter.store.db import make_engine, make_session_factory, session_scope
from callcenter.store.migrate import upgrade
from callcenter.store.org import DutyLine
from callcenter.store.policy import load_tracking_directory
from callcenter.store.seed import seed_from_config
from tests.integration.test_listener import SECRET, add_desk_phone, make_config, wait_for

LINES: list[dict[str, object]] = [
    {"number": "12345", "desk_phones": ["SIP/duty1"]},
    {"number": "12346", "desk_phones": ["SIP/duty2"]},
]


def test_lines_all_switched_off_leave_the_site_configured(tmp_path: Path, db_url: str) -> None:
    """No line stored: the tracker works unconfigured (a call's line is the number dialed).
    Lines stored but all switched off in the console: configured, with no line, so no call
    is put on a line nobody monitors."""
    config = make_config(tmp_path, db_url, 5038, lines=LINES)
    engine = make_engine(db_url)
    sessions = make_session_factory(engine)
    try:
        with session_scope(sessions) as session:
            empty = load_tracking_directory(session)
            assert (empty.configured, empty.lines) == (False, ())
            seed_from_config(session, config)
            seeded = load_tracking_directory(session)
            assert seeded.configured and [line.number for line in seeded.lines] == [
                "12345",
                "12346",
            ]
            assert seeded.is_desk_phone("SIP/duty2")
            session.execute(update(DutyLine).values(active=False))
            off = load_tracking_directory(session)
            assert (off.configured, off.lines) == (True, ())
            assert off.line_for_number("12345") is None
    finally:
        engine.dispose()


def test_a_database_that_refuses_the_seeding_is_one_clear_line(tmp_path: Path) -> None:
    path = tmp_path / "callcenter.db"
    upgrade(f"sqlite:///{path}")
    url = f"sqlite:///file:{path}?mode=ro&uri=true"  # migrated, but read-only
    config = load_config(
        env={},
        overrides={
            "instance_path": str(tmp_path / "instance"),
            "database": {"url": url},
            "ami": {"pbx": [{"name": "lab", "port": 5038, "secret": SECRET}]},
            "lines": LINES,
        },
    )
    with pytest.raises(SetupError, match=r"cannot read the duty lines from .*readonly database"):
        build_pipeline(config, None)


def test_no_secret_is_refused_before_the_database_is_touched(tmp_path: Path) -> None:
    config = load_config(
        env={},
        overrides={
            "instance_path": str(tmp_path / "instance"),
            "database": {"url": f"sqlite:///{tmp_path / 'callcenter.db'}"},
            "ami": {"pbx": [{"name": "lab", "port": 5038}]},
            "lines": LINES,
        },
    )
    with pytest.raises(SetupError, match="no AMI secret for PBX lab"):
        build_pipeline(config, None)
    assert not (tmp_path / "callcenter.db").exists()


def test_the_listener_keeps_the_last_lines_read_while_the_database_cannot_be_read(
    tmp_path: Path, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="callcenter.listen")
    config = make_config(tmp_path, db_url, 5038, lines=LINES)
    pipeline = build_pipeline(config, None)
    pipeline.directory_refresh = 0.05
    (listener,) = pipeline.listeners
    engine = make_engine(db_url)

    def rename(old: str, new: str) -> None:
        with engine.begin() as connection:
            connection.execute(text(f"ALTER TABLE {old} RENAME TO {new}"))

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(refresh_directory(pipeline, stop))
        try:
            await asyncio.to_thread(rename, "desk_phones", "desk_phones_away")
            await wait_for(lambda: "cannot read the duty lines" in caplog.text)
            await asyncio.sleep(0.3)  # several failed turns: one error, the old lines kept
            assert listener.desk_phones == ("SIP/duty1", "SIP/duty2")
            assert listener.tracker.directory.is_desk_phone("SIP/duty2")
            await asyncio.to_thread(rename, "desk_phones_away", "desk_phones")
            await asyncio.to_thread(add_desk_phone, db_url, "12346", "SIP/duty3")
            await wait_for(lambda: "SIP/duty3" in listener.desk_phones)
            assert listener.tracker.directory.line_for_phone("SIP/duty3") is not None
        finally:
            stop.set()
            await asyncio.wait_for(task, timeout=5)

    try:
        asyncio.run(scenario())
    finally:
        engine.dispose()
        pipeline.close()
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "cannot read the duty lines" in errors[0], errors
    assert "the duty lines and desk phones can be read again" in caplog.text
