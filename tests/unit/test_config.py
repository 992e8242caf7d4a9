"""Configuration layers: defaults → TOML file → CALLCENTER_* environment → overrides."""

from __future__ import annotations

import dataclasses
import re
import secrets
from pathlib import Path

import pytest

from callcenter.config import (
    AmiConfig,
    Config,
    ConfigError,
    DatabaseConfig,
    LineConfig,
    PbxConfig,
    RedisConfig,
    SpotChecksConfig,
    TrackerConfig,
    WebConfig,
    load_config,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _in_empty_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No ./callcenter.toml of the developer's leaks in; relative paths land in tmp_path."""
    monkeypatch.chdir(tmp_path)


def write(tmp_path: Path, text: str, name: str = "callcenter.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------- defaults


def test_defaults(tmp_path: Path) -> None:
    config = load_config(env={})

    assert config.instance_path == tmp_path / "instance"
    assert config.timezone == "Asia/Shanghai"
    assert config.database.url == f"sqlite:///{tmp_path.as_posix()}/instance/callcenter.db"
    assert config.redis.url == ""
    assert config.tracker.idle_timeout_seconds == 7200.0
    assert config.ami == AmiConfig(secret=None, pbx=(PbxConfig(),))
    assert config.ami.pbx[0] == PbxConfig(
        name="pbx",
        host="127.0.0.1",
        port=5038,
        username="callcenter",
        secret=None,
        reconnect_max_seconds=60.0,
    )
    assert (config.web.secret_key, config.web.language) == (None, "zh_CN")
    assert config.lines == ()


def test_line_defaults() -> None:
    config = load_config(env={}, overrides={"lines": [{"number": "12345"}]})

    assert config.lines == (
        LineConfig(
            number="12345",
            unit="",
            name="",
            desk_phones=(),
            answer_within_seconds=15.0,
            offline_grace_seconds=300.0,
            unmanned_count=2,
            unmanned_window_seconds=1800.0,
            schedule="24h",
        ),
    )


def test_missing_secrets_are_not_an_error_at_load() -> None:
    config = load_config(env={})

    assert config.ami.secret is None
    assert config.ami.pbx[0].secret is None
    assert config.web.secret_key is None


def test_secrets_stay_out_of_repr() -> None:
    config = load_config(
        env={"CALLCENTER_AMI__SECRET": "s3cr3t", "CALLCENTER_WEB__SECRET_KEY": "k3y"}
    )

    assert config.ami.pbx[0].secret == "s3cr3t"
    assert config.web.secret_key == "k3y"
    assert "s3cr3t" not in repr(config)
    assert "k3y" not in repr(config)


# --------------------------------------------------------------------------- layering


LAYERED_TOML = """
timezone = "Asia/Urumqi"
[database]
url = "sqlite:///from-file.db"
[redis]
url = "redis://file:6379/0"
[tracker]
idle_timeout_seconds = 600.0
"""


def test_each_layer_overrides_the_one_before(tmp_path: Path) -> None:
    path = write(tmp_path, LAYERED_TOML)
    env = {
        "CALLCENTER_REDIS__URL": "redis://env:6379/0",
        "CALLCENTER_TRACKER__IDLE_TIMEOUT_SECONDS": "300",
    }
    overrides = {"tracker.idle_timeout_seconds": 60}

    config = load_config(path, env=env, overrides=overrides)

    assert config.timezone == "Asia/Urumqi"  # file over default
    assert config.database.url == "sqlite:///from-file.db"  # file over default
    assert config.redis.url == "redis://env:6379/0"  # environment over file
    assert config.tracker.idle_timeout_seconds == 60.0  # override over environment


def test_nested_overrides_merge_into_a_section(tmp_path: Path) -> None:
    path = write(tmp_path, '[web]\nlanguage = "en"\n')

    config = load_config(path, env={}, overrides={"web": {"secret_key": "test"}})

    assert (config.web.language, config.web.secret_key) == ("en", "test")


def test_the_file_can_come_from_callcenter_config(tmp_path: Path) -> None:
    path = write(tmp_path, "[tracker]\nidle_timeout_seconds = 42\n", name="other.toml")

    config = load_config(env={"CALLCENTER_CONFIG": str(path)})

    assert config.tracker.idle_timeout_seconds == 42.0


def test_callcenter_toml_in_the_working_folder_is_found(tmp_path: Path) -> None:
    write(tmp_path, 'timezone = "UTC"\n')

    assert load_config(env={}).timezone == "UTC"


def test_an_explicit_path_wins_over_callcenter_config(tmp_path: Path) -> None:
    named = write(tmp_path, 'timezone = "UTC"\n', name="named.toml")
    by_env = write(tmp_path, 'timezone = "Asia/Tokyo"\n', name="env.toml")

    config = load_config(named, env={"CALLCENTER_CONFIG": str(by_env)})

    assert config.timezone == "UTC"


def test_instance_path_moves_the_default_database(tmp_path: Path) -> None:
    config = load_config(env={"CALLCENTER_INSTANCE_PATH": "/srv/callcenter"})

    assert config.instance_path == Path("/srv/callcenter")
    assert config.database.url == "sqlite:////srv/callcenter/callcenter.db"


def test_unrelated_callcenter_variables_are_not_settings() -> None:
    env = {
        "CALLCENTER_TEST_POSTGRES_URL": "postgresql+psycopg://x@y/z",
        "CALLCENTER_REQUIRE_POSTGRES": "1",
    }

    assert load_config(env=env) == load_config(env={})


# --------------------------------------------------------------------------- environment types


def test_environment_values_are_converted_to_the_key_type() -> None:
    env = {
        "CALLCENTER_TRACKER__IDLE_TIMEOUT_SECONDS": "90.5",
        "CALLCENTER_AMI__PBX__0__PORT": "5039",
        "CALLCENTER_AMI__PBX__0__HOST": "pbx.example.internal",
        "CALLCENTER_LINES": '[{"number": "12345", "desk_phones": ["SIP/duty1"]}]',
        "CALLCENTER_LINES__0__DESK_PHONES": '["PJSIP/2001", "PJSIP/2002"]',
        "CALLCENTER_LINES__0__UNMANNED_COUNT": "3",
    }

    config = load_config(env=env)

    assert config.tracker.idle_timeout_seconds == 90.5
    assert (config.ami.pbx[0].host, config.ami.pbx[0].port) == ("pbx.example.internal", 5039)
    assert config.lines[0].desk_phones == ("PJSIP/2001", "PJSIP/2002")
    assert config.lines[0].unmanned_count == 3


@pytest.mark.parametrize(
    ("text", "expected"),
    [("true", True), ("1", True), ("YES", True), ("on", True), ("false", False), ("0", False)],
)
def test_environment_booleans(text: str, expected: bool) -> None:
    from callcenter.config import _parse_text

    assert _parse_text(text, bool, key="k", source="s", secret=False) is expected


def test_a_bad_environment_boolean_names_the_variable() -> None:
    from callcenter.config import _parse_text

    with pytest.raises(ConfigError, match=r"k: expected true or false, got 'maybe'"):
        _parse_text("maybe", bool, key="k", source="s", secret=False)


def test_an_empty_environment_value_clears_a_secret(tmp_path: Path) -> None:
    path = write(tmp_path, '[web]\nsecret_key = "from-file"\n')

    config = load_config(path, env={"CALLCENTER_WEB__SECRET_KEY": ""})

    assert config.web.secret_key is None


def test_a_specific_variable_wins_over_its_whole_table() -> None:
    env = {
        "CALLCENTER_DATABASE__URL": "sqlite:///specific.db",
        "CALLCENTER_DATABASE": '{"url": "sqlite:///whole.db"}',
    }

    assert load_config(env=env).database.url == "sqlite:///specific.db"


def test_the_shared_ami_secret_fills_pbxs_without_their_own(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[[ami.pbx]]\nname = "a"\n[[ami.pbx]]\nname = "b"\nhost = "10.0.0.2"\n',
    )
    env = {"CALLCENTER_AMI__SECRET": "shared", "CALLCENTER_AMI__PBX__1__SECRET": "own"}

    config = load_config(path, env=env)

    assert [(p.name, p.secret) for p in config.ami.pbx] == [("a", "shared"), ("b", "own")]


# --------------------------------------------------------------------------- errors


def test_bad_toml_names_the_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, '[database]\nurl = "sqlite://"\n\n[tracker\nidle = 1\n')

    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})

    message = str(caught.value)
    assert message.startswith(f"{path}: invalid TOML:")
    assert "line 4" in message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[tracker]\nidle_timout_seconds = 5\n", "tracker.idle_timout_seconds: unknown key"),
        ('colour = "blue"\n', "colour: unknown key"),
        ('[[lines]]\nnumber = "1"\nfax = "2"\n', r"lines\[0\].fax: unknown key"),
        ('[[ami.pbx]]\nport = 5038\nhots = "x"\n', r"ami.pbx\[0\].hots: unknown key"),
    ],
)
def test_an_unknown_key_is_named(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)

    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}: {message}"):
        load_config(path, env={})


