"""The export entry points the command line and the dashboard both call: check the role, build, audit.

Every function here refuses an identified export for a reviewer (`ExportRefused`) before reading
any record, builds the files, and only then writes one audit line (action "export"). An export
that fails half-way leaves no audit line and no file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timezone

from sqlalchemy import Engine

from ketawatch.exports.access import ExportRefused, check_export_allowed
from ketawatch.exports.audit import record_export, record_export_refused
from ketawatch.exports.casefile import (
    Author, caseload_csv_frame, corrections_of, deidentified_corrections, load_caseload, load_patient_case, patient_not_found,
    records_within,
)
from ketawatch.exports.deidentify import Pseudonymiser, deidentify_records, deidentify_reviews
from ketawatch.exports.tables import (
    caseload_csv_bytes, corrections_sheet, import_format_files, level_as_shown_sheet, workbook_bytes, workbook_sheets, zip_files,
)
from store.queries import alert_reviews_frame, load_records, patient_times, patients_frame
from store.settings import get_settings

#: Where an export went, in its audit line: the dashboard's download, or the path the command line wrote (IG review).
DOWNLOAD = "dashboard download"
PATIENT_FORMATS = ("pdf", "csv", "xlsx", "fhir")
CASELOAD_FORMATS = ("pdf", "csv")
RECORD_FORMATS = ("csv", "xlsx")
MEDIA_TYPES = {
    "pdf": "application/pdf",
    "csv": "text/csv",
    "zip": "application/zip",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "fhir": "application/fhir+json",
}


@dataclass(frozen=True)
class ExportResult:
    """The files of one export (name -> bytes) and what the audit line recorded."""

    files: dict[str, bytes]
    fmt: str
    patient_ids: list[str]
    deidentified: bool
    stem: str = field(default="ketawatch-export")
    #: The time written into file metadata (zip entries): the export time, or None (a fixed 1980-01-01) for any
    #: de-identified export.
    made_at: datetime | None = None

    def download(self) -> tuple[str, bytes, str]:
        """(file name, bytes, media type) for one download: the file itself, or a zip of several."""
        if len(self.files) == 1:
            name, data = next(iter(self.files.items()))
            return name, data, MEDIA_TYPES.get(self.fmt, "application/octet-stream")
        return f"{self.stem}.zip", zip_files(self.files, self.made_at), MEDIA_TYPES["zip"]


class UnknownFormat(ValueError):
    """The requested format is not one this export offers."""


def _check_format(fmt: str, allowed: tuple[str, ...]) -> None:
    if fmt not in allowed:
        raise UnknownFormat(f"format must be one of {', '.join(allowed)}, not {fmt!r}")


def _safe_name(text: str) -> str:
    """A patient id or pseudonym made safe for a file name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "patient"


def _stamp(now: datetime) -> str:
    """Clinic-local time to the second: two exports made in the same minute (two periods) keep apart."""
    return now.astimezone(get_settings().tz).strftime("%Y%m%d-%H%M%S")


def _several_patients(kind: str, deidentify: bool, now: datetime) -> tuple[str, datetime | None]:
    """File stem and metadata time of an export of several patients.

    De-identified, each patient has its own date shift, so no real time may go with the file:
    no stamp in the name, and the metadata gets the fixed time (None)."""
    if deidentify:
        return f"ketawatch-{kind}-deidentified", None
    return f"ketawatch-{kind}-{_stamp(now)}", now


def _allowed_or_audited(engine: Engine, *, actor: str, role: str, deidentify: bool, what: str, fmt: str,
                        patient_ids: list[str] | None) -> None:
    """`check_export_allowed`, with a refusal written to the audit trail before it is raised."""
    try:
        check_export_allowed(role, deidentify=deidentify)
    except ExportRefused as exc:
        record_export_refused(engine, actor=actor, role=role, what=what, fmt=fmt, patient_ids=patient_ids, why=str(exc))
        raise


