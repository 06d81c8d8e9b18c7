"""Log session: record one administered dose with vitals, dissociation, side effects and the patient's requests.

Validation is the store's (store.records.add_session); this page only lays out the fields, shows
mg/kg against the plan while the dose is entered, and puts each problem under its field.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import data, ui
from dashboard.auth import can_write, may_still_write
from ketawatch.risk import load_rules
from ketawatch.risk.scoring import dose_above_plan, dose_per_kg
from seed_data.catalogue import blood_pressure_note, instruments, side_effects
from store import records as store_records
from store.validation import SESSION_RULES, Validator, blood_pressure_pair_problem
from store.vocabulary import ROUTES, SEVERITIES, WEIGHT_BASED_ROUTES, reading_pair

P = "ls_"  # widget-key prefix of this page
VITALS = (("sbp", "Systolic BP"), ("dbp", "Diastolic BP"), ("hr", "Heart rate"), ("spo2", "SpO₂"))
CLEARED_AFTER_SAVE = ("dose", "duration", "cadss", "effects", "early", "more", "notes",
                      *(f"{v}_{w}" for v, _ in VITALS for w in ("pre", "post")))
LABELS = {name: rule.label for name, rule in SESSION_RULES.items()}

user = ui.signed_in_user()
st.title("Log session", anchor=False)
if not can_write(user):
    ui.read_only_notice(user)
    st.stop()

engine = data.engine()
patients = data.patients()
plans = patients.set_index("patient_id")
effect_labels = {e.id: e.label for e in side_effects()}
rules = load_rules()  # the settings the levels are computed with


def _prefill() -> None:
    """Weight (the last one recorded) and route from the patient's previous sessions, to save keystrokes."""
    pid = st.session_state.get(P + "patient")
    mine = data.patient_records(pid).sessions.sort_values("session_at")  # none for no patient
    weighed = mine.dropna(subset=["weight_kg"])
    st.session_state[P + "weight"] = float(weighed["weight_kg"].iloc[-1]) if len(weighed) else None
    st.session_state[P + "weight_from"] = (  # a weight carried forward says from when, to be checked against today's
        (st.session_state[P + "weight"], ui.fmt_datetime(weighed["session_at"].iloc[-1])) if len(weighed) else None)
    if len(mine):
        st.session_state[P + "route"] = str(mine["route"].iloc[-1])


def _entry_keys() -> list[str]:
    """Where this form holds one patient's session as typed: kept as their draft when another patient is opened."""
    severities = [k for k in st.session_state if isinstance(k, str) and k.startswith(P + "sev_")]
    return [P + name for name in (*CLEARED_AFTER_SAVE, "route", "weight")] + severities


def _clear_entries() -> bool:
    """Empty the session's own fields (dose, vitals, requests, side effects and their severities, notes, the
    "I have checked these values" ticks); True if any held a value."""
    s = st.session_state
    typed = any(s.get(P + name) not in (None, False, [], "") for name in CLEARED_AFTER_SAVE)
    for name in CLEARED_AFTER_SAVE:
        s[P + name] = False if name in ("early", "more") else ([] if name == "effects" else None)
    for key in [k for k in s if isinstance(k, str) and k.startswith((P + "sev_", P + "confirm_"))]:
        del s[key]  # per-effect severities and per-warning ticks: their widgets start afresh
    s.pop(P + "unusual", None)
    return typed


def _raw(patient_id: str | None) -> dict:
    """The form's values in the store's column names (None = not recorded)."""
    s = st.session_state
    when = s.get(P + "when")
    effects = [(e, s.get(f"{P}sev_{e}")) for e in s.get(P + "effects") or []]  # no severity is refused, never "mild"
    raw = {
        "patient_id": patient_id,
        "session_at": when.replace(tzinfo=ui.clinic_tz()) if when is not None else None,
        "route": s.get(P + "route"),
        "dose_mg": s.get(P + "dose"),
        "weight_kg": s.get(P + "weight"),
        "duration_min": s.get(P + "duration"),
        "early_request": bool(s.get(P + "early")),
        "dose_increase_request": bool(s.get(P + "more")),
        "dissociation_cadss": s.get(P + "cadss"),
        "side_effects": effects,
        "notes": (s.get(P + "notes") or "").strip() or None,
    }
    for vital, _ in VITALS:
        for when_ in ("pre", "post"):
            raw[f"{vital}_{when_}"] = s.get(f"{P}{vital}_{when_}")
    return raw


