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
skipped; reading goes on. A damaged ``.gz`` (cut off by a crash, or a gzip member appended after
a truncated one, as older listener runs did) is not fatal either: every event decoded before
the damage is kept, a warning names the file and the byte, and reading resumes at the next
intact gzip member if there is one. An unknown file ending or a file that cannot be opened raises
:class:`TranscriptError` when :func:`read_events` is called; a read error later on raises it
from the iterator. Values are left as they are in the input (AMI header values are strings,
``_recv`` a float).
"""

from __future__ import annotations

import io
import json
import logging
import os
import zlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any, Literal, Protocol, cast

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


def _open(path: Path, gzipped: bool, warn: Callable[[str], None]) -> IO[bytes]:
    try:
        raw = open(path, "rb")  # noqa: SIM115 - closed by the caller's with block
    except OSError as exc:
        raise TranscriptError(path, f"cannot read: {exc.strerror or exc}") from exc
    if not gzipped:
        return raw
    return io.BufferedReader(_GzipMembers(raw, path, warn), buffer_size=CHUNK_BYTES)


def _truncated(fp: IO[bytes]) -> bool:
    """Did ``fp`` (from :func:`_open`) end in a gzip member cut off before its end?"""
    raw = getattr(fp, "raw", None)
    return isinstance(raw, _GzipMembers) and raw.truncated


class _GzipMembers(io.RawIOBase):
    """The decompressed bytes of every gzip member of a file, tolerant of damage.

    :mod:`gzip` raises on a truncated member (``EOFError``) or on a member appended after a
    truncated one (``zlib.error``, ``BadGzipFile``) and loses what it had buffered. Here
    every byte decoded before the damage is returned (the failing input is decoded again
    byte by byte from a copy of the decompressor), the damage is reported through ``warn``
    with the file name and offset, and decoding resumes at the next intact member header
    (after a newline, so a cut line never swallows the next member's first line). The end
    of the file inside a member sets :attr:`truncated`.
    """

    def __init__(self, raw: IO[bytes], path: Path, warn: Callable[[str], None]) -> None:
        super().__init__()
        self._raw = raw
        self._path = path
        self._warn = warn
        self._d = zlib.decompressobj(zlib.MAX_WBITS | 16)
        self._buf = b""  # compressed input not fed yet; starts at file offset _pos
        self._pos = 0
        self._member_start = 0
        self._member_fed = False  # has the current member consumed any input?
        self._pending = b""  # decoded output not returned yet
        self.truncated = False

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        try:
            self._raw.close()
        finally:
            super().close()

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        while not self._pending:
            chunk = self._decode(len(view))
            if chunk is None:
                return 0
            self._pending = chunk
        n = min(len(view), len(self._pending))
        view[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def _decode(self, size: int) -> bytes | None:
        """Up to ``size`` decoded bytes (possibly empty), or None at the end of the data."""
        if self._d.eof:  # a member ended: the next one starts with what is left
            self._d = zlib.decompressobj(zlib.MAX_WBITS | 16)
            self._member_start, self._member_fed = self._pos, False
        if not self._buf:
            self._buf = self._raw.read(CHUNK_BYTES)
            if not self._buf:
                if self._member_fed:
                    self.truncated, self._member_fed = True, False
                    self._warn(
                        f"{self._path}: compressed file ends early (truncated) at byte "
                        f"{self._pos}; the events before it are kept"
                    )
                return None
        if not self._member_fed:
            stripped = self._buf.lstrip(b"\0")  # zero padding between members is allowed
            self._pos += len(self._buf) - len(stripped)
            self._buf = stripped
            self._member_start = self._pos
            if not stripped:
                return b""
        saved = self._d.copy()
        data = self._buf
        try:
            out = self._d.decompress(data, size)
        except zlib.error as exc:
            return self._damaged(saved, data, exc)
        self._member_fed = True
        rest = self._d.unused_data if self._d.eof else self._d.unconsumed_tail
        self._pos += len(data) - len(rest)
        self._buf = rest
        return out

    def _damaged(self, saved: Any, data: bytes, exc: zlib.error) -> bytes:
        """Keep what decodes before the bad byte, then skip to the next intact member."""
        kept = bytearray()
        at = self._pos
        for i in range(len(data)):
            try:
                kept += saved.decompress(data[i : i + 1])
            except zlib.error:
                at = self._pos + i
                break
        resume = self._next_member(self._member_start + 1)
        then = (
            f"reading resumes at the next gzip member (byte {resume})"
            if resume is not None
            else "nothing readable after it"
        )
        self._warn(
            f"{self._path}: compressed data damaged at byte {at} ({exc}); the events "
            f"before it are kept, {then}"
        )
        self._d = zlib.decompressobj(zlib.MAX_WBITS | 16)
        self._member_fed = False
        if resume is None:
            self._raw.seek(0, io.SEEK_END)
            self._pos, self._buf = self._raw.tell(), b""
            return bytes(kept)
        self._raw.seek(resume)
        self._pos = self._member_start = resume
        self._buf = b""
        return bytes(kept) + b"\n"

    def _next_member(self, start: int) -> int | None:
        """Offset of the next gzip member header at or after ``start`` that decodes."""
        offset = start
        while True:
            self._raw.seek(offset)
            block = self._raw.read(CHUNK_BYTES + 2)
            if len(block) < 3:
                return None
            found = block.find(_GZIP_MAGIC + b"\x08")
            if found < 0:
                offset += CHUNK_BYTES
                continue
            candidate = offset + found
            self._raw.seek(candidate)
            try:
                zlib.decompressobj(zlib.MAX_WBITS | 16).decompress(
                    self._raw.read(CHUNK_BYTES), CHUNK_BYTES
                )
            except zlib.error:
                offset = candidate + 1
                continue
            return candidate


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
    with _open(path, gzipped, warn) as fp:
        readline = fp.readline
        try:
            while raw := readline(MAX_JSONL_LINE_BYTES):
                lineno += 1
                if len(raw) >= MAX_JSONL_LINE_BYTES and not raw.endswith(b"\n"):
                    while raw and not raw.endswith(b"\n"):
                        raw = readline(MAX_JSONL_LINE_BYTES)
                    warn(f"{path}:{lineno}: line longer than {MAX_JSONL_LINE_BYTES} bytes; skipped")
                    continue
                if not raw.endswith(b"\n") and _truncated(fp):
                    continue  # the line the crash cut off: already reported
                obj = _jsonl_object(raw, path, lineno, warn)
                if obj is not None and "Event" in obj:
                    yield _event_from(obj)
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
    with _open(path, gzipped, warn) as fp:
        try:
            data = fp.read()
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
    with _open(path, gzipped, warn) as fp:
        read = fp.read
        try:
            while chunk := read(CHUNK_BYTES):
                for message in parser.feed(chunk):
                    if "Event" in message:
                        yield cast("dict[str, object]", message)
        except OSError as exc:
            raise TranscriptError(path, f"read error after byte {parser.offset}: {exc}") from exc
    parser.close()
