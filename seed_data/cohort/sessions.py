"""What the nurse records at each synthetic session: dose, weight, vitals, dissociation, side effects, notes.

Values follow the clinical facts in DESIGN.md: blood pressure rises after dosing (+10-25
systolic, severe hypertension > 180 in about 1% of sessions), SpO2 stays 95-100, peak CADSS
starts around 5-30 and falls with repeated doses, and 30-50% of sessions list a side effect,
mostly mild.
"""

from __future__ import annotations

import numpy as np

from seed_data.catalogue import side_effects
from seed_data.cohort.arrays import bounded, choose, join_nonempty, phrases
from seed_data.cohort.plan import ESKETAMINE, IV, IV_PAIN, SLOT_COUNT, PatientPlan
from seed_data.cohort.schedule import SessionSchedule

#: Side effects the generator draws, with the per-session chance for an average patient; vomiting
#: follows nausea and raised blood pressure follows the measured pressure, so they are not here.
SIDE_EFFECT_RATES = {
    "dissociation": 0.11,
    "dizziness": 0.075,
    "nausea": 0.07,
    "headache": 0.045,
    "sedation": 0.045,
    "blurred_vision": 0.025,
    "anxiety": 0.022,
    "confusion": 0.01,
    "urinary_symptoms": 0.003,
    "other": 0.008,
}
#: Column order of the severity matrix (0 = none, 1 mild, 2 moderate, 3 severe).
SIDE_EFFECT_ORDER = tuple(effect.id for effect in side_effects())  # the catalogue's ids, in its order
SEVERITY_NAMES = ("", "mild", "moderate", "severe")
#: Notes the nurse writes; none names a person, place or number that could identify anyone.
PUSHED_EARLIER_NOTES = (
    "Asked to come in earlier than planned.",
    "Asked whether sessions could be more frequent.",
    "Rang asking for an earlier slot.",
)
PUSHED_DOSE_NOTES = (
    "Asked for a higher dose; plan explained, dose unchanged.",
    "Requested a stronger dose; tolerance discussed.",
)
OTHER_EFFECT_NOTES = ("Other: metallic taste.", "Other: tingling in hands.", "Other: jaw tension.")
ROUTINE_NOTES = ("Tolerated well.", "Rested after dosing, then fine.", "Driven home by a relative.")
#: The first appointment slot, 08:00 clinic time, in minutes after midnight.
FIRST_SLOT_MINUTES = 8 * 60


def _severities(rng: np.random.Generator, size: int) -> np.ndarray:
    """Severity codes 1-3, mostly mild."""
    return choose(rng, np.array([1, 2, 3]), np.array([0.8, 0.17, 0.03]), size)


