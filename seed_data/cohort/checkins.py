"""What a synthetic patient reports at each check-in: craving, SDS, the warning-sign checklist, PHQ-9.

Each answer is the patient's hidden course plus questionnaire noise. Depression drives the
non-specific items (sleep, appetite, withdrawal, irritability), so a relapse moves them and not
the specific ones; dependence raises craving and, one after another over weeks, tolerance,
secrecy, seeking, and finally use outside the clinic. SDS items 2 and 5 (worry about missing a
session, difficulty going without) also rise with plain therapeutic reliance and with relapse.
"""

from __future__ import annotations

import numpy as np

from seed_data.cohort.arrays import bounded, join_nonempty, phrases
from seed_data.cohort.plan import PatientPlan
from store.vocabulary import WARNING_SIGNS

MISSED_CHECKIN_RATE = 0.08
#: How strongly depression severity shows in each checklist item (PHQ-9 27 = weight x 3).
_DEPRESSION_WEIGHT = {
    "sleep_disturbance": 0.8,
    "appetite_change": 0.6,
    "social_withdrawal": 0.6,
    "neglected_responsibilities": 0.45,
    "irritable_when_not_using": 0.4,
}
#: Expected level of each item with no depression and no dependence: below 0, so an occasional
#: 1 appears only through noise, rarest for the items that point at misuse itself.
_QUIET_LEVEL = {
    "secrecy": -0.5,
    "tolerance": -0.45,
    "recreational_seeking": -0.5,
    "non_prescribed_use": -0.55,
    "other_substance_use": -0.45,
    "coordination_problems": -0.3,
    "dissociation_outside_sessions": -0.3,
}
#: What patients add in their own words; none names a person, place or number.
SPIKE_NOTES = (
    "Difficult week after a family row; strong urge to use, did not act on it.",
    "Stressful week at work; urges came and went.",
)
RELAPSE_NOTES = (
    "Mood dipping again; sleeping badly.",
    "Feels the benefit wearing off before the next session.",
)
DEPENDENCE_NOTES = (
    "Thinking about ketamine most days.",
    "Finds it hard to wait for the next session.",
    "Would like sessions more often.",
)
PTSD_NOTES = ("Still feel detached and unreal at times, as before treatment.", "Nightmares less frequent.")
ORDINARY_NOTES = (
    "Good week.",
    "Back at work part-time.",
    "Feeling more like myself.",
    "Low day midweek, otherwise fine.",
)
_SIGN_INDEX = {sign: i for i, sign in enumerate(WARNING_SIGNS)}


def _checkin_days(plan: PatientPlan, interval: float, rng: np.random.Generator) -> np.ndarray:
    """Baseline on the first treatment day, then roughly every `interval` days, some missed."""
    shortest = max(1.0, np.floor(0.75 * interval))
    cap = int(np.ceil(-plan.start_day / shortest)) + 3  # enough gaps to reach the end
    gaps = np.maximum(shortest, np.round(interval * rng.uniform(0.75, 1.25, cap)))
    days = plan.start_day + np.concatenate([[0], np.cumsum(gaps)]).astype(int)
    missed = rng.random(len(days)) < MISSED_CHECKIN_RATE
    missed[0] = False
    return days[(days <= 0) & ~missed]


