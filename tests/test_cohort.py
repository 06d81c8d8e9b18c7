"""The synthetic cohort is deterministic, stays inside the import contract, and tells the stories
its truth table claims (dependence builds up after onset; look-alikes stay quiet where they should)."""

from __future__ import annotations

import csv
import datetime as dt
import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seed_data.catalogue import side_effect_ids
from seed_data.cohort import ARCHETYPES, DEPENDENCE, CohortParams, demo_cohort, generate_cohort, write_import_folder, write_truth
from store.frames import Records
from store.validation import VALIDATE, Validator
from store.vocabulary import (
    CHECKIN_COLUMNS,
    INDICATIONS,
    PATIENT_COLUMNS,
    ROUTES,
    SDS_ITEMS,
    SESSION_COLUMNS,
    SEVERITIES,
    SEXES,
    WARNING_SIGNS,
)

END = dt.date(2026, 11, 21)
NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.timezone.utc)
CLINICIANS = {"demo-clinician", "dr-ahmed", "nurse-lewis"}
FILES = {"patients.csv": PATIENT_COLUMNS, "sessions.csv": SESSION_COLUMNS, "checkins.csv": CHECKIN_COLUMNS}

#: CONTRACT section 2 ranges, written out here independently of the generator.
SESSION_RANGES = {
    "dose_mg": (1e-9, 1000),
    "weight_kg": (20, 350),
    "duration_min": (1, 1440),
    **{c: (40, 300) for c in ("sbp_pre", "dbp_pre", "sbp_post", "dbp_post")},
    "hr_pre": (20, 250),
    "hr_post": (20, 250),
    "spo2_pre": (50, 100),
    "spo2_post": (50, 100),
    "dissociation_cadss": (0, 92),
}
CHECKIN_RANGES = {"craving": (0, 10), **{c: (0, 3) for c in (*SDS_ITEMS, *WARNING_SIGNS)}, "phq9": (0, 27)}
WHOLE_NUMBER_COLUMNS = ("birth_year", "planned_interval_days", "duration_min", *list(SESSION_RANGES)[3:], *CHECKIN_RANGES)
EFFECT_ITEM = re.compile(r"^([a-z_]+):(mild|moderate|severe)$")


@pytest.fixture(scope="module")
def demo():
    """The demo caseload at a fixed end date."""
    return demo_cohort(END)


@pytest.fixture(scope="module")
def demo_folder(demo, tmp_path_factory):
    """The demo written as an import folder, with the row counts the writer reported."""
    folder = tmp_path_factory.mktemp("demo-import")
    return folder, write_import_folder(demo, folder)


def contract_problems(cohort, end: dt.date) -> list[str]:
    """Every way the cohort's frames break CONTRACT section 2 or the `end` date; empty when clean."""
    p, s, c = cohort.patients, cohort.sessions, cohort.checkins
    problems = []

    def bad(name: str, mask) -> None:
        if bool(np.any(mask)):
            problems.append(f"{name}: {int(np.sum(mask))} rows")

    bad("patient_id length", ~p.patient_id.str.len().between(1, 64))
    bad("duplicate patient_id", p.patient_id.duplicated())
    bad("birth_year", p.birth_year.notna() & ~p.birth_year.between(1950, 2004))
    bad("sex", p.sex.notna() & ~p.sex.isin(SEXES))
    bad("indication", ~p.indication.isin(INDICATIONS))
    bad("planned dose", p.planned_dose_mg_per_kg.notna() & ~p.planned_dose_mg_per_kg.between(0.05, 5))
    bad("planned interval", ~p.planned_interval_days.between(1, 180))
    bad("clinician", ~p.clinician.isin(CLINICIANS))
    bad("treatment_start after end", p.treatment_start > pd.Timestamp(end))

    bad("session patient unknown", ~s.patient_id.isin(p.patient_id))
    bad("route", ~s.route.isin(ROUTES))
    for column, (low, high) in SESSION_RANGES.items():
        bad(column, s[column].notna() & ~s[column].between(low, high))
    bad("dbp_pre >= sbp_pre", s.dbp_pre >= s.sbp_pre)
    bad("dbp_post >= sbp_post", s.dbp_post >= s.sbp_post)
    bad("duplicate session", s.duplicated(["patient_id", "session_at"]))
    items = s.side_effects.dropna().str.split(";").explode()
    parsed = items.str.extract(EFFECT_ITEM)
    bad("side effect format", parsed[0].isna())
    bad("side effect not in catalogue", parsed[0].notna() & ~parsed[0].isin(side_effect_ids()))
    bad("side effect listed twice", items.str.split(":").str[0].groupby(level=0).apply(lambda x: x.duplicated().any()))

    bad("checkin patient unknown", ~c.patient_id.isin(p.patient_id))
    for column, (low, high) in CHECKIN_RANGES.items():
        bad(column, c[column].notna() & ~c[column].between(low, high))
    bad("craving missing", c.craving.isna())
    sds_given = c[list(SDS_ITEMS)].notna().sum(axis=1)
    bad("SDS partly given", ~sds_given.isin([0, 5]))
    bad("duplicate check-in", c.duplicated(["patient_id", "reported_at"]))

    whole = pd.concat([frame[col] for frame in (p, s, c) for col in WHOLE_NUMBER_COLUMNS if col in frame])
    bad("whole-number column with a fraction", whole.notna() & (whole % 1 != 0))
    last_instant = pd.Timestamp(end + dt.timedelta(days=1), tz="UTC")
    bad("session after end", s.session_at >= last_instant)
    bad("check-in after end", c.reported_at >= last_instant)
    starts = s.merge(p[["patient_id", "treatment_start"]], on="patient_id")
    bad("session before treatment start", starts.session_at.dt.tz_localize(None) < starts.treatment_start)
    return problems