def export_patient(
    engine: Engine,
    patient_id: str,
    fmt: str,
    *,
    actor: str,
    role: str,
    actor_name: str | None = None,
    deidentify: bool = False,
    start: date | None = None,
    end: date | None = None,
    now: datetime | None = None,
    pseudonymiser: Pseudonymiser | None = None,
    destination: str = DOWNLOAD,
) -> ExportResult:
    """One patient's case review as pdf, import-format csv (3 files), xlsx or a FHIR R4B bundle (json)."""
    _check_format(fmt, PATIENT_FORMATS)
    _allowed_or_audited(engine, actor=actor, role=role, deidentify=deidentify, what="patient", fmt=fmt,
                        patient_ids=[patient_id])
    if start and end and start > end:
        raise ValueError(f"the period starts ({start.isoformat()}) after it ends ({end.isoformat()})")
    now = now or datetime.now(timezone.utc)
    author = Author(actor, actor_name, role)
    case = load_patient_case(engine, patient_id, author=author, start=start, end=end, deidentify=deidentify,
                             pseudonymiser=pseudonymiser, now=now)
    made_at = case.generated_at  # None when de-identified: no time of the export goes with the file
    stem = f"ketawatch-{_safe_name(case.patient_key)}-{'deidentified' if made_at is None else _stamp(made_at)}"
    tz = case.tz
    if fmt == "pdf":
        from ketawatch.exports.pdf import patient_pdf

        files = {f"{stem}.pdf": patient_pdf(case)}
    elif fmt == "fhir":
        from ketawatch.exports.fhir import validated_bundle_json

        files = {f"{stem}.fhir.json": validated_bundle_json(case)}
    else:
        records = records_within(case.records, case.start, case.end, tz)
        if fmt == "csv":
            files = import_format_files(records, tz=tz)
        else:
            from ketawatch.risk import assess

            levels = assess(case.records, as_of=case.end, tz=tz)
            if not case.end_chosen and deidentify:  # the day of export, shifted: it would give the shift away
                levels = levels.drop(columns=["as_of"])
            sheets = workbook_sheets(records, tz=tz, reviews=case.reviews, levels=levels, earlier=case.records,
                                     history=case.history.assign(patient_id=case.patient_key))
            sheets["corrections"] = corrections_sheet(case.corrections, tz)
            sheets["level_as_shown"] = level_as_shown_sheet(case.shown_then, case.patient_key)
            files = {f"{stem}.xlsx": workbook_bytes(sheets, made_at, deidentified=deidentify)}
    record_export(engine, actor=actor, role=role, what="patient_summary" if fmt == "pdf" else f"patient_{fmt}", fmt=fmt,
                  patient_ids=[patient_id], deidentified=deidentify,
                  period={"from": start.isoformat() if start else None, "to": end.isoformat() if end else None},
                  destination=destination)
    return ExportResult(files, fmt, [patient_id], deidentify, stem, made_at)


def export_caseload(
    engine: Engine,
    fmt: str,
    *,
    actor: str,
    role: str,
    actor_name: str | None = None,
    deidentify: bool = False,
    as_of: date | None = None,
    now: datetime | None = None,
    pseudonymiser: Pseudonymiser | None = None,
    destination: str = DOWNLOAD,
) -> ExportResult:
    """Amber and red patients under care, and any with a recent PHQ-9 question 9 answer, for a team meeting (pdf or csv)."""
    _check_format(fmt, CASELOAD_FORMATS)
    _allowed_or_audited(engine, actor=actor, role=role, deidentify=deidentify, what="caseload", fmt=fmt,
                        patient_ids=None)
    now = now or datetime.now(timezone.utc)
    export = load_caseload(engine, author=Author(actor, actor_name, role), as_of=as_of, deidentify=deidentify,
                           pseudonymiser=pseudonymiser, now=now)
    stem, made_at = _several_patients("caseload", deidentify, now)
    if fmt == "pdf":
        from ketawatch.exports.caseload_pdf import caseload_pdf

        files = {f"{stem}.pdf": caseload_pdf(export, tz=get_settings().clinic_timezone)}
    else:
        files = {f"{stem}.csv": caseload_csv_bytes(caseload_csv_frame(export))}
    record_export(engine, actor=actor, role=role, what="caseload", fmt=fmt, patient_ids=export.patient_ids,
                  deidentified=deidentify, as_of=export.as_of.isoformat(), destination=destination)
    return ExportResult(files, fmt, export.patient_ids, deidentify, stem, made_at)


