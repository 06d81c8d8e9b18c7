"""Who may export what, and the audit line every export writes."""

from __future__ import annotations

import pytest

from ketawatch.exports import ExportRefused, PatientNotFound, UnknownFormat, check_export_allowed, export_caseload, export_patient, export_records
from store.queries import audit_frame
from tests.test_export_support import CLINICIAN, NOW, REVIEWER, SECRET_PID, load_sample


@pytest.fixture
def sample(engine, tmp_path):
    load_sample(engine, tmp_path)
    return engine


def _exports(engine):
    return audit_frame(engine, action="export")


@pytest.mark.parametrize(
    ("build", "what", "fmt"),
    [
        (lambda e, **k: export_patient(e, SECRET_PID, "csv", **k), "patient_csv", "csv"),
        (lambda e, **k: export_patient(e, SECRET_PID, "fhir", **k), "patient_fhir", "fhir"),
        (lambda e, **k: export_caseload(e, "csv", **k), "caseload", "csv"),
        (lambda e, **k: export_records(e, "xlsx", **k), "records", "xlsx"),
    ],
)
@pytest.mark.parametrize("deidentify", [False, True])
def test_every_export_writes_one_audit_line(sample, build, what, fmt, deidentify):
    before = len(_exports(sample))
    result = build(sample, actor=CLINICIAN, role="clinician", deidentify=deidentify, now=NOW)
    lines = _exports(sample)
    assert len(lines) == before + 1
    line = lines.iloc[0]
    assert line["actor"] == CLINICIAN and line["entity_key"] == what
    detail = line["detail"]
    assert detail["format"] == fmt and detail["deidentified"] is deidentify and detail["role"] == "clinician"
    assert SECRET_PID in detail["patients"] and detail["patient_count"] == len(result.patient_ids)
    assert detail["destination"] == "dashboard download"  # the command line names its --out path instead
    if what.startswith("patient"):
        assert line["patient_id"] == SECRET_PID


@pytest.mark.parametrize(
    "build",
    [
        lambda e: export_patient(e, SECRET_PID, "pdf", actor=REVIEWER, role="reviewer", now=NOW),
        lambda e: export_caseload(e, "csv", actor=REVIEWER, role="reviewer", now=NOW),
        lambda e: export_records(e, "csv", actor=REVIEWER, role="reviewer", now=NOW),
    ],
)
def test_a_reviewer_is_refused_an_identified_export_and_the_refusal_is_audited(sample, build):
    """No file, no export line; the attempt itself is a line of its own (the command line left none: security review)."""
    from ketawatch.audit_trail import audit_lines

    before = len(_exports(sample))
    with pytest.raises(ExportRefused, match="reviewer may only make de-identified exports"):
        build(sample)
    assert len(_exports(sample)) == before
    refused = audit_lines(sample, actor=REVIEWER)
    refused = refused[refused["action"] == "export_refused"]
    assert len(refused) == 1
    detail = refused["detail"].iloc[0]
    assert detail["role"] == "reviewer" and "may only make de-identified exports" in detail["why"]
    # which export, and for whom: every patient reads as such, not as "0 patients"
    assert refused["entity_key"].iloc[0] in ("patient", "caseload", "records")
    if refused["entity_key"].iloc[0] == "patient":
        assert refused["patient_id"].iloc[0] == SECRET_PID and detail["patients"] == [SECRET_PID]
    else:
        assert detail["patients"] == "all"


def test_roles():
    check_export_allowed("admin", deidentify=False)
    check_export_allowed("clinician", deidentify=False)
    check_export_allowed("reviewer", deidentify=True)
    with pytest.raises(ExportRefused):
        check_export_allowed("reviewer", deidentify=False)
    with pytest.raises(ExportRefused, match="unknown role"):
        check_export_allowed("visitor", deidentify=True)


def test_unknown_patient_or_format_is_refused_without_an_audit_line(sqlite_engine, tmp_path):
    load_sample(sqlite_engine, tmp_path)
    with pytest.raises(PatientNotFound):
        export_patient(sqlite_engine, "NOBODY", "pdf", actor=CLINICIAN, role="clinician", now=NOW)
    with pytest.raises(PatientNotFound):
        export_records(sqlite_engine, "csv", actor=CLINICIAN, role="clinician", patient_ids=["NOBODY"], now=NOW)
    with pytest.raises(UnknownFormat):
        export_patient(sqlite_engine, SECRET_PID, "docx", actor=CLINICIAN, role="clinician", now=NOW)
    assert _exports(sqlite_engine).empty
