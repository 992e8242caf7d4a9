"""``callcenter demo`` end to end: a real process tree on free ports, stopped like a user would.

The demo runs as ``python -m callcenter.cli demo`` in a temporary instance folder, at 30x
speed. The test reads its progress from stderr, sees calls arrive in its SQLite database,
signs in to the console with the printed officer account (login form and CSRF token, as a
browser does), sees the live board and a call ringing on it, then stops the demo with SIGINT
(Ctrl-C) and checks from ``/proc`` that nothing of its process tree is left. A second run
kills the demo with SIGKILL: its children must still go (PR_SET_PDEATHSIG). A third kills
the listener: the demo must name it at once, stop the rest and exit 1. A fourth asks for a
port in use.
"""

from __future__ import annotations

import contextlib
import html
import http.cookiejar
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from callcenter.embedded_redis import find_redis_server

pytestmark = [
    pytest.mark.redis,
    pytest.mark.timeout(180),
    pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc"),
]

READY_LINE = "Ctrl-C to stop"
ACCOUNT_RE = re.compile(r"^\s*login (\S+)\s+password (\S+)\s*$")
CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')


@pytest.fixture(autouse=True)
def _redis_server_available() -> None:
    if find_redis_server() is None:
        pytest.fail("the demo needs redis-server on PATH (scripts/test.sh installs it)")


# --------------------------------------------------------------------------- /proc


def _stat(pid: int) -> list[str] | None:
    """``/proc/<pid>/stat`` fields after the command name: state, ppid, pgrp, session, ..."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rpartition(")")[2].split()


def _all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


@dataclass(frozen=True)
class Proc:
    pid: int
    session: int
    started: str  # start time in clock ticks since boot: tells a reused pid apart

    def alive(self) -> bool:
        fields = _stat(self.pid)
        return fields is not None and fields[0] != "Z" and fields[19] == self.started


def _tree(root: int) -> list[Proc]:
    """``root`` and every descendant, as they are now."""
    stats = {pid: s for pid in _all_pids() if (s := _stat(pid)) is not None}
    children: dict[int, list[int]] = {}
    for pid, fields in stats.items():
        children.setdefault(int(fields[1]), []).append(pid)
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid in stats:
            found.append(Proc(pid, int(stats[pid][3]), stats[pid][19]))
            todo.extend(children.get(pid, []))
    return found


def _left_over(tree: list[Proc]) -> list[str]:
    """Processes of ``tree`` still alive, and anything alive in the sessions they had."""
    sessions = {p.session for p in tree}
    alive = {p.pid for p in tree if p.alive()}
    for pid in _all_pids():
        fields = _stat(pid)
        if fields and fields[0] != "Z" and int(fields[3]) in sessions:
            alive.add(pid)
    described = []
    for pid in sorted(alive):
        with contextlib.suppress(OSError):
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            described.append(f"{pid}: {command.strip()}")
    return described


# --------------------------------------------------------------------------- the demo


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _demo_command(instance: Path, web_port: int, ami_port: int, *more: str) -> list[str]:
    return [
        *(sys.executable, "-m", "callcenter.cli", "demo", "--instance", str(instance)),
        *("--web-port", str(web_port), "--ami-port", str(ami_port), *more),
    ]


@dataclass
class DemoRun:
    process: subprocess.Popen[str]
    instance: Path
    web_port: int
    lines: list[str] = field(default_factory=list)
    ready: threading.Event = field(default_factory=threading.Event)
    closed: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def stderr(self) -> str:
        return "\n".join(self.lines)

    def read(self) -> None:  # in a thread: the pipe never fills up
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))
            if READY_LINE in line:
                self.ready.set()
        self.ready.set()  # end of output: stop waiting
        self.closed.set()

    def accounts(self) -> dict[str, str]:
        return {m.group(1): m.group(2) for line in self.lines if (m := ACCOUNT_RE.match(line))}


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[DemoRun]:
    web_port, ami_port = _free_port(), _free_port()
    instance = tmp_path / "instance-demo"
    process = subprocess.Popen(
        _demo_command(instance, web_port, ami_port, "--speed", "30"),
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # the test's own Ctrl-C never reaches it by accident
    )
    run = DemoRun(process, instance, web_port)
    reader = threading.Thread(target=run.read, daemon=True)
    reader.start()
    try:
        if not run.ready.wait(90) or process.poll() is not None:
            pytest.fail(f"the demo did not become ready:\n{run.stderr}")
        yield run
    finally:
        tree = _tree(process.pid)
        if process.poll() is None:
            process.kill()
        process.wait(10)
        for proc in tree:  # whatever a failed test left behind
            if proc.alive():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
        reader.join(5)
        if process.stderr is not None:
            process.stderr.close()


def _wait_for(what: str, check: object, timeout: float, run: DemoRun) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()  # type: ignore[operator]
        if value:
            return value
        if run.process.poll() is not None:
            pytest.fail(f"the demo exited while waiting for {what}:\n{run.stderr}")
        time.sleep(0.3)
    pytest.fail(f"no {what} after {timeout:.0f} s:\n{run.stderr}")


def _count(database: Path, query: str) -> int:
    if not database.exists():
        return 0
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5)
    try:
        (count,) = connection.execute(query).fetchone()
        return int(count)
    except sqlite3.OperationalError:
        return 0
    finally:
        connection.close()


def _stored_calls(database: Path) -> int:
    return _count(database, "SELECT count(*) FROM calls")


def _evaluated_calls(database: Path) -> int:
    """Calls the demo's worker judged, with the duty-log entry it writes for each."""
    return _count(
        database,
        "SELECT count(*) FROM calls JOIN log_entry_calls ON log_entry_calls.call_id = calls.id "
        "WHERE calls.evaluated_at IS NOT NULL",
    )


