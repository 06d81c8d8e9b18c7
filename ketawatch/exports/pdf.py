"""The patient case-review PDF: the one document a team reads before deciding what to do.

Sections in reading order: who the patient is and the plan, the current level with its reasons
and history, the charts (craving, warning signs, dose, intervals, SDS, PHQ-9), side effects,
the session and check-in tables (amended rows marked), the corrections (records amended or
voided since they were first recorded), notes (identified only), alert reviews and a sign-off block.
Everything comes from a `PatientCase`, so a de-identified document is built from already
de-identified data and has nothing to leak.
"""

from __future__ import annotations

import pandas as pd

from ketawatch.exports.casefile import PatientCase, local_day
from ketawatch.exports.figures import FigureImage, case_figures
from ketawatch.exports.pdf_layout import DISCLAIMER, ReviewPDF, local_time_text
from ketawatch.record_dates import latest_records
from ketawatch.caseload import reason_summary
from ketawatch.risk import combination_note, evidence_note, load_rules, reason_role, sud_history_note
from ketawatch.risk.reasons import rule_title
from ketawatch.risk.scoring import phq9_note
from ketawatch.risk.wording import day_words
from ketawatch.accounts import staff_label
from ketawatch.safety_answers import QUESTION_9, follow_up_text
from seed_data.catalogue import seed_citation, side_effect_words, side_effects, warning_sign, warning_sign_answers
from store.vocabulary import WARNING_SIGNS, code_words, is_safety_follow_up, reading_pair, reviewed_reasons_text

_ROUTE_WORDS = {"iv": "IV", "im": "IM", "intranasal": "intranasal", "oral": "oral", "sublingual": "sublingual"}


def _text(value, unit: str = "", digits: int = 1) -> str:
    """A value for a table cell: '' when missing, whole numbers without decimals."""
    if value is None or value is pd.NA or (isinstance(value, float) and pd.isna(value)):
        return ""
    if isinstance(value, (int, float)):
        number = float(value)
        shown = str(int(round(number))) if abs(number - round(number)) < 1e-9 else f"{number:.{digits}f}"
        return f"{shown}{unit}"
    return f"{value}{unit}"


def _day(value) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    return pd.Timestamp(value).strftime("%Y-%m-%d")


def _words(code) -> str:
    return "" if code is None or pd.isna(code) else code_words(str(code), capital=False)


def _asked(value) -> bool:
    return value is not None and value is not pd.NA and not (isinstance(value, float) and pd.isna(value)) and bool(value)


def _yes_no(value) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and pd.isna(value)):
        return "not recorded"
    return "yes" if bool(value) else "no"


def patient_facts(case: PatientCase) -> list[tuple[str, str]]:
    """The identity and plan lines at the top of the summary."""
    p = case.patient
    plan_dose = " or ".join(x for x in (_text(p.get("planned_dose_mg_per_kg"), " mg/kg", 2),
                                        _text(p.get("planned_dose_mg"), " mg (fixed-dose routes)")) if x) or "not set"
    plan_interval = _text(p.get("planned_interval_days"), " days") or "not set"
    facts: list[tuple[str, str]] = []
    sud = _yes_no(p.get("sud_history"))
    if case.deidentified:
        facts += [("Pseudonym", case.patient_key), ("Age band (at export)", case.age_band or "not recorded")]
    else:
        facts += [
            ("Name", _text(p.get("display_name")) or "not recorded"),
            ("Patient ID", case.patient_key),
            ("Year of birth", _text(p.get("birth_year")) or "not recorded"),
        ]
    facts += [
        ("Sex", _words(p.get("sex")) or "not recorded"),
        ("Indication", _words(p.get("indication"))),
        ("History of substance use disorder", sud + (f" ({sud_history_note(load_rules())})" if sud == "yes" else "")),
        ("Treatment start", _day(p.get("treatment_start"))),
        ("Plan", f"planned dose {plan_dose}; planned interval between maintenance sessions {plan_interval}"),
        ("Responsible clinician", _text(staff_label(p.get("clinician"), case.staff)) or "not recorded"),
        ("Status", _words(p.get("status")) or "active"),
    ]
    return facts


