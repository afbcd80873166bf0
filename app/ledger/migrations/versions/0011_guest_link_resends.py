"""guest_link_resends: how many times each guest had their key sent again by their own link

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-20 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
# Follows the last revision before it.
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "guest_link_resends",
        sa.Column("stay_key", sa.String(length=210), nullable=False),
        sa.Column("used", sa.Integer(), nullable=False),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("stay_key", name=op.f("pk_guest_link_resends")),
    )


def downgrade() -> None:
    op.drop_table("guest_link_resends")
