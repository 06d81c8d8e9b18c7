"""The tables: patients, infusion sessions with their side effects, check-ins, users, audit, alert reviews.

Clinical rows are never overwritten in place: each carries a `version`, an amendment keeps the
earlier version in `RecordRevision`, and a mistaken row is voided with a reason, not deleted.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Optional

from sqlalchemy import JSON, BigInteger, CheckConstraint, Column, ForeignKey, Index, String, text
from sqlmodel import Field, SQLModel

from store.types import UTCDateTime
from store.vocabulary import (
    ALL_REVIEW_ACTIONS,
    INDICATIONS,
    PATIENT_STATUSES,
    ROLES,
    ROUTES,
    SDS_ITEMS,
    SEVERITIES,
    SEXES,
    WARNING_SIGNS,
)


def _in(column: str, values: tuple[str, ...]) -> str:
    quoted = ", ".join(f"'{v}'" for v in values)
    return f"{column} IN ({quoted})"


def _range(column: str, low: float, high: float) -> str:
    """A CHECK that repeats a validation range as a last line of defence; the migrations write these out (released
    migrations never change), and tests/test_migrations.py holds every edge to store/validation.py's rules."""
    return f"{column} IS NULL OR ({column} >= {low} AND {column} <= {high})"


def _utc(nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_type=UTCDateTime, nullable=nullable, index=index)


def _patient_fk() -> Any:
    return Field(
        sa_column=Column(
            String(64),
            ForeignKey("patient.patient_id", onupdate="CASCADE", ondelete="RESTRICT"),
            nullable=False,
        )
    )


class Tracked(SQLModel):
    """Who recorded a row and when, its version for optimistic concurrency, and its amendment or void."""

    version: int = Field(default=1, ge=1)
    recorded_at: datetime = _utc(nullable=False)
    recorded_by: str = Field(max_length=64)
    amended_at: Optional[datetime] = _utc()
    amended_by: Optional[str] = Field(default=None, max_length=64)
    amendment_reason: Optional[str] = None
    voided_at: Optional[datetime] = _utc()
    voided_by: Optional[str] = Field(default=None, max_length=64)
    void_reason: Optional[str] = None


class Patient(Tracked, table=True):
    """A person under treatment, with the treatment plan against which escalation is judged."""

    patient_id: str = Field(primary_key=True, max_length=64, min_length=1)
    display_name: Optional[str] = Field(default=None, max_length=200)
    birth_year: Optional[int] = None
    sex: Optional[str] = Field(default=None, max_length=16)
    indication: str = Field(max_length=32)
    sud_history: bool
    treatment_start: date
    planned_dose_mg_per_kg: Optional[float] = None
    #: The planned dose of a fixed-dose route (intranasal esketamine 56 or 84 mg), set on Patients and plans; not in
    #: the import format (CONTRACT section 2), like the status.
    planned_dose_mg: Optional[float] = None
    planned_interval_days: Optional[int] = None
    clinician: Optional[str] = Field(default=None, max_length=64, index=True)
    status: str = Field(default="active", max_length=16, index=True)

    __table_args__ = (
        CheckConstraint(_in("indication", INDICATIONS), name="ck_patient_indication"),
        CheckConstraint(f"sex IS NULL OR {_in('sex', SEXES)}", name="ck_patient_sex"),
        CheckConstraint(_in("status", PATIENT_STATUSES), name="ck_patient_status"),
        CheckConstraint(_range("birth_year", 1900, 2200), name="ck_patient_birth_year"),
        CheckConstraint(_range("planned_dose_mg_per_kg", 0.05, 5), name="ck_patient_planned_dose"),
        CheckConstraint(_range("planned_dose_mg", 1, 1000), name="ck_patient_planned_dose_mg"),
        CheckConstraint(_range("planned_interval_days", 1, 180), name="ck_patient_planned_interval"),
    )