def window_text(case: PatientCase) -> str:
    """The period the file covers, as a clinician says it ("All records up to 15 May 2026", "Records from 6 Mar 2025 to
    12 Mar 2025"): "Records from first record to 2026-05-15" read awkwardly in a clinician's case-review reading. A
    de-identified file marks each date it prints as shifted, as its records are (the day of export it never prints)."""
    shifted = case.deidentified
    start = day_words(case.start) if case.start else None
    end = "the day of export" if case.export_day_hidden else day_words(case.end)
    if start is None:
        return f"All records up to {end}" + (" (shifted date)" if shifted and not case.export_day_hidden else "")
    if case.export_day_hidden:
        return f"Records from {start} (shifted date) to {end}"
    return f"Records from {start} to {end}" + (" (shifted dates)" if shifted else "")


def _reason_line(reason) -> str:
    line = f"[{reason_role(reason.level, reason.discounted)}] {reason.text} (rule {reason.rule_id})"
    if reason.evidence_dates:  # the meeting checks a reason against the tables below by its dates
        line += f"\n    Evidence quoted: {evidence_note(reason)}"
    if reason.quotation and reason.source:
        line += f"\n    Seed document {seed_citation(reason.source)}: \u201c{reason.quotation}\u201d"
    return line


#: Under a table of reasons in a few words (clinician's case-review reading): where the reasons are given in full, with
#: the rule id that traces each.
REASON_WORDS_NOTE = ("Reasons in a few words, as on the caseload page, most important first; \u201c(supporting)\u201d adds "
                     "weight but never raises a level on its own. The reasons that hold now are given in full above, each "
                     "with its rule id.")


def _level_section(pdf: ReviewPDF, case: PatientCase) -> None:
    pdf.heading("Dependence-risk level")
    since = f"; at this level since {case.since.isoformat()}" if case.since else ""
    recent, quiet = latest_records(case.records.sessions, case.records.checkins, today=case.end, tz=case.tz,
                                   today_hidden=case.export_day_hidden)
    pdf.level_badge(case.level, f"As of {case.as_of_text}{since}.")
    if recent:  # as on the patient page: the level of a patient not seen for weeks is not today's news
        pdf.paragraph(recent + (f" {quiet}" if quiet else ""), size=8.5, style="B" if quiet else "")
    mood = phq9_note(case.records.checkins, tz=case.tz)  # a green beside a relapse must not read as reassurance
    if mood:
        pdf.paragraph(mood.text, size=8.5, style="B" if mood.worsened else "")
    pdf.paragraph(DISCLAIMER, size=8, style="I", height=3.8)
    pdf.ln(1)
    if case.reasons:
        pdf.set_font("DejaVu", "B", 9)
        pdf.cell(0, 5, "Why (observations, most important first):", new_x="LMARGIN", new_y="NEXT")
        for reason in case.reasons:
            pdf.bullet(_reason_line(reason))
        pdf.ln(1)
        pdf.paragraph(combination_note(load_rules()), size=7.5, style="I", height=3.4)
    else:
        pdf.paragraph("No rule raises the level as of this date" + ("; what was seen but not counted is below."
                      if case.not_counted else ": the records raise no dependence signal."), size=8.5)
    if case.not_counted:  # as on the patient page: a green beside a craving of 8 must say why it is green
        pdf.ln(1)
        pdf.set_font("DejaVu", "B", 9)
        pdf.cell(0, 5, "Seen, not counted (recent observations the rules do not count, and what would count):",
                 new_x="LMARGIN", new_y="NEXT")
        for item in case.not_counted:
            pdf.bullet(item.text)
    pdf.ln(1)
    pdf.heading("Level history (first assessment and every change)", size=9, keep=20)
    # In words, as the caseload's Reasons column: rule ids alone were unreadable in a clinician's case-review reading
    rows = [[_day(r.date), r.level, reason_summary(r.reasons) or "-"] for r in case.history.itertuples(index=False)]
    pdf.data_table(["Date", "Level", "Reasons"], rows, [24, 18, pdf.usable_width - 42], size=7.5)
    pdf.paragraph(REASON_WORDS_NOTE, size=7, style="I", height=3.4)
    _shown_then(pdf, case)


