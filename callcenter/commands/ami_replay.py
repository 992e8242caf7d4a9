"""``callcenter ami-replay``: the built-in AMI server, replaying transcripts or generated traffic.

It lets the listener and the demo run on a machine with no PBX::

    callcenter ami-replay tests/fixtures/ami/asterisk20/*.jsonl --loop --speed 2
    callcenter ami-replay --generate --seed 7 --port 5038

Logs go to stderr; it serves until Ctrl-C (SIGINT) or SIGTERM, then closes every
connection and exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import math
import os
import random
import signal
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from callcenter.ami.generator import Counters
    from callcenter.ami.replay_server import AmiReplayServer

logger = logging.getLogger(__name__)

SECRET_VARIABLE = "CALLCENTER_AMI__SECRET"


def _generated_events(seed: int) -> tuple[Iterable[Mapping[str, object]], Counters]:
    """The traffic generator's stream and the counters it numbers its channels with (one
    PBX numbers every channel: a spot check's too), imported only when asked for."""
    try:
        module = importlib.import_module("callcenter.ami.generator")
        generate_stream = module.generate_stream
        counters: Counters = module.Counters()
    except (ImportError, AttributeError) as exc:
        raise click.ClickException(
            "--generate needs callcenter.ami.generator.generate_stream(seed), which cannot "
            f"be imported here ({exc}); replay transcript files instead"
        ) from exc
    events: Iterable[Mapping[str, object]] = generate_stream(seed, counters=counters)
    return events, counters


@click.command("ami-replay")
@click.argument(
    "transcripts",
    nargs=-1,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", default=5038, show_default=True, type=click.IntRange(0, 65535), help="0: any."
)
@click.option(
    "--speed",
    default=1.0,
    show_default=True,
    type=float,
    help="Playback speed: 2 = twice as fast; 0 or inf = as fast as possible.",
)
@click.option("--loop", is_flag=True, help="Play the transcripts again and again (new calls).")
@click.option("--username", default="callcenter", show_default=True, help="AMI user to accept.")
@click.option(
    "--secret",
    default=None,
    help=f"AMI secret to require (default: ${SECRET_VARIABLE}; none: any login is accepted).",
)
@click.option(
    "--generate", is_flag=True, help="Play generated duty-room traffic (after the transcripts)."
)
@click.option(
    "--seed", type=int, default=None, help="Seed of the generated traffic (implies --generate)."
)
@click.option(
    "--max-idle",
    type=click.FloatRange(min=0),
    default=None,
    help="Shorten silences longer than this many seconds (stream time).",
)
@click.option(
    "--shift-to-now/--keep-times",
    default=None,
    help="Shift event times so the stream happens now (default with --loop or --generate), "
    "or send the recorded Timestamps unchanged.",
)
@click.option(
    "--no-wait",
    is_flag=True,
    help="Start playing at once instead of at the first login (events with no client are lost).",
)
def ami_replay(
    transcripts: tuple[Path, ...],
    host: str,
    port: int,
    speed: float,
    loop: bool,
    username: str,
    secret: str | None,
    generate: bool,
    seed: int | None,
    max_idle: float | None,
    shift_to_now: bool | None,
    no_wait: bool,
) -> None:
    """Serve AMI on HOST:PORT, replaying TRANSCRIPT files (.jsonl, .json, .ami, .gz).

    Clients log in and get the events paced like the recording (playback starts at the
    first login unless --no-wait); Ping, Events, CoreShowChannels, DBGet/DBPut/DBDel and
    Originate are answered like Asterisk does. --loop replays the transcripts with fresh
    Uniqueids and channel names on every pass; generated traffic plays once, after them.
    With generated traffic a spot check's Originate (Local/<line>@<context>) rings the
    generated desk phone SIP/duty1: a generated spot-check call is played, answered or not.
    """
    from callcenter.ami.replay_server import AmiReplayServer
    from callcenter.ami.spot_check_answers import GeneratedSpotCheckAnswers

    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO,
            stream=sys.stderr,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
    if math.isnan(speed) or speed < 0:
        raise click.BadParameter(
            "must be >= 0 (0 or inf: as fast as possible)", param_hint="--speed"
        )
    if secret is None:
        secret = os.environ.get(SECRET_VARIABLE) or None
    events: Iterable[Mapping[str, object]] | None = None
    numbering: Counters | None = None
    if generate or seed is not None:
        if seed is None:
            seed = random.SystemRandom().randrange(2**31)
        events, numbering = _generated_events(seed)
        logger.info("generated traffic with seed %d (--seed %d repeats it)", seed, seed)
    if not transcripts and events is None:
        raise click.UsageError("give TRANSCRIPT files, or --generate")
    if secret is None:
        logger.warning(
            "no AMI secret set (--secret or $%s): any login is accepted", SECRET_VARIABLE
        )

    server = AmiReplayServer(
        list(transcripts),
        events,
        host=host,
        port=port,
        speed=speed,
        loop=loop,
        shift_to_now=(loop or events is not None) if shift_to_now is None else shift_to_now,
        username=username,
        secret=secret,
        start_on_login=not no_wait,
        max_idle=max_idle,
    )
    if numbering is not None and seed is not None:  # spot checks ring a generated desk phone
        server.originate_handler = GeneratedSpotCheckAnswers(seed, numbering)
    try:
        asyncio.run(_serve(server))
    except OSError as exc:
        raise click.ClickException(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}"
        ) from exc


async def _serve(server: AmiReplayServer) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # Windows: Ctrl-C raises instead
            loop.add_signal_handler(sig, stop.set)
    async with server:
        logger.info(
            "AMI replay server listening on %s:%d (user %r); Ctrl-C to stop",
            server.host,
            server.port,
            server.username,
        )
        finished = asyncio.create_task(server.wait_until_finished())
        stopping = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait({finished, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if finished in done and not stop.is_set():
            logger.info("playback finished; still serving actions until Ctrl-C")
            await stopping
        for task in (finished, stopping):
            task.cancel()
        await asyncio.gather(finished, stopping, return_exceptions=True)
    logger.info("AMI replay server stopped")
