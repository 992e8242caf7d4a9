#!/usr/bin/env python
"""End-to-end latency of a call's evaluation: replay server → listener → Redis → RQ workers.

    python bench/bench_latency.py [--rate 100] [--seconds 60] [--workers 2]
                                  [--database URL] [--trivial 1000]

The AMI replay server (a process of its own, standing in for the PBX) plays generated duty
calls (``generate_call``: answered, missed, abandoned, busy, failed, forwarded, ring groups,
queues, spot checks; ring and talk times drawn per call) starting ``--rate`` calls a second
for ``--seconds``, in real time. The live listener (``build_pipeline``/``run_pipeline``: our
AMI protocol, the tracker, the raw archive, a transaction and an RQ job per chunk of calls
that finished together) runs in this process; ``--workers`` worker processes run
``callcenter.workers.worker.run_worker`` (``SimpleWorker``, the RQ scheduler on) on the same
Redis (an embedded one) and database: a temporary SQLite file, or with ``--database`` a
PostgreSQL URL, in which the run gets a schema of its own (dropped afterwards).

Per call: from the moment the replay server sent the call's final ``Hangup`` (its wall
clock) to the end of its evaluation job (RQ's ``ended_at``: after the job's commit; a job
of several calls ends after the last), with RQ's own enqueue→start latency of the same jobs,
measured in the same run, as the baseline, and the path in between: out of the tracker,
handed to the sink by the listener's writer, committed, queued, waited, ran. Count in (calls
generated) = count out (calls evaluated, their jobs found in RQ's registries) is printed.

``--trivial N`` first times N no-op jobs on RQ's ``Worker`` (fork per job), ``SpawnWorker``
and ``SimpleWorker`` on this machine: the reason for the worker class.

A benchmark, not a test: it prints figures. Start it on an idle machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import platform
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from random import Random
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

PBX = "bench"
# The mix of a busy duty line (kind: weight).
MIX = {
    "answered": 60,
    "no_answer": 8,
    "abandoned": 8,
    "busy": 4,
    "failed": 2,
    "forwarded_mobile": 3,
    "ring_group_answered": 7,
    "queue_answered": 6,
    "spot_check": 2,
}
LINES = [
    {"number": "12345", "unit": "bench", "desk_phones": ["SIP/duty1"]},
    {"number": "12346", "unit": "bench", "desk_phones": ["SIP/duty1", "SIP/duty2"]},
    {"number": "12347", "unit": "bench", "desk_phones": ["SIP/duty1", "SIP/duty2"]},
]


# --------------------------------------------------------------------------- the "PBX"


def generate(rate: float, seconds: float, seed: int) -> tuple[list[dict[str, str]], int]:
    """The events of ``rate * seconds`` calls starting ``1/rate`` s apart, in time order."""
    from callcenter.ami.generator import Counters, generate_call

    rng = Random(seed)
    counters = Counters(100)
    start = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    kinds, weights = list(MIX), list(MIX.values())
    keyed: list[tuple[float, int, dict[str, str]]] = []
    count = int(rate * seconds)
    for i in range(count):
        kind = rng.choices(kinds, weights)[0]
        events, _ = generate_call(
            kind,  # type: ignore[arg-type]
            rng=rng,
            start=start + timedelta(seconds=i / rate),
            uniqueid_seq=counters,
            talk_seconds=round(rng.uniform(3, 30), 3),
        )
        keyed.extend((float(e["Timestamp"]), len(keyed), e) for e in events)
    keyed.sort(key=lambda item: (item[0], item[1]))
    return [event for _, _, event in keyed], count


def serve(rate: float, seconds: float, seed: int, secret: str, pipe: Connection) -> None:
    """The replay server's process: play the calls, then report when each final Hangup went."""
    from callcenter.ami.replay_server import AmiReplayServer

    events, expected = generate(rate, seconds, seed)

    hangup_sent: dict[str, float] = {}

    class TimedServer(AmiReplayServer):
        def _play_event(self, out: dict[str, str], at: float) -> bool:
            delivered = super()._play_event(out, at)
            if out.get("Event") == "Hangup":
                hangup_sent[out.get("Linkedid", "")] = time.time()  # the last one wins
            return delivered

    async def main() -> None:
        async with TimedServer(events=events, speed=1.0, shift_to_now=True,
                               secret=secret) as server:  # fmt: skip
            pipe.send(("ready", server.port, expected, len(events)))
            await server.wait_until_finished()
            pipe.send(("done", hangup_sent, server.events_sent, server.events_dropped))

    asyncio.run(main())


# --------------------------------------------------------------------------- workers


