"""retries leases and fallback

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 18:20:29.198763
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("attempts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("message_fingerprint", sa.String(length=100), nullable=True))
        batch_op.alter_column(
            "finished_at", existing_type=sa.DateTime(timezone=True), nullable=True
        )
        batch_op.alter_column("duration_ms", existing_type=sa.INTEGER(), nullable=True)

    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("retry_deadline", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("enqueued_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("fallback_for_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_deliveries_fallback_for_id_deliveries"),
            "deliveries",
            ["fallback_for_id"],
            ["id"],
        )

    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_events_status_queued", ["status", "queued_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_status_queued")
        batch_op.drop_column("next_attempt_at")
        batch_op.drop_column("attempts")

    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_deliveries_fallback_for_id_deliveries"), type_="foreignkey"
        )
        batch_op.drop_column("fallback_for_id")
        batch_op.drop_column("enqueued_at")
        batch_op.drop_column("lease_expires_at")
        batch_op.drop_column("retry_deadline")
        batch_op.drop_column("next_attempt_at")

    with op.batch_alter_table("attempts", schema=None) as batch_op:
        batch_op.alter_column("duration_ms", existing_type=sa.INTEGER(), nullable=False)
        batch_op.alter_column(
            "finished_at", existing_type=sa.DateTime(timezone=True), nullable=False
        )
        batch_op.drop_column("message_fingerprint")
