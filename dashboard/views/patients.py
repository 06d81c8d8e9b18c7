"""Patients and plans: the patient list, adding a patient, and editing details, plan, status and clinician.

An edit is an amendment (store.records.amend_patient) with a reason and the version that was
opened, so a colleague's change made in between is never overwritten silently.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import data, ui
from dashboard.auth import can_write, may_still_write
from dashboard.record_views import patient_opened
from ketawatch import accounts
from store import records as store_records
from store.validation import PATIENT_RULES, REASON_MAX_LENGTH
from store.vocabulary import INDICATIONS, PATIENT_STATUSES, SEXES

LABELS = {name: rule.label for name, rule in PATIENT_RULES.items()} | {"reason": "Reason for the change"}
FIELDS = tuple(PATIENT_RULES)

user = ui.signed_in_user()
writer = can_write(user)
engine = data.engine()
patients = data.patients()
st.title("Patients and plans", anchor=False)


def _clinician_options() -> list[str]:
    """Accounts that can be responsible for a patient, plus any name already on a record."""
    names = {u.username for u in accounts.list_users(engine) if u.role in ("clinician", "admin") and not u.disabled}
    names |= set(patients["clinician"].dropna())
    return sorted(names)


def _value(raw) -> object:
    """A frame value as a widget value (None for missing)."""
    if raw is None:
        return None
    try:
        if pd.isna(raw):
            return None
    except (TypeError, ValueError):
        pass
    return raw


def _fields(p: str, errors: dict, *, editing: bool) -> None:
    """The patient form's widgets, each with its own error underneath."""
    r = PATIENT_RULES
    a, b, c = st.columns(3)
    with a:
        st.text_input(r["patient_id"].label + " *", key=p + "patient_id", disabled=editing,
                      max_chars=r["patient_id"].max_length, help="The clinic's own identifier; it cannot be changed later.")
        ui.field_error(errors, "patient_id")
        st.text_input(r["display_name"].label, key=p + "display_name", max_chars=r["display_name"].max_length)
        ui.field_error(errors, "display_name")
        ui.rule_number(r["birth_year"], p + "birth_year", errors)
        st.selectbox(r["sex"].label, SEXES, key=p + "sex", index=None, format_func=ui.words, placeholder="not recorded")
        ui.field_error(errors, "sex")
    with b:
        st.selectbox(r["indication"].label + " *", INDICATIONS, key=p + "indication", index=None, format_func=ui.words,
                     placeholder="Choose the indication")
        ui.field_error(errors, "indication")
        st.radio(r["sud_history"].label + " *", [True, False], key=p + "sud_history", index=None, horizontal=True,
                 format_func=lambda v: "Yes" if v else "No")
        ui.field_error(errors, "sud_history")
        st.date_input(r["treatment_start"].label + " *", key=p + "treatment_start", format="YYYY-MM-DD",
                      **ui.RECORD_DATES)
        ui.field_error(errors, "treatment_start")
        st.selectbox(r["status"].label, PATIENT_STATUSES, key=p + "status", format_func=ui.words)
        ui.field_error(errors, "status")
    with c:
        ui.rule_number(r["planned_dose_mg_per_kg"], p + "planned_dose_mg_per_kg", errors, step=0.05, fmt="%.2f",
                       help="For weight-based routes (IV, IM).")
        ui.rule_number(r["planned_dose_mg"], p + "planned_dose_mg", errors, step=28.0, fmt="%g",
                       help="For fixed-dose routes (intranasal esketamine 56 or 84 mg; oral, sublingual). Without "
                            "it, a dose is judged against the patient's first sessions on the route, so a planned "
                            "titration from 56 to 84 mg reads as a rise.")
        ui.rule_number(r["planned_interval_days"], p + "planned_interval_days", errors,
                       help="Days between maintenance sessions, after induction.")
        options = _clinician_options()
        current = st.session_state.get(p + "clinician")
        if current and current not in options:
            options.append(current)
        st.selectbox(r["clinician"].label, options, key=p + "clinician", index=None, placeholder="not set")
        ui.field_error(errors, "clinician")


def _raw(p: str) -> dict:
    s = st.session_state
    return {name: (s.get(p + name).strip() or None) if isinstance(s.get(p + name), str) else s.get(p + name)
            for name in FIELDS}


def _add() -> None:
    """Button callback: register the patient, or keep each problem for its field."""
    if not may_still_write(user):
        return
    try:
        added = store_records.add_patient(engine, _raw("pa_"), actor=user.username)
    except store_records.RecordInvalid as exc:
        st.session_state["pa_errors"] = ui.problems_by_field(exc.problems)
        return
    st.session_state["pa_errors"] = {}
    st.session_state["pa_done"] = f"Patient {ui.md_escape(added.patient_id)} added."
    st.session_state[ui.PATIENT_KEY] = added.patient_id
    # Set, not removed: a removed key lets the browser send the old entry back, and "Add" again
    # then tried to add the same patient twice.
    blank = {"patient_id": "", "display_name": "", "status": "active", "treatment_start": data.today()}
    for name in FIELDS:
        st.session_state["pa_" + name] = blank.get(name)


