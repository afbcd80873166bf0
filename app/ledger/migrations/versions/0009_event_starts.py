"""events: a worker's start at processing one, and the tries that failed other than by an outage

A start (token, started at, lease) is committed before a worker processes an event and cleared
when the try ends; one left behind by a worker that died counts as a failed try (`lost_tries`).
`failed_tries` counts those and the tries that raised, apart from outages (which `attempts` also
counts): an event's existing `attempts` become its failed tries, as they counted before this
revision.

Revision ID: 0009
Revises: 0012
Create Date: 2026-12-10 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
# Follows the last revision before it.
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("failed_tries", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("lost_tries", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("processing_token", sa.String(length=40), nullable=True))
        batch_op.add_column(
            sa.Column("processing_started_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("processing_lease_until", sa.DateTime(timezone=True), nullable=True)
        )
    op.execute("UPDATE events SET failed_tries = attempts")


def downgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_column("processing_lease_until")
        batch_op.drop_column("processing_started_at")
        batch_op.drop_column("processing_token")
        batch_op.drop_column("lost_tries")
        batch_op.drop_column("failed_tries")
