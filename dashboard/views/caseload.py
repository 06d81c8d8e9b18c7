"""Caseload (home): every patient's level, since when and why, sessions due and latest scores, worst first.

The table comes from ketawatch.caseload (also used by the exports and the CLI); this page only
filters it and opens a patient.
"""

from __future__ import annotations

import re

import pandas as pd
import streamlit as st

from dashboard import data, ui
from dashboard.export_panel import caseload_exports
from ketawatch.caseload import LEVEL_RANK, level_counts
from store.settings import get_settings
from store.vocabulary import INDICATIONS, PATIENT_STATUSES, UNDER_CARE_STATUSES, sentence_case

user = ui.signed_in_user()
st.title("Caseload", anchor=False)
ui.disclaimer()
ui.safety_banner(data.safety_answers(), label=ui.patient_label(data.patients()))

table = data.caseload()
if table.empty:
    st.info("No patients yet. Add one on the Patients and plans page, or import CSV files with `ketawatch import`.")
    st.stop()

#: The level filter's choices: all, each level, and amber with red (the patients a meeting goes through).
LEVEL_CHOICES = {"all": "All", "red": "‼ Red", "amber+red": "Amber or red", "amber": "⚠ Amber",
                 "green": "✓ Green"}

# ----- filters -------------------------------------------------------------------------------
# Each filter has a width of its own and the row wraps: in six columns at 1024 px the labels broke mid-word
# ("Responsibl e clinician") and the status chips showed "A…" (clinician review).
with st.container(border=True):
    f = st.container(horizontal=True, wrap=True)
    clinicians = sorted(c for c in table["clinician"].dropna().unique())
    chosen_clinicians = f.multiselect("Responsible clinician", clinicians, key="cl_clinician", placeholder="All",
                                      width=220)
    # One choice, in words that fit: a list box squeezed the chosen levels to an empty block at 1366 px.
    level_choice = f.selectbox("Level", list(LEVEL_CHOICES), key="cl_level", format_func=LEVEL_CHOICES.get, width=170)
    chosen_levels = [] if level_choice == "all" else level_choice.split("+")
    chosen_indications = f.multiselect("Indication", INDICATIONS, key="cl_indication", format_func=ui.words,
                                       placeholder="All", width=200)
    st.session_state.setdefault("cl_status", list(UNDER_CARE_STATUSES))
    chosen_status = f.multiselect("Status", PATIENT_STATUSES, key="cl_status", format_func=ui.words, placeholder="All",
                                  width=260)  # two choices by default: room for both
    sud = f.selectbox("SUD history", ["Any", "Yes", "No"], key="cl_sud", width=120)
    search = f.text_input("Search ID or name", key="cl_search", placeholder="e.g. KW-0013", width=200)
    only = st.container(horizontal=True, wrap=True)
    only_to_review = only.toggle("Only those to review", key="cl_to_review", width="content",
                                 help="Amber or red patients whose current reasons nobody has acknowledged on Alerts, "
                                      f"or not in the last {get_settings().review_again_days} days")
    only_overdue = only.toggle("Only sessions overdue", key="cl_overdue", width="content",
                               help="The planned interval since the last session has passed (active patients only)")
    mood_slot = only.empty()  # drawn once the other filters are applied, with how many they leave

view = table
if chosen_clinicians:
    view = view[view["clinician"].isin(chosen_clinicians)]
if chosen_levels:
    view = view[view["level"].isin(chosen_levels)]
if chosen_indications:
    view = view[view["indication"].isin(chosen_indications)]
if chosen_status:
    view = view[view["status"].isin(chosen_status)]
if sud != "Any":
    view = view[view["sud_history"] == (sud == "Yes")]
if only_to_review:
    view = view[view["needs_review"]]
if only_overdue:
    view = view[view["session_overdue"]]
# The count in the toggle's own words: a sixth tile wrapped to a second row at 1280 px and was cut to "PHQ-9 w…"
only_mood_worse = mood_slot.toggle(
    f"Only PHQ-9 reliably worse ({int(view['phq9_worse'].sum())})", key="cl_mood_worse", width="content",
    help="The latest PHQ-9 is 6 or more points above the patient's lowest, a possible depressive relapse, whatever the "
         "level: the level covers dependence risk, not mood, so a green level beside it is not reassurance. The "
         "number is of the patients the other filters leave.")
