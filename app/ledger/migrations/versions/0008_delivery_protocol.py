"""delivery protocol: claim tokens, durable follow-ups, the destination each attempt used,
one resend on its way per key, provider reports held until their message id is known

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-08 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# What "on its way" means for the partial unique index on resends (app/ledger/deliveries.py).
_RESEND_ON_ITS_WAY = (
    "status IN ('pending', 'held', 'sending', 'unknown') "
    "AND credential_fingerprint LIKE '%~resend-%'"
)


def upgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claim_token", sa.String(length=32), nullable=True))
        batch_op.add_column(
            sa.Column("follow_up_due_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("planned_destination_masked", sa.String(length=200), nullable=True)
        )
    with op.batch_alter_table("attempts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("destination_masked", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("destination_hash", sa.String(length=64), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_attempts_destination_hash"), ["destination_hash"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_attempts_provider_message_id"), ["provider_message_id"], unique=False
        )
    with op.batch_alter_table("provider_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("provider_message_id", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("held_target", sa.String(length=20), nullable=True))
    # An undelivered delivery's due fallback moves from next_attempt_at to its own column.
    op.execute(
        "UPDATE deliveries SET follow_up_due_at = next_attempt_at, next_attempt_at = NULL "
        "WHERE status = 'undelivered' AND next_attempt_at IS NOT NULL"
    )
    op.execute("UPDATE deliveries SET planned_destination_masked = destination_masked")
    op.create_index(
        "uq_deliveries_one_resend_on_its_way",
        "deliveries",
        ["access_method_id", "kind", "channel", "recipient"],
        unique=True,
        sqlite_where=sa.text(_RESEND_ON_ITS_WAY),
        postgresql_where=sa.text(_RESEND_ON_ITS_WAY),
    )
    op.create_index("ix_deliveries_status_follow_up", "deliveries", ["status", "follow_up_due_at"])


def downgrade() -> None:
    op.drop_index("ix_deliveries_status_follow_up", table_name="deliveries")
    op.drop_index("uq_deliveries_one_resend_on_its_way", table_name="deliveries")
    op.execute(
        "UPDATE deliveries SET next_attempt_at = follow_up_due_at "
        "WHERE status = 'undelivered' AND follow_up_due_at IS NOT NULL"
    )
    with op.batch_alter_table("provider_events", schema=None) as batch_op:
        batch_op.drop_column("held_target")
        batch_op.drop_column("provider_message_id")
    with op.batch_alter_table("attempts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_attempts_provider_message_id"))
        batch_op.drop_index(batch_op.f("ix_attempts_destination_hash"))
        batch_op.drop_column("destination_hash")
        batch_op.drop_column("destination_masked")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_column("planned_destination_masked")
        batch_op.drop_column("follow_up_due_at")
        batch_op.drop_column("claim_token")
