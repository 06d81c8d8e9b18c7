"""Import-format CSV round trip (SQLite and PostgreSQL), Excel workbook, caseload CSV and formula injection."""

from __future__ import annotations

import datetime as dt
import io
import zipfile
import re
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from openpyxl import load_workbook

from ketawatch.exports import export_caseload, export_patient, export_records
from ketawatch.exports.formula_injection import FORMULA_STARTS, excel_safe, formula_like, neutralise
from ketawatch.exports.tables import caseload_csv_bytes, write_files
from store.db import make_engine, upgrade
from store.importer import import_folder
from store.queries import checkins_frame, patients_frame, sessions_frame
from store.records import amend_session
from store.spreadsheet_quotes import unquote_formula_starts
from store.validation import Validator
from tests.conftest import fresh_database_url
from tests.test_export_support import CLINICIAN, HOSTILE_NOTE, NOW, OTHER_PID, SECRET_PID, TZ, load_sample


def _frames(engine) -> dict[str, pd.DataFrame]:
    """Every live record, without database ids, in a stable order."""
    patients = patients_frame(engine).sort_values("patient_id").reset_index(drop=True)
    sessions = sessions_frame(engine).drop(columns=["id"]).sort_values(["patient_id", "session_at"]).reset_index(drop=True)
    checkins = checkins_frame(engine).drop(columns=["id"]).sort_values(["patient_id", "reported_at"]).reset_index(drop=True)
    return {"patients": patients, "sessions": sessions, "checkins": checkins}


@pytest.fixture
def second_engine(engine, tmp_path):
    """A second fresh, migrated database of the same kind as `engine` (SQLite or PostgreSQL)."""
    url, drop = fresh_database_url(engine.dialect.name, tmp_path / "second")
    (tmp_path / "second").mkdir(exist_ok=True)
    other = make_engine(url)
    upgrade(other)
    yield other
    other.dispose()
    drop()


def test_import_format_csv_reimports_into_an_empty_database_as_the_same_records(engine, second_engine, tmp_path):
    load_sample(engine, tmp_path)
    result = export_records(engine, "csv", actor=CLINICIAN, role="clinician", now=NOW)
    assert set(result.files) == {"patients.csv", "sessions.csv", "checkins.csv"}
    folder = tmp_path / "export"
    write_files(result.files, folder)
    report = import_folder(second_engine, folder, actor="round-trip", validator=Validator(now=NOW, tz=TZ))
    assert report.new == {"patients": 2, "sessions": 8, "checkins": 7}

    before, after = _frames(engine), _frames(second_engine)
    # Free text that could start a spreadsheet formula is quoted in the files and comes back as typed.
    assert (before["sessions"]["notes"] == HOSTILE_NOTE).sum() == 1
    assert before["patients"]["display_name"].str.startswith("+").sum() == 1
    for kind in before:
        pd.testing.assert_frame_equal(before[kind], after[kind], check_dtype=True)


def test_an_export_imported_again_into_its_own_database_adds_nothing_and_is_not_refused(sqlite_engine, tmp_path):
    """A note with a bulleted line ('- sleep better') came back as "'- sleep better", and the re-import was refused as
    'already recorded with different notes' (code review)."""
    load_sample(sqlite_engine, tmp_path)
    record = sessions_frame(sqlite_engine, with_tracking=True).iloc[0]
    amend_session(sqlite_engine, int(record["id"]), {"notes": "Plan:\n- sleep better\n=review;+call GP\n'- as typed"},
                  actor=CLINICIAN, reason="bulleted plan", expected_version=int(record["version"]),
                  validator=Validator(now=NOW, tz=TZ))
    folder = tmp_path / "export"
    write_files(export_records(sqlite_engine, "csv", actor=CLINICIAN, role="clinician", now=NOW).files, folder)
    written = pd.read_csv(folder / "sessions.csv", dtype=str, keep_default_na=False)["notes"]
    assert "Plan:\n'- sleep better\n'=review;'+call GP\n''- as typed" in set(written)  # quoted for a spreadsheet
    report = import_folder(sqlite_engine, folder, actor="again", validator=Validator(now=NOW, tz=TZ))
    assert report.new == {"patients": 0, "sessions": 0, "checkins": 0}
    assert sessions_frame(sqlite_engine).set_index("id").loc[int(record["id"]), "notes"] == \
        "Plan:\n- sleep better\n=review;+call GP\n'- as typed"


