"""Case-review exports: patient PDF, caseload PDF/CSV, import-format CSV, Excel and FHIR, identified or not.

Modules, one job each: `service` (the entry points: role check, build, audit), `access` (who may
export what), `casefile` (gathers and de-identifies what an export shows), `deidentify`
(pseudonyms, date shifts, age bands), `tables` (CSV and Excel), `formula_injection` (text a
spreadsheet would run), `fhir` (R4B bundle), `figures` (print-ready charts), `pdf_layout`, `pdf`
and `caseload_pdf` (the documents), `audit` (the export's audit line).
"""

from ketawatch.exports.access import ExportRefused, check_export_allowed, must_deidentify
from ketawatch.exports.casefile import PatientNotFound
from ketawatch.exports.deidentify import Pseudonymiser
from ketawatch.exports.service import (
    CASELOAD_FORMATS,
    PATIENT_FORMATS,
    RECORD_FORMATS,
    ExportResult,
    UnknownFormat,
    export_caseload,
    export_patient,
    export_records,
)

__all__ = [
    "CASELOAD_FORMATS",
    "PATIENT_FORMATS",
    "RECORD_FORMATS",
    "ExportRefused",
    "ExportResult",
    "PatientNotFound",
    "Pseudonymiser",
    "UnknownFormat",
    "check_export_allowed",
    "export_caseload",
    "export_patient",
    "export_records",
    "must_deidentify",
]
