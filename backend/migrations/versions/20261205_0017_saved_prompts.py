"""saved prompts (a user's own, and those an admin publishes to everyone); users' private agents

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05 05:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "saved_prompts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=100), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("shared", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_saved_prompts_user_id", "saved_prompts", ["user_id"])
    op.create_index("ix_saved_prompts_shared", "saved_prompts", ["shared"])
    # Plain ALTER TABLE ADD COLUMN: a rebuild of `agents` on SQLite would lose its AUTOINCREMENT
    # (migration 0009); no foreign key for the same reason (the owner's agents go with them).
    op.add_column("agents", sa.Column("owner_id", sa.Integer(), nullable=True))
    op.create_index("ix_agents_owner_id", "agents", ["owner_id"])


def downgrade() -> None:
    op.drop_index("ix_agents_owner_id", table_name="agents")
    with op.batch_alter_table("agents", table_kwargs={"sqlite_autoincrement": True}) as batch_op:
        batch_op.drop_column("owner_id")
    op.drop_index("ix_saved_prompts_shared", table_name="saved_prompts")
    op.drop_index("ix_saved_prompts_user_id", table_name="saved_prompts")
    op.drop_table("saved_prompts")
