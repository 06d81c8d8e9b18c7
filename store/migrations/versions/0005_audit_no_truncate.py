"""The audit trail refuses TRUNCATE as well on PostgreSQL, which skips the row triggers of 0001 (DELETE and UPDATE).

SQLite has no TRUNCATE: its `DELETE FROM` without a WHERE still fires 0001's trigger.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 01:40:00
"""
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # 0001's function raises "audit_event is append-only"; a statement-level trigger may call it too.
        op.execute("CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_event "
                   "FOR EACH STATEMENT EXECUTE FUNCTION audit_event_append_only()")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_event_no_truncate ON audit_event")
