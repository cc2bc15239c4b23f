"""stored answers of /v1/responses (previous_response_id, GET and DELETE)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 00:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "model_responses",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("api_key_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("model", sa.String(length=256), nullable=False),
        sa.Column("messages", sa.JSON(), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_model_responses_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_responses")),
    )
    with op.batch_alter_table("model_responses", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_model_responses_created_at"), ["created_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_model_responses_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("model_responses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_model_responses_user_id"))
        batch_op.drop_index(batch_op.f("ix_model_responses_created_at"))
    op.drop_table("model_responses")
