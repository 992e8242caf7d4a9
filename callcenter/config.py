"""Configuration in layers, loaded once and passed down.

Layers, later ones win:

1. built-in defaults (the table below);
2. one TOML file: the ``path`` argument, else the file named by ``CALLCENTER_CONFIG``, else
   ``./callcenter.toml`` when it exists (a missing file is an error only when it was named);
3. ``CALLCENTER_*`` environment variables; ``__`` separates nested keys, e.g.
   ``CALLCENTER_DATABASE__URL``, ``CALLCENTER_TRACKER__IDLE_TIMEOUT_SECONDS``,
   ``CALLCENTER_AMI__PBX__0__HOST`` (a number indexes a list);
4. explicit overrides (command-line flags, tests): ``{"tracker.idle_timeout_seconds": 60}``
   or nested ``{"tracker": {"idle_timeout_seconds": 60}}``.

Environment values are text, converted to the key's type: numbers as written, booleans as
``true/false/1/0/yes/no/on/off``, lists and tables as JSON (``CALLCENTER_LINES__0__DESK_PHONES=
'["SIP/duty1", "PJSIP/2001"]'``); an empty value clears an optional key (a secret). A variable
whose name contains ``__`` or names a top-level key is a setting, and a misspelt one is an
error; other ``CALLCENTER_*`` names without ``__`` (``CALLCENTER_CONFIG``,
``CALLCENTER_TEST_POSTGRES_URL``) are not settings and are left alone. When both a whole
table and one of its keys are set by variables, the more specific variable wins.

================================  ====================================  ==================
key                               default                               meaning
================================  ====================================  ==================
``instance_path``                 ``./instance`` (made absolute)        data folder
``timezone``                      ``"Asia/Shanghai"``                   display time zone
``database.url``                  ``sqlite:///<instance_path>/          SQLAlchemy URL
                                  callcenter.db``
``redis.url``                     ``""`` (start the embedded Redis)     Redis URL
``tracker.idle_timeout_seconds``  ``7200.0``                            close silent calls
``spot_checks.per_line``          ``0``                                 checks/line/day
``spot_checks.seed``              none (secret)                         makes the times
``spot_checks.context``           ``"from-trunk"``                      Local/<line>@ctx
``spot_checks.prompt``            ``"demo-congrats"``                   sound played
``spot_checks.ring_timeout_seconds`` ``30.0``                           ring before failed
``spot_checks.pbx``               none (latest call's PBX)              PBX that dials
``ami.secret``                    none                                  shared AMI secret
``ami.pbx[].name``                ``"pbx"``                             PBX name
``ami.pbx[].host``                ``"127.0.0.1"``                       AMI host
``ami.pbx[].port``                ``5038``                              AMI port
``ami.pbx[].username``            ``"callcenter"``                      AMI user
``ami.pbx[].secret``              ``ami.secret``                        AMI secret
``ami.pbx[].reconnect_max_seconds`` ``60.0``                            reconnect back-off cap
``ami.pbx[].ping_interval_seconds`` ``10.0``                            AMI Ping period
``ami.pbx[].ping_timeout_seconds`` ``10.0``                             silence = link dead
``ami.pbx[].login_timeout_seconds`` ``10.0``                            Login answer wait
``ami.pbx[].originate_context``   ``"from-internal"``                   click-to-call context
``web.secret_key``                none (required in production)         Flask secret key
``web.language``                  ``"zh_CN"``                           default UI language
``lines[].number``                required                              duty line number
``lines[].unit``                  ``""``                                unit (单位)
``lines[].name``                  ``""``                                display name
``lines[].desk_phones``           ``[]``                                answering endpoints
``lines[].answer_within_seconds`` ``15.0``                              slow-answer limit
``lines[].offline_grace_seconds`` ``300.0``                             offline tolerance
``lines[].unmanned_count``        ``2``                                 missed calls ...
``lines[].unmanned_window_seconds`` ``1800.0``                          ... within window
``lines[].schedule``              ``"24h"``                             when it is staffed
================================  ====================================  ==================

With no ``[[ami.pbx]]`` table there is one PBX with the defaults above. ``docs/configuration.md``
explains every key. Secrets (``ami.secret``, ``web.secret_key``) have no default and belong in
the environment or a file outside git; a missing secret is not an error here, the part that
needs it refuses to start.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import os
import re
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from callcenter.rules.schedule import ScheduleError, parse_schedule

__all__ = [
    "DEFAULT_FILE_NAME",
    "ENDPOINT_RE",
    "ENV_FILE_VARIABLE",
    "ENV_PREFIX",
    "SUPPORTED_LANGUAGES",
    "AmiConfig",
    "Config",
    "ConfigError",
    "DatabaseConfig",
    "LineConfig",
    "PbxConfig",
    "RedisConfig",
    "SpotChecksConfig",
    "TrackerConfig",
    "WebConfig",
    "load_config",
]

ENV_PREFIX = "CALLCENTER_"
ENV_FILE_VARIABLE = "CALLCENTER_CONFIG"
DEFAULT_FILE_NAME = "callcenter.toml"
SUPPORTED_LANGUAGES = ("zh_CN", "en")

_SECRET = {"secret": True}
ENDPOINT_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*/\S+$")


class ConfigError(Exception):
    """A configuration problem, naming where it came from and the key concerned."""

    def __init__(self, problem: str, *, key: str = "", source: str = "") -> None:
        self.problem = problem
        self.key = key
        self.source = source
        parts = [part for part in (source, key, problem) if part]
        super().__init__(": ".join(parts))


@dataclass(frozen=True, slots=True)
class DatabaseConfig:
    """``[database]``: where calls are stored."""

    url: str = ""  # empty: sqlite:///<instance_path>/callcenter.db, filled in by load_config


@dataclass(frozen=True, slots=True)
class RedisConfig:
    """``[redis]``: live state and the RQ queues."""

    url: str = ""  # empty: the program starts its embedded Redis


@dataclass(frozen=True, slots=True)
class TrackerConfig:
    """``[tracker]``: the call tracker."""

    idle_timeout_seconds: float = 7200.0


@dataclass(frozen=True, slots=True)
class SpotChecksConfig:
    """``[spot_checks]``: the test calls the workers place to every monitored duty line."""

    # checks per line and day, at random times in its monitored hours; 0 (the default): off
    # until the dialplan context below exists, so a missing context never flags a duty room
    per_line: int = 0
    seed: str | None = field(default=None, repr=False, metadata=_SECRET)  # makes the times
    context: str = "from-trunk"  # dialplan context where Local/<line>@context rings the line
    prompt: str = "demo-congrats"  # the sound played to whoever answers
    ring_timeout_seconds: float = 30.0
    pbx: str | None = None  # None: the PBX that carried the line's latest call, else the first


@dataclass(frozen=True, slots=True)
class PbxConfig:
    """``[[ami.pbx]]``: one Asterisk reached over AMI."""

    name: str = "pbx"
    host: str = "127.0.0.1"
    port: int = 5038
    username: str = "callcenter"
    secret: str | None = field(default=None, repr=False, metadata=_SECRET)
    reconnect_max_seconds: float = 60.0
    originate_context: str = "from-internal"  # where click-to-call dials the number
    # A PBX that stops answering over a connection that stays open (a pulled cable) is
    # noticed within ping_interval + ping_timeout seconds, then reconnected.
    ping_interval_seconds: float = 10.0
    ping_timeout_seconds: float = 10.0
    login_timeout_seconds: float = 10.0  # no answer to Login (nor banner): give up, retry


@dataclass(frozen=True, slots=True)
class AmiConfig:
    """``[ami]``: the PBXs; ``secret`` is shared by every PBX that has none of its own."""

    secret: str | None = field(default=None, repr=False, metadata=_SECRET)
    pbx: tuple[PbxConfig, ...] = (PbxConfig(),)


@dataclass(frozen=True, slots=True)
class WebConfig:
    """``[web]``: the Flask console."""

    secret_key: str | None = field(default=None, repr=False, metadata=_SECRET)
    language: str = "zh_CN"


@dataclass(frozen=True, slots=True)
class LineConfig:
    """``[[lines]]``: one monitored duty line (值班电话) and its policy."""

    number: str
    unit: str = ""
    name: str = ""
    desk_phones: tuple[str, ...] = ()
    answer_within_seconds: float = 15.0
    offline_grace_seconds: float = 300.0
    unmanned_count: int = 2
    unmanned_window_seconds: float = 1800.0
    schedule: str = "24h"


@dataclass(frozen=True, slots=True)
class Config:
    """The whole configuration; build it with :func:`load_config`."""

    instance_path: Path = Path("instance")
    timezone: str = "Asia/Shanghai"
    database: DatabaseConfig = DatabaseConfig()
    redis: RedisConfig = RedisConfig()
    tracker: TrackerConfig = TrackerConfig()
    spot_checks: SpotChecksConfig = SpotChecksConfig()
    ami: AmiConfig = AmiConfig()
    web: WebConfig = WebConfig()
    lines: tuple[LineConfig, ...] = ()
    _by_number: Mapping[str, LineConfig] = field(init=False, repr=False, compare=False)
    _by_endpoint: Mapping[str, LineConfig] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_number: dict[str, LineConfig] = {}
        by_endpoint: dict[str, LineConfig] = {}
        for line in self.lines:
            by_number.setdefault(line.number, line)
            for endpoint in line.desk_phones:
                by_endpoint.setdefault(endpoint, line)
        object.__setattr__(self, "_by_number", types.MappingProxyType(by_number))
        object.__setattr__(self, "_by_endpoint", types.MappingProxyType(by_endpoint))

    def line_for_number(self, number: str | None) -> LineConfig | None:
        """The duty line with this number, exactly as configured; ``None`` if none."""
        if number is None:
            return None
        return self._by_number.get(number)

    def line_for_endpoint(self, endpoint: str | None) -> LineConfig | None:
        """The first line (in file order) that lists ``endpoint`` as a desk phone.

        Exact, case-sensitive comparison (``SIP/duty1``). A desk phone may serve several
        lines (a phone on a line and on its ring group); see :meth:`lines_for_endpoint`.
        """
        if endpoint is None:
            return None
        return self._by_endpoint.get(endpoint)

    def lines_for_endpoint(self, endpoint: str) -> tuple[LineConfig, ...]:
        """Every line that lists ``endpoint`` as a desk phone, in file order."""
        return tuple(line for line in self.lines if endpoint in line.desk_phones)


# --------------------------------------------------------------------------- loading


def load_config(
    path: Path | str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, object] | None = None,
) -> Config:
    """Build the configuration from defaults, the TOML file, the environment and overrides.

    ``env`` defaults to ``os.environ``; pass ``{}`` in tests for a clean environment.
    Raises :class:`ConfigError` naming the key and the problem.
    """
    environ: Mapping[str, str] = os.environ if env is None else env
    tree = _defaults_tree()

    file = _find_file(path, environ)
    if file is not None:
        _apply(tree, (), _read_toml(file), source=str(file))

    for name, segments in _setting_variables(environ):
        source = f"environment variable {name}"
        _apply(tree, segments, environ[name], source=source, text=True)

    for key, value in (overrides or {}).items():
        segments = tuple(_split_override_key(key))
        _apply(tree, segments, value, source="override")

    config = _build(tree, Config)
    if not isinstance(config, Config):  # pragma: no cover - _build returns the class asked
        raise TypeError("config tree did not build a Config")
    config = _finish(config)
    _validate(config)
    return config


def _find_file(path: Path | str | None, env: Mapping[str, str]) -> Path | None:
    if path is not None:
        file, named_by = Path(path), "config file"
    elif env.get(ENV_FILE_VARIABLE):
        file, named_by = Path(env[ENV_FILE_VARIABLE]), f"config file from {ENV_FILE_VARIABLE}"
    else:
        default = Path(DEFAULT_FILE_NAME)
        return default if default.is_file() else None
    file = file.expanduser()
    if not file.exists():
        raise ConfigError(f"{named_by} not found", source=str(file))
    if not file.is_file():
        raise ConfigError(f"{named_by} is not a file", source=str(file))
    return file


def _read_toml(file: Path) -> dict[str, Any]:
    try:
        with file.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        # The message carries the position: "... (at line 3, column 7)".
        raise ConfigError(f"invalid TOML: {exc}", source=str(file)) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text: {exc}", source=str(file)) from exc
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc}", source=str(file)) from exc


def _setting_variables(env: Mapping[str, str]) -> list[tuple[str, tuple[str, ...]]]:
    top_level = set(_field_types(Config))
    found: list[tuple[str, tuple[str, ...]]] = []
    for name in env:
        if not name.startswith(ENV_PREFIX) or name == ENV_FILE_VARIABLE:
            continue
        segments = tuple(part.lower() for part in name[len(ENV_PREFIX) :].split("__"))
        if len(segments) == 1 and segments[0] not in top_level:
            continue  # CALLCENTER_TEST_POSTGRES_URL and friends: not settings
        found.append((name, segments))
    # Whole tables first, then their keys: the more specific variable wins.
    found.sort(key=lambda item: (len(item[1]), item[0]))
    return found


def _split_override_key(key: str) -> list[str]:
    if not isinstance(key, str) or not key:
        raise ConfigError(f"override keys are dotted strings, got {key!r}", source="override")
    return key.split(".")


# --------------------------------------------------------------------------- the schema


@cache
def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init}


@cache
def _secret_fields(cls: type) -> frozenset[str]:
    return frozenset(f.name for f in dataclasses.fields(cls) if f.metadata.get("secret"))


def _is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _optional_inner(tp: Any) -> Any | None:
    """``X`` for ``X | None``, else ``None``."""
    if typing.get_origin(tp) in (types.UnionType, typing.Union):
        args = [arg for arg in typing.get_args(tp) if arg is not type(None)]
        if len(args) == 1:
            return args[0]
    return None


def _tuple_item(tp: Any) -> Any | None:
    """``X`` for ``tuple[X, ...]``, else ``None``."""
    if typing.get_origin(tp) is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return args[0]
    return None


def _describe(tp: Any) -> str:
    inner = _optional_inner(tp)
    if inner is not None:
        return _describe(inner)
    item = _tuple_item(tp)
    if item is not None:
        return "a list of tables" if _is_dataclass_type(item) else f"a list of {_plural(item)}"
    if _is_dataclass_type(tp):
        return "a table"
    return {
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "true or false",
        Path: "a path (string)",
    }.get(tp, str(tp))


def _plural(tp: Any) -> str:
    return {str: "strings", int: "integers", float: "numbers", bool: "booleans"}.get(tp, str(tp))


def _got(value: object, secret: bool) -> str:
    kind = {
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "string",
        list: "list",
        tuple: "list",
        dict: "table",
    }.get(type(value), type(value).__name__)
    if secret:
        return kind
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return f"{kind} {shown}"


def _key_text(prefix: str, segment: str | int) -> str:
    if isinstance(segment, int):
        return f"{prefix}[{segment}]"
    return f"{prefix}.{segment}" if prefix else segment


# --------------------------------------------------------------------------- layers


def _defaults_tree() -> dict[str, Any]:
    tree = _to_tree(Config())
    if not isinstance(tree, dict):  # pragma: no cover
        raise TypeError("defaults must be a table")
    return tree


def _to_tree(value: object) -> object:
    """A dataclass value as nested plain dicts and lists (the layers' working form)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: _to_tree(getattr(value, f.name)) for f in dataclasses.fields(value) if f.init
        }
    if isinstance(value, tuple):
        return [_to_tree(item) for item in value]
    return value


