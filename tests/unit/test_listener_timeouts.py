"""The listener's liveness timeouts as configuration: ``ami.pbx[].*_seconds``."""

from __future__ import annotations

import re
import secrets
from pathlib import Path

import pytest

from callcenter.config import ConfigError, load_config

KEYS = ("ping_interval_seconds", "ping_timeout_seconds", "login_timeout_seconds")


@pytest.fixture(autouse=True)
def _in_empty_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no ./callcenter.toml of the developer's leaks in


def test_defaults_notice_a_silent_pbx_within_twenty_seconds() -> None:
    (pbx,) = load_config(env={}).ami.pbx
    assert (pbx.ping_interval_seconds, pbx.ping_timeout_seconds) == (10.0, 10.0)
    assert pbx.login_timeout_seconds == 10.0


def test_a_file_and_the_environment_set_them_per_pbx(tmp_path: Path) -> None:
    path = tmp_path / "callcenter.toml"
    path.write_text(
        '[[ami.pbx]]\nname = "a"\nping_interval_seconds = 2.5\nping_timeout_seconds = 0.5\n'
        '[[ami.pbx]]\nname = "b"\n',
        encoding="utf-8",
    )
    config = load_config(path, env={"CALLCENTER_AMI__PBX__1__LOGIN_TIMEOUT_SECONDS": "3"})
    a, b = config.ami.pbx
    assert (a.ping_interval_seconds, a.ping_timeout_seconds, a.login_timeout_seconds) == (
        2.5, 0.5, 10.0,
    )  # fmt: skip
    assert b.login_timeout_seconds == 3.0 and b.ping_timeout_seconds == 10.0


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("value", [0, -1])
def test_a_timeout_must_be_positive(key: str, value: float) -> None:
    with pytest.raises(ConfigError, match=rf"ami\.pbx\[0\]\.{key}: must be greater than 0"):
        load_config(env={}, overrides={"ami": {"pbx": [{"name": "lab", key: value}]}})


def test_a_wrong_type_names_the_key() -> None:
    with pytest.raises(ConfigError, match=re.escape("ami.pbx[0].ping_timeout_seconds")):
        load_config(env={"CALLCENTER_AMI__PBX__0__PING_TIMEOUT_SECONDS": "soon"})


def test_the_listener_gets_its_pbx_timeouts_from_the_config(tmp_path: Path) -> None:
    from callcenter.listen import build_pipeline

    config = load_config(
        env={"CALLCENTER_AMI__SECRET": secrets.token_urlsafe(12)},
        overrides={
            "instance_path": str(tmp_path / "instance"),
            "database": {"url": f"sqlite:///{tmp_path / 'cc.db'}"},
            "ami": {"pbx": [{"name": "a", "ping_interval_seconds": 2.5,
                             "ping_timeout_seconds": 0.5, "login_timeout_seconds": 3}]},
        },
    )  # fmt: skip
    pipeline = build_pipeline(config, None)
    try:
        (listener,) = pipeline.listeners
        assert (listener.ping_interval, listener.ping_timeout, listener.login_timeout) == (
            2.5, 0.5, 3.0,
        )  # fmt: skip
    finally:
        pipeline.close()