def _shown_then(pdf, case: PatientCase) -> None:
    """Where the level shown at the time differs from the replay above: a case review asks what the screen said that day."""
    shown = case.shown_then
    if shown is None or shown.empty:
        return
    differing = shown[shown["differs"].to_numpy(dtype=bool)]
    pdf.ln(1)
    pdf.heading("Level as shown at the time", size=9, keep=20)
    if differing.empty:
        pdf.paragraph("On every day in this period on which the records were entered, corrected or voided, the level "
                      "shown at the end of the day (from the records as stored then) is the level in the history above.",
                      size=8.5)
        return
    pdf.paragraph("The history above replays each date from the records as they stand now. On these days, the level "
                  "shown at the end of the day, from the records as they were stored then (with today's rules), "
                  "differs: records of the day were entered later, corrected or voided.", size=8.5)
    rows = [[_day(r.date), r.level, r.reason_titles or "-", r.replay_level] for r in differing.itertuples(index=False)]
    pdf.data_table(["Date", "Shown then", "Reasons then", "This replay"], rows,
                   [24, 22, pdf.usable_width - 70, 24], size=7.5)


def chart_specs(case: PatientCase) -> list:
    """The dashboard's chart descriptions for the period the file covers."""
    from ketawatch.charts import patient_chart_specs

    return patient_chart_specs(case.records, case.patient_key, tz=case.tz, date_from=case.start, date_to=case.chart_end)


def _figures(case: PatientCase) -> list[FigureImage]:
    """The dashboard's chart descriptions for the period, rendered for print."""
    return case_figures(chart_specs(case))


def side_effect_rows(case: PatientCase) -> list[list[str]]:
    """Per side effect: how many sessions recorded it at each severity, in the period."""
    sessions = _sessions_in_window(case)
    effects = sessions["side_effects"].dropna()
    if effects.empty:
        return []
    items = effects.str.split(";").explode()
    items = items[items.fillna("").str.len() > 0]
    split = items.str.split(":", n=1, expand=True)
    counts = pd.crosstab(split[0], split[1])
    labels = {e.id: e.label for e in side_effects()}
    order = [e.id for e in side_effects() if e.id in counts.index]
    rows = []
    for effect in order:
        line = counts.loc[effect]
        mild, moderate, severe = (int(line.get(s, 0)) for s in ("mild", "moderate", "severe"))
        rows.append([labels.get(effect, effect), str(mild), str(moderate), str(severe), str(mild + moderate + severe)])
    return rows


def _sessions_in_window(case: PatientCase) -> pd.DataFrame:
    s = case.records.sessions.copy()
    s["date"] = local_day(s["session_at"], case.tz)
    return case.in_window(s).sort_values("session_at", kind="stable").reset_index(drop=True)


def _checkins_in_window(case: PatientCase) -> pd.DataFrame:
    c = case.records.checkins.copy()
    c["date"] = local_day(c["reported_at"], case.tz)
    return case.in_window(c).sort_values("reported_at", kind="stable").reset_index(drop=True)


#: After the date of a row whose values were corrected after it was first recorded.
AMENDED_MARK = " *"
AMENDED_NOTE = "* amended after it was first recorded: what changed, when and why are under Corrections."
AMENDED_NOTE_DEIDENTIFIED = ("* amended after it was first recorded: when is under Corrections (what changed and why are "
                             "left out of a de-identified copy).")


def correction_rows(case: PatientCase) -> list[list[str]]:
    """Each record of the period amended or voided since it was first recorded, in record order."""
    c = case.corrections
    if c is None or c.empty:
        return []
    record_at = pd.to_datetime(c["record_at"], utc=True).dt.tz_convert(case.tz)
    changed_at = pd.to_datetime(c["changed_at"], utc=True).dt.tz_convert(case.tz)
    rows = []
    for i, r in enumerate(c.itertuples(index=False)):
        reason = "(left out: free text)" if case.deidentified else _text(r.reason)
        change = f"{r.change}: {r.what_changed}" if pd.notna(r.what_changed) else r.change
        rows.append([r.record, record_at.iloc[i].strftime("%Y-%m-%d %H:%M"), change,
                     changed_at.iloc[i].strftime("%Y-%m-%d %H:%M"), _text(staff_label(r.changed_by, case.staff)), reason])
    return rows