def test_same_parameters_give_byte_identical_files_and_another_seed_differs(tmp_path):
    params = CohortParams(n_patients=12, end=END, months=4, seed=7)
    write_import_folder(generate_cohort(params), tmp_path / "a")
    write_import_folder(generate_cohort(params), tmp_path / "b")
    write_import_folder(generate_cohort(CohortParams(n_patients=12, end=END, months=4, seed=8)), tmp_path / "c")
    for name in FILES:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert any((tmp_path / "a" / name).read_bytes() != (tmp_path / "c" / name).read_bytes() for name in FILES)


def test_adding_patients_leaves_the_existing_ones_unchanged():
    small = generate_cohort(CohortParams(n_patients=6, end=END, seed=11))
    large = generate_cohort(CohortParams(n_patients=9, end=END, seed=11))
    ids = set(small.patients.patient_id)
    for frame in ("patients", "sessions", "checkins", "truth"):
        kept = getattr(large, frame)[getattr(large, frame).patient_id.isin(ids)].reset_index(drop=True)
        pd.testing.assert_frame_equal(kept, getattr(small, frame))


def test_demo_is_inside_the_contract_and_accepted_by_records(demo):
    assert contract_problems(demo, END) == []
    records = Records.of(demo.patients, demo.sessions, demo.checkins)
    assert len(records.sessions) == len(demo.sessions) and len(records.checkins) == len(demo.checkins)
    assert str(demo.sessions.session_at.dt.tz) == "UTC" and str(demo.checkins.reported_at.dt.tz) == "UTC"


def test_every_demo_row_passes_the_shared_validation(demo_folder):
    folder, _ = demo_folder
    validator = Validator(now=NOW, tz="Europe/London")
    for name in FILES:
        with open(folder / name, newline="", encoding="utf-8") as handle:
            for line, row in enumerate(csv.DictReader(handle), start=2):
                _, problems = VALIDATE[name.removesuffix(".csv")](validator, row)
                assert problems == [], f"{name}:{line}: {problems}"


def test_demo_holds_every_archetype_and_three_or_four_dependence_patients(demo):
    counts = demo.truth.archetype.value_counts()
    assert set(counts.index) == set(ARCHETYPES)
    assert counts[DEPENDENCE] in (3, 4)
    assert counts.idxmax() == "stable_responder" and counts["stable_responder"] > len(demo.truth) / 2
    dependent = demo.truth[demo.truth.archetype == DEPENDENCE]
    assert dependent.dependence_onset.notna().all() and dependent.dependence_onset.nunique() == len(dependent)
    assert demo.truth[demo.truth.archetype != DEPENDENCE].dependence_onset.isna().all()
    sud = demo.patients.set_index("patient_id").sud_history
    assert sud[dependent.patient_id].any()  # some dependence patients have a SUD history


def test_demo_has_patients_still_in_induction_and_every_protocol(demo):
    recent = demo.patients.treatment_start > pd.Timestamp(END) - pd.Timedelta(days=21)
    assert recent.sum() >= 2
    routes = set(demo.sessions.route)
    assert {"iv", "intranasal"} <= routes
    assert (demo.sessions.duration_min == 240).any()  # chronic-pain infusions


