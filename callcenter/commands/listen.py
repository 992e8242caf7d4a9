"""``callcenter listen``: the live AMI listener for every configured PBX."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path

import click

logger = logging.getLogger(__name__)


@click.command("listen")
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=None)
def listen(config_path: Path | None) -> None:
    """Listen to the PBXs over AMI, store every finished call and queue its evaluation."""
    from callcenter.config import ConfigError, load_config
    from callcenter.embedded_redis import EmbeddedRedisError, redis_for
    from callcenter.listen import SetupError, build_pipeline, run_pipeline

    try:
        config = load_config(config_path)
    except ConfigError as exc:
        raise click.ClickException(f"bad config: {exc}") from exc
    try:
        with redis_for(config) as (_client, url):
            pipeline = build_pipeline(config, url)
            asyncio.run(_until_signalled(pipeline, run_pipeline))
    except (SetupError, EmbeddedRedisError) as exc:
        raise click.ClickException(str(exc)) from exc


async def _until_signalled(pipeline: object, runner: object) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    logger.info("listening; Ctrl-C to stop")
    await runner(pipeline, stop)  # type: ignore[operator]
    logger.info("stopped")
