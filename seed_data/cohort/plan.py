"""One synthetic patient's treatment plan and hidden course, drawn once so sessions and check-ins agree.

Days are whole numbers counted from the cohort's `end` (0 = end, -7 = a week earlier), so a
later `end` moves the same stories in time (only weekend shifts and ages depend on the date).
The plan holds the patient record (what the clinic wrote down), the protocol (what the clinic
intended) and the course (what really happens: depression over time, and for some patients the
slow build-up of dependence) that the session and check-in generators sample from.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from seed_data.cohort.archetypes import DEPENDENCE, STABLE, Assignment
from seed_data.cohort.arrays import bounded, choose
from seed_data.cohort.params import CohortParams
from store.vocabulary import WARNING_SIGNS

CLINICIANS = ("demo-clinician", "dr-ahmed", "nurse-lewis")
#: Invented first names and surnames; with the "Demo-" prefix nobody can mistake them for people.
FIRST_NAMES = (
    "Alex", "Sam", "Jordan", "Robin", "Charlie", "Jamie", "Morgan", "Taylor", "Casey", "Riley",
    "Avery", "Quinn", "Rowan", "Sasha", "Frankie", "Jesse", "Drew", "Eden", "Kit", "Ash", "Remy",
    "Sky", "Toni", "Jo", "Lee", "Max", "Nico", "Pat", "Reese", "Billie", "Ellis",
)  # fmt: skip
SURNAMES = (
    "Ashdown", "Brightwater", "Calder", "Dunmore", "Elmsley", "Fenwick", "Greystone", "Hollis",
    "Ingram", "Jessop", "Kendrick", "Lowther", "Marlow", "Northcott", "Oakley", "Pennock",
    "Quarrie", "Redfern", "Southby", "Thorne", "Underhill", "Varley", "Whitlock", "Yardley",
    "Abbot", "Bramwell", "Carver", "Dalby", "Everard", "Foxley", "Gately", "Hartwell", "Ivers",
    "Juniper", "Langley", "Mossop", "Nettleton",
)  # fmt: skip

#: Protocols (facts from DESIGN.md "Clinical knowledge"): IV racemic ketamine for mood, 0.5 mg/kg
#: over 40 min, 0.75 after a clinician's titration for non-response; IV for chronic pain,
#: 0.35 mg/kg/h for 4 h = 1.4 mg/kg per session (the outpatient CRPS protocol of Schwartzman et al.,
#: Pain 2009;147:107-115); intranasal esketamine 56 or 84 mg, 28 mg to start at 65 and over
#: (esketamine nasal spray product information), fixed doses in mg.
IV, IV_PAIN, ESKETAMINE = "iv", "iv_pain", "esketamine"
ROUTE_OF = {IV: "iv", IV_PAIN: "iv", ESKETAMINE: "intranasal"}

#: Induction schedules as days after the first session: IV 6 infusions over 2-3 weeks; pain
#: 5 infusions in 1-2 weeks; esketamine twice weekly for 4 weeks, then weekly for 4.
INDUCTIONS = {
    IV: ((0, 2, 4, 7, 9, 11), (0, 3, 7, 10, 14, 17), (0, 2, 4, 7, 9, 14), (0, 3, 7, 9, 14, 16)),
    IV_PAIN: ((0, 1, 2, 3, 4), (0, 2, 4, 7, 9)),
    ESKETAMINE: ((0, 3, 7, 10, 14, 17, 21, 24, 28, 35, 42, 49),),
}
#: Appointment slots per protocol, every 15 minutes from 08:00, so dosing and observation end
#: within clinic hours (about 17:00): 40-min IV, 4-h pain infusion, esketamine with 2 h observation.
SLOT_COUNT = {IV: 33, IV_PAIN: 16, ESKETAMINE: 28}
#: Shortest planned maintenance interval (days) when `maintenance_interval_scale` shrinks the plans.
MIN_PLANNED_INTERVAL = 7
MAINTENANCE_INTERVALS = {IV: (14, 21, 28, 35, 42), IV_PAIN: (28, 35, 42), ESKETAMINE: (7, 14)}
_MAINTENANCE_WEIGHTS = {IV: (0.2, 0.25, 0.3, 0.15, 0.1), IV_PAIN: (0.4, 0.3, 0.3), ESKETAMINE: (0.45, 0.55)}

#: Indications by archetype (weights), and the share of depression patients given esketamine.
_INDICATIONS = {
    "stable_responder": {
        "depression": 0.55, "bipolar_depression": 0.1, "anxiety": 0.06, "ocd": 0.05, "ptsd": 0.06,
        "chronic_pain": 0.12, "other": 0.03, "substance_use_disorder": 0.03,
    },
    "clinician_titration": {"depression": 0.7, "bipolar_depression": 0.15, "anxiety": 0.15},
    "depressive_relapse": {"depression": 0.8, "bipolar_depression": 0.2},
    "craving_spike": {"depression": 0.7, "anxiety": 0.1, "ptsd": 0.1, "bipolar_depression": 0.1},
    "ptsd_depersonalisation": {"ptsd": 1.0},
    "sud_history_stable": {"substance_use_disorder": 0.35, "depression": 0.5, "ptsd": 0.15},
    DEPENDENCE: {"depression": 0.65, "bipolar_depression": 0.1, "ptsd": 0.15, "anxiety": 0.1},
}  # fmt: skip
#: PHQ-9 at baseline by indication (default 18-24: treatment-resistant depression).
_PHQ_BASELINE = {
    "chronic_pain": (10, 18), "ptsd": (14, 21), "anxiety": (13, 20), "ocd": (13, 20), "substance_use_disorder": (12, 20),
}  # fmt: skip

#: Dependence presentations: how candidly the patient reports it versus how much shows as behaviour.
PROFILES = ("candid", "mixed", "behavioural")
#: Per profile: (craving peak range, request rate at full progress, self-report amplitude scale).
_PROFILE_TRAITS = {
    "candid": ((5.0, 8.5), 0.45, (1.0, 1.2)),
    "mixed": ((4.0, 7.0), 0.6, (0.7, 0.9)),
    "behavioural": ((2.5, 4.5), 0.8, (0.25, 0.45)),
}
#: When (dependence progress 0-1) each checklist item starts to rise, and to about what level (0-3).
#: Tolerance comes first; secrecy and seeking next; use outside the clinic and other drugs last.
_SIGN_COURSE = {
    "tolerance": (0.1, 2.2),
    "secrecy": (0.3, 2.0),
    "recreational_seeking": (0.35, 2.0),
    "irritable_when_not_using": (0.3, 1.6),
    "social_withdrawal": (0.45, 1.2),
    "neglected_responsibilities": (0.5, 1.5),
    "sleep_disturbance": (0.5, 0.8),
    "non_prescribed_use": (0.65, 2.0),
    "other_substance_use": (0.7, 1.6),
    "coordination_problems": (0.75, 1.0),
    "dissociation_outside_sessions": (0.6, 1.0),
}
#: Items that are present in only some dependence courses: (share without SUD history, with).
_SIGN_SOMETIMES = {
    "non_prescribed_use": (0.5, 0.8),
    "other_substance_use": (0.2, 0.75),
    "coordination_problems": (0.3, 0.3),
    "dissociation_outside_sessions": (0.3, 0.3),
}


def smoothstep(x: np.ndarray) -> np.ndarray:
    """0 before 0, 1 after 1, an S-curve between: a change that builds up and levels off."""
    x = bounded(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


@dataclass(frozen=True)
class PatientPlan:
    """Everything fixed about one synthetic patient before any record is sampled."""

    patient_id: str
    archetype: str
    display_name: str
    birth_year: int
    sex: str
    indication: str
    sud_history: bool
    clinician: str
    protocol: str
    start_day: int
    weight_kg: float
    induction: tuple[int, ...]
    planned_interval_days: int
    planned_dose_mg_per_kg: float | None
    start_dose: float  # mg/kg for IV, mg for esketamine
    titrated_dose: float | None
    titration_session: int | None  # 0-based index of the first session at the titrated dose
    titration_for_nonresponse: bool
    # depression (PHQ-9) course
    phq_baseline: float
    phq_target: float
    phq_tau_days: float
    phq_partial: float | None  # level reached before a titration for non-response
    relapse_day: int | None
    relapse_ramp_days: float
    relapse_peak: float
    # craving and reliance without dependence
    craving_base: float
    reliance: float
    sds_rate: float
    spike_day: int | None
    ptsd_dissociation: float
    # dependence course (onset_day None when the patient does not develop it)
    onset_day: int | None
    ramp_days: float
    profile: str | None
    craving_peak: float
    request_rate: float
    interval_shrink: float
    dose_creep: float  # mg/kg above plan the patient pushes for at full progress (IV only)
    phq_worsening: float
    self_report_scale: float
    sign_threshold: np.ndarray  # per checklist item, progress at which it starts rising
    sign_amplitude: np.ndarray  # per checklist item, level at full progress (0 = never)
    # session physiology
    sbp_base: float
    dbp_base: float
    hr_base: float
    bp_rise: float
    cadss_peak: float
    cadss_floor: float
    cadss_decay: float
    side_effect_propensity: float
    usual_slot: int  # index of the patient's usual appointment slot

    @property
    def route(self) -> str:
        """The contract route of every session under this protocol."""
        return ROUTE_OF[self.protocol]

    @property
    def titration_day(self) -> int | None:
        """Planned day of the clinician's dose increase, if any."""
        if self.titration_session is None:
            return None
        return self.start_day + self.induction[min(self.titration_session, len(self.induction) - 1)]

    def dependence_progress(self, days: np.ndarray) -> np.ndarray:
        """How far dependence has developed (0-1) on each day: weeks of build-up, never a jump."""
        days = np.asarray(days, dtype=float)
        if self.onset_day is None:
            return np.zeros_like(days)
        return smoothstep((days - self.onset_day) / self.ramp_days)

    def relapse_progress(self, days: np.ndarray) -> np.ndarray:
        """How far a depressive relapse has returned (0-1) on each day."""
        days = np.asarray(days, dtype=float)
        if self.relapse_day is None:
            return np.zeros_like(days)
        return smoothstep((days - self.relapse_day) / self.relapse_ramp_days)

    def phq_mean(self, days: np.ndarray) -> np.ndarray:
        """Expected PHQ-9 total on each day, before questionnaire noise."""
        days = np.asarray(days, dtype=float)
        t = np.maximum(days - self.start_day, 0.0)
        decay = np.exp(-t / self.phq_tau_days)
        phq = self.phq_target + (self.phq_baseline - self.phq_target) * decay
        if self.phq_partial is not None and self.titration_day is not None:
            before = days < self.titration_day
            partial = self.phq_baseline - (self.phq_baseline - self.phq_partial) * (1 - decay)
            at_titration = self.phq_baseline - (self.phq_baseline - self.phq_partial) * (
                1 - np.exp(-(self.titration_day - self.start_day) / self.phq_tau_days)
            )
            after = self.phq_target + (at_titration - self.phq_target) * np.exp(
                -np.maximum(days - self.titration_day, 0.0) / self.phq_tau_days
            )
            phq = np.where(before, partial, after)
        phq = phq + (self.relapse_peak - phq).clip(min=0) * self.relapse_progress(days)
        return phq + self.phq_worsening * self.dependence_progress(days)


