"""Build a whole synthetic cohort: one random stream per patient, records stacked into typed frames.

Each patient draws from streams derived from (seed, patient index) only, so the same parameters
give the same records, and adding patients leaves the existing ones untouched. Work inside a
patient is vectorised; the frames, time stamps and text columns are built once for the cohort.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from seed_data.cohort.archetypes import assign
from seed_data.cohort.arrays import join_nonempty
from seed_data.cohort.checkins import checkin_records
from seed_data.cohort.params import Cohort, CohortParams, yesterday_utc
from seed_data.cohort.plan import ESKETAMINE, IV_PAIN, PatientPlan, draw_plan
from seed_data.cohort.schedule import session_schedule
from seed_data.cohort.sessions import SEVERITY_NAMES, SIDE_EFFECT_ORDER, session_records
from store.frames import CHECKIN_DTYPES, PATIENT_DTYPES, SESSION_DTYPES
from store.vocabulary import CHECKIN_COLUMNS, PATIENT_COLUMNS, SESSION_COLUMNS

#: The clinic's local time zone: appointments are booked in it, records are stored in UTC.
CLINIC_TIMEZONE = "Europe/London"
TRUTH_COLUMNS = ("patient_id", "archetype", "dependence_onset", "dependence_midpoint", "notes")


def generate_cohort(params: CohortParams | None = None) -> Cohort:
    """Generate the cohort `params` describe (default: the 40-patient demo ending yesterday, UTC)."""
    params = CohortParams() if params is None else params
    patients, truths, sessions, checkins, plans = [], [], [], [], []
    for index in range(params.n_patients):
        plan_rng, session_rng, checkin_rng, record_rng = (
            np.random.default_rng(s) for s in np.random.SeedSequence([params.seed, index]).spawn(4)
        )
        assignment = assign(index, params.seed, params.dependence_fraction, params.confounder_fraction)
        plan = draw_plan(index, assignment, params, plan_rng)
        plans.append(plan)
        schedule = session_schedule(plan, params.end, params.span_days, session_rng)
        sessions.append(session_records(plan, schedule, params.missing_rate, session_rng))
        checkins.append(
            checkin_records(plan, params.checkin_interval_days, params.noise, params.missing_rate, checkin_rng)
        )
        patients.append(_patient_row(plan, params, record_rng))
        truths.append(_truth_row(plan, schedule.days, params.end))
    ids = [row["patient_id"] for row in patients]
    return Cohort(
        patients=_typed(pd.DataFrame(patients), PATIENT_COLUMNS, PATIENT_DTYPES),
        sessions=_session_frame(sessions, ids, params.end),
        checkins=_checkin_frame(checkins, ids, params.end),
        truth=_truth_frame(truths),
        mg_plans=pd.DataFrame({
            "patient_id": pd.Series(ids, dtype="string"),
            "planned_dose_mg": pd.Series([_planned_mg(plan) for plan in plans], dtype="float64"),
        }).dropna().reset_index(drop=True),
    )


def _planned_mg(plan: PatientPlan) -> float | None:
    """The fixed dose the clinician plans for intranasal esketamine: the titrated dose where titration is planned."""
    if plan.protocol != ESKETAMINE:
        return None
    return plan.titrated_dose if plan.titrated_dose is not None else plan.start_dose


#: The demo's seed: every look-alike kind and four patients who develop dependence, three red by
#: now and one still amber (early signs), with a depressive relapse at amber on some weekdays;
#: checked over a week of end dates. The default seed's demo had no amber patient to triage.
DEMO_SEED = 20261175


def demo_cohort(end: dt.date | None = None) -> Cohort:
    """The fixed 40-patient demo caseload; `end` (default yesterday, UTC) only moves it in time."""
    return generate_cohort(CohortParams(end=end or yesterday_utc(), seed=DEMO_SEED))


def _day(end: dt.date, day: int) -> dt.date:
    """The calendar date of a day number (0 = end)."""
    return end + dt.timedelta(days=int(day))


def _patient_row(plan: PatientPlan, params: CohortParams, rng: np.random.Generator) -> dict:
    """The patients.csv row the clinic keeps; sex and birth year are sometimes not recorded."""
    unrecorded = rng.random(2) < params.missing_rate
    return {
        "patient_id": plan.patient_id,
        "display_name": plan.display_name,
        "birth_year": np.nan if unrecorded[0] else float(plan.birth_year),
        "sex": None if unrecorded[1] else plan.sex,
        "indication": plan.indication,
        "sud_history": plan.sud_history,
        "treatment_start": _day(params.end, plan.start_day),
        "planned_dose_mg_per_kg": np.nan if plan.planned_dose_mg_per_kg is None else plan.planned_dose_mg_per_kg,
        "planned_interval_days": float(plan.planned_interval_days),
        "clinician": plan.clinician,
    }


def _protocol_words(plan: PatientPlan) -> str:
    """The plan in a clinician's shorthand, for the truth notes."""
    if plan.protocol == ESKETAMINE:
        words = f"intranasal esketamine {plan.start_dose:g} mg"
        unit = "mg"
    elif plan.protocol == IV_PAIN:
        words, unit = "IV 0.35 mg/kg/h over 4 h for pain", "mg/kg"
    else:
        words, unit = f"IV {plan.start_dose:g} mg/kg over 40 min", "mg/kg"
    if plan.titrated_dose is not None:
        why = "partial response" if plan.titration_for_nonresponse else "plan"
        words += f", clinician titration to {plan.titrated_dose:g} {unit} at session {plan.titration_session + 1} ({why})"
    return words + f", maintenance every {plan.planned_interval_days} days"


