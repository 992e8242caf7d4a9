"""Receive path: bytes from the socket → event dicts. Ours vs panoramisk's stock protocol.

Both protocols get the same bytes (a generated duty day of real-shaped Asterisk 20 traffic,
encoded as AMI text, with Chinese caller names) fed in 64 KiB chunks, in one run, side by
side; each side's factory only counts the events it is handed. Prints MB/s and events/s for
both and the ratio (target: ours ≥ 2×).

    python bench/bench_receive.py [--days N] [--repeat R]
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from panoramisk.ami_protocol import AMIProtocol

from callcenter.ami.generator import generate_day
from callcenter.ami.listener import FastAmiProtocol
from callcenter.ami.replay_server import encode_message

CHUNK = 64 * 1024


class _Transport:
    def write(self, data: bytes) -> None:
        pass

    def close(self) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


class _StockFactory:
    def __init__(self) -> None:
        self.events = 0
        self.save_stream = None

    def dispatch(self, message: Any) -> None:
        self.events += 1


class _OurFactory:
    def __init__(self) -> None:
        self.events = 0

    def raw_event(self, message: dict[str, str]) -> None:
        self.events += 1


def build_stream(days: int) -> tuple[bytes, int]:
    parts = [b"Asterisk Call Manager/9.0.0\r\n"]
    count = 0
    for day in range(days):
        start = datetime(2026, 11, 1 + day, tzinfo=UTC)
        events, _ = generate_day(seed=day + 1, start=start)
        for event in events:
            if event.get("Event") == "Newchannel" and count % 7 == 0:
                event = {**event, "CallerIDName": "市应急管理局值班室"}
            parts.append(encode_message(event))
            count += 1
    return b"".join(parts), count


def run_stock(data: bytes) -> int:
    protocol = AMIProtocol()
    protocol.connection_made(_Transport())
    factory = _StockFactory()
    protocol.factory = factory
    protocol.encoding = "utf8"
    for i in range(0, len(data), CHUNK):
        protocol.data_received(data[i : i + CHUNK])
    return factory.events


def run_ours(data: bytes) -> int:
    protocol = FastAmiProtocol()
    protocol.connection_made(_Transport())
    factory = _OurFactory()
    protocol.factory = factory
    for i in range(0, len(data), CHUNK):
        protocol.data_received(data[i : i + CHUNK])
    return factory.events


def best_of(repeat: int, func: Callable[[bytes], int], data: bytes) -> tuple[float, int]:
    best, events = float("inf"), 0
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        events = func(data)
        best = min(best, time.perf_counter() - start)
    return best, events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    data, count = build_stream(args.days)
    mb = len(data) / 1e6
    print(f"stream: {mb:.1f} MB, {count} events, fed in {CHUNK // 1024} KiB chunks")
    run_ours(data[: CHUNK * 4])  # warm-up, both sides
    run_stock(data[: CHUNK * 4])
    ours, ours_events = best_of(args.repeat, run_ours, data)
    stock, stock_events = best_of(args.repeat, run_stock, data)
    print(f"ours (FastAmiProtocol):  {mb / ours:7.1f} MB/s  {ours_events / ours:10.0f} events/s"
          f"  ({ours_events} events)")  # fmt: skip
    print(f"panoramisk AMIProtocol:  {mb / stock:7.1f} MB/s  {stock_events / stock:10.0f} events/s"
          f"  ({stock_events} events)")  # fmt: skip
    print(f"ratio ours/stock: {stock / ours:.2f}x (target >= 2x)")
    if ours_events != count:
        print(f"WARNING: ours delivered {ours_events} of {count} events")


if __name__ == "__main__":
    main()
