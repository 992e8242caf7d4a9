"""Click-to-call back: the console asks, the listener dials (through a Redis request queue).

The console cannot talk AMI itself: only the listener holds the PBX's AMI connection (one
listener per PBX). So a call-back is a small JSON request pushed onto a Redis list that the
listener of that PBX serves:

- the console calls :func:`request_call` (``LPUSH callcenter:originate:<pbx>``) and gets a
  request id back;
- the listener loops on :func:`next_request` (``BRPOP``, oldest first), sends the AMI action
  of :meth:`OriginateRequest.ami_action` (an ``Originate`` that rings the desk phone and, once
  it is picked up, dials the caller's number: "A calls B" in DESIGN.md terms), and reports
  how it went with :func:`record_result`;
- the console page reads :func:`result_of` to show the outcome.

A request can also be a spot check (抽查, :func:`request_spot_check`): the listener then
originates ``Local/<line number>@<context>``, which rings the duty line as an outside call
would, and plays a prompt (``Playback``) to whoever answers; nothing is dialed further, so
the tracker records the call as answered by the desk phone that picked up. Its
``OriginateResponse`` is recorded like a call-back's (``answered`` or ``failed`` with the
Asterisk reason code as the detail), and the spot-check job judges it with the stored call.

Results live under ``callcenter:originate-result:<request id>`` for :data:`RESULT_TTL_SECONDS`;
a request is recorded as ``queued`` when it is made. Requests that waited in the queue longer
than ``max_age_seconds`` (the listener was down) are not dialed any more: a desk phone that
suddenly rings for a call-back asked for an hour ago helps nobody. :func:`next_request` marks
them ``expired`` and goes on with the next one.

Nothing here imports Flask or the AMI code; the clock is passed in where time matters.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import redis

__all__ = [
    "FINAL_RESULTS",
    "KINDS",
    "QUEUE_PREFIX",
    "RESULTS",
    "RESULT_PREFIX",
    "RESULT_TTL_SECONDS",
    "SPOT_CHECK_PROMPT",
    "ClickToCallError",
    "OriginateRequest",
    "dialable",
    "next_request",
    "queue_key",
    "record_result",
    "request_call",
    "request_spot_check",
    "result_key",
    "result_of",
    "spot_check_channel",
]

QUEUE_PREFIX: Final = "callcenter:originate"
RESULT_PREFIX: Final = "callcenter:originate-result"
RESULT_TTL_SECONDS: Final = 24 * 3600
DEFAULT_MAX_AGE_SECONDS: Final = 120.0
# queued: waiting for the listener; sent: Originate sent, the desk phone rings; answered: the
# desk phone was picked up and the number dialed; failed: the PBX refused or nobody answered;
# expired: waited too long in the queue, never dialed.
RESULTS: Final = ("queued", "sent", "answered", "failed", "expired")
FINAL_RESULTS: Final = frozenset({"answered", "failed", "expired"})
#: callback: ring a desk phone, then dial a number; spot_check: ring a duty line (through a
#: Local channel in the dialplan context of outside calls) and play a prompt.
KINDS: Final = ("callback", "spot_check")
#: The prompt a spot check plays to whoever answers (an Asterisk sound file, no extension).
SPOT_CHECK_PROMPT: Final = "demo-congrats"

# What AMI header values may hold: no CR/LF (they would start a new header), nothing exotic.
_NUMBER_RE = re.compile(r"^\+?[0-9*#]{1,32}$")
_ENDPOINT_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*/[A-Za-z0-9_.@:+\-]{1,120}$")
_PBX_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
_ID_RE = re.compile(r"^[0-9a-f]{32}$")
_CONTEXT_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,80}$")
# Playback's data: sound files joined by '&', optionally with a folder (custom/spot-check).
_PROMPT_RE = re.compile(r"^[A-Za-z0-9_./\-]{1,100}(&[A-Za-z0-9_./\-]{1,100}){0,7}$")


class ClickToCallError(ValueError):
    """A request that cannot be sent (a malformed number, endpoint or PBX name)."""

    def __init__(self, problem: str, *, value: str = "") -> None:
        self.problem = problem
        self.value = value
        super().__init__(f"{problem}: {value!r}" if value else problem)


@dataclass(frozen=True, slots=True)
class OriginateRequest:
    """One Originate to send: a call-back (ring ``from_endpoint``, a desk phone, then dial
    ``number``) or, with ``kind`` ``spot_check``, a spot check of duty line ``number``
    (``from_endpoint`` is then the Local channel ``Local/<number>@<context>``)."""

    id: str
    pbx: str
    from_endpoint: str
    number: str
    requested_by: str
    requested_at: datetime
    call_id: int | None = None  # the missed call this calls back, when there is one
    extra: Mapping[str, str] = field(default_factory=dict)
    kind: str = "callback"
    spot_check_id: int | None = None  # the SpotCheck row (kind spot_check)
    prompt: str = ""  # what Playback plays (kind spot_check)
    timeout_seconds: float | None = None  # ring timeout; None: the listener's default

    @property
    def is_spot_check(self) -> bool:
        return self.kind == "spot_check"

    def to_json(self) -> str:
        value = asdict(self)
        value["requested_at"] = self.requested_at.astimezone(UTC).isoformat(timespec="milliseconds")
        value["extra"] = dict(self.extra)
        if not self.is_spot_check:  # the call-back form, exactly as before spot checks
            for key in ("kind", "spot_check_id", "prompt", "timeout_seconds"):
                del value[key]
        return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: bytes | str) -> OriginateRequest:
        """Parse a queued request; :class:`ClickToCallError` if it is not one."""
        try:
            value = json.loads(raw)
            requested_at = datetime.fromisoformat(value["requested_at"])
            if requested_at.tzinfo is None:
                requested_at = requested_at.replace(tzinfo=UTC)
            call_id = value.get("call_id")
            spot_check_id = value.get("spot_check_id")
            timeout = value.get("timeout_seconds")
            request = cls(
                id=str(value["id"]),
                pbx=str(value["pbx"]),
                from_endpoint=str(value["from_endpoint"]),
                number=str(value["number"]),
                requested_by=str(value.get("requested_by", "")),
                requested_at=requested_at,
                call_id=int(call_id) if call_id is not None else None,
                extra={str(k): str(v) for k, v in dict(value.get("extra") or {}).items()},
                kind=str(value.get("kind") or "callback"),
                spot_check_id=int(spot_check_id) if spot_check_id is not None else None,
                prompt=str(value.get("prompt") or ""),
                timeout_seconds=float(timeout) if timeout is not None else None,
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
            raise ClickToCallError("not an originate request", value=text[:200]) from exc
        _check(request.pbx, request.from_endpoint, request.number)
        if request.kind not in KINDS:
            raise ClickToCallError("unknown request kind", value=request.kind)
        if request.is_spot_check:
            _check_spot_check(request)
        return request

    def ami_action(
        self,
        *,
        context: str = "from-internal",
        timeout_seconds: float = 30.0,
        caller_id: str | None = None,
    ) -> dict[str, str]:
        """The AMI ``Originate`` the listener sends.

        A call-back rings the desk phone, then dials the number in ``context`` (the
        listener's ``originate_context``). A spot check rings its own Local channel (the
        request's context, never the listener's) and plays its prompt; its ``CallerID`` is
        ``抽查 <number>`` and the variable ``CALLCENTER_SPOTCHECK`` names the spot check.

        ``Async`` so the listener's loop is not held while the phone rings; the outcome comes
        back as an ``OriginateResponse`` event whose ``ActionID`` is the request id.
        """
        timeout = self.timeout_seconds if self.timeout_seconds is not None else timeout_seconds
        if self.is_spot_check:
            return {
                "Action": "Originate",
                "ActionID": self.id,
                "Channel": self.from_endpoint,
                "Application": "Playback",
                "Data": self.prompt or SPOT_CHECK_PROMPT,
                "Timeout": str(int(timeout * 1000)),
                "CallerID": caller_id if caller_id is not None else f"抽查 <{self.number}>",
                "Async": "true",
                "Variable": f"CALLCENTER_SPOTCHECK={self.spot_check_id}",
            }
        return {
            "Action": "Originate",
            "ActionID": self.id,
            "Channel": self.from_endpoint,
            "Context": context,
            "Exten": self.number,
            "Priority": "1",
            "Timeout": str(int(timeout * 1000)),
            "CallerID": caller_id if caller_id is not None else f"Callback <{self.number}>",
            "Async": "true",
            "Variable": f"CALLCENTER_CALLBACK={self.id}",
        }


def spot_check_channel(number: str, context: str) -> str:
    """The channel a spot check of line ``number`` originates: ``Local/<number>@<context>``,
    where ``context`` is the dialplan context outside calls to the line arrive in."""
    if not _NUMBER_RE.match(number):
        raise ClickToCallError("bad duty line number", value=number)
    if not _CONTEXT_RE.match(context):
        raise ClickToCallError("bad dialplan context", value=context)
    return f"Local/{number}@{context}"


def _check_spot_check(request: OriginateRequest) -> None:
    if request.spot_check_id is None:
        raise ClickToCallError("spot check without its id")
    prefix, _, context = request.from_endpoint.partition("@")
    if prefix != f"Local/{request.number}" or not _CONTEXT_RE.match(context):
        raise ClickToCallError("bad spot check channel", value=request.from_endpoint)
    if request.prompt and not _PROMPT_RE.match(request.prompt):
        raise ClickToCallError("bad prompt", value=request.prompt)
    if request.timeout_seconds is not None and not 1 <= request.timeout_seconds <= 300:
        raise ClickToCallError("bad ring timeout", value=str(request.timeout_seconds))


def queue_key(pbx: str) -> str:
    """The Redis list the listener of ``pbx`` serves."""
    return f"{QUEUE_PREFIX}:{pbx}"


def result_key(request_id: str) -> str:
    return f"{RESULT_PREFIX}:{request_id}"


def _check(pbx: str, from_endpoint: str, number: str) -> None:
    if not _PBX_RE.match(pbx):
        raise ClickToCallError("bad PBX name", value=pbx)
    if not _ENDPOINT_RE.match(from_endpoint):
        raise ClickToCallError("bad desk phone endpoint", value=from_endpoint)
    if not _NUMBER_RE.match(number):
        raise ClickToCallError("bad number to call", value=number)


def _now() -> datetime:
    return datetime.now(UTC)


def dialable(number: str | None) -> str | None:
    """``number`` as it would be dialed (spaces and dashes dropped), or None when it cannot
    be (empty, ``anonymous``, letters): the console offers a call-back only for these."""
    if not number:
        return None
    cleaned = number.strip().replace(" ", "").replace("-", "")
    return cleaned if _NUMBER_RE.match(cleaned) else None


def request_call(
    redis_client: redis.Redis,
    pbx: str,
    from_endpoint: str,
    number: str,
    requested_by: str,
    *,
    call_id: int | None = None,
    now: datetime | None = None,
) -> str:
    """Queue a call-back on ``pbx``: ring ``from_endpoint``, then dial ``number``.

    Returns the request id (32 hex digits); its result starts as ``queued``. Raises
    :class:`ClickToCallError` for a malformed number, endpoint or PBX name (checked here so
    nothing that could smuggle an AMI header reaches the listener) and
    ``redis.exceptions.RedisError`` when Redis is unavailable.
    """
    number = dialable(number) or number
    _check(pbx, from_endpoint, number)
    at = now or _now()
    request = OriginateRequest(
        id=uuid.uuid4().hex,
        pbx=pbx,
        from_endpoint=from_endpoint,
        number=number,
        requested_by=requested_by,
        requested_at=at,
        call_id=call_id,
    )
    _enqueue(redis_client, request, at)
    return request.id


def request_spot_check(
    redis_client: redis.Redis,
    pbx: str,
    number: str,
    spot_check_id: int,
    *,
    context: str,
    prompt: str = SPOT_CHECK_PROMPT,
    timeout_seconds: float | None = None,
    requested_by: str = "system",
    request_id: str | None = None,
    now: datetime | None = None,
) -> str:
    """Queue a spot check of duty line ``number`` on ``pbx``: the listener originates
    ``Local/<number>@<context>`` (rings the line as an outside call would) and plays
    ``prompt`` to whoever answers.

    Returns the request id (the Originate's ``ActionID``; ``request_id`` when given, 32 hex
    digits, so the caller can record it before queueing); its result starts as ``queued``.
    Raises :class:`ClickToCallError` for a malformed number, context, prompt or PBX name and
    ``redis.exceptions.RedisError`` when Redis is unavailable.
    """
    if request_id is not None and not _ID_RE.match(request_id):
        raise ClickToCallError("bad request id", value=request_id)
    at = now or _now()
    request = OriginateRequest(
        id=request_id or uuid.uuid4().hex,
        pbx=pbx,
        from_endpoint=spot_check_channel(number, context),
        number=number,
        requested_by=requested_by,
        requested_at=at,
        kind="spot_check",
        spot_check_id=int(spot_check_id),
        prompt=prompt,
        timeout_seconds=timeout_seconds,
    )
    _check(pbx, request.from_endpoint, number)
    _check_spot_check(request)
    _enqueue(redis_client, request, at)
    return request.id


def _enqueue(redis_client: redis.Redis, request: OriginateRequest, at: datetime) -> None:
    pipe = redis_client.pipeline(transaction=True)
    pipe.set(result_key(request.id), _result_json(request, "queued", "", at), ex=RESULT_TTL_SECONDS)
    pipe.lpush(queue_key(request.pbx), request.to_json())
    pipe.execute()


def next_request(
    redis_client: redis.Redis,
    pbx: str,
    timeout: float,
    *,
    max_age_seconds: float = DEFAULT_MAX_AGE_SECONDS,
    now: datetime | None = None,
) -> OriginateRequest | None:
    """The oldest request queued for ``pbx``, waiting up to ``timeout`` seconds; None if none.

    ``timeout`` 0 waits forever; the client's ``socket_timeout`` must be longer than
    ``timeout``. Malformed entries are dropped, and requests older than ``max_age_seconds``
    are marked ``expired``; either way the next one is tried until the timeout ends.
    Raises ``redis.exceptions.RedisError`` when Redis is unavailable.
    """
    key = queue_key(pbx)
    wait = timeout
    while True:
        popped = redis_client.brpop([key], timeout=wait)
        if popped is None:
            return None
        _key, raw = popped
        try:
            request = OriginateRequest.from_json(raw)
        except ClickToCallError:
            continue
        at = now or _now()
        age = (at - request.requested_at).total_seconds()
        if age > max_age_seconds:
            record_result(
                redis_client,
                request.id,
                "expired",
                f"waited {age:.0f} s in the queue (limit {max_age_seconds:.0f} s)",
                now=at,
            )
            # Only what is already queued is looked at without waiting again.
            wait = 0.01 if timeout else 0
            continue
        return request


def record_result(
    redis_client: redis.Redis,
    request_id: str,
    result: str,
    detail: str = "",
    *,
    now: datetime | None = None,
) -> None:
    """Record how request ``request_id`` went: one of :data:`RESULTS`, with a short detail.

    The request's own fields (desk phone, number, who asked) are kept from the earlier
    record. Raises :class:`ClickToCallError` for an unknown result.
    """
    if result not in RESULTS:
        raise ClickToCallError(
            f"unknown result (expected one of {', '.join(RESULTS)})", value=result
        )
    if not _ID_RE.match(request_id):
        raise ClickToCallError("bad request id", value=request_id)
    key = result_key(request_id)
    previous = _load(redis_client.get(key)) or {}
    record: dict[str, Any] = {key_: previous[key_] for key_ in _REQUEST_KEYS if key_ in previous}
    record.update(
        {
            "id": request_id,
            "result": result,
            "detail": detail,
            "at": (now or _now()).astimezone(UTC).isoformat(timespec="milliseconds"),
            "final": result in FINAL_RESULTS,
        }
    )
    redis_client.set(key, _dumps(record), ex=RESULT_TTL_SECONDS)


def result_of(redis_client: redis.Redis, request_id: str) -> dict[str, Any] | None:
    """The last recorded result of ``request_id``: ``{"id", "result", "detail", "at",
    "final", "from_endpoint", "number", ...}``; None when unknown or expired."""
    if not _ID_RE.match(request_id):
        return None
    return _load(redis_client.get(result_key(request_id)))


#: What a result record keeps of its request from one result to the next.
_REQUEST_KEYS = (
    "pbx", "from_endpoint", "number", "requested_by", "requested_at", "call_id", "kind",
    "spot_check_id",
)  # fmt: skip


def _result_json(request: OriginateRequest, result: str, detail: str, at: datetime) -> str:
    spot = {"kind": request.kind, "spot_check_id": request.spot_check_id}
    return _dumps(
        (spot if request.is_spot_check else {})
        | {
            "id": request.id,
            "result": result,
            "detail": detail,
            "at": at.astimezone(UTC).isoformat(timespec="milliseconds"),
            "final": result in FINAL_RESULTS,
            "pbx": request.pbx,
            "from_endpoint": request.from_endpoint,
            "number": request.number,
            "requested_by": request.requested_by,
            "requested_at": request.requested_at.astimezone(UTC).isoformat(timespec="milliseconds"),
            "call_id": request.call_id,
        }
    )


def _dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _load(raw: bytes | str | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
