"""The tracker's mutable per-channel and per-call state (internal to the tracker).

Times are epoch seconds (floats) inside the tracker; records get datetimes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from callcenter.tracking.names import endpoint_of, is_local, local_half


@dataclass(slots=True)
class DialLink:
    """How a channel was dialed: by whom (``parent`` Uniqueid, None for an Originate)."""

    parent: str | None
    dialstring: str
    begin_seq: int
    begin_at: float | None
    ringing_at: float | None = None
    end_status: str | None = None
    end_seq: int | None = None
    end_at: float | None = None
    forward: str | None = None


@dataclass(slots=True)
class ChannelState:
    uniqueid: str
    name: str
    linkedid: str
    created_seq: int
    created_at: float | None
    caller_num: str | None = None
    caller_name: str | None = None
    exten: str | None = None
    state: str = ""
    ringing_at: float | None = None
    up_at: float | None = None
    up_seq: int | None = None
    hangup_at: float | None = None
    hangup_seq: int | None = None
    cause: int | None = None
    partner: str | None = None
    dial: DialLink | None = None
    dial_exten: str | None = None  # Exten when this channel first dialed out
    originated: bool = False
    moved_in: bool = False
    departed_from: set[str] = field(default_factory=set)  # Linkedids it moved away from
    local: bool = False
    half: int = 0
    endpoint: str = ""

    def __post_init__(self) -> None:
        self.set_name(self.name)

    def set_name(self, name: str) -> None:
        self.name = name
        self.local = is_local(name)
        self.half = local_half(name)
        self.endpoint = endpoint_of(name)

    @property
    def hung_up(self) -> bool:
        return self.hangup_seq is not None


@dataclass(slots=True)
class CallState:
    linkedid: str
    first_seq: int
    last_seq: int
    last_at: float | None
    legs: list[str] = field(default_factory=list)  # Uniqueids that belong to this call
    live: set[str] = field(default_factory=set)  # legs not hung up yet
    # legs that moved to another Linkedid: Uniqueid -> (seq, time) of the move
    departed: dict[str, tuple[int, float | None]] = field(default_factory=dict)
    hangups: int = 0
    transfer_seq: int | None = None
    transferred_to: str | None = None
    queue_abandoned: bool = False
    originate_failed: bool = False
    times_estimated: bool = False  # some times were not observed (a listener outage)
