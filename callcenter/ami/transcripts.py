"""Read recorded AMI transcripts back as event dicts (and write the JSON Lines archive).

Formats, chosen by file ending (case-insensitive, each optionally gzip-compressed as
``<name>.<ending>.gz``):

``.jsonl``
    One AMI message per line as a JSON object, as recorded in ``fixtures/ami/asterisk20/``
    and as written by the listener's daily archive (:func:`write_jsonl_event`). Keys that
    start with ``_`` are recorder metadata; ``_recv`` (the time the recorder read the
    message, epoch seconds) is kept as a fallback event time, the others are dropped.
``.json``
    A JSON array of events (the cacofonisk fixture format). The file is loaded whole.
``.ami``
    Raw AMI bytes as read from the socket, parsed with :class:`~callcenter.ami.protocol.AmiParser`
    in 64 KiB chunks.

Only objects with an ``Event`` key are events: the banner and action responses are skipped
silently (``OriginateResponse`` is an event that also carries a ``Response`` header, so it
is kept). Malformed input is reported through ``on_warning`` (``file:line: what``) and
skipped; reading goes on. An unknown file ending or a file that cannot be opened raises
:class:`TranscriptError` when :func:`read_events` is called; a read error later on raises it
from the iterator. Values are left as they are in the input (AMI header values are strings,
``_recv`` a float).
"""

from __future__ import annotations

import gzip
import json
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Literal, Protocol, cast

from callcenter.ami.protocol import AmiParser

__all__ = [
    "TranscriptError",
    "TranscriptKind",
    "read_events",
    "transcript_kind",
    "write_jsonl_event",
]

TranscriptKind = Literal["jsonl", "json", "ami"]

CHUNK_BYTES = 64 * 1024
#: Longest .jsonl line accepted; longer lines are skipped with a warning (memory bound).
MAX_JSONL_LINE_BYTES = 16 * 1024 * 1024
#: Metadata key kept from recorder metadata (the time the recorder read the message).
RECV_KEY = "_recv"

_GZIP_MAGIC = b"\x1f\x8b"
_KINDS: tuple[TranscriptKind, ...] = ("jsonl", "json", "ami")

_log = logging.getLogger(__name__)


