"""``callcenter demo``: the whole product on one machine with nothing else installed.

One process tree: the embedded Redis (owned here), the AMI replay server playing a generated
duty day (time-scaled so calls keep coming), the listener, an RQ worker with its scheduler,
and the console. Everything lives in the instance folder (SQLite, Redis, raw archive). Ctrl-C
stops the children in reverse order and nothing is left running.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO
from zoneinfo import ZoneInfo

logger = logging.getLogger(__name__)

DEMO_UNITS = ("示范市人民政府办公室", "示范县人民政府办公室", "示范县应急管理局")
DEMO_LINES = (
    # number, unit, name, desk phones
    ("12345", DEMO_UNITS[1], "县政府值班室", ("SIP/duty1",)),
    ("12346", DEMO_UNITS[1], "县政府值班室（群振）", ("SIP/duty1", "SIP/duty2")),
    ("12347", DEMO_UNITS[2], "应急管理局值班室", ("SIP/duty1", "SIP/duty2")),
)
DEMO_ACCOUNTS = (
    # username, role, unit
    ("officer", "officer", DEMO_UNITS[1]),
    ("unitadmin", "unit_admin", DEMO_UNITS[1]),
    ("inspector", "inspector", DEMO_UNITS[0]),
    ("admin", "admin", DEMO_UNITS[0]),
)


class DemoError(Exception):
    """The demo cannot start; the message says why and what to do."""


@dataclass
class DemoOptions:
    instance: Path
    web_port: int = 5000
    ami_port: int = 5039
    speed: float = 5.0
    seed: int = 1
    host: str = "127.0.0.1"
    python: str = sys.executable
    say: Callable[[str], None] = print


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log: IO[bytes]


@dataclass
class Demo:
    options: DemoOptions
    children: list[Child] = field(default_factory=list)
    accounts: dict[str, str] = field(default_factory=dict)
    redis_url: str = ""

    @property
    def web_url(self) -> str:
        return f"http://{self.options.host}:{self.options.web_port}"


def port_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def wait_port(host: str, port: int, timeout: float, alive: Callable[[], bool]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            raise DemoError(f"a demo process exited before listening on {host}:{port}")
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex((host, port)) == 0:
                return
        time.sleep(0.2)
    raise DemoError(f"nothing listens on {host}:{port} after {timeout:.0f} s")


def write_config(options: DemoOptions, ami_secret: str) -> Path:
    """The demo's callcenter.toml (secrets go by environment, never into the file)."""
    instance = options.instance.resolve()
    lines = "\n".join(
        f'[[lines]]\nnumber = "{number}"\nunit = "{unit}"\nname = "{name}"\n'
        f"desk_phones = {json.dumps(list(phones), ensure_ascii=False)}\n"
        for number, unit, name, phones in DEMO_LINES
    )
    text = (
        "# written by `callcenter demo`; secrets come from the environment\n"
        f'instance_path = "{instance}"\n\n'
        f'[database]\nurl = "sqlite:///{instance / "callcenter.db"}"\n\n'
        f'[[ami.pbx]]\nname = "demo"\nhost = "{options.host}"\nport = {options.ami_port}\n'
        f'username = "callcenter"\n\n{lines}'
    )
    path = instance / "demo.toml"
    path.write_text(text, "utf-8")
    return path


