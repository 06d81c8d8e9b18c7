"""Download buttons for case-review exports on the patient and caseload pages.

A file is built only when asked ("Prepare"), under a progress indicator, then offered for
download; building it writes the export's audit line. Reviewers can only make de-identified
exports: the option is locked on here, and `ketawatch.exports` refuses an identified export for
their role whatever the page sends.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import pandas as pd
import streamlit as st
from sqlalchemy import Engine

from dashboard import data
from dashboard.auth import account_check_for_later
from dashboard.ui import md_escape
from ketawatch.exports import ExportRefused, PatientNotFound, export_caseload, export_patient, must_deidentify
from ketawatch.exports.audit import record_download_refused
from store.settings import get_settings

PATIENT_CHOICES = {
    "pdf": "PDF case review",
    "csv": "CSV files in the import format (zip)",
    "xlsx": "Excel workbook",
    "fhir": "FHIR R4B bundle (JSON)",
}
CASELOAD_CHOICES = {"pdf": "PDF for the team meeting", "csv": "CSV"}
_RESULT_KEY = "export_panel_result"
_DONE_KEY = "export_panel_downloaded"


def _today() -> date:
    return pd.Timestamp.now(tz=get_settings().tz).date()


def _deidentify_choice(user, key: str) -> bool:
    """The de-identify tick box; locked on for roles that may only export de-identified data."""
    locked = must_deidentify(user.role)
    ticked = st.checkbox(
        "De-identify (pseudonym, shifted dates, age band; no names, notes or staff names)",
        value=locked,
        disabled=locked,
        key=key,
        help="Reviewers can only export de-identified data." if locked else (
            "Pseudonymised, not anonymous: the same pseudonyms and shifts every time, and sex, indication, doses and "
            "vitals kept. Share it as you would share pseudonymised clinical data (for example a case review with "
            "colleagues outside the care team, under your clinic's data-sharing rules)."),
    )
    return True if locked else bool(ticked)


@dataclass(frozen=True)
class PreparedFile:
    """A file built for download by a page other than the exports (the audit trail's CSV), as an export result offers it."""

    name: str
    data: bytes
    mime: str

    def download(self) -> tuple[str, bytes, str]:
        return self.name, self.data, self.mime


@dataclass(frozen=True)
class Prepared:
    """A built export waiting for its Download click: the options it was built with, the file, and whom it is about."""

    params: tuple
    name: str
    content: bytes
    mime: str
    patient_ids: tuple[str, ...] = ()


def offer_file(slot: str, params: tuple, build, spinner: str, *, user) -> None:
    """'Prepare' builds the file (and writes its audit line) under a progress box; the download button then offers it.

    Nothing is built, and so nothing is at a download address, until someone asks for it: a file
    built on every page view would be downloadable without its audit line.
    """
    results = st.session_state.setdefault(_RESULT_KEY, {})
    if st.button("Prepare export", key=f"{slot}-prepare", icon=":material/description:"):
        st.session_state.get(_DONE_KEY, {}).pop(slot, None)
        with st.status(spinner, expanded=False) as status:
            try:
                result = build()
            except (ExportRefused, PatientNotFound, ValueError) as exc:
                status.update(label="Export refused", state="error")
                message = str(exc.args[0] if exc.args else exc)
                st.error(message + ("; tick 'De-identify'" if getattr(exc, "deidentified_would_do", False) else ""))
                results.pop(slot, None)
                return
            name, content, mime = result.download()
            results[slot] = Prepared(params, name, content, mime, tuple(getattr(result, "patient_ids", ())))
            status.update(label=f"Ready: {md_escape(name)}", state="complete")
    prepared = results.get(slot)
    if prepared and prepared.params == params:
        name, mime = prepared.name, prepared.mime
        # Handed over only when clicked (a callable), and forgotten then: a file given to the button as bytes sat at
        # its /media address, which asks for no sign-in, for as long as the button was on the page (security review).
        # The click starts no run ("ignore"): a run started by it could end, and drop the callable, before the
        # browser asked for the file, and under load the download then never came (a browser test, twice in a full
        # run). The page forgets the file when it is handed over; the next action takes the button away.
        st.download_button(f"Download {md_escape(name)}",
                           data=_hand_over(slot, prepared, account_check_for_later(user), _refusal_to_audit(user.username)),
                           file_name=name,
                           mime=mime, key=f"{slot}-download", icon=":material/download:", on_click="ignore")
    elif prepared:
        st.caption("The options changed since the file was prepared; prepare it again.")
    done = st.session_state.get(_DONE_KEY, {}).get(slot)
    if done and not prepared:
        st.caption(f"Downloaded {md_escape(done)}. For another copy, prepare it again (each one is audited).")


def _refusal_to_audit(username: str) -> Callable[[str, tuple, str], None]:
    """Writes a refused hand-over to the audit trail (file name, patients, why), from outside any script run."""
    engine = data.engine()

    def write(name: str, patient_ids: tuple, why: str) -> None:
        record_download_refused(engine, actor=username, file_name=name, patient_ids=patient_ids, why=why)

    return write


def _hand_over(slot: str, prepared: Prepared, still_allowed: Callable[[], str | None],
               audit_refusal: Callable[[str, tuple, str], None] | None = None):
    """The download's data, given once, when the browser asks for it: from then on the page keeps no copy.

    It runs outside any script run (Streamlit calls it on the click), so it changes the session's own dicts, not
    `st.session_state`, which it may not use there. A second click gets no second copy of one audited export
    (code review): Streamlit keeps the callable until the next run, so it says to prepare the file again. Nor does
    an account disabled, demoted or given a new password since the file was prepared (`still_allowed`); that refusal
    is audited (`audit_refusal`), since the export's own line, written when the file was built, says it left.
    """
    results = st.session_state.setdefault(_RESULT_KEY, {})
    done = st.session_state.setdefault(_DONE_KEY, {})
    name, kept, patient_ids = prepared.name, [prepared.content], prepared.patient_ids

    def give() -> bytes:
        refused = still_allowed()
        if refused:
            if audit_refusal is not None:
                audit_refusal(name, patient_ids, refused)
            raise RuntimeError(f"not handed over: {refused}")
        if results.get(slot) is prepared:  # not a file prepared again meanwhile
            results.pop(slot, None)
        done[slot] = name
        if not kept:
            raise RuntimeError("already downloaded; prepare the file again for another copy (each is audited)")
        return kept.pop()

    return give


def patient_exports(engine: Engine, user, patient_id: str) -> None:
    """The patient page's export panel: PDF, import-format CSV, Excel or FHIR, identified or not."""
    slot = f"export-patient-{patient_id}"
    with st.expander("Export case review", icon=":material/ios_share:"):
        fmt = st.selectbox("Format", list(PATIENT_CHOICES), format_func=PATIENT_CHOICES.get, key=f"{slot}-format")
        left, right = st.columns(2)
        start = left.date_input("From (optional)", value=None, key=f"{slot}-from", format="YYYY-MM-DD")
        end = right.date_input("To (level assessed as of this date)", value=_today(), key=f"{slot}-to", format="YYYY-MM-DD")
        deidentify = _deidentify_choice(user, f"{slot}-deidentify")
        if start and end and start > end:
            st.warning("'From' is after 'To'.")
            return
        params = (fmt, start, end, deidentify, user.username, user.role)
        words = {"pdf": "Drawing the charts and building the PDF…", "fhir": "Building and validating the FHIR bundle…"}
        offer_file(
            slot,
            params,
            lambda: export_patient(engine, patient_id, fmt, actor=user.username, role=user.role, actor_name=user.display_name,
                                   deidentify=deidentify, start=start, end=end),
            words.get(fmt, "Preparing the files…"),
            user=user,
        )
        st.caption("Every export is recorded in the audit trail. KetaWatch supports clinical judgement and does not diagnose.")


def caseload_exports(engine: Engine, user) -> None:
    """The caseload page's export panel: amber and red patients under care (and recent PHQ-9 question 9) as PDF or CSV."""
    slot = "export-caseload"
    with st.expander("Export for the team meeting", icon=":material/ios_share:"):
        fmt = st.selectbox("Format", list(CASELOAD_CHOICES), format_func=CASELOAD_CHOICES.get, key=f"{slot}-format")
        as_of = st.date_input("Levels as of", value=_today(), key=f"{slot}-as-of", format="YYYY-MM-DD")
        deidentify = _deidentify_choice(user, f"{slot}-deidentify")
        params = (fmt, as_of, deidentify, user.username, user.role)
        offer_file(
            slot,
            params,
            lambda: export_caseload(engine, fmt, actor=user.username, role=user.role, actor_name=user.display_name,
                                    deidentify=deidentify, as_of=as_of),
            "Assessing the caseload and building the file…",
            user=user,
        )
        st.caption("Lists every amber and red patient under care (active or paused), and anyone who answered PHQ-9 "
                   "question 9 above 'not at all' in the last 14 days, with level, since when, reasons and the last "
                   "review. Audited.")
