"""Every rule of CONTRACT section 2 rejects a wrong value with its message, and an import with it writes nothing."""

from __future__ import annotations

import datetime as dt
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from store.importer import ImportRejected, import_folder
from store.queries import audit_frame
from store.validation import PATIENT_RULES, SESSION_RULES, Validator, phq9_items_problems
from tests.conftest import NOW, TZ
from tests.store_support import CHECKIN, PATIENT, SESSION, counts, write_folder

# (file, column, bad value, words the message must contain)
CASES = [
    ("patients", "patient_id", "", "Patient ID is required"),
    ("patients", "patient_id", "X" * 65, "at most 64"),
    ("patients", "patient_id", "=HYPERLINK(1)", "must not begin with =, +, -, @"),
    ("patients", "display_name", "N" * 201, "Name: 201 characters, but at most 200 are allowed"),
    ("patients", "clinician", "c" * 65, "Responsible clinician: 65 characters, but at most 64 are allowed"),
    ("patients", "birth_year", "1899", "Year of birth, 1899, is outside 1900-2026"),
    ("patients", "birth_year", "2027", "Year of birth, 2027, is outside 1900-2026"),
    ("patients", "birth_year", "nineteen", "Year of birth, 'nineteen', is not a number"),
    ("patients", "sex", "f", "Sex, 'f', is not one of: female, male, other, unknown"),
    ("patients", "indication", "", "Indication is required"),
    ("patients", "indication", "migraine", "Indication, 'migraine', is not one of"),
    ("patients", "sud_history", "", "History of substance use disorder is required"),
    ("patients", "sud_history", "maybe", "must be yes or no"),
    ("patients", "treatment_start", "05/01/2026", "is not a date in the form YYYY-MM-DD"),
    ("patients", "treatment_start", "2026-02-30", "is not a real calendar date"),
    ("patients", "treatment_start", "2027-01-01", "Treatment start, 2027-01-01, is in the future"),
    ("patients", "planned_dose_mg_per_kg", "0.01", "Planned dose, 0.01, is outside 0.05-5 mg/kg"),
    ("patients", "planned_dose_mg_per_kg", "6", "is outside 0.05-5 mg/kg"),
    ("patients", "planned_interval_days", "0", "is outside 1-180 days"),
    ("patients", "planned_interval_days", "181", "is outside 1-180 days"),
    ("patients", "planned_interval_days", "7.5", "must be a whole number"),
    ("sessions", "session_at", "", "Session date and time is required"),
    ("sessions", "session_at", "2026-01-05", "needs a time as well as a date"),
    ("sessions", "session_at", "yesterday", "is not a date and time in the form"),
    ("sessions", "session_at", "2026-12-01T10:00", "is in the future"),
    ("sessions", "route", "nasal", "Route, 'nasal', is not one of: iv, im, intranasal, oral, sublingual"),
    ("sessions", "route", "", "Route is required"),
    ("sessions", "dose_mg", "", "Dose is required"),
    ("sessions", "dose_mg", "0", "Dose, 0, must be more than 0 mg and at most 1000 mg"),
    ("sessions", "dose_mg", "1001", "Dose, 1001, must be more than 0 mg and at most 1000 mg"),
    ("sessions", "dose_mg", "35mg", "Dose, '35mg', is not a number"),
    ("sessions", "weight_kg", "19", "Weight, 19, is outside 20-350 kg"),
    ("sessions", "weight_kg", "351", "Weight, 351, is outside 20-350 kg"),
    ("sessions", "duration_min", "0", "Duration, 0, is outside 1-1440 min"),
    ("sessions", "duration_min", "1441", "is outside 1-1440 min"),
    ("sessions", "early_request", "y", "must be yes or no"),
    ("sessions", "early_request", "true", "Patient asked for this session earlier than planned, 'true', must be yes or no"),
    ("sessions", "dose_increase_request", "1", "must be yes or no"),
    ("sessions", "sbp_pre", "400", "Systolic blood pressure before dosing, 400, is outside 40-300 mmHg"),
    ("sessions", "dbp_pre", "39", "Diastolic blood pressure before dosing, 39, is outside 40-300 mmHg"),
    ("sessions", "sbp_post", "301", "Systolic blood pressure after dosing, 301, is outside 40-300 mmHg"),
    ("sessions", "dbp_post", "30", "is outside 40-300 mmHg"),
    ("sessions", "dbp_pre", "120", "Diastolic blood pressure before dosing, 120, must be below the systolic, 120"),
    ("sessions", "dbp_post", "140", "Diastolic blood pressure after dosing, 140, must be below the systolic, 138; were "
     "the two swapped?"),
    ("sessions", "hr_pre", "19", "Heart rate before dosing, 19, is outside 20-250 /min"),
    ("sessions", "hr_post", "251", "Heart rate after dosing, 251, is outside 20-250 /min"),
    ("sessions", "spo2_pre", "49", "Oxygen saturation before dosing, 49, is outside 50-100%"),
    ("sessions", "spo2_post", "101", "Oxygen saturation after dosing, 101, is outside 50-100%"),
    ("sessions", "dissociation_cadss", "93", "Dissociation (CADSS total), 93, is outside 0-92"),
    ("sessions", "dissociation_cadss", "-1", "is outside 0-92"),
    ("sessions", "side_effects", "itching:mild", "'itching' is not in the side-effect catalogue"),
    ("sessions", "side_effects", "nausea:awful", "the severity of nausea, 'awful', must be mild, moderate or severe"),
    ("sessions", "side_effects", "nausea", "needs a severity"),
    ("sessions", "side_effects", "nausea:", "choose how severe the nausea was: mild, moderate or severe"),
    ("sessions", "side_effects", "nausea:mild;nausea:severe", "Nausea is listed twice; keep one severity"),
    # every wrong item of one cell, not only the first, and the catalogue once
    ("sessions", "side_effects", "itching:mild;nausea:awful;headache",
     "Side effects: 'itching' is not in the side-effect catalogue (the catalogue: "),
    ("sessions", "side_effects", "itching:mild;nausea:awful;headache",
     "; the severity of nausea, 'awful', must be mild, moderate or severe; 'headache' needs a severity, written "
     "effect:severity (for example nausea:mild)"),
    ("sessions", "notes", "n" * 5001, "Notes: 5001 characters, but at most 5000 are allowed"),
    ("sessions", "patient_id", "KW-NOBODY", "patient KW-NOBODY is not in patients.csv or the database"),
    ("checkins", "reported_at", "", "Check-in date is required"),
    ("checkins", "reported_at", "2026-11-23", "is in the future"),
    ("checkins", "reported_at", "12 Jan", "is not a date and time in the form YYYY-MM-DD or YYYY-MM-DDTHH:MM"),
    ("checkins", "craving", "", "Craving is required"),
    ("checkins", "craving", "11", "Craving, 11, is outside 0-10"),
    ("checkins", "craving", "2.5", "Craving, 2.5, must be a whole number"),
    ("checkins", "sds_3", "4", "Severity of Dependence Scale item 3, 4, is outside 0-3"),
    ("checkins", "sds_5", "", "give all five items or none (item 5 missing)"),
    ("checkins", "tolerance", "4", "Warning sign 'Tolerance: needing more for the same effect', 4, is outside 0-3"),
    ("checkins", "non_prescribed_use", "-1", "is outside 0-3"),
    ("checkins", "secrecy", "often", "is not a number"),
    ("checkins", "phq9", "28", "PHQ-9 total, 28, is outside 0-27"),
    ("checkins", "notes", "n" * 5001, "Notes: 5001 characters, but at most 5000 are allowed"),
    # PostgreSQL cannot store a NUL (the import failed there with a driver error and no line number)
    ("patients", "display_name", "Ann\x00e", "holds a control character (U+0000)"),
    ("checkins", "notes", "ok\x1bthen", "holds a control character (U+001B)"),
    # invisible direction overrides reorder an id or a name on screen and in PDFs ("Trojan Source")
    ("patients", "patient_id", "KW-\u202e2100", "holds a hidden text-direction character (U+202E)"),
    ("patients", "display_name", "Ann \u2067Lee", "holds a hidden text-direction character (U+2067)"),
    # a name is one line: a line break made extra, official-looking lines under the heading and in the PDF (security)
    ("patients", "display_name", "Ann Lee\n# Allergies: none", "Name is one line: remove the line break or tab"),
    ("patients", "display_name", "Ann Lee\u2028Ward 3", "Name is one line: remove the line break or tab"),
    ("sessions", "notes", "dose \u202d35", "holds a hidden text-direction character (U+202D)"),
]


