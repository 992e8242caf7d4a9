"""RQ jobs: thin module-level functions that take ids and are safe to run twice."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from functools import cache

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from callcenter.config import load_config
from callcenter.store.db import make_engine, make_session_factory, session_scope
from callcenter.store.models import Call

logger = logging.getLogger(__name__)

EVALUATE_QUEUE = "calls"


@cache
def _sessions(url: str) -> sessionmaker[Session]:
    return make_session_factory(make_engine(url))


def evaluate_call(call_id: int, database_url: str | None = None) -> bool:
    """Evaluate one stored call (the violation rules plug in here); marks it evaluated.

    Idempotent: a call already evaluated is left alone. Returns True when it did the work.
    """
    url = database_url or load_config().database.url
    with session_scope(_sessions(url)) as session:
        done = session.execute(
            update(Call)
            .where(Call.id == call_id, Call.evaluated_at.is_(None))
            .values(evaluated_at=datetime.now(UTC))
        )
        return bool(done.rowcount)  # type: ignore[attr-defined]
