"""``callcenter demo``: see the whole product work, with nothing else installed.

Progress and the accounts go to stderr. Exit codes: 0 after Ctrl-C/SIGTERM or ``--for``
(everything stopped cleanly), 1 when the demo could not start (a port in use, a part that
failed: the message names it and shows the end of its log), or when a part died while the
demo ran or did not stop cleanly: a part that dies is announced at once in one line
(``FAILED: the listener (pid …) was killed by SIGKILL …; log: …``), the demo stops the others
and then names every failed part with its exit code, its log file and the end of that log.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from callcenter.demo import Failure


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
    from callcenter.demo import DemoError, DemoInterrupted, DemoOptions, running_demo, watch

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
    try:
        with running_demo(options) as running:
            say(f"\nThe demo runs. Console: {running.web_url}")
            for username, password in running.accounts.items():
                say(f"  login {username:<10} password {password}")
            say(f"Logs: {instance / 'logs'}. Ctrl-C to stop.")
            watch(running, duration)
    except DemoInterrupted as exc:
        if exc.failures:
            _report_failures(say, "stopped before the demo was ready", exc.failures)
        say("stopped before the demo was ready; nothing left running.")
        return
    except DemoError as exc:
        later = [f.describe() for f in exc.failures if f.during == "shutdown"]
        raise click.ClickException("\n".join([str(exc), *later])) from exc
    if running.failures:
        _report_failures(say, "stopped; nothing left running", running.failures)
    say("stopped; nothing left running.")


def _report_failures(say: Callable[[str], None], what: str, failures: Sequence[Failure]) -> None:
    """Name every part that failed, with the end of its log, and exit 1."""
    parts = "1 part" if len(failures) == 1 else f"{len(failures)} parts"
    say(f"\n{what}, but {parts} failed:")
    for failure in failures:
        say("  " + failure.describe())
    raise SystemExit(1)
