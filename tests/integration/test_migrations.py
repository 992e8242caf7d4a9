"""Alembic migrations build the schema on SQLite and PostgreSQL and match the models."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import Column, Engine, Integer, MetaData, func, inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from callcenter.store import migrate
from callcenter.store.db import make_session_factory, session_scope
from callcenter.store.duty import Incident, IncidentReport
from callcenter.store.migrate import check_drift, current_revision, head_revision, upgrade
from callcenter.store.models import NAMING_CONVENTION, Base, Call, CallLeg
from callcenter.store.org import Unit


def test_upgrade_creates_the_schema_at_head(migrated_engine: Engine) -> None:
    inspector = inspect(migrated_engine)

    assert {"alembic_version", "calls", "call_legs", "outages"} <= set(inspector.get_table_names())
    assert current_revision(migrated_engine.url) == head_revision()
    unique = {c["name"] for c in inspector.get_unique_constraints("calls")}
    assert "uq_calls_pbx_linkedid" in unique
    indexes = {i["name"] for i in inspector.get_indexes("calls")}
    assert {"ix_calls_started_at", "ix_calls_line_started_at", "ix_calls_outcome"} <= indexes
    foreign = inspector.get_foreign_keys("call_legs")
    assert [(f["name"], f["referred_table"], f["options"].get("ondelete")) for f in foreign] == [
        ("fk_call_legs_call_id_calls", "calls", "CASCADE")
    ]


def test_models_and_migrations_do_not_drift(migrated_engine: Engine) -> None:
    assert check_drift(migrated_engine.url) == []


def test_upgrade_twice_is_harmless(db_url: str) -> None:
    upgrade(db_url)
    upgrade(db_url)

    assert current_revision(db_url) == head_revision()
    assert check_drift(db_url) == []


def test_drift_is_reported_when_the_models_gain_a_column(migrated_engine: Engine) -> None:
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    for table in Base.metadata.sorted_tables:
        table.to_metadata(metadata)
    metadata.tables["calls"].append_column(Column("extra_flag", Integer, nullable=True))

    assert check_drift(migrated_engine.url, metadata) == ["add_column: calls.extra_flag INTEGER"]


def test_an_unmigrated_database_is_reported(db_url: str) -> None:
    problems = check_drift(db_url)

    assert problems[0] == f"database is at revision None, the scripts' head is {head_revision()}"
    assert "add_table: calls" in problems


def test_rebuilding_a_table_in_a_migration_keeps_the_rows_pointing_to_it(
    migrated_engine: Engine, db_backend: str
) -> None:
    if db_backend != "sqlite":
        pytest.skip("only SQLite rebuilds tables to alter them")
    with session_scope(make_session_factory(migrated_engine)) as session:
        call = Call(
            linkedid="1795432842.106",
            direction="inbound",
            outcome="no_answer",
            closed_by="hangup",
        )
        call.legs = [
            CallLeg(uniqueid=f"1795432842.10{i}", channel=channel, endpoint=endpoint, role=role)
            for i, (channel, endpoint, role) in enumerate(
                [
                    ("SIP/pstn-00000001", "SIP/pstn", "caller"),
                    ("SIP/duty1-00000002", "SIP/duty1", "callee"),
                ]
            )
        ]
        session.add(call)

    # What a batch migration does on SQLite: copy calls, drop the old table, rename.
    with migrate._connection(migrated_engine.url, migrating=True) as connection:
        operations = Operations(MigrationContext.configure(connection))
        with operations.batch_alter_table("calls", recreate="always") as batch:
            batch.add_column(Column("extra_flag", Integer, nullable=True))

    with migrated_engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(CallLeg)) == 2


def test_the_outbox_sweep_reads_partial_indexes_of_unevaluated_rows(
    migrated_engine: Engine,
) -> None:
    inspector = inspect(migrated_engine)
    for table in ("calls", "device_events"):
        (index,) = [
            i for i in inspector.get_indexes(table) if i["name"] == f"ix_{table}_unevaluated"
        ]
        assert index["column_names"] == ["created_at"]
        where = next(v for k, v in index.get("dialect_options", {}).items() if k.endswith("_where"))
        assert "evaluated_at is null" in str(where).lower()


def test_an_incident_has_one_first_report_at_most(migrated_engine: Engine) -> None:
    """Two first reports stored at once (two officers, one moment): the database keeps one."""
    at = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
    with Session(migrated_engine) as session:
        unit = Unit(name="一县")
        session.add(unit)
        session.flush()
        incident = Incident(unit_id=unit.id, title="t", occurred_at=at, report_due_at=at)
        session.add(incident)
        session.flush()
        session.add(IncidentReport(incident_id=incident.id, kind="first", reported_at=at))
        session.add(IncidentReport(incident_id=incident.id, kind="follow_up", reported_at=at))
        session.add(IncidentReport(incident_id=incident.id, kind="follow_up", reported_at=at))
        session.commit()
        session.add(IncidentReport(incident_id=incident.id, kind="first", reported_at=at))
        with pytest.raises(IntegrityError):
            session.commit()