def _unusual(pid: str | None, raw: dict) -> list[str]:
    """What the store's double check finds unusual in a valid session (a dose far above plan, a second session that day...)."""
    if pid is None or pid not in plans.index:
        return []
    return ui.unusual_session(raw, plans.loc[pid], data.patient_records(pid).sessions)


def _dose_check_now(pid: str | None, dose) -> None:
    """As the dose is typed, what Save would say of the dose and weight, in red beside the mg/kg: 5000 mg showed only
    "+5456% against the plan" in grey until Save (nurse's review). The store's own checks, not a copy."""
    if pid is None or dose is None:
        return
    # Only what the dose is judged by: a half-typed blood pressure made the store find a problem elsewhere, and then
    # it judged no dose at all, so the red line went away as if the dose were fine (code review).
    raw = {k: v for k, v in _raw(pid).items()
           if k in ("patient_id", "session_at", "route", "dose_mg", "weight_kg", "duration_min")}
    found = Validator().session(raw)[1]
    if any(p.column == "duration_min" for p in found):
        raw.pop("duration_min")  # a duration refused on its own must not silence the dose line either (code review)
        found = Validator().session(raw)[1]
    problems = [p for p in found if p.column in ("dose_mg", "weight_kg")]
    said = [p.message for p in problems]
    if not said and pid in plans.index:
        said = ui.unusual_session(raw, plans.loc[pid], data.patient_records(pid).sessions,
                                  changed={"dose_mg", "weight_kg"})
    elif not any(p.column == "weight_kg" for p in problems):  # the dose refused: the weight is still asked about
        said += ui.weight_question(raw, data.patient_records(pid).sessions)
    for message in said:
        st.markdown(f":red[:material/warning: {ui.md_escape(message)}]")


def _accepted(values: dict) -> dict:
    """The values the store would accept as they stand, each field by its own rule and each blood pressure pair by
    the record's check across fields; the rest as None. A readout or note drawn from a refused value read as a
    judgement of it: "0.00 mg/kg" for a dose of 0, "above 140/90" for 80/120 (clinician's browser review)."""
    validator = Validator()
    kept = {name: value if value is not None and validator.field(SESSION_RULES[name], value)[1] is None else None
            for name, value in values.items()}
    for fields, agree in validator.row_checks("sessions"):
        if all(name in kept for name in fields) and not agree(*(kept[name] for name in fields)):
            kept.update(dict.fromkeys(fields))
    return kept


def _bp_notes(errors: dict[str, list[str]]) -> None:
    """A note beside blood pressure raised before dosing, or high after it: a reminder of the protocol, not a question
    before saving (clinical review: 136/95 before and 161/102 after showed no mark). A swapped pair already said under
    its field after Save (`errors`) is not said twice."""
    s = st.session_state
    (pre_sys, pre_dia), (post_sys, post_dia) = blood_pressure_note()
    typed = {name: s.get(P + name) for name in ("sbp_pre", "dbp_pre", "sbp_post", "dbp_post")}
    readings = _accepted(typed)
    for when in ("pre", "post"):  # a swapped pair said as it is typed, in the store's words
        message = blood_pressure_pair_problem(when, typed[f"sbp_{when}"], typed[f"dbp_{when}"])
        if message and message not in errors.get(f"dbp_{when}", ()):
            st.markdown(f":red[:material/warning: {ui.md_escape(message)}]")
    sbp, dbp = readings["sbp_pre"], readings["dbp_pre"]
    if (sbp is not None and sbp > pre_sys) or (dbp is not None and dbp > pre_dia):
        st.caption(f":material/info: Blood pressure before dosing is above {pre_sys:g}/{pre_dia:g} "
                   f"({reading_pair(sbp, dbp)} mmHg): the esketamine label advises weighing the risk of a short rise "
                   "in blood pressure against the benefit before dosing; follow the clinic's protocol.")
    sbp, dbp = readings["sbp_post"], readings["dbp_post"]
    if (sbp is not None and sbp >= post_sys) or (dbp is not None and dbp >= post_dia):
        st.caption(f":material/info: Blood pressure after dosing is {post_sys:g}/{post_dia:g} or more "
                   f"({reading_pair(sbp, dbp)} mmHg): follow the clinic's protocol for raised blood pressure "
                   "after dosing.")


