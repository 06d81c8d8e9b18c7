"""Tabular exports: the import-format CSV files (CONTRACT section 2), the Excel workbook and the caseload CSV.

The import-format files re-import into an empty KetaWatch database and reproduce the same
records. To keep that true and still protect whoever opens them in a spreadsheet, only the
free-text columns people type into (display_name, clinician, notes) are neutralised against
formula injection: a value that starts with =, +, -, @, a tab or a carriage return gets a leading
single quote, and so does such a character after a semicolon or a line break inside it
(formula_injection.neutralise), and the importer takes exactly those quotes away again. The key columns
(patient_id, the times) are written as stored, because changing them would break the link
between the files and the database; every other column holds numbers, dates or fixed words that
cannot start a formula. The Excel workbook and the caseload CSV are for reading, not for
re-import, so every text cell in them is neutralised.
"""

from __future__ import annotations

import csv
import io
import os
import re
import tempfile
import zipfile
from datetime import date, datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from openpyxl.utils import get_column_letter

from ketawatch.exports.deidentify import NO_TIME
from ketawatch.exports.formula_injection import excel_safe, formula_like, neutralise
from ketawatch.risk import reason_ids, scoring
from store.frames import Records
from store.importer import FILES
from store.settings import get_settings
from store.spreadsheet_quotes import FREE_TEXT_COLUMNS
from store.vocabulary import CHECKIN_COLUMNS, PATIENT_COLUMNS, SESSION_COLUMNS

_BOOLEAN = {"patients": ("sud_history",), "sessions": ("early_request", "dose_increase_request"), "checkins": ()}
_DATES = {"patients": ("treatment_start",), "sessions": (), "checkins": ()}
_INSTANTS = {"patients": (), "sessions": ("session_at",), "checkins": ("reported_at",)}
_COLUMNS = {"patients": PATIENT_COLUMNS, "sessions": SESSION_COLUMNS, "checkins": CHECKIN_COLUMNS}


def number_text(values: pd.Series) -> pd.Series:
    """Numbers as import-format text: whole numbers without a decimal point, others exactly (repr), missing empty."""
    numbers = pd.to_numeric(values, errors="coerce").astype("float64")
    whole = numbers.notna() & (numbers == np.round(numbers))
    text = numbers.astype("string")
    as_int = numbers.where(whole).astype("Int64").astype("string")
    return text.mask(whole, as_int).fillna("")


def yes_no(values: pd.Series) -> pd.Series:
    """Booleans as the import format's yes / no; missing empty."""
    flags = values.astype("boolean")
    return flags.map({True: "yes", False: "no"}).astype("string").fillna("")


def local_iso(instants: pd.Series, tz: str) -> pd.Series:
    """UTC instants as clinic-local ISO 8601 with the UTC offset (2026-03-04T10:30:00+00:00): exact and readable."""
    if instants.empty:
        return pd.Series([], index=instants.index, dtype="string")
    local = instants.dt.tz_convert(tz)
    text = local.dt.strftime("%Y-%m-%dT%H:%M:%S%z").astype("string")
    return text.str.replace(r"([+-]\d{2})(\d{2})$", r"\1:\2", regex=True).fillna("")


def import_format_frames(records: Records, *, tz: str) -> dict[str, pd.DataFrame]:
    """The records as the three import-format tables (all cells text, CONTRACT column order)."""
    sources = {"patients": records.patients, "sessions": records.sessions, "checkins": records.checkins}
    out: dict[str, pd.DataFrame] = {}
    for kind, frame in sources.items():
        columns = {}
        for column in _COLUMNS[kind]:
            values = frame[column]
            if column in _BOOLEAN[kind]:
                text = yes_no(values)
            elif column in _DATES[kind]:
                text = pd.to_datetime(values).dt.strftime("%Y-%m-%d").astype("string").fillna("")
            elif column in _INSTANTS[kind]:
                text = local_iso(values, tz)
            elif pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
                text = number_text(values)
            else:
                text = values.astype("string")
                if column in FREE_TEXT_COLUMNS:
                    text = neutralise(text)
                text = text.fillna("")
            columns[column] = text.to_numpy(dtype=object)
        out[kind] = pd.DataFrame(columns, columns=list(_COLUMNS[kind]))
    return out


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """One table as UTF-8 CSV with a header row and RFC 4180 quoting (CRLF line ends)."""
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    return buffer.getvalue().encode("utf-8")


def import_format_files(records: Records, *, tz: str) -> dict[str, bytes]:
    """patients.csv, sessions.csv and checkins.csv as bytes, ready for a folder or a zip."""
    frames = import_format_frames(records, tz=tz)
    return {FILES[kind]: csv_bytes(frame) for kind, frame in frames.items()}


