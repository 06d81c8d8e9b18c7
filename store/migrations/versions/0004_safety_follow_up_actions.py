"""Alert reviews may name the steps of a same-day safety response to a PHQ-9 question 9 answer.

The follow-up form offered only the actions of a dependence review (dose held, interval
extended...). This widens the allowed actions (`ck_review_action`) by `SAFETY_FOLLOW_UP_ACTIONS`;
no stored row changes. SQLite cannot alter a CHECK constraint, so there the table is rebuilt from
its full definition, rows, index and foreign key included.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 23:40:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import store.types

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

_BEFORE = ('discussed_with_patient', 'dose_held', 'interval_extended', 'dose_reduced',
           'referred_to_addiction_service', 'treatment_paused', 'no_action_needed', 'other')
# Written out, not imported: a migration keeps meaning what it meant when it was written.
_AFTER = _BEFORE + ('suicide_risk_assessed', 'safety_plan_made', 'referred_to_crisis_team',
                    'emergency_services_called', 'gp_informed')


def _condition(actions: tuple[str, ...]) -> str:
    return "action IN (" + ", ".join(f"'{a}'" for a in actions) + ")"


def _alert_review(actions: tuple[str, ...]) -> sa.Table:
    """The whole table as 0001 made it, with `actions` allowed: what SQLite's rebuild copies into."""
    return sa.Table(
        'alert_review', sa.MetaData(),
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('patient_id', sa.String(length=64), nullable=False),
        sa.Column('reviewed_at', store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column('reviewed_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('level', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column('reasons', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('action', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column('note', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.CheckConstraint(_condition(actions), name='ck_review_action'),
        sa.CheckConstraint("level IN ('green', 'amber', 'red')", name='ck_review_level'),
        sa.ForeignKeyConstraint(['patient_id'], ['patient.patient_id'], onupdate='CASCADE', ondelete='RESTRICT'),
        sa.PrimaryKeyConstraint('id'),
        sa.Index('ix_review_patient_time', 'patient_id', 'reviewed_at'),
    )


def _allow(actions: tuple[str, ...], was: tuple[str, ...]) -> None:
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table('alert_review', recreate='always', copy_from=_alert_review(was)) as batch:
            batch.drop_constraint('ck_review_action', type_='check')
            batch.create_check_constraint('ck_review_action', _condition(actions))
    else:
        op.drop_constraint('ck_review_action', 'alert_review', type_='check')
        op.create_check_constraint('ck_review_action', 'alert_review', _condition(actions))


def upgrade() -> None:
    _allow(_AFTER, _BEFORE)


def downgrade() -> None:
    _allow(_BEFORE, _AFTER)