def session_rows(case: PatientCase) -> list[list[str]]:
    """The session table's rows: time, route, dose, dose per kg, interval, vitals, CADSS, requests, side effects."""
    sessions = _sessions_in_window(case)
    signals = case.signals.get("sessions", pd.DataFrame(columns=["session_at", "dose_per_kg", "interval_days"]))
    computed = signals.set_index(pd.to_datetime(signals["session_at"], utc=True))[["dose_per_kg", "interval_days"]] if len(signals) else None
    amended = case.amended_ids("session")
    rows = []
    local = pd.to_datetime(sessions["session_at"], utc=True).dt.tz_convert(case.tz)
    for i, s in enumerate(sessions.itertuples(index=False)):
        at = pd.Timestamp(s.session_at)
        per_kg = computed["dose_per_kg"].get(at) if computed is not None else None
        interval = computed["interval_days"].get(at) if computed is not None else None
        requests = " ".join(flag for flag, asked in (("earlier", s.early_request), ("more", s.dose_increase_request)) if _asked(asked))
        bp_pre = f"{_text(s.sbp_pre)}/{_text(s.dbp_pre)}" if pd.notna(s.sbp_pre) else ""
        bp_post = f"{_text(s.sbp_post)}/{_text(s.dbp_post)}" if pd.notna(s.sbp_post) else ""
        hr, spo2 = reading_pair(s.hr_pre, s.hr_post), reading_pair(s.spo2_pre, s.spo2_post)
        effects = side_effect_words(s.side_effects)
        rows.append([
            local.iloc[i].strftime("%Y-%m-%d %H:%M") + (AMENDED_MARK if s.id in amended else ""),
            _ROUTE_WORDS.get(str(s.route), str(s.route)), _text(s.dose_mg),
            _text(per_kg, digits=2), _text(interval), _text(s.weight_kg), bp_pre, bp_post, hr, spo2,
            _text(s.dissociation_cadss), requests, effects,
        ])
    return rows


def checkin_rows(case: PatientCase) -> list[list[str]]:
    """The check-in table's rows: date, craving, SDS, warning-sign burden and every sign it adds up, PHQ-9."""
    checkins = _checkins_in_window(case)
    signals = case.signals.get("checkins")
    computed = signals.set_index(pd.to_datetime(signals["reported_at"], utc=True)) if signals is not None and len(signals) else None
    answers = checkins[list(WARNING_SIGNS)].to_numpy(dtype="float64")
    labels = [warning_sign(s).label.split(":")[0] for s in WARNING_SIGNS]  # "Tolerance", as the reasons name it
    weights = [warning_sign(s).weight for s in WARNING_SIGNS]
    amended = case.amended_ids("check-in")
    rows = []
    local = pd.to_datetime(checkins["reported_at"], utc=True).dt.tz_convert(case.tz)
    for i, c in enumerate(checkins.itertuples(index=False)):
        at = pd.Timestamp(c.reported_at)
        sds = computed["sds_total"].get(at) if computed is not None else None
        burden = computed["sign_burden"].get(at) if computed is not None else None
        rows.append([local.iloc[i].strftime("%Y-%m-%d") + (AMENDED_MARK if c.id in amended else ""), _text(c.craving),
                     _text(sds), _text(burden), signs_answered(answers[i], labels, weights), _text(c.phq9)])
    return rows


def signs_answered(answers, labels: list[str], weights: list[float]) -> str:
    """The signs answered above 'not at all', worst answer first, each with its catalogue weight ("Clearly (2):
    Tolerance \u00d72. A little (1): Sleep disturbance \u00d71"), so the sign burden beside them adds up by hand: with
    only the 'clearly' ones listed, a burden of 11.5 stood beside an empty cell (clinician's case-review reading)."""
    words = warning_sign_answers()
    groups = []
    for score in (3, 2, 1):
        signs = [f"{labels[j]} \u00d7{_text(weights[j])}" for j in range(len(labels)) if answers[j] == score]
        if signs:
            groups.append(f"{words[score]} ({score}): " + ", ".join(signs))
    return ". ".join(groups)