def weekday_on_or_after(day: int, end: dt.date) -> int:
    """The first clinic day (Monday-Friday) on or after `day`; the clinic is closed at weekends."""
    weekday = (end.weekday() + day) % 7
    return day + (7 - weekday if weekday >= 5 else 0)


def _pick(rng: np.random.Generator, weights: dict[str, float]) -> str:
    """One key of `weights`, drawn with those weights."""
    return str(choose(rng, np.array(list(weights)), np.array(list(weights.values())), None))


def _planned_interval(rng: np.random.Generator, protocol: str, scale: float) -> int:
    """The maintenance interval the plan sets (days), from the protocol's usual ones, scaled."""
    usual = int(_pick(rng, dict(zip(MAINTENANCE_INTERVALS[protocol], _MAINTENANCE_WEIGHTS[protocol]))))
    return usual if scale == 1 else max(MIN_PLANNED_INTERVAL, int(round(usual * scale)))


def _event_day(rng: np.random.Generator, start_day: int, earliest: float, latest_before_end: float) -> int:
    """A day after the start (at least `earliest` days in, if there is room) and before the end."""
    available = -start_day
    low = min(earliest, 0.4 * available)
    high = max(low, available - latest_before_end)
    return start_day + int(round(rng.uniform(low, high)))


def _start_day(archetype: str, start_position: float, params: CohortParams) -> int:
    """First treatment day, spread over the window; stories that need time to unfold start earlier."""
    earliest = {DEPENDENCE: 84, "depressive_relapse": 84, "craving_spike": 56}.get(archetype, 0)
    if archetype in ("clinician_titration", "ptsd_depersonalisation"):
        earliest = 28
    span = params.span_days
    low = min(earliest, 0.5 * span)
    day = weekday_on_or_after(-int(round(low + start_position * (span - low))), params.end)
    return day - 3 if day > 0 else day  # past a weekend `end`: the Friday before instead


