"""A change counter for PostgreSQL readers: one row, bumped by statement triggers on the clinical tables.

Counting rows to notice a write is a scan on PostgreSQL (milliseconds per page run at a network's
scale); reading one row is not. Statement-level triggers cost one UPDATE per statement, so a COPY
of 100,000 rows bumps it once. SQLite keeps counting rows (cheap there) and has no triggers here.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 10:05:00
"""
from alembic import op
import sqlalchemy as sa

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

#: Every table whose writes change what the dashboard shows.
CLINICAL_TABLES = ("patient", "infusion_session", "side_effect_event", "check_in", "alert_review", "record_revision")


def upgrade() -> None:
    op.create_table(
        'data_change',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('changes', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.execute("INSERT INTO data_change (id, changes) VALUES (1, 0)")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """
            CREATE FUNCTION data_change_bump() RETURNS trigger AS $$
            BEGIN
                UPDATE data_change SET changes = changes + 1 WHERE id = 1;
                RETURN NULL;
            END;
            $$ LANGUAGE plpgsql
            """
        )
        for table in CLINICAL_TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_data_change AFTER INSERT OR UPDATE OR DELETE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION data_change_bump()"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in CLINICAL_TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_data_change ON {table}")
        op.execute("DROP FUNCTION IF EXISTS data_change_bump()")
    op.drop_table('data_change')
