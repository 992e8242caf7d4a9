"""The files under ``docker/``: valid, pinned, secret-free and consistent with each other.

No Docker engine runs on the test machines, so the stack is never booted here. What is
checked instead:

- ``docker-compose config -q`` (Debian's ``docker-compose`` package, which needs no engine)
  accepts ``docker/compose.yaml``, and ``docker/.env.example`` names every variable it uses;
- every image (compose services and the Dockerfile's base) is pinned by a tag, never
  ``latest``, and the callcenter image's tag is the project's version;
- the sample Asterisk configs give the listener what it needs (``timestampevents = yes``,
  the read and write rights) and agree with ``docker/asterisk/callcenter.toml``: every desk
  phone is a qualified PJSIP endpoint and is dialed by its duty line, for 20 s;
- no secret is in any of these files.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from callcenter.config import Config, load_config

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
COMPOSE = DOCKER / "compose.yaml"
ASTERISK = DOCKER / "asterisk"
ENV_EXAMPLE = DOCKER / ".env.example"
SECRET_VARIABLES = (
    "POSTGRES_PASSWORD",
    "REDIS_PASSWORD",
    "CALLCENTER_AMI__SECRET",
    "CALLCENTER_WEB__SECRET_KEY",
    "DESK_PHONE_2001_PASSWORD",
    "DESK_PHONE_2002_PASSWORD",
)


# --------------------------------------------------------------------------- docker-compose


def _docker_compose() -> str:
    found = shutil.which("docker-compose")
    if found is None:
        pytest.skip(
            "docker-compose is not installed: `apt-get install docker-compose` (Debian's "
            "package validates compose files without a Docker engine)"
        )
    return found


def _compose(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in SECRET_VARIABLES}
    env.pop("ASTERISK_EXTERNAL_IP", None)
    return subprocess.run(
        [_docker_compose(), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_compose_file_is_valid() -> None:
    result = _compose("-f", "docker/compose.yaml", "config", "-q")
    assert result.returncode == 0, result.stderr


def test_env_example_names_every_variable() -> None:
    result = _compose("--env-file", str(ENV_EXAMPLE), "-f", str(COMPOSE), "config", "-q")
    assert result.returncode == 0, result.stderr
    assert "is not set" not in result.stderr, result.stderr


def test_env_example_holds_no_secret() -> None:
    values = {}
    for line in ENV_EXAMPLE.read_text("utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    assert set(SECRET_VARIABLES) <= set(values)
    assert all(value == "" for value in values.values()), values


def _resolved_services() -> dict[str, dict[str, str]]:
    """Service → its top-level scalar keys, from ``docker-compose config`` (normalised
    YAML: two-space indentation), so interpolation and anchors are already resolved."""
    result = _compose("--env-file", str(ENV_EXAMPLE), "-f", str(COMPOSE), "config")
    assert result.returncode == 0, result.stderr
    services: dict[str, dict[str, str]] = {}
    in_services = False
    current: dict[str, str] | None = None
    for line in result.stdout.splitlines():
        if not line.startswith(" "):
            in_services = line.rstrip() == "services:"
            continue
        if not in_services:
            continue
        if match := re.match(r"^  ([\w.-]+):\s*$", line):
            current = services.setdefault(match.group(1), {})
        elif (match := re.match(r"^    ([\w-]+):\s*(\S.*)$", line)) and current is not None:
            current[match.group(1)] = match.group(2).strip("'\"")
    return services


def test_every_image_is_pinned_by_tag() -> None:
    services = _resolved_services()
    assert {"postgres", "redis", "asterisk", "migrate", "listen", "worker", "web"} <= set(services)
    images = {name: service.get("image", "") for name, service in services.items()}
    froms = re.findall(r"(?im)^FROM\s+(\S+)", (DOCKER / "Dockerfile").read_text("utf-8"))
    assert froms, "the Dockerfile has no FROM"
    for where, image in [*images.items(), *(("Dockerfile", image) for image in froms)]:
        assert image, f"{where} has no image"
        name, _, tag = image.split("@")[0].rpartition(":")
        assert name and "/" not in tag, f"{where}: {image} has no tag"
        assert tag != "latest", f"{where}: {image} uses latest"
    assert froms[0].startswith("python:3.11.") and "slim-bookworm" in froms[0]
    assert images["asterisk"].startswith("andrius/asterisk:20.")


def test_callcenter_image_tag_is_the_project_version() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]["version"]
    services = _resolved_services()
    for name in ("migrate", "listen", "worker", "web"):
        assert services[name]["image"] == f"callcenter:{version}", name


def test_workers_scale_and_everything_waits_for_the_migration() -> None:
    text = COMPOSE.read_text("utf-8")
    assert re.search(r"(?m)^  worker:\n(?:    .*\n|\n)*?    deploy:\n      replicas: \d+", text)
    resolved = _compose("--env-file", str(ENV_EXAMPLE), "-f", str(COMPOSE), "config").stdout
    for name in ("listen", "worker", "web"):
        block = re.search(rf"(?ms)^  {name}:\n(.*?)(?=^  \S|\Z)", resolved)
        assert block, name
        assert re.search(
            r"migrate:\n\s+condition: service_completed_successfully", block.group(1)
        ), name


def test_asterisk_entrypoint_is_valid_shell() -> None:
    result = subprocess.run(
        ["sh", "-n", str(ASTERISK / "entrypoint.sh")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_no_env_file_is_tracked() -> None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    tracked = subprocess.run(
        ["git", "ls-files", "docker/.env"], cwd=ROOT, capture_output=True, text=True
    )
    assert tracked.stdout.strip() == ""


# --------------------------------------------------------------------------- Asterisk configs


@dataclass
class Section:
    name: str
    templates: list[str]
    is_template: bool
    values: list[tuple[str, str]] = field(default_factory=list)

    def get(self, key: str) -> list[str]:
        return [value for k, value in self.values if k == key]


def _parse_asterisk(path: Path) -> list[Section]:
    """Asterisk's config format: ``[name](!,template)`` sections, ``key = value`` and
    ``key => value`` lines, ``;`` comments, ``#include`` directives (kept as ``#include``)."""
    sections: list[Section] = [Section("", [], False)]
    for raw in path.read_text("utf-8").splitlines():
        line = re.sub(r"(?<!\\);.*$", "", raw).strip()
        if not line:
            continue
        if line.startswith("#"):
            directive, _, argument = line.partition(" ")
            sections[-1].values.append((directive, argument.strip().strip('"')))
            continue
        header = re.match(r"^\[([^\]]+)\](?:\(([^)]*)\))?$", line)
        if header:
            options = [o.strip() for o in (header.group(2) or "").split(",") if o.strip()]
            sections.append(
                Section(header.group(1), [o for o in options if o != "!"], "!" in options)
            )
            continue
        match = re.match(r"^([^=]+?)\s*=>?\s*(.*)$", line)
        assert match, f"{path.name}: cannot read {raw!r}"
        sections[-1].values.append((match.group(1).strip(), match.group(2).strip()))
    return sections


