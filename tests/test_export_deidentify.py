"""De-identification: stable pseudonyms and shifts, and no identifier, name, birth year or date in any de-identified file."""

from __future__ import annotations

import io
import json
import re
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ketawatch.exports import Pseudonymiser, export_caseload, export_patient, export_records
from ketawatch.exports.deidentify import MAX_SHIFT_DAYS, MIN_SHIFT_DAYS, age_band, shift_instants
from ketawatch.exports.fhir_markdown import fhir_markdown
from tests.test_export_support import (
    CLINICIAN,
    NOW,
    REVIEWER,
    SECRET_NAME,
    SECRET_PID,
    leaks,
    load_sample,
    readable_text,
)

ids = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=0x2FF), min_size=1, max_size=64)


@given(secret=st.text(min_size=1, max_size=40), patient_id=ids)
def test_pseudonym_and_offset_are_stable_and_in_range(secret, patient_id):
    p = Pseudonymiser(secret)
    pseudonym = p.patient(patient_id)
    assert pseudonym == Pseudonymiser(secret).patient(patient_id)
    assert pseudonym.startswith("P-") and len(pseudonym) == 12 and int(pseudonym[2:], 16) >= 0
    assert -MAX_SHIFT_DAYS <= p.offset_days(patient_id) <= -MIN_SHIFT_DAYS
    assert p.offset_days(patient_id) == Pseudonymiser(secret).offset_days(patient_id)


@given(patient_id=ids)
def test_a_different_secret_gives_a_different_pseudonym(patient_id):
    assert Pseudonymiser("one secret").patient(patient_id) != Pseudonymiser("another secret").patient(patient_id)


@settings(max_examples=60, deadline=None)
@given(
    patient_ids=st.lists(ids, min_size=1, max_size=4, unique=True),
    minutes=st.lists(st.integers(min_value=0, max_value=3 * 365 * 24 * 60), min_size=1, max_size=12),
    zone=st.sampled_from(["Europe/London", "America/New_York", "UTC", "Australia/Sydney"]),
)
@example(patient_ids=["A"], minutes=[1165040, 1165090], zone="Europe/London")  # two records meet on a 23-hour day
def test_shift_keeps_wall_clock_time_and_every_interval_in_days(patient_ids, minutes, zone):
    p = Pseudonymiser("property")
    base = datetime(2024, 1, 1, tzinfo=timezone.utc)
    owners = pd.Series([patient_ids[i % len(patient_ids)] for i in range(len(minutes))], dtype="string")
    instants = pd.Series([base + timedelta(minutes=m) for m in minutes], dtype="datetime64[ns, UTC]")
    shifted = shift_instants(instants, p.offsets_of(owners), zone, owners)
    local_before = instants.dt.tz_convert(zone)
    local_after = shifted.dt.tz_convert(zone)
    exact = (shifted - instants == pd.to_timedelta(p.offsets_of(owners).to_numpy(), unit="D")).to_numpy()
    day_shift = (local_after.dt.tz_localize(None).dt.normalize() - local_before.dt.tz_localize(None).dt.normalize()).dt.days
    # each record moves by its own patient's offset in days (by the calendar, or by exact 24-hour days)
    assert ((day_shift - p.offsets_of(owners)).abs() <= 1).all() and ((day_shift == p.offsets_of(owners)) | exact).all()
    # the wall-clock time is kept, except where it does not exist on the new day (a spring-forward gap)
    target = local_before.dt.tz_localize(None) + pd.to_timedelta(p.offsets_of(owners).to_numpy(), unit="D")
    exists = target.dt.tz_localize(zone, ambiguous="NaT", nonexistent="NaT").notna() | target.dt.tz_localize(
        zone, ambiguous=True, nonexistent="NaT").notna()
    same_clock = local_after.dt.strftime("%H:%M") == local_before.dt.strftime("%H:%M")
    for owner in set(owners):  # a patient keeps its wall-clock times, or (only when that would break order) exact days
        mine = (owners == owner).to_numpy()
        assert same_clock[mine & exists.to_numpy()].all() or exact[mine].all()
    # and no two records of one patient merge or swap places, even when one lands in a clock change
    for owner in set(owners):
        mine = (owners == owner).to_numpy()
        before, after = (s[mine].astype("int64").to_numpy() for s in (instants, shifted))  # ns since 1970
        order = np.argsort(before, kind="stable")
        assert ((np.diff(before[order]) > 0) == (np.diff(after[order]) > 0)).all()
        assert (np.diff(after[order]) >= 0).all()