def seed(config_path: Path, accounts_file: Path) -> dict[str, str]:
    """Units, duty lines, a week of roster and the demo accounts (passwords kept per
    instance, generated on first run)."""
    from werkzeug.security import generate_password_hash

    from callcenter.config import load_config
    from callcenter.store.accounts import User
    from callcenter.store.db import make_engine, make_session_factory, session_scope
    from callcenter.store.duty import Shift
    from callcenter.store.migrate import upgrade
    from callcenter.store.org import DeskPhone, DutyLine, Officer, Unit

    config = load_config(config_path, env={})
    upgrade(config.database.url)
    passwords: dict[str, str] = (
        json.loads(accounts_file.read_text("utf-8")) if accounts_file.exists() else {}
    )
    engine = make_engine(config.database.url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            units: dict[str, Unit] = {u.name: u for u in session.query(Unit)}
            parent = None
            for name in DEMO_UNITS:
                if name not in units:
                    units[name] = Unit(name=name, parent=parent)
                    session.add(units[name])
                parent = parent or units[name]
            session.flush()
            known = {line.number for line in session.query(DutyLine)}
            for number, unit, title, phones in DEMO_LINES:
                if number not in known:
                    line = DutyLine(number=number, name=title, unit=units[unit])
                    line.desk_phones = [DeskPhone(endpoint=p) for p in phones]
                    session.add(line)
            officers = ("张伟", "王芳", "李娜", "刘洋")
            for staffed in (units[DEMO_UNITS[1]], units[DEMO_UNITS[2]]):
                have = {o.name for o in session.query(Officer).filter_by(unit_id=staffed.id)}
                for officer in officers:
                    if officer not in have:
                        session.add(Officer(unit_id=staffed.id, name=officer))
                _seed_roster(session, Shift, staffed.id, officers)
            users = {u.username for u in session.query(User)}
            for username, role, unit in DEMO_ACCOUNTS:
                password = passwords.setdefault(username, secrets.token_urlsafe(9))
                if username not in users:
                    session.add(
                        User(
                            username=username,
                            password_hash=generate_password_hash(password),
                            display_name=username,
                            role=role,
                            unit_id=units[unit].id,
                        )
                    )
    finally:
        engine.dispose()
    accounts_file.write_text(json.dumps(passwords, indent=1), "utf-8")
    accounts_file.chmod(0o600)
    return passwords


def _seed_roster(session: object, shift: type, unit_id: int, officers: Sequence[str]) -> None:
    """Day (08:30-17:30) and night (17:30-08:30) shifts from yesterday to a week ahead."""
    tz = ZoneInfo("Asia/Shanghai")
    today = datetime.now(tz).date()
    existing = {
        s.starts_at
        for s in session.query(shift).filter_by(unit_id=unit_id)  # type: ignore[attr-defined]
    }
    for offset in range(-1, 8):
        day = today + timedelta(days=offset)
        base = datetime(day.year, day.month, day.day, tzinfo=tz)
        spans = (("白班", 8.5, 17.5), ("夜班", 17.5, 32.5))
        for index, (name, start_h, end_h) in enumerate(spans):
            starts = (base + timedelta(hours=start_h)).astimezone(UTC)
            if starts in existing:
                continue
            main = officers[(offset * 2 + index) % len(officers)]
            backup = officers[(offset * 2 + index + 1) % len(officers)]
            session.add(  # type: ignore[attr-defined]
                shift(
                    unit_id=unit_id,
                    day=day,
                    name=name,
                    starts_at=starts,
                    ends_at=(base + timedelta(hours=end_h)).astimezone(UTC),
                    main_officer=main,
                    backup_officer=backup,
                    leader="陈局长",
                )
            )


def _command_exists(name: str) -> bool:
    from callcenter.cli import main

    return name in main.commands


@contextmanager
def running_demo(options: DemoOptions) -> Iterator[Demo]:
    """Start everything; stop everything when the block ends (also on errors)."""
    from callcenter.embedded_redis import EmbeddedRedis

    say = options.say
    for port, what, flag in (
        (options.web_port, "console", "--web-port"),
        (options.ami_port, "AMI replay server", "--ami-port"),
    ):
        if not port_free(options.host, port):
            raise DemoError(
                f"port {port} for the {what} is in use on {options.host}: stop what uses it or "
                f"pass {flag} with a free port"
            )
    instance = options.instance.resolve()
    instance.mkdir(parents=True, exist_ok=True)
    (instance / "logs").mkdir(exist_ok=True)
    demo = Demo(options)
    ami_secret = secrets.token_urlsafe(16)
    say("[1/6] configuration and database …")
    config_path = write_config(options, ami_secret)
    demo.accounts = seed(config_path, instance / "demo-accounts.json")
    say("[2/6] embedded Redis …")
    with EmbeddedRedis(instance / "redis") as redis_server:
        demo.redis_url = redis_server.url
        env = {
            **os.environ,
            "CALLCENTER_CONFIG": str(config_path),
            "CALLCENTER_REDIS__URL": redis_server.url,
            "CALLCENTER_AMI__SECRET": ami_secret,
            "CALLCENTER_WEB__SECRET_KEY": secrets.token_urlsafe(32),
            "PYTHONUNBUFFERED": "1",
        }
        try:
            say("[3/6] AMI replay server playing a generated duty day …")
            _start(demo, "ami-replay", env, [
                "ami-replay", "--generate", "--seed", str(options.seed), "--host", options.host,
                "--port", str(options.ami_port), "--speed", str(options.speed),
            ])  # fmt: skip
            wait_port(options.host, options.ami_port, 30, lambda: _alive(demo))
            say("[4/6] listener …")
            _start(demo, "listen", env, ["listen"])
            if _command_exists("worker"):
                say("[5/6] worker with scheduler …")
                _start(demo, "worker", env, ["worker"])
            else:
                say("[5/6] worker: not available in this version, skipped")
            if _command_exists("web"):
                say("[6/6] console …")
                _start(demo, "web", env, [
                    "web", "--host", options.host, "--port", str(options.web_port),
                ])  # fmt: skip
                wait_port(options.host, options.web_port, 60, lambda: _alive(demo))
            else:
                say("[6/6] console: not available in this version, skipped")
            yield demo
        finally:
            stop_children(demo)


def _start(demo: Demo, name: str, env: dict[str, str], args: list[str]) -> None:
    log = (demo.options.instance.resolve() / "logs" / f"{name}.log").open("ab")
    process = subprocess.Popen(
        [demo.options.python, "-m", "callcenter.cli", *args],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # Ctrl-C reaches the demo; it stops the children in order
    )
    demo.children.append(Child(name, process, log))


def _alive(demo: Demo) -> bool:
    return all(child.process.poll() is None for child in demo.children)


def stop_children(demo: Demo, timeout: float = 10.0) -> None:
    for child in reversed(demo.children):
        if child.process.poll() is None:
            child.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for child in reversed(demo.children):
        try:
            child.process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            logger.warning("%s did not stop in %.0f s: killing it", child.name, timeout)
            os.killpg(child.process.pid, signal.SIGKILL)
            child.process.wait()
        child.log.close()
    demo.children.clear()
