"""``callcenter check-config``: is a configuration complete, and does every part answer?

Each check returns a :class:`CheckResult`, one line of text: ``database: ok, ...`` or the
problem, e.g. ``database: cannot connect to postgresql+psycopg://callcenter:***@db/callcenter:
connection refused``, ``pbx main: login refused: Authentication failed``, ``redis: cannot
connect to redis://redis:6379/0: connection refused``. Secrets never appear (passwords in URLs
are shown as ``***``). Nothing here changes anything: the database is opened, not migrated
(an SQLite file that does not exist yet is not created); no Redis is started; a PBX gets a
``Login``, one read-only ``CoreShowChannels`` (the listener's re-sync needs it) and a
``Logoff``.

Parts checked (:data:`PARTS`): ``database`` (connect, revision at head), ``redis`` (PING;
none configured means the embedded one, only reported), ``pbx`` (every ``[[ami.pbx]]``:
TCP connect, AMI banner, Login with its secret, Logoff; the PBXs are checked concurrently),
``web`` (``web.secret_key`` present and long enough for production).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from callcenter.config import Config, PbxConfig

__all__ = [
    "DEFAULT_TIMEOUT",
    "PARTS",
    "CheckResult",
    "check_database",
    "check_pbx",
    "check_redis",
    "check_web",
    "database_error",
    "redact_database_url",
    "run_checks",
    "summary",
]

DEFAULT_TIMEOUT = 5.0
PARTS = ("database", "redis", "pbx", "web")
# Same rule as callcenter.web.MIN_SECRET_KEY_LENGTH (not imported: it pulls in Flask).
_MIN_SECRET_KEY_LENGTH = 24
_AMI_BANNER = "Asterisk Call Manager"


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One checked part: ``part`` (``database``, ``redis``, ``pbx main``, ...), whether it is
    ``ok``, and ``detail`` (what was found, or the problem and what to do)."""

    part: str
    ok: bool
    detail: str

    @property
    def line(self) -> str:
        text = " ".join(self.detail.split())  # always one line
        return f"{self.part}: ok, {text}" if self.ok else f"{self.part}: {text}"


# --------------------------------------------------------------------------- messages


def _one_line(text: str) -> str:
    for line in str(text).splitlines():
        if line.strip():
            return " ".join(line.split())
    return ""


def _lower_first(text: str) -> str:
    # "Connection refused" → "connection refused", but keep "AMI", "DNS", "PING" ...
    if len(text) > 1 and text[0].isupper() and not text[1].isupper():
        return text[0].lower() + text[1:]
    return text


