"""One first report per incident (a partial unique index)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 20:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FIRST = sa.text("kind = 'first'")


def upgrade() -> None:
    with op.batch_alter_table("incident_reports", schema=None) as batch_op:
        batch_op.create_index(
            "uq_incident_reports_first",
            ["incident_id"],
            unique=True,
            sqlite_where=_FIRST,
            postgresql_where=_FIRST,
        )


def downgrade() -> None:
    with op.batch_alter_table("incident_reports", schema=None) as batch_op:
        batch_op.drop_index("uq_incident_reports_first")