def test_patient_and_selection_csv_hold_only_those_patients(sqlite_engine, tmp_path):
    load_sample(sqlite_engine, tmp_path)
    one = export_patient(sqlite_engine, OTHER_PID, "csv", actor=CLINICIAN, role="clinician", now=NOW)
    patients = pd.read_csv(io.BytesIO(one.files["patients.csv"]), dtype=str, keep_default_na=False)
    sessions = pd.read_csv(io.BytesIO(one.files["sessions.csv"]), dtype=str, keep_default_na=False)
    assert list(patients["patient_id"]) == [OTHER_PID]
    assert set(sessions["patient_id"]) == {OTHER_PID} and len(sessions) == 2
    assert list(sessions.columns)[:3] == ["patient_id", "session_at", "route"]
    assert sessions["dose_mg"].tolist() == ["37.25", "35"]  # whole numbers without ".0", others exact
    assert sessions["session_at"].tolist() == ["2025-06-02T09:00:00+01:00", "2025-06-20T08:00:00+01:00"]
    selection = export_records(sqlite_engine, "csv", actor=CLINICIAN, role="clinician", patient_ids=[SECRET_PID], now=NOW)
    assert set(pd.read_csv(io.BytesIO(selection.files["checkins.csv"]), dtype=str)["patient_id"]) == {SECRET_PID}


def test_formula_like_free_text_is_quoted_in_csv_and_a_text_cell_in_excel(sqlite_engine, tmp_path):
    load_sample(sqlite_engine, tmp_path)
    csv_files = export_records(sqlite_engine, "csv", actor=CLINICIAN, role="clinician", now=NOW).files
    notes = pd.read_csv(io.BytesIO(csv_files["sessions.csv"]), dtype=str, keep_default_na=False)["notes"]
    assert "'" + HOSTILE_NOTE in set(notes)
    assert not notes.str.match(r"^[=+\-@\t\r]").any()
    names = pd.read_csv(io.BytesIO(csv_files["patients.csv"]), dtype=str, keep_default_na=False)["display_name"]
    assert not names.str.match(r"^[=+\-@\t\r]").any()

    workbook = export_records(sqlite_engine, "xlsx", actor=CLINICIAN, role="clinician", now=NOW)
    book = load_workbook(io.BytesIO(next(iter(workbook.files.values()))))
    cells = [cell for sheet in book.worksheets for row in sheet.iter_rows() for cell in row if cell.value is not None]
    assert not [c.coordinate for c in cells if c.data_type == "f"], "no cell may be a formula"
    texts = [c for c in cells if isinstance(c.value, str)]
    assert HOSTILE_NOTE in [c.value for c in texts]  # as written, in a text cell with Excel's quote prefix
    assert not [c.coordinate for c in texts if c.value.startswith(FORMULA_STARTS) and not c.quotePrefix]


def test_caseload_csv_quotes_every_formula_like_cell():
    rows = pd.DataFrame({"patient_id": ["@SUM(A1)", "KW-1"], "display_name": ["-2+3", "Ann"], "level": ["red", "amber"],
                         "reasons": ["\tx", "plain"]})
    read = pd.read_csv(io.BytesIO(caseload_csv_bytes(rows)), dtype=str, keep_default_na=False)
    assert read["patient_id"].tolist() == ["'@SUM(A1)", "KW-1"]
    assert read["display_name"].tolist() == ["'-2+3", "Ann"]
    assert read["reasons"].tolist() == ["'\tx", "plain"]


_RISKY_TEXT = st.text(alphabet=st.sampled_from("=+-@\t\r\n;' ab,\""), max_size=20) | st.text(max_size=20)


def _quoted_at_every_cell_start(text: str) -> str:
    """The oracle, character by character: a quote before a formula character, or before quotes followed by one, at
    the start or after ; or a line break."""
    out, at_cell_start = [], True
    for at, char in enumerate(text):
        if at_cell_start and text[at:].lstrip("'").startswith(FORMULA_STARTS):
            out.append("'")
        out.append(char)
        at_cell_start = char in ";\n\r"
    return "".join(out)