def test_the_marks_that_writers_of_arabic_or_hebrew_type_are_kept(validator):
    note = "\u05d4\u05e2\u05e8\u05d4 \u200f35 mg\u200e ok"  # right-to-left and left-to-right marks
    clean, problems = validator.checkin(dict(CHECKIN, notes=note))
    assert problems == [] and clean["notes"] == note


@pytest.mark.parametrize(("kind", "column", "bad", "words"), CASES, ids=[f"{c[0]}.{c[1]}={c[2]!r}" for c in CASES])
def test_rule_rejects_with_message_and_writes_nothing(engine, tmp_path, monkeypatch, kind, column, bad, words):
    base = {"patients": dict(PATIENT), "sessions": dict(SESSION), "checkins": dict(CHECKIN)}
    base[kind][column] = bad
    folder = write_folder(tmp_path / "in", [base["patients"]], [base["sessions"]], [base["checkins"]])
    before = counts(engine)
    with pytest.raises(ImportRejected) as caught:
        import_folder(engine, folder, actor="test", validator=Validator(now=NOW, tz=TZ))
    problems = caught.value.problems
    assert any(p.startswith(f"{kind}.csv:2: {column}: ") and words in p for p in problems), problems
    after = counts(engine)
    assert {k: v for k, v in after.items() if k != "AuditEvent"} == {k: v for k, v in before.items() if k != "AuditEvent"}
    # The one line written is the refusal's own audit line, with no word of the rows
    assert after["AuditEvent"] == before["AuditEvent"] + 1
    refused = audit_frame(engine, action="import_refused")
    assert len(refused) == 1 and refused.iloc[0]["detail"]["problems"] == len(problems)


