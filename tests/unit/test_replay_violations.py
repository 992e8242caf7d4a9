"""``callcenter replay --violations`` with device-status violations (phone_offline,
forward_set, dnd_set): interleaved with the calls in the order they become known,
``linkedid`` null, each printed once, stdout JSON Lines only.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from pytest import approx

from callcenter.config import Config, load_config
from callcenter.replay import replay_paths
from tests.unit.helpers import FIXTURES, all_fixtures

SIP = FIXTURES / "asterisk20"
PJSIP = FIXTURES / "asterisk20-pjsip"
VIOLATION_KEYS = {"type", "kind", "linkedid", "line", "endpoint", "at", "detail"}


def config(tmp_path: Path, grace: float | None = None, schedule: str = "24h") -> Path:
    grace_line = f"offline_grace_seconds = {grace}\n" if grace is not None else ""
    path = tmp_path / "callcenter.toml"
    path.write_text(
        "[[lines]]\n"
        'number = "12345"\n'
        'unit = "县政府办"\n'
        'desk_phones = ["SIP/duty1", "PJSIP/2001"]\n'
        f'schedule = "{schedule}"\n' + grace_line,
        "utf-8",
    )
    return path


def loaded(path: Path) -> Config:
    return load_config(path, env={})


def replay(*paths: Path, cfg: Config | None = None) -> list[dict[str, Any]]:
    return list(replay_paths(paths, config=cfg, violations=True))


def shape(objects: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    return [(o["type"], o.get("kind") or o.get("outcome")) for o in objects]


def run_cli(*args: str | Path) -> tuple[list[dict[str, Any]], str, int]:
    proc = subprocess.run(
        [sys.executable, "-m", "callcenter.cli", "replay", *map(str, args)],
        capture_output=True,
        timeout=120,
        check=False,
    )
    lines = proc.stdout.decode("utf-8").splitlines()
    return (
        [json.loads(line) for line in lines],
        proc.stderr.decode("utf-8", "replace"),
        proc.returncode,
    )


# ------------------------------------------------------------------------ phone_offline


def test_phone_offline_ten_seconds_is_within_the_default_grace() -> None:
    # PeerStatus SIP/duty1 Unreachable, a call to 12345 fails at once (CHANUNAVAIL: outcome
    # failed, no call violation), Reachable 10 s later: no phone_offline with the 5 min grace,
    # with or without config.
    assert shape(replay(SIP / "phone_offline.jsonl")) == [("call", "failed")]


def test_phone_offline_with_a_five_second_grace(tmp_path: Path) -> None:
    objects = replay(SIP / "phone_offline.jsonl", cfg=loaded(config(tmp_path, grace=5)))
    # the violation is known when the phone comes back, after the failed call
    assert shape(objects) == [("call", "failed"), ("violation", "phone_offline")]
    found = objects[1]
    assert set(found) == VIOLATION_KEYS
    assert found == {
        "type": "violation", "kind": "phone_offline", "linkedid": None, "line": "12345",
        "endpoint": "SIP/duty1", "at": "2026-11-23T19:22:06.919+08:00",
        "detail": "desk phone offline for 10.0 s (grace 5.0 s): PeerStatus Unreachable",
    }  # fmt: skip


def test_pj_contact_unreachable(tmp_path: Path) -> None:
    # 2001 is offline 3.5 s (PeerStatus Unreachable 19:44:55.797 to DeviceStateChange
    # NOT_INUSE 19:44:59.297): nothing with the default grace nor with 5 s; one with 2 s.
    path = PJSIP / "pj_contact_unreachable.jsonl"
    assert shape(replay(path)) == [("call", "failed")]
    assert shape(replay(path, cfg=loaded(config(tmp_path, grace=5)))) == [("call", "failed")]
    objects = replay(path, cfg=loaded(config(tmp_path, grace=2)))
    assert shape(objects) == [("call", "failed"), ("violation", "phone_offline")]
    assert objects[1]["endpoint"] == "PJSIP/2001"
    assert objects[1]["at"] == "2026-11-23T19:44:55.796+08:00"
    assert objects[1]["detail"].startswith("desk phone offline for 3.5 s (grace 2.0 s)")


def test_six_minutes_unreachable_in_a_transcript(tmp_path: Path) -> None:
    # phone_offline.jsonl with the Reachable PeerStatus recorded 6 min after the Unreachable
    # one: one violation of about 6 min with the default grace and no config.
    events = [json.loads(line) for line in (SIP / "phone_offline.jsonl").read_text().splitlines()]
    for event in events:
        if event.get("PeerStatus") == "Reachable":
            event["Timestamp"] = f"{1795432926.919940 + 360:.6f}"
            event["_recv"] = 1795432926.919940 + 360
    path = tmp_path / "six_minutes.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in events), "utf-8")
    objects = replay(path)
    assert shape(objects) == [("call", "failed"), ("violation", "phone_offline")]
    assert objects[1]["endpoint"] == "SIP/duty1"
    assert objects[1]["line"] is None  # no config: no line to name
    assert objects[1]["detail"].startswith("desk phone offline for 6 min 0 s (grace 5 min 0 s)")


def test_still_offline_at_the_end_of_input_is_printed_last(tmp_path: Path) -> None:
    # The phone never comes back; the transcript goes on 10 min (a later SuccessfulAuth).
    events = [json.loads(line) for line in (SIP / "phone_offline.jsonl").read_text().splitlines()]
    events = [e for e in events if e.get("PeerStatus") != "Reachable"]
    events.append(
        {"Event": "SuccessfulAuth", "Privilege": "security,all", "Service": "AMI",
         "Timestamp": f"{1795432926.919940 + 600:.6f}", "_kind": "event"}
    )  # fmt: skip
    path = tmp_path / "never_back.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in events), "utf-8")
    objects = replay(path)
    assert shape(objects) == [("call", "failed"), ("violation", "phone_offline")]
    assert "10 min 0 s so far, still offline" in objects[1]["detail"]


def test_trunk_device_state_is_never_phone_offline(tmp_path: Path) -> None:
    # PJSIP/pstn reads UNAVAILABLE after every call (no AOR) and stays so until the end of
    # input: no phone_offline, without config (never a PeerStatus/ContactStatus) and with it
    # (not a desk phone), even with a 0 s grace.
    paths = (PJSIP / "pj_answered.jsonl", PJSIP / "pj_two_missed.jsonl")
    for cfg in (None, loaded(config(tmp_path, grace=0))):
        objects = replay(*paths, cfg=cfg)
        assert not [o for o in objects if o.get("kind") == "phone_offline"]


# ------------------------------------------------------------------------- flags


def test_dnd_lamp_gives_dnd_set_once(tmp_path: Path) -> None:
    # Custom:DND2001 BUSY, later NOT_INUSE: printed once, when switched on.
    path = PJSIP / "pj_dnd_and_forward_flags.jsonl"
    objects = replay(path, cfg=loaded(config(tmp_path)))
    assert objects == [
        {"type": "violation", "kind": "dnd_set", "linkedid": None, "line": "12345",
         "endpoint": "PJSIP/2001", "at": "2026-11-23T19:45:05.508+08:00",
         "detail": "do-not-disturb switched on (Custom:DND2001)"},
    ]  # fmt: skip
    # without config the lamp names only the extension
    (bare,) = replay(path)
    assert (bare["kind"], bare["endpoint"], bare["line"]) == ("dnd_set", "2001", None)


def test_forward_polled_from_astdb_in_a_transcript(tmp_path: Path) -> None:
    # The fixture's DBPut CF/2001=13800138000 left no event; a poller's DBGet answer does:
    # DBGetResponse (main/db.c shape, no Timestamp, the recorder's _recv).
    lines = (PJSIP / "pj_dnd_and_forward_flags.jsonl").read_text("utf-8").splitlines()
    answer = {"Event": "DBGetResponse", "Family": "CF", "Key": "2001", "Val": "13800138000",
              "ActionID": "poll-cf-2001", "_kind": "event", "_recv": 1795434303.6}  # fmt: skip
    path = tmp_path / "cf_polled.jsonl"
    path.write_text("\n".join([*lines[:5], json.dumps(answer), *lines[5:]]), "utf-8")
    objects = replay(path, cfg=loaded(config(tmp_path)))
    assert shape(objects) == [("violation", "forward_set"), ("violation", "dnd_set")]
    assert objects[0]["detail"] == "call forwarding to 13800138000 switched on (AstDB CF/2001)"
    assert objects[0]["at"] == "2026-11-23T19:45:03.600+08:00"


def test_flag_outside_monitored_hours_waits_for_the_schedule(tmp_path: Path) -> None:
    # The lamp goes on at 19:45 Beijing time and off at 19:45:11; the line is monitored
    # 08:00-18:00 only: nothing.
    cfg = loaded(config(tmp_path, schedule="08:00-18:00"))
    assert replay(PJSIP / "pj_dnd_and_forward_flags.jsonl", cfg=cfg) == []


# --------------------------------------------------------------- the whole command


def test_every_fixture_through_the_command_stays_json_lines(tmp_path: Path) -> None:
    paths = all_fixtures()
    objects, stderr, code = run_cli("--violations", *paths)
    assert code == 0
    assert {o["type"] for o in objects} == {"call", "violation"}
    for obj in objects:
        if obj["type"] == "violation":
            assert set(obj) == VIOLATION_KEYS
    kinds = [o["kind"] for o in objects if o["type"] == "violation"]
    assert "dnd_set" in kinds
    assert "phone_offline" not in kinds  # every recorded outage is shorter than 5 min
    assert "replayed" in stderr
    # with the 5 s grace: SIP/duty1 (10 s) and PJSIP/2001 (8 s in the status query fixture)
    configured, _, code = run_cli("--violations", "--config", config(tmp_path, grace=5), *paths)
    assert code == 0
    offline = [o for o in configured if o.get("kind") == "phone_offline"]
    assert sorted(o["endpoint"] for o in offline) == ["PJSIP/2001", "SIP/duty1"]
    assert all(o["linkedid"] is None for o in offline)


def test_calls_are_unchanged_by_device_violations(tmp_path: Path) -> None:
    paths = all_fixtures()
    plain = list(replay_paths(paths))
    judged = [o for o in replay_paths(paths, violations=True) if o["type"] == "call"]
    assert judged == plain


def test_interleaved_in_time_order(tmp_path: Path) -> None:
    # phone_offline then pj_no_answer: the phone_offline violation (known at 19:22:16) comes
    # before the later PJSIP call and its unanswered violation.
    cfg = loaded(config(tmp_path, grace=5))
    objects = replay(SIP / "phone_offline.jsonl", PJSIP / "pj_no_answer.jsonl", cfg=cfg)
    assert shape(objects) == [
        ("call", "failed"),
        ("violation", "phone_offline"),
        ("call", "no_answer"),
        ("violation", "unanswered"),
    ]
    assert objects[1]["detail"].startswith("desk phone offline for 10.0 s")
    assert objects[3]["linkedid"] == objects[2]["linkedid"]
    assert approx(20.0, abs=0.1) == objects[2]["ring_seconds"]


# --------------------------------------------------------------------------- monitored hours


def test_calls_outside_the_monitored_hours_raise_nothing(tmp_path: Path) -> None:
    # pj_no_answer (19:42 Beijing) and pj_two_missed (19:45) ring unanswered on 12345: a
    # streak. The workers judge a line only in its monitored hours; so does the replay.
    paths = (PJSIP / "pj_no_answer.jsonl", PJSIP / "pj_two_missed.jsonl")
    around_the_clock = replay(*paths, cfg=loaded(config(tmp_path, schedule="24h")))
    office_hours = replay(*paths, cfg=loaded(config(tmp_path, schedule="08:00-18:00")))
    evenings = replay(*paths, cfg=loaded(config(tmp_path, schedule="Mon-Sun 18:00-08:30")))

    kinds = [o["kind"] for o in around_the_clock if o["type"] == "violation"]
    assert "unanswered" in kinds and "unmanned" in kinds
    assert [o for o in office_hours if o["type"] == "violation"] == []
    assert [o for o in office_hours if o["type"] == "call"] == [
        o for o in around_the_clock if o["type"] == "call"
    ], "the calls themselves are printed as before"
    assert evenings == around_the_clock, "a span across midnight covers 19:42"
