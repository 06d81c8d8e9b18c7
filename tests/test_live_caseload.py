"""The live caseload (ketawatch.live_caseload) recomputes only changed patients and always equals a full recompute.

Each step writes something a clinic writes (a check-in, an amendment, a void, an alert review, a
new patient, a plan change) and compares the live result with `assess` plus `caseload_table` on
the whole database, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from ketawatch.caseload import caseload_table
from ketawatch.live_caseload import LiveCaseload
from ketawatch.risk import assess
from seed_data.cohort import CohortParams, generate_cohort, write_import_folder
from store import records
from store.importer import import_folder
from store.queries import alert_reviews_frame, checkins_frame, load_records, patients_frame, sessions_frame
from tests.store_support import CHECKIN, PATIENT, import_cohort
from store.settings import Settings

TZ = "Europe/London"
END = dt.date(2026, 10, 31)
AS_OF = dt.date(2026, 11, 20)
AGAIN = Settings.model_fields["review_again_days"].default  # KETAWATCH_REVIEW_AGAIN_DAYS as shipped


@pytest.fixture
def cohort(engine, validator, tmp_path):
    import_cohort(engine, tmp_path / "in", validator, n_patients=30, months=4, end=END, seed=9)
    return engine


def _full(engine):
    every = load_records(engine)
    assessment = assess(every, as_of=AS_OF, tz=TZ)
    return assessment, caseload_table(every, assessment, reviews=alert_reviews_frame(engine), tz=TZ, today=AS_OF, review_again_days=AGAIN)


def _same(live, engine) -> None:
    assessment, table = _full(engine)
    pd.testing.assert_frame_equal(live.table, table, check_exact=True)
    cols = ["patient_id", "as_of", "level", "since"]
    pd.testing.assert_frame_equal(live.assessment[cols], assessment[cols].sort_values("patient_id").reset_index(drop=True))
    texts = lambda frame: [[r.text for r in rs] for rs in frame.sort_values("patient_id")["reasons"]]  # noqa: E731
    assert texts(live.assessment) == texts(assessment)


def _worrying_checkin(patient_id: str, day: int) -> dict:
    return {**CHECKIN, "patient_id": patient_id, "reported_at": f"2026-11-{day:02d}", "craving": "9", "sds_1": "3",
            "sds_2": "3", "sds_3": "2", "tolerance": "3", "secrecy": "3", "non_prescribed_use": "2", "phq9": "9"}


def test_after_each_kind_of_write_only_that_patient_is_recomputed_and_the_result_equals_a_full_recompute(
        cohort, validator):
    live = LiveCaseload(cohort, TZ, AGAIN)
    _same(live.refresh(AS_OF), cohort)
    assert live.last_recomputed is None  # the first look computes everyone

    now = live.refresh(AS_OF)
    assert live.last_recomputed == [] and now is live.refresh(AS_OF)

    for day in (10, 14, 18):
        records.add_checkin(cohort, _worrying_checkin("KW-0004", day), actor="t", validator=validator)
    _same(live.refresh(AS_OF), cohort)
    assert live.last_recomputed == ["KW-0004"]
    assert live.refresh(AS_OF).table.set_index("patient_id").loc["KW-0004", "level"] != "green"

    session = sessions_frame(cohort, ["KW-0007"], with_tracking=True).iloc[-1]
    records.amend_session(cohort, int(session["id"]), {"dose_increase_request": "yes"}, actor="t",
                          reason="patient asked; missed at the time", expected_version=int(session["version"]),
                          validator=validator)
    checkin = checkins_frame(cohort, ["KW-0009"], with_tracking=True).iloc[-1]
    records.void_checkin(cohort, int(checkin["id"]), actor="t", reason="wrong patient",
                         expected_version=int(checkin["version"]), validator=validator)
    _same(live.refresh(AS_OF), cohort)
    assert live.last_recomputed == ["KW-0007", "KW-0009"]

    level = live.refresh(AS_OF).table.set_index("patient_id").loc["KW-0004", "level"]
    records.add_alert_review(cohort, patient_id="KW-0004", level=level, reasons=["craving_rise"],
                             action="discussed_with_patient", note="discussed at the visit", actor="t")
    _same(live.refresh(AS_OF), cohort)
    assert live.last_recomputed == ["KW-0004"]

    session = sessions_frame(cohort, ["KW-0011"], with_tracking=True).iloc[0]
    records.amend_session(cohort, int(session["id"]), {"side_effects": "vomiting:severe"}, actor="t",
                          reason="side effect reported by phone next day", expected_version=int(session["version"]),
                          validator=validator)
    _same(live.refresh(AS_OF), cohort)
    assert live.last_recomputed == ["KW-0011"]

    status = patients_frame(cohort, ["KW-0012"], with_tracking=True).iloc[0]
    records.amend_patient(cohort, "KW-0012", {"status": "paused"}, actor="t", reason="travelling for a month",
                          expected_version=int(status["version"]), validator=validator)
    _same(live.refresh(AS_OF), cohort)
    assert live.last_recomputed == ["KW-0012"]
    assert live.refresh(AS_OF).table.set_index("patient_id").loc["KW-0012", "status"] == "paused"

    records.add_patient(cohort, {**PATIENT, "patient_id": "KW-NEW1"}, actor="t", validator=validator)
    plan = patients_frame(cohort, ["KW-0002"], with_tracking=True).iloc[0]
    records.amend_patient(cohort, "KW-0002", {"planned_interval_days": "7"}, actor="t", reason="new plan",
                          expected_version=int(plan["version"]), validator=validator)
    _same(live.refresh(AS_OF), cohort)
    assert live.last_recomputed == ["KW-0002", "KW-NEW1"]


def test_a_new_day_or_a_bulk_import_recomputes_everyone(cohort, validator, tmp_path):
    live = LiveCaseload(cohort, TZ, AGAIN)
    live.refresh(AS_OF)
    _same_day_after = live.refresh(AS_OF + dt.timedelta(days=1))
    assert live.last_recomputed is None and _same_day_after.as_of == AS_OF + dt.timedelta(days=1)

    folder = tmp_path / "more"
    folder.mkdir()
    write_import_folder(generate_cohort(CohortParams(n_patients=40, months=2, end=END, seed=10)), folder)
    for name in ("patients.csv", "sessions.csv", "checkins.csv"):  # new ids, so they do not collide
        path = folder / name
        path.write_text(path.read_text().replace("KW-", "KX-"))
    import_folder(cohort, folder, actor="setup", validator=validator)
    live.refresh(AS_OF)
    assert live.last_recomputed is None
    _same(live.refresh(AS_OF), cohort)


def test_an_edit_of_the_clinics_rules_file_recomputes_everyone_under_the_new_rules(cohort, tmp_path, monkeypatch):
    """A clinic's rules file is read again when it changes; the caseload kept the levels of patients without new
    records from the rules before (new-engineer code review)."""
    import os
    from importlib import resources

    from store.settings import get_settings

    shipped = resources.files("seed_data").joinpath("rules.toml").read_text(encoding="utf-8")
    own = tmp_path / "clinic-rules.toml"
    own.write_text(shipped, encoding="utf-8")
    monkeypatch.setenv("KETAWATCH_RULES_FILE", str(own))
    get_settings.cache_clear()
    live = LiveCaseload(cohort, TZ, AGAIN)
    before = live.refresh(AS_OF).assessment.copy()

    own.write_text(shipped.replace("amber_min_points = 2", "amber_min_points = 1", 1), encoding="utf-8")
    os.utime(own, ns=(own.stat().st_atime_ns, own.stat().st_mtime_ns + 1_000_000_000))  # a later time, however quick
    after = live.refresh(AS_OF)
    assert live.last_recomputed is None  # no record changed, and still everyone is recomputed
    _same(after, cohort)  # equal to a full recompute, which reads the edited file
    assert not after.assessment[["patient_id", "level"]].equals(before[["patient_id", "level"]])