def test_valid_rows_pass(validator):
    for method, row in ((validator.patient, PATIENT), (validator.session, SESSION), (validator.checkin, CHECKIN)):
        clean, problems = method(row)
        assert problems == [], problems
    clean, _ = validator.session(SESSION)
    assert clean["side_effects"] == [("nausea", "mild"), ("dizziness", "moderate")]
    assert clean["session_at"] == datetime(2026, 1, 5, 10, 0, tzinfo=timezone.utc)  # London is UTC in January


@pytest.mark.parametrize("kind, column, typed, kept", [
    ("patients", "indication", "Depression", "depression"),
    ("patients", "sex", " FEMALE ", "female"),
    ("patients", "sud_history", "YES", True),
    ("sessions", "route", "IV", "iv"),
    ("sessions", "side_effects", "Nausea:Mild; dizziness:MODERATE", [("nausea", "mild"), ("dizziness", "moderate")]),
])
def test_a_word_from_a_list_is_taken_whatever_its_capitals(validator, kind, column, typed, kept):
    """The importer took "YES" for yes but refused "Depression" and "IV", as a spreadsheet capitalises them (IT
    review left-out): every listed word is now read the same way, and stored as the list writes it."""
    method, row = {"patients": (validator.patient, PATIENT), "sessions": (validator.session, SESSION)}[kind]
    clean, problems = method(dict(row, **{column: typed}))
    assert problems == [] and clean[column] == kept


def test_local_time_without_offset_is_clinic_time(validator):
    summer = dict(SESSION, session_at="2026-07-01T10:00")
    clean, problems = validator.session(summer)
    assert problems == []
    assert clean["session_at"] == datetime(2026, 7, 1, 9, 0, tzinfo=timezone.utc)  # BST is UTC+1
    explicit = dict(SESSION, session_at="2026-07-01T10:00+02:00")
    assert validator.session(explicit)[0]["session_at"] == datetime(2026, 7, 1, 8, 0, tzinfo=timezone.utc)