def _resolved(sections: list[Section], section: Section) -> dict[str, list[str]]:
    """The section's keys with those of its templates (template values first)."""
    templates = {s.name: s for s in sections if s.is_template}
    merged: dict[str, list[str]] = {}
    for name in section.templates:
        for key, values in _resolved(sections, templates[name]).items():
            merged.setdefault(key, []).extend(values)
    for key, value in section.values:
        merged.setdefault(key, []).append(value)
    return merged


def _one(sections: list[Section], name: str) -> Section:
    found = [s for s in sections if s.name == name]
    assert len(found) == 1, f"expected one [{name}], found {len(found)}"
    return found[0]


@pytest.fixture(scope="module")
def stack_config() -> Config:
    return load_config(ASTERISK / "callcenter.toml", env={})


def test_stack_config_loads(stack_config: Config) -> None:
    assert [pbx.host for pbx in stack_config.ami.pbx] == ["asterisk"]
    assert stack_config.lines, "no duty line"
    assert all(line.desk_phones for line in stack_config.lines)
    assert stack_config.ami.secret is None and stack_config.web.secret_key is None


def test_manager_conf_gives_the_listener_what_it_needs(stack_config: Config) -> None:
    sections = _parse_asterisk(ASTERISK / "manager.conf")
    general = dict(_one(sections, "general").values)
    assert general["enabled"] == "yes"
    assert general["timestampevents"] == "yes"
    assert int(general["port"]) == stack_config.ami.pbx[0].port
    user = _one(sections, stack_config.ami.pbx[0].username)
    rights = dict(user.values)
    read = {r.strip() for r in rights["read"].split(",")}
    write = {r.strip() for r in rights["write"].split(",")}
    assert {"call", "agent", "system"} <= read
    assert {"dialplan", "reporting"} <= read
    assert {"system", "originate"} <= write
    assert "secret" not in rights  # from docker/.env, through the include
    assert ("#include", "manager_secret.conf") in user.values
    assert rights["deny"] == "0.0.0.0/0.0.0.0" and rights["permit"]