def _save() -> None:
    """Button callback: write through the store, or keep every problem for its field; nothing saved on error.

    A valid but unusual session (store.validation.Validator.unusual_session) is saved only once the
    clinician has ticked that they checked exactly those values.
    """
    s = st.session_state
    if not may_still_write(user):
        return
    pid = s.get(P + "patient")
    raw = _raw(pid)
    if not ui.unusual_confirmed(P, _unusual(pid, raw)):
        s[P + "errors"] = {}
        s.pop(P + "saved", None)
        st.toast("Not saved yet: please check the values shown above the Save button.", icon=":material/help:")
        return
    try:
        saved = store_records.add_session(engine, raw, actor=user.username)
    except store_records.RecordInvalid as exc:
        s[P + "errors"] = ui.problems_by_field(exc.problems, no_patient_chosen=pid is None)
        ui.refused_as_typed(P, raw)
        s.pop(P + "saved", None)
        s.pop(P + "unusual", None)
        st.toast(f"Nothing was saved: {len(exc.problems)} problem(s), listed at the top and beside each field.",
                 icon=":material/block:")
        return
    s[P + "errors"] = {}
    ui.refused_as_typed(P, None)
    s.pop(P + "unusual", None)
    ui.drop_draft_notice(P)
    s[P + "saved"] = {"patient_id": pid, "at": ui.fmt_datetime(saved.session_at), "id": saved.id}
    if s.get(P + "weight") is not None:  # the weight stays in the form for the next session: from this one now
        s[P + "weight_from"] = (s[P + "weight"], s[P + "saved"]["at"])
    st.toast(f"Session saved for {ui.md_escape(pid)} at {s[P + 'saved']['at']}.", icon=":material/check_circle:")
    _clear_entries()
    ui.record_time_now(P)


# A problem whose field has been changed since the refused Save is no longer shown as if it stood (nurse's review);
# what the store's own checks still find in the values now is shown instead.
_refused, _now = st.session_state.get(P + "errors", {}), _raw(st.session_state.get(P + "patient"))
errors, corrected = ui.standing_errors(P, _refused, _now, live=Validator().session(_now)[1] if _refused else (),
                                       groups=[fields for fields, _ in Validator().row_checks("sessions")])
saved = ui.saved_notice_for(P)
if saved:
    with st.container(border=True):
        st.success(f"Session saved for {ui.md_escape(saved['patient_id'])} at {saved['at']}.", icon=":material/check_circle:")
        level = data.patient_level(saved["patient_id"])["level"]
        ui.level_badge(level)
        ui.disclaimer()
        if st.button("Open the patient's page", icon=":material/person:"):
            st.session_state[ui.PATIENT_KEY] = saved["patient_id"]
            st.switch_page("views/patient.py", query_params={"patient": saved["patient_id"]})
ui.error_summary(errors, LABELS, corrected=corrected)

if patients.empty:
    st.info("No patients yet. Add one on the Patients and plans page first.")
    st.stop()

# Defaults for a fresh form (set before the widgets are drawn; the widgets then own them).
ui.record_time_follows_clock(P)  # a time the clinician set survives a look at another page
st.session_state.setdefault(P + "route", "iv")
for flag in ("early", "more"):
    st.session_state.setdefault(P + flag, False)

top = st.columns([3, 3, 2])  # at [2, 2, 1] the route read "IV infusio" at 1024 px (browser check)
with top[0]:
    pid = ui.patient_picker(patients, key=P + "patient", label="Patient *")
    ui.follow_form_patient(P, pid, _entry_keys, _clear_entries, prefill=_prefill)
    ui.field_error(errors, "patient_id")
with top[1]:
    st.datetime_input(f"{LABELS['session_at']} * (clinic time, {ui.clinic_tz().key})", key=P + "when",
                      step=timedelta(minutes=1), format="YYYY-MM-DD", **ui.RECORD_TIMES,
                      help="When the dose was started. Not later than now: record a session once it has begun.")
    ui.field_error(errors, "session_at")
with top[2]:
    st.selectbox(f"{LABELS['route']} *", ROUTES, key=P + "route", format_func=ui.route_words)
    ui.field_error(errors, "route")

plan = plans.loc[pid] if pid is not None else None
st.subheader("Dose", divider="gray", anchor=False)
dose_cols = st.columns([1, 1, 1, 2])
with dose_cols[0]:
    dose = ui.rule_number(SESSION_RULES["dose_mg"], P + "dose", errors, step=0.5)
with dose_cols[1]:
    weight = ui.rule_number(SESSION_RULES["weight_kg"], P + "weight", errors,
                            help="Pre-filled from the patient's last recorded weight: weigh them if that is long ago.")
    carried = st.session_state.get(P + "weight_from")
    if carried is not None and weight == carried[0]:
        st.caption(f"As recorded at the session of {carried[1]}")
with dose_cols[2]:
    ui.rule_number(SESSION_RULES["duration_min"], P + "duration", errors)
