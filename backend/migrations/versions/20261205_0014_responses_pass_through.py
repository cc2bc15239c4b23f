"""Responses API pass-through: channels that speak it; kept responses as Responses items

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 02:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ALTER TABLE ADD COLUMN: a batch rebuild of `channels` on SQLite would lose its
    # AUTOINCREMENT (migration 0009).
    op.add_column(
        "channels",
        sa.Column("responses_api", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column("model_responses", sa.Column("items", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("model_responses", schema=None) as batch_op:
        batch_op.drop_column("items")
    autoincrement = {"sqlite_autoincrement": True}
    with op.batch_alter_table("channels", schema=None, table_kwargs=autoincrement) as batch_op:
        batch_op.drop_column("responses_api")
