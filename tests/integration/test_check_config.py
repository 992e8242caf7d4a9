"""``callcenter check-config`` and ``callcenter db`` against real parts.

A real AMI server (:class:`AmiReplayServer` with a secret, on its own event loop in a
thread), the test Redis, SQLite and PostgreSQL (``db_url``), and ports where nothing listens.
Each problem must come out as one clear line with a non-zero exit code; a good configuration
gives ``ok`` lines and exit code 0. The commands are invoked as click commands, the way the
``callcenter`` group runs them.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from callcenter.ami.replay_server import AmiReplayServer
from callcenter.commands.check_config import check_config
from callcenter.commands.db import db
from callcenter.store.migrate import head_revision, upgrade

SECRET = secrets.token_urlsafe(12)  # per test run: no secret committed
WEB_KEY = "k" * 32


class AmiServerThread:
    """An AmiReplayServer (no traffic) on an event loop of its own, for blocking code."""

    def __init__(self, secret: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.server = AmiReplayServer(events=[], secret=secret, username="callcenter")
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> AmiServerThread:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.server.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    @property
    def port(self) -> int:
        return self.server.port


@pytest.fixture
def ami_server() -> Iterator[AmiServerThread]:
    with AmiServerThread(SECRET) as server:
        yield server


def _closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _write_config(
    tmp_path: Path,
    *,
    database: str,
    redis: str = "",
    ami_port: int,
    ami_secret: str | None = SECRET,
    web_key: str | None = WEB_KEY,
) -> Path:
    text = [
        f"instance_path = {json.dumps(str(tmp_path / 'instance'))}",
        f"[database]\nurl = {json.dumps(database)}",
        f"[redis]\nurl = {json.dumps(redis)}",
    ]
    if web_key is not None:
        text.append(f"[web]\nsecret_key = {json.dumps(web_key)}")
    pbx = f'[[ami.pbx]]\nname = "main"\nhost = "127.0.0.1"\nport = {ami_port}'
    if ami_secret is not None:
        pbx += f"\nsecret = {json.dumps(ami_secret)}"
    text.append(pbx)
    text.append('[[lines]]\nnumber = "12345"\ndesk_phones = ["PJSIP/2001", "PJSIP/2002"]')
    path = tmp_path / "callcenter.toml"
    path.write_text("\n\n".join(text) + "\n", "utf-8")
    return path


def _run(command: object, *args: str) -> Result:
    clean = {"CALLCENTER_CONFIG": None, "CALLCENTER_AMI__SECRET": None}
    return CliRunner(env=clean).invoke(command, list(args))  # type: ignore[arg-type]


def _lines(result: Result) -> dict[str, str]:
    """stdout lines by part (``database``, ``pbx main``, ...)."""
    lines = {}
    for line in result.stdout.splitlines():
        part, _, rest = line.partition(": ")
        assert part not in lines, f"two lines for {part}:\n{result.stdout}"
        lines[part] = rest
    return lines


# --------------------------------------------------------------------------- all good


@pytest.mark.redis
def test_everything_reachable_exits_0(
    tmp_path: Path, db_url: str, redis_url: str, ami_server: AmiServerThread
) -> None:
    upgrade(db_url)
    config = _write_config(tmp_path, database=db_url, redis=redis_url, ami_port=ami_server.port)

    result = _run(check_config, "--config", str(config))

    assert result.exit_code == 0, result.output
    lines = _lines(result)
    assert set(lines) == {"config", "database", "redis", "pbx main", "web"}
    assert all(text.startswith("ok, ") for text in lines.values()), result.stdout
    assert f"revision {head_revision()} (head)" in lines["database"]
    assert "answers PING" in lines["redis"]
    assert f"127.0.0.1:{ami_server.port}: logged in as 'callcenter'" in lines["pbx main"]
    assert SECRET not in result.output and WEB_KEY not in result.output


def test_embedded_redis_is_reported_not_started(tmp_path: Path) -> None:
    config = _write_config(
        tmp_path, database=f"sqlite:///{tmp_path / 'cc.db'}", ami_port=_closed_port()
    )

    result = _run(check_config, "--config", str(config), "--part", "redis")

    assert result.exit_code == 0, result.output
    assert "embedded Redis" in _lines(result)["redis"]
    assert not (tmp_path / "instance" / "redis").exists()


# --------------------------------------------------------------------------- one line each


def test_wrong_ami_secret_is_one_line(tmp_path: Path, ami_server: AmiServerThread) -> None:
    wrong = secrets.token_urlsafe(12)
    config = _write_config(
        tmp_path,
        database=f"sqlite:///{tmp_path / 'cc.db'}",
        ami_port=ami_server.port,
        ami_secret=wrong,
    )

    result = _run(check_config, "--config", str(config), "--part", "pbx")

    assert result.exit_code == 1
    assert _lines(result)["pbx main"] == (
        f"login refused: Authentication failed (user 'callcenter' at 127.0.0.1:{ami_server.port})"
    )
    assert wrong not in result.output


def test_unreachable_pbx_and_missing_secret(tmp_path: Path) -> None:
    port = _closed_port()
    config = _write_config(tmp_path, database="sqlite://", ami_port=port)
    result = _run(check_config, "--config", str(config), "--part", "pbx", "--timeout", "2")
    assert result.exit_code == 1
    assert _lines(result)["pbx main"] == f"cannot connect to 127.0.0.1:{port}: connection refused"

    config = _write_config(tmp_path, database="sqlite://", ami_port=port, ami_secret=None)
    result = _run(check_config, "--config", str(config), "--part", "pbx")
    assert result.exit_code == 1
    assert _lines(result)["pbx main"].startswith("no AMI secret: set CALLCENTER_AMI__SECRET")


def test_unreachable_redis_is_one_line(tmp_path: Path) -> None:
    port = _closed_port()
    config = _write_config(
        tmp_path,
        database="sqlite://",
        redis=f"redis://:hunter2@127.0.0.1:{port}/0",
        ami_port=_closed_port(),
    )

    result = _run(check_config, "--config", str(config), "--part", "redis", "--timeout", "2")

    assert result.exit_code == 1
    assert _lines(result)["redis"] == (
        f"cannot connect to redis://:***@127.0.0.1:{port}/0: connection refused"
    )
    assert "hunter2" not in result.output


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "postgresql://callcenter:hunter2@127.0.0.1:{port}/callcenter",
            "cannot connect to postgresql://callcenter:***@127.0.0.1:{port}/callcenter: "
            "connection refused",
        ),
        ("no database at all", "not a database URL: Could not parse SQLAlchemy URL"),
        ("oracle+nodriver://a@b/c", "unsupported database URL oracle+nodriver://a@b/c"),
    ],
    ids=["unreachable", "not-a-url", "unknown-driver"],
)
def test_bad_database_url_is_one_line(tmp_path: Path, url: str, expected: str) -> None:
    port = _closed_port()
    url = url.format(port=port)
    config = _write_config(tmp_path, database=url, ami_port=_closed_port())

    result = _run(check_config, "--config", str(config), "--part", "database", "--timeout", "2")

    assert result.exit_code == 1
    assert _lines(result)["database"].startswith(expected.format(port=port)), result.stdout
    assert "hunter2" not in result.output


def test_database_behind_head(tmp_path: Path, db_url: str, db_backend: str) -> None:
    upgrade(db_url, "0001")
    config = _write_config(tmp_path, database=db_url, ami_port=_closed_port())

    result = _run(check_config, "--config", str(config), "--part", "database")

    line = _lines(result)["database"]
    if db_backend == "sqlite":  # the embedded database is migrated by the first command
        assert result.exit_code == 0
        assert line.endswith(f"at revision 0001: migrated to {head_revision()} on the next start")
    else:
        assert result.exit_code == 1
        assert line.endswith(
            f"is at revision 0001, not {head_revision()}: run `callcenter db upgrade`"
        )


def test_missing_web_secret_and_bad_config(tmp_path: Path) -> None:
    config = _write_config(tmp_path, database="sqlite://", ami_port=1, web_key=None)
    result = _run(check_config, "--config", str(config), "--part", "web")
    assert result.exit_code == 1
    assert _lines(result)["web"].startswith("web.secret_key is not set")

    config.write_text('timezone = "Mars/Olympus"\n', "utf-8")
    result = _run(check_config, "--config", str(config))
    assert result.exit_code == 1
    assert result.stdout == "config: timezone: unknown time zone 'Mars/Olympus'\n"


# --------------------------------------------------------------------------- db


def test_db_upgrade_then_check(tmp_path: Path, db_url: str) -> None:
    config = _write_config(tmp_path, database=db_url, ami_port=1)
    head = head_revision()

    before = _run(db, "check", "--config", str(config))
    assert before.exit_code == 1
    assert f"database is at revision None, the scripts' head is {head}" in before.stdout

    first = _run(db, "upgrade", "--config", str(config))
    assert first.exit_code == 0, first.output
    assert first.stdout.splitlines()[-1].endswith(f"upgraded from none (empty) to {head}")

    again = _run(db, "upgrade", "--config", str(config))
    assert again.exit_code == 0, again.output
    assert again.stdout.strip().endswith(f"already at revision {head} (head); nothing to do")

    after = _run(db, "check", "--config", str(config))
    assert after.exit_code == 0, after.output
    assert after.stdout.strip().endswith(f"at revision {head} (head), models match")


def test_db_upgrade_unreachable_database(tmp_path: Path) -> None:
    port = _closed_port()
    url = f"postgresql://callcenter:hunter2@127.0.0.1:{port}/callcenter"
    config = _write_config(tmp_path, database=url, ami_port=1)

    result = _run(db, "upgrade", "--config", str(config))

    assert result.exit_code == 1
    assert result.output.strip() == (
        f"Error: cannot connect to postgresql://callcenter:***@127.0.0.1:{port}/callcenter: "
        "connection refused"
    )