def _dose_plan(rng: np.random.Generator, protocol: str, archetype: str, age: int) -> dict:
    """Starting dose, and the clinician's planned early titration (never asked for by the patient)."""
    titrated, session = None, None
    if protocol == ESKETAMINE:
        start = 28.0 if age >= 65 else 56.0  # 28 mg start at 65 and over
        if archetype == "clinician_titration" or (archetype != DEPENDENCE and rng.random() < (0.8 if age >= 65 else 0.3)):
            titrated, session = start + 28.0, int(rng.integers(1, 4))
        planned_per_kg = None  # fixed doses in mg, not by weight
    elif protocol == IV_PAIN:
        start = planned_per_kg = 1.4
    else:
        start = 0.5
        if archetype == "clinician_titration" or (archetype == STABLE and rng.random() < 0.12):
            titrated, session = 0.75, int(rng.integers(3, 5))
        planned_per_kg = titrated or start
    return {
        "start_dose": start,
        "titrated_dose": titrated,
        "titration_session": session,
        "titration_for_nonresponse": archetype == "clinician_titration",
        "planned_dose_mg_per_kg": planned_per_kg,
    }


def _depression_course(rng: np.random.Generator, archetype: str, indication: str, start_day: int) -> dict:
    """PHQ-9 from baseline down to response or remission; a relapse climbs back later."""
    low, high = _PHQ_BASELINE.get(indication, (18, 24))
    baseline = rng.uniform(low, high)
    course = {
        "phq_baseline": baseline,
        "phq_target": baseline * rng.uniform(0.12, 0.45),
        "phq_tau_days": rng.uniform(6, 20),
        "phq_partial": baseline * rng.uniform(0.75, 0.9) if archetype == "clinician_titration" else None,
        "relapse_day": None,
        "relapse_ramp_days": 30.0,
        "relapse_peak": 0.0,
    }
    if archetype == "depressive_relapse":
        course["relapse_day"] = _event_day(rng, start_day, 42, 21)
        course["relapse_ramp_days"] = rng.uniform(21, 42)
        course["relapse_peak"] = baseline * rng.uniform(0.7, 0.95)
    return course


