"""``callcenter user``: console accounts from the command line (the first admin, resets).

    callcenter user create admin --role admin
    callcenter user create li.wei --role officer --unit "甲县 County A" --name "李伟"
    printf '%s\\n' "$PASSWORD" | callcenter user create bot --role officer --unit X --password-stdin
    callcenter user set-password li.wei
    callcenter user list

Passwords are never command-line arguments (they would land in the shell history and in
``ps``): they are asked for twice on a terminal, or read from the first line of stdin with
``--password-stdin``. Every change is written to the audit trail (by "system").
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import click

ROLE_NAMES = ("officer", "unit_admin", "inspector", "admin")
USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{1,63}$")


def _config(config_path: Path | None) -> Any:
    from callcenter.config import ConfigError, load_config

    try:
        return load_config(config_path)
    except ConfigError as exc:
        raise click.ClickException(f"bad config: {exc}") from exc


def _sessions(config: Any) -> Any:
    from callcenter.listen import SetupError, prepare_database
    from callcenter.store.db import make_engine, make_session_factory

    try:
        prepare_database(config.database.url)
    except SetupError as exc:
        raise click.ClickException(str(exc)) from exc
    return make_session_factory(make_engine(config.database.url))


def _interactive() -> bool:
    """Whether a person is at the keyboard to be asked (stdin is a terminal)."""
    return sys.stdin.isatty()


def _read_password(password_stdin: bool, username: str) -> str:
    from callcenter.web.auth.passwords import password_problems

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif _interactive():
        password = click.prompt(
            f"Password for {username}", hide_input=True, confirmation_prompt=True
        )
    else:
        raise click.UsageError(
            "no terminal to ask for the password: pipe it in with --password-stdin"
        )
    problems = password_problems(password, username=username)
    if problems:
        raise click.ClickException("password: " + "; ".join(problems))
    return password


def _snapshot(user: Any) -> dict[str, Any]:
    return {
        "username": user.username,
        "display_name": user.display_name,
        "role": user.role,
        "unit_id": user.unit_id,
        "language": user.language,
        "active": user.active,
    }


def _audit(session: Any, action: str, user: Any, before: Any, after: Any) -> None:
    from callcenter.web.audit import audit

    entry = audit(action, "user", user.id, before, after, user_id=None, session=session)
    entry.remote_addr = "cli"


@click.group("user")
def user() -> None:
    """Console accounts: create users, set passwords, list them."""


@user.command("create")
@click.argument("username")
@click.option(
    "--role",
    type=click.Choice(ROLE_NAMES),
    required=True,
    help="officer 值班员, unit_admin, inspector 督查 or admin.",
)
@click.option("--unit", "unit_name", default=None, help="The unit's name (not for admins).")
@click.option(
    "--create-unit", is_flag=True, help="Create the unit (top level) when it does not exist."
)
@click.option("--name", "display_name", default="", help="The person's name as shown.")
@click.option(
    "--language",
    type=click.Choice(["", "zh_CN", "en"]),
    default="",
    help="UI language; default: as the browser says.",
)
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from the first line of stdin."
)
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=None)
def create(
    username: str,
    role: str,
    unit_name: str | None,
    create_unit: bool,
    display_name: str,
    language: str,
    password_stdin: bool,
    config_path: Path | None,
) -> None:
    """Create a console user USERNAME with a role in a unit."""
    from sqlalchemy import select

    from callcenter.store.accounts import User
    from callcenter.store.org import Unit
    from callcenter.web.auth.passwords import hash_password

    if not USERNAME_RE.match(username):
        raise click.BadParameter(
            "2-64 letters, digits and . _ @ -, starting with a letter or digit",
            param_hint="USERNAME",
        )
    if role != "admin" and not unit_name:
        raise click.UsageError(f"a {role} needs a unit: --unit NAME")
    config = _config(config_path)
    factory = _sessions(config)
    with factory() as session:
        if session.scalars(select(User.id).where(User.username == username)).first():
            raise click.ClickException(f"user {username!r} exists already")
        unit = None
        if unit_name:
            unit = session.scalars(select(Unit).where(Unit.name == unit_name)).first()
            if unit is None and create_unit:
                unit = Unit(name=unit_name)
                session.add(unit)
                session.flush()
                click.echo(f"created unit {unit_name!r} (top level)", err=True)
            if unit is None:
                names = ", ".join(session.scalars(select(Unit.name).order_by(Unit.name)))
                raise click.ClickException(
                    f"no unit named {unit_name!r} (known: {names or 'none'}); "
                    "add --create-unit to create it"
                )
        password = _read_password(password_stdin, username)
        account = User(
            username=username,
            display_name=display_name or username,
            role=role,
            unit_id=unit.id if unit is not None else None,
            language=language,
            password_hash=hash_password(password),
        )
        session.add(account)
        session.flush()
        _audit(session, "create", account, None, _snapshot(account))
        session.commit()
        where = f" in {unit.name}" if unit is not None else ""
        click.echo(f"created {role} {username}{where}", err=True)


@user.command("set-password")
@click.argument("username")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from the first line of stdin."
)
@click.option("--unlock/--no-unlock", default=True, show_default=True, help="Also unlock.")
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=None)
def set_password(
    username: str, password_stdin: bool, unlock: bool, config_path: Path | None
) -> None:
    """Set a new password for USERNAME (their console sessions end)."""
    from sqlalchemy import select

    from callcenter.store.accounts import User
    from callcenter.web.auth.passwords import hash_password

    factory = _sessions(_config(config_path))
    with factory() as session:
        account = session.scalars(select(User).where(User.username == username)).first()
        if account is None:
            raise click.ClickException(f"no user {username!r}")
        account.password_hash = hash_password(_read_password(password_stdin, username))
        if unlock:
            account.failed_logins = 0
            account.locked_until = None
        _audit(session, "password_reset", account, None, {"password": "reset"})
        session.commit()
        click.echo(f"password of {username} set", err=True)


@user.command("list")
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=None)
def list_users(config_path: Path | None) -> None:
    """Print the users: username, role, unit, active (tab-separated)."""
    from sqlalchemy import select

    from callcenter.store.accounts import User
    from callcenter.store.org import Unit

    factory = _sessions(_config(config_path))
    with factory() as session:
        rows = session.execute(
            select(User.username, User.role, Unit.name, User.active)
            .outerjoin(Unit, Unit.id == User.unit_id)
            .order_by(User.username)
        ).all()
    for username, role, unit_name, active in rows:
        click.echo(f"{username}\t{role}\t{unit_name or '-'}\t{'active' if active else 'inactive'}")