def test_two_records_shifted_into_the_spring_forward_gap_stay_an_hour_later_and_apart():
    # 2025-03-30 01:00 -> 02:00 in London; records of 2025-05-04 (offset -35 days) land on that day.
    instants = pd.Series(pd.to_datetime(["2025-05-04T00:20Z", "2025-05-04T00:40Z"]), dtype="datetime64[ns, UTC]")  # 01:20, 01:40 BST
    shifted = shift_instants(instants, pd.Series([-35, -35]), "Europe/London", pd.Series(["A", "A"]))
    assert list(shifted.dt.tz_convert("Europe/London").dt.strftime("%Y-%m-%d %H:%M")) == ["2025-03-30 02:20", "2025-03-30 02:40"]


def test_a_patient_whose_records_would_collide_on_a_23_hour_day_is_shifted_by_exact_days():
    # 01:20 would become 02:20 and meet the record that was at 02:20 (the reviewer's counterexample)
    instants = pd.Series(pd.to_datetime(["2025-05-04T00:20Z", "2025-05-04T01:10Z", "2025-05-04T01:20Z", "2025-06-01T09:00Z"]),
                         dtype="datetime64[ns, UTC]")
    owners = pd.Series(["A", "A", "A", "B"])
    shifted = shift_instants(instants, pd.Series([-35, -35, -35, -35]), "Europe/London", owners)
    assert list(shifted[:3] - instants[:3]) == [pd.Timedelta(days=-35)] * 3  # A: every interval and the order kept
    assert shifted.iloc[3].tz_convert("Europe/London").strftime("%H:%M") == "10:00"  # B keeps its wall clock


@pytest.mark.parametrize("meeting", ["check-ins", "reviews"])
def test_a_patient_moved_by_exact_days_is_moved_alike_in_every_table_and_every_export(sqlite_engine, tmp_path,
                                                                                       monkeypatch, meeting):
    """Decided table by table, two check-ins (or two alert reviews) meeting on a 23-hour day moved that table by exact
    days and the patient's other tables by wall-clock days, an hour apart across a clock change (IG review, code
    review): decided once over every stored time, every table and every export moves the patient alike."""
    from openpyxl import load_workbook

    from ketawatch.exports.casefile import Author, load_patient_case
    from store.importer import import_folder
    from store.records import add_alert_review
    from store.settings import get_settings
    from store.validation import Validator
    from tests.store_support import CHECKIN, PATIENT, SESSION, write_folder

    monkeypatch.setenv("KETAWATCH_PSEUDONYM_SECRET", "exact-days-secret")
    get_settings.cache_clear()
    p = Pseudonymiser("exact-days-secret")
    pid = next(f"KW-{n}" for n in range(100000) if p.offset_days(f"KW-{n}") == -35)
    # shifted 35 days back, 2025-05-04 lands on 2025-03-30 (London springs forward at 01:00): 01:20 becomes 02:20
    # and meets the 02:20; the session (10:00 GMT) lands in summer time, where its wall clock would be an hour off
    colliding = ("2025-05-04T01:20", "2025-05-04T02:20")
    checkin_times = colliding if meeting == "check-ins" else ("2025-04-20T10:00", "2025-04-27T10:00")
    checkins = [{**CHECKIN, "patient_id": pid, "reported_at": at, "craving": "6"} for at in checkin_times]
    session = {**SESSION, "patient_id": pid, "session_at": "2025-11-05T10:00"}
    import_folder(sqlite_engine, write_folder(tmp_path / "in", patients=[{**PATIENT, "patient_id": pid,
                  "treatment_start": "2025-04-01"}], sessions=[session], checkins=checkins),
                  actor="test-import", validator=Validator(now=NOW, tz="Europe/London"))
    london = ZoneInfo("Europe/London")
    review_times = [datetime.fromisoformat(t).replace(tzinfo=london) for t in colliding] if meeting == "reviews" else []
    for at in [*review_times, datetime(2025, 11, 5, 12, 0, tzinfo=timezone.utc)]:
        add_alert_review(sqlite_engine, patient_id=pid, level="amber", reasons=["early_requests_repeated"],
                         action="discussed_with_patient", note=None, actor=CLINICIAN, now=at)
    exact = pd.Timedelta(days=-35)
    case = load_patient_case(sqlite_engine, pid, author=Author(REVIEWER, None, "reviewer"), deidentify=True, now=NOW)
    stored_checkins = [pd.Timestamp(datetime.fromisoformat(t).replace(tzinfo=london)) for t in checkin_times]
    assert list(case.records.checkins["reported_at"]) == [t + exact for t in stored_checkins]
    assert list(case.records.sessions["session_at"]) == [pd.Timestamp("2025-11-05T10:00Z") + exact]
    stored_reviews = sorted(pd.Timestamp(t).tz_convert("UTC") for t in
                            [*review_times, datetime(2025, 11, 5, 12, 0, tzinfo=timezone.utc)])
    assert sorted(case.reviews["reviewed_at"]) == [t + exact for t in stored_reviews]
    # and the same in a many-patient export and its workbook's reviews
    sessions = pd.read_csv(io.BytesIO(export_records(sqlite_engine, "csv", actor=REVIEWER, role="reviewer",
                                                     deidentify=True, now=NOW).files["sessions.csv"]))
    assert list(sessions["session_at"]) == ["2025-10-01T11:00:00+01:00"]
    book = load_workbook(io.BytesIO(next(iter(export_records(sqlite_engine, "xlsx", actor=REVIEWER, role="reviewer",
                                                             deidentify=True, now=NOW).files.values()))))
    sheet = next(name for name in book.sheetnames if "review" in name)
    header, *rows = list(book[sheet].values)
    at = header.index("reviewed_at")
    assert sorted(pd.Timestamp(r[at]) for r in rows) == sorted(
        pd.Timestamp(t + exact).tz_convert(london).tz_localize(None).floor("min") for t in stored_reviews), rows


