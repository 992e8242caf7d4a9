"""The periodic work is registered on RQ's own CronScheduler, and what it enqueues runs.

(``callcenter worker`` starts :func:`~callcenter.workers.schedules.run_cron` in a child
process; here the same scheduler is built and asked to enqueue, on a real Redis.)
"""

from __future__ import annotations

from typing import Any

import redis
from rq import Queue

from callcenter.config import SpotChecksConfig
from callcenter.workers.jobs import DEVICE_QUEUE
from callcenter.workers.schedules import build_cron
from callcenter.workers.spot_checks import plan_options


def registered(cron: Any) -> dict[str, dict[str, Any]]:
    return {job.func.__name__: dict(job.kwargs) for job in cron.get_jobs()}


def test_sweep_deadlines_and_spot_check_plan_are_registered_with_the_config(
    redis_client: redis.Redis,
) -> None:
    options = plan_options(SpotChecksConfig(per_line=2, seed="s", context="duty-check"))
    cron = build_cron(redis_client, "sqlite:///x.db", spot_checks=options)
    jobs = registered(cron)
    assert set(jobs) == {"sweep_outbox", "check_deadlines", "plan_spot_checks"}
    assert jobs["plan_spot_checks"] == {
        "database_url": "sqlite:///x.db",
        "per_line": 2,
        "seed": "s",
        "context": "duty-check",
        "prompt": "demo-congrats",
        "ring_timeout_seconds": 30.0,
        "pbx": None,
    }
    assert jobs["check_deadlines"] == {"database_url": "sqlite:///x.db"}

    # what the scheduler enqueues lands on the queue the workers serve
    cron.enqueue_jobs()
    queued = {
        job.func_name.rsplit(".", 1)[-1]
        for job in Queue(DEVICE_QUEUE, connection=redis_client).jobs
    }
    assert queued == {"sweep_outbox", "check_deadlines", "plan_spot_checks"}


def test_no_spot_check_plan_when_turned_off(redis_client: redis.Redis) -> None:
    options = plan_options(SpotChecksConfig(per_line=0))
    jobs = registered(build_cron(redis_client, None, spot_checks=options))
    assert set(jobs) == {"sweep_outbox", "check_deadlines"}
