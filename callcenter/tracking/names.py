"""Pure helpers on AMI names and numbers: endpoints, dial strings, event times."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime

_COUNTER = re.compile(r"-[0-9a-fA-F]+(;[12])?$")
_NUMBER = re.compile(r"^\+?\d+$")
_EXTENSION = re.compile(r"^\d{2,6}$")
_INTEGER = re.compile(r"^[+-]?[0-9]+$")  # ASCII digits only: no "1_000", no "١٢"

logger = logging.getLogger(__name__)

#: The range of an SQL ``INTEGER`` column (PostgreSQL ``int4``): a number parsed from the
#: PBX's text outside it is no number we can store, whatever the header claimed.
INT_MIN = -(2**31)
INT_MAX = 2**31 - 1
#: Hangup causes (Q.850 and Asterisk's own) are small; anything above is garbage.
CAUSE_MAX = 65_535


def endpoint_of(channel: str) -> str:
    """``SIP/duty1-0000002a`` → ``SIP/duty1``; ``Local/1@ctx-0000000b;2`` → ``Local/1@ctx``."""
    return _COUNTER.sub("", channel)


def is_local(channel: str) -> bool:
    return channel[:6].lower() == "local/"


def local_half(channel: str) -> int:
    """1 or 2 for a Local channel's ``;1``/``;2`` half, 0 otherwise."""
    if channel.endswith(";1"):
        return 1
    if channel.endswith(";2"):
        return 2
    return 0


def resource_of(endpoint: str) -> str:
    """``PJSIP/2001`` → ``2001``; ``Local/202@ctx`` → ``202``."""
    rest = endpoint.split("/", 1)[-1]
    return rest.split("@", 1)[0]


def is_number(value: str | None) -> bool:
    return bool(value) and _NUMBER.match(value or "") is not None


def looks_internal(number: str | None) -> bool:
    """A short extension (2-6 digits) rather than an outside number."""
    return bool(number) and _EXTENSION.match(number or "") is not None


def looks_external(number: str | None) -> bool:
    return is_number(number) and not looks_internal(number)


def digits(value: str | None) -> str:
    return "".join(ch for ch in (value or "") if ch.isdigit())


def same_number(a: str | None, b: str | None) -> bool:
    """Equal numbers, allowing national/international prefixes (0150010001 ≈ +31150010001)."""
    da, db = digits(a).lstrip("0"), digits(b).lstrip("0")
    if not da or not db:
        return False
    if da == db:
        return True
    short, long_ = sorted((da, db), key=len)
    return len(short) >= 7 and long_.endswith(short) and len(long_) - len(short) <= 4


def dial_target(dialstring: str, dest_channel: str) -> tuple[str | None, str | None]:
    """Split a Dial() target into (peer, explicit number).

    Handles the forms Asterisk shows in ``DialBegin.DialString``: ``duty1``,
    ``mobile/13800138000``, ``PJSIP/2001``, ``13800138000@mobile``,
    ``150010001/150010001/172.20.0.13!!201`` (peer/user/host), and for Local
    destinations ``202@ctx`` or ``Local/202@ctx/n``.
    """
    ds = dialstring.strip()
    if is_local(dest_channel):
        if ds.lower().startswith("local/"):
            ds = ds[6:]
        exten = ds.split("@", 1)[0] if "@" in ds else resource_of(endpoint_of(dest_channel))
        return None, exten if is_number(exten) else None
    parts = [p for p in ds.split("/") if p]
    tech = dest_channel.split("/", 1)[0]
    if len(parts) > 1 and parts[0].lower() == tech.lower():
        parts = parts[1:]
    if not parts:
        return None, None
    head = parts[0]
    if "@" in head:
        number, _, peer = head.partition("@")
        return peer, number if is_number(number) else None
    if len(parts) == 1:
        return head, None
    second = parts[1].split("!!", 1)[0]
    if second.lower().startswith(("sip:", "sips:", "tel:")):
        second = second.split(":", 1)[1]
    second = second.split("@", 1)[0]
    return head, second if is_number(second) else None


def event_seconds(event: Mapping[str, object]) -> float | None:
    """The event's time in epoch seconds: ``Timestamp`` (timestampevents=yes), else the
    recorder's ``_recv``, else None."""
    for key in ("Timestamp", "_recv"):
        raw = event.get(key)
        if raw is None or raw == "":
            continue
        try:
            value = float(raw)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            continue
        if value == value and abs(value) < 1e11:  # not NaN, a sane epoch
            return value
    return None


def event_time(event: Mapping[str, object]) -> datetime | None:
    """The event's time as an aware UTC datetime (see :func:`event_seconds`)."""
    seconds = event_seconds(event)
    return None if seconds is None else to_datetime(seconds)


def to_datetime(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def to_int(value: object, *, low: int = INT_MIN, high: int = INT_MAX) -> int | None:
    """``value`` (``16``, ``"16"``, ``" -3 "``) as an int in ``low..high``, else None.

    Anything but a plain decimal integer is None. A number outside the range (by default
    that of an SQL ``INTEGER`` column, so no parsed value can overflow the database) is
    None too, with a warning: one bad header must never stop a call from being stored.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    else:
        text = "" if value is None else str(value).strip()
        if not _INTEGER.fullmatch(text):
            return None
        if len(text.lstrip("+-").lstrip("0")) > 20:  # no int() of a 10,000-digit string
            logger.warning("number %s... is out of range %d..%d: ignored", text[:24], low, high)
            return None
        number = int(text)
    if not low <= number <= high:
        logger.warning("number %s is out of range %d..%d: ignored", str(number)[:24], low, high)
        return None
    return number


def to_cause(value: object) -> int | None:
    """A hangup ``Cause`` header as an int in ``0..CAUSE_MAX``, else None (see :func:`to_int`)."""
    return to_int(value, low=0, high=CAUSE_MAX)