def test_dependence_builds_up_after_onset(demo):
    checkins = demo.checkins.merge(demo.truth, on="patient_id")
    sessions = demo.sessions.merge(demo.truth, on="patient_id")
    for patient_id, onset in demo.truth.loc[demo.truth.archetype == DEPENDENCE, ["patient_id", "dependence_onset"]].values:
        mine = checkins[checkins.patient_id == patient_id]
        after = mine.reported_at.dt.tz_localize(None) >= onset
        assert (~after).sum() >= 3 and after.sum() >= 3
        assert mine.craving[after].mean() > mine.craving[~after].mean()
        asked = sessions[sessions.patient_id == patient_id]
        asked_after = asked.session_at.dt.tz_localize(None) >= onset
        requests = asked.early_request.fillna(False) | asked.dose_increase_request.fillna(False)
        assert requests[asked_after].mean() > requests[~asked_after].mean()


def test_dependence_develops_over_weeks_not_in_one_step():
    cohort = generate_cohort(CohortParams(n_patients=60, end=END, months=12, noise=0.0, dependence_fraction=0.3))
    checkins = cohort.checkins.merge(cohort.truth, on="patient_id")
    for _, mine in checkins[checkins.archetype == DEPENDENCE].groupby("patient_id"):
        steps = mine.craving.diff().dropna()
        assert steps.max() <= 3, "craving should climb gradually"


def test_look_alikes_stay_quiet_where_dependence_would_not(demo):
    checkins = demo.checkins.merge(demo.truth, on="patient_id")
    by = {name: group for name, group in checkins.groupby("archetype")}
    for name in ("depressive_relapse", "ptsd_depersonalisation", "sud_history_stable", "clinician_titration"):
        assert by[name].craving.max() <= 3, name
        assert (by[name][["secrecy", "non_prescribed_use", "recreational_seeking"]].fillna(0) <= 1).all().all(), name
    for _, spike in by["craving_spike"].groupby("patient_id"):
        assert (spike.craving >= 6).sum() == 1 and spike.craving.median() <= 2
    ptsd = by["ptsd_depersonalisation"].dissociation_outside_sessions.dropna()
    assert (ptsd >= 1).mean() > 0.8
    relapse = by["depressive_relapse"]
    onsets = relapse.groupby("patient_id").phq9.agg(lambda x: x.dropna().iloc[-3:].mean() - x.dropna().iloc[2:6].mean())
    assert (onsets > 5).all(), "PHQ-9 climbs back in a relapse"
    titrated = demo.sessions.merge(demo.truth, on="patient_id").query("archetype == 'clinician_titration'")
    assert not titrated.dose_increase_request.fillna(False).any()


def test_session_realism(demo):
    sessions = demo.sessions
    local = sessions.session_at.dt.tz_convert("Europe/London")
    assert local.dt.hour.between(8, 16).all() and (local.dt.day_of_week < 5).all()
    assert 0.3 <= sessions.side_effects.notna().mean() <= 0.5
    weights = sessions.groupby("patient_id").weight_kg.agg(["min", "max"])
    assert (weights["max"] - weights["min"] <= 2).all() and weights["min"].min() >= 50 and weights["max"].max() <= 130
    assert sessions.spo2_pre.dropna().between(95, 100).all() and sessions.spo2_post.dropna().between(95, 100).all()
    assert ((sessions.sbp_post - sessions.sbp_pre).dropna() > 0).mean() > 0.9
    number = sessions.groupby("patient_id").cumcount()
    first, later = sessions.dissociation_cadss[number == 0].dropna(), sessions.dissociation_cadss[number >= 6].dropna()
    assert first.between(3, 34).all() and 10 <= first.median() <= 22
    assert later.median() < first.median() - 5  # dissociation fades with repeated doses
    severities = sessions.side_effects.dropna().str.split(";").explode().str.split(":").str[1]
    assert severities.isin(SEVERITIES).all() and (severities == "mild").mean() > 0.6


def test_checkins_come_about_weekly_with_sds_on_about_half(demo):
    checkins = demo.checkins
    gaps = checkins.groupby("patient_id").reported_at.diff().dt.total_seconds().dropna() / 86400
    assert 6 <= gaps.median() <= 8
    assert 0.35 <= checkins.sds_1.notna().mean() <= 0.65
    assert checkins.phq9.notna().mean() > 0.8