def export_records(
    engine: Engine,
    fmt: str,
    *,
    actor: str,
    role: str,
    patient_ids: list[str] | None = None,
    deidentify: bool = False,
    now: datetime | None = None,
    pseudonymiser: Pseudonymiser | None = None,
    destination: str = DOWNLOAD,
) -> ExportResult:
    """The records of some patients (default everyone) as import-format csv files or an Excel workbook.

    The csv files re-import into an empty database and reproduce the same records (see
    `ketawatch.exports.tables` for the one exception: quoted formula-like free text).
    """
    _check_format(fmt, RECORD_FORMATS)
    _allowed_or_audited(engine, actor=actor, role=role, deidentify=deidentify, what="records", fmt=fmt,
                        patient_ids=patient_ids)
    now = now or datetime.now(timezone.utc)
    tz = get_settings().clinic_timezone
    if patient_ids is not None:
        known = set(patients_frame(engine, patient_ids)["patient_id"].astype(str))
        missing = [p for p in patient_ids if p not in known]
        if missing:
            raise patient_not_found(engine, missing)
    records = load_records(engine, patient_ids)
    real_ids = records.patients["patient_id"].astype(str).tolist()
    stem, made_at = _several_patients("records", deidentify, now)
    export_day = now.astimezone(get_settings().tz).date()
    reviews = alert_reviews_frame(engine, patient_ids)
    corrections = corrections_of(engine, patient_ids, records.patients)[0] if fmt == "xlsx" else None
    if deidentify:
        pseudonymiser = (pseudonymiser or Pseudonymiser.from_settings(engine)).keeping_order(
            patient_times(engine, patient_ids), tz)
        records = deidentify_records(records, pseudonymiser, on=export_day, tz=tz)
        reviews = deidentify_reviews(reviews, pseudonymiser, tz=tz)
        corrections = deidentified_corrections(corrections, pseudonymiser, tz) if corrections is not None else None
    if fmt == "csv":
        files = import_format_files(records, tz=tz)
    else:
        from ketawatch.risk import assess, level_history

        # Shifts are backwards only, so assessing the shifted records as of the real export day
        # sees exactly each patient's records up to their own shifted export day.
        levels = assess(records, as_of=export_day, tz=tz)
        if deidentify:
            levels = levels.drop(columns=["as_of"])
        history = level_history(records, tz=tz)
        sheets = workbook_sheets(records, tz=tz, reviews=reviews, levels=levels, history=history)
        sheets["corrections"] = corrections_sheet(corrections, tz)  # as in one patient's workbook: never passed off as first records
        files = {f"{stem}.xlsx": workbook_bytes(sheets, made_at, deidentified=deidentify)}
    record_export(engine, actor=actor, role=role, what="records", fmt=fmt, patient_ids=real_ids, deidentified=deidentify,
                  selection="all" if patient_ids is None else "selected", destination=destination)
    return ExportResult(files, fmt, real_ids, deidentify, stem, made_at)


__all__ = [
    "CASELOAD_FORMATS",
    "ExportResult",
    "PATIENT_FORMATS",
    "RECORD_FORMATS",
    "UnknownFormat",
    "export_caseload",
    "export_patient",
    "export_records",
]
