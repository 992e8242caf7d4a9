"""How the AMI replay server answers a spot check while it plays generated traffic.

A spot check (:mod:`callcenter.workers.spot_checks`) makes the listener send ``Originate``
of ``Local/<line>@<context>``. Asterisk would ring the line's desk phone and send the
events of that call; the replay server, given :class:`GeneratedSpotCheckAnswers` as its
``originate_handler``, plays a spot check made by the traffic generator instead
(:func:`callcenter.ami.generator.generate_call`, kind ``spot_check``): the desk phone
rings, is answered (or not, when it rings past the Originate timeout), then hangs up. The
call is stamped with the wall clock from the moment of the Originate, as the spot check's
own ``originated_at`` is, so the check finds its call even when the generated day plays
faster than real time. Events and the ``OriginateResponse`` come when the call has ended.

Any other ``Originate`` (click-to-call back from a desk phone) gets the server's default
answer: success, no events.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from random import Random

from callcenter.ami.generator import Counters, generate_call
from callcenter.ami.replay_server import OriginateResult

__all__ = ["GeneratedSpotCheckAnswers"]

_LOCAL_LINE = re.compile(r"^Local/(?P<number>[0-9*#+]{1,32})@[A-Za-z0-9_.\-]+$")
#: Far above what a generated day's counters reach (a few per call), so the spot checks'
#: Uniqueids and channel names never repeat the stream's.
_UNIQUEID_BASE = 50_000_000


class GeneratedSpotCheckAnswers:
    """An ``originate_handler``: a generated spot-check call for ``Local/<line>@…``."""

    def __init__(self, seed: int, clock: Callable[[], float] = time.time) -> None:
        self._rng = Random(seed)
        self._counters = Counters(_UNIQUEID_BASE)
        self._clock = clock

    def __call__(self, action: Mapping[str, str]) -> OriginateResult:
        found = _LOCAL_LINE.match(action.get("Channel", ""))
        if found is None:
            return OriginateResult()
        start = datetime.fromtimestamp(self._clock(), UTC)
        events, _ = generate_call(
            "spot_check",
            rng=self._rng,
            start=start,
            uniqueid_seq=self._counters,
            line=found["number"],
        )
        played = tuple(e for e in events if e.get("Event") != "OriginateResponse")
        (response,) = (e for e in events if e.get("Event") == "OriginateResponse")
        ended = max(float(e["Timestamp"]) for e in played)
        return OriginateResult(
            success=response["Response"] == "Success",
            reason=int(response["Reason"]),
            delay=max(0.0, ended - start.timestamp()),
            channel=response["Channel"],
            uniqueid=response["Uniqueid"],
            events=played,
        )