def zip_files(files: dict[str, bytes], made_at: datetime | None = None) -> bytes:
    """Several export files in one zip archive, for a single download, each dated `made_at` (clinic time)."""
    when = _clinic_wall_time(made_at)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=when.timetuple()[:6]), data, compress_type=zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def _clinic_wall_time(made_at: datetime | None) -> datetime:
    """A moment as the clinic's naive wall-clock time, or `NO_TIME`."""
    return NO_TIME if made_at is None else made_at.astimezone(get_settings().tz).replace(tzinfo=None)


def not_a_plain_file(path: Path) -> bool:
    """True for a link, a device, a pipe or a socket at `path`: an export never takes its place (a file of patient
    data in place of /dev/full, or of a link whose target then silently stays as it was)."""
    return path.is_symlink() or (path.exists() and not path.is_file() and not path.is_dir())


def write_private(path: Path, data: bytes) -> None:
    """Write a file that holds patient data, readable by its owner only (mode 0600), replacing any file there whole.

    The data goes to a new private file beside `path`, which then takes its place: a file already
    there keeps neither its contents nor its wider permissions (writing into it kept a 0644 file
    readable by everyone), and a reader never sees half an export. A link or a device there is refused.
    """
    if not_a_plain_file(path):
        raise OSError(f"{path} is a link or a device, not a plain file; nothing was written over it")
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def write_files(files: dict[str, bytes], folder: Path) -> list[Path]:
    """Write export files into `folder` (created if needed, readable by its owner only, as the files are); returns
    the paths written. A folder made with the usual mode listed every file name to everyone (security review)."""
    odd = [folder / name for name in files if not_a_plain_file(folder / name)]
    if odd:  # before writing any: half an export folder beside a refusal is worse than none
        raise OSError(f"{odd[0]} is a link or a device, not a plain file; nothing was written")
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    written = []
    for name, data in files.items():
        path = folder / name
        write_private(path, data)
        written.append(path)
    return written


# ----- Excel ------------------------------------------------------------------------------------


def _local_naive(instants: pd.Series, tz: str) -> pd.Series:
    """UTC instants as naive clinic-local datetimes (Excel has no time zones)."""
    if instants.empty:
        return pd.Series([], index=instants.index, dtype="datetime64[ns]")
    return pd.to_datetime(instants, utc=True).dt.tz_convert(tz).dt.tz_localize(None)


