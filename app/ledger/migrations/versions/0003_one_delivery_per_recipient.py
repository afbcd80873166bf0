"""one delivery per recipient

An access method shared by several grants owes each guest their own message: the recipient
joins the deliveries' unique key.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 14:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Front-desk messages about the access method as a whole keep "" (see Delivery.recipient).
PER_ACCESS_METHOD = "'front_desk_card', 'front_desk_issue_delayed', 'front_desk_issue_failed'"


def upgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("recipient", sa.String(length=100), nullable=False, server_default="")
        )
    op.execute(
        "UPDATE deliveries SET recipient = user_identity_id "  # noqa: S608
        f"WHERE user_identity_id IS NOT NULL AND kind NOT IN ({PER_ACCESS_METHOD})"
    )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_constraint("uq_deliveries_one_per_credential_channel", type_="unique")
        batch_op.create_unique_constraint(
            "uq_deliveries_one_per_credential_channel_recipient",
            ["access_method_id", "kind", "credential_fingerprint", "channel", "recipient"],
        )


def downgrade() -> None:
    # Two guests' rows of one credential would collide under the old key: the later ones keep
    # their recipient in the fingerprint instead (nothing is deleted).
    op.execute(
        "UPDATE deliveries SET credential_fingerprint = "
        "credential_fingerprint || ':' || recipient WHERE EXISTS (SELECT 1 FROM deliveries e "
        "WHERE e.access_method_id = deliveries.access_method_id AND e.kind = deliveries.kind "
        "AND e.credential_fingerprint = deliveries.credential_fingerprint "
        "AND e.channel = deliveries.channel AND e.id < deliveries.id)"
    )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_constraint(
            "uq_deliveries_one_per_credential_channel_recipient", type_="unique"
        )
        batch_op.create_unique_constraint(
            "uq_deliveries_one_per_credential_channel",
            ["access_method_id", "kind", "credential_fingerprint", "channel"],
        )
        batch_op.drop_column("recipient")
