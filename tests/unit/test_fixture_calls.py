"""Hand-checked call records for every recorded AMI fixture.

Each expectation below was written by reading the fixture's events, not by running the
tracker: the comment above each case cites the events that decide the non-obvious fields.
Conventions (see docs/DESIGN.md "Interfaces others depend on" and the lead's notes):

* one call per Linkedid, in the order the calls ended (the last channel that still belongs
  to the call hung up); a channel that moves to another Linkedid belongs to its new call;
* ``caller`` is the CallerIDNum of the call's first channel (Uniqueid == Linkedid) as the PBX
  set it (after NewCallerid, i.e. what the channel carries when it dials / hangs up);
  for an Originate "A calls B" it is A's number;
* ``dialed`` is the first channel's Exten at Newchannel (for "A calls B": B's number);
* ``direction`` is number based: caller with 7+ digits or a leading "+" => inbound; short
  caller and external dialed => outbound; both short => internal; originates never inbound;
* ``answered_by`` is the endpoint channel name minus its final ``-<counter>``.

Marks used in comments:

* ``JUDGEMENT:`` DESIGN.md does not settle the case; the reading that best follows it.
* ``CONVENTION-CONFLICT:`` the lead's convention, applied as written, gives a value that the
  events contradict; the expectation follows the convention, the comment says why it is odd.

Times: the asterisk20* fixtures carry ``Timestamp`` headers, so ``ring_seconds`` and
``talk_seconds`` are checked to 0.05 s. The cacofonisk ``.json`` fixtures carry no time at all;
their calls do not list ring/talk (not checked) and their timestamps must be null.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from pytest import approx

from callcenter.replay import replay_paths

FIXTURES = Path(__file__).parent.parent / "fixtures" / "ami"

OUTCOMES = {"answered", "no_answer", "abandoned", "busy", "failed"}
TRUNK = "SIP/voipgrid-siproute-docker"


class OneOf:
    """Matches any of the given values (used only where the events allow two readings)."""

    def __init__(self, *values: Any) -> None:
        self.values = values

    def __eq__(self, other: object) -> bool:
        return any(other == value for value in self.values)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return "OneOf(" + ", ".join(repr(v) for v in self.values) + ")"


def secs(value: float) -> Any:
    return approx(value, abs=0.05)


_UNSET: Any = object()


def call(
    linkedid: str,
    *,
    caller: Any = _UNSET,
    dialed: Any = _UNSET,
    direction: Any,
    outcome: str,
    answered_by: Any = None,
    forwarded_to: Any = None,
    transferred_to: Any = None,
    hangup_cause: Any,
    ring_seconds: Any = _UNSET,
    talk_seconds: Any = _UNSET,
) -> dict[str, Any]:
    """One expected call; keys left unset are not compared."""
    expected = {
        "linkedid": linkedid,
        "caller": caller,
        "dialed": dialed,
        "direction": direction,
        "outcome": outcome,
        "answered_by": answered_by,
        "forwarded_to": forwarded_to,
        "transferred_to": transferred_to,
        "hangup_cause": hangup_cause,
        "ring_seconds": ring_seconds,
        "talk_seconds": talk_seconds,
    }
    return {key: value for key, value in expected.items() if value is not _UNSET}


# The asterisk20 "answered" session, shared by its .jsonl and raw .ami recordings.
# Newchannel SIP/pstn-00000062 Uniqueid=Linkedid=1795432818.102 CallerIDNum=13811110001
# Exten=12345; DialBegin -> SIP/duty1-00000063 DialString "duty1" (a peer, no number);
# duty1 Newstate Ringing 818.1496, Up 821.1541 (DialEnd ANSWER 821.1543) => ring 3.00 s;
# Hangup pstn 826.1625 Cause=16, duty1 826.1625 => talk 5.01 s.
ANSWERED_12345 = [
    call(
        "1795432818.102",
        caller="13811110001",
        dialed="12345",
        direction="inbound",
        outcome="answered",
        answered_by="SIP/duty1",
        hangup_cause=16,
        ring_seconds=secs(3.00),
        talk_seconds=secs(5.01),
    ),
]


CASES: dict[str, list[dict[str, Any]]] = {
    # ------------------------------------------------------------------ asterisk20 (chan_sip)
    "asterisk20/answered.jsonl": ANSWERED_12345,
    "asterisk20/answered.ami": ANSWERED_12345,
    # Newchannel SIP/pstn-00000066 13811110003 -> 12345; DialBegin duty1; duty1 Ringing
    # 842.6523; DialEnd NOANSWER 862.6690 (the Dial(…,20) timeout), duty1 Hangup 16, pstn
    # Hangup 862.6704 Cause=16 => ring 20.02 s, no answer, no talk.
    "asterisk20/no_answer_timeout.jsonl": [
        call(
            "1795432842.106",
            caller="13811110003",
            dialed="12345",
            direction="inbound",
            outcome="no_answer",
            hangup_cause=16,
            ring_seconds=secs(20.02),
            talk_seconds=None,
        ),
    ],
    # DialBegin pstn -> SIP/duty1-0000006b at 879.182, DialEnd BUSY 879.185 without any
    # Ringing (486 from the DND phone); duty1 Hangup Cause=17; pstn Hangup Cause=17
    # => busy, nothing rang (ring 0).
    "asterisk20/busy_dnd.jsonl": [
        call(
            "1795432879.110",
            caller="13811110005",
            dialed="12345",
            direction="inbound",
            outcome="busy",
            hangup_cause=17,
            ring_seconds=secs(0.0),
            talk_seconds=None,
        ),
    ],
    # PBX-side forward: DialBegin pstn -> SIP/mobile-0000006d DialString "mobile/13800138000"
    # (<peer>/<number>, number != peer, != dialed 12345) => forwarded_to 13800138000.
    # mobile Ringing 883.9461, Up/DialEnd ANSWER 885.9508 => ring 2.00 s; Hangup mobile and
    # pstn 890.955 Cause=16 => talk 5.00 s; answered_by is the endpoint, SIP/mobile.
    "asterisk20/pbx_forward_to_mobile.jsonl": [
        call(
            "1795432883.112",
            caller="13811110006",
            dialed="12345",
            direction="inbound",
            outcome="answered",
            answered_by="SIP/mobile",
            forwarded_to="13800138000",
            hangup_cause=16,
            ring_seconds=secs(2.00),
            talk_seconds=secs(5.00),
        ),
    ],
    # PeerStatus SIP/duty1 Unreachable; Newchannel SIP/pstn-00000074 -> 12345; no DialBegin
    # at all (VarSet DIALSTATUS=CHANUNAVAIL); pstn Hangup Cause=20 (Subscriber absent)
    # => failed without ringing anybody; the PeerStatus events make no call.
    "asterisk20/phone_offline.jsonl": [
        call(
            "1795432928.122",
            caller="13811110009",
            dialed="12345",
            direction="inbound",
            outcome="failed",
            hangup_cause=20,
            ring_seconds=secs(0.0),
            talk_seconds=None,
        ),
    ],
    # AMI Originate of SIP/duty1 (dials nobody further: a spot check). The first channel is
    # SIP/duty1-00000075 itself (Exten "s"); NewCallerid sets 12345 "Duty spot check" => caller
    # 12345; DialBegin (no Channel) DialString "duty1" => dialed duty1; originated, target not
    # external => internal. duty1 Ringing 940.2442, Up 942.2531 / DialEnd ANSWER 942.2541 =>
    # ring 2.01 s, answered by the originated endpoint; Hangup 945.2574 Cause=16 => talk 3.00 s.
    "asterisk20/spot_check_originate_answered.jsonl": [
        call(
            "1795432940.123",
            caller="12345",
            dialed="duty1",
            direction="internal",
            outcome="answered",
            answered_by="SIP/duty1",
            hangup_cause=16,
            ring_seconds=secs(2.01),
            talk_seconds=secs(3.00),
        ),
    ],
    # ------------------------------------------------------------ asterisk20-pjsip (chan_pjsip)
    # PJSIP/pstn-00000003 13811110001 -> 12345; DialBegin PJSIP/2001-00000004 "2001";
    # Ringing 161.7917, DialEnd ANSWER 164.7986 => ring 3.01 s; Hangup pstn 169.8065 Cause=16,
    # 2001 169.8089 => talk 5.01 s.
    "asterisk20-pjsip/pj_answered.jsonl": [
        call(
            "1795434161.3",
            caller="13811110001",
            dialed="12345",
            direction="inbound",
            outcome="answered",
            answered_by="PJSIP/2001",
            hangup_cause=16,
            ring_seconds=secs(3.01),
            talk_seconds=secs(5.01),
        ),
    ],
    # 2001 Ringing 174.0516; DialEnd NOANSWER 194.0697 (timeout); 2001 Hangup Cause=0 (PJSIP
    # no-answer leg), pstn Hangup 194.0707 Cause=16 => ring 20.02 s.
    "asterisk20-pjsip/pj_no_answer.jsonl": [
        call(
            "1795434174.5",
            caller="13811110002",
            dialed="12345",
            direction="inbound",
            outcome="no_answer",
            hangup_cause=16,
            ring_seconds=secs(20.02),
            talk_seconds=None,
        ),
    ],
    # Queue 12347 (QueueCallerJoin); DialBegin -> PJSIP/2001-00000010 and PJSIP/2002-00000011
    # (DialString "PJSIP/200x", no number); both Ringing from 234.0509; 2002 Up / DialEnd
    # ANSWER 237.0544 (2001 DialEnd CANCEL, Hangup 26) => ring 3.00 s, answered_by PJSIP/2002;
    # the caller's channel only goes Up at 237.054, after the agent answered (no PBX answer);
    # Hangup 2002 242.0638 / pstn 242.0638 Cause=16 => talk 5.01 s.
    "asterisk20-pjsip/pj_queue_answered.jsonl": [
        call(
            "1795434234.17",
            caller="13811110006",
            dialed="12347",
            direction="inbound",
            outcome="answered",
            answered_by="PJSIP/2002",
            hangup_cause=16,
            ring_seconds=secs(3.00),
            talk_seconds=secs(5.01),
        ),
    ],
    # ContactStatus Unreachable for 2001; PJSIP/pstn-0000001a -> 12345 has no DialBegin and
    # hangs up at once with Cause=3 (No route to destination) => failed, nothing rang.
    "asterisk20-pjsip/pj_contact_unreachable.jsonl": [
        call(
            "1795434297.28",
            caller="13811110010",
            dialed="12345",
            direction="inbound",
            outcome="failed",
            hangup_cause=3,
            ring_seconds=secs(0.0),
            talk_seconds=None,
        ),
    ],
    # Only DeviceStateChange / ExtensionStatus for Custom:DND2001 (no channel) => no call.
    "asterisk20-pjsip/pj_dnd_and_forward_flags.jsonl": [],
    # Only PJSIPShow* list events, ContactStatus and device states (no channel) => no call.
    "asterisk20-pjsip/pj_endpoint_status_query.jsonl": [],
    # Two overlapping calls to 12345. Call 1: pstn-0000001b 13811110021, 2001 Ringing 315.7347,
    # DialEnd NOANSWER 335.7535, pstn Hangup 335.7540 Cause=16 => ring 20.02 s, ends first.
    # Call 2: pstn-0000001d 13811110022, Ringing 320.730, DialEnd NOANSWER 340.7493,
    # Hangup 340.7498 Cause=16 => ring 20.02 s.
    "asterisk20-pjsip/pj_two_missed.jsonl": [
        call(
            "1795434315.29",
            caller="13811110021",
            dialed="12345",
            direction="inbound",
            outcome="no_answer",
            hangup_cause=16,
            ring_seconds=secs(20.02),
            talk_seconds=None,
        ),
        call(
            "1795434320.31",
            caller="13811110022",
            dialed="12345",
            direction="inbound",
            outcome="no_answer",
            hangup_cause=16,
            ring_seconds=secs(20.02),
            talk_seconds=None,
        ),
    ],
    # ------------------------------------------------------------------- cacofonisk/simple
    # Internal calls from an account: Newchannel SIP/150010001-… CallerIDNum 150010001 (the
    # account), then NewCallerid 201 before the Dial; 201 is what the channel carries at
    # DialBegin and Hangup.
    # JUDGEMENT: caller is that PBX-set number "201", not the Newchannel value "150010001";
    # with the Newchannel value every internal call would read as "inbound" (9 digits).
    #
    # #15 DialBegin SIP/150010001-00000004 -> Local/ID730151@…;1 ("ID730151" is no number);
    # #20 DialBegin Local …;2 -> SIP/150010002-00000005 "150010002/150010002/172.20.0.13!!201"
    # (number == peer: no forward); #23 Newstate Up, #24 DialEnd ANSWER => answered_by
    # SIP/150010002; #45 caller Hangup Cause=16.
    "cacofonisk/simple/ab_success_a_hangup.json": [
        call(
            "195176c06ab8-1529936170.42",
            caller="201",
            dialed="202",
            direction="internal",
            outcome="answered",
            answered_by="SIP/150010002",
            hangup_cause=16,
        ),
    ],
    # Same flow as above (B hangs up first in the real call; the events are the same shape):
    # #23 SIP/150010002-00000014 Up, #24 DialEnd ANSWER; #45 caller Hangup Cause=16.
    "cacofonisk/simple/ab_success_b_hangup.json": [
        call(
            "195176c06ab8-1529936710.252",
            caller="201",
            dialed="202",
            direction="internal",
            outcome="answered",
            answered_by="SIP/150010002",
            hangup_cause=16,
        ),
    ],
    # Out-of-order: #18 Newstate Ringing of SIP/100060002-0000000f comes before its #19
    # DialBegin; #21 Up, #22 DialEnd ANSWER; caller #3 NewCallerid 201; #42 Hangup Cause=16.
    "cacofonisk/simple/ab_success_o3.json": [
        call(
            "fc7a1e79d662-1539093894.250",
            caller="201",
            dialed="202",
            direction="internal",
            outcome="answered",
            answered_by="SIP/100060002",
            hangup_cause=16,
        ),
    ],
    # Two calls through the trunk. Call A (.287): SIP/260010001-00000015 Newchannel
    # CallerIDNum 260010001 Exten 0150010001; #5 NewCallerid +31260010001 (outbound CLI);
    # #16 DialBegin -> Local/+31150010001@world_out;1; #21 …;2 -> SIP/voipgrid-siproute-docker-
    # 00000016 "+31150010001@voipgrid-siproute-docker"; #55 trunk leg Up, #57/#61 DialEnd ANSWER.
    # CONVENTION-CONFLICT: this is an outbound call from a phone (context osvpi_account), but
    # caller "+31260010001" (and even "260010001") looks external => "inbound" by the rule.
    # JUDGEMENT: not forwarded: Local/+31150010001 is the dialed 0150010001 in E.164 form
    # (the caller channel's own Exten is already +31150010001 at DialBegin #16); the lead's
    # notes also treat the trunk dial "+31150010001@voipgrid-siproute-docker" as the dialed
    # number. A literal string compare would wrongly report a forward here.
    # Call B (.297): SIP/voipgrid-siproute-docker-00000017 +31260010001 -> +31150010001;
    # #41 Local/ID730150;2 -> SIP/150010001-00000018 (number == peer); #44 Up, #45 ANSWER.
    # End order: A's last channel (SIP/260010001-15) hangs up at #90, B's last
    # (SIP/150010001-18) at #91 => A first.
    "cacofonisk/simple/ab_success_twoclients.json": [
        call(
            "195176c06ab8-1529936734.287",
            caller="+31260010001",
            dialed="0150010001",
            direction="inbound",
            outcome="answered",
            answered_by=TRUNK,
            forwarded_to=None,
            hangup_cause=16,
        ),
        call(
            "195176c06ab8-1529936734.297",
            caller="+31260010001",
            dialed="+31150010001",
            direction="inbound",
            outcome="answered",
            answered_by="SIP/150010001",
            hangup_cause=16,
        ),
    ],
    # #21 SIP/150010002-00000003 Ringing; #23 DialEnd CANCEL (caller's dial to Local;1) and #24
    # CANCEL (Local;2 -> 150010002) before any answer; #28 caller Hangup Cause=0 => abandoned.
    "cacofonisk/simple/ab_a_cancel.json": [
        call(
            "195176c06ab8-1529936141.21",
            caller="201",
            dialed="202",
            direction="internal",
            outcome="abandoned",
            hangup_cause=0,
        ),
    ],
    # Ring group 401: two Local legs -> SIP/150010002-0000000e and SIP/150010003-0000000f;
    # #40 150010002 Up, #41 DialEnd ANSWER; the other leg DialEnd CANCEL, Hangup 26;
    # #68 caller Hangup Cause=16.
    "cacofonisk/simple/ab_callgroup.json": [
        call(
            "195176c06ab8-1529936598.168",
            caller="201",
            dialed="401",
            direction="internal",
            outcome="answered",
            answered_by="SIP/150010002",
            hangup_cause=16,
        ),
    ],
    # Ring group 401, both phones ring (#36, #38) and both refuse: #40 DialEnd BUSY for
    # SIP/150010002 (Hangup Cause=17), #45 DialEnd BUSY for SIP/150010003 (Hangup Cause=21
    # Call Rejected). The outer dial to Local/ID730152;1 ends NOANSWER (#48) and the caller
    # hangs up with Cause=19, which is how the Local chain relays the refusal.
    # JUDGEMENT: busy (every real endpoint said BUSY / rejected, DESIGN: busy = busy/DND/
    # rejected), although the fixture is named "no_answer" and the caller's cause is 19.
    "cacofonisk/simple/ab_callgroup_no_answer.json": [
        call(
            "195176c06ab8-1529936670.217",
            caller="201",
            dialed="401",
            direction="internal",
            outcome="busy",
            hangup_cause=19,
        ),
    ],
    # DND: #21 DialEnd BUSY for SIP/150010002-00000007 with no Ringing; Hangup Cause=17.
    "cacofonisk/simple/ab_dnd.json": [
        call(
            "195176c06ab8-1529936189.77",
            caller="201",
            dialed="202",
            direction="internal",
            outcome="busy",
            hangup_cause=17,
        ),
    ],
    # Reject while ringing: #21 Ringing, #23 DialEnd BUSY, Hangup Cause=17; caller Cause=17.
    "cacofonisk/simple/ab_reject.json": [
        call(
            "195176c06ab8-1529936241.98",
            caller="201",
            dialed="202",
            direction="internal",
            outcome="busy",
            hangup_cause=17,
        ),
    ],
    # SIP/voipgrid-siproute-docker-00000009 +31150010001 -> +31150010004; #4 Newstate Up is the
    # PBX answering the caller itself (context osvpi_proc_lazyanswer); no DialBegin at all;
    # #9 Hangup Cause=0.
    # JUDGEMENT (lead): abandoned. The PBX answered the caller itself (its own answer is not
    # an answer), nobody was dialed, and nothing signals a failure (Cause=0, no CHANUNAVAIL/
    # CONGESTION): the caller gave up in the PBX's greeting, like a caller leaving an IVR or
    # queue. "failed" is kept for calls with a failure cause/status (phone_offline: Cause=20).
    "cacofonisk/simple/a_created_no_answer.json": [
        call(
            "e25ad522d444-1553503669.94",
            caller="+31150010001",
            dialed="+31150010004",
            direction="inbound",
            outcome="abandoned",
            hangup_cause=0,
        ),
    ],
    # ------------------------------------------------------------------- cacofonisk/mobile
    # Fixed destination to a mobile: +31150010001 -> +31150010004; #14 DialBegin ->
    # Local/ID1@osvpi_route_fixeddestination;1 (no number); #24 Local …;2 ->
    # Local/+31260010001@world_out;1 (a number other than the dialed one => forwarded);
    # #30 -> SIP/voipgrid-siproute-docker-00000037; #35 Up, #36/#40/#44 DialEnd ANSWER up the
    # chain; #76 caller Hangup Cause=16.
    "cacofonisk/mobile/simple_mobile.json": [
        call(
            "f29ea68048f6-1530017224.892",
            caller="+31150010001",
            dialed="+31150010004",
            direction="inbound",
            outcome="answered",
            answered_by=TRUNK,
            forwarded_to="+31260010001",
            hangup_cause=16,
        ),
    ],
    # Same as simple_mobile with an acceptance prompt on the mobile leg: #35 trunk leg
    # SIP/voipgrid-siproute-docker-00000049 Up, #36 ANSWER; the mobile accepts, so #43 and #47
    # DialEnd ANSWER reach the caller (#48 caller Up). #76 Hangup Cause=16.
    "cacofonisk/mobile/acceptance_simple.json": [
        call(
            "f29ea68048f6-1530017933.1232",
            caller="+31150010001",
            dialed="+31150010004",
            direction="inbound",
            outcome="answered",
            answered_by=TRUNK,
            forwarded_to="+31260010001",
            hangup_cause=16,
        ),
    ],
    # +31150010003 -> +31260010001 routed to Local/+31150010001@world_out (forwarded). #35 the
    # mobile's trunk leg goes Up and #36 its inner DialEnd ANSWER, but the acceptance is
    # refused: #49 DialEnd CONTINUE, #52 the caller's own DialEnd NOANSWER; the caller's
    # channel never goes Up. #54 Hangup Cause=16.
    # JUDGEMENT: an acceptance-refused mobile is not an answer (the caller was never connected;
    # like a PBX-side prompt, the pick-up did not reach the caller) => no_answer, answered_by
    # null; forwarded_to is still the number the call was sent to.
    "cacofonisk/mobile/acceptance_reject.json": [
        call(
            "f29ea68048f6-1530020018.1761",
            caller="+31150010003",
            dialed="+31260010001",
            direction="inbound",
            outcome="no_answer",
            forwarded_to="+31150010001",
            hangup_cause=16,
        ),
    ],
    # Like acceptance_reject, but the mobile (Up at #35) never accepts and the caller's dial
    # times out: #43 DialEnd NOANSWER, #45 caller Hangup Cause=19.
    # JUDGEMENT: as acceptance_reject => no_answer, forwarded_to +31150010001.
    "cacofonisk/mobile/acceptance_timeout.json": [
        call(
            "f29ea68048f6-1530021414.2233",
            caller="+31150010003",
            dialed="+31260010001",
            direction="inbound",
            outcome="no_answer",
            forwarded_to="+31150010001",
            hangup_cause=19,
        ),
    ],
    # Two mobiles in parallel (ID3 -> +31150010001, ID4 -> +31150010002). #63 the +31150010001
    # leg (…-00000073) goes Up first and accepts: #92/#95 DialEnd ANSWER, #97 caller Up. The
    # +31150010002 leg (Up #73) refuses: #87 CONTINUE, #90 NOANSWER. With parallel targets the
    # forward is the one that answered => +31150010001. #125 caller Hangup Cause=16.
    "cacofonisk/mobile/acceptance_group_reject.json": [
        call(
            "f29ea68048f6-1530020779.2044",
            caller="+31150010003",
            dialed="+31260010001",
            direction="inbound",
            outcome="answered",
            answered_by=TRUNK,
            forwarded_to="+31150010001",
            hangup_cause=16,
        ),
    ],
    # Two mobiles in parallel; #63 the +31150010001 leg (…-0000006c) is Up first and accepts
    # (#81/#88 DialEnd ANSWER, #89 caller Up); the other leg (…-0000006a, Up #73) is cancelled
    # (#84 CANCEL). #125 caller Hangup Cause=16.
    "cacofonisk/mobile/acceptance_group_pickup.json": [
        call(
            "f29ea68048f6-1530020288.1855",
            caller="+31150010003",
            dialed="+31260010001",
            direction="inbound",
            outcome="answered",
            answered_by=TRUNK,
            forwarded_to="+31150010001",
            hangup_cause=16,
        ),
    ],
    # ---------------------------------------------------------------- cacofonisk/originate
    # Click-to-dial "A calls B". #6 DialBegin (no Channel) -> Local/ID400377@…ctd;1 (first
    # channel, CallerIDNum <unknown>); its ;2 dials Local/201@… -> SIP/150010001-00000002 (A):
    # #38 A Up, #39 ANSWER — A going up is not the answer. #82 ;1 dials Local/202@… ->
    # SIP/150010002-00000003 (B): #101 B Up, #102 ANSWER => answered_by B. caller = A = 201,
    # dialed = B = 202, both short => internal. #136 first channel Hangup Cause=16.
    "cacofonisk/originate/ctd-account-account.json": [
        call(
            "c4061ca6474c-1531990397.86",
            caller="201",
            dialed="202",
            direction="internal",
            outcome="answered",
            answered_by="SIP/150010002",
            hangup_cause=16,
        ),
    ],
    # A = 201 (Local/201@… -> SIP/150010001-00000008, #38 Up); B = +31260010001: #82 ;1 ->
    # Local/+31260010001@osvpi_world_call_permittedplus -> world_out -> SIP/voipgrid-siproute-
    # docker-00000009, #103 Up, #104 ANSWER. Originate with external B => outbound; the first
    # leg of an Originate is never forwarded and B's Local/+3126… is the dialed number.
    # (The first channel's CallerIDNum ends as +31150010001, the CLI shown to B; caller is A.)
    "cacofonisk/originate/ctd-account-world.json": [
        call(
            "c4061ca6474c-1531990515.302",
            caller="201",
            dialed="+31260010001",
            direction="outbound",
            outcome="answered",
            answered_by=TRUNK,
            hangup_cause=16,
        ),
    ],
    # A = 2401 (Local/2401@… -> SIP/150010063-0015f5f1, Up #35 without Ringing); B =
    # +31260010001 via SIP/voipgrid-siproute-ams-0015f5f3: #95 Up without any Ringing, #96
    # ANSWER => answered (ring would be 0 if timed). #135 first channel Hangup Cause=16.
    "cacofonisk/originate/ctd-account-world-no-ringing.json": [
        call(
            "ua5-ams-1552575068.23242646",
            caller="2401",
            dialed="+31260010001",
            direction="outbound",
            outcome="answered",
            answered_by="SIP/voipgrid-siproute-ams",
            hangup_cause=16,
        ),
    ],
    # A = 201 answers (#38 Up); B = +31260010001 says BUSY: #101 DialEnd BUSY, trunk leg
    # Hangup Cause=17, then BUSY up the chain (#104, #107). #109 first channel Hangup Cause=17.
    "cacofonisk/originate/ctd-account-world-deny-b.json": [
        call(
            "c4061ca6474c-1531990698.589",
            caller="201",
            dialed="+31260010001",
            direction="outbound",
            outcome="busy",
            hangup_cause=17,
        ),
    ],
    # A = 201 refuses: #38 DialEnd BUSY for SIP/150010001-00000010 (Hangup Cause=17), BUSY up
    # the chain (#41, #44, #47); B is never dialed. #48 first channel Hangup Cause=17.
    # JUDGEMENT: nothing was dialed after A, so the events look like a spot check that failed:
    # "dialed" is the number the originate reached through its Local chain (Local/201@… =>
    # "201"), and "caller" is not checked: the originate set no CallerID (the first channel
    # stays <unknown>) and B's number never appears, so "A calls B" cannot be told apart.
    "cacofonisk/originate/ctd-account-world-deny-a.json": [
        call(
            "c4061ca6474c-1531990682.554",
            dialed="201",
            direction="internal",
            outcome="busy",
            hangup_cause=17,
        ),
    ],
    # Call-me-now world->world: A = +31260010001 (first Local/+31260010001@… leg, trunk
    # …-0000002b Up #40); #75 first channel NewCallerid +31260010001; #85 ;1 dials
    # Local/+31150010001@… -> SIP/voipgrid-siproute-docker-0000002e (B), #106 Up, #107 ANSWER.
    # Originate with external B => outbound. #141 first channel Hangup Cause=16.
    "cacofonisk/originate/cmn-world-world.json": [
        call(
            "c4061ca6474c-1531991959.1348",
            caller="+31260010001",
            dialed="+31150010001",
            direction="outbound",
            outcome="answered",
            answered_by=TRUNK,
            hangup_cause=16,
        ),
    ],
    # A = +31260010001 answers (#40 trunk leg …-00000031 Up, #41/#46/#51/#55 ANSWER up to the
    # originate) but does not accept, so B is never dialed; #75 first channel Hangup Cause=16.
    # JUDGEMENT: per DESIGN an Originate that dials nobody further "is answered by the
    # originated endpoint" => answered by the trunk leg; dialed is the number reached through
    # the Local chain (+31260010001) => outbound. caller not checked (see deny-a).
    "cacofonisk/originate/cmn-world-world-unaccepted.json": [
        call(
            "c4061ca6474c-1531991990.1529",
            dialed="+31260010001",
            direction="outbound",
            outcome="answered",
            answered_by=TRUNK,
            hangup_cause=16,
        ),
    ],
    # Click-to-dial 201 -> 202 (B = SIP/150010002-0000001e answers #101), then B consults 203:
    # consult call .962 (#132 Newchannel SIP/150010002-0000001f, CallerIDNum 150010002 -> 202,
    # Exten 203; #153 SIP/150010003-00000020 Up, #154 ANSWER). #176 AttendedTransfer:
    # Transferee = the originate's Local;1 (.868), TransferTarget SIP/150010003-00000020 (203),
    # which moves to .868 (#175 NewConnectedLine with Linkedid .868).
    # Consult call ends first (#182 its first channel Hangup Cause=16), then .868 (#193).
    "cacofonisk/originate/ctd-account-account-xfer-attn-abbcac.json": [
        call(
            "c4061ca6474c-1531990893.962",
            caller="202",
            dialed="203",
            direction="internal",
            outcome="answered",
            answered_by="SIP/150010003",
            transferred_to=None,
            hangup_cause=16,
        ),
        call(
            "c4061ca6474c-1531990887.868",
            caller="201",
            dialed="202",
            direction="internal",
            outcome="answered",
            answered_by="SIP/150010002",
            transferred_to="203",
            hangup_cause=16,
        ),
    ],
    # Click-to-dial 201 -> +31260010001 (trunk leg SIP/voipgrid-siproute-docker-00000026 Up
    # #103); A consults 203 from SIP/150010001-00000029 (.1286; #156 SIP/150010003-0000002a Up);
    # #180 AttendedTransfer Transferee = originate's Local;2 (.1164), TransferTarget 203
    # (moves to .1164, #178). Consult ends #185 (Hangup Cause=16), .1164 ends #197.
    # (The first channel's CallerIDNum becomes 203 after the transfer; caller is still A.)
    "cacofonisk/originate/ctd-account-world-xfer-attn-abacbc.json": [
        call(
            "c4061ca6474c-1531991613.1286",
            caller="201",
            dialed="203",
            direction="internal",
            outcome="answered",
            answered_by="SIP/150010003",
            transferred_to=None,
            hangup_cause=16,
        ),
        call(
            "c4061ca6474c-1531991604.1164",
            caller="201",
            dialed="+31260010001",
            direction="outbound",
            outcome="answered",
            answered_by=TRUNK,
            transferred_to="203",
            hangup_cause=16,
        ),
    ],
    # -------------------------------------------------------------------- cacofonisk/queue
    # Queue: #5 the caller's channel goes Up (the PBX answers it: queue music — not an
    # answer); Local/ID730152 -> SIP/150010003-00000027 says BUSY (#35); Local/ID730151 ->
    # SIP/150010002-00000026 rings (#41), Up #44, ANSWER #45/#47. #66 caller Hangup Cause=16.
    # Note #40: a NewConnectedLine for Local/ID730152…;1 arrives after its Hangup (#39); it
    # must not revive the channel (the call still ends at #66).
    "cacofonisk/queue/queue_simple.json": [
        call(
            "195176c06ab8-1529939196.518",
            caller="+31150010001",
            dialed="+31150010004",
            direction="inbound",
            outcome="answered",
            answered_by="SIP/150010002",
            hangup_cause=16,
        ),
    ],
    # Queue ringall: SIP/150010003-0000001c and SIP/150010002-0000001d ring; #41 150010002 Up,
    # #42/#45 ANSWER; 150010003 CANCEL / Hangup 26. #69 caller Hangup Cause=16.
    "cacofonisk/queue/queue_group.json": [
        call(
            "195176c06ab8-1529938920.367",
            caller="+31150010001",
            dialed="+31150010004",
            direction="inbound",
            outcome="answered",
            answered_by="SIP/150010002",
            hangup_cause=16,
        ),
    ],
    # Queue: PBX answers the caller (#5 Up); SIP/150010002-0000001a rings (#23); the caller
    # leaves: #27/#28 DialEnd CANCEL, #31 QueueCallerAbandon, #34 caller Hangup Cause=0
    # => abandoned while waiting in the queue.
    "cacofonisk/queue/queue_a_cancel.json": [
        call(
            "40a7a1f2a669-1585318545.326",
            caller="+31150010001",
            dialed="+31150010004",
            direction="inbound",
            outcome="abandoned",
            hangup_cause=0,
        ),
    ],
    # Queue answered by SIP/150010001-0000008e (#25 Up, #26/#29 ANSWER); #42 BlindTransfer
    # Extension=202 by 150010001; the dial after it (#58 SIP/voipgrid… -> Local/ID730151,
    # #66 SIP/150010002-0000008f Up) is the transfer, not a forward nor the answer.
    # #88 caller Hangup Cause=16.
    "cacofonisk/queue/queue_blind_xfer.json": [
        call(
            "f29ea68048f6-1530023464.2539",
            caller="+31260010001",
            dialed="+31150010001",
            direction="inbound",
            outcome="answered",
            answered_by="SIP/150010001",
            transferred_to="202",
            hangup_cause=16,
        ),
    ],
    # Queue answered by SIP/150010001-00000088 (#25 Up); 201 consults 202 from
    # SIP/150010001-00000089 (.2474, Exten 202, NewCallerid 201; #63 SIP/150010002-0000008a
    # Up); #84 the target moves to .2433, #85 AttendedTransfer TransferTarget 202.
    # Consult call ends #92 (Hangup Cause=16), the queue call #97 (Cause=16).
    "cacofonisk/queue/queue_attn_xfer.json": [
        call(
            "f29ea68048f6-1530022836.2474",
            caller="201",
            dialed="202",
            direction="internal",
            outcome="answered",
            answered_by="SIP/150010002",
            transferred_to=None,
            hangup_cause=16,
        ),
        call(
            "f29ea68048f6-1530022819.2433",
            caller="+31260010001",
            dialed="+31150010001",
            direction="inbound",
            outcome="answered",
            answered_by="SIP/150010001",
            transferred_to="202",
            hangup_cause=16,
        ),
    ],
    # ----------------------------------------------------------------- cacofonisk/var_set
    # Same shape as ab_success_twoclients, other order of ending. Call A (.1196):
    # SIP/260010001-00000026 CallerIDNum 260010001 -> NewCallerid +31260010001, Exten
    # 0150010001 (its UserEvent says Direction=outbound); #17 -> Local/+31150010001@world_out;
    # #59 trunk leg …-00000027 Up, #61/#65 ANSWER. Call B (.1206): trunk …-00000028
    # +31260010001 -> +31150010001, #48 SIP/150010001-00000029 Up.
    # CONVENTION-CONFLICT / JUDGEMENT for call A exactly as in ab_success_twoclients
    # (direction by the number rule = inbound; not forwarded).
    # End order: B's last channel (#90 trunk …-28) before A's (#95 SIP/260010001-26).
    "cacofonisk/var_set/user_events.json": [
        call(
            "b6093874285e-1530278036.1206",
            caller="+31260010001",
            dialed="+31150010001",
            direction="inbound",
            outcome="answered",
            answered_by="SIP/150010001",
            hangup_cause=16,
        ),
        call(
            "b6093874285e-1530278036.1196",
            caller="+31260010001",
            dialed="0150010001",
            direction="inbound",
            outcome="answered",
            answered_by=TRUNK,
            forwarded_to=None,
            hangup_cause=16,
        ),
    ],
    # ------------------------------------------------------------- cacofonisk/xfer_attended
    # A (201) calls B (202): #23 SIP/150010002-00000029 Up. A consults C: .617 (#42
    # SIP/150010001-0000002a, Exten 203; #63 SIP/150010003-0000002b Up). #85 AttendedTransfer
    # by A; C moves to .590 (#91). Consult ends #88 (A's second line Hangup Cause=16);
    # .590 ends #94 (C Hangup), its first channel hung up at #89 Cause=16.
    "cacofonisk/xfer_attended/xfer_abacbc.json": [
        call(
            "195176c06ab8-1529941225.617",
            caller="201",
            dialed="203",
            direction="internal",
            outcome="answered",
            answered_by="SIP/150010003",
            transferred_to=None,
            hangup_cause=16,
        ),
        call(
            "195176c06ab8-1529941216.590",
            caller="201",
            dialed="202",
            direction="internal",
            outcome="answered",
            answered_by="SIP/150010002",
            transferred_to="203",
            hangup_cause=16,
        ),
    ],
    # A (201) calls B (202, #23 Up); B consults C from SIP/150010002-0000002e (.690, Exten 203,
    # NewCallerid 202; #63 SIP/150010003-0000002f Up); #85 AttendedTransfer by B; C moves to
    # .663. Consult ends #88 (Cause=16), .663 ends #94 (A Hangup Cause=16).
    "cacofonisk/xfer_attended/xfer_abbcac.json": [
        call(
            "195176c06ab8-1529941342.690",
            caller="202",
            dialed="203",
            direction="internal",
            outcome="answered",
            answered_by="SIP/150010003",
            transferred_to=None,
            hangup_cause=16,
        ),
        call(
            "195176c06ab8-1529941338.663",
            caller="201",
            dialed="202",
            direction="internal",
            outcome="answered",
            answered_by="SIP/150010002",
            transferred_to="203",
            hangup_cause=16,
        ),
    ],
    # Anonymous caller: trunk …-00000027 Newchannel CallerIDNum +31260010001, then #4
    # NewCallerid +31260xxxxxx (Presentation Prohibited) before the Dial.
    # JUDGEMENT: caller is the PBX-set "+31260xxxxxx" (same rule as "201" above; it is what
    # the channel carries at DialBegin and Hangup) — note it hides the real number.
    # #23 SIP/150010001-00000028 Up (B = 201); B consults 203 (.708; #66 SIP/150010003-0000002a
    # Up); #90 AttendedTransfer TransferTarget 203, which moves to .664 (#88).
    # Consult ends #94, .664 ends #99 (caller Hangup Cause=16).
    "cacofonisk/xfer_attended/xfer_abbcac_anon.json": [
        call(
            "07b796be1962-1530001225.708",
            caller="201",
            dialed="203",
            direction="internal",
            outcome="answered",
            answered_by="SIP/150010003",
            transferred_to=None,
            hangup_cause=16,
        ),
        call(
            "07b796be1962-1530001217.664",
            caller="+31260xxxxxx",
            dialed="+31150010001",
            direction="inbound",
            outcome="answered",
            answered_by="SIP/150010001",
            transferred_to="203",
            hangup_cause=16,
        ),
    ],
    # Two calls INTO 201, joined by 201: .1772 = 202 (SIP/150010002-0000003c) -> 201, answered
    # by SIP/150010001-0000003d (#22); .1800 = 203 (SIP/150010003-0000003e, NewCallerid 203)
    # -> 201, answered by SIP/150010001-0000003f (#62). #85 AttendedTransfer: OrigTransferer
    # …-3f (in .1800, with Transferee = 203's channel), SecondTransferer …-3d (in .1772, with
    # TransferTarget = 202's channel); 203's channel — the FIRST channel of .1800 — moves into
    # .1772 (#83 BridgeEnter Linkedid .1772) and hangs up there (#94).
    # JUDGEMENT: by Asterisk's roles the call being transferred is .1800 (the transferee's);
    # its transferred_to is the party the other ("consult") leg reached: 202. .1772 is the
    # consult side => transferred_to null.
    # JUDGEMENT: .1800 loses its caller channel before that channel hangs up, so its
    # hangup_cause may be the moved channel's Cause (16) or unknown (null).
    # End order: .1800's last own channel (…-3f) hangs up at #89, .1772 at #95.
    "cacofonisk/xfer_attended/xfer_abcbac.json": [
        call(
            "c4061ca6474c-1531994180.1800",
            caller="203",
            dialed="201",
            direction="internal",
            outcome="answered",
            answered_by="SIP/150010001",
            transferred_to="202",
            hangup_cause=OneOf(16, None),
        ),
        call(
            "c4061ca6474c-1531994176.1772",
            caller="202",
            dialed="201",
            direction="internal",
            outcome="answered",
            answered_by="SIP/150010001",
            transferred_to=None,
            hangup_cause=16,
        ),
    ],
    # ---------------------------------------------------------------- cacofonisk/xfer_blind
    # A (201) calls B (202, #23 Up); #42 BlindTransfer by A (Transferer 201) Extension=203;
    # #45 A Hangup Cause=16; B is then dialed to 203 (#56 DialBegin SIP/150010002-00000007 ->
    # Local/ID730152, #64 SIP/150010003-00000008 Up) — part of the transfer.
    "cacofonisk/xfer_blind/xfer_blind_abacbc.json": [
        call(
            "07b796be1962-1529998985.130",
            caller="201",
            dialed="202",
            direction="internal",
            outcome="answered",
            answered_by="SIP/150010002",
            transferred_to="203",
            hangup_cause=16,
        ),
    ],
    # A (201) calls B (202, #23 Up); #42 BlindTransfer by B Extension=203; A is dialed to 203
    # (#58, #66 SIP/150010003-00000005 Up); #88 A Hangup Cause=16.
    "cacofonisk/xfer_blind/xfer_blind_abbcac.json": [
        call(
            "07b796be1962-1529998959.65",
            caller="201",
            dialed="202",
            direction="internal",
            outcome="answered",
            answered_by="SIP/150010002",
            transferred_to="203",
            hangup_cause=16,
        ),
    ],
    # A transfers B to 203 (#42 BlindTransfer Extension=203); 203 refuses (#62 BUSY, Cause 19);
    # the call was still answered by B (#23). A's channel hung up at #46 with Cause=16.
    "cacofonisk/xfer_blind/xfer_blind_a_no_answer.json": [
        call(
            "07b796be1962-1530000279.351",
            caller="201",
            dialed="202",
            direction="internal",
            outcome="answered",
            answered_by="SIP/150010002",
            transferred_to="203",
            hangup_cause=16,
        ),
    ],
    # B transfers A to 203 (#42 Extension=203); 203 does not answer (#64 BUSY, #67 NOANSWER);
    # answered by B (#23); #69 A Hangup Cause=19.
    "cacofonisk/xfer_blind/xfer_blind_b_no_answer.json": [
        call(
            "07b796be1962-1530000295.403",
            caller="201",
            dialed="202",
            direction="internal",
            outcome="answered",
            answered_by="SIP/150010002",
            transferred_to="203",
            hangup_cause=19,
        ),
    ],
    # B transfers A to 203 (#42 Extension=203); 203 rings (#64) and rejects (#66 BUSY, Hangup
    # Cause=21); answered by B (#23); #71 A Hangup Cause=19.
    "cacofonisk/xfer_blind/xfer_blind_reject.json": [
        call(
            "07b796be1962-1530000704.455",
            caller="201",
            dialed="202",
            direction="internal",
            outcome="answered",
            answered_by="SIP/150010002",
            transferred_to="203",
            hangup_cause=19,
        ),
    ],
    # Inbound answered by SIP/150010001-00000018 (#22); #44 BlindTransfer Extension=401 (a
    # group): #84 SIP/150010003-0000001a Up — reached by the transfer. #111 Hangup Cause=16.
    "cacofonisk/xfer_blind/xfer_blind_group.json": [
        call(
            "f29ea68048f6-1530014341.278",
            caller="+31260010001",
            dialed="+31150010001",
            direction="inbound",
            outcome="answered",
            answered_by="SIP/150010001",
            transferred_to="401",
            hangup_cause=16,
        ),
    ],
    # Inbound answered by SIP/150010001-00000024 (#22); #44 BlindTransfer Extension=401; the
    # group's phone refuses (#65 BUSY, #68 NOANSWER); #70 caller Hangup Cause=19.
    "cacofonisk/xfer_blind/xfer_blind_group_no_answer.json": [
        call(
            "f29ea68048f6-1530015089.506",
            caller="+31260010001",
            dialed="+31150010001",
            direction="inbound",
            outcome="answered",
            answered_by="SIP/150010001",
            transferred_to="401",
            hangup_cause=19,
        ),
    ],
    # --------------------------------------------------------------- cacofonisk/xfer_blonde
    # Blonde transfers: the transferer completes the transfer while the consult call still
    # RINGS (AttendedTransfer DestType=App DestApp=Dial); the ringing Dial is handed to the
    # transferee (a new DialBegin from the transferee's channel to the consult's Local;1),
    # the transferer's consult dial ends NOANSWER and it hangs up; then the target answers.
    # JUDGEMENT (all blonde consult calls): the target's answer comes after the transfer, so
    # it belongs to the transferred call (transferred_to), not to the consult call; the
    # consult call rang and its own DialEnd says NOANSWER => no_answer, answered_by null.
    # The transferred call gets transferred_to = the number the consult call dialed
    # (SecondTransfererExten), i.e. "the number of the party the consult call reached".
    #
    # A (201) calls B (202, #23 Up); A consults 203 (.2654, #61 SIP/150010003-00000093
    # Ringing); #63 AttendedTransfer (blonde, Transferee = B); #66 A's consult DialEnd
    # NOANSWER; #67 DialBegin SIP/150010002-00000091 -> Local/ID730152;1; #72/#73 A's two
    # channels Hangup Cause=16; #74 203 Up, #80 ANSWER to B. Consult's last own channel
    # (Local …;2) hangs up at #92, .2627 at #97.
    "cacofonisk/xfer_blonde/xfer_blonde_abacbc.json": [
        call(
            "f29ea68048f6-1530023931.2654",
            caller="201",
            dialed="203",
            direction="internal",
            outcome="no_answer",
            transferred_to=None,
            hangup_cause=16,
        ),
        call(
            "f29ea68048f6-1530023922.2627",
            caller="201",
            dialed="202",
            direction="internal",
            outcome="answered",
            answered_by="SIP/150010002",
            transferred_to="203",
            hangup_cause=16,
        ),
    ],
    # Inbound to 201 (SIP/150010001-00000097 Up #22); B consults 202 from …-00000098 (.2753,
    # #63 SIP/150010002-00000099 Ringing); #65 blonde AttendedTransfer (Transferee = caller's
    # trunk channel); #70 consult DialEnd NOANSWER, #71 DialBegin trunk -> Local/ID730151;1
    # (transfer, not a forward); #77 consult Hangup Cause=16; #78 202 Up. Consult ends #96,
    # .2709 ends #102 (caller Hangup #100 Cause=16).
    "cacofonisk/xfer_blonde/xfer_blonde_abbcac.json": [
        call(
            "f29ea68048f6-1530024939.2753",
            caller="201",
            dialed="202",
            direction="internal",
            outcome="no_answer",
            transferred_to=None,
            hangup_cause=16,
        ),
        call(
            "f29ea68048f6-1530024929.2709",
            caller="+31260010001",
            dialed="+31150010001",
            direction="inbound",
            outcome="answered",
            answered_by="SIP/150010001",
            transferred_to="202",
            hangup_cause=16,
        ),
    ],
    # Inbound answered by SIP/150010001-000000a2 (#22); consult 202 (.2945, #63 Ringing);
    # #65 blonde transfer; #70 consult NOANSWER; #71 trunk dials Local/ID730151;1; #77 consult
    # Hangup Cause=16; #78 202 refuses (DialEnd BUSY, Hangup 17), #82 BUSY to the caller,
    # #84 caller Hangup Cause=17. The call was answered before the transfer => answered.
    # Consult ends #83, the inbound call #84.
    "cacofonisk/xfer_blonde/xfer_blonde_reject.json": [
        call(
            "f29ea68048f6-1530025493.2945",
            caller="201",
            dialed="202",
            direction="internal",
            outcome="no_answer",
            transferred_to=None,
            hangup_cause=16,
        ),
        call(
            "f29ea68048f6-1530025486.2901",
            caller="+31260010001",
            dialed="+31150010001",
            direction="inbound",
            outcome="answered",
            answered_by="SIP/150010001",
            transferred_to="202",
            hangup_cause=17,
        ),
    ],
    # Inbound answered by SIP/150010001-000000a8 (#22); consult to group 401 (.3037, two
    # phones ringing #78/#80); #82 blonde transfer; #87/#89 consult NOANSWER; #88/#90 trunk
    # takes both dials; #98 consult Hangup Cause=16; #99 SIP/150010002-000000aa Up.
    # Consult ends #123, .2993 ends #128 (Cause=16).
    "cacofonisk/xfer_blonde/xfer_blonde_group_b.json": [
        call(
            "f29ea68048f6-1530026028.3037",
            caller="201",
            dialed="401",
            direction="internal",
            outcome="no_answer",
            transferred_to=None,
            hangup_cause=16,
        ),
        call(
            "f29ea68048f6-1530026019.2993",
            caller="+31260010001",
            dialed="+31150010001",
            direction="inbound",
            outcome="answered",
            answered_by="SIP/150010001",
            transferred_to="401",
            hangup_cause=16,
        ),
    ],
    # A = SIP/150010001-000000ac calls out: Newchannel CallerIDNum 150010001 Exten 0260010001,
    # #5 NewCallerid +31150010001; #16 -> Local/+31260010001@world_out; #26 trunk leg
    # …-000000ad Up, #27/#31 ANSWER. A consults group 401 (.3156) and blonde-transfers the
    # trunk leg to it (#84, Transferee = trunk channel): #89/#91 trunk takes the dials, #99
    # SIP/150010002-000000b1 Up. #96 A Hangup Cause=16.
    # CONVENTION-CONFLICT / JUDGEMENT for .3102 as in ab_success_twoclients: outbound from a
    # phone but caller +31150010001 => "inbound" by the number rule; Local/+31260010001 is
    # the dialed 0260010001 in E.164 form => not forwarded.
    # Consult ends #123, .3102 ends #128.
    "cacofonisk/xfer_blonde/xfer_blonde_group_a.json": [
        call(
            "f29ea68048f6-1530026216.3156",
            caller="201",
            dialed="401",
            direction="internal",
            outcome="no_answer",
            transferred_to=None,
            hangup_cause=16,
        ),
        call(
            "f29ea68048f6-1530026204.3102",
            caller="+31150010001",
            dialed="0260010001",
            direction="inbound",
            outcome="answered",
            answered_by=TRUNK,
            forwarded_to=None,
            transferred_to="401",
            hangup_cause=16,
        ),
    ],
    # ------------------------------------------------------------------ cacofonisk/xfer_misc
    # Phone-side 302: #29 DialEnd Local/ID730150;2 -> SIP/150010001-00000017 status CANCEL
    # Forward=202 (no Ringing before it); #30 DialBegin -> Local/202@osvpi_account;
    # #52 SIP/150010002-00000018 Up, #53 ANSWER => forwarded_to 202, answered_by the endpoint
    # that answered. #104 caller Hangup Cause=16.
    "cacofonisk/xfer_misc/call_forwarding.json": [
        call(
            "b6093874285e-1530191379.305",
            caller="+31260010001",
            dialed="+31150010001",
            direction="inbound",
            outcome="answered",
            answered_by="SIP/150010002",
            forwarded_to="202",
            hangup_cause=16,
        ),
    ],
    # 302 to a group: #29 DialEnd CANCEL Forward=401; #30 -> Local/401@osvpi_account; two
    # phones ring; #69 SIP/150010003-00000024 Up, #70 ANSWER. #126 Hangup Cause=16.
    "cacofonisk/xfer_misc/call_forwarding_to_group.json": [
        call(
            "b6093874285e-1530191936.541",
            caller="+31260010001",
            dialed="+31150010001",
            direction="inbound",
            outcome="answered",
            answered_by="SIP/150010003",
            forwarded_to="401",
            hangup_cause=16,
        ),
    ],
    # Pickup: A (201) calls B (202, #20 Ringing). C's phone picks up: #22 Newchannel
    # SIP/150010003-00000021 (Uniqueid = Linkedid .383, Exten 201), #24 Up; #25 DialEnd CANCEL
    # for B (Hangup Cause=0); #26 DialBegin Local/ID730151;2 -> SIP/150010003-00000021, #32
    # ANSWER; #45 C's channel moves into .373 and hangs up there (#53).
    # JUDGEMENT: answered_by the picking-up endpoint SIP/150010003 (not a forward: the call
    # did not leave for another number; not a transfer). .383 produces no call object: its
    # only channel never dialed anyone and moved into A's call (a pickup, not a call).
    # #56 A Hangup Cause=16.
    "cacofonisk/xfer_misc/sip_pickup.json": [
        call(
            "59b750c14f20-1538124863.373",
            caller="201",
            dialed="202",
            direction="internal",
            outcome="answered",
            answered_by="SIP/150010003",
            forwarded_to=None,
            transferred_to=None,
            hangup_cause=16,
        ),
    ],
    # *8 pickup: #22 SIP/150010003-00000024 dials *8 (.424), #25 Up; #26 DialEnd CANCEL for B;
    # #27 DialBegin Local …;2 -> SIP/150010003-00000024, #33 ANSWER; B Hangup 26 (#37);
    # #46 C moves into .414. JUDGEMENT as sip_pickup: one call, answered by SIP/150010003.
    # #57 A Hangup Cause=16.
    "cacofonisk/xfer_misc/star_pickup.json": [
        call(
            "59b750c14f20-1538125952.414",
            caller="201",
            dialed="202",
            direction="internal",
            outcome="answered",
            answered_by="SIP/150010003",
            forwarded_to=None,
            transferred_to=None,
            hangup_cause=16,
        ),
    ],
}


def _is_timed(fixture: str) -> bool:
    return not fixture.endswith(".json")


def _view(call_obj: dict[str, Any], keys: list[str]) -> dict[str, Any]:
    return {key: call_obj.get(key, "<missing>") for key in keys}


def test_every_fixture_has_a_case() -> None:
    on_disk = sorted(
        str(path.relative_to(FIXTURES))
        for path in FIXTURES.rglob("*")
        if path.suffix in {".json", ".jsonl", ".ami"}
    )
    assert on_disk == sorted(CASES)


@pytest.mark.parametrize("fixture", sorted(CASES))
def test_fixture_calls(fixture: str) -> None:
    expected = CASES[fixture]
    calls = list(replay_paths([FIXTURES / fixture]))

    # Which calls, in which order (the order the calls ended).
    assert [c.get("linkedid") for c in calls] == [e["linkedid"] for e in expected]

    # The hand-checked fields, call by call.
    got = [_view(c, list(e)) for c, e in zip(calls, expected, strict=True)]
    assert got == expected

    # Invariants that DESIGN.md states for every call object.
    for c in calls:
        assert c["type"] == "call"
        assert c["closed_by"] == "hangup", c["linkedid"]
        assert c["outcome"] in OUTCOMES
        assert (c["answered_by"] is not None) == (c["outcome"] == "answered"), c["linkedid"]
        if c["outcome"] != "answered":
            assert c["talk_seconds"] is None, c["linkedid"]
        assert c["line"] == c["dialed"], "no config: line is the dialed number"
        if _is_timed(fixture):
            assert isinstance(c["ring_seconds"], int | float), c["linkedid"]
            assert math.isfinite(c["ring_seconds"]) and c["ring_seconds"] >= 0
            assert c["started_at"] is not None and c["ended_at"] is not None
            assert (c["answered_at"] is not None) == (c["outcome"] == "answered")
        else:
            # No Timestamp and no _recv: event time is unknown (null).
            assert c["started_at"] is None and c["ended_at"] is None, c["linkedid"]
            assert c["answered_at"] is None, c["linkedid"]