@given(st.lists(st.one_of(st.none(), _RISKY_TEXT), max_size=20))
def test_neutralise_quotes_exactly_the_risky_values(values):
    out = neutralise(pd.Series(values, dtype="string"))
    for before, after in zip(values, out):
        if before is None:
            assert after is pd.NA
            continue
        assert after == _quoted_at_every_cell_start(before)
        assert unquote_formula_starts(after) == before  # the importer gives back the text as typed
        # Split as Excel splits a CSV where the list separator is ';': no piece may start a formula.
        assert not [piece for piece in re.split(r"[;\n\r]", after) if piece.startswith(FORMULA_STARTS)], after
    safe = excel_safe(pd.Series(values, dtype="string"))
    marked = formula_like(safe)
    for before, after, text_cell in zip(values, safe, marked):  # an Excel cell is never split: only its start matters
        if before is not None:
            kept = re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f]", "", before)  # what XML cannot hold is dropped
            assert after == kept and text_cell == kept.startswith(FORMULA_STARTS)


def test_a_csv_split_at_semicolons_starts_no_formula(sqlite_engine, tmp_path):
    """Excel where the list separator is ';' splits each line there, whatever the commas and quotes say."""
    rows = pd.DataFrame({"patient_id": ["KW-1"], "display_name": ["Ann Lee;=WEBSERVICE(CHAR(104)&A2)"],
                         "level": ["red"], "reasons": ["feels ok\n+HYPERLINK(B2)"]})
    data = caseload_csv_bytes(rows).decode("utf-8")
    cells = [cell for line in data.splitlines() for cell in line.split(";")]
    assert len(cells) == 4 and not [c for c in cells if c.startswith(FORMULA_STARTS)], cells
    assert "Ann Lee;'=WEBSERVICE(CHAR(104)&A2)" in data


def test_a_formula_like_text_in_the_workbook_is_a_text_cell_holding_the_text_as_written(sqlite_engine, tmp_path):
    """The quote put before '=HYPERLINK(...)' became part of the value for anyone analysing the workbook (export
    review); openpyxl, given the bare text, would store it as a formula. It is a text cell with Excel's quote prefix."""
    from ketawatch.exports.tables import workbook_bytes

    notes = ["=HYPERLINK(\"http://e.com\",\"x\")", "+1 call back", "@SUM(A1:A9)", "plain", None]
    data = workbook_bytes({"checkins": pd.DataFrame({"notes": notes, "craving": [1, 2, 3, 4, 5]})})
    sheet = load_workbook(io.BytesIO(data))["checkins"]
    cells = [sheet.cell(row=r, column=1) for r in range(2, 7)]
    assert [c.value for c in cells] == notes
    assert [(c.data_type, bool(c.quotePrefix)) for c in cells[:3]] == [("s", True)] * 3
    assert not cells[3].quotePrefix and [sheet.cell(row=r, column=2).value for r in range(2, 7)] == [1, 2, 3, 4, 5]
    with zipfile.ZipFile(io.BytesIO(data)) as book:
        assert not [name for name in book.namelist() if b"<f>" in book.read(name)], "no formula in any sheet"


def test_excel_workbook_has_one_sheet_per_table_and_levels(sqlite_engine, tmp_path):
    load_sample(sqlite_engine, tmp_path)
    result = export_patient(sqlite_engine, SECRET_PID, "xlsx", actor=CLINICIAN, role="clinician", now=NOW)
    book = load_workbook(io.BytesIO(next(iter(result.files.values()))))
    assert book.sheetnames == ["about", "patients", "sessions", "side_effects", "checkins", "alert_reviews", "levels",
                               "level_history", "corrections", "level_as_shown"]
    sessions = pd.read_excel(io.BytesIO(next(iter(result.files.values()))), sheet_name=None)
    assert len(sessions["sessions"]) == 6 and len(sessions["checkins"]) == 5
    assert sessions["sessions"]["dose_mg_per_kg"].iloc[0] == pytest.approx(35 / 70.5)
    assert len(sessions["side_effects"]) == 11  # 5 sessions x 2 effects + 1
    levels = sessions["levels"]
    assert levels["patient_id"].tolist() == [SECRET_PID] and levels["level"].iloc[0] in ("amber", "red")
    assert "early_requests_repeated" in levels["reason_ids"].iloc[0]
    # read as a clinician would: dates as dates (no 00:00:00), times to the minute, mg/kg to 2 decimals
    header = {sheet: {c.value: c.column_letter for c in book[sheet][1]} for sheet in ("patients", "sessions", "levels")}
    assert book["patients"][f"{header['patients']['treatment_start']}2"].number_format == "yyyy-mm-dd"
    assert book["sessions"][f"{header['sessions']['session_at']}2"].number_format == "yyyy-mm-dd hh:mm"
    assert book["sessions"][f"{header['sessions']['dose_mg_per_kg']}2"].number_format == "0.00"
    as_of = book["levels"][f"{header['levels']['as_of']}2"]
    assert as_of.is_date and as_of.number_format == "yyyy-mm-dd"