@pytest.mark.parametrize(
    ("birth_year", "on", "band"),
    [(1961, date(2026, 11, 22), "60-69"), (1990, date(2026, 1, 1), "30-39"), (1930, date(2026, 1, 1), "90+"),
     (2000, date(2026, 1, 1), "20-29"), (None, date(2026, 1, 1), None)],
)
def test_age_band(birth_year, on, band):
    assert age_band(birth_year, on) == band


@pytest.fixture
def sample(sqlite_engine, tmp_path, monkeypatch):
    """The sample caseload with a fixed pseudonym secret (so the run is the same every time)."""
    from store.settings import get_settings

    monkeypatch.setenv("KETAWATCH_PSEUDONYM_SECRET", "test-secret-for-exports")
    get_settings.cache_clear()
    load_sample(sqlite_engine, tmp_path)
    return sqlite_engine


def _all_exports(engine, *, deidentify: bool, role: str, actor: str):
    results = [export_patient(engine, SECRET_PID, fmt, actor=actor, role=role, deidentify=deidentify, now=NOW)
               for fmt in ("pdf", "csv", "xlsx", "fhir")]
    results += [export_caseload(engine, fmt, actor=actor, role=role, deidentify=deidentify, now=NOW) for fmt in ("pdf", "csv")]
    results += [export_records(engine, fmt, actor=actor, role=role, deidentify=deidentify, now=NOW) for fmt in ("csv", "xlsx")]
    return results


def test_no_identifier_name_birth_year_note_or_date_in_any_deidentified_file(sample):
    pseudonym = Pseudonymiser("test-secret-for-exports").patient(SECRET_PID)
    for result in _all_exports(sample, deidentify=True, role="reviewer", actor=REVIEWER):
        for name, data in result.files.items():
            text = readable_text(name, data)
            assert leaks(text) == [], f"{name} leaks {leaks(text)}"
            assert leaks(name) == [], name
            assert pseudonym in text, name  # the patient is in the file, under the pseudonym
        download_name, _, _ = result.download()
        assert SECRET_PID not in download_name