def _sign_in(base: str, username: str, password: str) -> tuple[urllib.request.OpenerDirector, str]:
    """Sign in like a browser: GET the form, POST it with its CSRF token; the page landed on."""
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )
    with opener.open(f"{base}/login", timeout=10) as response:
        form = response.read().decode("utf-8")
    match = CSRF_RE.search(form)
    assert match, f"no CSRF token in the login form:\n{form[:2000]}"
    token = html.unescape(match.group(1) or match.group(2))
    body = urllib.parse.urlencode(
        {"csrf_token": token, "username": username, "password": password, "next": ""}
    ).encode()
    with opener.open(f"{base}/login", data=body, timeout=10) as response:
        assert response.status == 200
        landed = urllib.parse.urlsplit(response.geturl()).path
        page = response.read().decode("utf-8")
    assert landed != "/login", f"sign-in refused:\n{page[:2000]}"
    return opener, page


# --------------------------------------------------------------------------- tests


def test_demo_runs_and_stops_cleanly_on_ctrl_c(demo: DemoRun) -> None:
    progress = [line for line in demo.lines if re.match(r"^\[\d/6\] ", line)]
    assert len(progress) == 6, demo.stderr
    assert "ready: logged in to the AMI replay server" in demo.stderr
    assert f"Console: {demo.url}" in demo.stderr
    accounts = demo.accounts()
    assert set(accounts) >= {"officer", "inspector", "admin"}, demo.stderr

    database = demo.instance / "callcenter.db"
    _wait_for("call in the database", lambda: _stored_calls(database) > 0, 60, demo)
    _wait_for("call judged by the worker", lambda: _evaluated_calls(database) > 0, 60, demo)

    opener, landing = _sign_in(demo.url, "officer", accounts["officer"])
    with opener.open(f"{demo.url}/", timeout=10) as response:
        assert response.status == 200
        board = response.read().decode("utf-8")
    assert "12345" in board  # a duty line of the officer's unit, on the live board
    assert "12345" in landing  # signing in lands on the board

    def ringing_on_the_board() -> bool:  # what board.js reads to keep the page current
        with opener.open(f"{demo.url}/board/state.json", timeout=10) as response:
            lines = json.loads(response.read())["lines"]
        return any(line["ringing"] or line["state"] != "idle" for line in lines)

    _wait_for("call ringing on the board", ringing_on_the_board, 60, demo)

    tree = _tree(demo.process.pid)
    assert len(tree) >= 5, tree  # demo, Redis, replay server, listener, console (+ worker)

    started = time.monotonic()
    demo.process.send_signal(signal.SIGINT)
    assert demo.process.wait(20) == 0, demo.stderr
    assert time.monotonic() - started < 20
    deadline = time.monotonic() + 5
    while (left := _left_over(tree)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not left, f"left running after Ctrl-C: {left}"
    demo.closed.wait(5)
    assert "stopped; nothing left running." in demo.stderr


def _child_running(demo: DemoRun, subcommand: str) -> Proc:
    """The demo's child process running ``callcenter <subcommand>``."""
    for proc in _tree(demo.process.pid):
        with contextlib.suppress(OSError):
            argv = Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")
            if b"callcenter.cli" in argv and subcommand.encode() in argv:
                fields = _stat(proc.pid)
                if fields is not None and int(fields[1]) == demo.process.pid:
                    return proc
    pytest.fail(f"no `{subcommand}` child of the demo:\n{demo.stderr}")


def test_a_part_that_dies_is_named_and_the_demo_exits_non_zero(demo: DemoRun) -> None:
    tree = _tree(demo.process.pid)
    listener = _child_running(demo, "listen")
    os.kill(listener.pid, signal.SIGKILL)

    # announced at once, in one line, while the demo is still there to say it
    _wait_for(
        "the dead listener announced",
        lambda: any(line.startswith("FAILED: the listener") for line in demo.lines),
        30,
        demo,
    )
    (announced,) = [line for line in demo.lines if line.startswith("FAILED: ")]
    assert f"(pid {listener.pid}) was killed by SIGKILL (exit code -9)" in announced
    assert str(demo.instance.resolve() / "logs" / "listen.log") in announced

    assert demo.process.wait(30) == 1, demo.stderr
    demo.closed.wait(5)
    assert "stopped; nothing left running, but 1 part failed:" in demo.stderr
    assert "stopped; nothing left running." not in demo.stderr
    assert "logged in to PBX demo" in demo.stderr  # the end of the listener's log
    deadline = time.monotonic() + 5
    while (left := _left_over(tree)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not left, f"left running after a part died: {left}"


def test_demo_killed_takes_its_children_along(demo: DemoRun) -> None:
    tree = _tree(demo.process.pid)
    assert len(tree) >= 5, tree
    demo.process.kill()  # SIGKILL: no clean-up code runs in the demo itself
    demo.process.wait(10)
    deadline = time.monotonic() + 20
    while (left := _left_over(tree)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not left, f"orphaned after the demo was killed: {left}"


def test_port_in_use_is_named_with_the_option_to_change_it(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            _demo_command(tmp_path / "instance", port, _free_port()),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert f"port {port} for the console is in use" in result.stderr
    assert "--web-port" in result.stderr
    assert not (tmp_path / "instance").exists()  # nothing was started
