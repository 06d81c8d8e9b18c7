"""When each account's password was last set by a change or a reset, so that sessions signed in before it end.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 20:10:00
"""
from alembic import op
import sqlalchemy as sa
import store.types

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('app_user') as batch:
        batch.add_column(sa.Column('password_changed_at', store.types.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('app_user') as batch:
        batch.drop_column('password_changed_at')