def session_records(
    plan: PatientPlan, schedule: SessionSchedule, missing_rate: float, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Column arrays (contract names) for one patient's sessions, plus `day`, `minute` and `effects`."""
    n = len(schedule.days)
    index = np.arange(n)
    progress = plan.dependence_progress(schedule.days)

    weight = np.round(plan.weight_kg + bounded(rng.normal(0.0, 0.4, n), -1.0, 1.0), 1)
    if plan.protocol == ESKETAMINE:
        dose = schedule.dose_level.astype(float)
        duration = np.full(n, np.nan)  # a nasal spray has no infusion time
    else:
        dose = np.round(schedule.dose_level * weight)
        duration = np.full(n, 240.0 if plan.protocol == IV_PAIN else 40.0)
        if plan.protocol == IV:
            duration[rng.random(n) < 0.05] = 45.0  # infusion slowed for nausea or blood pressure

    # Blood pressure before and after dosing.
    sbp_pre = bounded(np.round(plan.sbp_base + rng.normal(0, 7, n)), 95, 175)
    dbp_pre = bounded(np.round(plan.dbp_base + rng.normal(0, 5, n)), 55, sbp_pre - 25)
    rise = bounded(rng.normal(plan.bp_rise, 5, n), 2, 35)
    # Severe hypertension (> 180 systolic) in about 1% of sessions, almost only from a high start.
    severe_chance = np.where(sbp_pre >= 145, 0.15, np.where(sbp_pre >= 130, 0.005, 0.0))
    severe = rng.random(n) < severe_chance
    severe_sbp = bounded(np.maximum(np.round(sbp_pre + rng.uniform(30, 50, n)), 181), 181, 215)
    sbp_post = np.where(severe, severe_sbp, np.minimum(np.round(sbp_pre + rise), 178)).astype(float)
    dbp_post = np.where(severe, rng.integers(96, 113, n), np.round(dbp_pre + rise * 0.45 + rng.normal(0, 3, n)))
    dbp_post = bounded(dbp_post, 50, sbp_post - 20).astype(float)
    hr_pre = bounded(np.round(plan.hr_base + rng.normal(0, 5, n)), 50, 115)
    hr_post = bounded(np.round(hr_pre + rng.normal(5, 5, n)), 48, 130)
    spo2_pre = choose(rng, np.array([96.0, 97, 98, 99, 100]), np.array([0.08, 0.2, 0.32, 0.25, 0.15]), n)
    spo2_post = bounded(spo2_pre - np.array([0.0, 0, 1, 1, 2])[rng.integers(5, size=n)], 95, 100)

    # Peak CADSS: falls with repeated doses, rises a little with dose, and less with tolerance.
    relative_dose = schedule.dose_level / plan.start_dose
    cadss = plan.cadss_floor + plan.cadss_peak * np.exp(-index / plan.cadss_decay) * relative_dose
    cadss = bounded(np.round(cadss * (1 - 0.4 * progress) + rng.normal(0, 1.5, n)), 0, 92)

    # Side effects: a severity code per catalogue effect and session.
    early_factor = 1.0 + 0.5 * np.exp(-index / 4.0)
    effects = np.zeros((n, len(SIDE_EFFECT_ORDER)), dtype=np.int8)
    draws = rng.random((n, len(SIDE_EFFECT_ORDER)))
    severity = _severities(rng, (n, len(SIDE_EFFECT_ORDER)))
    for name, rate in SIDE_EFFECT_RATES.items():
        j = SIDE_EFFECT_ORDER.index(name)
        chance = rate * plan.side_effect_propensity * early_factor
        if name == "urinary_symptoms":
            chance = chance + 0.06 * progress
        effects[:, j] = np.where(draws[:, j] < chance, severity[:, j], 0)
    nausea = effects[:, SIDE_EFFECT_ORDER.index("nausea")] > 0
    vomit = SIDE_EFFECT_ORDER.index("vomiting")
    effects[:, vomit] = np.where(nausea & (draws[:, vomit] < 0.2), severity[:, vomit], 0)
    raised_bp = (sbp_post >= 160) | (sbp_post - sbp_pre >= 28)
    bp = SIDE_EFFECT_ORDER.index("elevated_blood_pressure")
    effects[:, bp] = np.where(
        severe, np.where(draws[:, bp] < 0.6, 3, 2), np.where(raised_bp & (draws[:, bp] < 0.35), 1, 0)
    )

    notes, early_noted, more_noted = _session_notes(plan, schedule, severe, sbp_post, dbp_post, effects, rng)

    # Anything optional may go unrecorded; a severe blood pressure is always written down.
    gone = rng.random((11, n)) < missing_rate
    for values, missing in (
        (weight, gone[0]),
        (duration, gone[1]),
        (hr_pre, gone[4]),
        (hr_post, gone[5]),
        (spo2_pre, gone[6]),
        (spo2_post, gone[7]),
        (cadss, gone[8]),
    ):
        values[missing] = np.nan
    sbp_pre[gone[2]] = dbp_pre[gone[2]] = np.nan
    drop_post = gone[3] & ~severe
    sbp_post[drop_post] = dbp_post[drop_post] = np.nan
    # A request the session's note speaks of ("Dose raised ... after patient request") has its box ticked too: a
    # nurse who writes it down records it, and a blank box beside such a note contradicts it.
    early = np.where(gone[9] & ~early_noted, np.nan, schedule.early_request.astype(float))
    dose_request = np.where(gone[10] & ~more_noted, np.nan, schedule.dose_increase_request.astype(float))

    usual = rng.random(n) < 0.6
    slot = np.where(usual, plan.usual_slot, rng.integers(SLOT_COUNT[plan.protocol], size=n))
    return {
        "day": schedule.days,
        "minute": FIRST_SLOT_MINUTES + 15 * slot,
        "route": np.full(n, plan.route, dtype=object),
        "dose_mg": dose,
        "weight_kg": weight,
        "duration_min": duration,
        "early_request": early,
        "dose_increase_request": dose_request,
        "sbp_pre": sbp_pre,
        "dbp_pre": dbp_pre,
        "sbp_post": sbp_post,
        "dbp_post": dbp_post,
        "hr_pre": hr_pre,
        "hr_post": hr_post,
        "spo2_pre": spo2_pre,
        "spo2_post": spo2_post,
        "dissociation_cadss": cadss,
        "effects": effects,
        "notes": notes,
    }


def _session_notes(
    plan: PatientPlan,
    schedule: SessionSchedule,
    severe: np.ndarray,
    sbp_post: np.ndarray,
    dbp_post: np.ndarray,
    effects: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Short clinical notes, only where something happened worth writing down; with the sessions whose note speaks
    of a request for an earlier session, and of one for a higher dose."""
    n = len(schedule.days)
    unit = "mg" if plan.protocol == ESKETAMINE else "mg/kg"
    titration_reason = " per plan: partial response so far." if plan.titration_for_nonresponse else " per plan."
    dose_change = np.full(n, "", dtype=object)
    for i in np.flatnonzero(schedule.titrated_here):
        dose_change[i] = f"Dose increased to {schedule.dose_level[i]:g} {unit}{titration_reason}"
    for i in np.flatnonzero(schedule.raised_on_request):
        dose_change[i] = f"Dose raised to {schedule.dose_level[i]:g} {unit} after patient request."
    bp_note = np.full(n, "", dtype=object)
    for i in np.flatnonzero(severe):
        bp_note[i] = f"BP {sbp_post[i]:.0f}/{dbp_post[i]:.0f} after dosing; observed until settled."
    booster = np.where(schedule.booster, "Booster brought forward: says the effect wears off sooner, mood lower.", "")
    is_dependence = plan.onset_day is not None
    asked_early = schedule.early_request & ~schedule.booster
    asked_more = schedule.dose_increase_request & ~schedule.raised_on_request
    u = rng.random((4, n))
    early_note = phrases(
        rng,
        asked_early & (u[0] < (0.5 if is_dependence else 1.0)),
        PUSHED_EARLIER_NOTES if is_dependence else ("Moved earlier at patient request (travel).",),
    )
    more_note = phrases(
        rng,
        asked_more & (u[1] < (0.4 if is_dependence else 1.0)),
        PUSHED_DOSE_NOTES if is_dependence else ("Asked whether the dose could go up; kept at plan.",),
    )
    other_note = phrases(rng, effects[:, SIDE_EFFECT_ORDER.index("other")] > 0, OTHER_EFFECT_NOTES)
    antiemetic = np.where((effects[:, SIDE_EFFECT_ORDER.index("vomiting")] > 0) & (u[2] < 0.6), "Antiemetic given.", "")
    first_words = "First dose; observed 2 h, fit to leave." if plan.protocol == ESKETAMINE else "First session; consent and plan reviewed."
    first = np.where((np.arange(n) == 0) & (u[3] < 0.7), first_words, "")
    uneventful = ~effects.any(axis=1) & ~severe
    routine = phrases(rng, uneventful & (rng.random(n) < 0.03), ROUTINE_NOTES)
    parts = [first, dose_change, booster, early_note, more_note, bp_note, other_note, antiemetic, routine]
    early_noted = schedule.booster | (early_note != "")
    more_noted = schedule.raised_on_request | (more_note != "")
    return join_nonempty(parts, " ", n), early_noted, more_noted
