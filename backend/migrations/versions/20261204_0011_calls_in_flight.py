"""calls in flight and server instances: a crash leaves a trace of every running call

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 20:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "server_instances",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("lock_path", sa.String(length=1024), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_server_instances")),
    )
    op.create_table(
        "calls_in_flight",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("instance_id", sa.String(length=32), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("row", sa.JSON(), nullable=False),
        sa.Column("reply", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calls_in_flight")),
    )
    with op.batch_alter_table("calls_in_flight", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_calls_in_flight_instance_id"), ["instance_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("calls_in_flight", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_calls_in_flight_instance_id"))
    op.drop_table("calls_in_flight")
    op.drop_table("server_instances")
