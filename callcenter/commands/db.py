"""``callcenter db``: the database schema (Alembic migrations shipped in the package).

    callcenter db upgrade [--config F]   # migrate to the newest revision; prints from/to
    callcenter db check   [--config F]   # exit 1 unless at the newest revision with no drift

Run ``db upgrade`` once per release before starting ``listen``, ``worker`` and ``web`` on
PostgreSQL (they refuse a database that is not at the newest revision; an embedded SQLite
database is migrated by them on start). Running it twice is harmless: the second run finds
the database at head and changes nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

_CONFIG_OPTION = click.option(
    "--config", "config_path", type=click.Path(path_type=Path), default=None
)


@click.group("db")
def db() -> None:
    """Migrate and check the database schema."""


def _database_url(config_path: Path | None) -> str:
    from callcenter.config import ConfigError, load_config

    try:
        return load_config(config_path).database.url
    except ConfigError as exc:
        raise click.ClickException(f"bad config: {exc}") from exc


def _fail(action: str, url: str, exc: BaseException) -> click.ClickException:
    from callcenter.checks import database_error, redact_database_url

    return click.ClickException(f"{action} {redact_database_url(url)}: {database_error(exc)}")


def _database_errors() -> tuple[type[BaseException], ...]:
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    return (SQLAlchemyError, ArgumentError, OSError, ModuleNotFoundError)


@db.command("upgrade")
@_CONFIG_OPTION
def upgrade(config_path: Path | None) -> None:
    """Run the migrations up to the newest revision (prints from and to which)."""
    from callcenter.checks import redact_database_url
    from callcenter.store.migrate import current_revision, head_revision
    from callcenter.store.migrate import upgrade as run_upgrade

    url = _database_url(config_path)
    shown = redact_database_url(url)
    head = head_revision()
    errors = _database_errors()
    try:
        before = current_revision(url)
    except errors as exc:
        raise _fail("cannot connect to", url, exc) from exc
    if before == head:
        click.echo(f"database {shown}: already at revision {head} (head); nothing to do")
        return
    click.echo(f"database {shown}: upgrading from {before or 'none (empty)'} to {head} …")
    try:
        run_upgrade(url)
        after = current_revision(url)
    except errors as exc:
        raise _fail("migration failed on", url, exc) from exc
    click.echo(f"database {shown}: upgraded from {before or 'none (empty)'} to {after}")


@db.command("check")
@_CONFIG_OPTION
def check(config_path: Path | None) -> None:
    """Exit 1 unless the database is at the newest revision and matches the models."""
    from callcenter.checks import redact_database_url
    from callcenter.store.migrate import check_drift, head_revision

    url = _database_url(config_path)
    shown = redact_database_url(url)
    problems: list[Any]
    try:
        problems = check_drift(url)
    except _database_errors() as exc:
        raise _fail("cannot check", url, exc) from exc
    if problems:
        for problem in problems:
            click.echo(f"database {shown}: {problem}")
        click.echo(
            f"database {shown}: {len(problems)} difference(s) from the models; "
            "run `callcenter db upgrade` (or add the missing migration)",
            err=True,
        )
        raise SystemExit(1)
    click.echo(f"database {shown}: at revision {head_revision()} (head), models match")