def _safe_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Every text column of a frame made safe for a spreadsheet cell."""
    out = frame.copy()
    for column in out.columns:
        series = out[column]
        if pd.api.types.is_string_dtype(series) or series.dtype == object:
            if series.dtype == object and series.map(lambda v: isinstance(v, (list, tuple))).any():
                series = series.map(lambda v: "; ".join(map(str, v)) if isinstance(v, (list, tuple)) else v)
            out[column] = excel_safe(series.astype("string")).astype(object).where(series.notna(), None)
    return out


def workbook_sheets(records: Records, *, tz: str, reviews: pd.DataFrame, levels: pd.DataFrame, history: pd.DataFrame,
                    earlier: Records | None = None) -> dict[str, pd.DataFrame]:
    """The workbook's sheets: one per table (patients, sessions, side_effects, checkins, alert_reviews) plus levels.

    Times are clinic-local; derived columns (dose per kg, interval, SDS total) sit beside the
    recorded ones so the workbook is ready for analysis. `earlier` (the records before a date
    range) gives the first session of the range its interval, as the PDF shows it.
    """
    patients = records.patients.copy()
    if "age_band" in patients and patients["birth_year"].isna().all():
        patients = patients.drop(columns=["birth_year", "display_name"])
    patients["sud_history"] = yes_no(patients["sud_history"])

    sessions = records.sessions.drop(columns=["id"]).copy()
    sessions = sessions.sort_values(["patient_id", "session_at"], kind="stable")
    every = sessions if earlier is None else pd.concat([earlier.sessions.drop(columns=["id"]), sessions]).drop_duplicates(
        ["patient_id", "session_at"]).sort_values(["patient_id", "session_at"], kind="stable")
    # mg/kg as the charts, the PDF and the rules have it: a session without a weight takes the last one recorded
    # before it (the workbook left it blank beside a chart plotting it; code review)
    weight_of = dict(zip(zip(every["patient_id"], every["session_at"]),
                         scoring.weight_carried_forward(every["patient_id"], every["weight_kg"])))
    weights = pd.Series([weight_of.get(k) for k in zip(sessions["patient_id"], sessions["session_at"])],
                        index=sessions.index, dtype="float64")
    sessions.insert(2, "dose_mg_per_kg", scoring.dose_per_kg(sessions["dose_mg"], weights, sessions["route"]))
    local = _local_naive(sessions["session_at"], tz)
    every_day = _local_naive(every["session_at"], tz).dt.normalize()
    gaps = every_day.groupby(every["patient_id"].to_numpy()).diff().dt.days.astype("float64")
    gap_of = dict(zip(zip(every["patient_id"], every["session_at"]), gaps))
    sessions.insert(3, "days_since_previous", [gap_of.get(k) for k in zip(sessions["patient_id"], sessions["session_at"])])
    sessions["days_since_previous"] = sessions["days_since_previous"].astype("float64")
    sessions["session_at"] = local
    for column in ("early_request", "dose_increase_request"):
        sessions[column] = yes_no(sessions[column])
    effects = sessions[["patient_id", "session_at", "side_effects"]].dropna(subset=["side_effects"])
    items = effects.assign(item=effects["side_effects"].str.split(";")).explode("item")
    items = items[items["item"].fillna("").str.len() > 0]
    split = items["item"].str.split(":", n=1, expand=True)
    side_effects = pd.DataFrame(
        {
            "patient_id": items["patient_id"].to_numpy(),
            "session_at": items["session_at"].to_numpy(),
            "effect": split[0].to_numpy() if len(items) else [],
            "severity": split[1].to_numpy() if len(items) else [],
        }
    )

    checkins = records.checkins.drop(columns=["id"]).copy()
    checkins.insert(3, "sds_total", scoring.sds_total(checkins))
    checkins["reported_at"] = _local_naive(checkins["reported_at"], tz)

    review_sheet = reviews.drop(columns=[c for c in ("id",) if c in reviews]).copy()
    if len(review_sheet):
        review_sheet["reviewed_at"] = _local_naive(review_sheet["reviewed_at"], tz)

    level_sheet = levels.copy()
    if len(level_sheet):
        level_sheet["reason_ids"] = level_sheet["reasons"].map(lambda rs: "; ".join(reason_ids(rs)))
        level_sheet["reasons"] = level_sheet["reasons"].map(lambda rs: "\n".join(r.text for r in rs))
    history_sheet = history.copy()
    if len(history_sheet):
        history_sheet["reason_ids"] = history_sheet["reasons"].map(lambda rs: "; ".join(reason_ids(rs)))
        history_sheet = history_sheet.drop(columns=["reasons"])
    return {
        "patients": patients,
        "sessions": sessions,
        "side_effects": side_effects,
        "checkins": checkins,
        "alert_reviews": review_sheet,
        "levels": level_sheet,
        "level_history": history_sheet,
    }


#: What the workbook's derived and bookkeeping columns hold; recorded columns are described by their validation rule.
_COLUMN_WORDS = {
    "dose_mg_per_kg": "Dose per kg of body weight (mg/kg); blank for fixed-dose routes (intranasal esketamine). A "
                      "session with no weight of its own uses the last weight recorded before it, as the charts and "
                      "the rules do",
    "days_since_previous": "Days since the patient's previous session (clinic dates)",
    "sds_total": "Severity of Dependence Scale total (0-15; the sum of items 1 to 5)",
    "age_band": "Age band on the day of export (in place of the year of birth)",
    "effect": "Side effect",
    "severity": "Severity of the side effect: mild, moderate or severe",
    "reviewed_at": "When the alert was reviewed (clinic time)",
    "reviewed_by": "Who reviewed it",
    "reasons": "Reasons (rule ids on the review sheet, where phq9_q9_follow_up marks the follow-up of a PHQ-9 "
               "question 9 answer rather than a review of the level; observations in words on the levels sheet)",
    "action": "What was done",
    "note": "The reviewer's note",
    "as_of": "The date the level is computed for, from the records dated on or before it",
    "level": "Dependence-risk level: green (no warning pattern), amber (watch, review at the next visit), red (review now)",
    "since": "The date the patient has been at this level since",
    "reason_ids": "Rule ids of the reasons (see the README's rule table)",
    "date": "Date of a record on which the level changed",
    "record": "Kind of record: session or check-in",
    "record_at": "Date and time of that record (clinic time)",
    "change": "amended (values corrected) or voided (withdrawn; left out of every other sheet)",
    "what_changed": "For an amendment, each field its latest change corrected, as 'field: before -> after' (times "
                    "in clinic time); blank for a voided record, and in a de-identified file",
    "changed_at": "When it was changed (the latest change)",
    "changed_by": "Who changed it",
    "reason": "Why it was changed",
    "day": "A day on which the patient's records were entered, corrected or voided (listed: the first, each change of "
           "the level shown, and each day that differs from today's replay)",
    "level_shown": "The level shown at the end of that day, from the records as they were stored then (today's rules)",
    "reason_ids_shown": "Rule ids of the reasons shown then",
    "replay_level": "Today's replay of that date: the level from the records dated on or before it as they stand now",
    "replay_reason_ids": "Rule ids of the replay's reasons",
    "differs": "yes where the level shown then differs from today's replay (records of the day were entered later, "
               "corrected or voided)",
}


def _rule_words(column: str) -> str | None:
    from store.validation import CHECKIN_RULES, PATIENT_RULES, SESSION_RULES

    rule = next((r[column] for r in (PATIENT_RULES, SESSION_RULES, CHECKIN_RULES) if column in r), None)
    if rule is None:
        return None
    rng = f" ({rule.low:g}-{rule.high:g})" if rule.kind == "int" and rule.low is not None and rule.high is not None else ""
    return rule.label + rng + (f", {rule.unit}" if rule.unit else "")


#: Workbook columns worked out for reading, which the import format does not take.
DERIVED_COLUMNS = ("dose_mg_per_kg", "days_since_previous", "sds_total", "age_band")
#: Patient columns kept in KetaWatch only (set on Patients and plans), which the import format does not take either.
KEPT_ONLY_COLUMNS = ("status", "planned_dose_mg")


def about_sheet(sheets: dict[str, pd.DataFrame], *, deidentified: bool = False) -> pd.DataFrame:
    """The workbook's first sheet: the statement that levels do not diagnose, what was changed when it is
    de-identified, then every column in words with its unit."""
    from ketawatch.exports.pdf_layout import DISCLAIMER

    derived, kept = ", ".join(DERIVED_COLUMNS), ", ".join(KEPT_ONLY_COLUMNS)
    rows = [{"sheet": "", "column": "", "meaning": DISCLAIMER},
            {"sheet": "", "column": "", "meaning": "Times are clinic-local. Column names are the import format's, so the "
                                                   f"sheets can be analysed as they are; {derived} are worked out here "
                                                   f"and {kept} are kept in KetaWatch only: none of these is an import "
                                                   "column (for a copy to re-import, use the CSV export)."}]
    if deidentified:
        rows.append({"sheet": "", "column": "", "meaning": (
            "De-identified: patient_id is a pseudonym (P-...); every date and time of a patient is shifted back by "
            "that patient's own number of days (intervals kept, so dates of different patients cannot be compared); "
            "clinician, reviewed_by and changed_by are staff pseudonyms (S-...); the year of birth is an age band; "
            "free text (notes, review notes, reasons for a change) is left out, so those columns are empty, except "
            "that a check-in's notes keep its PHQ-9 question 9 line in the check-in form's fixed words.")})
    for name, frame in sheets.items():
        for column in frame.columns:
            words = _COLUMN_WORDS.get(column) or _rule_words(column) or ""
            rows.append({"sheet": name, "column": column, "meaning": words})
    return pd.DataFrame(rows, columns=["sheet", "column", "meaning"])


def level_as_shown_sheet(shown: pd.DataFrame | None, patient_key: str) -> pd.DataFrame:
    """A case's level as shown at the time as a sheet: its first day, every change and every day that differs from
    today's replay, with rule ids (a reason's words carry real dates)."""
    columns = ["patient_id", "day", "level_shown", "reason_ids_shown", "replay_level", "replay_reason_ids", "differs"]
    if shown is None or shown.empty:
        return pd.DataFrame(columns=columns)
    return pd.DataFrame({
        "patient_id": patient_key,
        "day": pd.to_datetime(pd.Series(list(shown["date"]), dtype="object")),
        "level_shown": shown["level"].to_numpy(),
        "reason_ids_shown": ["; ".join(ids) for ids in shown["reasons"]],
        "replay_level": shown["replay_level"].to_numpy(),
        "replay_reason_ids": ["; ".join(ids) for ids in shown["replay_reasons"]],
        "differs": yes_no(shown["differs"]).to_numpy(),
    }, columns=columns)


def corrections_sheet(corrections: pd.DataFrame | None, tz: str) -> pd.DataFrame:
    """Amended and voided records as a sheet: clinic-local times, what was corrected since each was first recorded, and
    the latest change's who and why."""
    columns = ["patient_id", "record", "record_at", "change", "what_changed", "changed_at", "changed_by", "reason"]
    if corrections is None or corrections.empty:
        return pd.DataFrame(columns=columns)
    sheet = corrections[columns].copy()
    for column in ("record_at", "changed_at"):
        sheet[column] = _local_naive(pd.to_datetime(sheet[column], utc=True), tz)
    return sheet