NO_DEPENDENCE = {
    "onset_day": None,
    "ramp_days": 1.0,
    "profile": None,
    "craving_peak": 0.0,
    "request_rate": 0.0,
    "interval_shrink": 0.0,
    "dose_creep": 0.0,
    "phq_worsening": 0.0,
    "self_report_scale": 1.0,
    "sign_threshold": np.ones(len(WARNING_SIGNS)),
    "sign_amplitude": np.zeros(len(WARNING_SIGNS)),
}


def _dependence_course(
    rng: np.random.Generator, within: float, params: CohortParams, start_day: int, induction: tuple[int, ...],
    protocol: str, sud_history: bool,
) -> dict:  # fmt: skip
    """When dependence starts, how fast it builds, and how this patient shows it."""
    profile = PROFILES[int((within * 2 % 1.0) * len(PROFILES))]
    peak_range, request_rate, scale_range = _PROFILE_TRAITS[profile]
    scale = rng.uniform(*scale_range)
    threshold = np.ones(len(WARNING_SIGNS))
    amplitude = np.zeros(len(WARNING_SIGNS))
    for i, sign in enumerate(WARNING_SIGNS):
        if sign in _SIGN_COURSE and rng.random() < _SIGN_SOMETIMES.get(sign, (1.0, 1.0))[int(sud_history)]:
            start, level = _SIGN_COURSE[sign]
            threshold[i] = float(bounded(start + rng.uniform(-0.1, 0.1), 0.02, 0.9))
            amplitude[i] = level * rng.uniform(0.8, 1.2) * scale
    return {
        "onset_day": _event_day(rng, start_day, min(induction[-1], 28) + 14, 42),
        "ramp_days": rng.uniform(35, 84) / params.onset_speed,
        "profile": profile,
        "craving_peak": rng.uniform(*peak_range),
        "request_rate": request_rate,
        "interval_shrink": rng.uniform(0.3, 0.45) if profile == "candid" else rng.uniform(0.4, 0.6),
        # IV doses creep in 0.05 mg/kg steps; esketamine moves up its fixed 28 mg steps instead.
        "dose_creep": 0.0 if protocol == ESKETAMINE else float(np.round(rng.uniform(0.15, 0.4) / 0.05) * 0.05),
        "phq_worsening": 0.0 if rng.random() < 0.5 else rng.uniform(2, 6),
        "self_report_scale": scale,
        "sign_threshold": threshold,
        "sign_amplitude": amplitude,
    }


