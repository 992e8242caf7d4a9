"""``callcenter demo``: the whole product on one machine with nothing else installed.

One process tree: the embedded Redis (owned here), the AMI replay server playing a generated
duty day (time-scaled so calls keep coming), the listener, an RQ worker with its scheduler,
and the console. Everything lives in the instance folder (SQLite, Redis, raw archive, one
log per part in ``logs/``).

Start-up waits until each part is really ready, not just started: the AMI port listens, the
listener has logged in (its status in Redis, :meth:`callcenter.live.LiveState.listener_status`),
an RQ worker of ours has registered, the console answers ``GET /login``. A part that exits
during start-up stops the demo with the last lines of its log; a port in use is named with
the option that changes it.

Shutdown (Ctrl-C, SIGTERM, the end of ``--for``, an error): the children get SIGTERM in
reverse order of start and a few seconds to finish; then anything still alive in a child's
session (each child runs in a session of its own, so a terminal's Ctrl-C reaches only the
demo, which stops the children in order) gets SIGTERM and finally SIGKILL. If the demo itself
dies without cleaning up (SIGKILL), Linux sends every child SIGTERM (``PR_SET_PDEATHSIG``), and
the embedded Redis likewise (:mod:`callcenter.embedded_redis`), so nothing is orphaned.

A part that dies is never hidden. While the demo runs, :func:`watch` checks every half
second; a part (or the embedded Redis) that exits on its own is announced at once in one
line (which part, its exit code or signal, its log) and the demo stops the others, as
foreman and honcho do: a pipeline with a part missing would show a misleading picture (a
board with no new calls). A part that exits non-zero when told to stop, or has to be
killed, is a failure too. Every failure is kept in :attr:`Demo.failures`; the command
prints them with the end of each log and exits 1.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

logger = logging.getLogger(__name__)

PBX_NAME = "demo"
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
DEMO_OFFICERS = ("张伟", "王芳", "李娜", "刘洋")
STEPS = 6
#: How the progress lines and messages name each child (by its subcommand).
LABELS = {
    "ami-replay": "AMI replay server",
    "listen": "listener",
    "worker": "worker",
    "web": "console",
}
_PR_SET_PDEATHSIG = 1
_LOG_TAIL_LINES = 12


class DemoError(Exception):
    """The demo cannot start; the message says why and what to do."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        #: The parts that failed, filled in once everything is stopped.
        self.failures: list[Failure] = []


class DemoInterrupted(DemoError):
    """Ctrl-C or SIGTERM arrived while the demo was starting."""


