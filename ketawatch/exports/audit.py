"""One audit line per export: who made it, in which format, for which patients, identified or not."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlmodel import Session

from store.audit import record_event
from store.models import AuditEvent

EXPORT_ACTION = "export"
#: A file built and audited as an export, then not handed over on its Download click (the account changed, or idle).
DOWNLOAD_REFUSED_ACTION = "download_refused"
#: An export asked for and refused to the role asking (a reviewer's identified export, from the command line).
EXPORT_REFUSED_ACTION = "export_refused"


def _about_patients(patient_ids) -> tuple[str | None, dict]:
    """An export line's `patient_id` (its one patient, so the patient's audit view lists it, when the column can hold
    the id: one typed at the command line may be longer) and the patients for its detail, sorted and counted."""
    ids = sorted({str(p) for p in patient_ids})
    one = ids[0] if len(ids) == 1 and len(ids[0]) <= AuditEvent.__table__.c.patient_id.type.length else None
    return one, {"patients": ids, "patient_count": len(ids)}


def record_export(
    engine: Engine,
    *,
    actor: str,
    role: str,
    what: str,
    fmt: str,
    patient_ids: list[str] | tuple[str, ...],
    deidentified: bool,
    **detail,
) -> None:
    """Write the export to the audit trail in its own transaction (real patient ids: the trail is internal).

    `what` names the export (patient_summary for the PDF, patient_csv, patient_xlsx, patient_fhir, caseload,
    records); with exactly one patient the line carries its id in `patient_id`, so the patient's audit view lists it.
    """
    one, patients = _about_patients(patient_ids)
    with Session(engine) as db, db.begin():
        record_event(db, actor=actor, action=EXPORT_ACTION, entity="export", entity_key=what, patient_id=one, role=role,
                     format=fmt, **patients, deidentified=bool(deidentified), **detail)


def record_export_refused(engine: Engine, *, actor: str, role: str, what: str, fmt: str,
                          patient_ids: list[str] | tuple[str, ...] | None, why: str) -> None:
    """Write that an export was asked for and refused: who tried to take what out is what an audit is for (the command
    line refused a reviewer's identified export and left no line; security review, 2026-12-01). No `patient_ids`
    means every patient; an id longer than the column (typed at the command line) stays in the detail only."""
    one, scope = _about_patients(patient_ids) if patient_ids is not None else (None, {"patients": "all"})
    with Session(engine) as db, db.begin():
        record_event(db, actor=actor, action=EXPORT_REFUSED_ACTION, entity="export", entity_key=what,
                     patient_id=one, role=role, format=fmt, why=why, **scope)


def record_download_refused(engine: Engine, *, actor: str, file_name: str, patient_ids: list[str] | tuple[str, ...],
                            why: str) -> None:
    """Write that a prepared file was not handed over, and why: its export line alone would say the file left."""
    one, patients = _about_patients(patient_ids)
    with Session(engine) as db, db.begin():
        record_event(db, actor=actor, action=DOWNLOAD_REFUSED_ACTION, entity="export", entity_key=file_name,
                     patient_id=one, **patients, why=why)