def _truth_row(plan: PatientPlan, session_days: np.ndarray, end: dt.date) -> dict:
    """What really happens to this patient, for scoring the risk engine."""
    notes = [_protocol_words(plan)]
    if len(session_days) < len(plan.induction):
        notes.append("still in induction at the end")
    if plan.sud_history:
        notes.append("SUD history")
    if plan.relapse_day is not None:
        notes.append(f"depressive relapse building from {_day(end, plan.relapse_day):%Y-%m-%d}")
    if plan.spike_day is not None:
        notes.append(f"one-week craving spike near {_day(end, plan.spike_day):%Y-%m-%d}")
    if plan.ptsd_dissociation > 0:
        notes.append("depersonalisation outside sessions since before treatment")
    onset = midpoint = pd.NaT
    if plan.onset_day is not None:
        onset = _day(end, plan.onset_day)
        # The build-up is an S-curve over ramp_days, so it is half done after half of them.
        midpoint = _day(end, plan.onset_day + int(round(plan.ramp_days / 2)))
        sds = "no SDS" if plan.sds_rate == 0 else "SDS on some check-ins"
        notes.append(
            f"dependence from {onset:%Y-%m-%d}, {plan.profile} presentation, "
            f"builds over about {plan.ramp_days / 7:.0f} weeks, {sds}"
        )
    return {
        "patient_id": plan.patient_id,
        "archetype": plan.archetype,
        "dependence_onset": onset,
        "dependence_midpoint": midpoint,
        "notes": "; ".join(notes),
    }


def _typed(frame: pd.DataFrame, columns: tuple[str, ...], dtypes: dict[str, str]) -> pd.DataFrame:
    """Contract columns in contract order with the dtypes of `store.frames` (no "-0" from rounding)."""
    typed = frame.loc[:, list(columns)].astype({c: dtypes[c] for c in columns}).reset_index(drop=True)
    floats = [c for c in columns if dtypes[c] == "float64"]
    typed[floats] = typed[floats] + 0.0
    return typed


def _stack(parts: list[dict[str, np.ndarray]], ids: list[str]) -> dict[str, np.ndarray]:
    """Concatenate per-patient column arrays, with each patient's id repeated once per row."""
    columns = {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}
    columns["patient_id"] = np.repeat(np.array(ids, dtype=object), [len(part["day"]) for part in parts])
    return columns


def _utc_instants(end: dt.date, days: np.ndarray, minutes: np.ndarray) -> pd.DatetimeIndex:
    """Clinic-local day and minute of day as UTC instants (clinic hours never meet a DST gap)."""
    local = np.datetime64(end, "D") + days.astype("timedelta64[D]") + minutes.astype("timedelta64[m]")
    return pd.DatetimeIndex(local.astype("datetime64[ns]")).tz_localize(CLINIC_TIMEZONE).tz_convert("UTC")


def _side_effect_text(effects: np.ndarray) -> np.ndarray:
    """Severity codes (sessions x effects) as the contract's `effect:severity;...` strings."""
    severity_names = np.array(SEVERITY_NAMES, dtype=object)
    pieces = [
        np.where(effects[:, j] > 0, f"{name}:" + severity_names[effects[:, j]], "")
        for j, name in enumerate(SIDE_EFFECT_ORDER)
    ]
    return join_nonempty(pieces, ";", len(effects))


def _records_frame(
    columns: dict[str, np.ndarray], end: dt.date, time_column: str, names: tuple[str, ...], dtypes: dict[str, str]
) -> pd.DataFrame:
    """Stacked record columns as one frame of `store.frames` shape, "" text meaning not recorded."""
    frame = pd.DataFrame({name: columns[name] for name in names if name in columns})
    frame[time_column] = _utc_instants(end, columns["day"], columns["minute"])
    for name in ("side_effects", "notes"):
        if name in frame:
            frame[name] = pd.Series(frame[name], dtype="string").replace("", pd.NA)
    return _typed(frame, names, dtypes)


def _session_frame(parts: list[dict[str, np.ndarray]], ids: list[str], end: dt.date) -> pd.DataFrame:
    """All sessions as one frame."""
    columns = _stack(parts, ids)
    columns["side_effects"] = _side_effect_text(columns.pop("effects"))
    return _records_frame(columns, end, "session_at", SESSION_COLUMNS, SESSION_DTYPES)


def _checkin_frame(parts: list[dict[str, np.ndarray]], ids: list[str], end: dt.date) -> pd.DataFrame:
    """All check-ins as one frame."""
    return _records_frame(_stack(parts, ids), end, "reported_at", CHECKIN_COLUMNS, CHECKIN_DTYPES)


def _truth_frame(rows: list[dict]) -> pd.DataFrame:
    """The truth table: archetype per patient and, for dependence, the onset date and the build-up's midpoint."""
    frame = pd.DataFrame(rows, columns=list(TRUTH_COLUMNS))
    dtypes = {
        "patient_id": "string", "archetype": "string", "dependence_onset": "datetime64[ns]",
        "dependence_midpoint": "datetime64[ns]", "notes": "string",
    }  # fmt: skip
    return frame.astype(dtypes)