def _apply(
    tree: dict[str, Any],
    segments: tuple[str, ...],
    value: object,
    *,
    source: str,
    text: bool = False,
) -> None:
    """Set ``value`` at ``segments`` in ``tree``; tables merge key by key, the rest replaces."""
    tp: Any = Config
    container: Any = None
    slot: str | int | None = None
    node: Any = tree
    key = ""
    secret = False
    for segment in segments:
        if _is_dataclass_type(tp):
            fields = _field_types(tp)
            if segment not in fields:
                problem = _unknown_key(segment, fields)
                raise ConfigError(problem, key=_key_text(key, segment), source=source)
            secret = segment in _secret_fields(tp)
            container, slot, tp = node, segment, fields[segment]
            key = _key_text(key, segment)
            node = node.get(segment) if isinstance(node, dict) else None
        elif _tuple_item(tp) is not None:
            if not segment.isdigit():
                raise ConfigError(
                    f"a list: expected an index (0, 1, ...), got {segment!r}",
                    key=key,
                    source=source,
                )
            index = int(segment)
            if not isinstance(node, list) or index >= len(node):
                size = len(node) if isinstance(node, list) else 0
                raise ConfigError(
                    f"no item {index}: the list has {size} item(s); set the whole list to add one",
                    key=key,
                    source=source,
                )
            container, slot, tp = node, index, _tuple_item(tp)
            key = _key_text(key, index)
            node = node[index]
        else:
            raise ConfigError(f"not a table, cannot set {segment!r} in it", key=key, source=source)

    if text:
        if not isinstance(value, str):  # pragma: no cover - environments hold strings
            raise ConfigError("environment values are strings", key=key, source=source)
        value = _parse_text(value, tp, key=key, source=source, secret=secret)
    normalized = _normalize(value, tp, key=key, source=source, complete=False, secret=secret)

    if container is None:  # the whole configuration (a TOML document)
        if not isinstance(normalized, dict):  # pragma: no cover - _normalize checked it
            raise TypeError("expected a table")
        _merge(tree, normalized, Config)
    elif isinstance(normalized, dict) and isinstance(node, dict) and _is_dataclass_type(tp):
        _merge(node, normalized, tp)
    else:
        container[slot] = normalized


