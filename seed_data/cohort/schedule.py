"""When a synthetic patient is dosed, what they asked for, and how much they got.

The calendar follows the protocol (induction, then maintenance at the planned interval with the
usual slippage of holidays and rescheduling). Dependence bends it: intervals shrink below plan,
requests for earlier sessions and higher doses become frequent, and the clinic gives way to some
of them, so the dose creeps up. A depressive relapse brings one booster forward, once.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from seed_data.cohort.archetypes import DEPENDENCE
from seed_data.cohort.plan import ESKETAMINE, PatientPlan, weekday_on_or_after

#: Highest IV dose (mg/kg) the synthetic clinic gives in, however hard a patient pushes.
IV_CEILING_MG_PER_KG = 1.0
#: Largest IV increase (mg/kg) the clinic concedes at one session.
IV_STEP_MG_PER_KG = 0.1
ESKETAMINE_STEP_MG, ESKETAMINE_MAX_MG = 28.0, 84.0
#: Share of a dependent patient's dose requests the clinic gives way to.
CONCEDE_RATE = 0.5
MIN_GAP_DAYS = 3
#: Share of ordinary maintenance intervals stretched by holidays, illness or clinic capacity.
DELAY_RATE = 0.06
#: Share of ordinary sessions where a settled patient asks to come early or about a higher dose.
ORDINARY_REQUEST_RATE = 0.01


@dataclass(frozen=True)
class SessionSchedule:
    """Per session: day, the patient's requests, the dose level, and what changed there."""

    days: np.ndarray  # int, days relative to the cohort's end (all <= 0)
    early_request: np.ndarray  # bool
    dose_increase_request: np.ndarray  # bool
    dose_level: np.ndarray  # mg/kg for IV, mg for esketamine
    titrated_here: np.ndarray  # bool: first session at the clinician's titrated dose
    raised_on_request: np.ndarray  # bool: dose raised above the previous session's after a request
    booster: np.ndarray  # bool: a relapse booster brought forward


def _session_days(
    plan: PatientPlan, end: dt.date, rng: np.random.Generator, cap: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """Clinic days of every session up to the end, which were brought forward at the patient's
    request, and the index of the relapse booster (-1 if none)."""
    jitter = rng.normal(0.0, 1.0, cap)
    delayed = rng.random(cap) < DELAY_RATE
    delay = rng.uniform(4, 12, cap)
    ask = rng.random(cap)
    days: list[int] = []
    asked: list[bool] = []
    for offset in plan.induction:
        day = weekday_on_or_after(plan.start_day + offset, end)
        if days and day <= days[-1]:
            day = weekday_on_or_after(days[-1] + 1, end)
        if day > 0:
            return np.array(days, dtype=int), np.array(asked, dtype=bool), -1
        days.append(day)
        asked.append(False)
    planned = plan.planned_interval_days
    booster_at = -1
    for k in range(cap):
        last = days[-1]
        interval = planned + jitter[k] * (1.5 if planned >= 14 else 0.7)
        progress = float(plan.dependence_progress(last))
        # Dependence: the patient pushes for earlier sessions more and more often, and the
        # clinic gives way, so intervals shrink below plan.
        pushes = progress > 0.05 and ask[k] < 0.1 + 1.2 * plan.request_rate * progress
        # A settled patient now and then asks to come a few days early (travel, a hard week).
        ordinary = plan.onset_day is None and plan.archetype != "clinician_titration" and ask[k] < ORDINARY_REQUEST_RATE
        if pushes:
            interval = min(interval, planned * (1.0 - plan.interval_shrink * progress) + jitter[k])
        elif ordinary:
            interval -= 4
        elif plan.onset_day is None and delayed[k]:
            interval += delay[k]
        booster = plan.relapse_day is not None and booster_at < 0 and last >= plan.relapse_day + 10
        if booster:
            interval = min(interval, planned * 0.6)
        day = weekday_on_or_after(last + max(MIN_GAP_DAYS, int(round(interval))), end)
        if day > 0:
            break
        if booster:
            booster_at = len(days)
        days.append(day)
        asked.append(bool(pushes or ordinary or booster))
    return np.array(days, dtype=int), np.array(asked, dtype=bool), booster_at


def _conceded_levels(base: np.ndarray, wanted: np.ndarray, asked: np.ndarray, step: float) -> np.ndarray:
    """Dose per session when the clinic gives way at most `step` per request, and never goes back."""
    level = base.copy()
    current = base[0] if len(base) else 0.0
    for k in range(len(base)):
        current = max(current, base[k])
        if asked[k] and wanted[k] > current:
            current = min(wanted[k], current + step)
        level[k] = current
    return level


def session_schedule(plan: PatientPlan, end: dt.date, span_days: int, rng: np.random.Generator) -> SessionSchedule:
    """Draw the sessions of one patient from its own random stream."""
    cap = span_days // MIN_GAP_DAYS + 2
    days, early, booster_at = _session_days(plan, end, rng, cap)
    n = len(days)
    raise_u, concede_u = rng.random(n), rng.random(n)
    progress = plan.dependence_progress(days)
    booster = np.arange(n) == booster_at

    if plan.archetype == DEPENDENCE:
        dose_request = raise_u < 0.02 + plan.request_rate * progress
    elif plan.archetype == "clinician_titration":
        dose_request = np.zeros(n, dtype=bool)
    else:
        dose_request = raise_u < ORDINARY_REQUEST_RATE

    base = np.full(n, plan.start_dose)
    titrated_here = np.zeros(n, dtype=bool)
    if plan.titrated_dose is not None and plan.titration_session is not None and plan.titration_session < n:
        base[plan.titration_session :] = plan.titrated_dose
        titrated_here[plan.titration_session] = True

    level = base
    if plan.onset_day is not None and n:
        if plan.protocol == ESKETAMINE:
            steps = np.floor(progress / 0.35) * ESKETAMINE_STEP_MG
            wanted = np.minimum(plan.start_dose + steps, ESKETAMINE_MAX_MG)
        else:
            wanted = np.minimum(base + np.round(plan.dose_creep * progress / 0.05) * 0.05, IV_CEILING_MG_PER_KG)
        # The clinic gives way to about half the requests, one step at a time.
        step = ESKETAMINE_STEP_MG if plan.protocol == ESKETAMINE else IV_STEP_MG_PER_KG
        level = _conceded_levels(base, wanted, dose_request & (concede_u < CONCEDE_RATE), step)
    raised = np.zeros(n, dtype=bool)
    if n > 1:
        raised[1:] = (np.diff(level) > 1e-9) & dose_request[1:] & ~titrated_here[1:]
    return SessionSchedule(days, early, dose_request, np.round(level, 2), titrated_here, raised, booster)
