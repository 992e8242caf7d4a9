"""The whole listener over loopback: AMI replay server → listener → database.

The replay server plays generated duty days as fast as it can; the listener (panoramisk with
our protocol, the tracker, the store sink) stores every call. Prints events/s and calls/s
from the first event to the last call committed, and checks count in = count out.

    python bench/bench_listener.py [--days N] [--database URL] [--redis]
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from callcenter.ami.generator import generate_day
from callcenter.ami.replay_server import AmiReplayServer
from callcenter.config import load_config
from callcenter.listen import build_pipeline, run_pipeline
from callcenter.store.migrate import upgrade

SECRET = secrets.token_urlsafe(12)  # per run


async def run(days: int, database_url: str, redis_url: str | None, instance: Path) -> None:
    events: list[dict[str, str]] = []
    expected = 0
    for day in range(days):
        day_events, scenarios = generate_day(
            seed=day + 1, start=datetime(2026, 11, 1 + day, tzinfo=UTC)
        )
        events.extend(day_events)
        expected += len(scenarios)
    upgrade(database_url)
    async with AmiReplayServer(events=events, speed=0, secret=SECRET) as server:
        config = load_config(env={}, overrides={
            "instance_path": str(instance),
            "database": {"url": database_url},
            "ami": {"pbx": [{"name": "bench", "port": server.port, "secret": SECRET}]},
        })  # fmt: skip
        pipeline = build_pipeline(config, redis_url)
        (listener,) = pipeline.listeners
        stop = asyncio.Event()
        task = asyncio.create_task(run_pipeline(pipeline, stop))
        await listener.connected.wait()
        start = time.perf_counter()
        await server.wait_until_finished()
        while listener.events_received < len(events):
            await asyncio.sleep(0.01)
        received = time.perf_counter() - start
        while pipeline.sink.stored < listener.calls_finished or listener.calls_finished < expected:
            await asyncio.sleep(0.01)
            if time.perf_counter() - start > 600:
                break
        stored = time.perf_counter() - start
        stop.set()
        await task
    print(f"events: {len(events)} in {received:.2f} s → {len(events) / received:,.0f} events/s")
    print(f"calls:  {pipeline.sink.stored} stored in {stored:.2f} s → "
          f"{pipeline.sink.stored / stored:,.0f} calls/s (one transaction per call)")  # fmt: skip
    print(f"count in = count out: {expected} generated, {listener.calls_finished} tracked, "
          f"{pipeline.sink.stored} stored")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=2)
    parser.add_argument("--database", default=None, help="default: a temporary SQLite file")
    parser.add_argument("--redis", action="store_true", help="also queue jobs (embedded Redis)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database or f"sqlite:///{tmp}/bench.db"
        if args.redis:
            from callcenter.embedded_redis import EmbeddedRedis

            with EmbeddedRedis(Path(tmp) / "redis") as redis_server:
                asyncio.run(run(args.days, url, redis_server.url, Path(tmp)))
        else:
            asyncio.run(run(args.days, url, None, Path(tmp)))


if __name__ == "__main__":
    main()
