"""The ``callcenter`` command. Each subcommand imports what it needs lazily."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not verbose:
        logging.getLogger("alembic").setLevel(logging.WARNING)


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Debug logging on stderr.")
@click.version_option(package_name="callcenter")
def main(verbose: bool) -> None:
    """Duty-line monitoring for government duty rooms (值班室), fed by Asterisk AMI."""
    _setup_logging(verbose)


def _load_config(path: Path | None) -> object:
    from callcenter.config import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as exc:
        raise click.ClickException(f"bad config: {exc}") from exc


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    default=None,
    help="callcenter.toml with the duty lines and desk phones.",
)
@click.option("--violations", is_flag=True, help="Also print the violations each call raises.")
def replay(paths: tuple[Path, ...], config_path: Path | None, violations: bool) -> None:
    """Replay AMI transcripts (.jsonl, .json, .ami, optionally .gz) as JSON Lines on stdout.

    Only JSON goes to stdout; warnings about skipped events go to stderr. The exit code is
    0 when every file was read, 1 when a file could not be read at all.
    """
    from callcenter.replay import replay_paths

    config = _load_config(config_path) if config_path is not None else None
    log = logging.getLogger("callcenter.replay")
    failed: list[Path] = []

    def file_error(path: Path, reason: str) -> None:
        failed.append(path)
        log.error("%s", reason)

    out = sys.stdout
    count = 0
    for obj in replay_paths(
        paths,
        config=config,  # type: ignore[arg-type]
        violations=violations,
        on_warning=log.warning,
        on_file_error=file_error,
    ):
        out.write(json.dumps(obj, ensure_ascii=False) + "\n")
        count += obj.get("type") == "call"
    out.flush()
    log.info("replayed %d file(s): %d call(s)", len(paths) - len(failed), count)
    if failed:
        sys.exit(1)


def _register() -> None:
    from callcenter.commands.ami_replay import ami_replay
    from callcenter.commands.check_config import check_config
    from callcenter.commands.db import db
    from callcenter.commands.demo import demo
    from callcenter.commands.listen import listen
    from callcenter.commands.roster import roster
    from callcenter.commands.user import user
    from callcenter.commands.web import web
    from callcenter.commands.worker import worker

    main.add_command(listen)
    main.add_command(ami_replay)
    main.add_command(demo)
    main.add_command(roster)
    main.add_command(user)
    main.add_command(web)
    main.add_command(db)
    main.add_command(check_config)
    main.add_command(worker)


_register()

if __name__ == "__main__":  # pragma: no cover
    main()