class TranscriptError(Exception):
    """A transcript that cannot be read at all (unknown type, missing, unreadable)."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class _TextWriter(Protocol):
    def write(self, text: str, /) -> object: ...


def transcript_kind(path: Path) -> tuple[TranscriptKind, bool]:
    """Return the transcript format of ``path`` and whether it is gzip-compressed.

    Raises :class:`TranscriptError` for an unknown file ending.
    """
    name = path.name.lower()
    gzipped = name.endswith(".gz")
    if gzipped:
        name = name[:-3]
    for kind in _KINDS:
        if name.endswith("." + kind):
            return kind, gzipped
    raise TranscriptError(
        path, "unknown transcript type (expected .jsonl, .json or .ami, optionally + .gz)"
    )


def read_events(
    path: Path | str | os.PathLike[str],
    on_warning: Callable[[str], None] | None = None,
) -> Iterator[dict[str, object]]:
    """Yield the AMI events recorded in ``path``, in file order, streaming.

    The file type and readability are checked at once (raising :class:`TranscriptError`);
    the events are then read lazily as the iterator is consumed.
    """
    path = Path(path)
    warn = on_warning if on_warning is not None else _log.warning
    kind, gzipped = transcript_kind(path)
    try:
        with open(path, "rb") as fp:
            magic = fp.read(2)
    except OSError as exc:
        raise TranscriptError(path, f"cannot read: {exc.strerror or exc}") from exc
    if gzipped and magic and magic != _GZIP_MAGIC:
        raise TranscriptError(path, "not a gzip file")
    if kind == "jsonl":
        return _read_jsonl(path, gzipped, warn)
    if kind == "json":
        return _read_json(path, gzipped, warn)
    return _read_ami(path, gzipped, warn)


def write_jsonl_event(fp: _TextWriter, event: Mapping[str, object]) -> None:
    """Append ``event`` to a JSON Lines text stream as one line (UTF-8 kept readable).

    ``fp`` is a text file, e.g. ``gzip.open(path, "at", encoding="utf-8")`` for the daily
    archive; :func:`read_events` reads the result back.
    """
    fp.write(json.dumps(event, ensure_ascii=False) + "\n")


# ---------------------------------------------------------------------- readers


def _open(path: Path, gzipped: bool) -> IO[bytes]:
    try:
        if gzipped:
            return cast("IO[bytes]", gzip.open(path, "rb"))
        return open(path, "rb")
    except OSError as exc:
        raise TranscriptError(path, f"cannot read: {exc.strerror or exc}") from exc


def _event_from(obj: dict[str, object]) -> dict[str, object]:
    """Drop recorder metadata (``_`` keys) except ``_recv``; the dict is reused."""
    meta = [key for key in obj if key[:1] == "_" and key != RECV_KEY]
    for key in meta:
        del obj[key]
    return obj


def _read_jsonl(
    path: Path, gzipped: bool, warn: Callable[[str], None]
) -> Iterator[dict[str, object]]:
    lineno = 0
    with _open(path, gzipped) as fp:
        readline = fp.readline
        try:
            while raw := readline(MAX_JSONL_LINE_BYTES):
                lineno += 1
                if len(raw) >= MAX_JSONL_LINE_BYTES and not raw.endswith(b"\n"):
                    while raw and not raw.endswith(b"\n"):
                        raw = readline(MAX_JSONL_LINE_BYTES)
                    warn(f"{path}:{lineno}: line longer than {MAX_JSONL_LINE_BYTES} bytes; skipped")
                    continue
                obj = _jsonl_object(raw, path, lineno, warn)
                if obj is not None and "Event" in obj:
                    yield _event_from(obj)
        except EOFError:
            warn(f"{path}:{lineno + 1}: compressed file ends early (truncated); stopped")
        except OSError as exc:
            raise TranscriptError(path, f"read error at line {lineno + 1}: {exc}") from exc


def _jsonl_object(
    raw: bytes, path: Path, lineno: int, warn: Callable[[str], None]
) -> dict[str, object] | None:
    """Decode one .jsonl line; warn and return None unless it is a JSON object."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        warn(f"{path}:{lineno}: invalid UTF-8 at byte {exc.start + 1}; replaced with U+FFFD")
        text = raw.decode("utf-8", "replace")
    if lineno == 1 and text.startswith("\ufeff"):
        text = text[1:]
    if not text.strip():
        warn(f"{path}:{lineno}: blank line; skipped")
        return None
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError) as exc:
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        warn(f"{path}:{lineno}: invalid JSON ({reason}); line skipped")
        return None
    if not isinstance(obj, dict):
        warn(f"{path}:{lineno}: not a JSON object ({type(obj).__name__}); skipped")
        return None
    return obj


def _read_json(
    path: Path, gzipped: bool, warn: Callable[[str], None]
) -> Iterator[dict[str, object]]:
    with _open(path, gzipped) as fp:
        try:
            data = fp.read()
        except EOFError:
            warn(f"{path}: compressed file ends early (truncated); nothing read")
            return
        except OSError as exc:
            raise TranscriptError(path, f"read error: {exc}") from exc
    try:
        items = json.loads(data)
    except UnicodeDecodeError as exc:
        warn(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); file skipped")
        return
    except (ValueError, RecursionError) as exc:
        if isinstance(exc, json.JSONDecodeError):
            reason = f"{exc.msg} at line {exc.lineno} column {exc.colno}"
        else:
            reason = str(exc)
        warn(f"{path}: invalid JSON ({reason}); file skipped")
        return
    del data
    if not isinstance(items, list):
        warn(f"{path}: expected a JSON array of events, got {type(items).__name__}; file skipped")
        return
    for index, obj in enumerate(items):
        if not isinstance(obj, dict):
            warn(f"{path}: item {index} is not a JSON object ({type(obj).__name__}); skipped")
            continue
        if "Event" in obj:
            yield _event_from(obj)


def _read_ami(
    path: Path, gzipped: bool, warn: Callable[[str], None]
) -> Iterator[dict[str, object]]:
    def parser_warning(message: str) -> None:
        warn(f"{path}: {message}")

    parser = AmiParser(parser_warning)
    with _open(path, gzipped) as fp:
        read = fp.read
        try:
            while chunk := read(CHUNK_BYTES):
                for message in parser.feed(chunk):
                    if "Event" in message:
                        yield cast("dict[str, object]", message)
        except EOFError:
            warn(
                f"{path}: compressed file ends early (truncated) after byte "
                f"{parser.offset}; stopped"
            )
        except OSError as exc:
            raise TranscriptError(path, f"read error after byte {parser.offset}: {exc}") from exc
    parser.close()
