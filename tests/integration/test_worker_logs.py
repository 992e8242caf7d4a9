"""The worker's log names jobs by id, never by their arguments (database URL, seed)."""

from __future__ import annotations

import logging
import secrets

import pytest
import redis
from rq import Queue

from callcenter.workers.worker import DutyWorker

# made at run time: no credential-looking literal in the repository
PASSWORD = secrets.token_hex(8)
SECRET_URL = f"postgresql+psycopg://callcenter:{PASSWORD}@db.example/callcenter"


def test_job_arguments_never_reach_the_log(
    redis_client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    queue = Queue("logcheck", connection=redis_client)
    job = queue.enqueue("posixpath.basename", SECRET_URL, job_id="logcheck-1")
    DutyWorker([queue], connection=redis_client).work(burst=True, with_scheduler=False)
    job.refresh()
    assert job.get_status() == "finished"  # the job did run
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "logcheck-1" in text  # named by its id
    assert PASSWORD not in text