def test_import_folder_round_trip_keeps_counts_and_contract_headers(demo, demo_folder, tmp_path):
    folder, counts = demo_folder
    assert counts == {"patients.csv": len(demo.patients), "sessions.csv": len(demo.sessions), "checkins.csv": len(demo.checkins)}
    for name, columns in FILES.items():
        text = pd.read_csv(folder / name, dtype=str, keep_default_na=False)
        assert list(text.columns) == list(columns)
        assert len(text) == counts[name]
        for column in text.columns:
            if column in WHOLE_NUMBER_COLUMNS:
                assert not text[column].str.contains(r"\.", regex=True).any(), column
        for column in ("sud_history", "early_request", "dose_increase_request"):
            if column in text:
                assert text[column].isin(["yes", "no", ""]).all()
    sessions = pd.read_csv(folder / "sessions.csv", dtype=str, keep_default_na=False)
    assert sessions.session_at.str.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00").all()
    patients = pd.read_csv(folder / "patients.csv", dtype=str, keep_default_na=False)
    assert patients.treatment_start.str.fullmatch(r"\d{4}-\d\d-\d\d").all()
    assert not (folder / "truth.csv").exists()
    assert write_truth(demo, tmp_path / "truth.csv") == len(demo.truth)
    truth = pd.read_csv(tmp_path / "truth.csv", dtype=str, keep_default_na=False)
    assert list(truth.columns) == ["patient_id", "archetype", "dependence_onset", "dependence_midpoint", "notes"]
    assert (truth.dependence_onset != "").sum() == (demo.truth.archetype == DEPENDENCE).sum()
    assert ((truth.dependence_onset != "") == (truth.dependence_midpoint != "")).all()


def test_the_store_imports_the_demo_folder(sqlite_engine, demo_folder):
    from store.importer import import_folder

    folder, counts = demo_folder
    report = import_folder(sqlite_engine, folder, actor="test", validator=Validator(now=NOW, tz="Europe/London"))
    assert report.written
    again = import_folder(sqlite_engine, folder, actor="test", dry_run=True, validator=Validator(now=NOW, tz="Europe/London"))
    assert "0 new" in again.summary()


def test_unusable_parameters_are_refused():
    for bad in ({"n_patients": 0}, {"dependence_fraction": 0.8, "confounder_fraction": 0.5}, {"onset_speed": 0}, {"noise": -1},
                {"maintenance_interval_scale": 0}):
        with pytest.raises(ValueError):
            CohortParams(end=END, **bad)


def test_a_busier_network_shortens_every_plan_and_adds_sessions_but_not_check_ins():
    usual = generate_cohort(CohortParams(n_patients=60, months=6, end=END, seed=4))
    busy = generate_cohort(CohortParams(n_patients=60, months=6, end=END, seed=4, maintenance_interval_scale=0.4))
    plans = usual.patients.set_index("patient_id")["planned_interval_days"]
    shorter = busy.patients.set_index("patient_id")["planned_interval_days"]
    assert (shorter <= plans).all() and (shorter < plans).any() and shorter.min() >= 7
    assert len(busy.sessions) > 1.2 * len(usual.sessions)
    assert len(busy.checkins) == len(usual.checkins)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n_patients=st.integers(1, 15),
    seed=st.integers(0, 2**32 - 1),
    noise=st.floats(0, 3),
    months=st.integers(1, 12),
    end=st.dates(dt.date(2021, 1, 1), END),
    missing_rate=st.floats(0, 1),
    onset_speed=st.floats(0.25, 4),
    interval=st.floats(1, 30),
    dependence=st.floats(0, 0.5),
    confounders=st.floats(0, 0.5),
)
def test_generation_never_leaves_the_contract(
    n_patients, seed, noise, months, end, missing_rate, onset_speed, interval, dependence, confounders
):
    params = CohortParams(
        n_patients=n_patients,
        end=end,
        months=months,
        seed=seed,
        dependence_fraction=dependence,
        checkin_interval_days=interval,
        missing_rate=missing_rate,
        noise=noise,
        onset_speed=onset_speed,
        confounder_fraction=confounders,
    )
    cohort = generate_cohort(params)
    assert contract_problems(cohort, end) == []
    assert len(cohort.patients) == n_patients and len(cohort.sessions) >= n_patients
    # A request the note speaks of has its box ticked, whatever goes unrecorded: a blank box beside "Dose raised
    # ... after patient request" contradicted the note, and the dose rule missed a stepwise rise the chart showed.
    notes = cohort.sessions["notes"].fillna("")
    asked_more = cohort.sessions["dose_increase_request"].astype("boolean").fillna(False).to_numpy(dtype=bool)
    assert asked_more[notes.str.contains("after patient request", regex=False).to_numpy()].all()
    asked_early = cohort.sessions["early_request"].astype("boolean").fillna(False).to_numpy(dtype=bool)
    assert asked_early[notes.str.contains("Booster brought forward", regex=False).to_numpy()].all()
    onsets = cohort.truth.dependence_onset.dropna()
    assert (onsets <= pd.Timestamp(end)).all()
    # The midpoint is half of a 5-12 week build-up (scaled by the onset speed) after the onset.
    half = (cohort.truth.dependence_midpoint - cohort.truth.dependence_onset).dropna().dt.days
    assert half.index.equals(onsets.index)
    assert ((half >= np.floor(17.5 / onset_speed)) & (half <= np.ceil(42 / onset_speed))).all()
