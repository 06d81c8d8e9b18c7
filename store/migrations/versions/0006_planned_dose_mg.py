"""A patient's planned dose in mg, for fixed-dose routes (intranasal esketamine 56 or 84 mg), beside the mg/kg plan.

Without it a planned esketamine titration from 56 to 84 mg read as a dose above the patient's own first
doses, and with one request for more it made red (clinician's browser pass, 2026-11-30).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 22:20:00
"""
from alembic import op
import sqlalchemy as sa

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


CHECK = 'planned_dose_mg IS NULL OR (planned_dose_mg >= 1 AND planned_dose_mg <= 1000)'


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # SQLite takes a CHECK with ADD COLUMN; a batch rebuild of `patient`, which every record refers to, would not
        # be needed for it.
        op.execute(f"ALTER TABLE patient ADD COLUMN planned_dose_mg FLOAT "
                   f"CONSTRAINT ck_patient_planned_dose_mg CHECK ({CHECK})")
    else:
        op.add_column('patient', sa.Column('planned_dose_mg', sa.Float(), nullable=True))
        op.create_check_constraint('ck_patient_planned_dose_mg', 'patient', CHECK)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # A batch rebuild drops `patient`, which the foreign keys of every record refuse once there are records
        # (code review); SQLite (3.35+) drops a column whose CHECK is its own.
        op.execute("ALTER TABLE patient DROP COLUMN planned_dose_mg")
    else:
        op.drop_constraint('ck_patient_planned_dose_mg', 'patient', type_='check')
        op.drop_column('patient', 'planned_dose_mg')
