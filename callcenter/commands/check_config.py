"""``callcenter check-config``: validate a configuration and reach every part it names.

    callcenter check-config --config /etc/callcenter/callcenter.toml
    callcenter check-config --part database --part redis     # a worker machine

One line per part on stdout (``database: ok, ...`` or the problem); the exit code is 0 when
every part is fine, 1 when any is not (or the configuration itself is invalid: then that one
line, and nothing is contacted). See :mod:`callcenter.checks` for what each check does.
"""

from __future__ import annotations

from pathlib import Path

import click


@click.command("check-config")
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=None)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=5.0,
    show_default=True,
    help="Seconds to wait for each part to answer.",
)
@click.option(
    "--part",
    "parts",
    multiple=True,
    type=click.Choice(["database", "redis", "pbx", "web"]),
    help="Check only these parts (repeatable) [all].",
)
def check_config(config_path: Path | None, timeout: float, parts: tuple[str, ...]) -> None:
    """Check the configuration, the database, Redis, every PBX and the web secret."""
    from callcenter.checks import PARTS, run_checks, summary
    from callcenter.config import ConfigError, load_config

    try:
        config = load_config(config_path)
    except ConfigError as exc:
        click.echo(f"config: {' '.join(str(exc).split())}")
        raise SystemExit(1) from None
    click.echo(f"config: ok, {len(config.ami.pbx)} PBX(s), {len(config.lines)} duty line(s)")
    results = run_checks(config, parts=parts or PARTS, timeout=timeout)
    for result in results:
        click.echo(result.line)
    click.echo(summary(results), err=True)
    if not all(result.ok for result in results):
        raise SystemExit(1)
