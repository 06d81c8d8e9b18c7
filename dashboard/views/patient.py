"""Patient: one person's level and reasons, risk beside benefit on one time axis, and their records.

The charts are drawn from ketawatch.charts descriptions (the PDF export draws the same ones);
every reason is shown with its evidence, and warning-sign reasons with the seed passage behind them.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import pandas as pd
import streamlit as st

from dashboard import data, ui
from dashboard.amend import change_notice, record_actions, record_history, record_summary
from dashboard.safety_follow_up import follow_up_form
from dashboard.auth import can_write
from dashboard.export_panel import patient_exports
from dashboard.record_views import patient_opened
from ketawatch.caseload import alerts_waiting, latest_reviews, reason_summary, unreviewed_alerts
from ketawatch.charts import record_span
from ketawatch.record_dates import latest_records
from ketawatch.risk import combination_note, load_rules, sud_history_note
from ketawatch.risk.as_seen import days_to_list
from ketawatch.risk.scoring import dose_per_kg, phq9_note, sds_total, weight_carried_forward
from seed_data.catalogue import warning_signs
from store.settings import get_settings
from store.vocabulary import ALL_REVIEW_ACTIONS, WARNING_SIGNS, reading_pair

PERIODS = {"Last 3 months": 91, "Last 6 months": 183, "Last 12 months": 365, "All": None}


def _amended_column(ids: pd.Series, versions: dict[int, int]) -> pd.Series:
    """'✎ v2' beside a record that was amended, blank beside the others: a craving changed from 2 to 3 read as first
    entered, its change found only under "Amended and voided records" (clinician's browser review)."""
    return ids.map(lambda rid: f"✎ v{versions[int(rid)]}" if int(rid) in versions else "").astype("string")


def _amended_caption(marks: pd.Series, what: str) -> None:
    """Under a table with an amended row, what its mark means and where the earlier versions are."""
    # always one element here, filled or not: a caption appearing after an amendment moved the elements below it, and
    # Streamlit then drew "Correct or void a record" afresh, closed, under the clinician's eyes (browser test)
    slot = st.empty()
    if (marks != "").any():
        slot.caption(f"✎ v2 (or later): the {what} was amended and this is its current version; each earlier version, "
                   "and why it was changed, is under Amended and voided records below.")


user = ui.signed_in_user()
patients = data.patients()
st.title("Patient", anchor=False)
if patients.empty:
    st.info("No patients yet. Add one on the Patients and plans page.")
    st.stop()

pid = ui.patient_picker(patients, key="pp_patient", label="Choose a patient (type an ID or a name)")
if pid is None:
    st.info("Choose a patient, or open one from the caseload.")
    st.stop()
if st.query_params.get("patient") != pid:
    st.query_params["patient"] = pid

engine = data.engine()
patient_opened(engine, user, pid, "patient")
row = patients.set_index("patient_id").loc[pid]
assessed = data.patient_level(pid)
level, since, reasons = assessed["level"], assessed["since"], assessed["reasons"] or []
recs = data.patient_records(pid)

# ----- header --------------------------------------------------------------------------------
name = row["display_name"] if isinstance(row["display_name"], str) else ""
st.header(ui.md_escape(f"{pid} · {name}" if name else pid), anchor=False)
facts = st.columns(6)
plan_dose = " or ".join(x for x in (
    "" if pd.isna(row["planned_dose_mg_per_kg"]) else f"{row['planned_dose_mg_per_kg']:.2f} mg/kg",
    "" if pd.isna(row["planned_dose_mg"]) else f"{row['planned_dose_mg']:g} mg") if x)
plan_interval = "" if pd.isna(row["planned_interval_days"]) else f"every {int(row['planned_interval_days'])} days"
identity = ", ".join((
    ui.words(row["sex"]) if isinstance(row["sex"], str) and row["sex"] else "sex not recorded",
    f"born {int(row['birth_year'])}" if not pd.isna(row["birth_year"]) else "year of birth not recorded",
))
for col, (label, value) in zip(facts, (
    ("Identity", identity),
    ("Indication", ui.words(row["indication"])),
    ("SUD history", "Yes" if bool(row["sud_history"]) else "No"),
    ("Plan", " ".join(x for x in (plan_dose, plan_interval) if x) or "no plan recorded"),
    ("Status", ui.words(row["status"])),
    ("Responsible clinician", ui.staff_column(pd.Series([row["clinician"]]), data.staff_names()).iloc[0]
     if isinstance(row["clinician"], str) else "not set"),
)):
    with col:
        st.caption(label)
        st.text(value)
# What the history does to the rules, under the facts: no observation, so not among those seen (clinical lead); in
# the SUD column it wrapped to 6 lines at 1366 px (browser check).
sud_note = f" History of substance use disorder: {sud_history_note(load_rules())}." if bool(row["sud_history"]) else ""
recent, quiet = latest_records(recs.sessions, recs.checkins, today=ui.now_local().date(),
                               tz=get_settings().clinic_timezone)
st.caption(" ".join(x for x in (f"Treatment started {ui.fmt_date(row['treatment_start'])}.", recent) if x) + sud_note)
if quiet:  # grey beside a red level, it went unseen (browser check)
    st.warning(quiet, icon=":material/history:")
safety = data.safety_answers()
mine = safety[safety["patient_id"] == pid]
ui.safety_banner(mine, can_follow_up=can_write(user))
if can_write(user) and len(mine):
    follow_up_form(engine, user, pid, level, further=not mine["followed_up_at"].isna().any())

# ----- level and reasons ---------------------------------------------------------------------
with st.container(border=True):
    st.subheader("Current level", anchor=False)
    ui.level_badge(level, since=since)  # the full width: in a column it was cut at "(since 20…" at 1024 px
    top = st.columns([3, 2])
    with top[0]:
        mood = phq9_note(recs.checkins, tz=get_settings().clinic_timezone)
        if mood and mood.worsened:  # a reliable worsening is not a footnote (a 13-point rise read as grey small print)
            st.warning(mood.text, icon=":material/trending_up:")
        elif mood:
            st.caption(mood.text)
        ui.disclaimer()
    with top[1]:
        reviews = data.patient_reviews(pid)
        latest = latest_reviews(reviews)
        if level in ("amber", "red"):
            tz, this_level, again = get_settings().clinic_timezone, pd.DataFrame([assessed]), get_settings().review_again_days
            waiting = unreviewed_alerts(this_level, reviews, tz=tz, review_again_days=again)
            unreviewed = not waiting.empty
            listed = not alerts_waiting(this_level, patients, reviews, tz=tz, review_again_days=again).empty  # as the Alerts page lists it
            if pid in latest.index:
                r = latest.loc[pid]
                because = ui.alert_reopened_because(due_again=bool(waiting["due_again"].iloc[0]), review_again_days=again) \
                    if unreviewed else "it covers the current reasons"
                st.caption(f"Last alert review {ui.fmt_datetime(r['reviewed_at'])}, at level "
                           f"{ui.words(r['reviewed_level'])}; {because}.")
            else:
                st.caption("This alert has not been reviewed yet.")
            if unreviewed and not listed:
                st.caption(f"Not on the Alerts page: the patient is {ui.words(row['status']).lower()}.")
            if listed and can_write(user):  # reviewed, or a reader who cannot review: no errand to send them on
                st.page_link("views/alerts.py", label="Review on the Alerts page", icon=":material/notifications_active:",
                             query_params={"patient": pid})  # the Alerts page shows this patient's card first
    if not reasons:
        st.write("No rule is raising this patient's level." if level == "green" else "No records to assess yet.")
    if reasons:
        st.markdown("**Why** (each observation with the dates it rests on):")
    ui.reason_list(reasons)
    if reasons:
        st.caption(combination_note(load_rules()))  # the settings the levels were computed with
    if assessed.get("not_counted"):  # a green beside a craving of 8 read as a miss: say what was seen and why not
        st.markdown("**Seen, not counted** (recent observations the rules do not count, and what would count):")
        ui.not_counted_list(assessed["not_counted"])

patient_exports(engine, user, pid)  # its own expander: "Export case review"

# ----- charts on one time axis ---------------------------------------------------------------
st.subheader("Trends", anchor=False)
def _keep_a_period() -> None:
    """A second click on the chosen period left none chosen, with the dates still those of the last (browser check):
    the period stays chosen."""
    if st.session_state.get("pp_period") is None:
        st.session_state["pp_period"] = st.session_state.get("pp_period_kept", "Last 6 months")
    st.session_state["pp_period_kept"] = st.session_state["pp_period"]


span = record_span(recs, pid, tz=get_settings().clinic_timezone)
if span is None:
    st.info("No sessions or check-ins recorded yet.")
    date_from = date_to = None
else:
    first, last = span
    # "Last 6 months" counts back from today, and the charts run to today: ending at the latest record hid how long
    # nothing has been recorded (clinician review).
    end = max(last, data.today())
    pick = st.container(horizontal=True, wrap=True)  # side by side when they fit; at 1024 px "All" was cut off
    st.session_state.setdefault("pp_period", "Last 6 months")
    period = pick.segmented_control("Period shown on every chart", list(PERIODS), key="pp_period", width="content",
                                    on_change=_keep_a_period)
    days = PERIODS.get(period)
    default_from = first if days is None else max(first, end - dt.timedelta(days=days))
    chosen = pick.date_input("Or choose dates", value=(default_from, end), min_value=first, max_value=end,
                             key=f"pp_dates_{pid}_{period}", format="YYYY-MM-DD", width=260)
    date_from, date_to = (chosen if isinstance(chosen, tuple) and len(chosen) == 2 else (default_from, end))
    st.caption("Background shading shows the level over time (Amber and Red are labelled at the top of each chart). "
               "Hover a point for its values; drag across a chart to zoom in, double-click it to zoom out.")
    for spec, fig in data.chart_figures(pid, date_from, date_to):
        if fig is None:
            st.caption(f"**{spec.title}**: nothing recorded between {ui.fmt_date(date_from)} and {ui.fmt_date(date_to)}.")
            continue
        st.plotly_chart(fig, key=f"chart_{spec.key}", config={"displaylogo": False, "displayModeBar": False})
        if spec.note:
            st.caption(spec.note)

# ----- records --------------------------------------------------------------------------------
st.subheader("Sessions", anchor=False)
s = recs.sessions.sort_values("session_at", ascending=False)
if s.empty:
    st.caption("No sessions recorded.")
else:
    # The engine's own arithmetic and weight: one not recorded is carried from the session before, as the chart and
    # the rules do (the table said "-" where the chart plotted 0.6 mg/kg; clinician's browser pass).
    in_time = s.sort_values("session_at", kind="stable")
    carried = weight_carried_forward(in_time["patient_id"], in_time["weight_kg"]).reindex(s.index)
    per_kg = dose_per_kg(s["dose_mg"], carried, s["route"])
    borrowed = s["weight_kg"].isna() & per_kg.notna()
    amended = _amended_column(s["id"], data.amended_versions(pid, "session"))
    table = pd.DataFrame({
        "When": ui.local_column(s["session_at"]),
        "Amended": amended,  # beside the time, where a wide table is not cut off
        "Route": s["route"].map(ui.route_words),
        "Dose (mg)": s["dose_mg"],
        "mg/kg": per_kg.round(2),
        "Weight (kg)": s["weight_kg"],
        "Minutes": s["duration_min"],
        "Asked earlier": s["early_request"].map({True: "yes", False: "no"}),
        "Asked for more": s["dose_increase_request"].map({True: "yes", False: "no"}),
        "BP before": s["sbp_pre"].astype("Int64").astype("string") + "/" + s["dbp_pre"].astype("Int64").astype("string"),
        "BP after": s["sbp_post"].astype("Int64").astype("string") + "/" + s["dbp_post"].astype("Int64").astype("string"),
        "HR before/after": [reading_pair(a, b) for a, b in zip(s["hr_pre"], s["hr_post"])],  # a lone reading shows
        "SpO₂ before/after (%)": [reading_pair(a, b) for a, b in zip(s["spo2_pre"], s["spo2_post"])],
        "CADSS": s["dissociation_cadss"],
        "Side effects": s["side_effects"].map(ui.side_effect_words),
        "Notes": s["notes"],
    })
    ui.show_table(table, key="pp_sessions",
                 column_config={"When": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm")})
    _amended_caption(amended, "session")
    borrowed_note = st.empty()  # one element, filled or not, as under _amended_caption
    if borrowed.any():
        times = [ui.fmt_datetime(t) for t in s.loc[borrowed, "session_at"].sort_values()]
        shown = ", ".join(times[:5]) + (f" and {len(times) - 5} more" if len(times) > 5 else "")
        borrowed_note.caption(f"No weight was recorded at the session of {shown}: its mg/kg uses the last weight recorded "
                   "before it, as the dose chart and the rules do." if len(times) == 1 else
                   f"No weight was recorded at the sessions of {shown}: the mg/kg of each uses the last weight "
                   "recorded before it, as the dose chart and the rules do.")

st.subheader("Check-ins", anchor=False)
c = recs.checkins.sort_values("reported_at", ascending=False)
if c.empty:
    st.caption("No check-ins recorded.")
else:
    sign_labels = {w.id: w.label for w in warning_signs()}
    amended = _amended_column(c["id"], data.amended_versions(pid, "checkin"))
    table = pd.DataFrame({
        "When": ui.local_column(c["reported_at"]),
        "Amended": amended,
        "Craving (0-10)": c["craving"],
        "SDS (0-15)": sds_total(c),
        "PHQ-9 (0-27)": c["phq9"],
        **{sign_labels[w]: c[w] for w in WARNING_SIGNS},
        "Notes": c["notes"],
    })
    ui.show_table(table, key="pp_checkins",
                 column_config={"When": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm")})
    _amended_caption(amended, "check-in")

if can_write(user) and not (s.empty and c.empty):
    with st.expander("Correct or void a record", icon=":material/edit_note:"):
        change_notice()
        # Options are (kind, id) only, so the choice survives an amendment that changes the record's time.
        # Newest first, sessions and check-ins together: today's check-in was at the bottom, under every session.
        listed = sorted([(r["session_at"], ("session", int(r["id"])), f"Session {ui.fmt_datetime(r['session_at'])}: "
                          f"{record_summary('session', r)}") for r in s.to_dict("records")]
                        + [(r["reported_at"], ("checkin", int(r["id"])), f"Check-in {ui.fmt_datetime(r['reported_at'])}: "
                            f"{record_summary('checkin', r)}") for r in c.to_dict("records")],
                        key=lambda item: item[0], reverse=True)
        names = {choice: words for _, choice, words in listed}
        # The browser keeps a chosen option's old words when only the words change (an amended dose showed its old
        # value, nurse's review): a new key whenever any record's words change, carrying the choice over.
        words = hashlib.sha256("\n".join(names.values()).encode()).hexdigest()[:12]
        key, last = f"pp_record_{pid}_{words}", f"pp_record_{pid}_chosen"
        if key not in st.session_state and st.session_state.get(last) in names:
            st.session_state[key] = st.session_state[last]
        picked = st.selectbox("Record", list(names), format_func=names.get, index=None, key=key,
                              placeholder="Choose a session or check-in")
        st.session_state[last] = picked
        if picked is not None:
            kind, rid = picked
            frame = s if kind == "session" else c
            record = frame[frame["id"] == rid].iloc[0].to_dict()
            record_actions(engine, user, kind, record)

with st.expander("Amended and voided records", icon=":material/history:"):
    record_history(data.changed_records(pid))

with st.expander("Level as shown at the time", icon=":material/event_repeat:"):
    st.caption("What KetaWatch showed at the end of each day on which this patient's records were entered, corrected "
               "or voided (for today: what it shows now), computed from the records as they were stored then (with "
               "today's rules), beside today's replay of that date. The charts' shading and the exports' level history are the replay: a record "
               "entered late, corrected or voided changes them from its date on.")
    seen = data.shown_then(pid)
    listed = days_to_list(seen)
    differing = int(seen["differs"].sum()) if len(seen) else 0
    if seen.empty:
        st.write("No session or check-in had been stored for this patient by the end of any day.")
    elif differing:
        days = "the only day" if len(seen) == 1 else f"{differing} of the {len(seen)} days"
        st.info(f"On {days}, the level shown then differs from today's replay of that "
                "date: records of it were entered later, corrected or voided.", icon=":material/difference:")
    elif len(seen) == 1:
        st.write("On the only day, the level shown then is the level today's replay gives for that date.")
    else:
        st.write(f"On each of the {len(seen)} days, the level shown then is the level today's replay gives for that date.")
    if len(listed):
        table = pd.DataFrame({
            "Day": listed["date"],
            "Shown at the day's end": listed["level"].map(ui.level_short),
            "Today's replay of that date": listed["replay_level"].map(
                lambda lv: "not assessed" if lv == "not assessed" else ui.level_short(lv)),
            "Differs": listed["differs"].map({True: "yes", False: ""}),
            "Why then": listed["reasons"].map(reason_summary),  # last: at 1024 px a long one hid the replay (browser check)
        }).iloc[::-1]  # newest first, as the records above
        ui.show_table(table.style.map(ui.level_cell_style, subset=["Shown at the day's end", "Today's replay of that date"]),
                      key="pp_shown_then",
                      column_config={"Day": st.column_config.DateColumn(format="YYYY-MM-DD")})

st.subheader("Alert reviews", anchor=False)
mine = data.patient_reviews(pid)
if mine.empty:
    st.caption("No alert reviews for this patient.")
else:
    actions = {a: ui.words(a) for a in ALL_REVIEW_ACTIONS}
    ui.show_table(pd.DataFrame({
        "Reviewed": ui.local_column(pd.to_datetime(mine["reviewed_at"], utc=True)),
        "By": ui.staff_column(mine["reviewed_by"], data.staff_names()),
        "Level": ui.reviewed_level(mine),
        "Action": mine["action"].map(actions),
        "Note": mine["note"],
        "Reasons reviewed": ui.reviewed_reasons(mine["reasons"]),  # the long list of rule ids last, as on Alerts
    }), key="pp_reviews",
        column_config={"Reviewed": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm")})