@dataclass(frozen=True)
class Failure:
    """A part of the demo that died or did not stop cleanly."""

    label: str
    pid: int
    #: ``Popen.returncode``: the exit code, or minus the signal that killed it; ``None``
    #: when only the pid is known (the embedded Redis is not the demo's child).
    code: int | None
    log_path: Path
    #: ``"start-up"``, ``"running"`` (exited on its own) or ``"shutdown"``.
    during: str

    def how(self) -> str:
        if self.code is None:
            return "is gone"
        if self.code < 0:
            try:
                name = signal.Signals(-self.code).name
            except ValueError:
                name = f"signal {-self.code}"
            return f"was killed by {name} (exit code {self.code})"
        return f"exited with code {self.code}"

    def line(self) -> str:
        """One line: which part, how it ended, when, and where its log is."""
        when = {
            "start-up": "during start-up",
            "running": "while the demo ran",
            "shutdown": "when told to stop",
        }.get(self.during, self.during)
        return f"the {self.label} (pid {self.pid}) {self.how()} {when}; log: {self.log_path}"

    def describe(self) -> str:
        """:meth:`line` and the last lines of the log."""
        return self.line() + _log_tail(self.log_path, indent="    ")


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
    #: Set by the signal handlers: start-up stops waiting and everything is shut down.
    stop: threading.Event = field(default_factory=threading.Event)
    #: Seconds each part may take to become ready.
    ready_timeout: float = 60.0
    #: Seconds the children get to stop after SIGTERM before they are killed.
    stop_timeout: float = 10.0


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log: IO[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def label(self) -> str:
        return LABELS.get(self.name, self.name)

    def failure(self, during: str) -> Failure:
        self.log.flush()
        return Failure(self.label, self.pid, self.process.returncode, self.log_path, during)


@dataclass
class Demo:
    options: DemoOptions
    children: list[Child] = field(default_factory=list)
    accounts: dict[str, str] = field(default_factory=dict)
    redis_url: str = ""
    #: The embedded Redis server's pid and log, watched like the children.
    redis_pid: int | None = None
    redis_log: Path | None = None
    #: Every part that died or did not stop cleanly, in the order found.
    failures: list[Failure] = field(default_factory=list)

    @property
    def web_url(self) -> str:
        return f"http://{self.options.host}:{self.options.web_port}"

    def dead_child(self) -> Child | None:
        """The first child that is no longer running, if any."""
        return next((c for c in self.children if c.process.poll() is not None), None)

    def newly_dead(self, during: str = "running") -> list[Failure]:
        """Parts that ended since the last look, recorded in :attr:`failures`."""
        known = {f.pid for f in self.failures}
        found = [
            child.failure(during)
            for child in self.children
            if child.pid not in known and child.process.poll() is not None
        ]
        if (
            self.redis_pid is not None
            and self.redis_pid not in known
            and not _alive(self.redis_pid)
        ):
            log = self.redis_log or self.options.instance / "redis"
            found.append(Failure("embedded Redis", self.redis_pid, None, log, during))
        self.failures.extend(found)
        return found

    @property
    def failed(self) -> bool:
        return bool(self.failures)


# --------------------------------------------------------------------------- ports


def port_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _check_ports(options: DemoOptions) -> None:
    if options.web_port == options.ami_port:
        raise DemoError(
            f"--web-port and --ami-port are both {options.web_port}: give them different ports"
        )
    for port, what, flag in (
        (options.web_port, "console", "--web-port"),
        (options.ami_port, "AMI replay server", "--ami-port"),
    ):
        if not port_free(options.host, port):
            raise DemoError(
                f"port {port} for the {what} is in use on {options.host}: stop what uses it or "
                f"pass {flag} with a free port"
            )


# --------------------------------------------------------------------------- config, seed


def write_config(options: DemoOptions) -> Path:
    """The demo's callcenter.toml (secrets go by environment, never into the file)."""
    instance = options.instance.resolve()
    lines = "\n".join(
        f'[[lines]]\nnumber = "{number}"\nunit = "{unit}"\nname = "{name}"\n'
        f"desk_phones = {json.dumps(list(phones), ensure_ascii=False)}\n"
        for number, unit, name, phones in DEMO_LINES
    )
    database = "sqlite:///" + (instance / "callcenter.db").as_posix()
    text = (
        "# written by `callcenter demo`; secrets come from the environment\n"
        f"instance_path = {json.dumps(str(instance))}\n\n"
        f"[database]\nurl = {json.dumps(database)}\n\n"
        f'[[ami.pbx]]\nname = "{PBX_NAME}"\nhost = "{options.host}"\nport = {options.ami_port}\n'
        f'username = "callcenter"\n\n'
        "[spot_checks]\nper_line = 3  # the replay server plays a generated spot-check call\n\n"
        f"{lines}"
    )
    path = instance / "demo.toml"
    path.write_text(text, "utf-8")
    return path


def seed(config_path: Path, accounts_file: Path) -> dict[str, str]:
    """Units, duty lines, officers, two weeks of roster and the demo accounts.

    Idempotent (only what is missing is added). The duty lines come from the config through
    :func:`callcenter.store.seed.seed_from_config`, as ``callcenter worker`` seeds them; the
    units are made first so the county units hang under the city. Passwords are kept per
    instance in ``accounts_file`` (mode 0600), generated on first run.
    """
    from werkzeug.security import generate_password_hash

    from callcenter.config import load_config
    from callcenter.store.accounts import User
    from callcenter.store.db import make_engine, make_session_factory, session_scope
    from callcenter.store.duty import Shift
    from callcenter.store.migrate import upgrade
    from callcenter.store.org import Officer

    config = load_config(config_path, env={})
    upgrade(config.database.url)
    passwords: dict[str, str] = (
        json.loads(accounts_file.read_text("utf-8")) if accounts_file.exists() else {}
    )
    engine = make_engine(config.database.url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            units = _seed_units(session, config.timezone)
            _seed_lines(session, config, units)
            for staffed in (units[DEMO_UNITS[1]], units[DEMO_UNITS[2]]):
                have = {o.name for o in session.query(Officer).filter_by(unit_id=staffed.id)}
                for officer in DEMO_OFFICERS:
                    if officer not in have:
                        session.add(Officer(unit_id=staffed.id, name=officer))
                _seed_roster(session, Shift, staffed.id, DEMO_OFFICERS, config.timezone)
            users = {u.username for u in session.query(User)}
            for username, role, unit in DEMO_ACCOUNTS:
                password = passwords.setdefault(username, secrets.token_urlsafe(9))
                if username not in users:
                    session.add(
                        User(
                            username=username,
                            password_hash=generate_password_hash(password, method="scrypt"),
                            display_name=username,
                            role=role,
                            unit_id=units[unit].id,
                        )
                    )
    finally:
        engine.dispose()
    accounts_file.write_text(json.dumps(passwords, indent=1), "utf-8")
    accounts_file.chmod(0o600)
    return {username: passwords[username] for username, _role, _unit in DEMO_ACCOUNTS}


def _seed_units(session: Any, timezone: str) -> dict[str, Any]:
    """The city unit and the two county units under it."""
    from callcenter.store.org import Unit

    units: dict[str, Any] = {u.name: u for u in session.query(Unit)}
    parent = None
    for name in DEMO_UNITS:
        if name not in units:
            units[name] = Unit(name=name, parent=parent, timezone=timezone)
            session.add(units[name])
        parent = parent or units[name]
    session.flush()
    return units


def _seed_lines(session: Any, config: Any, units: dict[str, Any]) -> None:
    try:
        from callcenter.store.seed import seed_from_config
    except ImportError:  # an older tree without the shared seeding: the demo's own
        pass
    else:
        seed_from_config(session, config)
        return
    from callcenter.store.org import DeskPhone, DutyLine

    known = {line.number for line in session.query(DutyLine)}
    for number, unit, title, phones in DEMO_LINES:
        if number not in known:
            line = DutyLine(number=number, name=title, unit=units[unit])
            line.desk_phones = [DeskPhone(endpoint=p) for p in phones]
            session.add(line)


def _seed_roster(
    session: Any, shift: type, unit_id: int, officers: Sequence[str], timezone: str
) -> None:
    """Day (08:30-17:30) and night (17:30-08:30) shifts from yesterday to a week ahead."""
    tz = ZoneInfo(timezone)
    today = datetime.now(tz).date()
    existing = {
        s.starts_at.replace(tzinfo=UTC) if s.starts_at.tzinfo is None else s.starts_at
        for s in session.query(shift).filter_by(unit_id=unit_id)
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
            session.add(
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


# --------------------------------------------------------------------------- start-up


def _command_exists(name: str) -> bool:
    from callcenter.cli import main

    return name in main.commands


@contextmanager
def running_demo(options: DemoOptions) -> Iterator[Demo]:
    """Start everything and wait until it is ready; stop everything when the block ends
    (also on errors and when ``options.stop`` is set during start-up)."""
    from callcenter.embedded_redis import EmbeddedRedis, EmbeddedRedisError

    say = options.say
    _check_ports(options)
    instance = options.instance.resolve()
    instance.mkdir(parents=True, exist_ok=True)
    (instance / "logs").mkdir(exist_ok=True)
    demo = Demo(options)
    ami_secret = secrets.token_urlsafe(16)

    step = _Steps(say, options.stop)
    step.begin(1, "configuration and database")
    config_path = write_config(options)
    demo.accounts = seed(config_path, instance / "demo-accounts.json")
    step.ready(f"SQLite at {instance / 'callcenter.db'}, {len(DEMO_LINES)} duty lines")

    step.begin(2, "embedded Redis")
    with contextlib.ExitStack() as stack:
        try:
            redis_server = stack.enter_context(EmbeddedRedis(instance / "redis"))
        except EmbeddedRedisError as exc:
            raise DemoError(f"cannot start the embedded Redis: {exc}") from exc
        demo.redis_url = redis_server.url
        if redis_server.owner:
            demo.redis_pid, demo.redis_log = redis_server.pid, redis_server.log_path
        step.ready(redis_server.url)
        env = {
            # none of the caller's CALLCENTER_* settings (a production database URL, say):
            # the demo's parts see only the demo's configuration
            **{k: v for k, v in os.environ.items() if not k.startswith("CALLCENTER_")},
            "CALLCENTER_CONFIG": str(config_path),
            "CALLCENTER_REDIS__URL": redis_server.url,
            "CALLCENTER_AMI__SECRET": ami_secret,
            "CALLCENTER_WEB__SECRET_KEY": secrets.token_urlsafe(32),
            "PYTHONUNBUFFERED": "1",
        }
        try:
            try:
                _start_all(demo, step, env)
                yield demo
            finally:
                stop_children(demo)
                demo.redis_pid = None  # stopped on purpose from here on
        except DemoError as exc:
            exc.failures = list(demo.failures)
            raise


def watch(demo: Demo, duration: float | None = None) -> list[Failure]:
    """Wait for Ctrl-C/SIGTERM (``options.stop``), the end of ``duration`` or a dead part.

    A part that died is announced at once in one line; the caller then leaves the
    ``running_demo`` block, which stops the others. Returns the parts that died.
    """
    options = demo.options
    deadline = None if duration is None else time.monotonic() + duration
    while not options.stop.wait(0.5):
        died = demo.newly_dead()
        if died:
            for failure in died:
                options.say(f"\nFAILED: {failure.line()}")
            options.say("stopping the other parts …")
            return died
        if deadline is not None and time.monotonic() >= deadline:
            options.say("stopping …")
            return []
    return []


def _start_all(demo: Demo, step: _Steps, env: dict[str, str]) -> None:
    options = demo.options
    host = options.host

    step.begin(3, "AMI replay server playing a generated duty day")
    replay = _start(demo, "ami-replay", env, [
        "ami-replay", "--generate", "--seed", str(options.seed), "--host", host,
        "--port", str(options.ami_port), "--speed", str(options.speed),
    ])  # fmt: skip
    _wait(demo, replay, lambda: _port_open(host, options.ami_port), f"{host}:{options.ami_port}")
    step.ready(f"{host}:{options.ami_port}, speed x{options.speed:g}, seed {options.seed}")

    step.begin(4, "listener")
    since = datetime.now(UTC) - timedelta(seconds=1)
    listener = _start(demo, "listen", env, ["listen"])
    _wait(demo, listener, lambda: _listener_connected(demo.redis_url, since), "an AMI login")
    step.ready("logged in to the AMI replay server")

    if _command_exists("worker"):
        step.begin(5, "worker with scheduler")
        worker = _start(demo, "worker", env, ["worker"])
        _wait(demo, worker, lambda: _worker_registered(demo.redis_url, worker), "RQ")
        step.ready("an RQ worker takes jobs")
    else:
        step.skip(5, "worker: not available in this version")

    if _command_exists("web"):
        step.begin(6, "console")
        web = _start(demo, "web", env, [
            "web", "--host", host, "--port", str(options.web_port), "--workers", "2",
            "--plain-http",  # loopback HTTP: the session cookie cannot be Secure
        ])  # fmt: skip
        _wait(demo, web, lambda: _http_ok(f"{demo.web_url}/login"), f"{demo.web_url}/login")
        step.ready(demo.web_url)
    else:
        step.skip(6, "console: not available in this version")


class _Steps:
    """The numbered progress lines: ``[4/6] listener …`` then ``      ready: ... (0.5 s)``."""

    def __init__(self, say: Callable[[str], None], stop: threading.Event) -> None:
        self.say = say
        self.stop = stop
        self.started = time.monotonic()

    def begin(self, number: int, what: str) -> None:
        if self.stop.is_set():
            raise DemoInterrupted("stopped during start-up")
        self.started = time.monotonic()
        self.say(f"[{number}/{STEPS}] {what} …")

    def ready(self, detail: str) -> None:
        self.say(f"      ready: {detail} ({time.monotonic() - self.started:.1f} s)")

    def skip(self, number: int, what: str) -> None:
        self.say(f"[{number}/{STEPS}] {what}, skipped")


def _start(demo: Demo, name: str, env: dict[str, str], args: list[str]) -> Child:
    path = demo.options.instance.resolve() / "logs" / f"{name}.log"
    log = path.open("ab")
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    log.write(f"\n--- {stamp} demo starts {name}\n".encode())
    log.flush()
    try:
        process = subprocess.Popen(
            # -P: not the current folder first on sys.path, so that in a checkout the
            # installed package is run, not the source tree (where web/ and workers/ are
            # not yet callcenter.web and callcenter.workers)
            [demo.options.python, "-P", "-m", "callcenter.cli", *args],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            # a session of its own: a terminal's Ctrl-C reaches only the demo, which stops
            # the children in order; and the session id finds the child's whole tree
            start_new_session=True,
            preexec_fn=_die_with_parent(),  # only prctl, and only from the main thread
        )
    except BaseException:
        log.close()
        raise
    child = Child(name, process, log, path)
    demo.children.append(child)
    return child


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn``: Linux sends the child SIGTERM when the demo dies (even by SIGKILL).

    Only from the main thread (the "parent" of PR_SET_PDEATHSIG is the forking thread);
    libc is looked up here, so the child between fork and exec makes two system calls.
    """
    if threading.current_thread() is not threading.main_thread():
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        return None
    parent = os.getpid()
    sigterm = int(signal.SIGTERM)

    def set_in_child() -> None:  # pragma: no cover - runs in the child
        prctl(_PR_SET_PDEATHSIG, sigterm, 0, 0, 0)
        if os.getppid() != parent:  # the demo died before prctl: do not outlive it
            os._exit(1)

    return set_in_child


def _wait(demo: Demo, child: Child, ready: Callable[[], bool], what: str) -> None:
    """Poll ``ready`` until true; fail when a child exits, on timeout, or on stop."""
    options = demo.options
    deadline = time.monotonic() + options.ready_timeout
    while True:
        if options.stop.is_set():
            raise DemoInterrupted("stopped during start-up")
        dead = demo.newly_dead("start-up")
        if dead:
            raise DemoError(dead[0].describe())
        try:
            if ready():
                return
        except Exception as exc:  # a probe that fails is "not ready yet"
            logger.debug("%s not ready: %s", child.label, exc)
        if time.monotonic() > deadline:
            raise DemoError(
                f"the {child.label} did not become ready ({what}) in "
                f"{options.ready_timeout:.0f} s; see {child.log_path}{_log_tail(child.log_path)}"
            )
        options.stop.wait(0.2)


def exit_message(child: Child) -> str:
    """How ``child`` ended, with the end of its log."""
    return child.failure("running").describe()


def _log_tail(path: Path, lines: int = _LOG_TAIL_LINES, indent: str = "  ") -> str:
    try:
        text = path.read_text("utf-8", errors="replace")
    except OSError:
        return ""
    marker = text.rfind("\n--- ")  # this run's part of the log only (-1: the whole file)
    body = text[marker + 1 :].splitlines()[1:] if marker >= 0 else text.splitlines()
    tail = [line[:200] for line in body if line.strip()][-lines:]
    return (f":\n{indent}" + f"\n{indent}".join(tail)) if tail else ""


def _alive(pid: int) -> bool:
    """``pid`` runs and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _listener_connected(redis_url: str, since: datetime) -> bool:
    """The listener logged in to the PBX in this run (status written after ``since``)."""
    from callcenter.embedded_redis import connect
    from callcenter.live import LiveState

    client = connect(redis_url, socket_timeout=2.0, retries=0)
    try:
        status = LiveState(client, pbx=PBX_NAME).listener_status().get(PBX_NAME)
    finally:
        client.close()
    if not status or not status.get("connected"):
        return False
    heartbeat = _parse_time(status.get("heartbeat_at"))
    return heartbeat is not None and heartbeat >= since


def _worker_registered(redis_url: str, child: Child) -> bool:
    """An RQ worker of ``child``'s process tree has registered itself in Redis."""
    from rq import Worker

    from callcenter.embedded_redis import connect

    client = connect(redis_url, socket_timeout=2.0, retries=0)
    try:
        pids = {w.pid for w in Worker.all(connection=client)}
    finally:
        client.close()
    return bool(pids & set(session_members(child.pid)))


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2.0) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _parse_time(text: object) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# --------------------------------------------------------------------------- shutdown


def session_members(sid: int) -> list[int]:
    """Live (non-zombie) processes of session ``sid``, from ``/proc``."""
    members = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()
        # fields: state ppid pgrp session ...
        if len(fields) > 3 and fields[0] != "Z" and fields[3] == str(sid):
            members.append(int(entry.name))
    return members


def stop_children(demo: Demo, timeout: float | None = None) -> None:
    """SIGTERM the children in reverse order of start, wait, then clear their sessions.

    A child that had already ended is recorded as dead while running; one that exits
    non-zero after SIGTERM, or has to be killed, as failed on shutdown.
    """
    timeout = demo.options.stop_timeout if timeout is None else timeout
    demo.newly_dead()
    children = list(reversed(demo.children))
    for child in children:
        if child.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                child.process.send_signal(signal.SIGTERM)
        elif child.pid not in {f.pid for f in demo.failures}:  # ended since newly_dead()
            demo.failures.append(child.failure("running"))
        # one at a time: the console and the worker stop before the listener they read
        # from, the listener before the AMI server it listens to
        deadline = time.monotonic() + timeout
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.process.wait(max(0.1, deadline - time.monotonic()))
    for child in children:
        if child.process.poll() is None:
            logger.warning("the %s did not stop in %.0f s: killing it", child.label, timeout)
        _clear_session(child.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.process.wait(5.0)
        if child.pid not in {f.pid for f in demo.failures} and child.process.returncode != 0:
            demo.failures.append(child.failure("shutdown"))
        child.log.close()
    demo.children.clear()


def _clear_session(sid: int, grace: float = 3.0) -> None:
    """Whatever still runs in session ``sid`` (a grandchild): SIGTERM, then SIGKILL."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, grace)):
        members = session_members(sid)
        if not members:
            return
        logger.warning("session %d: sending %s to %s", sid, sig.name, members)
        for pid in members:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while session_members(sid) and time.monotonic() < deadline:
            time.sleep(0.05)
