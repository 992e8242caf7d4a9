"""``callcenter demo``: see the whole product work, with nothing else installed.

Progress and the accounts go to stderr. Exit codes: 0 after Ctrl-C/SIGTERM or ``--for``
(everything stopped cleanly), 1 when the demo could not start (a port in use, a part that
failed: the message names it and shows the end of its log) or a part died while running.
"""

from __future__ import annotations

import signal
from pathlib import Path
from types import FrameType

import click


@click.command("demo")
@click.option(
    "--instance",
    type=click.Path(path_type=Path),
    default=Path("instance-demo"),
    show_default=True,
    help="Folder for the demo's database, Redis and logs.",
)
@click.option(
    "--web-port",
    default=5000,
    show_default=True,
    type=click.IntRange(1, 65535),
    help="Port of the console on 127.0.0.1.",
)
@click.option(
    "--ami-port",
    default=5039,
    show_default=True,
    type=click.IntRange(1, 65535),
    help="Port of the built-in AMI server (the demo's PBX) on 127.0.0.1.",
)
@click.option(
    "--speed",
    default=5.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Time scale of the duty day (5: a 20 s ring lasts 4 s).",
)
@click.option("--seed", default=1, show_default=True, help="Seed of the generated traffic.")
@click.option(
    "--for",
    "duration",
    type=click.FloatRange(min=0),
    default=None,
    help="Stop after this many seconds (default: until Ctrl-C).",
)
def demo(instance: Path, web_port: int, ami_port: int, speed: float, seed: int,
         duration: float | None) -> None:  # fmt: skip
    """Run the replay server, listener, worker and console on embedded defaults."""
    import time

    from callcenter.demo import (
        DemoError,
        DemoInterrupted,
        DemoOptions,
        exit_message,
        running_demo,
    )

    def say(text: str) -> None:
        click.echo(text, err=True)

    options = DemoOptions(instance, web_port=web_port, ami_port=ami_port, speed=speed,
                          seed=seed, say=say)  # fmt: skip

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if not options.stop.is_set():
            say(f"\n{signal.Signals(signum).name}: stopping …")
        options.stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    died = None
    try:
        with running_demo(options) as running:
            say(f"\nThe demo runs. Console: {running.web_url}")
            for username, password in running.accounts.items():
                say(f"  login {username:<10} password {password}")
            say(f"Logs: {instance / 'logs'}. Ctrl-C to stop.")
            deadline = None if duration is None else time.monotonic() + duration
            while not options.stop.wait(0.5):
                died = running.dead_child()
                if died is not None:
                    say(f"\n{exit_message(died)}\nstopping the others …")
                    break
                if deadline is not None and time.monotonic() >= deadline:
                    say("stopping …")
                    break
    except DemoInterrupted:
        say("stopped before the demo was ready; nothing left running.")
        return
    except DemoError as exc:
        raise click.ClickException(str(exc)) from exc
    if died is not None:
        raise SystemExit(1)
    say("stopped; nothing left running.")