def draw_plan(index: int, assignment: Assignment, params: CohortParams, rng: np.random.Generator) -> PatientPlan:
    """Draw one patient's plan from that patient's own random stream."""
    archetype = assignment.archetype
    sex = _pick(rng, {"female": 0.56, "male": 0.42, "other": 0.01, "unknown": 0.01})
    birth_year = int(bounded(round(rng.normal(1978, 13)), 1950, 2004))
    indication = _pick(rng, _INDICATIONS[archetype])
    if archetype == DEPENDENCE:
        sud_history = assignment.within < 0.5  # alternates evenly between dependence patients
    else:
        sud_history = archetype == "sud_history_stable" or indication == "substance_use_disorder" or rng.random() < 0.05
    if indication == "chronic_pain":
        protocol = IV_PAIN
    elif indication == "depression" and rng.random() < 0.35:
        protocol = ESKETAMINE
    else:
        protocol = IV
    induction = INDUCTIONS[protocol][int(rng.integers(len(INDUCTIONS[protocol])))]
    start_day = _start_day(archetype, assignment.start_position, params)
    dependence = NO_DEPENDENCE
    if archetype == DEPENDENCE:
        dependence = _dependence_course(rng, assignment.within, params, start_day, induction, protocol, sud_history)
    sbp = rng.normal(124, 11)
    return PatientPlan(
        patient_id=f"KW-{index + 1:04d}",
        archetype=archetype,
        display_name=f"{FIRST_NAMES[index % len(FIRST_NAMES)]} Demo-{SURNAMES[(5 * index) % len(SURNAMES)]}",
        birth_year=birth_year,
        sex=sex,
        indication=indication,
        sud_history=bool(sud_history),
        clinician=_pick(rng, dict(zip(CLINICIANS, (0.3, 0.4, 0.3)))),
        protocol=protocol,
        start_day=start_day,
        weight_kg=float(bounded(rng.normal(74 if sex == "female" else 86, 14), 51, 129).round(1)),
        induction=induction,
        planned_interval_days=_planned_interval(rng, protocol, params.maintenance_interval_scale),
        **_dose_plan(rng, protocol, archetype, params.end.year - birth_year),
        **_depression_course(rng, archetype, indication, start_day),
        craving_base=rng.uniform(0.1, 1.0),
        reliance=rng.uniform(0.1, 0.8),
        sds_rate=0.0 if _never_fills_sds(rng, dependence["profile"]) else rng.uniform(0.35, 0.65),
        spike_day=_event_day(rng, start_day, 21, 7) if archetype == "craving_spike" else None,
        ptsd_dissociation=rng.uniform(1.2, 2.0) if archetype == "ptsd_depersonalisation" else 0.0,
        **dependence,
        sbp_base=sbp,
        dbp_base=sbp * 0.62 + rng.normal(0, 4),
        hr_base=float(bounded(rng.normal(74, 8), 58, 96)),
        bp_rise=rng.uniform(10, 22),
        **_dissociation(rng, protocol),
        cadss_decay=rng.uniform(3, 9),
        side_effect_propensity=rng.uniform(0.6, 1.5),
        usual_slot=int(rng.integers(SLOT_COUNT[protocol])),
    )


def _dissociation(rng: np.random.Generator, protocol: str) -> dict:
    """Peak CADSS at the first session (about 5-30, higher for 4-h pain infusions) and the level it
    settles to as dissociation fades with repeated doses."""
    first = rng.uniform(10, 30) if protocol == IV_PAIN else rng.uniform(6, 28)
    floor = rng.uniform(1, 5)
    return {"cadss_peak": first - floor, "cadss_floor": floor}


def _never_fills_sds(rng: np.random.Generator, profile: str | None) -> bool:
    """Some patients developing dependence never answer the SDS (most who show it only in behaviour)."""
    if profile is None:
        return False
    return bool(rng.random() < (0.6 if profile == "behavioural" else 0.2))