class InfusionSession(Tracked, table=True):
    """One administered dose of ketamine or esketamine, with vitals and the patient's requests."""

    __tablename__ = "infusion_session"

    id: Optional[int] = Field(default=None, primary_key=True)
    patient_id: str = _patient_fk()
    session_at: datetime = _utc(nullable=False)
    route: str = Field(max_length=16)
    dose_mg: float
    weight_kg: Optional[float] = None
    duration_min: Optional[int] = None
    early_request: Optional[bool] = None
    dose_increase_request: Optional[bool] = None
    sbp_pre: Optional[int] = None
    dbp_pre: Optional[int] = None
    sbp_post: Optional[int] = None
    dbp_post: Optional[int] = None
    hr_pre: Optional[int] = None
    hr_post: Optional[int] = None
    spo2_pre: Optional[int] = None
    spo2_post: Optional[int] = None
    dissociation_cadss: Optional[int] = None
    notes: Optional[str] = None

    __table_args__ = (
        CheckConstraint(_in("route", ROUTES), name="ck_session_route"),
        CheckConstraint("dose_mg > 0 AND dose_mg <= 1000", name="ck_session_dose"),
        CheckConstraint(_range("weight_kg", 20, 350), name="ck_session_weight"),
        CheckConstraint(_range("duration_min", 1, 1440), name="ck_session_duration"),
        *(CheckConstraint(_range(c, 40, 300), name=f"ck_session_{c}") for c in ("sbp_pre", "dbp_pre", "sbp_post", "dbp_post")),
        *(CheckConstraint(_range(c, 20, 250), name=f"ck_session_{c}") for c in ("hr_pre", "hr_post")),
        *(CheckConstraint(_range(c, 50, 100), name=f"ck_session_{c}") for c in ("spo2_pre", "spo2_post")),
        CheckConstraint(_range("dissociation_cadss", 0, 92), name="ck_session_cadss"),
        CheckConstraint("dbp_pre IS NULL OR sbp_pre IS NULL OR dbp_pre < sbp_pre", name="ck_session_bp_pre"),
        CheckConstraint("dbp_post IS NULL OR sbp_post IS NULL OR dbp_post < sbp_post", name="ck_session_bp_post"),
        Index("ix_session_patient_time", "patient_id", "session_at"),
        Index(
            "uq_session_patient_time_live",
            "patient_id",
            "session_at",
            unique=True,
            sqlite_where=text("voided_at IS NULL"),
            postgresql_where=text("voided_at IS NULL"),
        ),
    )


class SideEffectEvent(SQLModel, table=True):
    """One side effect of one session; superseded, not deleted, when the session is amended."""

    __tablename__ = "side_effect_event"

    id: Optional[int] = Field(default=None, primary_key=True)
    session_id: int = Field(
        sa_column=Column(ForeignKey("infusion_session.id", ondelete="RESTRICT"), nullable=False, index=True)
    )
    effect: str = Field(max_length=64)
    severity: str = Field(max_length=16)
    superseded_at: Optional[datetime] = _utc()

    __table_args__ = (CheckConstraint(_in("severity", SEVERITIES), name="ck_side_effect_severity"),)


class CheckIn(Tracked, table=True):
    """A self-report: craving, the Severity of Dependence Scale, the warning-sign checklist and PHQ-9."""

    __tablename__ = "check_in"

    id: Optional[int] = Field(default=None, primary_key=True)
    patient_id: str = _patient_fk()
    reported_at: datetime = _utc(nullable=False)
    craving: int
    sds_1: Optional[int] = None
    sds_2: Optional[int] = None
    sds_3: Optional[int] = None
    sds_4: Optional[int] = None
    sds_5: Optional[int] = None
    secrecy: Optional[int] = None
    social_withdrawal: Optional[int] = None
    neglected_responsibilities: Optional[int] = None
    irritable_when_not_using: Optional[int] = None
    appetite_change: Optional[int] = None
    sleep_disturbance: Optional[int] = None
    coordination_problems: Optional[int] = None
    dissociation_outside_sessions: Optional[int] = None
    tolerance: Optional[int] = None
    recreational_seeking: Optional[int] = None
    other_substance_use: Optional[int] = None
    non_prescribed_use: Optional[int] = None
    phq9: Optional[int] = None
    notes: Optional[str] = None

    __table_args__ = (
        CheckConstraint("craving >= 0 AND craving <= 10", name="ck_checkin_craving"),
        *(CheckConstraint(_range(c, 0, 3), name=f"ck_checkin_{c}") for c in (*SDS_ITEMS, *WARNING_SIGNS)),
        CheckConstraint(_range("phq9", 0, 27), name="ck_checkin_phq9"),
        CheckConstraint(
            "(sds_1 IS NULL AND sds_2 IS NULL AND sds_3 IS NULL AND sds_4 IS NULL AND sds_5 IS NULL) OR "
            "(sds_1 IS NOT NULL AND sds_2 IS NOT NULL AND sds_3 IS NOT NULL AND sds_4 IS NOT NULL AND sds_5 IS NOT NULL)",
            name="ck_checkin_sds_complete",
        ),
        Index("ix_checkin_patient_time", "patient_id", "reported_at"),
        Index(
            "uq_checkin_patient_time_live",
            "patient_id",
            "reported_at",
            unique=True,
            sqlite_where=text("voided_at IS NULL"),
            postgresql_where=text("voided_at IS NULL"),
        ),
    )