def sign_burden_note() -> str:
    """How the sign burden adds up, in the checklist's answer words, under the check-in table: a clinician checks it
    against the signs listed beside it (clinician's case-review reading)."""
    words = [w.lower() for w in warning_sign_answers()]
    scale = ", ".join(f"{score} {word}" for score, word in enumerate(words))
    return ("Craving 0-10; SDS 0-15 (all five items answered). Sign burden: each warning sign's answer "
            f"({scale}) times its catalogue weight (\u00d7), added up over the signs listed beside it; for example, a "
            f"sign of weight 2 answered '{words[2]}' and one of weight 1.5 answered '{words[1]}' add up to "
            "2\u00d72 + 1\u00d71.5 = 5.5.")


def note_rows(case: PatientCase) -> list[list[str]]:
    """Free-text notes of sessions and check-ins in the period (identified exports only)."""
    if case.deidentified:
        return []
    rows = []
    for kind, frame, column in (("session", _sessions_in_window(case), "session_at"), ("check-in", _checkins_in_window(case), "reported_at")):
        have = frame[frame["notes"].notna() & (frame["notes"].astype("string").str.strip() != "")]
        local = pd.to_datetime(have[column], utc=True).dt.tz_convert(case.tz)
        rows += [[local.iloc[i].strftime("%Y-%m-%d %H:%M"), kind, str(note)] for i, note in enumerate(have["notes"])]
    return sorted(rows)


def review_rows(case: PatientCase) -> list[list[str]]:
    """Alert reviews up to the end of the period, newest first."""
    reviews = case.reviews
    if reviews.empty:
        return []
    reviews = reviews.copy()
    reviews["date"] = local_day(reviews["reviewed_at"], case.tz)
    reviews = case.in_window(reviews).sort_values("reviewed_at", ascending=False, kind="stable")
    local = pd.to_datetime(reviews["reviewed_at"], utc=True).dt.tz_convert(case.tz)
    rows = []
    for i, r in enumerate(reviews.itertuples(index=False)):
        note = "" if case.deidentified else _text(r.note)
        level = "-" if is_safety_follow_up(r.reasons) else r.level  # a follow-up reviews no level
        rows.append([local.iloc[i].strftime("%Y-%m-%d %H:%M"), _text(staff_label(r.reviewed_by, case.staff)), level,
                     _reviewed_reasons(r.reasons), _words(r.action), note])
    return rows


def _reviewed_reasons(reasons) -> str:
    """A review's acknowledged reasons in a few words, one per line (the column is narrow), or what a question 9
    follow-up is: the rule ids it stores were unreadable in a clinician's case-review reading."""
    if is_safety_follow_up(reasons):
        return reviewed_reasons_text(reasons)
    return "\n".join(rule_title(rule_id) for rule_id in str(reasons or "").split(";") if rule_id)


def safety_lines(case: PatientCase) -> list[str]:
    """Each PHQ-9 question 9 answer above 'not at all' in the period, with its date and its follow-up, newest first."""
    if case.safety is None or case.safety.empty:
        return []
    local = pd.to_datetime(case.safety["reported_at"], utc=True).dt.tz_convert(case.tz)
    return [f"{local.iloc[i]:%Y-%m-%d %H:%M}: {r.line}\n    Follow-up: "
            f"{follow_up_text(r._replace(followed_up_by=staff_label(r.followed_up_by, case.staff)), case.tz)}"
            for i, r in enumerate(case.safety.itertuples(index=False))]


def _safety_box(pdf: ReviewPDF, case: PatientCase) -> None:
    """On page 1, before anything else: the answer that needs a clinician the same day is not left to the notes."""
    lines = safety_lines(case)
    if lines:
        pdf.warning_box(f"{QUESTION_9} answered above 'not at all' in this period:", lines)