with dose_cols[3]:
    route = st.session_state.get(P + "route")
    # the dose rule's margin for this patient (lowered for a history of substance use disorder, as the rules lower it)
    rise = float(rules.scaled("dose_rise_fraction", np.array([plan is not None and bool(plan["sud_history"])]))[0])
    planned = None if plan is None or pd.isna(plan["planned_dose_mg_per_kg"]) else float(plan["planned_dose_mg_per_kg"])
    # a refused value gives no readout (see _accepted); the red line below still says why it is refused
    shown_dose, shown_weight = _accepted({"dose_mg": dose, "weight_kg": weight}).values()
    if route in WEIGHT_BASED_ROUTES:
        per_kg = dose_per_kg(shown_dose, shown_weight, route) if shown_dose is not None and shown_weight else None
        if per_kg is None or pd.isna(per_kg):
            st.metric("Dose per kg", "—", help="Enter a dose and weight the form accepts to see mg/kg.")
        else:
            st.metric("Dose per kg", f"{per_kg:.2f} mg/kg", delta=ui.dose_against_plan(per_kg, planned), delta_color="off")
        if plan is None:
            st.caption("Choose a patient to compare the dose with the plan.")
        else:
            st.caption(f"Planned dose: {planned:.2f} mg/kg" if planned is not None else "No planned mg/kg in this patient's plan.")
        above = per_kg is not None and not pd.isna(per_kg) and planned and dose_above_plan(per_kg / planned, rise)
    else:
        planned_mg = None if plan is None or pd.isna(plan["planned_dose_mg"]) else float(plan["planned_dose_mg"])
        st.metric("Dose", f"{shown_dose:g} mg" if shown_dose is not None else "—")
        st.caption(f"{ui.route_words(route)} is a fixed-dose route: the dose is judged in mg, not mg/kg"
                   + (f" (planned dose: {planned_mg:g} mg)." if planned_mg is not None else
                      "; with no planned mg in this patient's plan, against their first sessions on the route."))
        above = shown_dose is not None and planned_mg and dose_above_plan(shown_dose / planned_mg, rise)
    if above:  # a clinician's titration after a non-responder asked read as patient-driven escalation (clinical review)
        st.caption(":material/info: Above the plan. If you are raising the dose as planned titration, set the new dose "
                   "in the patient's plan (Patients and plans): a dose above the plan after the patient asked for more "
                   "counts as patient-driven escalation.")
    _dose_check_now(pid, dose)

st.subheader("Vital signs", divider="gray", anchor=False)
for when_, title in (("pre", "Before dosing"), ("post", "After dosing")):
    row = st.columns([1, 2, 2, 2, 2])
    row[0].markdown(f"**{title}**")
    for box, (vital, short) in zip(row[1:], VITALS):
        with box:
            ui.rule_number(SESSION_RULES[f"{vital}_{when_}"], f"{P}{vital}_{when_}", errors,
                           label=f"{short} {'before' if when_ == 'pre' else 'after'}")

_bp_notes(errors)

st.subheader("Dissociation and side effects", divider="gray", anchor=False)
cadss = instruments()["cadss"]
se_cols = st.columns([1, 3])
with se_cols[0]:
    ui.rule_number(SESSION_RULES["dissociation_cadss"], P + "cadss", errors, label="Peak CADSS total",
                   help=cadss["significance_note"])
with se_cols[1]:
    chosen = st.multiselect(LABELS["side_effects"], list(effect_labels), key=P + "effects",
                            format_func=effect_labels.get, placeholder="None recorded", select_all=False)
    for effect in chosen:
        st.segmented_control(f"Severity of {effect_labels[effect].lower()}", SEVERITIES, key=f"{P}sev_{effect}",
                             format_func=ui.words)
    ui.field_error(errors, "side_effects")

st.subheader("The patient's requests", divider="gray", anchor=False)
st.caption("Tick only when the patient asked; clinician-planned titration is not a request.")
req = st.columns(2)
with req[0]:
    st.checkbox(LABELS["early_request"], key=P + "early")
    ui.field_error(errors, "early_request")
with req[1]:
    st.checkbox(LABELS["dose_increase_request"], key=P + "more")
    ui.field_error(errors, "dose_increase_request")

st.text_area(LABELS["notes"], key=P + "notes", max_chars=SESSION_RULES["notes"].max_length, height=100)
ui.field_error(errors, "notes")

ui.unusual_question(P, lambda: _unusual(pid, _raw(pid)))
st.button(ui.save_for("Save session", patients, pid), type="primary", icon=":material/save:", on_click=_save,
          key=P + "save")
st.caption("Fields marked * are required; leave any other field empty if it was not recorded.")
