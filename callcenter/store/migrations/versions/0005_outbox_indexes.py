"""Partial indexes for the outbox sweep: calls and device events never evaluated

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 15:20:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UNEVALUATED = sa.text("evaluated_at IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.create_index(
            "ix_calls_unevaluated",
            ["created_at"],
            unique=False,
            sqlite_where=_UNEVALUATED,
            postgresql_where=_UNEVALUATED,
        )

    with op.batch_alter_table("device_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_device_events_unevaluated",
            ["created_at"],
            unique=False,
            sqlite_where=_UNEVALUATED,
            postgresql_where=_UNEVALUATED,
        )


def downgrade() -> None:
    with op.batch_alter_table("device_events", schema=None) as batch_op:
        batch_op.drop_index("ix_device_events_unevaluated")

    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_index("ix_calls_unevaluated")