def test_a_deidentified_data_file_keeps_each_question_9_answer_in_the_form_s_words_and_no_other_note(sample):
    """A research file without them would silently miss every answer about thoughts of death or self-harm."""
    import io
    import json

    from ketawatch.safety_answers import UNSTANDARD_WORDING, safety_line
    from store.records import add_checkin
    from store.validation import Validator
    from tests.store_support import CHECKIN

    standard = safety_line(["More than half the days"])
    # a line the form wrote before its wording changed (2026-12-01) is still the form's own, with no free text
    earlier = safety_line(["Several days"], "better off dead or self-harm")
    for day, notes in (("2026-11-19", f"Told her sister SECRETNOTE.\n{standard}"),
                       ("2026-11-20", "[Safety] spoke with SECRETNOTE at home"),
                       ("2026-11-21", earlier)):
        add_checkin(sample, dict(CHECKIN, patient_id=SECRET_PID, reported_at=f"{day}T10:00", notes=notes),
                    actor=CLINICIAN, validator=Validator(now=NOW))
    files = export_patient(sample, SECRET_PID, "csv", actor=REVIEWER, role="reviewer", deidentify=True, now=NOW).files
    checkins = pd.read_csv(io.BytesIO(files["checkins.csv"]), dtype=str)
    assert sorted(checkins["notes"].dropna()) == sorted([standard, UNSTANDARD_WORDING, earlier])
    # each is still found as a question 9 answer where the file is imported: the typed line's stand-in had lost the
    # mark, and its answer dropped out of the alerts there (export review)
    from ketawatch.safety_answers import safety_answers
    found = safety_answers(checkins.assign(reported_at=pd.to_datetime(checkins["reported_at"], utc=True)))
    assert len(found) == 3, found
    fhir = export_patient(sample, SECRET_PID, "fhir", actor=REVIEWER, role="reviewer", deidentify=True, now=NOW)
    bundle = json.loads(next(iter(fhir.files.values())))
    notes = [n["text"] for e in bundle["entry"] for n in e["resource"].get("note", [])]
    # as FHIR's markdown (Annotation.text): "[Safety]" goes out as "\[Safety\]", which a receiver shows as typed
    assert fhir_markdown(standard) in notes and fhir_markdown(UNSTANDARD_WORDING) in notes
    assert "SECRETNOTE" not in json.dumps(bundle)


def test_the_leak_detector_finds_the_identifiers_in_identified_files(sample):
    """The control: the same search over identified exports finds names, ids, dates and notes."""
    pdf = export_patient(sample, SECRET_PID, "pdf", actor=CLINICIAN, role="clinician", now=NOW)
    text = readable_text(*next(iter(pdf.files.items())))
    found = set(leaks(text))
    assert {SECRET_PID, SECRET_NAME, "1961", "2025-03-03", "SECRETNOTE", "REVIEW-NOTE-QQQ"} <= found
    fhir = export_patient(sample, SECRET_PID, "fhir", actor=CLINICIAN, role="clinician", now=NOW)
    assert {SECRET_PID, SECRET_NAME, "2025-03-03"} <= set(leaks(readable_text(*next(iter(fhir.files.items())))))


def test_deidentified_levels_and_intervals_match_the_identified_ones(sample):
    """Shifting dates must not change what the engine concludes, only when it says it happened."""
    real = export_caseload(sample, "csv", actor=CLINICIAN, role="clinician", now=NOW)
    fake = export_caseload(sample, "csv", actor=REVIEWER, role="reviewer", deidentify=True, now=NOW)
    read = lambda r: pd.read_csv(__import__("io").BytesIO(next(iter(r.files.values()))), dtype=str, keep_default_na=False)  # noqa: E731
    a, b = read(real), read(fake)
    assert list(a["level"]) == list(b["level"]) and list(a["reason_ids"]) == list(b["reason_ids"])
    offset = Pseudonymiser("test-secret-for-exports").offset_days(SECRET_PID)
    row_a = a[a["patient_id"] == SECRET_PID].iloc[0]
    row_b = b[b["patient_id"] == Pseudonymiser("test-secret-for-exports").patient(SECRET_PID)].iloc[0]
    assert (date.fromisoformat(row_b["level_since"]) - date.fromisoformat(row_a["level_since"])).days == offset


def test_the_public_default_secret_is_never_the_key(engine, monkeypatch):
    """Left unset, the key is random per database: knowing KetaWatch's default does not reveal pseudonyms."""
    from ketawatch.exports.deidentify import Pseudonymiser
    from store.settings import DEFAULT_PSEUDONYM_SECRET, get_settings

    monkeypatch.delenv("KETAWATCH_PSEUDONYM_SECRET", raising=False)
    get_settings.cache_clear()
    first = Pseudonymiser.from_settings(engine)
    assert first.secret != DEFAULT_PSEUDONYM_SECRET and len(first.secret) >= 32
    assert Pseudonymiser.from_settings(engine).secret == first.secret  # stable: same pseudonyms every export
    assert first.patient("KW-0001") != Pseudonymiser(DEFAULT_PSEUDONYM_SECRET).patient("KW-0001")
    monkeypatch.setenv("KETAWATCH_PSEUDONYM_SECRET", "a-clinic-chosen-secret-of-good-length")
    get_settings.cache_clear()
    assert Pseudonymiser.from_settings(engine).secret == "a-clinic-chosen-secret-of-good-length"


