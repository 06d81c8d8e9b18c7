"""Audit trail (admins only): who did what, when, to which record, with the values before and after.

Filters by person, action, patient and dates; the CSV download is safe to open in a spreadsheet.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

import pandas as pd
import streamlit as st

from dashboard import data, ui
from dashboard.auth import is_admin, require_user
from dashboard.export_panel import PreparedFile, offer_file
from dashboard.record_views import audit_trail_read
from ketawatch.audit_trail import ACTIONS, LIMIT, audit_csv_bytes, audit_lines, describe_detail
from ketawatch.change_words import describe_changes
from ketawatch.exports.audit import record_export
from store.queries import audit_actors

user = require_user()  # again here: a page run directly (by URL, before the app's navigation ran) must not skip sign-in
st.title("Audit trail", anchor=False)
if not is_admin(user):
    st.error("The audit trail is for admins only.", icon=":material/lock:")
    st.stop()

engine = data.engine()
tz = ui.clinic_tz()
today = ui.now_local().date()

with st.form("audit_filters"):
    cols = st.columns([1, 1, 1, 1.3])  # the date range needs the room to show both ends at 1366 px
    actor = cols[0].selectbox("Who", options=[None, *audit_actors(engine)], key="audit_actor",
                              format_func=lambda a: "anyone" if a is None else a)
    action = cols[1].selectbox("Action", options=[None, *ACTIONS], format_func=lambda a: "any" if a is None else ui.words(a),
                               key="audit_action")
    patient_id = cols[2].text_input("Patient ID", key="audit_patient").strip()
    dates = cols[3].date_input("Dates (clinic time)", value=(today - timedelta(days=30), today), key="audit_dates",
                               format="YYYY-MM-DD")
    st.form_submit_button("Show")

start, end = (tuple(dates) + (None, None))[:2] if isinstance(dates, (tuple, list)) else (dates, dates)
since = datetime.combine(start, time.min, tzinfo=tz) if start else None
until = datetime.combine(end or start, time.max, tzinfo=tz) if (end or start) else None
lines = audit_lines(engine, actor=actor or None, action=action, patient_id=patient_id or None, since=since, until=until)
audit_trail_read(engine, user, patient_id=patient_id or None, who=actor or None, action=action)

st.caption(f"{len(lines)} line(s), newest first" + (f" (the newest {LIMIT} only; narrow the filters)" if len(lines) >= LIMIT else "")
           + ". What changed lists only the fields that differ; the CSV download holds every value before and after.")


table = pd.DataFrame({
    "When": lines["at"].map(ui.fmt_datetime),
    "Who": lines["actor"],
    "Action": lines["action"].map(ui.words),
    "Record": (lines["entity"].fillna("") + " " + lines["entity_key"].fillna("")).str.strip(),
    "Patient": lines["patient_id"].fillna(""),
    "What changed": lines["detail"].map(describe_changes),
    "Details": lines["detail"].map(describe_detail),
})
st.dataframe(table, hide_index=True, width="stretch")


def _prepare() -> PreparedFile:
    """The trail holds names and notes in its before/after values: its download is an export like any other."""
    ids = sorted({str(p) for p in lines["patient_id"].dropna()})
    record_export(engine, actor=user.username, role=user.role, what="audit_trail", fmt="csv", patient_ids=ids,
                  deidentified=False, lines=int(len(lines)))
    return PreparedFile(f"ketawatch-audit-{today.isoformat()}.csv", audit_csv_bytes(lines), "text/csv")


st.caption("Download these lines as CSV. Cells that a spreadsheet could read as a formula start with a ' so they open "
           "as text. Preparing the file is audited.")
offer_file("audit-csv", (actor, action, patient_id, since, until, tuple(lines["id"].head(1)), len(lines)), _prepare,
           "Preparing the CSV of these lines", user=user)