def test_an_unknown_key_suggests_the_close_one(tmp_path: Path) -> None:
    path = write(tmp_path, "[tracker]\nidle_timout_seconds = 5\n")

    with pytest.raises(ConfigError, match="did you mean 'idle_timeout_seconds'"):
        load_config(path, env={})


def test_a_misspelt_environment_variable_is_an_error() -> None:
    with pytest.raises(
        ConfigError,
        match=r"^environment variable CALLCENTER_DATABSE__URL: databse: unknown key",
    ):
        load_config(env={"CALLCENTER_DATABSE__URL": "sqlite://"})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[tracker]\nidle_timeout_seconds = "long"\n',
            "tracker.idle_timeout_seconds: expected a number, got string 'long'",
        ),
        (
            "[[lines]]\nnumber = 12345\n",
            r'lines\[0\].number: expected a string, got integer 12345; quote it: "12345"',
        ),
        (
            '[[lines]]\nnumber = "1"\ndesk_phones = "SIP/duty1"\n',
            r"lines\[0\].desk_phones: expected a list of strings",
        ),
        ("[[ami.pbx]]\nport = true\n", r"ami.pbx\[0\].port: expected an integer, got boolean"),
        ('[[lines]]\nunit = "x"\n', r"lines\[0\].number: required key is missing"),
        ("tracker = 5\n", "tracker: expected a table, got integer 5"),
    ],
)
def test_a_wrong_type_is_named(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)

    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}: {message}"):
        load_config(path, env={})