@given(st.integers(min_value=0, max_value=999_999))
def test_a_time_is_kept_to_the_second_as_the_import_format_writes_it(micro):
    """Patient mode saved the clock's fraction; the CSV export wrote whole seconds, and re-import made a second record."""
    validator = Validator(now=NOW, tz=TZ)
    at = datetime(2026, 3, 1, 9, 30, 15, micro, tzinfo=timezone.utc)
    clean, problems = validator.checkin(dict(CHECKIN, reported_at=at))
    assert problems == [] and clean["reported_at"] == at.replace(microsecond=0)
    written = clean["reported_at"].isoformat()
    assert validator.checkin(dict(CHECKIN, reported_at=written))[0]["reported_at"] == clean["reported_at"]


def test_form_values_are_accepted_typed(validator):
    """The dashboard forms pass Python values, not text; the same rules apply."""
    clean, problems = validator.session(
        {
            "patient_id": "KW-T1",
            "session_at": datetime(2026, 3, 1, 9, 30),
            "route": "intranasal",
            "dose_mg": 56,
            "early_request": True,
            "side_effects": [("nausea", "mild")],
            "sbp_pre": 150,
            "dbp_pre": 150,
        }
    )
    assert [p.column for p in problems] == ["dbp_pre"]
    assert clean["early_request"] is True


def test_every_field_has_a_rule_with_a_label():
    for rules in (PATIENT_RULES, SESSION_RULES):
        for rule in rules.values():
            assert rule.label and rule.label[0].isupper()


@settings(max_examples=200, deadline=None)
@given(value=st.one_of(st.text(max_size=12), st.integers(-10_000, 10_000), st.floats(allow_nan=True)))
def test_any_value_gives_a_clean_value_or_a_message_never_an_exception(value):
    validator = Validator(now=NOW, tz=TZ)
    for column in ("dose_mg", "sbp_pre", "session_at", "route", "early_request", "side_effects"):
        clean, problems = validator.session(dict(SESSION, **{column: value}))
        assert all(p.message for p in problems)
        text = value.replace(";", "") if isinstance(value, str) and column == "side_effects" else value
        blank = value != value or (isinstance(text, str) and not text.strip())
        if not problems and not blank:
            assert clean[column] not in (None, [])  # a value that passed is kept, never silently dropped
        if blank and not (isinstance(value, str) and value.strip()):
            assert clean[column] in (None, [])  # an empty cell means "not recorded"


# ----- the session form's double check: allowed, but confirm first ---------------------------------

_SESSION = {"patient_id": "P1", "session_at": "2026-10-01T10:00", "route": "iv", "dose_mg": 35, "weight_kg": 70}