def _endpoints(sections: list[Section]) -> dict[str, dict[str, list[str]]]:
    return {
        s.name: resolved
        for s in sections
        if not s.is_template and (resolved := _resolved(sections, s)).get("type") == ["endpoint"]
    }


def test_every_desk_phone_is_a_qualified_pjsip_endpoint(stack_config: Config) -> None:
    sections = _parse_asterisk(ASTERISK / "pjsip.conf")
    endpoints = _endpoints(sections)
    aors = {
        s.name: resolved
        for s in sections
        if not s.is_template and (resolved := _resolved(sections, s)).get("type") == ["aor"]
    }
    phones = {phone for line in stack_config.lines for phone in line.desk_phones}
    assert phones
    for phone in sorted(phones):
        tech, _, name = phone.partition("/")
        assert tech == "PJSIP", phone
        assert name in endpoints, f"{phone} is no endpoint in pjsip.conf"
        endpoint = endpoints[name]
        assert endpoint["aors"] == [name], phone
        assert float(aors[name]["qualify_frequency"][-1]) > 0, f"{phone} is not qualified"
        assert endpoint.get("auth"), f"{phone} has no auth"
    text = (ASTERISK / "pjsip.conf").read_text("utf-8")
    assert not re.search(r"(?im)^\s*password\s*=", text), "a password in pjsip.conf"


def _dialplan() -> tuple[dict[str, str], dict[tuple[str, str], list[str]]]:
    """``[globals]`` and the applications of each (context, extension), in order."""
    globals_: dict[str, str] = {}
    steps: dict[tuple[str, str], list[str]] = {}
    for section in _parse_asterisk(ASTERISK / "extensions.conf"):
        if section.name == "globals":
            globals_.update(section.values)
            continue
        current: tuple[str, str] | None = None
        for key, value in section.values:
            if key == "exten":
                exten, _priority, app = (part.strip() for part in value.split(",", 2))
                current = (section.name, exten)
                steps.setdefault(current, []).append(app)
            elif key == "same" and current is not None:
                steps[current].append(value.split(",", 1)[1].strip())
    return globals_, steps


def _expand(text: str, variables: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}", lambda m: variables.get(m.group(1), m.group(0)), text)


def test_every_duty_line_rings_its_desk_phones_for_20_seconds(stack_config: Config) -> None:
    variables, steps = _dialplan()
    for line in stack_config.lines:
        dials = [
            re.match(r"^Dial\((.*)\)$", app)
            for (context, exten), apps in steps.items()
            if exten == line.number
            for app in apps
        ]
        dials = [d for d in dials if d]
        assert dials, f"extensions.conf never dials anything for {line.number}"
        rung: set[str] = set()
        for dial in dials:
            targets, _, rest = _expand(dial.group(1), variables).partition(",")
            rung.update(targets.split("&"))
            assert rest.split(",")[0] == "20", f"{line.number}: {dial.group(0)}"
        assert set(line.desk_phones) <= rung, f"{line.number} rings {rung}"


def test_contexts_the_listener_and_phones_use_exist(stack_config: Config) -> None:
    _variables, steps = _dialplan()
    contexts = {context for context, _exten in steps}
    assert stack_config.ami.pbx[0].originate_context in contexts
    endpoints = _endpoints(_parse_asterisk(ASTERISK / "pjsip.conf"))
    for name, endpoint in endpoints.items():
        assert endpoint["context"][-1] in contexts, f"endpoint {name}"


def test_asterisk_configs_are_mounted() -> None:
    text = COMPOSE.read_text("utf-8")
    for path in sorted(ASTERISK.glob("*.conf")):
        assert f"./asterisk/{path.name}:/etc/asterisk/{path.name}:ro" in text, path.name
    assert "./asterisk/callcenter.toml:/etc/callcenter/callcenter.toml:ro" in text


def _files() -> Iterator[Path]:
    yield from (p for p in DOCKER.rglob("*") if p.is_file() and p.name != ".env")


def test_no_secret_in_the_deployment_files() -> None:
    pattern = re.compile(r"(?im)^\s*(secret|password|requirepass)\s*[=:]\s*(?!\$|%s|\"?\$)\S")
    for path in _files():
        text = path.read_text("utf-8")
        assert not pattern.search(text), f"{path.relative_to(ROOT)} holds a secret"
