"""The FHIR R4B bundle: valid by fhir.resources, one resource per record, cited codes, references that resolve."""

from __future__ import annotations

import json
from collections import Counter

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from fhir.resources.R4B.bundle import Bundle

from ketawatch.exports import export_patient
from tests.test_export_support import CLINICIAN, NOW, REVIEWER, SECRET_NAME, SECRET_PID, load_sample


@pytest.fixture
def sample(sqlite_engine, tmp_path):
    load_sample(sqlite_engine, tmp_path)
    return sqlite_engine


def _bundle(engine, **options) -> dict:
    result = export_patient(engine, SECRET_PID, "fhir", actor=options.pop("actor", CLINICIAN), role=options.pop("role", "clinician"),
                            now=NOW, **options)
    (name, data), = result.files.items()
    assert name.endswith(".fhir.json")
    return json.loads(data)


def _codes(resource: dict) -> set[str]:
    return {c["code"] for c in resource.get("code", {}).get("coding", [])}


def test_bundle_is_valid_r4b_with_one_resource_per_record(sample):
    data = _bundle(sample)
    bundle = Bundle.model_validate(data)
    assert bundle.type == "collection"
    kinds = Counter(e["resource"]["resourceType"] for e in data["entry"])
    assert kinds["Patient"] == 1
    assert kinds["MedicationAdministration"] == 6
    assert kinds["AdverseEvent"] == 11  # five sessions with nausea and dizziness, one with severe nausea
    patient = data["entry"][0]["resource"]
    assert patient["identifier"][0]["value"] == SECRET_PID and patient["name"][0]["text"] == SECRET_NAME
    assert patient["birthDate"] == "1961" and patient["gender"] == "female"