def _file_times(name: str, data: bytes) -> list[str]:
    """Times a file carries besides its text: PDF creation date, workbook properties, zip entry dates."""
    import io
    import zipfile

    from openpyxl import load_workbook
    from pypdf import PdfReader

    if name.endswith(".pdf"):
        return [str(PdfReader(io.BytesIO(data)).metadata.get("/CreationDate"))]
    if name.endswith(".xlsx"):
        properties = load_workbook(io.BytesIO(data)).properties
        return [properties.created.isoformat(), properties.modified.isoformat(), *_file_times("parts.zip", data)]
    if name.endswith(".zip"):
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return ["{:04d}-{:02d}-{:02d}".format(*info.date_time[:3]) for info in archive.infolist()]
    return []


def test_no_deidentified_export_of_patients_carries_the_real_time_of_export(sample):
    """Beside the shifted dates, the real export time would give each patient's shift away."""
    # the export's own NOW, and the machine's today (where a library might stamp the real clock)
    real = {f"{day:%Y-%m-%d}" for day in (NOW, datetime.now(timezone.utc), datetime.now())}
    real |= {f"{NOW:%Y%m%d}", f"{NOW:%d/%m/%Y}", f"{NOW.day} {NOW:%b %Y}"}
    results = [export_patient(sample, SECRET_PID, fmt, actor=REVIEWER, role="reviewer", deidentify=True, now=NOW)
               for fmt in ("pdf", "csv", "xlsx", "fhir")]
    results += [export_records(sample, fmt, actor=REVIEWER, role="reviewer", deidentify=True, now=NOW) for fmt in ("csv", "xlsx")]
    results += [export_caseload(sample, fmt, actor=REVIEWER, role="reviewer", deidentify=True, now=NOW) for fmt in ("pdf", "csv")]
    assert any(len(r.patient_ids) for r in results[-2:])  # the caseload has a flagged patient whose dates could be compared
    for result in results:
        name, data, _ = result.download()
        for file_name, file_data in [*result.files.items(), (name, data)]:
            seen = " ".join([file_name, readable_text(file_name, file_data), *_file_times(file_name, file_data)])
            assert not [r for r in real if r in seen], f"{file_name} ({result.fmt}) shows the real export date"
    # Nor the export time shifted like the records: whoever knows when the file was sent (its e-mail, its file date)
    # would read the patient's shift off it (IG review). One patient's files carry no time of export at all.
    # (Exported a day after the sample was entered: a record entered or dated on the day of export is shown on the
    # shifted day, as every record is.)
    later = NOW + timedelta(days=1)
    offset = Pseudonymiser("test-secret-for-exports").offset_days(SECRET_PID)
    shifted = (later + timedelta(days=offset)).date()
    for result in [export_patient(sample, SECRET_PID, fmt, actor=REVIEWER, role="reviewer", deidentify=True, now=later)
                   for fmt in ("pdf", "csv", "xlsx", "fhir")]:
        name, data, _ = result.download()
        for file_name, file_data in [*result.files.items(), (name, data)]:
            seen = " ".join([file_name, readable_text(file_name, file_data), *_file_times(file_name, file_data)])
            assert shifted.isoformat() not in seen and f"{shifted:%Y%m%d}" not in seen, file_name
    pdf_name, pdf_data, _ = results[0].download()
    assert pdf_name == f"ketawatch-{Pseudonymiser('test-secret-for-exports').patient(SECRET_PID)}-deidentified.pdf"
    assert "As of the day of export" in " ".join(readable_text(pdf_name, pdf_data).split())
    assert "timestamp" not in json.loads(results[3].download()[1])
    # nor in the bundle's id: keyed by the shifted day, with a public namespace, trying each day found it (code review)
    import uuid

    from ketawatch.exports.fhir import _NAMESPACE

    key = Pseudonymiser("test-secret-for-exports").patient(SECRET_PID)
    bundle_id = json.loads(results[3].download()[1])["id"]
    tried = [NOW.date() + timedelta(days=d) for d in range(-400, 401)]
    assert not [day for day in tried if str(uuid.uuid5(_NAMESPACE, f"{key}|bundle|{day.isoformat()}")) == bundle_id]
    chosen = export_patient(sample, SECRET_PID, "pdf", actor=REVIEWER, role="reviewer", deidentify=True, now=NOW,
                            end=date(2025, 4, 1))  # a date chosen at export is shown, shifted like the records
    assert f"As of {date(2025, 4, 1) + timedelta(days=offset)}" in " ".join(readable_text(*chosen.download()[:2]).split())
    # by a staff pseudonym alone: a role beside it can name the one person in a small team who holds it (IG review)
    staff = Pseudonymiser("test-secret-for-exports").staff(REVIEWER)
    assert re.search(rf"by\s+{staff}\b(?!\s*\()", readable_text(pdf_name, pdf_data))
    assert "(reviewer)" not in readable_text(pdf_name, pdf_data)
    identified = export_patient(sample, SECRET_PID, "pdf", actor=CLINICIAN, role="clinician", now=NOW)
    assert f"{NOW:%Y%m%d}" in identified.download()[0]  # an identified export keeps the real time