@pytest.mark.parametrize(("changes", "start", "planned", "expected"), [
    ({}, dt.date(2026, 1, 1), 0.5, []),  # 0.5 mg/kg, as planned
    ({"dose_mg": 52.5}, dt.date(2026, 1, 1), 0.5, []),  # planned titration to 0.75 mg/kg
    ({"dose_mg": 500, "weight_kg": 50}, None, None, ["Dose: 500 mg for 50 kg is 10.00 mg/kg, more than 2 mg/kg in one session"]),
    ({"dose_mg": 84}, None, 0.5, ["Dose: 84 mg for 70 kg is 1.20 mg/kg, 2.4 times the planned 0.50 mg/kg"]),
    # more than 1 mg/kg in a short session, or one of unrecorded length; a 4-hour pain infusion may give more
    ({"dose_mg": 84}, None, None, ["Dose: 84 mg for 70 kg is 1.20 mg/kg with no duration recorded, more than 1 mg/kg in "
                                   "a session of 60 minutes or less (a longer infusion, such as one for pain, may give "
                                   "more)"]),
    ({"dose_mg": 84, "duration_min": 40}, None, None, ["Dose: 84 mg for 70 kg is 1.20 mg/kg over 40 minutes, more than "
                                                       "1 mg/kg in a session of 60 minutes or less (a longer infusion, "
                                                       "such as one for pain, may give more)"]),
    ({"dose_mg": 98, "duration_min": 240}, None, None, []),  # 1.4 mg/kg: 0.35 mg/kg/h over 4 hours
    ({"dose_mg": 70, "duration_min": 40}, None, None, []),  # 1.0 mg/kg: the edge, not asked about
    ({"dose_mg": 140, "weight_kg": None}, None, 0.5, []),  # no weight: mg/kg cannot be judged, only plain mg
    ({"dose_mg": 500, "weight_kg": None}, None, 0.5,
     ["Dose: 500 mg by the IV route, with no weight recorded, is more than 150 mg in one session"]),
    ({"route": "intranasal", "dose_mg": 84}, None, None, []),
    ({"route": "intranasal", "dose_mg": 112}, None, None, ["Dose: 112 mg by the intranasal route is more than 84 mg in one session"]),
    # too little: the mg/kg figure typed as the dose was saved without a question (clinician's browser review)
    ({"dose_mg": 0.5, "weight_kg": 50.9}, None, 0.5, ["Dose: 0.5 mg for 50.9 kg is 0.01 mg/kg, less than 0.1 mg/kg, the "
                                                      "lowest dose studied for depression; the dose is in mg, not mg/kg"]),
    ({"dose_mg": 7}, None, None, []),  # 0.1 mg/kg: the edge, not asked about
    ({"dose_mg": 14}, None, 0.5, ["Dose: 14 mg for 70 kg is 0.20 mg/kg, less than 50% of the planned 0.50 mg/kg"]),
    ({"dose_mg": 17.5}, None, 0.5, []),  # 0.25 mg/kg: half the plan, not asked about
    ({"dose_mg": 1.5, "weight_kg": None}, None, 0.5, ["Dose: 1.5 mg by the IV route, with no weight recorded, is less "
                                                      "than 2 mg (0.1 mg/kg even at 20 kg); the dose is in mg, not mg/kg"]),
    ({"route": "intranasal", "dose_mg": 5}, None, None, ["Dose: 5 mg by the intranasal route is less than 28 mg, the "
                                                         "smallest dose given"]),
    ({"route": "intranasal", "dose_mg": 28}, None, None, []),
    ({"route": "oral", "dose_mg": 5}, None, None, []),  # no floor for oral doses
    ({}, dt.date(2026, 10, 2), 0.5, ["Session date and time: 2026-10-01 is before this patient's treatment start (2026-10-02)"]),
    ({"dose_mg": 0}, dt.date(2026, 10, 2), 0.5, []),  # not valid: its problems come first, nothing to confirm
    ({"hr_pre": 27}, None, 0.5, ["Heart rate before dosing: 27 /min is below 40 /min; check that it was typed as measured"]),
    ({"hr_pre": 40, "hr_post": 150, "sbp_post": 200, "dbp_post": 120, "spo2_pre": 90}, None, 0.5, []),  # the edges
    ({"sbp_post": 230, "dbp_post": 95, "spo2_post": 86}, None, 0.5, [
        "Systolic blood pressure after dosing: 230 mmHg is above 200 mmHg; check that it was typed as measured",
        "Oxygen saturation after dosing: 86% is below 90%; check that it was typed as measured"]),
    ({"sbp_pre": 75, "dbp_pre": 45}, None, 0.5,
     ["Systolic blood pressure before dosing: 75 mmHg is below 80 mmHg; check that it was typed as measured"]),
    ({"sbp_pre": 190, "dbp_pre": 130}, None, 0.5,
     ["Diastolic blood pressure before dosing: 130 mmHg is above 120 mmHg; check that it was typed as measured"]),
])
def test_unusual_but_valid_sessions_are_named_for_the_form_to_confirm(changes, start, planned, expected):
    unusual = Validator(now=NOW, tz=TZ).unusual_session(_SESSION | changes, treatment_start=start, planned_mg_per_kg=planned)
    assert [p.message for p in unusual] == expected


