"""Building the demo database: the seed cohort goes in through the real importer, then the demo accounts."""

from __future__ import annotations

import tempfile
from pathlib import Path

from sqlalchemy import Engine, func, select
from sqlmodel import Session

from store.app_settings import DEMO_KEY, is_demo, set_value
from store.importer import import_folder
from store.models import AuditEvent, Patient, User


class DemoRefused(Exception):
    """The database holds real data (accounts, patients or history); a demo must never be built into it."""


def _counts(engine: Engine) -> dict[str, int]:
    with Session(engine) as db:
        return {t.__name__: db.execute(select(func.count()).select_from(t)).scalar_one() for t in (Patient, User, AuditEvent)}


def build_demo(engine: Engine) -> str:
    """Fill a brand-new database with the demo cohort and demo accounts; reuse an existing demo database.

    Refuses (DemoRefused) a database that is not a demo and holds anything at all, so the demo's
    published password can never become an account in a clinic's real database.
    Returns a sentence for the terminal saying what happened.
    """
    from ketawatch.accounts import DEMO_PASSWORD, DEMO_USERNAMES, create_demo_accounts
    from seed_data.cohort import demo_cohort, write_import_folder

    counts = _counts(engine)
    if is_demo(engine):
        return f"Using the existing demo database ({counts['Patient']} patients); nothing was added."
    if any(counts.values()):
        raise DemoRefused(
            f"this database is not a demo database and already holds {counts['Patient']} patient(s), "
            f"{counts['User']} account(s) and {counts['AuditEvent']} audit line(s); the demo is only built into a "
            "new database (for example --db sqlite:///demo.db)"
        )
    cohort = demo_cohort()
    with tempfile.TemporaryDirectory(prefix="ketawatch-demo-") as folder:
        write_import_folder(cohort, Path(folder))
        report = import_folder(engine, folder, actor="demo-setup")  # all or nothing
    _set_mg_plans(engine, cohort.mg_plans)
    set_value(engine, DEMO_KEY, "yes")
    create_demo_accounts(engine)
    return (
        f"Demo database built: {report.summary()}; planned doses in mg set for {len(cohort.mg_plans)} intranasal "
        "patient(s). "
        f"Sign in as {', '.join(DEMO_USERNAMES)} with password {DEMO_PASSWORD}."
    )


def _set_mg_plans(engine: Engine, plans) -> None:
    """The intranasal patients' planned doses in mg, set as a clinician sets them on Patients and plans (an amendment
    with its reason): without them, a planned titration from 56 to 84 mg is judged against the first doses."""
    from store.records import amend_patient

    for row in plans.itertuples(index=False):
        with Session(engine) as db:
            version = db.get(Patient, str(row.patient_id)).version
        amend_patient(engine, str(row.patient_id), {"planned_dose_mg": float(row.planned_dose_mg)}, actor="demo-setup",
                      reason="Planned intranasal dose set after the demo's import (the import format has no column "
                             "for it)", expected_version=version)
