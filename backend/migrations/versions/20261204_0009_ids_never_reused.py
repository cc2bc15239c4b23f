"""ids that identify an owner are never reused (SQLite AUTOINCREMENT)

SQLite gives a new row the largest rowid + 1, so after the newest account (or key, channel …) was
deleted, the next one got its id — and with it the old one's call logs and statistics. These
tables are rebuilt as AUTOINCREMENT, and each table's counter starts past every id still in use
anywhere (call logs and statistics keep the ids of deleted rows). PostgreSQL's sequences never go
back: nothing to do there.

The app runs SQLite migrations with foreign keys off (a rebuilt table is dropped and renamed, and
with foreign keys on, dropping `users` would delete every row that points at it) and checks them
afterwards (`app.core.migrate`).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 19:00:00.000000
"""

from collections.abc import Sequence

from alembic import op
from sqlalchemy import text

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Each table, and where its ids are also kept (also after its rows are deleted).
REFERENCES: dict[str, tuple[str, ...]] = {
    "users": (
        "SELECT max(user_id) FROM call_logs",
        "SELECT max(CAST(value AS INTEGER)) FROM usage_daily WHERE dim = 'user'",
        "SELECT max(changed_by_id) FROM runtime_setting_changes",
        "SELECT max(updated_by_id) FROM runtime_settings",
        "SELECT max(created_by_id) FROM ip_rules",
    ),
    "api_keys": (
        "SELECT max(api_key_id) FROM call_logs",
        "SELECT max(CAST(value AS INTEGER)) FROM usage_daily WHERE dim = 'key'",
    ),
    "channels": (
        "SELECT max(channel_id) FROM call_logs",
        "SELECT max(channel_id) FROM messages",
        "SELECT max(channel_id) FROM latency_daily",
        "SELECT max(CAST(value AS INTEGER)) FROM usage_daily WHERE dim = 'channel'",
    ),
    "agents": ("SELECT max(agent_id) FROM conversations",),
    "conversations": ("SELECT max(conversation_id) FROM messages",),
    "messages": (),
    "ip_rules": ("SELECT max(rule_id) FROM blocked_attempts",),
}


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    for table in REFERENCES:
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_autoincrement": True}
        ):
            pass
    for table, queries in REFERENCES.items():
        used = [bind.execute(text(f"SELECT max(id) FROM {table}")).scalar()]  # noqa: S608
        used += [bind.execute(text(query)).scalar() for query in queries]
        highest = max((int(value) for value in used if value is not None), default=0)
        bind.execute(text("DELETE FROM sqlite_sequence WHERE name = :name"), {"name": table})
        bind.execute(
            text("INSERT INTO sqlite_sequence (name, seq) VALUES (:name, :seq)"),
            {"name": table, "seq": highest},
        )


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    for table in REFERENCES:
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_autoincrement": False}
        ):
            pass