def patient_pdf(case: PatientCase) -> bytes:
    """The case-review PDF of one patient as bytes."""
    made = "" if case.generated_at is None else f" {local_time_text(case.generated_at, case.tz)}"  # None: de-identified
    generated = f"Generated{made} by {case.generated_by}"
    pdf = ReviewPDF(title="Case review", subject=case.label, generated=generated, deidentified=case.deidentified,
                    made_at=case.generated_at)
    pdf.add_page()
    pdf.set_font("DejaVu", "B", 15)
    pdf.multi_cell(pdf.usable_width, 7, f"Case review: {case.label}", new_x="LMARGIN", new_y="NEXT")
    pdf.paragraph(f"{window_text(case)}. {generated}.", size=8.5)
    if case.deidentified:
        pdf.paragraph(
            "De-identified: the patient is shown by a pseudonym, every date is shifted by the same number of days "
            "(intervals are kept), the year of birth is an age band, and free-text notes and staff names are removed.",
            size=7.5, style="I", height=3.6,
        )
    _safety_box(pdf, case)
    pdf.heading("Patient and plan")
    pdf.key_values(patient_facts(case))
    _level_section(pdf, case)

    pdf.heading("Trends", keep=70)
    for figure in _figures(case):
        pdf.figure(figure.title, figure.png, figure.caption)

    pdf.heading("Side effects")
    pdf.data_table(["Side effect", "Mild", "Moderate", "Severe", "Sessions"], side_effect_rows(case), [86, 25, 25, 25, 25],
                   size=7.5, align=["LEFT", "RIGHT", "RIGHT", "RIGHT", "RIGHT"])

    pdf.heading("Sessions")
    rows = session_rows(case)
    widths = [25, 14, 10, 11, 10, 12, 15, 15, 13, 13, 11, 13, 24]  # 'intranasal' and 'sublingual' fit unbroken
    pdf.data_table(
        ["Date and time", "Route", "Dose mg", "mg/kg", "Days since last", "Weight (kg)", "BP before", "BP after", "HR b/a",
         "SpO2 b/a", "CADSS", "Asked for", "Side effects"],
        rows, widths, size=6.5,
    )
    if any(row[3] and not row[5] for row in rows):  # mg/kg beside no weight: say whose weight it is, as the page does
        pdf.paragraph("A session with no weight of its own: its mg/kg uses the last weight recorded before it, as the "
                      "charts and the rules do.", size=7, style="I", height=3.4)
    if case.amended_ids("session"):
        pdf.paragraph(AMENDED_NOTE_DEIDENTIFIED if case.deidentified else AMENDED_NOTE, size=7, style="I", height=3.4)
    pdf.heading("Check-ins")
    pdf.data_table(["Date", "Craving", "SDS", "Sign burden (answer \u00d7 weight, added)",
                    "Warning signs answered above 'not at all', by answer (score), each \u00d7 its catalogue weight",
                    "PHQ-9"], checkin_rows(case), [19, 13, 10, 19, 109, 16], size=6.8)
    pdf.paragraph(sign_burden_note(), size=7, style="I", height=3.4)
    if case.amended_ids("check-in"):
        pdf.paragraph(AMENDED_NOTE_DEIDENTIFIED if case.deidentified else AMENDED_NOTE, size=7, style="I", height=3.4)
    pdf.heading("Corrections")
    pdf.paragraph("Records of this period amended or voided after they were first recorded (what was corrected since "
                  "then, and when, by whom and why it was last amended, and voided: a record amended and then voided "
                  "has a row for each; every earlier version is kept in KetaWatch). Voided records are left out of "
                  "the tables, charts and level above.", size=7.5, style="I", height=3.6)
    change_width = 16 if case.deidentified else 50  # an amendment names the fields it corrected, before and after
    pdf.data_table(["Record", "Dated", "Change", "When", "By", "Reason"], correction_rows(case),
                   [16, 26, change_width, 26, 28, pdf.usable_width - 96 - change_width], size=7)
    if not case.deidentified:
        pdf.heading("Notes")
        pdf.data_table(["Date and time", "Record", "Note"], note_rows(case), [26, 16, pdf.usable_width - 42], size=7)
    pdf.heading("Alert reviews")
    pdf.data_table(["Reviewed", "By", "Level", "Reasons acknowledged", "Action", "Note"], review_rows(case),
                   [24, 24, 13, 50, 32, pdf.usable_width - 143], size=7)
    pdf.sign_off([
        "Check each reason against the records above before acting. " + DISCLAIMER,
    ])
    return pdf.finish()
