"""Shared builders for the export tests: a small caseload with a patient whose every identifier is unusual.

No tests live here. The identifiers (clinic id, a name in several scripts, birth year, staff
usernames, note words, record dates) are chosen so that finding any of them in a de-identified
file can only mean a leak. The records span 17 days, less than the smallest date shift (30 days),
so a shifted date can never coincide with an original one by chance.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from datetime import date, datetime, timezone
from pathlib import Path

from openpyxl import load_workbook
from pypdf import PdfReader

from store.importer import import_folder
from store.records import add_alert_review
from store.validation import Validator
from tests.store_support import CHECKIN, PATIENT, SESSION, write_folder

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)
TZ = "Europe/London"
SECRET_PID = "CLINIC-7731-ZZ"
SECRET_NAME = "Zoë Ångström-Łukasiewicz"
SECRET_BIRTH_YEAR = "1961"
CLINICIAN = "dr-quillfeather"
REVIEWER = "rev-ostrander"
HOSTILE_NOTE = '=HYPERLINK("http://evil.example/x","click")'
SESSION_NOTE = "SECRETNOTE about the family, 4th floor flat"
CHECKIN_NOTE = "PRIVATE-NOTE-XYZ mentions employer"
REVIEW_NOTE = "REVIEW-NOTE-QQQ discussed with spouse"
#: Every date of the patient's records, as written in the import files.
SESSION_TIMES = ("2025-03-03T10:00", "2025-03-07T10:30", "2025-03-11T11:30", "2025-03-14T09:45", "2025-03-17T10:15", "2025-03-19T14:00")
CHECKIN_DATES = ("2025-03-05", "2025-03-09", "2025-03-13", "2025-03-16", "2025-03-20")
TREATMENT_START = "2025-03-03"
REVIEW_AT = datetime(2025, 3, 20, 16, 0, tzinfo=timezone.utc)
OTHER_PID = "KW-PLAIN-2"


def _sessions() -> list[dict]:
    rows = []
    for i, at in enumerate(SESSION_TIMES):
        row = dict(SESSION, patient_id=SECRET_PID, session_at=at, dose_mg=str(35 + 3 * i), weight_kg="70.5")
        row["early_request"] = "yes" if i >= 3 else "no"
        row["dose_increase_request"] = "yes" if i >= 3 else "no"
        row["notes"] = HOSTILE_NOTE if i == 2 else (SESSION_NOTE if i == 4 else "")
        if i == 5:
            row.update(route="intranasal", dose_mg="56", weight_kg="", side_effects="nausea:severe", duration_min="")
        rows.append(row)
    return rows


def _checkins() -> list[dict]:
    rows = []
    for i, day in enumerate(CHECKIN_DATES):
        row = dict(CHECKIN, patient_id=SECRET_PID, reported_at=day, craving=str(min(1 + 2 * i, 10)))
        row["notes"] = CHECKIN_NOTE if i == 1 else ""
        row["tolerance"] = "2" if i >= 2 else "0"
        row["secrecy"] = "2" if i >= 3 else "0"
        rows.append(row)
    return rows


def sample_folder(folder: Path) -> Path:
    """Import files for two patients: the one with unusual identifiers, and a plain one."""
    patients = [
        dict(PATIENT, patient_id=SECRET_PID, display_name=SECRET_NAME, birth_year=SECRET_BIRTH_YEAR, clinician=CLINICIAN,
             treatment_start=TREATMENT_START, sud_history="yes", planned_interval_days="7"),
        dict(PATIENT, patient_id=OTHER_PID, display_name="+44 Plain Person, \"quoted\"", birth_year="1990",
             treatment_start="2025-06-02", clinician="nurse-plain"),
    ]
    other_sessions = [
        dict(SESSION, patient_id=OTHER_PID, session_at="2025-06-02T09:00", dose_mg="37.25", weight_kg="74.5",
             notes="line one\nline two, with comma", early_request="", dose_increase_request=""),
        dict(SESSION, patient_id=OTHER_PID, session_at="2025-06-20T09:00+02:00", side_effects="", notes="", sbp_post="", dbp_post=""),
    ]
    other_checkins = [dict(CHECKIN, patient_id=OTHER_PID, reported_at="2025-06-10T19:45", notes="ça va ✓"),
                      dict(CHECKIN, patient_id=OTHER_PID, reported_at="2025-06-24", sds_1="", sds_2="", sds_3="", sds_4="", sds_5="",
                           phq9="")]
    return write_folder(folder, patients=patients, sessions=_sessions() + other_sessions, checkins=_checkins() + other_checkins)


def load_sample(engine, tmp_path: Path) -> None:
    """Fill a fresh database with the sample caseload and one alert review."""
    import_folder(engine, sample_folder(tmp_path / "sample-in"), actor="test-import", validator=Validator(now=NOW, tz=TZ))
    add_alert_review(engine, patient_id=SECRET_PID, level="amber", reasons=["early_requests_repeated"],
                     action="discussed_with_patient", note=REVIEW_NOTE, actor=CLINICIAN, now=REVIEW_AT)


def original_date_strings() -> set[str]:
    """Every original date of the secret patient in the forms an export could print it."""
    days = {date.fromisoformat(t[:10]) for t in (*SESSION_TIMES, *CHECKIN_DATES, TREATMENT_START)} | {REVIEW_AT.date()}
    out = set()
    for d in days:
        out |= {d.isoformat(), f"{d.day} {d:%b %Y}", f"{d:%d %b %Y}", f"{d:%d/%m/%Y}", f"{d:%Y%m%d}", f"{d:%b} {d.day}, {d.year}"}
    return out


def forbidden_strings() -> set[str]:
    """Everything that must not appear in a de-identified export of the secret patient."""
    return {SECRET_PID, SECRET_NAME, "Zoë", "Łukasiewicz", SECRET_BIRTH_YEAR, CLINICIAN, REVIEWER, "SECRETNOTE",
            "PRIVATE-NOTE-XYZ", "REVIEW-NOTE-QQQ", "HYPERLINK", *original_date_strings()}


def leaks(text: str) -> list[str]:
    """The forbidden strings found in `text`, each matched as a whole token (so '2025-03-03' is not found in '12025-03-031')."""
    found = []
    for needle in sorted(forbidden_strings()):
        if re.search(r"(?<![0-9A-Za-z])" + re.escape(needle) + r"(?![0-9])", text):
            found.append(needle)
    return found


def pdf_text(data: bytes) -> str:
    """All text of a PDF (pypdf), with its metadata."""
    reader = PdfReader(io.BytesIO(data))
    meta = " ".join(str(v) for v in (reader.metadata or {}).values())
    return meta + "\n" + "\n".join(page.extract_text() or "" for page in reader.pages)


def xlsx_text(data: bytes) -> str:
    """Every cell of every sheet of a workbook, as text."""
    book = load_workbook(io.BytesIO(data))
    parts = []
    for sheet in book.worksheets:
        parts.append(sheet.title)
        for row in sheet.iter_rows(values_only=True):
            parts.extend("" if v is None else (v.isoformat() if hasattr(v, "isoformat") else str(v)) for v in row)
    return "\n".join(parts)


def zip_text(data: bytes) -> str:
    """The text of every file in a zip archive."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return "\n".join(name + "\n" + archive.read(name).decode("utf-8") for name in archive.namelist())


def readable_text(name: str, data: bytes) -> str:
    """The searchable text of any export file, by its kind."""
    if name.endswith(".pdf"):
        return pdf_text(data)
    if name.endswith(".xlsx"):
        return xlsx_text(data)
    if name.endswith(".zip"):
        return zip_text(data)
    if name.endswith(".json"):
        return json.dumps(json.loads(data), ensure_ascii=False)
    return data.decode("utf-8")
