"""How the AMI replay server answers a spot check while it plays generated traffic.

A spot check (:mod:`callcenter.workers.spot_checks`) makes the listener send ``Originate``
of ``Local/<line>@<context>``. Asterisk would ring the line's desk phone and send the
events of that call; the replay server, given :class:`GeneratedSpotCheckAnswers` as its
``originate_handler``, plays a spot check made by the traffic generator instead
(:func:`callcenter.ami.generator.generate_call`, kind ``spot_check``): the generated
traffic's desk phone ``SIP/duty1`` (a desk phone of every line the generator and the demo
use) rings a random time, is answered, or not when it rings past the generator's 15 s
Originate timeout (the action's own ``Timeout`` is not read), then hangs up. The call is
stamped with the wall clock from the moment of the Originate, as the spot check's own
``originated_at`` is, so the check finds its call even when the generated day plays faster
than real time. Its events and the ``OriginateResponse`` come when the call has ended. It
takes its channel numbers from the generated day's own counters (``generate_stream(seed,
counters=...)``), as one Asterisk numbers every channel, so no name or Uniqueid repeats and
the listener sees no jump in them (it would take one for a PBX restart).

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


class GeneratedSpotCheckAnswers:
    """An ``originate_handler``: a generated spot-check call for ``Local/<line>@…``,
    numbered by ``numbering`` (the counters of the generated day the server plays)."""

    def __init__(
        self, seed: int, numbering: Counters, clock: Callable[[], float] = time.time
    ) -> None:
        self._rng = Random(seed)
        self._counters = numbering
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