def workbook_bytes(sheets: dict[str, pd.DataFrame], made_at: datetime | None = None, *,
                   deidentified: bool = False) -> bytes:
    """The sheets as an .xlsx workbook (openpyxl) after an `about` sheet, every text cell neutralised, header row frozen.

    Every time inside the file (created and modified properties, the dates of the zip entries an
    .xlsx is made of) is `made_at`, or 1980-01-01 when None; openpyxl would write the real time."""
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        for name, frame in {"about": about_sheet(sheets, deidentified=deidentified), **sheets}.items():
            frame = _safe_text(_with_real_dates(frame))
            frame.to_excel(writer, sheet_name=name[:31], index=False)
            sheet = writer.sheets[name[:31]]
            _formula_like_as_text(sheet, frame)
            sheet.freeze_panes = "A2"
            for j, column in enumerate(frame.columns, start=1):
                wide = 110 if name == "about" and column == "meaning" else 60
                sheet.column_dimensions[get_column_letter(j)].width = max(10, min(wide, len(str(column)) + 4))
                shown = _number_format(frame[column])
                # only the columns that need a format are walked: a caseload-wide workbook has millions of cells
                for (cell,) in sheet.iter_rows(min_row=2, min_col=j, max_col=j) if shown else ():
                    cell.number_format = shown
    return _dated(buffer.getvalue(), made_at)