def _merge(target: dict[str, Any], update: dict[str, Any], tp: Any) -> None:
    fields = _field_types(tp)
    for name, value in update.items():
        sub = fields[name]
        if _is_dataclass_type(sub) and isinstance(value, dict):
            existing = target.get(name)
            if isinstance(existing, dict):
                _merge(existing, value, sub)
                continue
        target[name] = value


def _unknown_key(segment: str, fields: Mapping[str, Any]) -> str:
    close = difflib.get_close_matches(segment, list(fields), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown key (known: {', '.join(fields)}){hint}"


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _parse_text(text: str, tp: Any, *, key: str, source: str, secret: bool) -> object:
    """Turn an environment value into a Python value of (roughly) type ``tp``."""
    inner = _optional_inner(tp)
    if inner is not None:
        if text == "":
            return None
        tp = inner
    shown = "a secret value" if secret else repr(text)
    if tp is str:
        return text
    if tp is Path:
        return Path(text)
    if tp is bool:
        lowered = text.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ConfigError(f"expected true or false, got {shown}", key=key, source=source)
    if tp is int:
        try:
            return int(text.strip())
        except ValueError:
            raise ConfigError(f"expected an integer, got {shown}", key=key, source=source) from None
    if tp is float:
        try:
            number = float(text.strip())
        except ValueError:
            raise ConfigError(f"expected a number, got {shown}", key=key, source=source) from None
        return number
    # Lists and tables: JSON.
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        item = _tuple_item(tp)
        if item is None:
            example = '{"url": "..."}'
        elif _is_dataclass_type(item):
            example = '[{"number": "12345"}]'
        else:
            example = '["SIP/duty1", "PJSIP/2001"]'
        raise ConfigError(
            f"expected {_describe(tp)} as JSON (like {example}), got {shown}: {exc}",
            key=key,
            source=source,
        ) from None


def _normalize(
    value: object, tp: Any, *, key: str, source: str, complete: bool, secret: bool = False
) -> object:
    """Check ``value`` against ``tp`` and return it in working form (dicts, lists, scalars)."""
    inner = _optional_inner(tp)
    if inner is not None:
        if value is None:
            return None
        tp = inner

    def wrong() -> ConfigError:
        return ConfigError(
            f"expected {_describe(tp)}, got {_got(value, secret)}", key=key, source=source
        )

    if _is_dataclass_type(tp):
        if not isinstance(value, Mapping):
            raise wrong()
        fields = _field_types(tp)
        secrets = _secret_fields(tp)
        table: dict[str, Any] = {}
        for name, sub_value in value.items():
            sub_key = _key_text(key, str(name))
            if name not in fields:
                raise ConfigError(_unknown_key(str(name), fields), key=sub_key, source=source)
            table[name] = _normalize(
                sub_value,
                fields[name],
                key=sub_key,
                source=source,
                complete=complete,
                secret=name in secrets,
            )
        if complete:
            for f in dataclasses.fields(tp):
                required = f.default is dataclasses.MISSING
                required = required and f.default_factory is dataclasses.MISSING
                if f.init and required and f.name not in table:
                    missing_key = _key_text(key, f.name)
                    raise ConfigError("required key is missing", key=missing_key, source=source)
        return table

    item = _tuple_item(tp)
    if item is not None:
        if not isinstance(value, list | tuple):
            raise wrong()
        return [
            _normalize(v, item, key=_key_text(key, i), source=source, complete=True, secret=secret)
            for i, v in enumerate(value)
        ]

    if tp is bool:
        if not isinstance(value, bool):
            raise wrong()
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise wrong()
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise wrong()
        number = float(value)
        if not math.isfinite(number):
            raise ConfigError(f"expected a finite number, got {value!r}", key=key, source=source)
        return number
    if tp is str:
        if not isinstance(value, str):
            error = wrong()
            if isinstance(value, int | float) and not isinstance(value, bool) and not secret:
                hint = f'; quote it: "{value}"'
                raise ConfigError(error.problem + hint, key=key, source=source)
            raise error
        return value
    if tp is Path:
        if not isinstance(value, str | os.PathLike):
            raise wrong()
        return Path(value)
    raise TypeError(f"unsupported config type {tp!r} at {key}")  # pragma: no cover


def _build(value: object, tp: Any) -> object:
    inner = _optional_inner(tp)
    if inner is not None:
        return None if value is None else _build(value, inner)
    if _is_dataclass_type(tp):
        if not isinstance(value, dict):  # pragma: no cover - normalized already
            raise TypeError(f"expected a table for {tp.__name__}")
        fields = _field_types(tp)
        return tp(**{name: _build(v, fields[name]) for name, v in value.items()})
    item = _tuple_item(tp)
    if item is not None:
        if not isinstance(value, list):  # pragma: no cover
            raise TypeError("expected a list")
        return tuple(_build(v, item) for v in value)
    return value


def _finish(config: Config) -> Config:
    """Fill in the defaults that depend on other keys."""
    instance_path = config.instance_path.expanduser()
    if not instance_path.is_absolute():
        instance_path = Path.cwd() / instance_path
    database = config.database
    if not database.url:
        database = DatabaseConfig(url="sqlite:///" + (instance_path / "callcenter.db").as_posix())
    ami = config.ami
    if ami.secret is not None:
        pbx = tuple(
            p if p.secret is not None else dataclasses.replace(p, secret=ami.secret)
            for p in ami.pbx
        )
        ami = dataclasses.replace(ami, pbx=pbx)
    return dataclasses.replace(config, instance_path=instance_path, database=database, ami=ami)


def _validate(config: Config) -> None:
    def fail(key: str, problem: str) -> ConfigError:
        return ConfigError(problem, key=key)

    try:
        ZoneInfo(config.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise fail("timezone", f"unknown time zone {config.timezone!r}") from None
    if config.tracker.idle_timeout_seconds <= 0:
        raise fail("tracker.idle_timeout_seconds", "must be greater than 0")
    spot = config.spot_checks
    if not 0 <= spot.per_line <= 24:
        raise fail("spot_checks.per_line", f"must be between 0 and 24, got {spot.per_line}")
    if spot.ring_timeout_seconds <= 0:
        raise fail("spot_checks.ring_timeout_seconds", "must be greater than 0")
    if not spot.context.strip():
        raise fail("spot_checks.context", "must not be empty")
    if spot.pbx is not None and spot.pbx not in {pbx.name for pbx in config.ami.pbx}:
        raise fail("spot_checks.pbx", f"no [[ami.pbx]] is named {spot.pbx!r}")
    if config.web.language not in SUPPORTED_LANGUAGES:
        raise fail("web.language", f"must be one of {', '.join(SUPPORTED_LANGUAGES)}")

    names: set[str] = set()
    for i, pbx in enumerate(config.ami.pbx):
        key = f"ami.pbx[{i}]"
        if not pbx.name.strip():
            raise fail(f"{key}.name", "must not be empty")
        if pbx.name in names:
            raise fail(f"{key}.name", f"duplicate PBX name {pbx.name!r}")
        names.add(pbx.name)
        if not pbx.host.strip():
            raise fail(f"{key}.host", "must not be empty")
        if not 1 <= pbx.port <= 65535:
            raise fail(f"{key}.port", f"must be a TCP port (1-65535), got {pbx.port}")
        if pbx.reconnect_max_seconds <= 0:
            raise fail(f"{key}.reconnect_max_seconds", "must be greater than 0")
        for name in ("ping_interval_seconds", "ping_timeout_seconds", "login_timeout_seconds"):
            if getattr(pbx, name) <= 0:
                raise fail(f"{key}.{name}", "must be greater than 0")

    numbers: set[str] = set()
    for i, line in enumerate(config.lines):
        key = f"lines[{i}]"
        if not line.number.strip() or line.number != line.number.strip():
            raise fail(f"{key}.number", f"must be a number without spaces, got {line.number!r}")
        if line.number in numbers:
            raise fail(f"{key}.number", f"duplicate duty line {line.number!r}")
        numbers.add(line.number)
        for j, endpoint in enumerate(line.desk_phones):
            if not ENDPOINT_RE.match(endpoint):
                raise fail(
                    f"{key}.desk_phones[{j}]",
                    f"expected an endpoint like SIP/duty1 or PJSIP/2001, got {endpoint!r}",
                )
        if line.answer_within_seconds <= 0:
            raise fail(f"{key}.answer_within_seconds", "must be greater than 0")
        if line.offline_grace_seconds < 0:
            raise fail(f"{key}.offline_grace_seconds", "must not be negative")
        if line.unmanned_count < 1:
            raise fail(f"{key}.unmanned_count", "must be at least 1")
        if line.unmanned_window_seconds <= 0:
            raise fail(f"{key}.unmanned_window_seconds", "must be greater than 0")
        try:
            parse_schedule(line.schedule)
        except ScheduleError as exc:
            raise fail(f"{key}.schedule", exc.problem) from exc