class RecordRevision(SQLModel, table=True):
    """The earlier version of an amended or voided record, so nothing entered is ever lost."""

    __tablename__ = "record_revision"

    id: Optional[int] = Field(default=None, primary_key=True)
    record_type: str = Field(max_length=32)
    record_key: str = Field(max_length=64)
    version: int
    data: dict = Field(sa_column=Column(JSON, nullable=False))
    changed_at: datetime = _utc(nullable=False)
    changed_by: str = Field(max_length=64)
    change: str = Field(max_length=16)
    reason: str

    __table_args__ = (
        CheckConstraint("change IN ('amend', 'void')", name="ck_revision_change"),
        Index("ix_revision_record", "record_type", "record_key", "version"),
    )


class User(SQLModel, table=True):
    """A local account; passwords are stored only as argon2 hashes."""

    __tablename__ = "app_user"

    username: str = Field(primary_key=True, max_length=64)
    display_name: str = Field(max_length=200)
    role: str = Field(max_length=16)
    password_hash: str
    disabled: bool = False
    failed_attempts: int = 0
    locked_until: Optional[datetime] = _utc()
    created_at: datetime = _utc(nullable=False)
    last_sign_in_at: Optional[datetime] = _utc()
    #: Set by a password change or reset; a browser session signed in under an earlier value ends.
    password_changed_at: Optional[datetime] = _utc()

    __table_args__ = (CheckConstraint(_in("role", ROLES), name="ck_user_role"),)


class AuditEvent(SQLModel, table=True):
    """One line of the append-only audit trail: who did what, when, to which record, before and after."""

    __tablename__ = "audit_event"

    id: Optional[int] = Field(default=None, primary_key=True)
    at: datetime = _utc(nullable=False, index=True)
    actor: str = Field(max_length=64, index=True)
    action: str = Field(max_length=32, index=True)
    entity: Optional[str] = Field(default=None, max_length=32)
    entity_key: Optional[str] = Field(default=None, max_length=64)
    patient_id: Optional[str] = Field(default=None, max_length=64, index=True)
    detail: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class AlertReview(SQLModel, table=True):
    """A clinician's acknowledgement of a patient's risk level and the reasons behind it, with the action taken."""

    __tablename__ = "alert_review"

    id: Optional[int] = Field(default=None, primary_key=True)
    patient_id: str = _patient_fk()
    reviewed_at: datetime = _utc(nullable=False)
    reviewed_by: str = Field(max_length=64)
    level: str = Field(max_length=8)
    reasons: str = Field(description="';'-separated rule ids acknowledged by this review")
    action: str = Field(max_length=40)
    note: Optional[str] = None

    __table_args__ = (
        CheckConstraint("level IN ('green', 'amber', 'red')", name="ck_review_level"),
        CheckConstraint(_in("action", ALL_REVIEW_ACTIONS), name="ck_review_action"),
        Index("ix_review_patient_time", "patient_id", "reviewed_at"),
    )


class AppSetting(SQLModel, table=True):
    """A per-database fact the app needs at run time, such as whether this is a demo database."""

    __tablename__ = "app_setting"

    key: str = Field(primary_key=True, max_length=64)
    value: str


class DataChange(SQLModel, table=True):
    """On PostgreSQL, one row that statement triggers bump with every write to a clinical table.

    Readers compare it to tell that anything changed without counting rows (a scan there). The
    row is updated inside the writing transaction, so it becomes visible exactly when the data does.
    """

    __tablename__ = "data_change"

    id: int = Field(default=1, primary_key=True)
    changes: int = Field(default=0, sa_type=BigInteger, nullable=False)