@settings(max_examples=60, deadline=None)
@given(days_before=st.integers(min_value=-400, max_value=400), hour=st.integers(min_value=0, max_value=23))
def test_a_check_in_long_before_the_treatment_start_is_asked_about_and_one_in_the_weeks_before_is_not(days_before, hour):
    """A screening check-in in the weeks before the first session is usual; one months before is most often a slip in
    the month, and would become the patient's baseline (clinician's browser pass). Asked iff more than the set days."""
    from seed_data.catalogue import dose_checks

    start = dt.date(2026, 7, 20)
    given_at = dt.datetime.combine(start - dt.timedelta(days=days_before), dt.time(hour), tzinfo=ZoneInfo(TZ))
    raw = {"patient_id": "P1", "reported_at": given_at.isoformat(), "craving": 3}
    unusual = Validator(now=dt.datetime(2027, 12, 1, tzinfo=timezone.utc), tz=TZ).unusual_checkin(raw, treatment_start=start)
    limit = dose_checks().checkin_days_before_start
    if days_before > limit:
        assert [p.message for p in unusual] == [
            f"Check-in date and time: {given_at.date().isoformat()} is {days_before} days before this patient's "
            "treatment start (2026-07-20); it would count in the patient's baseline"]
    else:
        assert unusual == []
    assert Validator(now=NOW, tz=TZ).unusual_checkin(raw, treatment_start=None) == []
    assert Validator(now=NOW, tz=TZ).unusual_checkin({**raw, "craving": 11}, treatment_start=start) == []  # refused first


def _at(day: int, hour: int = 10) -> dt.datetime:
    return dt.datetime(2026, 10, day, hour, 0, tzinfo=ZoneInfo(TZ))


@pytest.mark.parametrize(("changes", "others", "expected"), [
    ({}, [(_at(1, 8), 70.0)], ["Session date and time: this patient already has a session within 24 hours, at "
                                "2026-10-01 08:00; check that this is not the same session entered twice, and that a "
                                "second dose so soon was meant"]),
    ({}, [(_at(1, 23), 70.0), (_at(1, 8), None)],
     ["Session date and time: this patient already has a session within 24 hours, at 2026-10-01 08:00 and "
      "2026-10-01 23:00; check that this is not the same session entered twice, and that a second dose so soon was "
      "meant"]),
    # across midnight: 14:05 the day before and 00:30 are 10.5 hours apart (the calendar day missed it)
    ({"session_at": "2026-10-02T00:30"}, [(_at(1, 14) + dt.timedelta(minutes=5), 70.0)], [
        "Session date and time: this patient already has a session within 24 hours, at 2026-10-01 14:05; check that "
        "this is not the same session entered twice, and that a second dose so soon was meant"]),
    ({}, [(_at(2, 10), 70.0), (_at(1, 10) - dt.timedelta(days=1), 70.0)], []),  # 24 hours either side: a schedule
    ({}, [(_at(1, 8) - dt.timedelta(days=1), 70.0)], []),  # 26 hours before: a normal schedule
    # a daily 10:00 course across the spring-forward night (23 hours of real time): the clinic's clock says a day
    ({"session_at": "2026-03-30T10:00"}, [(dt.datetime(2026, 3, 29, 10, 0, tzinfo=ZoneInfo(TZ)), 70.0)], []),
    # and across the autumn night (25 hours), 09:30 the next day is still within 24 hours on the clock
    ({"session_at": "2026-10-26T09:30"}, [(dt.datetime(2026, 10, 25, 10, 0, tzinfo=ZoneInfo(TZ)), 70.0)], [
        "Session date and time: this patient already has a session within 24 hours, at 2026-10-25 10:00; check that "
        "this is not the same session entered twice, and that a second dose so soon was meant"]),
    ({"weight_kg": 75}, [(_at(1) - dt.timedelta(days=7), 70.0)], []),  # within a fifth of the last weight
    ({"weight_kg": 180, "dose_mg": 90}, [(_at(1) - dt.timedelta(days=7), 60.0), (_at(1) - dt.timedelta(days=14), 180.0)],
     ["Weight: 180 kg is 200% more than the 60 kg recorded on 2026-09-24"]),  # the nearest earlier weight counts
    ({"weight_kg": 154, "dose_mg": 35}, [(_at(1) - dt.timedelta(days=7), 70.0)],
     ["Weight: 154 kg is 120% more than the 70 kg recorded on 2026-09-24; "
      "if it was weighed in pounds, 154 lb is 69.9 kg"]),
    ({"weight_kg": 50}, [(_at(1) + dt.timedelta(days=7), 70.0), (_at(1) - dt.timedelta(days=7), None)],
     ["Weight: 50 kg is 29% less than the 70 kg recorded on 2026-10-08"]),  # only a later weight: compared with it
    ({"weight_kg": None}, [(_at(1) - dt.timedelta(days=7), 70.0)], []),  # no weight today: nothing to compare
])
def test_a_second_session_within_24_hours_or_a_far_different_weight_is_named_for_the_form_to_confirm(changes, others, expected):
    unusual = Validator(now=NOW, tz=TZ).unusual_session(_SESSION | changes, treatment_start=None, planned_mg_per_kg=0.5,
                                                        other_sessions=others)
    assert [p.message for p in unusual] == expected


