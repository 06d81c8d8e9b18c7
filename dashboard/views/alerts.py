"""Alerts: amber and red patients whose current reasons nobody has reviewed yet, and the review itself.

A clinician acknowledges an alert with an action and a note (store.records.add_alert_review); a
reason the latest review did not list, a higher level, a new episode, or the review's age
(KETAWATCH_REVIEW_AGAIN_DAYS) reopens it (ketawatch.caseload.unreviewed_alerts decides).
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import data, ui
from dashboard.auth import can_write, may_still_write
from ketawatch.caseload import alerts_waiting, latest_reviews, reason_ids
from store import records as store_records
from store.settings import get_settings
from store.validation import REVIEW_NOTE_MAX_LENGTH
from store.vocabulary import REVIEW_ACTIONS, is_safety_follow_up

user = ui.signed_in_user()
writer = can_write(user)
st.title("Alerts", anchor=False)
ui.disclaimer()
ui.safety_banner(data.safety_answers(), label=ui.patient_label(data.patients()))

again = get_settings().review_again_days
pending = alerts_waiting(data.assessment(), data.patients(), data.reviews(), tz=get_settings().clinic_timezone,
                         review_again_days=again)
names = data.patients().set_index("patient_id")["display_name"]
decisions = latest_reviews(data.reviews())
# Sent from a patient's page ("Review on the Alerts page"): that patient's card first, not the fifth of five.
focus = st.query_params.get("patient")
focused = bool(focus) and focus in set(pending["patient_id"])
if focused:
    first = (pending["patient_id"] == focus).to_numpy()
    pending = pd.concat([pending[first], pending[~first]], ignore_index=True)

done = st.session_state.pop("al_done", None)
if done:
    st.success(done, icon=":material/check_circle:")

if pending.empty:
    st.success("No amber or red patient is waiting for review.", icon=":material/task_alt:")
else:
    st.write(f"{len(pending)} patient(s) waiting for review: "
             + (f"{ui.md_escape(focus)} first, as opened from their page, then red first." if focused else "red first."))


def _acknowledge(pid: str, level: str, ids: list[str]) -> None:
    """Button callback: record the review, or keep the problems for the form."""
    if not may_still_write(user):
        return
    action = st.session_state.get(f"al_action_{pid}")
    note = st.session_state.get(f"al_note_{pid}") or ""
    try:
        store_records.add_alert_review(engine, patient_id=pid, level=level, reasons=ids, action=action or "",
                                       note=note, actor=user.username)
    except store_records.RecordInvalid as exc:
        st.session_state[f"al_errors_{pid}"] = ui.problems_by_field(exc.problems)
        return
    st.session_state.pop(f"al_errors_{pid}", None)
    said = f"Review of {ui.md_escape(pid)} recorded."
    # A review records the decision; it changes no plan. "Treatment paused" left the patient active and due
    # (clinician's browser pass), so the message says where the plan is changed.
    status = data.patients().set_index("patient_id")["status"].get(pid)
    plan_part = {"interval_extended": "the planned interval", "dose_reduced": "the planned dose"}.get(action or "")
    if action == "treatment_paused" and status == "active":
        plan_part = "the status (still Active, so sessions are still due)"
    if plan_part:
        said += f" A review does not change the plan: set {plan_part} on Patients and plans."
    st.session_state["al_done"] = said


engine = data.engine()
for alert in pending.itertuples(index=False):
    pid = alert.patient_id
    ids = reason_ids(alert.reasons)
    with st.container(border=True):
        head = st.columns([3, 2])
        with head[0]:
            name = names.get(pid)
            st.subheader(ui.md_escape(f"{pid} · {name}" if isinstance(name, str) and name else pid), anchor=False)
        with head[1]:
            st.caption(ui.alert_review_status(alert.last_reviewed_at, due_again=bool(alert.due_again),
                                              review_again_days=again))
            if pid in decisions.index:  # what was decided last time, so the next decision starts from it; as plain
                # text, so the note copies as typed (escaped Markdown carries invisible joiners)
                st.text(ui.last_decision(decisions.loc[pid], data.staff_names()))
            if st.button("Open patient", key=f"al_open_{pid}", icon=":material/person:"):
                st.session_state[ui.PATIENT_KEY] = pid
                st.switch_page("views/patient.py", query_params={"patient": pid})
        ui.level_badge(alert.level, since=alert.since)  # the full width: beside the caption it was cut at "(since 20…"
        reviewed_before = alert.last_reviewed_at is not None and not pd.isna(alert.last_reviewed_at)
        ui.reason_list(alert.reasons, new_since_review=alert.new_reasons if reviewed_before else ())
        if writer:
            errors = st.session_state.get(f"al_errors_{pid}", {})
            cols = st.columns([2, 3], vertical_alignment="top")
            with cols[0]:
                # the patient in the label: a screen reader heard "Action taken" once per patient, none told apart
                st.selectbox(f"Action taken for {ui.mid_label(pid)} *", REVIEW_ACTIONS, index=None, key=f"al_action_{pid}", format_func=ui.words,
                             placeholder="Choose an action")
                ui.field_error(errors, "action")
            with cols[1]:
                red = alert.level == "red"
                # The rule in the label: in the placeholder it was cut to "(required for 'Othe" at 1024 px
                st.text_input(f"Note for {ui.mid_label(pid)} " + ("*" if red else "(required for 'Other')"),
                              key=f"al_note_{pid}",
                              max_chars=REVIEW_NOTE_MAX_LENGTH, placeholder="What was discussed or decided")
                ui.field_error(errors, "note", "level", "patient_id")
            # On its own line: beside the note, "Acknowledge KW-0035" was cut to "Acknowledg…" at 1024 px, and the
            # patient id is what ties the button to its patient (clinician review).
            st.button(f"Acknowledge {ui.md_escape(pid)}", key=f"al_ack_{pid}", type="primary", on_click=_acknowledge,
                      args=(pid, alert.level, ids), help="Records the review; a review is not undone")

if not writer:
    ui.read_only_notice(user)

st.subheader("Recent reviews", anchor=False)
reviews = data.reviews().head(50)
if reviews.empty:
    st.caption("No reviews yet.")
else:
    ui.show_table(pd.DataFrame({
        "Reviewed": ui.local_column(pd.to_datetime(reviews["reviewed_at"], utc=True)),
        "Patient": reviews["patient_id"],
        "Name": reviews["patient_id"].map(names),  # a review made for the wrong patient is easier to see
        "By": ui.staff_column(reviews["reviewed_by"], data.staff_names()),
        "Level": ui.reviewed_level(reviews),
        "Action": reviews["action"].map(ui.words),
        # A question 9 follow-up's note only on its patient's page: here, on a page every role opens, it showed what
        # was said about thoughts of self-harm to all (clinician's browser pass, code review)
        "Note": reviews["note"].where(~reviews["reasons"].map(is_safety_follow_up).astype(bool),
                                      "(question 9 follow-up: on the patient's page)"),
        "Reasons reviewed": ui.reviewed_reasons(reviews["reasons"]),  # last: the longest, and rule ids
    }), key="al_reviews",
        column_config={"Reviewed": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
                       # room for who spoke with the patient and the plan: it was cut after a few words (browser review)
                       "Note": st.column_config.TextColumn(width="large")})
