"""Incremental, UTF-8-safe parser for the Asterisk Manager Interface (AMI) wire format.

AMI is a stream of messages; each message is a block of ``Key: Value`` lines ended by a
blank line (``\\r\\n\\r\\n``). The very first line of a connection is a banner such as
``Asterisk Call Manager/9.0.0`` that ends with a single line break.

:class:`AmiParser` is pure (no I/O): feed it the bytes as they arrive, in chunks of any size,
and it returns the messages that became complete::

    parser = AmiParser()
    for message in parser.feed(chunk):
        ...
    parser.close()  # at end of stream: warns about an unterminated last message

Design points:

* Bytes are split into messages *before* decoding, so a multibyte UTF-8 character cut in
  two by the transport is reassembled intact. Invalid UTF-8 is replaced (U+FFFD) and
  reported, never raised.
* ``\\r\\n\\r\\n`` is the message boundary; bare ``\\n`` line endings (``\\n\\n`` between
  messages, as in some hand-made recordings) are tolerated too.
* Header values are kept exactly as sent after the ``": "`` separator (Asterisk pads some
  values, e.g. RTCP statistics, with meaningful leading spaces), as the recorder and
  panoramisk do; keys are taken as sent (Asterisk never pads them).
  A repeated key keeps its last value, except ``Output`` (command responses), whose lines
  are joined with ``\\n``.
* Memory is bounded: a message larger than ``max_message_bytes`` is dropped with a warning
  and the parser resynchronises at the next boundary, buffering nothing meanwhile.
* Problems never raise: they go to ``on_warning`` with the stream byte offset of the
  message concerned.
* Speed: the work per byte is done by C-level ``bytes``/``str`` methods; the common case of
  a well-formed message is turned into a dict without a Python-level loop over its lines.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from itertools import repeat

__all__ = [
    "BANNER_KEY",
    "DEFAULT_MAX_LINE_BYTES",
    "DEFAULT_MAX_MESSAGE_BYTES",
    "AmiParser",
    "WarningCallback",
    "encode_action",
]

WarningCallback = Callable[[str], None]

#: Key of the pseudo-message that carries the connection banner.
BANNER_KEY = "_banner"

DEFAULT_MAX_MESSAGE_BYTES = 2 * 1024 * 1024
DEFAULT_MAX_LINE_BYTES = 1024 * 1024 + 64 * 1024

_BANNER_PREFIX = b"Asterisk Call Manager"
_BANNER_PREFIX_STR = _BANNER_PREFIX.decode("ascii")
_BANNER_MAX_BYTES = 256
_CRLF2 = b"\r\n\r\n"
_LF2 = b"\n\n"
# Any message boundary: CRLF CRLF, LF LF, or a CRLF line followed by a bare LF blank line.
_BOUNDARY = re.compile(rb"\r\n\r\n|\r?\n\n")
# A boundary can straddle two chunks: keep this many trailing bytes to look across.
_OVERLAP = 3
# itertools.repeat objects never run out, so they can be shared by every map() call.
_SEP = repeat(": ")
_ONE = repeat(1)
_PREVIEW = 60

_log = logging.getLogger(__name__)


def _preview(text: str) -> str:
    if len(text) > _PREVIEW:
        text = text[:_PREVIEW] + "…"
    return repr(text)


class AmiParser:
    """Turn a byte stream from an AMI socket into ``dict[str, str]`` messages.

    ``feed()`` accepts chunks of any size and returns the messages they completed, in
    stream order. The banner line becomes ``{"_banner": "Asterisk Call Manager/x.y.z"}``.
    """

    __slots__ = (
        "_banner_buf",
        "_banner_phase",
        "_base",
        "_discarded",
        "_discarding",
        "_fed",
        "_max_line",
        "_max_message",
        "_messages",
        "_pending",
        "_pending_len",
        "_tail",
        "_warn",
        "_warnings",
    )

    def __init__(
        self,
        on_warning: WarningCallback | None = None,
        *,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        max_line_bytes: int | None = None,
    ) -> None:
        if max_message_bytes < 16:
            raise ValueError("max_message_bytes must be at least 16")
        self._warn: WarningCallback = on_warning if on_warning is not None else _log.warning
        self._max_message = max_message_bytes
        self._max_line = min(
            max_line_bytes if max_line_bytes is not None else DEFAULT_MAX_LINE_BYTES,
            max_message_bytes,
        )
        self._banner_phase = True
        self._banner_buf = b""
        # Bytes of the message being received (not yet terminated).
        self._pending: list[bytes] = []
        self._pending_len = 0
        # Last few bytes seen, to find a boundary that straddles two chunks.
        self._tail = b""
        # Stream offset of the first byte held in _banner_buf/_pending (or of the next byte).
        self._base = 0
        self._discarding = False
        self._discarded = 0
        self._fed = 0
        self._messages = 0
        self._warnings = 0

    # ------------------------------------------------------------------ properties

    @property
    def buffered_bytes(self) -> int:
        """Bytes held for an unfinished message: at most ``max_message_bytes`` plus the 3
        bytes of a terminator that may still be arriving."""
        return self._pending_len + len(self._banner_buf)

    @property
    def offset(self) -> int:
        """Bytes fed so far (the stream offset of the next byte)."""
        return self._fed

    @property
    def message_count(self) -> int:
        """Messages returned so far (banner included)."""
        return self._messages

    @property
    def warning_count(self) -> int:
        """Warnings reported so far."""
        return self._warnings

    @property
    def max_message_bytes(self) -> int:
        return self._max_message

    # ------------------------------------------------------------------ public API

    def feed(self, data: bytes) -> list[dict[str, str]]:
        """Add received bytes; return the messages completed by them, in order."""
        if not isinstance(data, bytes):
            data = bytes(data)
        if not data:
            return []
        self._fed += len(data)
        out: list[dict[str, str]] = []
        if self._banner_phase:
            data = self._feed_banner(data, out)
            if not data:
                return out
        if self._discarding:
            data = self._skip_discarded(data)
            if not data:
                return out

        if self._pending:
            edge = self._tail + data[:_OVERLAP]  # a boundary may straddle the two chunks
            if not (_CRLF2 in data or _LF2 in data or _CRLF2 in edge or _LF2 in edge):
                # Still inside the same message: just keep the chunk (no copying).
                self._pending.append(data)
                self._pending_len += len(data)
                self._tail = data[-_OVERLAP:] if len(data) >= _OVERLAP else edge[-_OVERLAP:]
                if self._pending_len > self._max_message + _OVERLAP:
                    self._start_discarding()
                return out
            self._pending.append(data)
            buf = b"".join(self._pending)
            self._pending.clear()
            self._pending_len = 0
            self._tail = b""
        else:
            buf = data

        rest_at = self._split(buf, out)
        if rest_at < len(buf):
            rest = buf[rest_at:]
            self._pending.append(rest)
            self._pending_len = len(rest)
            self._tail = rest[-_OVERLAP:]
            if self._pending_len > self._max_message + _OVERLAP:
                self._start_discarding()
        return out

    def close(self) -> None:
        """End of stream: report (and drop) an unterminated final message.

        The parser is then reset: a later ``feed()`` starts a new stream (banner first,
        offsets from 0); ``message_count`` and ``warning_count`` keep counting.
        """
        leftover = b"".join(self._pending) if self._pending else self._banner_buf
        if self._discarding:
            self._report(
                f"stream ended inside an oversized message at offset {self._base} "
                f"({self._discarded} bytes discarded)"
            )
        elif leftover.strip():
            self._report(
                f"stream ended with an unterminated message at offset {self._base} "
                f"({len(leftover)} bytes dropped): "
                f"{_preview(leftover[:256].decode('utf-8', 'replace'))}"
            )
        self._banner_phase = True
        self._base = 0
        self._fed = 0
        self._pending.clear()
        self._pending_len = 0
        self._banner_buf = b""
        self._tail = b""
        self._discarding = False
        self._discarded = 0

    flush = close

    # ------------------------------------------------------------------ internals

    def _report(self, message: str) -> None:
        self._warnings += 1
        self._warn(message)

    def _feed_banner(self, data: bytes, out: list[dict[str, str]]) -> bytes:
        """Handle the first line of the stream; return the bytes left to parse normally."""
        buf = self._banner_buf + data if self._banner_buf else data
        if not (_BANNER_PREFIX.startswith(buf) or buf.startswith(_BANNER_PREFIX)):
            # Not a banner (a recording that starts mid-session): parse as messages.
            self._banner_phase = False
            self._banner_buf = b""
            return buf
        newline = buf.find(b"\n")
        if newline < 0:
            if len(buf) > _BANNER_MAX_BYTES:
                self._banner_phase = False
                self._banner_buf = b""
                return buf
            self._banner_buf = buf
            return b""
        self._banner_phase = False
        self._banner_buf = b""
        banner = buf[:newline].decode("utf-8", "replace").strip()
        out.append({BANNER_KEY: banner})
        self._messages += 1
        self._base += newline + 1
        return buf[newline + 1 :]

    def _start_discarding(self) -> None:
        self._report(
            f"message at offset {self._base} exceeds {self._max_message} bytes without a "
            "terminator; discarding it up to the next blank line"
        )
        self._discarding = True
        self._discarded = self._pending_len
        self._pending.clear()
        self._pending_len = 0

    def _skip_discarded(self, data: bytes) -> bytes:
        """Drop bytes until the next message boundary; return what follows it."""
        probe = self._tail + data
        match = _BOUNDARY.search(probe)
        if match is None:
            self._discarded += len(data)
            self._tail = probe[-_OVERLAP:]
            return b""
        end = match.end() - len(self._tail)
        self._discarded += end
        self._report(
            f"resynchronised at offset {self._base + self._discarded} after discarding "
            f"{self._discarded} bytes of an oversized message at offset {self._base}"
        )
        self._base += self._discarded
        self._discarding = False
        self._discarded = 0
        self._tail = b""
        return data[end:]

    def _split(self, buf: bytes, out: list[dict[str, str]]) -> int:
        """Parse every complete message in ``buf``; return where the unfinished rest starts."""
        base = self._base
        parse = self._parse
        parts = buf.split(_CRLF2)
        rest = parts.pop()
        pos = 0
        for raw in parts:
            if raw:
                parse(raw, base + pos, out)
            pos += len(raw) + 4
        if _LF2 in rest:
            # Bare LF line endings: messages end at "\n\n" (rare, so the slower regex).
            rest_at = pos
            for match in _BOUNDARY.finditer(rest):
                start = rest_at + match.start()
                if start > pos:
                    parse(buf[pos:start], base + pos, out)
                pos = rest_at + match.end()
        self._base = base + pos
        return pos

    def _parse(self, raw: bytes, offset: int, out: list[dict[str, str]]) -> None:
        """Turn one complete message (without its terminator) into a dict."""
        if len(raw) > self._max_message:
            if _LF2 in raw:
                self._split_glued(raw, offset, out)
                return
            self._report(
                f"message at offset {offset} is {len(raw)} bytes, over the limit of "
                f"{self._max_message}; dropped"
            )
            return
        try:
            text = raw.decode("utf-8")
            bad_at = -1
        except UnicodeDecodeError as exc:
            text = raw.decode("utf-8", "replace")
            bad_at = exc.start
        lines = text.split("\r\n")
        if len(lines) <= text.count("\n"):
            # Bare LF line endings in this message.
            if _LF2 in raw:
                # Several LF-terminated messages glued to a CRLF one: split them apart.
                self._split_glued(raw, offset, out)
                return
            lines = text.replace("\r\n", "\n").split("\n")
        if bad_at >= 0:
            self._report(
                f"invalid UTF-8 in message at offset {offset} (stream byte "
                f"{offset + bad_at}); replaced with U+FFFD"
            )
        if len(raw) <= self._max_line:
            try:
                message: dict[str, str] = dict(map(str.split, lines, _SEP, _ONE))
            except ValueError:
                pass  # a line without ": " (or an empty line): take the careful path
            else:
                if "" in message:
                    self._parse_careful(lines, offset, out)
                    return
                if len(message) != len(lines) and "Output" in message:
                    message["Output"] = "\n".join(
                        line[8:] for line in lines if line.startswith("Output: ")
                    )
                out.append(message)
                self._messages += 1
                return
        self._parse_careful(lines, offset, out)

    def _split_glued(self, raw: bytes, offset: int, out: list[dict[str, str]]) -> None:
        pos = 0
        for match in _BOUNDARY.finditer(raw):
            if match.start() > pos:
                self._parse(raw[pos : match.start()], offset + pos, out)
            pos = match.end()
        if pos < len(raw):
            self._parse(raw[pos:], offset + pos, out)

    def _parse_careful(self, lines: list[str], offset: int, out: list[dict[str, str]]) -> None:
        message: dict[str, str] = {}
        outputs: list[str] = []
        for line in lines:
            if not line or line.isspace():
                continue
            if len(line) * 4 > self._max_line and len(line.encode("utf-8")) > self._max_line:
                self._report(
                    f"line of {len(line.encode('utf-8'))} bytes in message at offset {offset} "
                    f"is over the limit of {self._max_line}; line dropped: {_preview(line)}"
                )
                continue
            key, sep, value = line.partition(": ")
            if not sep:
                key, sep, value = line.partition(":")
            if not sep:
                if not message and line.startswith(_BANNER_PREFIX_STR):
                    # A banner mid-stream (a recording of several connections).
                    out.append({BANNER_KEY: line.strip()})
                    self._messages += 1
                    continue
                self._report(
                    f"line without a colon in message at offset {offset} skipped: {_preview(line)}"
                )
                continue
            if not key:
                self._report(
                    f"line with an empty key in message at offset {offset} skipped: "
                    f"{_preview(line)}"
                )
                continue
            if key == "Output":
                outputs.append(value)
            message[key] = value
        if len(outputs) > 1:
            message["Output"] = "\n".join(outputs)
        if message:
            out.append(message)
            self._messages += 1


def encode_action(action: Mapping[str, str | Sequence[str]]) -> bytes:
    """Encode an AMI action as ``Key: Value\\r\\n`` lines plus the terminating blank line.

    A value may be a list or tuple of strings to repeat a header (``Variable`` of
    ``Originate``). Keys and values must not contain line breaks (that would inject
    headers); a :class:`ValueError` is raised if they do.
    """
    lines: list[str] = []
    for key, value in action.items():
        if not key or any(ch in key for ch in "\r\n:"):
            raise ValueError(f"invalid AMI header name: {key!r}")
        values = [value] if isinstance(value, str) else list(value)
        for item in values:
            if not isinstance(item, str):
                raise TypeError(f"AMI header {key!r} value must be str, got {type(item).__name__}")
            if "\r" in item or "\n" in item:
                raise ValueError(f"AMI header {key!r} value contains a line break: {item!r}")
            lines.append(f"{key}: {item}\r\n")
    lines.append("\r\n")
    return "".join(lines).encode("utf-8")