def start_workers(redis_url: str, count: int) -> list[subprocess.Popen[bytes]]:
    code = (
        "import logging, sys\n"
        "logging.basicConfig(level=logging.WARNING)\n"
        "from callcenter.workers.worker import run_worker\n"
        "run_worker(sys.argv[1], log_level='WARNING', name=sys.argv[2])\n"
    )
    return [
        subprocess.Popen([sys.executable, "-c", code, redis_url, f"bench-{n}"], cwd=HERE.parent)
        for n in range(count)
    ]


def stop_workers(workers: Sequence[subprocess.Popen[bytes]]) -> None:
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)  # warm shut down: finish the job, then exit
    for worker in workers:
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def trivial_throughput(redis_url: str, n: int) -> None:
    """No-op jobs per second on RQ's three process models, on this machine."""
    from rq import Queue, SimpleWorker, SpawnWorker, Worker

    from callcenter.embedded_redis import connect

    connection = connect(redis_url)
    print(f"RQ worker classes, {n} no-op jobs each (os.getpid), one process:")
    for cls in (Worker, SpawnWorker, SimpleWorker):
        connection.flushdb()
        queue = Queue("trivial", connection=connection)
        queue.enqueue_many([Queue.prepare_data(os.getpid) for _ in range(n)])
        worker = cls([queue], connection=connection)
        began = time.perf_counter()
        worker.work(burst=True, logging_level="WARNING")
        spent = time.perf_counter() - began
        print(f"  {cls.__name__:<13} {n / spent:8.0f} jobs/s  ({spent / n * 1000:.1f} ms per job)")
    connection.flushdb()
    connection.close()


# --------------------------------------------------------------------------- the run


async def run(
    args: argparse.Namespace, redis_url: str, redis_pid: int | None, database_url: str, tmp: Path
) -> None:
    from callcenter.config import load_config
    from callcenter.listen import build_pipeline, run_pipeline
    from callcenter.store.db import make_engine, make_session_factory, session_scope
    from callcenter.store.migrate import upgrade
    from callcenter.store.seed import seed_from_config

    upgrade(database_url)
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    secret = secrets.token_urlsafe(12)  # per run; handed to the server (a spawned process)
    server = context.Process(
        target=serve, args=(args.rate, args.seconds, args.seed, secret, theirs), daemon=True
    )
    server.start()
    print(f"generating {int(args.rate * args.seconds)} calls ...", flush=True)
    _, port, expected, event_count = await asyncio.to_thread(ours.recv)
    config = load_config(env={}, overrides={
        "instance_path": str(tmp / "instance"),
        "database": {"url": database_url},
        "redis": {"url": redis_url},
        "ami": {"pbx": [{"name": PBX, "port": port, "secret": secret}]},
        "lines": LINES,
    })  # fmt: skip
    engine = make_engine(database_url)
    with session_scope(make_session_factory(engine)) as session:
        seed_from_config(session, config)
    workers = start_workers(redis_url, args.workers)
    pipeline = build_pipeline(config, redis_url)
    (listener,) = pipeline.listeners
    clock_the_listener(listener, pipeline.sink)
    stop = asyncio.Event()
    task = asyncio.create_task(run_pipeline(pipeline, stop))
    print(f"playing {event_count} AMI events ({event_count / expected:.0f} per call) of "
          f"{expected} calls at {args.rate:g} calls/s; {args.workers} worker process(es)",
          flush=True)  # fmt: skip
    processes = {
        "replay server (the PBX)": server.pid,
        "listener": os.getpid(),
        "Redis": redis_pid,
    } | {f"worker {n}": w.pid for n, w in enumerate(workers)}
    cpu = CpuMeter({name: pid for name, pid in processes.items() if pid})
    try:
        began = time.perf_counter()
        _, hangup_sent, sent, dropped = await asyncio.to_thread(ours.recv)
        played = time.perf_counter() - began
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            done = await asyncio.to_thread(_evaluated_count, engine)
            if done >= expected or (
                pipeline.sink.stored >= expected and done >= pipeline.sink.stored
            ):
                break
            await asyncio.sleep(0.2)
        usage = cpu.report()
    finally:
        stop.set()
        await task
        stop_workers(workers)
        server.join(timeout=30)
    print(f"played in {played:.1f} s: {sent} events sent, {dropped} dropped; "
          f"listener received {listener.events_received}")  # fmt: skip
    print(usage)
    report(engine, redis_url, expected, hangup_sent, pipeline.sink)
    engine.dispose()


