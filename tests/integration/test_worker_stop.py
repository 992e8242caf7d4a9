"""A worker stops at once: the thread that listens for RQ's worker commands (shutdown,
stop-job) must not hold up a burst run's end or a warm shutdown.

RQ 3 lets that thread wait up to 60 s per turn, and redis-py 8.2's ``PubSubWorkerThread.stop``
joins it: when the thread had already read its unsubscription before being told to stop, the
worker hung for up to a minute (it made burst runs in the tests take a minute at random).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import redis
from rq import Queue

from callcenter.workers.worker import PUBSUB_WAIT_SECONDS, DutyWorker


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def test_a_worker_stops_at_once_after_its_command_thread_saw_the_unsubscription(
    redis_client: redis.Redis,
) -> None:
    worker = DutyWorker([Queue("calls", connection=redis_client)], connection=redis_client)
    worker.subscribe()
    pubsub = worker.pubsub
    assert pubsub is not None and worker.pubsub_thread is not None
    wait_until(lambda: pubsub.subscribed)
    pubsub.unsubscribe()
    wait_until(lambda: not pubsub.subscribed)  # the thread read the confirmation: the race
    began = time.monotonic()
    worker.unsubscribe()  # what every stopping worker does
    took = time.monotonic() - began
    assert not worker.pubsub_thread.is_alive()
    assert took < PUBSUB_WAIT_SECONDS + 2, f"stopping took {took:.1f} s (RQ's own wait: 60 s)"
