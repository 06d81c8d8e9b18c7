"""The fast record reader (store.queries) returns exactly what the ORM reads, on SQLite and PostgreSQL.

`load_records` reads the clinical tables through the driver's cursor and types the columns itself,
for speed; the oracle here is the slow, obvious path: SQLModel objects, typed by `Records.of`.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from sqlmodel import Session, select

from store import records
from store.frames import Records
from store.importer import import_folder
from store.models import CheckIn, InfusionSession, Patient, SideEffectEvent
from store.queries import checkins_frame, load_records, sessions_frame
from tests.store_support import import_cohort, write_folder

END = dt.date(2026, 10, 31)


@pytest.fixture
def cohort_db(engine, validator, tmp_path):
    """A small generated cohort through the importer, with one amended session and one voided check-in."""
    import_cohort(engine, tmp_path / "in", validator, n_patients=12, months=3, end=END, seed=5)
    sessions = sessions_frame(engine, with_tracking=True)
    first = sessions.iloc[0]
    records.amend_session(engine, int(first["id"]), {"side_effects": "nausea:moderate;headache:mild", "notes": "late note"},
                          actor="t", reason="typed on the wrong day", expected_version=int(first["version"]),
                          validator=validator)
    checkin = checkins_frame(engine, with_tracking=True).iloc[3]
    records.void_checkin(engine, int(checkin["id"]), actor="t", reason="wrong patient",
                         expected_version=int(checkin["version"]), validator=validator)
    return engine


def _orm_records(engine, patient_ids=None) -> Records:
    """The live records as the ORM sees them, typed by the frames module (the reference)."""
    def rows(model, order):
        with Session(engine) as db:
            q = select(model).where(model.voided_at.is_(None))
            if patient_ids is not None:
                q = q.where(model.patient_id.in_(patient_ids))
            return [r.model_dump() for r in db.exec(q.order_by(*order)).all()]

    with Session(engine) as db:
        effects = db.exec(select(SideEffectEvent).where(SideEffectEvent.superseded_at.is_(None))
                          .order_by(SideEffectEvent.session_id, SideEffectEvent.id)).all()
    text: dict[int, str] = {}
    for e in effects:
        text[e.session_id] = f"{text[e.session_id]};" if e.session_id in text else ""
        text[e.session_id] += f"{e.effect}:{e.severity}"
    sessions = pd.DataFrame(rows(InfusionSession, (InfusionSession.patient_id, InfusionSession.session_at)))
    sessions["side_effects"] = sessions["id"].map(text)
    patients = pd.DataFrame(rows(Patient, (Patient.patient_id,)))
    checkins = pd.DataFrame(rows(CheckIn, (CheckIn.patient_id, CheckIn.reported_at)))
    return Records.of(patients, sessions, checkins)


@pytest.mark.parametrize("patient_ids", [None, ["KW-0003", "KW-0007"]], ids=["everyone", "two patients"])
def test_the_fast_reader_returns_what_the_orm_reads(cohort_db, patient_ids):
    fast = load_records(cohort_db, patient_ids)
    slow = _orm_records(cohort_db, patient_ids)
    assert len(fast.sessions) > 5 and len(fast.checkins) > 5
    for name in ("patients", "sessions", "checkins"):
        pd.testing.assert_frame_equal(getattr(fast, name), getattr(slow, name), check_exact=True, obj=name)
    if patient_ids is None:
        assert fast.sessions["side_effects"].str.contains("nausea:moderate;headache:mild").sum() == 1
    else:
        assert set(fast.sessions["patient_id"]) == set(patient_ids)


def test_who_recorded_and_changed_a_record_comes_back_as_aware_datetimes_or_none(cohort_db):
    tracked = sessions_frame(cohort_db, with_tracking=True)
    amended = tracked[tracked["version"] > 1].iloc[0]
    untouched = tracked[tracked["version"] == 1].iloc[0]
    assert isinstance(amended["amended_at"], dt.datetime) and amended["amended_at"].utcoffset() == dt.timedelta(0)
    assert untouched["amended_at"] is None and untouched["voided_at"] is None
    assert isinstance(untouched["recorded_at"], dt.datetime) and untouched["recorded_at"].tzinfo is not None
    voided = checkins_frame(cohort_db, include_voided=True)
    assert voided["voided_at"].notna().sum() == 1


def test_the_data_version_moves_with_every_kind_of_write_and_not_with_reads(cohort_db, validator, tmp_path):
    """The dashboard's caches are keyed on it: a write it missed would leave a clinician looking at old records."""
    from store.queries import data_version

    seen = [data_version(cohort_db)]
    load_records(cohort_db)
    assert data_version(cohort_db) == seen[-1], "a read must not look like a change"

    def after(write) -> None:
        write()
        seen.append(data_version(cohort_db))
        assert seen[-1] != seen[-2]

    after(lambda: records.add_checkin(cohort_db, {"patient_id": "KW-0002", "reported_at": "2026-11-10", "craving": "3"},
                                      actor="t", validator=validator))
    session = sessions_frame(cohort_db, ["KW-0003"], with_tracking=True).iloc[-1]
    after(lambda: records.amend_session(cohort_db, int(session["id"]), {"side_effects": "headache:mild"}, actor="t",
                                        reason="reported late", expected_version=int(session["version"]),
                                        validator=validator))
    checkin = checkins_frame(cohort_db, ["KW-0004"], with_tracking=True).iloc[-1]
    after(lambda: records.void_checkin(cohort_db, int(checkin["id"]), actor="t", reason="duplicate",
                                       expected_version=int(checkin["version"]), validator=validator))
    after(lambda: records.add_alert_review(cohort_db, patient_id="KW-0005", level="amber", reasons=["craving_rising"],
                                           action="discussed_with_patient", note=None, actor="t"))
    after(lambda: import_folder(cohort_db, write_folder(tmp_path / "more"), actor="t", validator=validator))
    assert len(set(seen)) == len(seen)