if only_mood_worse:
    view = view[view["phq9_worse"]]
if search.strip():  # every word typed, anywhere in the id or the name: "sky hartwell" finds "Sky Demo-Hartwell"
    haystack = view["patient_id"].str.lower() + " " + view["display_name"].fillna("").str.lower()
    found = pd.Series(True, index=view.index)
    for word in re.split(r"[\s-]+", search.lower()):  # hyphens too: "hartwell-sky", "kw 0022"
        found &= haystack.str.contains(word, regex=False)
    view = view[found]

# ----- counts per level ----------------------------------------------------------------------
counts = level_counts(view)
# Tiles as wide as their words, wrapping to a second line when the page is narrow: five equal columns cut the
# labels to "A…", "Gr…", "To…" at 1024 px (clinician review).
metrics = st.container(horizontal=True, wrap=True)
for level in sorted(LEVEL_RANK, key=LEVEL_RANK.get, reverse=True):
    look = ui.level_look(level)
    metrics.metric(f"{look.icon} {look.name}", counts[level], border=True, help=f"{look.name}: {look.meaning}",
                   width=140)
metrics.metric(":material/notifications_active: To review", int(view["needs_review"].sum()), border=True, width=140,
               help="Amber or red patients whose current reasons no clinician has acknowledged on the Alerts page, or "
                    "not in the last " + str(get_settings().review_again_days) + " days.")
metrics.metric(":material/event_busy: Overdue", int(view["session_overdue"].sum()), border=True, width=140,
               help="Overdue by plan: the planned interval since the last session has passed (active patients only: "
                    "a paused or discharged patient has no session due).")

# ----- the table -----------------------------------------------------------------------------
due = view["next_session_due"].dt.strftime("%Y-%m-%d").fillna("")
due = due.where(view["status"].eq("active").fillna(False), view["status"].map(ui.words).fillna(""))  # "Paused"


def _counted(titles: pd.Series, ids: pd.Series) -> pd.Series:
    """Each row's reasons in a few words after their number ("(3) Craving rising · ..."); a dash for none."""
    return pd.Series([f"({len(i)}) {t}" if t else "—" for t, i in zip(titles, ids)], index=titles.index)


def _with_mood(reasons: pd.Series, worse: pd.Series, latest: pd.Series) -> pd.Series:
    """The reasons, and after them a PHQ-9 reliably worse than the patient's lowest: a relapse to PHQ-9 19 beside a
    green level showed only in the PHQ-9 column, off screen at 1280 px (clinician's browser review)."""
    worse = worse.fillna(False).astype(bool)
    if not worse.any():  # an empty list too, whose reasons have no text type to work on
        return reasons
    mood = "mood: PHQ-9 " + latest.map(lambda v: f"{v:g}" if pd.notna(v) else "") + ", reliably worse than their lowest"
    told = reasons.where(reasons != "—", "").str.cat(mood, sep="; ").str.removeprefix("; ")
    return reasons.where(~worse, told.map(sentence_case))
# Who, how urgent, since when, whether anyone has looked and when the next session is due come first:
# at 1366 px they are what fits beside the reasons. (Pinned columns would keep them in view while scrolling, but Streamlit
# greys pinned text, and the level must be the clearest text on the page.)
shown = pd.DataFrame({
    "Level": view["level"].map(ui.level_short),
    "Patient": view["patient_id"],
    "Name": view["display_name"],
    "Since": view["level_since"],
    "Review": view["needs_review"].map({True: "to review", False: "reviewed"}).where(view["level"] != "green", ""),
    "Next due": due.where(~view["session_overdue"], due + " (overdue)"),
    # How many first: the grid cuts a long cell without a way to read the rest (Streamlit 1.67 does not wrap), so
    # "(7)" says that more follow than fit (clinician review).
    "Reasons": _with_mood(_counted(view["reason_titles"], view["reason_ids"]), view["phq9_worse"], view["phq9_latest"]),
    "Craving (last 12)": view["craving_history"],
    "SDS": view["sds_latest"],
    "PHQ-9": view["phq9_latest"],
    "Last session": ui.local_column(view["last_session_at"]),
    "Clinician": view["clinician"],
    "Indication": view["indication"].map(ui.words),
    "SUD history": view["sud_history"].map({True: "yes", False: "no"}),
    "Status": view["status"].map(ui.words),
}).reset_index(drop=True)

