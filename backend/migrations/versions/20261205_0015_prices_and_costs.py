"""prices per model (and per channel), the cost of every call, cost in the daily rollups

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05 03:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "model_prices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=128), nullable=False),
        sa.Column("channel_id", sa.Integer(), nullable=True),
        sa.Column("effective_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("input_micro", sa.BigInteger(), nullable=False),
        sa.Column("cached_input_micro", sa.BigInteger(), nullable=True),
        sa.Column("output_micro", sa.BigInteger(), nullable=False),
        sa.Column("reasoning_micro", sa.BigInteger(), nullable=True),
        sa.Column("call_micro", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["channel_id"], ["channels.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_model_prices_model_channel", "model_prices", ["model", "channel_id"])
    # Plain ALTER TABLE ADD COLUMN (no table rebuild): call_logs can be large.
    op.add_column("call_logs", sa.Column("cost", sa.BigInteger(), nullable=True))
    op.add_column(
        "usage_daily",
        sa.Column("cost", sa.BigInteger(), nullable=False, server_default="0"),
    )
    op.add_column(
        "usage_daily",
        sa.Column("unpriced_calls", sa.Integer(), nullable=False, server_default="0"),
    )


def downgrade() -> None:
    with op.batch_alter_table("usage_daily", schema=None) as batch_op:
        batch_op.drop_column("unpriced_calls")
        batch_op.drop_column("cost")
    with op.batch_alter_table("call_logs", schema=None) as batch_op:
        batch_op.drop_column("cost")
    op.drop_index("ix_model_prices_model_channel", table_name="model_prices")
    op.drop_table("model_prices")