def test_the_dose_double_check_names_only_fixed_dose_routes(monkeypatch):
    from seed_data import catalogue

    catalogue.dose_checks.cache_clear()
    monkeypatch.setattr(catalogue, "_load_toml", lambda name: {"double_check": {
        "weight_based_max_mg_per_kg": 2, "weight_based_max_mg_without_weight": 150, "above_plan_factor": 2, "fixed_route_max_mg": {"iv": 100},
        "weight_change_fraction": 0.2, "vitals": {}}})
    with pytest.raises(ValueError, match="fixed_route_max_mg names iv; only fixed-dose routes"):
        catalogue.dose_checks()
    catalogue.dose_checks.cache_clear()


@pytest.mark.parametrize("vitals", [{"hr": [40, 150]}, {"hr_pre": [150, 40]}])
def test_the_vital_signs_double_check_names_only_vital_sign_columns_each_low_to_high(monkeypatch, vitals):
    from seed_data import catalogue

    catalogue.dose_checks.cache_clear()
    monkeypatch.setattr(catalogue, "_load_toml", lambda name: {"double_check": {
        "weight_based_max_mg_per_kg": 2, "weight_based_max_mg_without_weight": 150, "above_plan_factor": 2,
        "fixed_route_max_mg": {}, "weight_change_fraction": 0.2, "vitals": vitals}})
    with pytest.raises(ValueError, match="vitals has hr"):
        catalogue.dose_checks()
    catalogue.dose_checks.cache_clear()


def test_a_warning_sign_is_named_in_messages_as_the_catalogue_and_the_pages_name_it():
    """One name per sign: the importer's messages used a second list of names, most of them different."""
    from seed_data.catalogue import warning_sign
    from store.validation import CHECKIN_RULES
    from store.vocabulary import WARNING_SIGNS

    for sign in WARNING_SIGNS:
        assert CHECKIN_RULES[sign].label == f"Warning sign '{warning_sign(sign).label}'"


# ----- the check-in form's PHQ-9, item by item -------------------------------------------------

_Q9 = [False] * 8 + [True]


@given(st.lists(st.one_of(st.none(), st.integers(0, 3)), min_size=9, max_size=9))
def test_a_phq9_by_item_is_refused_only_when_answered_in_part_beyond_question_9_alone(answers):
    problems = phq9_items_problems(answers, _Q9)
    answered = sum(a is not None for a in answers)
    whole_or_none = answered in (0, 9)
    question_9_alone = all(a is None for a in answers[:8])
    assert bool(problems) == (not whole_or_none and not question_9_alone)
    if problems:
        # the questions left out are named, as the SDS names its items (clinician review: "8 of 9 answered" alone)
        missing = [str(i + 1) for i, a in enumerate(answers) if a is None]
        noun = "question" if len(missing) == 1 else "questions"
        assert problems[0].message.startswith(f"PHQ-9: answer all nine questions or none ({answered} of 9 answered; "
                                              f"{noun} {', '.join(missing)} not answered)")
        assert ("leave questions 1 to 8 empty" in problems[0].message) == (answers[8] is not None)


@pytest.mark.parametrize(("q9", "total", "refused"), [
    (None, None, False), (2, None, False), (None, 1, False), (2, 2, False), (3, 2, True), (0, 0, False),
])
def test_a_paper_phq9_total_may_not_be_below_its_own_question_9(q9, total, refused):
    problems = phq9_items_problems([None] * 8 + [q9], _Q9, paper=True, paper_total=total)
    assert bool(problems) == refused
    if refused:
        assert problems[0].message == (f"PHQ-9 total, {total}, is less than the question 9 answer alone ({q9}); "
                                       "check both on the paper form")


