"""initial ledger

Revision ID: 0001
Revises:
Create Date: 2026-11-23 18:01:47.859363
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("svix_id", sa.String(length=100), nullable=True),
        sa.Column("seam_event_id", sa.String(length=100), nullable=True),
        sa.Column("event_type", sa.String(length=100), nullable=True),
        sa.Column("workspace_id", sa.String(length=100), nullable=True),
        sa.Column("access_method_id", sa.String(length=100), nullable=True),
        sa.Column("access_grant_ids", sa.JSON(), nullable=False),
        sa.Column("is_backup_code", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("occurred_at", sa.String(length=40), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
        sa.UniqueConstraint("seam_event_id", name=op.f("uq_events_seam_event_id")),
        sa.UniqueConstraint("svix_id", name=op.f("uq_events_svix_id")),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_events_access_method_id"), ["access_method_id"], unique=False
        )

    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=True),
        sa.Column("access_method_id", sa.String(length=100), nullable=False),
        sa.Column("access_grant_id", sa.String(length=100), nullable=True),
        sa.Column("user_identity_id", sa.String(length=100), nullable=True),
        sa.Column("guest_name", sa.String(length=200), nullable=True),
        sa.Column("reservation", sa.String(length=200), nullable=True),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("credential_fingerprint", sa.String(length=100), nullable=False),
        sa.Column("destination_masked", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("provider_message_id", sa.String(length=200), nullable=True),
        sa.Column("error_code", sa.String(length=100), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_deliveries_event_id_events")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deliveries")),
        sa.UniqueConstraint(
            "access_method_id",
            "kind",
            "credential_fingerprint",
            "channel",
            name="uq_deliveries_one_per_credential_channel",
        ),
    )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_deliveries_access_method_id"), ["access_method_id"], unique=False
        )
        batch_op.create_index(
            "ix_deliveries_status_created", ["status", "created_at"], unique=False
        )

    op.create_table(
        "front_desk_flags",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("access_method_id", sa.String(length=100), nullable=False),
        sa.Column("access_grant_id", sa.String(length=100), nullable=True),
        sa.Column("guest_name", sa.String(length=200), nullable=True),
        sa.Column("reason", sa.String(length=60), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("opened_by_event_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["opened_by_event_id"],
            ["events.id"],
            name=op.f("fk_front_desk_flags_opened_by_event_id_events"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_front_desk_flags")),
    )
    with op.batch_alter_table("front_desk_flags", schema=None) as batch_op:
        batch_op.create_index(
            "uq_front_desk_flags_open_per_access_method",
            ["access_method_id"],
            unique=True,
            sqlite_where=sa.text("status = 'open'"),
            postgresql_where=sa.text("status = 'open'"),
        )

    op.create_table(
        "attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("delivery_id", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("provider", sa.String(length=20), nullable=False),
        sa.Column("provider_message_id", sa.String(length=200), nullable=True),
        sa.Column("error_code", sa.String(length=100), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["delivery_id"], ["deliveries.id"], name=op.f("fk_attempts_delivery_id_deliveries")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attempts")),
    )
    with op.batch_alter_table("attempts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_attempts_delivery_id"), ["delivery_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("attempts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_attempts_delivery_id"))

    op.drop_table("attempts")
    with op.batch_alter_table("front_desk_flags", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_front_desk_flags_open_per_access_method",
            sqlite_where=sa.text("status = 'open'"),
            postgresql_where=sa.text("status = 'open'"),
        )

    op.drop_table("front_desk_flags")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_status_created")
        batch_op.drop_index(batch_op.f("ix_deliveries_access_method_id"))

    op.drop_table("deliveries")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_events_access_method_id"))

    op.drop_table("events")