def test_a_wrong_environment_type_names_the_variable() -> None:
    with pytest.raises(
        ConfigError,
        match=r"^environment variable CALLCENTER_TRACKER__IDLE_TIMEOUT_SECONDS: "
        r"tracker.idle_timeout_seconds: expected a number, got 'soon'$",
    ):
        load_config(env={"CALLCENTER_TRACKER__IDLE_TIMEOUT_SECONDS": "soon"})


def test_bad_json_in_the_environment_is_named() -> None:
    with pytest.raises(ConfigError, match=r"CALLCENTER_LINES: lines: expected a list of tables"):
        load_config(env={"CALLCENTER_LINES": "12345"})


def test_a_wrong_secret_type_does_not_echo_the_value(tmp_path: Path) -> None:
    path = write(tmp_path, "[ami]\nsecret = 987654321\n")

    with pytest.raises(ConfigError, match=r"ami\.secret: expected a string") as caught:
        load_config(path, env={})

    assert "987654321" not in str(caught.value)


def test_a_missing_named_file_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"

    with pytest.raises(ConfigError, match=rf"^{re.escape(str(missing))}: config file not found"):
        load_config(missing, env={})
    with pytest.raises(ConfigError, match="config file from CALLCENTER_CONFIG not found"):
        load_config(env={"CALLCENTER_CONFIG": str(missing)})


def test_an_out_of_range_list_index_is_explained() -> None:
    with pytest.raises(ConfigError, match=r"ami.pbx: no item 1: the list has 1 item"):
        load_config(env={"CALLCENTER_AMI__PBX__1__HOST": "x"})


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"timezone": "Mars/Olympus"}, "timezone: unknown time zone 'Mars/Olympus'"),
        ({"tracker.idle_timeout_seconds": 0}, "tracker.idle_timeout_seconds: must be greater"),
        ({"web.language": "fr"}, "web.language: must be one of zh_CN, en"),
        ({"ami.pbx.0.port": 70000}, r"ami.pbx\[0\].port: must be a TCP port"),
        (
            {"lines": [{"number": "12345"}, {"number": "12345"}]},
            r"lines\[1\].number: duplicate duty line '12345'",
        ),
        (
            {"lines": [{"number": "12345", "desk_phones": ["duty1"]}]},
            r"lines\[0\].desk_phones\[0\]: expected an endpoint like SIP/duty1",
        ),
        ({"lines": [{"number": "1", "unmanned_count": 0}]}, "unmanned_count: must be at least 1"),
        (
            {"ami": {"pbx": [{"name": "a"}, {"name": "a"}]}},
            r"ami.pbx\[1\].name: duplicate PBX name 'a'",
        ),
    ],
)
def test_invalid_values_are_named(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(env={}, overrides=overrides)


def test_an_override_of_an_unknown_key_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"^override: tracker.idle: unknown key"):
        load_config(env={}, overrides={"tracker.idle": 1})