def test_caseload_csv_lists_amber_and_red_with_last_review(sqlite_engine, tmp_path):
    load_sample(sqlite_engine, tmp_path)
    result = export_caseload(sqlite_engine, "csv", actor=CLINICIAN, role="clinician", now=NOW)
    rows = pd.read_csv(io.BytesIO(next(iter(result.files.values()))), dtype=str, keep_default_na=False)
    assert set(rows["level"]) <= {"amber", "red"}
    mine = rows[rows["patient_id"] == SECRET_PID].iloc[0]
    assert mine["last_review_by"] == CLINICIAN and mine["last_review_action"] == "discussed_with_patient"
    assert mine["last_review_at"].startswith("2025-03-20") and mine["level_since"] <= "2025-03-20"
    assert mine["reasons"] and "early_requests_repeated" in mine["reason_ids"]
    assert OTHER_PID not in set(rows["patient_id"])


def test_written_files_land_in_the_folder(tmp_path: Path):
    written = write_files({"a.csv": b"x\r\n"}, tmp_path / "new" / "dir")
    assert [p.name for p in written] == ["a.csv"] and (tmp_path / "new" / "dir" / "a.csv").read_bytes() == b"x\r\n"


def test_two_exports_of_one_patient_in_the_same_minute_get_different_file_names(sqlite_engine, tmp_path):
    """Two periods exported for a meeting one after the other must not both be called ...-1205.pdf."""
    from datetime import timedelta

    load_sample(sqlite_engine, tmp_path)
    names = [export_patient(sqlite_engine, OTHER_PID, "pdf", actor=CLINICIAN, role="clinician", now=NOW + timedelta(seconds=s))
             .download()[0] for s in (0, 1)]
    assert names[0] != names[1]
    assert re.fullmatch(r"ketawatch-[\w.-]+-\d{8}-\d{6}\.pdf", names[0]), names[0]


def test_with_a_date_range_the_first_session_keeps_its_interval_as_in_the_pdf(sqlite_engine, tmp_path):
    from ketawatch.exports.casefile import Author, load_patient_case
    from ketawatch.exports.pdf import session_rows
    from store.queries import sessions_frame

    load_sample(sqlite_engine, tmp_path)
    second = pd.Timestamp(sessions_frame(sqlite_engine, [SECRET_PID])["session_at"].iloc[1]).tz_convert("Europe/London")
    start = second.date()
    result = export_patient(sqlite_engine, SECRET_PID, "xlsx", actor=CLINICIAN, role="clinician", now=NOW, start=start)
    sheet = pd.read_excel(io.BytesIO(next(iter(result.files.values()))), sheet_name="sessions")
    case = load_patient_case(sqlite_engine, SECRET_PID, author=Author(CLINICIAN, None, "clinician"), start=start, now=NOW)
    printed = session_rows(case)[0][4]  # the PDF's "Days since last" of the range's first session
    assert printed != "" and sheet["days_since_previous"].iloc[0] == float(printed)