def test_a_deidentified_case_review_as_of_the_day_of_export_ends_its_charts_and_gap_at_the_records(sample):
    """Its charts ran to the shifted day of export and 'Nothing recorded for 12 weeks' dated it to the week: with the
    day the file was sent, that gave the patient's shift away (IG review)."""
    from ketawatch.exports.casefile import Author, load_patient_case
    from ketawatch.exports.pdf import chart_specs

    later = NOW + timedelta(days=90)
    shifted_export_day = (later + timedelta(days=Pseudonymiser("test-secret-for-exports").offset_days(SECRET_PID))).date()
    case = load_patient_case(sample, SECRET_PID, author=Author(REVIEWER, None, "reviewer"), deidentify=True, now=later)
    dates = pd.concat([case.records.sessions["session_at"], case.records.checkins["reported_at"]]).dt.tz_convert(case.tz)
    assert case.end == shifted_export_day and dates.max().date() < shifted_export_day - timedelta(days=28)
    assert {spec.x_range[1] for spec in chart_specs(case)} == {dates.max().date()}
    text = " ".join(readable_text(*export_patient(sample, SECRET_PID, "pdf", actor=REVIEWER, role="reviewer",
                                                  deidentify=True, now=later).download()[:2]).split())
    assert (f"Nothing recorded for at least 4 weeks before the day of export: the level and the reasons are as of "
            f"{dates.max().date().isoformat()}.") in text
    assert not re.search(r"Nothing recorded for \d+ weeks", text)
    # identified, or with a day chosen, the charts run to that day and the gap is said in weeks
    chosen = load_patient_case(sample, SECRET_PID, author=Author(REVIEWER, None, "reviewer"), deidentify=True,
                               now=later, end=later.date())
    assert {spec.x_range[1] for spec in chart_specs(chosen)} == {shifted_export_day}
    identified = " ".join(readable_text(*export_patient(sample, SECRET_PID, "pdf", actor=CLINICIAN, role="clinician",
                                                        now=later).download()[:2]).split())
    assert re.search(r"Nothing recorded for \d+ weeks: the level", identified)


def test_a_deidentified_caseload_for_an_earlier_date_says_so_without_the_date(sample):
    earlier = date(2025, 3, 15)
    today = export_caseload(sample, "pdf", actor=REVIEWER, role="reviewer", deidentify=True, now=NOW)
    past = export_caseload(sample, "pdf", actor=REVIEWER, role="reviewer", deidentify=True, now=NOW, as_of=earlier)
    assert "on the day of export" in readable_text(*next(iter(today.files.items())))
    text = readable_text(*next(iter(past.files.items())))
    assert "as of a date chosen at export (not shown)" in text and "on the day of export" not in text
    assert earlier.isoformat() not in text


