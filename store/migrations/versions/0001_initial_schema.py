"""Initial schema: patients, sessions, side effects, check-ins, revisions, users, audit, alert reviews.

The audit trail is made append-only by triggers, so no code path can rewrite history.

Revision ID: 0001
Revises: 
Create Date: 2026-11-22 02:44:10.566265
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import store.types


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('app_setting',
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('value', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_table('app_user',
    sa.Column('username', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('display_name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('role', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('password_hash', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('disabled', sa.Boolean(), nullable=False),
    sa.Column('failed_attempts', sa.Integer(), nullable=False),
    sa.Column('locked_until', store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_sign_in_at', store.types.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("role IN ('admin', 'clinician', 'reviewer')", name='ck_user_role'),
    sa.PrimaryKeyConstraint('username')
    )
    op.create_table('audit_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('actor', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('action', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('entity', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('entity_key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('patient_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_event_action'), ['action'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_event_actor'), ['actor'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_event_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_event_patient_id'), ['patient_id'], unique=False)

    op.create_table('patient',
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('recorded_at', store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('recorded_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('amended_at', store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('amended_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('amendment_reason', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('voided_at', store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('voided_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('void_reason', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('patient_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('display_name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('birth_year', sa.Integer(), nullable=True),
    sa.Column('sex', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
    sa.Column('indication', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('sud_history', sa.Boolean(), nullable=False),
    sa.Column('treatment_start', sa.Date(), nullable=False),
    sa.Column('planned_dose_mg_per_kg', sa.Float(), nullable=True),
    sa.Column('planned_interval_days', sa.Integer(), nullable=True),
    sa.Column('clinician', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.CheckConstraint("indication IN ('depression', 'bipolar_depression', 'ptsd', 'ocd', 'anxiety', 'chronic_pain', 'substance_use_disorder', 'other')", name='ck_patient_indication'),
    sa.CheckConstraint("sex IS NULL OR sex IN ('female', 'male', 'other', 'unknown')", name='ck_patient_sex'),
    sa.CheckConstraint("status IN ('active', 'paused', 'discharged')", name='ck_patient_status'),
    sa.CheckConstraint('birth_year IS NULL OR (birth_year >= 1900 AND birth_year <= 2200)', name='ck_patient_birth_year'),
    sa.CheckConstraint('planned_dose_mg_per_kg IS NULL OR (planned_dose_mg_per_kg >= 0.05 AND planned_dose_mg_per_kg <= 5)', name='ck_patient_planned_dose'),
    sa.CheckConstraint('planned_interval_days IS NULL OR (planned_interval_days >= 1 AND planned_interval_days <= 180)', name='ck_patient_planned_interval'),
    sa.PrimaryKeyConstraint('patient_id')
    )
    with op.batch_alter_table('patient', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_patient_clinician'), ['clinician'], unique=False)
        batch_op.create_index(batch_op.f('ix_patient_status'), ['status'], unique=False)

    op.create_table('record_revision',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('record_type', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('record_key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('changed_at', store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('changed_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('change', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.CheckConstraint("change IN ('amend', 'void')", name='ck_revision_change'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('record_revision', schema=None) as batch_op:
        batch_op.create_index('ix_revision_record', ['record_type', 'record_key', 'version'], unique=False)

    op.create_table('alert_review',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.String(length=64), nullable=False),
    sa.Column('reviewed_at', store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('reviewed_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('level', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('reasons', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('action', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('note', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.CheckConstraint("action IN ('discussed_with_patient', 'dose_held', 'interval_extended', 'dose_reduced', 'referred_to_addiction_service', 'treatment_paused', 'no_action_needed', 'other')", name='ck_review_action'),
    sa.CheckConstraint("level IN ('green', 'amber', 'red')", name='ck_review_level'),
    sa.ForeignKeyConstraint(['patient_id'], ['patient.patient_id'], onupdate='CASCADE', ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('alert_review', schema=None) as batch_op:
        batch_op.create_index('ix_review_patient_time', ['patient_id', 'reviewed_at'], unique=False)

    op.create_table('check_in',
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('recorded_at', store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('recorded_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('amended_at', store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('amended_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('amendment_reason', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('voided_at', store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('voided_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('void_reason', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.String(length=64), nullable=False),
    sa.Column('reported_at', store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('craving', sa.Integer(), nullable=False),
    sa.Column('sds_1', sa.Integer(), nullable=True),
    sa.Column('sds_2', sa.Integer(), nullable=True),
    sa.Column('sds_3', sa.Integer(), nullable=True),
    sa.Column('sds_4', sa.Integer(), nullable=True),
    sa.Column('sds_5', sa.Integer(), nullable=True),
    sa.Column('secrecy', sa.Integer(), nullable=True),
    sa.Column('social_withdrawal', sa.Integer(), nullable=True),
    sa.Column('neglected_responsibilities', sa.Integer(), nullable=True),
    sa.Column('irritable_when_not_using', sa.Integer(), nullable=True),
    sa.Column('appetite_change', sa.Integer(), nullable=True),
    sa.Column('sleep_disturbance', sa.Integer(), nullable=True),
    sa.Column('coordination_problems', sa.Integer(), nullable=True),
    sa.Column('dissociation_outside_sessions', sa.Integer(), nullable=True),
    sa.Column('tolerance', sa.Integer(), nullable=True),
    sa.Column('recreational_seeking', sa.Integer(), nullable=True),
    sa.Column('other_substance_use', sa.Integer(), nullable=True),
    sa.Column('non_prescribed_use', sa.Integer(), nullable=True),
    sa.Column('phq9', sa.Integer(), nullable=True),
    sa.Column('notes', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.CheckConstraint('(sds_1 IS NULL AND sds_2 IS NULL AND sds_3 IS NULL AND sds_4 IS NULL AND sds_5 IS NULL) OR (sds_1 IS NOT NULL AND sds_2 IS NOT NULL AND sds_3 IS NOT NULL AND sds_4 IS NOT NULL AND sds_5 IS NOT NULL)', name='ck_checkin_sds_complete'),
    sa.CheckConstraint('appetite_change IS NULL OR (appetite_change >= 0 AND appetite_change <= 3)', name='ck_checkin_appetite_change'),
    sa.CheckConstraint('coordination_problems IS NULL OR (coordination_problems >= 0 AND coordination_problems <= 3)', name='ck_checkin_coordination_problems'),
    sa.CheckConstraint('craving >= 0 AND craving <= 10', name='ck_checkin_craving'),
    sa.CheckConstraint('dissociation_outside_sessions IS NULL OR (dissociation_outside_sessions >= 0 AND dissociation_outside_sessions <= 3)', name='ck_checkin_dissociation_outside_sessions'),
    sa.CheckConstraint('irritable_when_not_using IS NULL OR (irritable_when_not_using >= 0 AND irritable_when_not_using <= 3)', name='ck_checkin_irritable_when_not_using'),
    sa.CheckConstraint('neglected_responsibilities IS NULL OR (neglected_responsibilities >= 0 AND neglected_responsibilities <= 3)', name='ck_checkin_neglected_responsibilities'),
    sa.CheckConstraint('non_prescribed_use IS NULL OR (non_prescribed_use >= 0 AND non_prescribed_use <= 3)', name='ck_checkin_non_prescribed_use'),
    sa.CheckConstraint('other_substance_use IS NULL OR (other_substance_use >= 0 AND other_substance_use <= 3)', name='ck_checkin_other_substance_use'),
    sa.CheckConstraint('phq9 IS NULL OR (phq9 >= 0 AND phq9 <= 27)', name='ck_checkin_phq9'),
    sa.CheckConstraint('recreational_seeking IS NULL OR (recreational_seeking >= 0 AND recreational_seeking <= 3)', name='ck_checkin_recreational_seeking'),
    sa.CheckConstraint('sds_1 IS NULL OR (sds_1 >= 0 AND sds_1 <= 3)', name='ck_checkin_sds_1'),
    sa.CheckConstraint('sds_2 IS NULL OR (sds_2 >= 0 AND sds_2 <= 3)', name='ck_checkin_sds_2'),
    sa.CheckConstraint('sds_3 IS NULL OR (sds_3 >= 0 AND sds_3 <= 3)', name='ck_checkin_sds_3'),
    sa.CheckConstraint('sds_4 IS NULL OR (sds_4 >= 0 AND sds_4 <= 3)', name='ck_checkin_sds_4'),
    sa.CheckConstraint('sds_5 IS NULL OR (sds_5 >= 0 AND sds_5 <= 3)', name='ck_checkin_sds_5'),
    sa.CheckConstraint('secrecy IS NULL OR (secrecy >= 0 AND secrecy <= 3)', name='ck_checkin_secrecy'),
    sa.CheckConstraint('sleep_disturbance IS NULL OR (sleep_disturbance >= 0 AND sleep_disturbance <= 3)', name='ck_checkin_sleep_disturbance'),
    sa.CheckConstraint('social_withdrawal IS NULL OR (social_withdrawal >= 0 AND social_withdrawal <= 3)', name='ck_checkin_social_withdrawal'),
    sa.CheckConstraint('tolerance IS NULL OR (tolerance >= 0 AND tolerance <= 3)', name='ck_checkin_tolerance'),
    sa.ForeignKeyConstraint(['patient_id'], ['patient.patient_id'], onupdate='CASCADE', ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('check_in', schema=None) as batch_op:
        batch_op.create_index('ix_checkin_patient_time', ['patient_id', 'reported_at'], unique=False)
        batch_op.create_index('uq_checkin_patient_time_live', ['patient_id', 'reported_at'], unique=True, sqlite_where=sa.text('voided_at IS NULL'), postgresql_where=sa.text('voided_at IS NULL'))

    op.create_table('infusion_session',
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('recorded_at', store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('recorded_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('amended_at', store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('amended_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('amendment_reason', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('voided_at', store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('voided_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('void_reason', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.String(length=64), nullable=False),
    sa.Column('session_at', store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('route', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('dose_mg', sa.Float(), nullable=False),
    sa.Column('weight_kg', sa.Float(), nullable=True),
    sa.Column('duration_min', sa.Integer(), nullable=True),
    sa.Column('early_request', sa.Boolean(), nullable=True),
    sa.Column('dose_increase_request', sa.Boolean(), nullable=True),
    sa.Column('sbp_pre', sa.Integer(), nullable=True),
    sa.Column('dbp_pre', sa.Integer(), nullable=True),
    sa.Column('sbp_post', sa.Integer(), nullable=True),
    sa.Column('dbp_post', sa.Integer(), nullable=True),
    sa.Column('hr_pre', sa.Integer(), nullable=True),
    sa.Column('hr_post', sa.Integer(), nullable=True),
    sa.Column('spo2_pre', sa.Integer(), nullable=True),
    sa.Column('spo2_post', sa.Integer(), nullable=True),
    sa.Column('dissociation_cadss', sa.Integer(), nullable=True),
    sa.Column('notes', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.CheckConstraint("route IN ('iv', 'im', 'intranasal', 'oral', 'sublingual')", name='ck_session_route'),
    sa.CheckConstraint('dbp_post IS NULL OR (dbp_post >= 40 AND dbp_post <= 300)', name='ck_session_dbp_post'),
    sa.CheckConstraint('dbp_post IS NULL OR sbp_post IS NULL OR dbp_post < sbp_post', name='ck_session_bp_post'),
    sa.CheckConstraint('dbp_pre IS NULL OR (dbp_pre >= 40 AND dbp_pre <= 300)', name='ck_session_dbp_pre'),
    sa.CheckConstraint('dbp_pre IS NULL OR sbp_pre IS NULL OR dbp_pre < sbp_pre', name='ck_session_bp_pre'),
    sa.CheckConstraint('dissociation_cadss IS NULL OR (dissociation_cadss >= 0 AND dissociation_cadss <= 92)', name='ck_session_cadss'),
    sa.CheckConstraint('dose_mg > 0 AND dose_mg <= 1000', name='ck_session_dose'),
    sa.CheckConstraint('duration_min IS NULL OR (duration_min >= 1 AND duration_min <= 1440)', name='ck_session_duration'),
    sa.CheckConstraint('hr_post IS NULL OR (hr_post >= 20 AND hr_post <= 250)', name='ck_session_hr_post'),
    sa.CheckConstraint('hr_pre IS NULL OR (hr_pre >= 20 AND hr_pre <= 250)', name='ck_session_hr_pre'),
    sa.CheckConstraint('sbp_post IS NULL OR (sbp_post >= 40 AND sbp_post <= 300)', name='ck_session_sbp_post'),
    sa.CheckConstraint('sbp_pre IS NULL OR (sbp_pre >= 40 AND sbp_pre <= 300)', name='ck_session_sbp_pre'),
    sa.CheckConstraint('spo2_post IS NULL OR (spo2_post >= 50 AND spo2_post <= 100)', name='ck_session_spo2_post'),
    sa.CheckConstraint('spo2_pre IS NULL OR (spo2_pre >= 50 AND spo2_pre <= 100)', name='ck_session_spo2_pre'),
    sa.CheckConstraint('weight_kg IS NULL OR (weight_kg >= 20 AND weight_kg <= 350)', name='ck_session_weight'),
    sa.ForeignKeyConstraint(['patient_id'], ['patient.patient_id'], onupdate='CASCADE', ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('infusion_session', schema=None) as batch_op:
        batch_op.create_index('ix_session_patient_time', ['patient_id', 'session_at'], unique=False)
        batch_op.create_index('uq_session_patient_time_live', ['patient_id', 'session_at'], unique=True, sqlite_where=sa.text('voided_at IS NULL'), postgresql_where=sa.text('voided_at IS NULL'))

    op.create_table('side_effect_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('session_id', sa.Integer(), nullable=False),
    sa.Column('effect', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('severity', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('superseded_at', store.types.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("severity IN ('mild', 'moderate', 'severe')", name='ck_side_effect_severity'),
    sa.ForeignKeyConstraint(['session_id'], ['infusion_session.id'], ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('side_effect_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_side_effect_event_session_id'), ['session_id'], unique=False)



    _make_audit_append_only()


APPEND_ONLY_MESSAGE = "audit_event is append-only"


def _make_audit_append_only() -> None:
    """Reject UPDATE and DELETE on audit_event at the database, whatever the client."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"""
            CREATE FUNCTION audit_event_append_only() RETURNS trigger AS $$
            BEGIN
                RAISE EXCEPTION '{APPEND_ONLY_MESSAGE}';
            END;
            $$ LANGUAGE plpgsql
            """
        )
        op.execute(
            "CREATE TRIGGER audit_event_no_change BEFORE UPDATE OR DELETE ON audit_event "
            "FOR EACH ROW EXECUTE FUNCTION audit_event_append_only()"
        )
    else:
        for event in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_event_no_{event.lower()} BEFORE {event} ON audit_event "
                f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END"
            )


def _drop_audit_append_only() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_event_no_change ON audit_event")
        op.execute("DROP FUNCTION IF EXISTS audit_event_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_event_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_event_no_delete")


def downgrade() -> None:
    _drop_audit_append_only()
    op.drop_table('app_setting')
    with op.batch_alter_table('side_effect_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_side_effect_event_session_id'))

    op.drop_table('side_effect_event')
    with op.batch_alter_table('infusion_session', schema=None) as batch_op:
        batch_op.drop_index('uq_session_patient_time_live', sqlite_where=sa.text('voided_at IS NULL'), postgresql_where=sa.text('voided_at IS NULL'))
        batch_op.drop_index('ix_session_patient_time')

    op.drop_table('infusion_session')
    with op.batch_alter_table('check_in', schema=None) as batch_op:
        batch_op.drop_index('uq_checkin_patient_time_live', sqlite_where=sa.text('voided_at IS NULL'), postgresql_where=sa.text('voided_at IS NULL'))
        batch_op.drop_index('ix_checkin_patient_time')

    op.drop_table('check_in')
    with op.batch_alter_table('alert_review', schema=None) as batch_op:
        batch_op.drop_index('ix_review_patient_time')

    op.drop_table('alert_review')
    with op.batch_alter_table('record_revision', schema=None) as batch_op:
        batch_op.drop_index('ix_revision_record')

    op.drop_table('record_revision')
    with op.batch_alter_table('patient', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_patient_status'))
        batch_op.drop_index(batch_op.f('ix_patient_clinician'))

    op.drop_table('patient')
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_event_patient_id'))
        batch_op.drop_index(batch_op.f('ix_audit_event_at'))
        batch_op.drop_index(batch_op.f('ix_audit_event_actor'))
        batch_op.drop_index(batch_op.f('ix_audit_event_action'))

    op.drop_table('audit_event')
    op.drop_table('app_user')