@pytest.mark.parametrize("deidentify", [False, True])
def test_the_workbook_opens_on_what_every_column_means_and_that_levels_do_not_diagnose(sqlite_engine, tmp_path, deidentify):
    load_sample(sqlite_engine, tmp_path)
    for result in (export_patient(sqlite_engine, SECRET_PID, "xlsx", actor=CLINICIAN, role="clinician",
                                  deidentify=deidentify, now=NOW),
                   export_records(sqlite_engine, "xlsx", actor=CLINICIAN, role="clinician", deidentify=deidentify,
                                  now=NOW)):
        sheets = pd.read_excel(io.BytesIO(next(iter(result.files.values()))), sheet_name=None, dtype=str,
                               keep_default_na=False)
        about = sheets.pop("about")
        assert "does not diagnose" in about["meaning"].iloc[0]
        described = {(r.sheet, r.column): r.meaning for r in about.itertuples() if r.column}
        for name, frame in sheets.items():
            for column in frame.columns:
                assert described.get((name, column)), f"{name}.{column} is not described"
        assert described[("sessions", "sbp_pre")] == "Systolic blood pressure before dosing (40-300), mmHg"
        # What it says of the columns and of de-identification is true of this file.
        from ketawatch.exports.tables import DERIVED_COLUMNS, KEPT_ONLY_COLUMNS
        from store.vocabulary import CHECKIN_COLUMNS, PATIENT_COLUMNS, SESSION_COLUMNS

        named = set(DERIVED_COLUMNS) | set(KEPT_ONLY_COLUMNS)
        for name, allowed in (("patients", PATIENT_COLUMNS), ("sessions", SESSION_COLUMNS), ("checkins", CHECKIN_COLUMNS)):
            extra = set(sheets[name].columns) - set(allowed)
            assert extra <= named, f"{name}: {extra - named} not named as worked out or kept in KetaWatch only"
            assert all(column in about["meaning"].iloc[1] for column in extra)
        said = " ".join(about["meaning"].iloc[:3])
        assert ("De-identified: patient_id is a pseudonym" in said) == deidentify
        assert "re-imported as they are" not in said


@pytest.mark.parametrize("deidentify", [False, True])
def test_the_workbook_says_where_the_level_shown_at_the_time_differs_from_the_replay(sqlite_engine, deidentify):
    """A craving typed in wrongly showed amber on 14 Sep and was corrected on 16 Sep: as in the PDF, the case review's
    workbook lists that day, with what was shown, today's replay of it, and no real date when de-identified."""
    from tests.test_known_then import enter_a_craving_typo_corrected_later

    enter_a_craving_typo_corrected_later(sqlite_engine, "KT-1")
    result = export_patient(sqlite_engine, "KT-1", "xlsx", actor=CLINICIAN, role="clinician", now=NOW,
                            deidentify=deidentify)
    sheet = pd.read_excel(io.BytesIO(next(iter(result.files.values()))), sheet_name="level_as_shown", dtype=str,
                          keep_default_na=False)
    differing = sheet[sheet["differs"] == "yes"]
    assert differing[["level_shown", "reason_ids_shown", "replay_level", "replay_reason_ids"]].values.tolist() == [
        ["amber", "craving_rising; craving_drift", "green", ""]]
    assert set(sheet["differs"]) == {"yes", "no"} and (sheet["patient_id"] != "KT-1").all() == deidentify
    days = pd.to_datetime(sheet["day"]).dt.date.tolist()
    assert days == sorted(days) and (dt.date(2026, 9, 14) in days) != deidentify


def test_a_session_without_a_weight_has_the_mg_per_kg_the_charts_use_in_the_workbook_and_the_pdf(sqlite_engine, tmp_path):
    """The workbook left mg/kg blank, and the PDF showed it beside no weight without a word, where the charts and the
    rules use the last weight recorded before the session (code review)."""
    from tests.store_support import SESSION, write_folder
    from tests.test_export_support import pdf_text

    weighed = {**SESSION, "session_at": "2026-01-05T10:00", "weight_kg": "70", "dose_mg": "35"}
    unweighed = {**SESSION, "session_at": "2026-01-19T10:00", "weight_kg": "", "dose_mg": "42"}
    import_folder(sqlite_engine, write_folder(tmp_path / "in", sessions=[weighed, unweighed]), actor="t",
                  validator=Validator(now=NOW, tz=TZ))
    book = load_workbook(io.BytesIO(export_patient(sqlite_engine, "KW-T1", "xlsx", actor=CLINICIAN, role="clinician",
                                                   now=NOW).download()[1]))
    header, *rows = list(book["sessions"].values)
    assert [r[header.index("dose_mg_per_kg")] for r in rows] == [0.5, 0.6]
    assert rows[1][header.index("weight_kg")] is None  # the weight itself stays as recorded: not recorded
    text = " ".join(pdf_text(export_patient(sqlite_engine, "KW-T1", "pdf", actor=CLINICIAN, role="clinician",
                                            now=NOW).download()[1]).split())
    assert "A session with no weight of its own: its mg/kg uses the last weight recorded before it" in text
