"""budgets per user and per API key, prepaid balances, their audit trail, redemption codes

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05 04:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ALTER TABLE ADD COLUMN: rebuilding users and api_keys on SQLite would lose their
    # AUTOINCREMENT (migration 0009).
    for table in ("users", "api_keys"):
        op.add_column(table, sa.Column("budget_nano", sa.BigInteger(), nullable=True))
        op.add_column(table, sa.Column("budget_period", sa.String(length=8), nullable=True))
    op.add_column("users", sa.Column("balance_nano", sa.BigInteger(), nullable=True))
    op.add_column("model_prices", sa.Column("max_output_tokens", sa.Integer(), nullable=True))
    op.create_table(
        "balance_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("amount_nano", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("note", sa.String(length=255), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("code_id", sa.Integer(), nullable=True),
        sa.Column("balance_after_nano", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_balance_entries_user_id", "balance_entries", ["user_id"])
    op.create_index("ix_balance_entries_created_at", "balance_entries", ["created_at"])
    op.create_table(
        "redemption_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("hint", sa.String(length=8), nullable=False),
        sa.Column("amount_nano", sa.BigInteger(), nullable=False),
        sa.Column("batch", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("redeemed_by_id", sa.Integer(), nullable=True),
        sa.Column("redeemed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code_hash"),
    )
    op.create_index("ix_redemption_codes_batch", "redemption_codes", ["batch"])
    op.create_table(
        "spend_alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subject", sa.String(length=32), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("subject", "period", "level"),
    )


def downgrade() -> None:
    with op.batch_alter_table("model_prices") as batch_op:
        batch_op.drop_column("max_output_tokens")
    op.drop_table("spend_alerts")
    op.drop_index("ix_redemption_codes_batch", table_name="redemption_codes")
    op.drop_table("redemption_codes")
    op.drop_index("ix_balance_entries_created_at", table_name="balance_entries")
    op.drop_index("ix_balance_entries_user_id", table_name="balance_entries")
    op.drop_table("balance_entries")
    autoincrement = {"sqlite_autoincrement": True}
    with op.batch_alter_table("users", table_kwargs=autoincrement) as batch_op:
        batch_op.drop_column("balance_nano")
        batch_op.drop_column("budget_period")
        batch_op.drop_column("budget_nano")
    with op.batch_alter_table("api_keys", table_kwargs=autoincrement) as batch_op:
        batch_op.drop_column("budget_period")
        batch_op.drop_column("budget_nano")