def test_many_patient_deidentified_files_list_patients_by_pseudonym_not_in_clinic_order(sqlite_engine, validator, tmp_path):
    """Row n of a de-identified file must not be the clinic's n-th patient, nor the identified caseload's n-th row."""
    import io as _io

    from tests.store_support import import_cohort

    import_cohort(sqlite_engine, tmp_path / "in", validator, n_patients=24, months=4, end=date(2026, 10, 31), seed=5)
    result = export_records(sqlite_engine, "csv", actor=REVIEWER, role="reviewer", deidentify=True, now=NOW)
    files = {name.rsplit("/", 1)[-1]: data for name, data in result.files.items()}
    patients = pd.read_csv(_io.BytesIO(files["patients.csv"]), dtype=str)["patient_id"].tolist()
    assert patients == sorted(patients) and len(patients) == 24
    for name in ("sessions.csv", "checkins.csv"):
        owners = pd.read_csv(_io.BytesIO(files[name]), dtype=str)["patient_id"].tolist()
        assert owners == sorted(owners), name
    # Reviews made one after another at a meeting, in clinic order: the sheet must not keep that order either.
    from store.records import add_alert_review

    for hour, pid in enumerate(sorted(pd.read_csv(io_files(export_records(sqlite_engine, "csv", actor=CLINICIAN,
                                                                          role="clinician", now=NOW))["patients.csv"],
                                                  dtype=str)["patient_id"])[:6]):
        add_alert_review(sqlite_engine, patient_id=pid, level="amber", reasons=["craving_rising"],
                         action="discussed_with_patient", note="", actor=CLINICIAN, now=NOW - timedelta(hours=10 - hour))
        # and a correction of each one's first session: the corrections sheet kept the real order of the records
        # (IG review), which ties each pseudonym's shifted dates to the others'
        from store import records as record_store
        from store.queries import sessions_frame

        first = sessions_frame(sqlite_engine, [pid], with_tracking=True).iloc[0]
        record_store.amend_session(sqlite_engine, int(first["id"]), {"duration_min": 44}, actor=CLINICIAN,
                                   reason="timer misread", expected_version=int(first["version"]))
    book = export_records(sqlite_engine, "xlsx", actor=REVIEWER, role="reviewer", deidentify=True, now=NOW)
    reviews = pd.read_excel(_io.BytesIO(next(iter(book.files.values()))), sheet_name="alert_reviews", dtype=str)
    assert len(reviews) == 6 and reviews["patient_id"].tolist() == sorted(reviews["patient_id"])
    corrections = pd.read_excel(_io.BytesIO(next(iter(book.files.values()))), sheet_name="corrections", dtype=str)
    assert len(corrections) == 6 and corrections["patient_id"].tolist() == sorted(corrections["patient_id"])
    caseload = export_caseload(sqlite_engine, "csv", actor=REVIEWER, role="reviewer", deidentify=True, now=NOW)
    rows = pd.read_csv(_io.BytesIO(next(iter(caseload.files.values()))), dtype=str)
    assert len(rows) >= 2
    rank = rows["level"].str.lower().map({"red": 0, "amber": 1})
    assert list(zip(rank, rows["patient_id"])) == sorted(zip(rank, rows["patient_id"]))


def io_files(result) -> dict[str, io.BytesIO]:
    """An export's files by bare name, each as a readable buffer."""
    import io as _io

    return {name.rsplit("/", 1)[-1]: _io.BytesIO(data) for name, data in result.files.items()}


def test_times_the_system_stamped_are_kept_to_the_minute_in_a_deidentified_file(sample):
    """To the thousandth of a second, a shifted review or correction time could be matched to its audit line, which
    carries the real date (security review)."""
    import io

    import pandas as pd

    from store import records
    from store.queries import sessions_frame

    session = sessions_frame(sample, [SECRET_PID], with_tracking=True).iloc[0]
    records.amend_session(sample, int(session["id"]), {"duration_min": 45}, actor=CLINICIAN, reason="timer misread",
                          expected_version=int(session["version"]))
    records.add_alert_review(sample, patient_id=SECRET_PID, level="amber", reasons=["early_requests_repeated"],
                             action="discussed_with_patient", note="seen", actor=CLINICIAN,
                             now=datetime(2026, 11, 21, 9, 41, 27, 318000, tzinfo=timezone.utc))
    result = export_patient(sample, SECRET_PID, "xlsx", actor=REVIEWER, role="reviewer", deidentify=True, now=NOW)
    sheets = pd.read_excel(io.BytesIO(result.download()[1]), sheet_name=None)
    stamped = pd.concat([pd.to_datetime(sheets["alert_reviews"]["reviewed_at"]),
                         pd.to_datetime(sheets["corrections"]["changed_at"])])
    assert len(stamped) >= 3 and stamped.notna().all()
    assert ((stamped.dt.second == 0) & (stamped.dt.microsecond == 0)).all(), stamped.tolist()
