"""status_webhooks and status_webhook_attempts: the PMS's status webhooks (an outbox) and each try

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-10 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "status_webhooks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dedupe_key", sa.String(length=200), nullable=False),
        sa.Column("event_type", sa.String(length=40), nullable=False),
        sa.Column("occurred_at", UTC, nullable=False),
        sa.Column("delivery_id", sa.Integer(), nullable=True),
        sa.Column("flag_id", sa.Integer(), nullable=True),
        sa.Column("event_id", sa.Integer(), nullable=True),
        sa.Column("access_method_id", sa.String(length=100), nullable=False),
        sa.Column("access_grant_id", sa.String(length=100), nullable=True),
        sa.Column("workspace_id", sa.String(length=100), nullable=True),
        sa.Column("space_ids", sa.Text(), nullable=True),
        sa.Column("reservation", sa.String(length=200), nullable=True),
        sa.Column("kind", sa.String(length=40), nullable=True),
        sa.Column("channel", sa.String(length=10), nullable=True),
        sa.Column("status", sa.String(length=40), nullable=True),
        sa.Column("recipient_masked", sa.String(length=200), nullable=True),
        sa.Column("error_code", sa.String(length=100), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTC, nullable=True),
        sa.Column("lease_expires_at", UTC, nullable=True),
        sa.Column("enqueued_at", UTC, nullable=True),
        sa.Column("last_attempt_at", UTC, nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("delivered_at", UTC, nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(
            ["delivery_id"], ["deliveries.id"],
            name=op.f("fk_status_webhooks_delivery_id_deliveries"),
        ),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_status_webhooks_event_id_events")
        ),
        sa.ForeignKeyConstraint(
            ["flag_id"], ["front_desk_flags.id"],
            name=op.f("fk_status_webhooks_flag_id_front_desk_flags"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_status_webhooks")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_status_webhooks_dedupe_key")),
    )  # fmt: skip
    op.create_index(
        "ix_status_webhooks_state_next", "status_webhooks", ["state", "next_attempt_at"]
    )
    op.create_index(
        op.f("ix_status_webhooks_access_method_id"), "status_webhooks", ["access_method_id"]
    )
    op.create_table(
        "status_webhook_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("webhook_id", sa.Integer(), nullable=False),
        sa.Column("attempted_at", UTC, nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["webhook_id"], ["status_webhooks.id"],
            name=op.f("fk_status_webhook_attempts_webhook_id_status_webhooks"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_status_webhook_attempts")),
    )  # fmt: skip
    op.create_index(
        op.f("ix_status_webhook_attempts_webhook_id"), "status_webhook_attempts", ["webhook_id"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_status_webhook_attempts_webhook_id"), "status_webhook_attempts")
    op.drop_table("status_webhook_attempts")
    op.drop_index(op.f("ix_status_webhooks_access_method_id"), "status_webhooks")
    op.drop_index("ix_status_webhooks_state_next", "status_webhooks")
    op.drop_table("status_webhooks")