# --------------------------------------------------------------------------- lines


def test_the_example_file_loads_and_describes_the_lab() -> None:
    config = load_config(REPO / "callcenter.example.toml", env={})

    assert [line.number for line in config.lines] == ["12345", "12346", "12347"]
    assert config.line_for_number("12345") is config.lines[0]
    assert config.lines[0].desk_phones == ("SIP/duty1", "PJSIP/2001", "PJSIP/2002")
    ring_group, queue = config.line_for_number("12346"), config.line_for_number("12347")
    assert ring_group is not None and ring_group.desk_phones == ("SIP/duty1", "SIP/duty2")
    assert queue is not None and queue.desk_phones == ("PJSIP/2001", "PJSIP/2002")
    assert all(p.secret is None for p in config.ami.pbx)


def test_line_lookups() -> None:
    config = load_config(
        env={},
        overrides={
            "lines": [
                {"number": "12345", "desk_phones": ["SIP/duty1", "PJSIP/2001"]},
                {"number": "12346", "desk_phones": ["SIP/duty1", "SIP/duty2"]},
            ]
        },
    )
    first, second = config.lines

    assert config.line_for_number("12345") is first
    assert config.line_for_number("99999") is None
    assert config.line_for_number(None) is None
    assert config.line_for_endpoint("SIP/duty2") is second
    assert config.line_for_endpoint("SIP/duty1") is first  # first in file order
    assert config.lines_for_endpoint("SIP/duty1") == (first, second)
    assert config.line_for_endpoint("sip/duty1") is None  # case-sensitive
    assert config.line_for_endpoint("SIP/duty1-0000002a") is None  # exact
    assert config.line_for_endpoint(None) is None


def test_config_is_frozen_and_replace_keeps_lookups() -> None:
    config = load_config(env={}, overrides={"lines": [{"number": "12345"}]})

    with pytest.raises(dataclasses.FrozenInstanceError):
        config.timezone = "UTC"  # type: ignore[misc]
    changed = dataclasses.replace(config, lines=(LineConfig(number="110"),))
    assert changed.line_for_number("110") is changed.lines[0]
    assert changed.line_for_number("12345") is None


def test_every_key_is_documented() -> None:
    docs = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    sections: dict[str, type] = {
        "database": DatabaseConfig,
        "redis": RedisConfig,
        "tracker": TrackerConfig,
        "spot_checks": SpotChecksConfig,
        "ami": AmiConfig,
        "web": WebConfig,
        "ami.pbx[]": PbxConfig,
        "lines[]": LineConfig,
    }
    tables = {"database", "redis", "tracker", "spot_checks", "ami", "web", "pbx", "lines"}
    keys = [f.name for f in dataclasses.fields(Config) if f.init and f.name not in tables]
    for prefix, cls in sections.items():
        keys += [f"{prefix}.{f.name}" for f in dataclasses.fields(cls) if f.name not in tables]

    assert [key for key in keys if f"`{key}`" not in docs] == []


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ({"spot_checks.per_line": 25}, "spot_checks.per_line"),
        ({"spot_checks.ring_timeout_seconds": 0}, "spot_checks.ring_timeout_seconds"),
        ({"spot_checks.context": " "}, "spot_checks.context"),
        ({"spot_checks.pbx": "nowhere"}, "spot_checks.pbx"),
    ],
)
def test_bad_spot_check_settings_name_their_key(override: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(None, overrides=override, env={})
    assert key in str(caught.value)


def test_spot_check_seed_is_a_secret_from_the_environment() -> None:
    seed = secrets.token_hex(8)  # made at run time: nothing secret-looking committed
    config = load_config(None, env={"CALLCENTER_SPOT_CHECKS__SEED": seed})
    assert config.spot_checks.seed == seed
    assert seed not in repr(config)