filtered_by = [name for name, on in (("responsible clinician", chosen_clinicians), ("level", chosen_levels),
                                     ("indication", chosen_indications),
                                     # the default, under care only, is said apart: it is no filter anyone set
                                     ("status", chosen_status and set(chosen_status) != set(PATIENT_STATUSES)
                                      and set(chosen_status) != set(UNDER_CARE_STATUSES)),
                                     ("SUD history", sud != "Any"), ("to review", only_to_review),
                                     ("overdue", only_overdue), ("PHQ-9 reliably worse", only_mood_worse),
                                     ("search", search.strip())) if on]
under_care_only = set(chosen_status or ()) == set(UNDER_CARE_STATUSES)
st.caption(f"{len(shown)} of {len(table)} patients" + (" under care (active or paused)" if under_care_only else "")
           + (f" (filtered by {', '.join(filtered_by)}; the counts above are of these)" if filtered_by else "") + ". Listed worst level first and, within a level, not yet reviewed "
           "first, until a column heading is clicked. Select a row to open the patient.")
if shown.empty:  # an empty table's own message overlapped the next label
    st.info("No patient matches these filters.")
# Red and amber cells tinted so they stand out in a long list (clinician review), up to TINT_ROWS rows: a pandas
# Styler renders every cell of the table, 0.26 s of a 0.42 s page at 2,000 patients (measured 2026-12-01, bench/speed.py).
# Longer lists keep the symbol and the word, and are sorted worst first.
TINT_ROWS = 300
picked = None if shown.empty else ui.show_table(
    shown.style.map(ui.level_cell_style, subset=["Level"]) if len(shown) <= TINT_ROWS else shown,
    key="cl_table",
    on_select="rerun",
    selection_mode="single-row",
    height=min(36 * (len(shown) + 1) + 4, 640),
    column_config={
        "Level": st.column_config.TextColumn(
            help="‼ Red: review now · ⚠ Amber: watch, review at the next visit · ✓ Green: no warning pattern. "
                 "Supports clinical judgement; does not diagnose."),
        "Since": st.column_config.DateColumn(format="YYYY-MM-DD", help="Date the current level began"),
        "Next due": st.column_config.TextColumn(width=150, help="By the plan: the last session's date plus the planned "
                                                "interval"),  # room for "(overdue)"
        "Last session": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
        "Reasons": st.column_config.TextColumn(width=560, help="Every reason in a few words, most important first; "
                                               "open the patient for each observation with its numbers and dates. A "
                                               "PHQ-9 reliably worse than the patient's lowest is said last, whatever "
                                               "the level: a relapse is not a sign of dependence, but needs review"),
        "Craving (last 12)": st.column_config.LineChartColumn(y_min=0, y_max=10, help="Craving 0-10, oldest to newest"),
        "SDS": st.column_config.NumberColumn(format="%d", help="Latest Severity of Dependence Scale total (0-15)"),
        "PHQ-9": st.column_config.NumberColumn(format="%d", help="Latest PHQ-9 total (0-27, lower is better); "
                                               "'Only PHQ-9 reliably worse' above lists those 6 or more points above "
                                               "their lowest"),
    },
)
rows = picked.selection.rows if picked is not None and hasattr(picked, "selection") else []
if rows:
    pid = shown.iloc[rows[0]]["Patient"]
    st.session_state[ui.PATIENT_KEY] = pid
    st.switch_page("views/patient.py", query_params={"patient": pid})

go = st.container(horizontal=True, wrap=True, vertical_alignment="bottom")  # at 1024 px a column cut it to "Open patie…"
open_id = go.selectbox("Open a patient", shown["Patient"].tolist(), index=None, key="cl_open", width=360,
                       format_func=ui.patient_label(table), placeholder="Type an ID or a name")
if go.button("Open patient page", icon=":material/open_in_new:", disabled=open_id is None, key="cl_open_button",
             width="content"):
    st.session_state[ui.PATIENT_KEY] = open_id
    st.switch_page("views/patient.py", query_params={"patient": open_id})

caseload_exports(data.engine(), user)  # its own expander: "Export for the team meeting"
