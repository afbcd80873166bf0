"""deliveries: the Seam workspace and spaces each is for (the console's hotel and scopes)

Deliveries planned before this revision get their event's workspace; their spaces stay unknown
(NULL), so only a scope that names their workspace, or everything, sees them.

Revision ID: 0012
Revises: 0007
Create Date: 2026-12-08 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
# Follows the last revision before it.
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("workspace_id", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("space_ids", sa.Text(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_deliveries_workspace_id"), ["workspace_id"], unique=False
        )
    op.execute(
        "UPDATE deliveries SET workspace_id = "
        "(SELECT events.workspace_id FROM events WHERE events.id = deliveries.event_id) "
        "WHERE event_id IS NOT NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deliveries_workspace_id"))
        batch_op.drop_column("space_ids")
        batch_op.drop_column("workspace_id")
