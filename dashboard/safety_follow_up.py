"""Recording that a clinician followed up a PHQ-9 question 9 answer, from the patient's page.

The follow-up is an alert review listing `SAFETY_FOLLOW_UP` (store.records.add_alert_review checks
it, and asks for a note): the answer then leaves the red banner for a blue "followed up" one
that names who did it, when and what they wrote, and it acknowledges no risk level.
"""

from __future__ import annotations

import streamlit as st
from sqlalchemy import Engine

from dashboard import ui
from dashboard.auth import SignedInUser, may_still_write
from store import records as store_records
from store.validation import REVIEW_NOTE_MAX_LENGTH
from store.vocabulary import SAFETY_FOLLOW_UP, SAFETY_FOLLOW_UP_ACTIONS


def follow_up_form(engine: Engine, user: SignedInUser, patient_id: str, level: str, *, further: bool = False) -> None:
    """A small form under the banner: what was done, and a note (required); saved as one audited review.

    `further`: the answers shown are followed up already, and this records another step of the same response
    (a safety plan made, then the GP informed), each its own review with its own note.
    """
    key = f"sf_{patient_id}"
    title = ("Record a further step of the question 9 follow-up (each step is kept, with its note)" if further
             else "Record the follow-up of question 9")
    with st.expander(title, icon=":material/support_agent:", expanded=bool(st.session_state.get(f"{key}_errors"))):
        errors = st.session_state.get(f"{key}_errors", {})
        with st.form(key, clear_on_submit=False):
            action = st.selectbox("What was done *", SAFETY_FOLLOW_UP_ACTIONS, index=None, format_func=ui.words,
                                  placeholder="Choose an action", key=f"{key}_action")
            ui.field_error(errors, "action")
            note = st.text_area("Note * (who spoke with the patient, what was found, the plan)", key=f"{key}_note",
                                max_chars=REVIEW_NOTE_MAX_LENGTH, height=90)
            ui.field_error(errors, "note", "level", "patient_id")
            saved = st.form_submit_button("Record the step" if further else "Record the follow-up", type="primary")
        if not saved or not may_still_write(user):
            return
        try:
            store_records.add_alert_review(engine, patient_id=patient_id, level=level, reasons=[SAFETY_FOLLOW_UP],
                                           action=action or "", note=note, actor=user.username)
        except store_records.RecordInvalid as exc:
            st.session_state[f"{key}_errors"] = ui.problems_by_field(exc.problems)
            st.rerun()
        st.session_state.pop(f"{key}_errors", None)
        for typed in (f"{key}_action", f"{key}_note"):  # an empty form next time: a second click saved the step again
            st.session_state.pop(typed, None)
        st.toast("Follow-up of question 9 recorded.", icon=":material/task_alt:")
        st.rerun()