def _load(pid: str | None) -> None:
    """Open a patient for editing: remember the version read now, fill the form with it."""
    for name in FIELDS:
        st.session_state.pop("pe_" + name, None)
    st.session_state["pe_reason"] = ""  # emptied, so a reason is never saved again with the next change
    st.session_state.pop("pe_errors", None)
    st.session_state.pop("pe_conflict", None)
    if pid is None:
        st.session_state.pop("pe_loaded", None)
        return
    row = data.patient_with_version(pid)
    if row is None:
        st.session_state.pop("pe_loaded", None)
        return
    st.session_state["pe_loaded"] = {"patient_id": pid, "version": int(row["version"])}
    for name in FIELDS:
        value = _value(row.get(name))
        if name == "treatment_start" and value is not None:
            value = pd.Timestamp(value).date()
        if name in ("birth_year", "planned_interval_days") and value is not None:
            value = int(value)
        if name == "sud_history" and value is not None:
            value = bool(value)
        st.session_state["pe_" + name] = value


def _amend() -> None:
    """Button callback: amend with a reason against the version that was opened."""
    loaded = st.session_state.get("pe_loaded")
    if not loaded or not may_still_write(user):
        return
    changes = {k: v for k, v in _raw("pe_").items() if k != "patient_id"}
    try:
        store_records.amend_patient(engine, loaded["patient_id"], changes, actor=user.username,
                                    reason=st.session_state.get("pe_reason") or "", expected_version=loaded["version"])
    except store_records.NothingChanged:
        st.session_state.pop("pe_errors", None)
        st.session_state["pe_unchanged"] = True
        return
    except store_records.RecordInvalid as exc:
        st.session_state["pe_errors"] = ui.problems_by_field(exc.problems)
        return
    except (store_records.RecordConflict, store_records.RecordNotFound) as exc:
        st.session_state["pe_conflict"] = str(exc) or "This patient was changed by someone else after you opened it."
        return
    pid = loaded["patient_id"]
    _load(pid)
    st.session_state["pe_done"] = f"Patient {ui.md_escape(pid)} updated; the earlier version is kept in the history."


# ----- the list -------------------------------------------------------------------------------
if patients.empty:
    st.info("No patients yet." + (" Add the first one below." if writer else ""))
else:
    ui.show_table(pd.DataFrame({
        "Patient": patients["patient_id"],
        "Name": patients["display_name"],
        "Indication": patients["indication"].map(ui.words),
        "SUD history": patients["sud_history"].map({True: "yes", False: "no"}),
        "Planned mg/kg": patients["planned_dose_mg_per_kg"],
        "Planned mg (fixed-dose)": patients["planned_dose_mg"],
        "Planned interval (days)": patients["planned_interval_days"],
        "Status": patients["status"].map(ui.words),
        "Responsible clinician": patients["clinician"],
        "Treatment start": patients["treatment_start"],
    }), key="pt_table",
        column_config={"Treatment start": st.column_config.DateColumn(format="YYYY-MM-DD"),
                       "Planned mg/kg": st.column_config.NumberColumn(format="%.2f"),
                       "Planned mg (fixed-dose)": st.column_config.NumberColumn(format="%g")})

if not writer:
    ui.read_only_notice(user)
    st.stop()

# Keyed, so the tab in use stays open when a save reloads the page.
add_tab, edit_tab = st.tabs(["Add a patient", "Edit a patient"], key="pt_tab", on_change="rerun")
with add_tab:
    done = st.session_state.pop("pa_done", None)
    if done:
        st.success(done, icon=":material/check_circle:")
    errors = st.session_state.get("pa_errors", {})
    ui.error_summary(errors, LABELS)
    st.session_state.setdefault("pa_treatment_start", data.today())
    st.session_state.setdefault("pa_status", "active")
    _fields("pa_", errors, editing=False)
    st.button("Add patient", type="primary", icon=":material/person_add:", on_click=_add, key="pa_save")

with edit_tab:
    done = st.session_state.pop("pe_done", None)
    if done:
        st.success(done, icon=":material/check_circle:")
    if patients.empty:
        st.caption("Nobody to edit yet.")
    else:
        ids = patients["patient_id"].tolist()
        loaded = st.session_state.get("pe_loaded")
        if st.session_state.get("pe_pick") not in ids:
            st.session_state["pe_pick"] = loaded["patient_id"] if loaded and loaded["patient_id"] in ids else None
        st.selectbox("Patient to edit", ids, key="pe_pick", format_func=ui.patient_label(patients),
                     placeholder="Choose a patient", on_change=lambda: _load(st.session_state.get("pe_pick")))
        loaded = st.session_state.get("pe_loaded")
        if loaded:
            conflict = st.session_state.get("pe_conflict")
            if conflict:
                st.error(f"Nothing was saved: {ui.md_escape(conflict)} Reload to see their change, then edit again.",
                         icon=":material/sync_problem:")
                if st.button("Reload the latest version", key="pe_reload"):
                    _load(loaded["patient_id"])
                    st.rerun()
            errors = st.session_state.get("pe_errors", {})
            ui.error_summary(errors, LABELS)
            if st.session_state.pop("pe_unchanged", False):
                st.warning("Nothing was changed, so nothing was saved.", icon=":material/info:")
            patient_opened(engine, user, loaded["patient_id"], "patients")
            st.caption(f"Editing version {loaded['version']} of {ui.md_escape(loaded['patient_id'])}.")
            _fields("pe_", errors, editing=True)
            st.text_input("Reason for the change *", key="pe_reason", max_chars=REASON_MAX_LENGTH,
                          placeholder="e.g. plan changed after review on 12 Nov")
            ui.field_error(errors, "reason")
            st.button("Save changes", type="primary", icon=":material/save:", on_click=_amend, key="pe_save")
