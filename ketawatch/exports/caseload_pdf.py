"""The team-meeting caseload PDF: every amber and red patient, worst first, with why and the last review."""

from __future__ import annotations

import pandas as pd

from ketawatch.exports.casefile import CaseloadExport
from ketawatch.exports.pdf_layout import DISCLAIMER, LEVEL_PRINT, ReviewPDF, local_time_text


def _cell(value) -> str:
    if value is None or value is pd.NA or (not isinstance(value, str) and pd.isna(value)):
        return ""
    return str(value)


def caseload_pdf(export: CaseloadExport, *, tz: str) -> bytes:
    """The caseload summary as PDF bytes (landscape, one block per patient)."""
    generated = f"Generated {local_time_text(export.generated_at, tz)} by {export.generated_by}"
    pdf = ReviewPDF(title="Caseload review", subject=f"as of {export.as_of.isoformat()}", generated=generated,
                    deidentified=export.deidentified, made_at=export.generated_at, orientation="L")
    pdf.add_page()
    pdf.set_font("DejaVu", "B", 15)
    pdf.cell(0, 8, f"Caseload review: amber and red patients as of {export.as_of.isoformat()}", new_x="LMARGIN", new_y="NEXT")
    counts = export.counts
    pdf.paragraph(
        f"{counts.get('red', 0)} red, {counts.get('amber', 0)} amber, {counts.get('green', 0)} green. "
        f"{generated}.", size=9,
    )
    if export.deidentified:
        pdf.paragraph("De-identified: pseudonyms instead of names and ids; each patient's dates are shifted by its own "
                      "constant offset, so dates of different patients cannot be compared.", size=7.5, style="I", height=3.6)
    pdf.paragraph(DISCLAIMER, size=7.5, style="I", height=3.6)
    pdf.ln(2)
    rows = export.rows
    if rows.empty:
        pdf.paragraph("No patient is amber or red.", size=10, style="B")
        return pdf.finish()
    table_rows, shading, shading_start = [], [], []
    for r in rows.itertuples(index=False):
        words, dots, _ = LEVEL_PRINT.get(r.level, (r.level, "", 255))
        name = r.patient_id if export.deidentified else (f"{_cell(r.display_name)}\n{r.patient_id}" if _cell(r.display_name) else r.patient_id)
        since = pd.Timestamp(r.level_since).strftime("%Y-%m-%d") if pd.notna(r.level_since) else ""
        if pd.notna(r.last_review_at):
            review = f"{pd.Timestamp(r.last_review_at):%Y-%m-%d} by {_cell(r.last_review_by)}: {_cell(r.last_review_action).replace('_', ' ')} (saw {_cell(r.last_review_level)})"
        else:
            review = "never reviewed"
        if bool(r.needs_review):
            review += "\nNEW: needs review"
        # One table row per reason: a row cannot break across pages, and a patient with many
        # reasons in one row would not fit on a page at all. Each later row repeats only the id.
        lines = [f"\u2022 {x.text} ({x.rule_id})" for x in r.reasons] or [""]
        table_rows.append([name, f"{dots} {r.level.upper()}", since, _cell(r.clinician), lines[0], review])
        table_rows += [[r.patient_id, "", "", "", line, ""] for line in lines[1:]]
        shading += [len(shading_start) % 2 == 0] * len(lines)
        shading_start.append(r.patient_id)
    pdf.data_table(["Patient", "Level", "Since", "Clinician", "Reasons (observations)", "Last review"], table_rows,
                   [38, 22, 20, 26, 120, pdf.usable_width - 226], size=7.5, shaded=shading)
    return pdf.finish()
