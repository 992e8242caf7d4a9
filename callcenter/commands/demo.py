"""``callcenter demo``: see the whole product work, with nothing else installed."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import click


@click.command("demo")
@click.option(
    "--instance",
    type=click.Path(path_type=Path),
    default=Path("instance-demo"),
    show_default=True,
    help="Folder for the demo's database, Redis and logs.",
)
@click.option("--web-port", default=5000, show_default=True)
@click.option("--ami-port", default=5039, show_default=True)
@click.option("--speed", default=5.0, show_default=True, help="Time scale of the duty day.")
@click.option("--seed", default=1, show_default=True, help="Seed of the generated traffic.")
@click.option(
    "--for",
    "duration",
    type=float,
    default=None,
    help="Stop after this many seconds (default: until Ctrl-C).",
)
def demo(instance: Path, web_port: int, ami_port: int, speed: float, seed: int,
         duration: float | None) -> None:  # fmt: skip
    """Run the replay server, listener, worker and console on embedded defaults."""
    from callcenter.demo import DemoError, DemoOptions, running_demo

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    options = DemoOptions(instance, web_port=web_port, ami_port=ami_port, speed=speed,
                          seed=seed, say=lambda text: click.echo(text, err=True))  # fmt: skip
    try:
        with running_demo(options) as running:
            click.echo(f"\nThe demo runs. Console: {running.web_url}", err=True)
            for username, password in running.accounts.items():
                click.echo(f"  login {username:<10} password {password}", err=True)
            click.echo(f"Logs: {instance / 'logs'}. Ctrl-C to stop.", err=True)
            stop.wait(duration)
            click.echo("stopping …", err=True)
    except DemoError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo("stopped; nothing left running.", err=True)