def _formula_like_as_text(sheet, frame: pd.DataFrame) -> None:
    """Cells whose text could read as a formula typed as text with Excel's quote prefix, their text as written:
    openpyxl had stored "=HYPERLINK(...)" as a formula, and a quote put into the value changed the data."""
    for j, column in enumerate(frame.columns, start=1):
        if frame[column].dtype != object:
            continue
        for i in np.flatnonzero(formula_like(frame[column].where(frame[column].map(lambda v: isinstance(v, str))))):
            cell = sheet.cell(row=int(i) + 2, column=j)
            cell.data_type = "s"
            cell.quotePrefix = True


def _with_real_dates(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns of Python dates as Excel dates (the levels sheets' "as of" and "since"), not text."""
    out = frame.copy()
    for column in out.columns:
        values = out[column].dropna()
        if out[column].dtype == object and len(values) and all(type(v) is date for v in values):
            out[column] = pd.to_datetime(out[column])
    return out


def _number_format(column: pd.Series) -> str | None:
    """How a column reads in Excel: dates without a time, times to the minute, mg/kg to 2 decimals."""
    if pd.api.types.is_datetime64_any_dtype(column):
        values = column.dropna()
        return "yyyy-mm-dd" if len(values) and (values == values.dt.normalize()).all() else "yyyy-mm-dd hh:mm"
    if column.name == "dose_mg_per_kg":
        return "0.00"
    return None


def _dated(xlsx: bytes, made_at: datetime | None) -> bytes:
    """The workbook with its document properties and zip entries dated `made_at` (openpyxl sets "modified" while saving)."""
    utc = NO_TIME if made_at is None else made_at.astimezone(timezone.utc).replace(tzinfo=None)
    stamp = utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    entry_time = _clinic_wall_time(made_at).timetuple()[:6]
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(xlsx)) as source, zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename == "docProps/core.xml":
                text = data.decode("utf-8")
                for tag in ("dcterms:created", "dcterms:modified"):
                    text = re.sub(rf"(<{tag}[^>]*>)[^<]*(</{tag}>)", rf"\g<1>{stamp}\g<2>", text)
                data = text.encode("utf-8")
            target.writestr(zipfile.ZipInfo(info.filename, date_time=entry_time), data, compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()


# ----- caseload CSV -----------------------------------------------------------------------------

CASELOAD_EXPORT_COLUMNS = (
    "patient_id", "display_name", "clinician", "level", "level_since", "phq9_question_9", "phq9_question_9_follow_up", "reason_ids", "reasons",
    "last_review_at", "last_review_by", "last_review_level", "last_review_action", "needs_review",
    "phq9_reliably_worse", "as_of",
)


def caseload_csv_bytes(rows: pd.DataFrame) -> bytes:
    """The team-meeting caseload as CSV: every text cell neutralised (this file is read, not re-imported)."""
    frame = rows.loc[:, [c for c in CASELOAD_EXPORT_COLUMNS if c in rows.columns]].copy()
    for column in frame.columns:
        series = frame[column]
        if pd.api.types.is_string_dtype(series) or series.dtype == object:
            frame[column] = neutralise(series.astype("string"))
    return csv_bytes(frame)