def checkin_records(
    plan: PatientPlan, interval: float, noise: float, missing_rate: float, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Column arrays (contract names) for one patient's check-ins, plus `day` and `minute`."""
    days = _checkin_days(plan, interval, rng)
    n = len(days)
    progress = plan.dependence_progress(days)
    relapse = plan.relapse_progress(days)
    phq_mean = plan.phq_mean(days)
    out: dict[str, np.ndarray] = {"day": days}

    minute = rng.integers(7 * 60, 22 * 60, n)
    minute[0] = 7 * 60 + 30 + int(rng.integers(26))  # baseline in clinic, before the first session
    out["minute"] = minute

    spike = np.zeros(n, dtype=bool)
    if plan.spike_day is not None and n > 1:
        spike[1 + int(np.argmin(np.abs(days[1:] - plan.spike_day)))] = True
    craving = np.round(plan.craving_base + plan.craving_peak * progress + noise * rng.normal(0, 0.5, n))
    craving = np.where(spike, rng.integers(6, 9, n), bounded(craving, 0, 10))
    out["craving"] = craving.astype(float)

    # SDS: about half the check-ins, never at baseline (no ketamine yet), all five items or none.
    benefit = bounded((plan.phq_baseline - phq_mean) / plan.phq_baseline, 0, 1)
    dep = progress * plan.self_report_scale
    reliance = plan.reliance * benefit
    sds_means = (
        2.4 * dep - 0.2,
        reliance + 1.0 * relapse + 2.5 * dep,
        2.0 * dep - 0.1,
        1.3 * dep - 0.2,
        reliance + 1.2 * relapse + 2.6 * dep,
    )
    has_sds = rng.random(n) < plan.sds_rate
    has_sds[:1] = False
    sds_noise = rng.normal(0, 0.35, (5, n))
    for k, mean in enumerate(sds_means):
        item = bounded(np.round(mean + noise * sds_noise[k]), 0, 3)
        out[f"sds_{k + 1}"] = np.where(has_sds, item, np.nan)

    # The warning-sign checklist.
    sign_noise = rng.normal(0, 0.35, (len(WARNING_SIGNS), n))
    gone = rng.random((len(WARNING_SIGNS) + 1, n)) < missing_rate
    for sign, i in _SIGN_INDEX.items():
        weight = _DEPRESSION_WEIGHT.get(sign)
        mean = weight * 3 * phq_mean / 27 - 0.35 if weight else np.full(n, _QUIET_LEVEL.get(sign, -0.3))
        if plan.sign_amplitude[i] > 0:
            threshold = plan.sign_threshold[i]
            mean = mean + plan.sign_amplitude[i] * bounded((progress - threshold) / (1 - threshold), 0, 1)
        if sign == "dissociation_outside_sessions":
            mean = mean + plan.ptsd_dissociation
        if sign == "sleep_disturbance":
            mean = mean + 0.5 * (plan.ptsd_dissociation > 0) + 1.0 * spike
        level = bounded(np.round(mean + noise * sign_noise[i]), 0, 3)
        out[sign] = np.where(gone[i], np.nan, level)

    phq = bounded(np.round(phq_mean + noise * rng.normal(0, 1.6, n)), 0, 27)
    gone_phq = gone[-1]
    gone_phq[:1] = False
    out["phq9"] = np.where(gone_phq, np.nan, phq)
    out["notes"] = _checkin_notes(plan, spike, relapse, progress, rng)
    return out


def _checkin_notes(
    plan: PatientPlan, spike: np.ndarray, relapse: np.ndarray, progress: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """The odd line a patient adds in their own words."""
    n = len(spike)
    u = rng.random((4, n))
    first = np.arange(n) == 0
    baseline = phrases(rng, first & (u[0] < 0.3), ("Baseline before first session.",))
    spike_note = phrases(
        rng,
        spike,
        SPIKE_NOTES,
    )
    relapse_start = np.zeros(n, dtype=bool)
    if (relapse > 0.4).any():
        relapse_start[int(np.argmax(relapse > 0.4))] = True
    relapse_note = phrases(rng, relapse_start, RELAPSE_NOTES)
    dependence_note = phrases(
        rng,
        (progress > 0.5) & (u[1] < 0.25 * plan.self_report_scale),
        DEPENDENCE_NOTES,
    )
    ptsd_note = phrases(
        rng,
        (plan.ptsd_dissociation > 0) & ~first & (u[2] < 0.15),
        PTSD_NOTES,
    )
    ordinary = phrases(
        rng,
        ~first & ~spike & ~relapse_start & (u[3] < 0.03),
        ORDINARY_NOTES,
    )
    return join_nonempty([baseline, spike_note, relapse_note, dependence_note, ptsd_note, ordinary], " ", n)
