"""The fixed vocabularies of the import format (CONTRACT section 2) and of the app, named once."""

from __future__ import annotations

import pandas as pd

INDICATIONS = (
    "depression",
    "bipolar_depression",
    "ptsd",
    "ocd",
    "anxiety",
    "chronic_pain",
    "substance_use_disorder",
    "other",
)
SEXES = ("female", "male", "other", "unknown")
ROUTES = ("iv", "im", "intranasal", "oral", "sublingual")
#: Routes dosed by body weight; the others (intranasal esketamine) are fixed doses in mg.
WEIGHT_BASED_ROUTES = ("iv", "im")
SEVERITIES = ("mild", "moderate", "severe")
PATIENT_STATUSES = ("active", "paused", "discharged")
#: Patients the clinic still watches, on the Alerts page, the caseload's default view and its export:
#: a pause in treatment is not a pause in risk (a patient may look for ketamine elsewhere meanwhile).
UNDER_CARE_STATUSES = ("active", "paused")
ROLES = ("admin", "clinician", "reviewer")
LEVELS = ("green", "amber", "red")

#: The twelve warning-sign checklist items, in the order of CONTRACT section 2.
WARNING_SIGNS = (
    "secrecy",
    "social_withdrawal",
    "neglected_responsibilities",
    "irritable_when_not_using",
    "appetite_change",
    "sleep_disturbance",
    "coordination_problems",
    "dissociation_outside_sessions",
    "tolerance",
    "recreational_seeking",
    "other_substance_use",
    "non_prescribed_use",
)
SDS_ITEMS = ("sds_1", "sds_2", "sds_3", "sds_4", "sds_5")

#: How a check-in note's line carrying a PHQ-9 question 9 answer above 'not at all' begins (the check-in form writes
#: it, since the import format holds the PHQ-9 total only; a clinician may type it too): ketawatch.safety_answers.
SAFETY_MARK = "[Safety]"

#: The reason an alert review lists when it records the follow-up of a PHQ-9 question 9 answer: no risk
#: rule has this id, so such a review acknowledges no risk level (ketawatch.caseload.latest_reviews).
SAFETY_FOLLOW_UP = "phq9_q9_follow_up"


def is_safety_follow_up(reasons: object) -> bool:
    """Whether an alert review's ';'-separated reasons mark it as the follow-up of a question 9 answer."""
    return SAFETY_FOLLOW_UP in str(reasons or "").split(";")


def reviewed_reasons_text(reasons: object, separator: str = ", ") -> str:
    """A review's reasons for a table: its rule ids, or what a question 9 follow-up is, since it reviews no level."""
    if is_safety_follow_up(reasons):
        return "PHQ-9 question 9 follow-up (not a review of the level)"
    return str(reasons or "").replace(";", separator)


#: What a clinician did after reviewing an alert.
REVIEW_ACTIONS = (
    "discussed_with_patient",
    "dose_held",
    "interval_extended",
    "dose_reduced",
    "referred_to_addiction_service",
    "treatment_paused",
    "no_action_needed",
    "other",
)
#: What a clinician did to follow up a PHQ-9 question 9 answer (thoughts of death or self-harm): the steps of a
#: same-day safety response, beside speaking with the patient and "other" (migration 0004 lets the store hold them).
SAFETY_FOLLOW_UP_ACTIONS = (
    "discussed_with_patient",
    "suicide_risk_assessed",
    "safety_plan_made",
    "referred_to_crisis_team",
    "emergency_services_called",
    "gp_informed",
    "other",
)
#: Words of a code written in capitals when shown ("gp_informed" -> "GP informed").
_CAPITALS = {"gp", "ptsd", "ocd", "iv", "im", "sud"}


def sentence_case(text: str) -> str:
    """Its first letter raised, the rest as written: str.capitalize turned "PHQ-9" into "phq-9" (browser check)."""
    return text[:1].upper() + text[1:]


def code_words(code: str, *, capital: bool = True) -> str:
    """A vocabulary code in words for screens and files: 'chronic_pain' -> 'Chronic pain', 'gp_informed' -> 'GP
    informed'; `capital=False` for the middle of a sentence ('..., discussed with patient')."""
    text = " ".join(w.upper() if w in _CAPITALS else w for w in str(code).split("_"))
    return sentence_case(text) if capital else text


#: Every action a stored alert review may name.
ALL_REVIEW_ACTIONS = REVIEW_ACTIONS + tuple(a for a in SAFETY_FOLLOW_UP_ACTIONS if a not in REVIEW_ACTIONS)

PATIENT_COLUMNS = (
    "patient_id",
    "display_name",
    "birth_year",
    "sex",
    "indication",
    "sud_history",
    "treatment_start",
    "planned_dose_mg_per_kg",
    "planned_interval_days",
    "clinician",
)
VITAL_SIGNS = ("sbp_pre", "dbp_pre", "sbp_post", "dbp_post", "hr_pre", "hr_post", "spo2_pre", "spo2_post")
SESSION_COLUMNS = (
    "patient_id",
    "session_at",
    "route",
    "dose_mg",
    "weight_kg",
    "duration_min",
    "early_request",
    "dose_increase_request",
    *VITAL_SIGNS,
    "dissociation_cadss",
    "side_effects",
    "notes",
)
CHECKIN_COLUMNS = ("patient_id", "reported_at", "craving", *SDS_ITEMS, *WARNING_SIGNS, "phq9", "notes")


def reading_pair(before: object, after: object) -> str:
    """Two readings of one vital sign as '72/80', or '72/–' and '–/80' when one is missing, so a lone reading is never
    hidden (the patient page showed nothing) nor read as the other; '' when neither was taken."""
    def shown(value: object) -> str:
        if value is None or pd.isna(value):
            return ""
        number = float(value)  # readings are whole numbers; a stored 72.0 is shown as 72
        return str(int(round(number))) if abs(number - round(number)) < 1e-9 else f"{number:.1f}"

    pair = (shown(before), shown(after))
    return "" if not any(pair) else "/".join(x or "\u2013" for x in pair)