class CpuMeter:
    """CPU time of our processes (``/proc``) and of the whole machine, from now on."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.wall = time.monotonic()
        self.start = {name: _cpu_seconds(pid) for name, pid in pids.items()}
        self.machine = _machine_busy()

    def report(self) -> str:
        wall = time.monotonic() - self.wall
        parts = []
        for name, pid in self.pids.items():
            used = _cpu_seconds(pid) - self.start[name]
            parts.append(f"  {name:<24} {used / wall:5.2f} CPU")
        busy, total = (a - b for a, b in zip(_machine_busy(), self.machine, strict=True))
        cpus = os.cpu_count() or 1
        return (
            f"CPU used over {wall:.0f} s (cores busy on average):\n"
            + "\n".join(parts)
            + f"\n  {'whole machine (all users)':<24} {busy / total * cpus:5.2f} of {cpus} CPU"
        )


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process, its reaped children included."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    ticks = sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def _machine_busy() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def _evaluated_count(engine: Any) -> int:
    from sqlalchemy import func, select

    from callcenter.store.models import Call

    with engine.connect() as connection:
        return int(
            connection.scalar(select(func.count()).where(Call.evaluated_at.is_not(None))) or 0
        )


#: When each call (Linkedid) left the tracker, and when the listener's writer handed it to
#: the sink: the listener's own stages, from outside (``_collect`` is the listener's hook).
FINISHED: dict[str, float] = {}
HANDED: dict[str, float] = {}


def clock_the_listener(listener: Any, sink: Any) -> None:
    collect, calls_finished = listener._collect, sink.calls_finished

    def timed_collect(calls: list[Any]) -> None:
        now = time.time()
        for call in calls:
            FINISHED.setdefault(call.linkedid, now)
        collect(calls)

    async def timed_calls_finished(pbx: str, calls: list[Any]) -> None:
        now = time.time()
        for call in calls:
            HANDED.setdefault(call.linkedid, now)
        await calls_finished(pbx, calls)

    listener._collect = timed_collect
    sink.calls_finished = timed_calls_finished


def report(engine: Any, redis_url: str, expected: int, hangup_sent: dict[str, float],
           sink: Any) -> None:  # fmt: skip
    from sqlalchemy import select

    from callcenter.embedded_redis import connect
    from callcenter.store.models import Call

    with engine.connect() as connection:
        rows = connection.execute(
            select(Call.id, Call.linkedid, Call.created_at, Call.evaluated_at)
        ).all()
    redis_client = connect(redis_url)
    job_of, sizes = _jobs_by_call(redis_client)
    jobs = [job_of.get(r.id) for r in rows]
    stages: dict[str, list[float]] = {k: [] for k in
                                      ("e2e", "stored", "tracked", "handed", "committed",
                                       "queued", "rq_wait", "ran")}  # fmt: skip
    evaluated = 0
    for row, job in zip(rows, jobs, strict=True):
        sent = hangup_sent.get(row.linkedid)
        stored = row.created_at.timestamp()
        if sent is not None:
            stages["stored"].append(stored - sent)
            finished, handed = FINISHED.get(row.linkedid), HANDED.get(row.linkedid)
            if finished is not None and handed is not None:
                stages["tracked"].append(finished - sent)
                stages["handed"].append(handed - finished)
                stages["committed"].append(stored - handed)
        if job is None:
            continue
        enqueued = _epoch(job.enqueued_at)
        stages["queued"].append(enqueued - stored)
        if row.evaluated_at is None or job.ended_at is None:
            continue
        evaluated += 1
        started, ended = _epoch(job.started_at), _epoch(job.ended_at)
        stages["rq_wait"].append(started - enqueued)
        stages["ran"].append(ended - started)
        if sent is not None:
            stages["e2e"].append(ended - sent)
    redis_client.close()

    print()
    print(f"count in  = {expected} calls generated")
    print(f"count out = {evaluated} calls evaluated ({len(rows)} stored, "
          f"{sink.enqueued} queued by the listener)")  # fmt: skip
    print("  OK: no call lost" if evaluated == expected else "  MISMATCH: calls lost")
    print(
        f"evaluation jobs: {len(sizes)} for {sum(sizes)} calls, "
        f"{sum(sizes) / max(len(sizes), 1):.2f} calls per job (largest {max(sizes, default=0)})"
    )
    print()
    print(f"{'latency (ms)':<46} {'p50':>7} {'p90':>7} {'p99':>7} {'max':>7} {'n':>6}")
    labels = {
        "e2e": "end to end: final Hangup sent → job done",
        "stored": "  Hangup sent → call committed by listener",
        "tracked": "    Hangup sent → call out of the tracker",
        "handed": "    tracker → writer hands it to the sink",
        "committed": "    sink → call committed",
        "queued": "  committed → job enqueued",
        "rq_wait": "  RQ enqueue → start (baseline)",
        "ran": "  job start → end (evaluation + commit)",
    }
    for key, label in labels.items():
        values = stages[key]
        if values:
            p50, p90, p99 = _percentiles(values)
            print(f"{label:<46} {p50 * 1000:7.1f} {p90 * 1000:7.1f} {p99 * 1000:7.1f} "
                  f"{max(values) * 1000:7.1f} {len(values):6d}")  # fmt: skip
    e2e, baseline = stages["e2e"], stages["rq_wait"]
    if e2e and baseline:
        (e50, _, e99), (b50, _, b99) = _percentiles(e2e), _percentiles(baseline)
        print(f"\nend to end / RQ's own enqueue→start (same run): p50 {e50 / max(b50, 1e-6):.1f}×, "
              f"p99 {e99 / max(b99, 1e-6):.1f}×")  # fmt: skip
    if e2e:
        p99 = _percentiles(e2e)[2]
        verdict = "met" if p99 < 0.5 else "NOT met"
        print(f"\ntarget p99 < 500 ms end to end: {verdict} ({p99 * 1000:.0f} ms)")


def _jobs_by_call(connection: Any) -> tuple[dict[int, Any], list[int]]:
    """Each call's evaluation job (the last that ran it), from RQ's registries of the
    ``calls`` queue; and the number of calls of every job."""
    from rq import Queue
    from rq.job import Job
    from rq.registry import FailedJobRegistry, FinishedJobRegistry, StartedJobRegistry

    from callcenter.workers.jobs import EVALUATE_QUEUE

    queue = Queue(EVALUATE_QUEUE, connection=connection)
    ids: list[str] = []
    for registry in (FinishedJobRegistry, FailedJobRegistry, StartedJobRegistry):
        ids += registry(queue=queue).get_job_ids()
    ids += queue.get_job_ids()
    job_of: dict[int, Any] = {}
    sizes: list[int] = []
    for job in Job.fetch_many(ids, connection=connection):
        if job is None:
            continue
        arg = job.args[0]
        calls = list(arg) if isinstance(arg, (list, tuple)) else [arg]
        sizes.append(len(calls))
        for call_id in calls:
            known = job_of.get(call_id)
            if known is None or _epoch(known.ended_at) < _epoch(job.ended_at):
                job_of[call_id] = job
    return job_of, sizes


def _epoch(value: datetime | None) -> float:
    if value is None:
        return float("nan")
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


def _percentiles(values: list[float]) -> tuple[float, float, float]:
    if len(values) == 1:
        return values[0], values[0], values[0]
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[49], cuts[89], cuts[98]


@contextlib.contextmanager
def _redis(tmp: Path) -> Iterator[tuple[str, int | None]]:
    from callcenter.embedded_redis import EmbeddedRedis

    with EmbeddedRedis(tmp / "redis", persist=False) as server:
        yield server.url, server.pid


@contextlib.contextmanager
def _schema(base_url: str) -> Iterator[str]:
    """PostgreSQL: a schema of its own for this run in the database of ``base_url`` (the URL
    with ``search_path`` set to it), dropped afterwards."""
    from sqlalchemy import make_url, text

    from callcenter.store.db import make_engine

    name = f"bench_latency_{os.getpid()}"
    engine = make_engine(base_url)
    with engine.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{name}"'))
    url = make_url(base_url).update_query_dict({"options": f"-csearch_path={name}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with engine.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=100.0, help="calls started per second")
    parser.add_argument("--seconds", type=float, default=60.0, help="seconds of calls")
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--database", default=None,
                        help="default: a temporary SQLite file; a PostgreSQL URL: a schema of "
                             "its own in that database, dropped afterwards")  # fmt: skip
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--trivial", type=int, default=0, help="also time N no-op jobs")
    args = parser.parse_args()
    print(f"{platform.python_implementation()} {platform.python_version()}, "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")  # fmt: skip
    with tempfile.TemporaryDirectory() as name, _redis(Path(name)) as (redis_url, redis_pid):
        tmp = Path(name)
        if args.trivial:
            trivial_throughput(redis_url, args.trivial)
            print()
        if args.database and not args.database.startswith("sqlite"):
            with _schema(args.database) as database_url:
                asyncio.run(run(args, redis_url, redis_pid, database_url, tmp))
        else:
            database_url = args.database or f"sqlite:///{tmp}/bench.db"
            asyncio.run(run(args, redis_url, redis_pid, database_url, tmp))


if __name__ == "__main__":
    main()