def test_sessions_carry_drug_route_dose_and_period(sample):
    data = _bundle(sample)
    given = [e["resource"] for e in data["entry"] if e["resource"]["resourceType"] == "MedicationAdministration"]
    nasal = [g for g in given if g["dosage"]["route"]["coding"][0]["code"] == "46713006"]
    iv = [g for g in given if g["dosage"]["route"]["coding"][0]["code"] == "47625008"]
    assert len(nasal) == 1 and len(iv) == 5
    assert nasal[0]["medicationCodeableConcept"]["coding"][0] == {
        "system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "2201623", "display": "esketamine Nasal Spray"}
    assert nasal[0]["dosage"]["dose"] == {"value": 56.0, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"}
    assert "effectiveDateTime" in nasal[0]  # no duration recorded: a moment, not a period
    assert all("ketamine" in g["medicationCodeableConcept"]["text"] for g in iv)
    assert iv[0]["medicationCodeableConcept"]["coding"] == [
        {"system": "http://www.whocc.no/atc", "code": "N01AX03", "display": "ketamine"}]  # racemic: the ATC substance
    first = min(iv, key=lambda g: g["effectivePeriod"]["start"])
    assert first["effectivePeriod"] == {"start": "2025-03-03T10:00:00Z", "end": "2025-03-03T10:40:00Z"}
    assert first["dosage"]["dose"]["value"] == 35.0


def test_observations_use_loinc_for_vitals_and_phq9_and_local_codes_for_the_rest(sample):
    data = _bundle(sample)
    observations = [e["resource"] for e in data["entry"] if e["resource"]["resourceType"] == "Observation"]
    codes = Counter(code for o in observations for code in _codes(o))
    assert codes["85354-9"] == 12  # a blood pressure panel before and after dosing, six sessions
    panels = [o for o in observations if "85354-9" in _codes(o)]
    assert all([c["code"]["coding"][0]["code"] for c in o["component"]] == ["8480-6", "8462-4"] for o in panels)
    assert codes["8867-4"] == 12 and codes["59408-5"] == 12 and codes["2708-6"] == 12
    assert codes["29463-7"] == 5 and codes["44261-6"] == 5  # the intranasal session has no weight
    assert codes["craving"] == 5 and codes["sds-total"] == 5 and codes["checklist"] == 5
    checklist = next(o for o in observations if "checklist" in _codes(o))
    assert checklist["component"][0]["code"]["coding"][0]["system"].startswith("https://ketawatch.invalid/fhir/CodeSystem/")
    assert len(checklist["component"]) == 12
    sds = next(o for o in observations if "sds-total" in _codes(o))
    assert sds["component"][0]["code"]["text"] == (
        "Severity of Dependence Scale item 1: Did you feel that your use of ketamine was getting out of your control?")
    vital = panels[0]
    assert vital["category"][0]["coding"][0]["code"] == "vital-signs"
    assert vital["component"][0]["valueQuantity"]["unit"] == "mm[Hg]"


def test_after_dosing_vitals_are_never_dated_at_the_moment_before_dosing(sample):
    """Without a recorded duration the after-dose time is unknown: 'after the start', not the start itself."""
    data = _bundle(sample)
    observations = [e["resource"] for e in data["entry"] if e["resource"]["resourceType"] == "Observation"]
    heart = [o for o in observations if "8867-4" in _codes(o)]
    for session in {o["partOf"][0]["reference"] for o in heart}:
        pre = next(o for o in heart if o["partOf"][0]["reference"] == session and "before" in o["code"]["text"])
        post = next(o for o in heart if o["partOf"][0]["reference"] == session and "after" in o["code"]["text"])
        if "effectivePeriod" in post:  # no duration: a period that starts at the session
            assert post["effectivePeriod"] == {"start": pre["effectiveDateTime"]}
        else:
            assert post["effectiveDateTime"] > pre["effectiveDateTime"]
    assert any("effectivePeriod" in o for o in heart)  # the intranasal session has no duration


def test_every_reference_points_at_an_entry_of_the_bundle(sample):
    data = _bundle(sample)
    urls = {e["fullUrl"] for e in data["entry"]}
    text = json.dumps(data)
    references = {part.split('"')[0] for part in text.split('"reference": "')[1:]}
    assert references and references <= urls


def test_deidentified_bundle_is_valid_and_names_no_one(sample, monkeypatch):
    data = _bundle(sample, deidentify=True, actor=REVIEWER, role="reviewer")
    Bundle.model_validate(data)
    patient = data["entry"][0]["resource"]
    assert patient["identifier"][0]["system"].endswith("/sid/pseudonym")
    assert "name" not in patient and "birthDate" not in patient
    assert patient["extension"][0]["valueString"] == "60-69"
    assert not any("note" in e["resource"] for e in data["entry"])
    identified = _bundle(sample)
    assert len(data["entry"]) == len(identified["entry"])
    # labelled for the receiving system, as the PDF says it on every page; an identified bundle is not
    assert data["meta"]["security"] == [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
                                         "code": "PSEUDED", "display": "pseudonymized"}]
    assert "meta" not in identified


def test_amended_and_voided_records_are_said_in_every_export_never_passed_off_as_first_recorded(sample):
    """A corrected dose looked original, and a voided check-in vanished without a word (an EHR that loaded it kept it)."""
    import io as _io

    from openpyxl import load_workbook

    from ketawatch.exports import export_patient, export_records
    from store import records as R
    from store.queries import checkins_frame, sessions_frame
    from store.validation import Validator
    from tests.test_export_support import CLINICIAN, NOW, SECRET_PID, pdf_text

    sessions, checkins = sessions_frame(sample, [SECRET_PID]), checkins_frame(sample, [SECRET_PID])
    R.amend_session(sample, int(sessions["id"].iloc[1]), {"dose_mg": 40}, actor=CLINICIAN, reason="typed 38 for 40",
                    expected_version=1, validator=Validator(now=NOW))
    # amended again: the export gives every correction since it was first recorded, not only this last one, and
    # names a changed note without quoting it again (code review)
    R.amend_session(sample, int(sessions["id"].iloc[1]), {"notes": "Seen by Dr Rowe"}, actor=CLINICIAN,
                    reason="note added", expected_version=2, validator=Validator(now=NOW))
    voided_at = pd.Timestamp(checkins["reported_at"].iloc[2])
    R.void_checkin(sample, int(checkins["id"].iloc[2]), actor=CLINICIAN, reason="entered for the wrong patient",
                   expected_version=1)
    was = pd.Timestamp(checkins["reported_at"].iloc[1])
    R.amend_checkin(sample, int(checkins["id"].iloc[1]), {"reported_at": (was + pd.Timedelta(hours=2)).to_pydatetime()},
                    actor=CLINICIAN, reason="the time was typed wrong", expected_version=1, validator=Validator(now=NOW))
    local = [(was + pd.Timedelta(hours=h)).tz_convert("Europe/London").strftime("%Y-%m-%d %H:%M") for h in (0, 2)]

    pdf = " ".join(pdf_text(export_patient(sample, SECRET_PID, "pdf", actor=CLINICIAN, role="clinician",
                                           now=NOW).download()[1]).split())
    assert "* amended after it was first recorded: what changed, when and why are under Corrections" in pdf
    assert "session" in pdf and "note added" in pdf and "voided" in pdf and "entered for the wrong patient" in pdf
    before = sessions["dose_mg"].iloc[1]  # the footnote promised what changed; the table gave only "amended" (IG review)
    assert f"amended: Dose (mg): {float(before)} -> 40.0; Notes changed" in pdf, pdf

    book = load_workbook(_io.BytesIO(export_patient(sample, SECRET_PID, "xlsx", actor=CLINICIAN, role="clinician",
                                                    now=NOW).download()[1]))
    rows = list(book["corrections"].values)
    assert rows[0][:5] == ("patient_id", "record", "record_at", "change", "what_changed")
    assert [r[1:5:2] for r in rows[1:]] == [("session", "amended"), ("check-in", "amended"), ("check-in", "voided")]
    # a corrected time reads in clinic time, as on the page, not as the UTC the audit trail keeps
    assert [r[4] for r in rows[1:]] == [f"Dose (mg): {float(before)} -> 40.0; Notes changed",
                                        f"Check-in date: {local[0]} -> {local[1]}", None]
    # the whole-caseload workbook has the same sheet: it showed the corrected dose as first recorded (IG review)
    records_book = load_workbook(_io.BytesIO(export_records(sample, "xlsx", actor=CLINICIAN, role="clinician",
                                                            now=NOW).download()[1]))
    assert [r[1:] for r in records_book["corrections"].values] == [r[1:] for r in rows]
    assert {r[0] for r in list(records_book["corrections"].values)[1:]} == {SECRET_PID}
    hidden = load_workbook(_io.BytesIO(export_records(sample, "xlsx", actor=CLINICIAN, role="reviewer", deidentify=True,
                                                      now=NOW).download()[1]))
    hidden_rows = list(hidden["corrections"].values)[1:]
    assert [(r[1], r[3], r[4], r[7]) for r in hidden_rows] == [("session", "amended", None, None),
                                                                ("check-in", "amended", None, None),
                                                                ("check-in", "voided", None, None)]
    assert not [r for r in hidden_rows if SECRET_PID in str(r) or CLINICIAN in str(r)]

    bundle = json.loads(export_patient(sample, SECRET_PID, "fhir", actor=CLINICIAN, role="clinician",
                                       now=NOW).download()[1])
    observations = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation"]
    craving = [o for o in observations if o["code"]["coding"][0]["code"] == "craving"]
    gone = [o for o in craving if o["status"] == "entered-in-error"]
    assert len(gone) == 1 and pd.Timestamp(gone[0]["effectiveDateTime"]) == voided_at
    assert {o["status"] for o in observations} == {"final", "amended", "entered-in-error"}

    deidentified = " ".join(pdf_text(export_patient(sample, SECRET_PID, "pdf", actor=CLINICIAN, role="reviewer",
                                                    deidentify=True, now=NOW).download()[1]).split())
    assert "voided" in deidentified and "wrong patient" not in deidentified and CLINICIAN not in deidentified
    assert "when is under Corrections (what changed and why are left out of a de-identified copy)" in deidentified
    assert "Dose (mg):" not in deidentified


def test_a_record_amended_and_then_voided_keeps_its_amendment_in_every_export(sample):
    """The PDF showed only 'voided' for a session amended from 500 to 56.5 mg and then voided: the value and the
    amendment the meeting and auditors keep were gone (clinician's browser pass)."""
    import io as _io

    from openpyxl import load_workbook

    from ketawatch.exports import export_patient
    from store import records as R
    from store.queries import sessions_frame
    from store.validation import Validator
    from tests.test_export_support import CLINICIAN, NOW, SECRET_PID, pdf_text

    session = sessions_frame(sample, [SECRET_PID]).iloc[1]
    R.amend_session(sample, int(session["id"]), {"dose_mg": 56.5}, actor=CLINICIAN, reason="typing error in the dose",
                    expected_version=1, validator=Validator(now=NOW))
    R.void_session(sample, int(session["id"]), actor=CLINICIAN, reason="entered for the wrong day", expected_version=2)
    pdf = " ".join(pdf_text(export_patient(sample, SECRET_PID, "pdf", actor=CLINICIAN, role="clinician",
                                           now=NOW).download()[1]).split())
    assert f"amended: Dose (mg): {float(session['dose_mg'])} -> 56.5" in pdf and "typing error in the dose" in pdf
    assert "voided" in pdf and "entered for the wrong day" in pdf
    # and no live session is marked amended for it: the footnote under the sessions table is about the live ones
    from ketawatch.exports.casefile import Author, load_patient_case

    case = load_patient_case(sample, SECRET_PID, author=Author(CLINICIAN, None, "clinician"), now=NOW)
    assert int(session["id"]) not in case.amended_ids("session")
    book = load_workbook(_io.BytesIO(export_patient(sample, SECRET_PID, "xlsx", actor=CLINICIAN, role="clinician",
                                                    now=NOW).download()[1]))
    rows = [r for r in list(book["corrections"].values)[1:] if r[1] == "session"]
    assert [(r[3], r[4], r[7]) for r in rows] == [
        ("amended", f"Dose (mg): {float(session['dose_mg'])} -> 56.5", "typing error in the dose"),
        ("voided", None, "entered for the wrong day")]


def test_a_record_whose_time_is_amended_keeps_its_fhir_ids(sample):
    """Ids came from the record's time: a corrected time sent the session again under new ids, and the receiving
    system kept the first copy as a second administration."""
    from store import records as R
    from store.queries import sessions_frame
    from store.validation import Validator

    def ids(data) -> set[str]:
        return {e["resource"]["id"] for e in data["entry"]}

    before = _bundle(sample)
    session = sessions_frame(sample, [SECRET_PID]).iloc[1]
    moved = (pd.Timestamp(session["session_at"]) - pd.Timedelta(minutes=30)).isoformat()
    R.amend_session(sample, int(session["id"]), {"session_at": moved}, actor=CLINICIAN, reason="clock was wrong",
                    expected_version=1, validator=Validator(now=NOW))
    after = _bundle(sample)
    assert ids(after) - {after["id"]} == ids(before) - {before["id"]}
    given = {e["resource"]["id"]: e["resource"] for e in after["entry"]
             if e["resource"]["resourceType"] == "MedicationAdministration"}
    assert any(g["effectivePeriod"]["start"] == pd.Timestamp(moved).strftime("%Y-%m-%dT%H:%M:%SZ")
               for g in given.values() if "effectivePeriod" in g)
    # De-identified ids are other ids, keyed with the export secret: no row number can be read back from them.
    deidentified = _bundle(sample, deidentify=True, actor=REVIEWER, role="reviewer")
    assert not ids(deidentified) & ids(after)


def test_a_blood_pressure_with_one_reading_says_the_other_was_not_recorded(sample):
    from store import records as R
    from store.queries import sessions_frame
    from store.validation import Validator

    session = sessions_frame(sample, [SECRET_PID]).iloc[0]
    R.amend_session(sample, int(session["id"]), {"dbp_pre": None}, actor=CLINICIAN, reason="not measured",
                    expected_version=1, validator=Validator(now=NOW))
    data = _bundle(sample)
    panels = [e["resource"] for e in data["entry"] if "85354-9" in _codes(e["resource"])]
    lone = [p for p in panels if any("dataAbsentReason" in c for c in p["component"])]
    assert len(lone) == 1 and [c["code"]["coding"][0]["code"] for c in lone[0]["component"]] == ["8480-6", "8462-4"]
    assert lone[0]["component"][1]["dataAbsentReason"]["coding"][0]["code"] == "unknown"


def _rendered_kinds_and_characters(markdown: str) -> tuple[set[str], str]:
    """What a CommonMark renderer with GitHub's tables and strikethrough makes of `markdown`: its token kinds, and
    the characters it shows (whitespace aside)."""
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("commonmark").enable(["table", "strikethrough"]).parse(markdown)
    children = [c for t in tokens for c in t.children or []]
    shown = "".join(c.content for c in children if c.type == "text")
    return {t.type for t in tokens} | {c.type for c in children}, "".join(shown.split())


@settings(max_examples=400, deadline=None)
@given(text=st.lists(st.sampled_from(list("ab1 \t\n\r=-*_#>+.)(`~<&|[]:!\\\u00a0;") +
                                     ["    ", "1. ", "2) ", "&amp;", "&#38;", "<b>", "[x](http://e.com)", "---", "|-|"]),
                     min_size=1, max_size=30).map("".join))
def test_a_note_in_fhir_markdown_renders_as_the_characters_typed_and_nothing_else(text):
    """Annotation.text is markdown: a note's "**x**", "1. ", "<b>" or "&amp;" must show as typed (security review),
    as plain paragraphs; what markdown would leave alone goes out unchanged, so the text reads the same unrendered."""
    from ketawatch.exports.fhir_markdown import fhir_markdown

    kinds, shown = _rendered_kinds_and_characters(fhir_markdown(text))
    assert kinds <= {"paragraph_open", "paragraph_close", "inline", "text", "softbreak", "hardbreak"}, (text, kinds)
    assert shown == "".join(text.split()), (text, shown)


@pytest.mark.parametrize("plain", ["Dose raised to 0.6 mg/kg after patient request.", "12.5 mg given; BP 150/95 - rechecked",
                                   "Craving 3/10 (was 1), discussed: plan unchanged"])
def test_a_plain_note_goes_out_in_fhir_unchanged(plain):
    from ketawatch.exports.fhir_markdown import fhir_markdown

    assert fhir_markdown(plain) == plain


def test_a_session_note_with_markdown_reaches_the_bundle_escaped(sample):
    from store import records as R
    from store.queries import sessions_frame
    from store.validation import Validator

    session = sessions_frame(sample, [SECRET_PID]).iloc[0]
    typed = "**Stop** ketamine\n1. see [results](http://e.com) <b>now</b>"
    R.amend_session(sample, int(session["id"]), {"notes": typed}, actor=CLINICIAN, reason="note added",
                    expected_version=1, validator=Validator(now=NOW))
    data = _bundle(sample)
    Bundle.model_validate(data)
    notes = [n["text"] for e in data["entry"] if e["resource"]["resourceType"] == "MedicationAdministration"
             for n in e["resource"].get("note", [])]
    ours = [n for n in notes if "Stop" in n]
    assert ours == ["\\*\\*Stop\\*\\* ketamine  \n1\\. see \\[results\\](http://e.com) \\<b>now\\</b>"], notes
    kinds, shown = _rendered_kinds_and_characters(ours[0])
    assert "strong_open" not in kinds and "link_open" not in kinds and shown == "".join(typed.split())