def _os_error(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno and exc.errno > 0:
        return _lower_first(os.strerror(exc.errno))  # not asyncio's "Connect call failed (...)"
    if isinstance(exc, OSError) and exc.strerror:
        return _lower_first(exc.strerror)
    return _lower_first(_one_line(str(exc)) or type(exc).__name__)


def redact_database_url(url: str) -> str:
    """``url`` with its password shown as ``***`` (or the text as is if it does not parse)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "<not a database URL>"


_PG_FAILED = re.compile(r"^connection to server (?:at|on) .*? failed: (.+)$")


def database_error(exc: BaseException) -> str:
    """The driver's reason for a database error, in one short line."""
    from sqlalchemy.exc import DBAPIError

    cause: BaseException = exc.orig if isinstance(exc, DBAPIError) and exc.orig else exc
    if isinstance(cause, ModuleNotFoundError):
        return f"the database driver {cause.name} is not installed"
    text = _one_line(str(cause)) or type(cause).__name__
    text = re.sub(r"^\([\w.]+\)\s*", "", text)  # "(psycopg.OperationalError) ..."
    text = re.sub(r"^connection failed:\s*", "", text)
    match = _PG_FAILED.match(text)
    if match:
        text = match.group(1)
    text = re.sub(r"^(?:FATAL|ERROR):\s+", "", text)
    return _lower_first(text.strip())


# --------------------------------------------------------------------------- database


def check_database(url: str, *, timeout: float = DEFAULT_TIMEOUT) -> CheckResult:
    """Open the database and compare its Alembic revision with the scripts' head."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
    from sqlalchemy.pool import NullPool

    from callcenter.store.db import make_engine, normalize_url
    from callcenter.store.migrate import head_revision

    part = "database"
    shown = redact_database_url(url)
    try:
        parsed = normalize_url(make_url(url))
    except (ArgumentError, ValueError) as exc:
        return CheckResult(part, False, f"not a database URL: {_one_line(str(exc))}")
    head = head_revision()
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _check_sqlite(parsed.database, shown, head)
    connect_args: dict[str, Any] = {}
    if backend == "postgresql":
        connect_args["connect_timeout"] = max(1, round(timeout))
    try:
        engine = make_engine(parsed, poolclass=NullPool, connect_args=connect_args)
    except NoSuchModuleError:
        return CheckResult(part, False, f"unsupported database URL {shown}: unknown driver")
    except ModuleNotFoundError as exc:
        return CheckResult(part, False, f"cannot use {shown}: {database_error(exc)}")
    try:
        current = _revision(engine)
    except (SQLAlchemyError, OSError, ModuleNotFoundError) as exc:
        return CheckResult(part, False, f"cannot connect to {shown}: {database_error(exc)}")
    finally:
        engine.dispose()
    if current != head:
        return CheckResult(
            part,
            False,
            f"{shown} is at revision {current or 'none (empty database)'}, not {head}: "
            "run `callcenter db upgrade`",
        )
    return CheckResult(part, True, f"{shown} at revision {head} (head)")


def _revision(engine: Any) -> str | None:
    from alembic.migration import MigrationContext

    with engine.connect() as connection:
        revision: str | None = MigrationContext.configure(connection).get_current_revision()
        return revision


def _check_sqlite(database: str | None, shown: str, head: str | None) -> CheckResult:
    """SQLite is the embedded default: migrated by whichever command starts first."""
    from sqlalchemy import create_engine
    from sqlalchemy.exc import SQLAlchemyError
    from sqlalchemy.pool import NullPool

    part = "database"
    if not database or database == ":memory:" or database.startswith("file:"):
        return CheckResult(part, True, f"{shown} (in memory: nothing kept between runs)")
    path = Path(database).expanduser()
    if not path.exists():
        folder = next((p for p in (path.parent, *path.parent.parents) if p.exists()), None)
        if folder is None or not _writable(folder):
            return CheckResult(part, False, f"cannot create {path}: {folder} is not writable")
        return CheckResult(
            part, True, f"{shown} does not exist yet: created and migrated on first start"
        )
    engine = create_engine(f"sqlite:///{path}", poolclass=NullPool)  # no folder creation
    try:
        current = _revision(engine)
    except SQLAlchemyError as exc:
        return CheckResult(part, False, f"cannot open {shown}: {database_error(exc)}")
    finally:
        engine.dispose()
    if current == head:
        return CheckResult(part, True, f"{shown} at revision {head} (head)")
    return CheckResult(
        part,
        True,
        f"{shown} at revision {current or 'none'}: migrated to {head} on the next start",
    )


def _writable(folder: Path) -> bool:
    return os.access(folder, os.W_OK | os.X_OK)


# --------------------------------------------------------------------------- redis


_REDIS_CONNECT = re.compile(r"^Error (?:-?\d+ )?(?:while )?connecting to \S+\.\s+(.+)$")


def _redis_reason(exc: BaseException) -> str:
    text = _one_line(str(exc)) or type(exc).__name__
    match = _REDIS_CONNECT.match(text)
    if match:
        text = match.group(1)
    return _lower_first(text.rstrip(".").strip())


def check_redis(config: Config, *, timeout: float = DEFAULT_TIMEOUT) -> CheckResult:
    """PING the configured Redis; without one, say that the embedded Redis is used."""
    import redis

    from callcenter.embedded_redis import connect, redact_url

    part = "redis"
    url = config.redis.url
    if not url:
        folder = config.instance_path / "redis"
        return CheckResult(
            part,
            True,
            f"none configured: listen, worker and web use the embedded Redis in {folder} "
            "(started by the first of them; not started by this check)",
        )
    shown = redact_url(url)
    try:
        client = connect(url, socket_timeout=timeout, socket_connect_timeout=timeout, retries=0)
    except ValueError as exc:
        return CheckResult(part, False, f"not a Redis URL {shown}: {_one_line(str(exc))}")
    try:
        started = time.monotonic()
        client.ping()
        elapsed = (time.monotonic() - started) * 1000
        version = client.info("server").get("redis_version", "?")
    except redis.exceptions.AuthenticationError as exc:
        return CheckResult(part, False, f"login to {shown} refused: {_redis_reason(exc)}")
    except redis.exceptions.ResponseError as exc:
        if "NOAUTH" in str(exc) or "AUTH" in str(exc).upper():
            return CheckResult(part, False, f"login to {shown} refused: {_redis_reason(exc)}")
        return CheckResult(part, False, f"{shown} answered with an error: {_redis_reason(exc)}")
    except (redis.exceptions.RedisError, OSError) as exc:
        return CheckResult(part, False, f"cannot connect to {shown}: {_redis_reason(exc)}")
    finally:
        client.close()
    return CheckResult(part, True, f"{shown} answers PING in {elapsed:.0f} ms (Redis {version})")


# --------------------------------------------------------------------------- PBX


class _AmiProblem(Exception):
    """What went wrong talking AMI to a PBX, as the one-line text to show."""


async def _ami_session(pbx: PbxConfig, secret: str, timeout: float) -> str:
    """Login, CoreShowChannels, Logoff; returns the banner. Raises _AmiProblem."""
    from callcenter.ami.protocol import BANNER_KEY, AmiParser, encode_action

    where = f"{pbx.host}:{pbx.port}"
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(pbx.host, pbx.port), timeout
        )
    except TimeoutError:
        raise _AmiProblem(f"cannot connect to {where}: no answer in {timeout:g} s") from None
    except OSError as exc:
        raise _AmiProblem(f"cannot connect to {where}: {_os_error(exc)}") from None

    parser = AmiParser(on_warning=lambda _message: None)
    pending: list[dict[str, str]] = []

    async def next_message(waiting_for: str = "an answer") -> dict[str, str]:
        while not pending:
            try:
                data = await asyncio.wait_for(reader.read(65536), timeout)
            except TimeoutError:
                raise _AmiProblem(f"no {waiting_for} from {where} in {timeout:g} s") from None
            except OSError as exc:
                raise _AmiProblem(f"connection to {where} lost: {_os_error(exc)}") from None
            if not data:
                raise _AmiProblem(f"{where} closed the connection")
            pending.extend(parser.feed(data))
        return pending.pop(0)

    async def response_to(action_id: str) -> dict[str, str]:
        while True:
            message = await next_message()
            if "Response" in message and message.get("ActionID") == action_id:
                return message

    try:
        first = await next_message("AMI banner")
        banner = first.get(BANNER_KEY, "")
        if not banner.startswith(_AMI_BANNER):
            shown = banner or _one_line(" ".join(f"{k}: {v}" for k, v in first.items()))
            raise _AmiProblem(f"{where} does not speak AMI (it sent {shown[:60]!r})")
        writer.write(
            encode_action(
                {
                    "Action": "Login",
                    "ActionID": "check-login",
                    "Username": pbx.username,
                    "Secret": secret,
                    "Events": "off",
                }
            )
        )
        login = await response_to("check-login")
        if login.get("Response", "").lower() != "success":
            reason = login.get("Message") or login.get("Response") or "refused"
            raise _AmiProblem(f"login refused: {reason} (user {pbx.username!r} at {where})")
        writer.write(encode_action({"Action": "CoreShowChannels", "ActionID": "check-rights"}))
        rights = await response_to("check-rights")
        writer.write(encode_action({"Action": "Logoff", "ActionID": "check-logoff"}))
        with contextlib.suppress(_AmiProblem):  # Asterisk may close before "Goodbye" arrives
            await response_to("check-logoff")
        if rights.get("Response", "").lower() != "success":
            reason = rights.get("Message") or "refused"
            raise _AmiProblem(
                f"logged in as {pbx.username!r} at {where}, but CoreShowChannels was refused "
                f"({reason}): give the user write = system (see docker/asterisk/manager.conf)"
            )
        return banner
    finally:
        writer.close()
        with contextlib.suppress(OSError, asyncio.TimeoutError):
            await asyncio.wait_for(writer.wait_closed(), 1.0)


async def check_pbx(pbx: PbxConfig, *, timeout: float = DEFAULT_TIMEOUT) -> CheckResult:
    """Connect to the PBX's AMI, log in with its secret and log off."""
    part = f"pbx {pbx.name}"
    if not pbx.secret:
        return CheckResult(
            part,
            False,
            "no AMI secret: set CALLCENTER_AMI__SECRET (or the PBX's secret in a config "
            "file outside git)",
        )
    where = f"{pbx.host}:{pbx.port}"
    try:
        banner = await asyncio.wait_for(_ami_session(pbx, pbx.secret, timeout), timeout * 3)
    except _AmiProblem as exc:
        return CheckResult(part, False, str(exc))
    except TimeoutError:
        return CheckResult(part, False, f"{where} did not finish the AMI login in time")
    version = banner.rpartition("/")[2] or "?"
    return CheckResult(part, True, f"{where}: logged in as {pbx.username!r} (AMI {version})")


async def _check_pbxs(pbxs: Sequence[PbxConfig], timeout: float) -> list[CheckResult]:
    results = await asyncio.gather(*(check_pbx(pbx, timeout=timeout) for pbx in pbxs))
    return list(results)


# --------------------------------------------------------------------------- web


def check_web(config: Config) -> CheckResult:
    key = config.web.secret_key
    if not key:
        return CheckResult(
            "web",
            False,
            "web.secret_key is not set: `callcenter web` refuses to start; set "
            "CALLCENTER_WEB__SECRET_KEY to a long random value",
        )
    if len(key) < _MIN_SECRET_KEY_LENGTH:
        return CheckResult(
            "web",
            False,
            f"web.secret_key is too short ({len(key)} characters): use at least "
            f"{_MIN_SECRET_KEY_LENGTH} random characters",
        )
    return CheckResult("web", True, f"secret key set, language {config.web.language}")


# --------------------------------------------------------------------------- all


def run_checks(
    config: Config,
    *,
    parts: Iterable[str] = PARTS,
    timeout: float = DEFAULT_TIMEOUT,
) -> list[CheckResult]:
    """Check the chosen ``parts`` of ``config`` in the order of :data:`PARTS`."""
    chosen = set(parts)
    unknown = chosen - set(PARTS)
    if unknown:
        raise ValueError(f"unknown part(s): {', '.join(sorted(unknown))}")
    results: list[CheckResult] = []
    if "database" in chosen:
        results.append(check_database(config.database.url, timeout=timeout))
    if "redis" in chosen:
        results.append(check_redis(config, timeout=timeout))
    if "pbx" in chosen:
        results.extend(asyncio.run(_check_pbxs(config.ami.pbx, timeout)))
    if "web" in chosen:
        results.append(check_web(config))
    return results


def summary(results: Sequence[CheckResult]) -> str:
    """``all 5 parts ok`` or ``2 problem(s) in 5 parts``."""
    problems = sum(not r.ok for r in results)
    if not problems:
        return f"all {len(results)} part(s) ok"
    return f"{problems} problem(s) in {len(results)} part(s)"