@pytest.mark.parametrize(("changed", "asked"), [
    (None, ["dose_mg", "hr_pre"]),  # a new session: everything unusual is asked about
    ({"notes"}, []),  # an amendment of the notes asks about nothing already stored
    ({"weight_kg"}, ["dose_mg"]),  # a new weight changes the mg/kg
    ({"route"}, ["dose_mg"]),
    ({"hr_pre"}, ["hr_pre"]),
])
def test_an_amendment_is_asked_about_only_what_rests_on_the_fields_it_changed(changed, asked):
    unusual = Validator(now=NOW, tz=TZ).unusual_session(_SESSION | {"dose_mg": 500, "weight_kg": 50, "hr_pre": 27},
                                                        treatment_start=None, planned_mg_per_kg=None, changed=changed)
    assert [p.column for p in unusual] == asked


@pytest.mark.parametrize("zone, skipped, kept", [
    ("Europe/London", "2026-03-29T01:30", "2026-03-29T02:30"),
    ("America/New_York", "2026-03-08T02:15", "2026-03-08T03:15"),
])
def test_a_clock_time_the_clocks_skipped_is_refused_in_words_not_moved_an_hour(zone, skipped, kept):
    """zoneinfo reads 01:30 on the night London's clocks go forward as 02:30 BST without a word: a session would be
    stored an hour from when it was typed. A time in the repeated hour (autumn) is taken as its first occurrence."""
    from store.validation import SESSION_RULES

    v = Validator(now=datetime(2026, 11, 1, tzinfo=timezone.utc), tz=zone)
    value, problem = v.field(SESSION_RULES["session_at"], skipped)
    assert value is None and problem == (
        f"Session date and time, {skipped.replace('T', ' ')}, does not exist in {zone}: the clocks went forward that "
        "night. Give the time as the clock showed it, or with its UTC offset (for example +01:00)")
    assert v.field(SESSION_RULES["session_at"], kept)[1] is None
    assert v.field(SESSION_RULES["session_at"], skipped + "+00:00")[1] is None  # with its offset, it is a moment
    assert v.field(SESSION_RULES["session_at"], datetime.fromisoformat(skipped))[1] == problem  # a naive value too
    # and as the forms give it, with the clinic's zone attached (saved as an hour later without a word; code review)
    assert v.field(SESSION_RULES["session_at"], datetime.fromisoformat(skipped).replace(tzinfo=ZoneInfo(zone)))[1] == problem
    assert v.field(SESSION_RULES["session_at"], datetime.fromisoformat(kept).replace(tzinfo=ZoneInfo(zone)))[1] is None


@pytest.mark.parametrize("weight, hint", [
    (500, "; if it was weighed in pounds, 500 lb is 226.8 kg"),
    (351, "; if it was weighed in pounds, 351 lb is 159.2 kg"),
    (2000, ""),  # 907 kg: no weight in pounds either
])
def test_a_weight_above_the_range_that_is_one_in_pounds_says_so(weight, hint):
    """'Weight, 500, is outside 20-350 kg' offered no help, though the check on a change of weight does (clinician)."""
    _, problems = Validator().session({"patient_id": "KW-1", "session_at": "2026-01-05T09:00", "route": "iv",
                                       "dose_mg": 35, "weight_kg": weight})
    (problem,) = [p for p in problems if p.column == "weight_kg"]
    assert problem.message == f"Weight, {weight}, is outside 20-350 kg{hint}"


def test_a_typed_note_may_not_begin_a_line_with_the_question_9_mark():
    from store.validation import typed_notes_problems

    assert typed_notes_problems("Seen today.\n  [Safety] crisis plan reviewed")[0].column == "notes"
    assert typed_notes_problems("Safety: crisis plan reviewed; see [Safety] line") == []  # only a line's start marks
    assert typed_notes_problems(None) == [] and typed_notes_problems("") == []
