"""Small builders of valid import rows and folders, shared by the store and importer tests."""

from __future__ import annotations

import csv
from pathlib import Path

from sqlalchemy import func, select
from sqlmodel import Session

from store.models import AuditEvent, CheckIn, InfusionSession, Patient, SideEffectEvent

PATIENT = {
    "patient_id": "KW-T1",
    "display_name": "Test Patient",
    "birth_year": "1980",
    "sex": "female",
    "indication": "depression",
    "sud_history": "no",
    "treatment_start": "2026-01-05",
    "planned_dose_mg_per_kg": "0.5",
    "planned_interval_days": "21",
    "clinician": "demo-clinician",
}
SESSION = {
    "patient_id": "KW-T1",
    "session_at": "2026-01-05T10:00",
    "route": "iv",
    "dose_mg": "35",
    "weight_kg": "70",
    "duration_min": "40",
    "early_request": "no",
    "dose_increase_request": "no",
    "sbp_pre": "120",
    "dbp_pre": "80",
    "sbp_post": "138",
    "dbp_post": "86",
    "hr_pre": "72",
    "hr_post": "80",
    "spo2_pre": "98",
    "spo2_post": "97",
    "dissociation_cadss": "12",
    "side_effects": "nausea:mild;dizziness:moderate",
    "notes": "Tolerated well, felt \"floaty\", settled by 60 min",
}
CHECKIN = {
    "patient_id": "KW-T1",
    "reported_at": "2026-01-12",
    "craving": "1",
    "sds_1": "0",
    "sds_2": "1",
    "sds_3": "0",
    "sds_4": "0",
    "sds_5": "0",
    "secrecy": "0",
    "social_withdrawal": "1",
    "neglected_responsibilities": "0",
    "irritable_when_not_using": "0",
    "appetite_change": "0",
    "sleep_disturbance": "1",
    "coordination_problems": "0",
    "dissociation_outside_sessions": "0",
    "tolerance": "0",
    "recreational_seeking": "0",
    "other_substance_use": "0",
    "non_prescribed_use": "0",
    "phq9": "14",
    "notes": "",
}


def write_csv(path: Path, rows: list[dict[str, str]], header: list[str] | None = None) -> None:
    """Write rows as an import-format CSV file."""
    header = header or list(rows[0])
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)


def write_folder(folder: Path, patients=(PATIENT,), sessions=(SESSION,), checkins=(CHECKIN,)) -> Path:
    """A folder with the three files (a file is left out when its rows are None)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in (("patients.csv", patients), ("sessions.csv", sessions), ("checkins.csv", checkins)):
        if rows is not None:
            write_csv(folder / name, [dict(r) for r in rows])
    return folder


def counts(engine) -> dict[str, int]:
    """Row counts of every clinical table and the audit trail."""
    with Session(engine) as db:
        return {
            t.__name__: db.execute(select(func.count()).select_from(t)).scalar_one()
            for t in (Patient, InfusionSession, SideEffectEvent, CheckIn, AuditEvent)
        }


def import_cohort(engine, folder: Path, validator, **params) -> None:
    """A generated cohort (seed_data.cohort, `CohortParams(**params)`) put in through the real importer."""
    from seed_data.cohort import CohortParams, generate_cohort, write_import_folder
    from store.importer import import_folder

    folder.mkdir(parents=True)
    write_import_folder(generate_cohort(CohortParams(**params)), folder)
    import_folder(engine, folder, actor="setup", validator=validator)
