"""The patient and caseload PDFs, read back with pypdf, and one page rendered to an image with pdftoppm."""

from __future__ import annotations

import io
import shutil
import subprocess

import pandas as pd
import pytest
from pypdf import PdfReader

from ketawatch.exports import export_caseload, export_patient
from ketawatch.exports.figures import PRINTED_CHARTS, case_figures, draw
from ketawatch.exports.pdf_layout import IDENTIFIED_MARK, UNPRINTABLE_FOOTER, ReviewPDF
from store.queries import audit_frame
from tests.test_export_support import CLINICIAN, NOW, SECRET_NAME, SECRET_PID, load_sample, pdf_text


@pytest.fixture
def sample(sqlite_engine, tmp_path):
    load_sample(sqlite_engine, tmp_path)
    return sqlite_engine


def _pdf(result) -> bytes:
    (name, data), = result.files.items()
    assert name.endswith(".pdf") and data.startswith(b"%PDF")
    return data


def test_patient_pdf_has_every_section_page_numbers_and_the_unicode_name(sample, tmp_path):
    data = _pdf(export_patient(sample, SECRET_PID, "pdf", actor=CLINICIAN, role="clinician", actor_name="Dr Quillfeather", now=NOW))
    reader = PdfReader(io.BytesIO(data))
    pages = len(reader.pages)
    assert pages >= 3
    text = pdf_text(data)
    assert SECRET_NAME in text and SECRET_PID in text
    for section in ("Patient and plan", "Dependence-risk level", "Level history", "Trends", "Side effects", "Sessions",
                    "Check-ins", "Notes", "Alert reviews", "Reviewer sign-off"):
        assert section in text, section
    assert "KetaWatch supports clinical judgement and does not diagnose" in text
    assert f"Page 1 of {pages}" in text and f"Page {pages} of {pages}" in text
    assert "Generated 2026-11-22 12:00 (Europe/London) by Dr Quillfeather (dr-quillfeather, clinician)" in text
    for page in reader.pages:  # the footer: who and when on one line, the handling mark whole on the next
        lines = page.extract_text().splitlines()
        assert lines[-3].startswith("Generated 2026-11-22 12:00") and lines[-2] == IDENTIFIED_MARK, lines[-3:]
    assert "History of substance use" in text and "0.50 mg/kg" in text
    assert "early_requests_repeated" in text  # a reason, with its rule id
    assert "[amber on its own] The patient asked for an earlier session" in " ".join(text.split())
    # how much record the reason rests on: the three sessions asked for early (the sample's last three)
    assert "Evidence quoted: sessions on 3 days, 14 Mar to 19 Mar 2025 (5 days)" in " ".join(text.split())
    assert "How the reasons add up" in text
    assert "Nausea" in text and "2025-03-19 14:00" in text  # side-effect summary and the session table
    assert "Nausea (severe)" in text  # side effects in words in the session table
    assert "REVIEW-NOTE-QQQ" in text and "discussed with patient" in text
    line = audit_frame(sample, action="export").iloc[0]
    assert (line["actor"], line["entity_key"], line["detail"]["format"]) == (CLINICIAN, "patient_summary", "pdf")
    # poppler renders the page without a browser (.ci/run installs poppler-utils); a missing tool is a failure
    assert shutil.which("pdftoppm"), "pdftoppm not found: install poppler-utils (apt-get install poppler-utils)"
    path = tmp_path / "case.pdf"
    path.write_bytes(data)
    subprocess.run(["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", str(path), str(tmp_path / "page")], check=True, timeout=60)
    png = next(tmp_path.glob("page*.png"))
    assert png.read_bytes().startswith(b"\x89PNG") and png.stat().st_size > 10_000


def test_date_range_limits_the_tables_and_the_level_is_as_of_its_end(sample):
    data = _pdf(export_patient(sample, SECRET_PID, "pdf", actor=CLINICIAN, role="clinician", now=NOW,
                               start=__import__("datetime").date(2025, 3, 6), end=__import__("datetime").date(2025, 3, 12)))
    text = pdf_text(data)
    assert "Records from 6 Mar 2025 to 12 Mar 2025" in text
    assert "2025-03-07 10:30" in text and "2025-03-11 11:30" in text
    assert "2025-03-03 10:00" not in text and "2025-03-19 14:00" not in text
    assert "As of 2025-03-12" in text


def test_figures_render_the_dashboard_chart_descriptions_in_greys_only(sample):
    """Same charts as the screen, and no colour at all: meaning is carried by line style, marker, hatch and words."""
    import numpy as np
    from PIL import Image

    from ketawatch.charts import patient_chart_specs
    from store.queries import load_records

    specs = patient_chart_specs(load_records(sample, [SECRET_PID]), SECRET_PID, tz="Europe/London")
    figures = case_figures(specs)
    assert [f.title for f in figures] == [s.title for s in specs if s.key in PRINTED_CHARTS]
    assert {"Craving", "Warning signs", "Days between sessions", "Severity of Dependence Scale"} <= {f.title for f in figures}
    printed = [spec for spec in specs if spec.key in PRINTED_CHARTS]
    for spec, figure in zip(printed, figures):
        drawn = draw(spec)
        drawn.canvas.draw()
        pixels = np.asarray(drawn.canvas.buffer_rgba())[..., :3].astype(int)  # as drawn, before the PNG
        assert (pixels[..., 0] == pixels[..., 1]).all() and (pixels[..., 1] == pixels[..., 2]).all(), figure.title
        with Image.open(io.BytesIO(figure.png)) as image:  # so one grey channel in the PNG loses nothing
            assert image.mode == "L" and len(figure.png) > 5000
            assert (np.asarray(image).astype(int) == pixels[..., 0]).all(), figure.title


def test_the_printed_warning_sign_grid_prints_every_answer_0_too(sample):
    """On a hatched red period a light square without its 0 was hard to tell from no square, 'not answered'
    (clinician's browser review): as on screen, each answered cell carries its digit."""
    from ketawatch.charts import patient_chart_specs
    from store.queries import load_records

    spec = next(s for s in patient_chart_specs(load_records(sample, [SECRET_PID]), SECRET_PID, tz="Europe/London")
                if s.key == "warning_signs")
    answers = [int(v) for row in spec.heatmap.z for v in row if v == v]
    assert 0 in answers and {1, 2} & set(answers), "the sample has 'not at all' and other answers"
    printed = sorted(int(t.get_text()) for t in draw(spec).axes[0].texts if t.get_text().isdigit())  # not "RED"
    assert printed == sorted(answers)


def test_the_printed_level_history_steps_from_level_to_level(sample):
    """Green on one date and red on the next is drawn as a step: a sloped line would pass through amber."""
    from ketawatch.charts import patient_chart_specs
    from store.queries import load_records

    spec = next(s for s in patient_chart_specs(load_records(sample, [SECRET_PID]), SECRET_PID, tz="Europe/London")
                if s.key == "levels")
    drawn = draw(spec)
    lines = {line.get_label(): line.get_drawstyle() for line in drawn.axes[0].get_lines()}
    assert lines["Level on each record date"] == "steps-post"


def test_short_level_periods_go_unnamed_rather_than_run_together_and_the_legend_names_the_hatching():
    """An amber week just before a red one printed 'AMBERRED' above the chart."""
    import datetime as dt

    from ketawatch.charts import ChartSpec, LevelPeriod, Series

    day = dt.date(2026, 1, 1)
    at = lambda n: day + dt.timedelta(days=n)  # noqa: E731
    spec = ChartSpec(key="craving", title="Craving", y_label="0-10", x_range=(at(0), at(365)),
                     series=(Series("Craving", (at(0), at(365)), (1.0, 2.0)),),
                     levels=(LevelPeriod(at(100), at(104), "amber"), LevelPeriod(at(105), at(200), "red"),
                             LevelPeriod(at(201), at(300), "amber")))
    drawn = draw(spec)
    names = [t for t in drawn.axes[0].texts if t.get_text() in ("AMBER", "RED")]
    assert [t.get_text() for t in names] == ["RED", "AMBER"]  # the 5-day amber spell is too narrow to name
    import numpy as np

    gaps = np.diff([t.get_position()[0] for t in names])
    assert (gaps >= 0.07 * 365).all()
    legend = [t.get_text() for t in drawn.legends[0].get_texts()] if drawn.legends else \
        [t.get_text() for t in drawn.axes[0].get_legend().get_texts()]
    assert "Amber level" in legend and "Red level" in legend


@pytest.mark.parametrize(("before", "after", "shown"), [
    (72, 80, "72/80"), (57, None, "57/\u2013"), (None, 87, "\u2013/87"), (None, None, ""), (72.0, float("nan"), "72/\u2013"),
])
def test_a_lone_heart_rate_or_spo2_says_whether_it_was_before_or_after(before, after, shown):
    """One writing for the PDF and the patient page's table."""
    from store.vocabulary import reading_pair

    assert reading_pair(before, after) == shown


def test_caseload_pdf_lists_the_flagged_patient_with_reasons_and_review(sample):
    data = _pdf(export_caseload(sample, "pdf", actor=CLINICIAN, role="clinician", now=NOW))
    text = pdf_text(data)
    assert SECRET_NAME in text and "early_requests_repeated" in text
    assert "2025-03-20 by dr-quillfeather" in text
    # of the level: a question 9 follow-up in the reasons column is not one (clinician's browser pass)
    assert "Last review of the level" in " ".join(text.split())
    assert "KetaWatch supports clinical judgement and does not diagnose" in text
    assert "Page 1 of" in text


CJK_NAME = "王小明"
SESSION_NOTE_DEFAULT = "Tolerated well"
#: A character DejaVu Sans lacks and matplotlib's STIX General has (U+231A WATCH), so a fallback can be tested offline.
STIX_ONLY = "\u231a"


def _export_named(engine, tmp_path, name: str, note: str = SESSION_NOTE_DEFAULT) -> bytes:
    from store.importer import import_folder
    from store.validation import Validator
    from tests.store_support import CHECKIN, PATIENT, SESSION, write_folder
    from tests.test_export_support import TZ

    folder = write_folder(tmp_path / "named", patients=[dict(PATIENT, patient_id="KW-NAMED", display_name=name)],
                          sessions=[dict(SESSION, patient_id="KW-NAMED", notes=note)],
                          checkins=[dict(CHECKIN, patient_id="KW-NAMED")])
    import_folder(engine, folder, actor="test-import", validator=Validator(now=NOW, tz=TZ))
    return _pdf(export_patient(engine, "KW-NAMED", "pdf", actor=CLINICIAN, role="clinician", now=NOW))


def test_a_name_the_font_cannot_print_shows_as_boxes_where_it_is_read_and_is_kept_out_of_the_logs(
        sqlite_engine, tmp_path, caplog, capfd):
    """Export review: the characters vanished ('Test' alone read as the name) while the end note spoke of boxes."""
    caplog.set_level("DEBUG")
    data = _export_named(sqlite_engine, tmp_path, f"{CJK_NAME} Test", note="Brought a \U0001f9ea kit")
    text = pdf_text(data)
    assert "Case review: \u25a1\u25a1\u25a1 Test (KW-NAMED)" in text and "Brought a \u25a1 kit" in text
    assert "4 characters in this document could not be printed with the fonts on this server and show as \u25a1" in \
        " ".join(text.split()) and "KETAWATCH_PDF_FALLBACK_FONTS" in text
    for page in PdfReader(io.BytesIO(data)).pages:  # the name is in every page's header, so every footer says it
        assert UNPRINTABLE_FOOTER in " ".join(page.extract_text().split())
    logged = " ".join(r.getMessage() for r in caplog.records) + "".join(capfd.readouterr())
    assert not any(c in logged for c in CJK_NAME + "\U0001f9ea") and "\\u738b" not in logged  # nor their codes
    assert "missing the following glyphs" not in logged


def test_a_tab_or_other_control_character_in_a_note_prints_as_a_space(sqlite_engine, tmp_path):
    """Export review: a tab was left out and joined the words either side ('=2+2TAB')."""
    text = pdf_text(_export_named(sqlite_engine, tmp_path, "Tab Test", note="=2+2\tTAB"))
    assert "=2+2 TAB" in text and "could not be printed" not in text and UNPRINTABLE_FOOTER not in text
    # the store refuses other control characters now; a record saved before that rule may still hold one
    pdf = ReviewPDF(title="Case review", subject="Test (KW-1)", generated="Generated by t", deidentified=False,
                    made_at=None)
    pdf.add_page()
    pdf.paragraph("vertical\x0btab, unit\x1fseparator, next\x85line")
    assert "vertical tab, unit separator, next line" in pdf_text(pdf.finish())


def test_only_the_pages_holding_an_unprintable_character_say_so_in_their_footer():
    pdf = ReviewPDF(title="Case review", subject="Test (KW-1)", generated="Generated by t", deidentified=False,
                    made_at=None)
    pdf.add_page()
    pdf.paragraph("Nothing to box here")
    pdf.add_page()
    pdf.data_table(["Note"], [["\u738b"]], [1])
    pages = [" ".join(page.extract_text().split()) for page in PdfReader(io.BytesIO(pdf.finish())).pages]
    assert [UNPRINTABLE_FOOTER in page for page in pages] == [False, True]
    assert "1 character in this document could not be printed" in pages[1]


def test_a_fallback_font_prints_what_dejavu_lacks(sqlite_engine, tmp_path, monkeypatch):
    import matplotlib

    from store.settings import get_settings

    stix = f"{matplotlib.get_data_path()}/fonts/ttf/STIXGeneral.ttf"
    monkeypatch.setenv("KETAWATCH_PDF_FALLBACK_FONTS", stix)
    get_settings.cache_clear()
    try:
        text = pdf_text(_export_named(sqlite_engine, tmp_path, f"Ada {STIX_ONLY} Lovelace"))
    finally:
        monkeypatch.delenv("KETAWATCH_PDF_FALLBACK_FONTS")
        get_settings.cache_clear()
    assert f"Ada {STIX_ONLY} Lovelace" in text and "could not be printed" not in text


ARABIC_NAME = "محمد علي"  # Muhammad Ali


def test_a_right_to_left_name_prints_joined_in_reading_order(sqlite_engine, tmp_path):
    """Export review: unshaped, an Arabic name printed its letters reversed and unjoined, and read back reversed."""
    data = _export_named(sqlite_engine, tmp_path, f"{ARABIC_NAME} Test")
    text = pdf_text(data)
    assert ARABIC_NAME in text and ARABIC_NAME[::-1] not in text and "Test (KW-NAMED)" in " ".join(text.split())
    assert "could not be printed" not in text
    path = tmp_path / "arabic.pdf"
    path.write_bytes(data)
    poppler = subprocess.run(["pdftotext", str(path), "-"], check=True, capture_output=True, text=True, timeout=60).stdout
    assert "محمد" in poppler and "دمحم" not in poppler


def test_latin_text_is_laid_out_as_without_shaping(sample, monkeypatch):
    """Shaping is for the texts that need it: a Latin-only document is the same file as unshaped (shaping it all
    kerned every line and cost about 50% more time)."""
    shaped = _pdf(export_patient(sample, SECRET_PID, "pdf", actor=CLINICIAN, role="clinician", now=NOW))
    monkeypatch.setattr(ReviewPDF, "_shape_if_needed", lambda self, text: None)
    unshaped = _pdf(export_patient(sample, SECRET_PID, "pdf", actor=CLINICIAN, role="clinician", now=NOW))
    assert shaped == unshaped


def test_a_fallback_font_that_is_not_there_is_refused_by_name(monkeypatch):
    from store.settings import SettingsInvalid, get_settings

    monkeypatch.setenv("KETAWATCH_PDF_FALLBACK_FONTS", "/no/such/NotoSansCJK.ttc")
    get_settings.cache_clear()
    with pytest.raises(SettingsInvalid) as refused:
        get_settings()
    assert refused.value.lines == ["setting KETAWATCH_PDF_FALLBACK_FONTS: no font file at /no/such/NotoSansCJK.ttc; "
                                   "give the full path of a .ttf, .otf or .ttc file"]


def test_a_patient_with_more_reasons_than_fit_on_a_page_still_prints_in_the_caseload(sample):
    """A row cannot break across pages: each reason is its own row, so a long list flows onto the next page."""
    from dataclasses import replace

    from ketawatch.exports.caseload_pdf import caseload_pdf
    from ketawatch.exports.casefile import Author, load_caseload

    export = load_caseload(sample, author=Author(CLINICIAN, None, "clinician"), now=NOW)
    first = export.rows.iloc[0]
    many = [replace(first["reasons"][0], text=f"Observation number {i}: " + "craving rose over several weeks; " * 4)
            for i in range(40)]
    rows = export.rows.copy()
    rows.at[rows.index[0], "reasons"] = many
    data = caseload_pdf(replace(export, rows=rows), tz="Europe/London")
    text = pdf_text(data)
    pages = [page.extract_text() for page in PdfReader(io.BytesIO(data)).pages]
    assert len(pages) >= 2
    assert all(f"Observation number {i}:" in text for i in range(40))
    continued = next(page for page in pages[1:] if "Observation number 39:" in page)
    assert str(first["patient_id"]) in continued  # a later page still says whose reasons they are
    # ... and how urgent: every continued row repeats the level beside the id
    rows_here = continued.count("Observation number")
    assert rows_here and continued.count(str(first["level"]).upper()) >= rows_here


def test_identified_pdfs_name_staff_as_colleagues_know_them_and_de_identified_ones_by_pseudonym(sample):
    """The caseload PDF said 'demo-clinician' where the screen says 'Demo Clinician (demo-clinician)' (clinician's
    browser pass)."""
    from ketawatch.accounts import create_user
    from ketawatch.exports import Pseudonymiser

    create_user(sample, username=CLINICIAN, display_name="Dr Quill Feather", role="clinician",
                password="amber kettle orchard ninety", actor="t")
    named = f"Dr Quill Feather ({CLINICIAN})"
    patient = " ".join(pdf_text(_pdf(export_patient(sample, SECRET_PID, "pdf", actor=CLINICIAN, role="clinician",
                                                    now=NOW))).split())
    caseload = " ".join(pdf_text(_pdf(export_caseload(sample, "pdf", actor=CLINICIAN, role="clinician",
                                                      now=NOW))).split())
    assert named in patient and named in caseload  # the alert review's reviewer, in each
    assert f"Responsible clinician {named}" in patient  # was the username alone (clinician's second review)
    hidden = " ".join(pdf_text(_pdf(export_caseload(sample, "pdf", actor=CLINICIAN, role="reviewer", deidentify=True,
                                                    now=NOW))).split())
    assert "Quill" not in hidden and CLINICIAN not in hidden
    assert Pseudonymiser.from_settings(sample).staff(CLINICIAN) in hidden


def test_the_meeting_file_lists_a_reliable_phq9_worsening_whatever_the_level_as_the_caseload_page_counts_it(sample):
    """The caseload page counted a relapse beside a green level; the team-meeting PDF and CSV left it out (code
    review)."""
    import io as _io

    from ketawatch.caseload import caseload_table
    from ketawatch.exports import Pseudonymiser
    from ketawatch.risk import assess
    from store.queries import load_records

    from store.records import add_checkin
    from store.validation import Validator

    lowest = load_records(sample).checkins.query("patient_id == 'KW-PLAIN-2'")["phq9"].min()
    add_checkin(sample, {"patient_id": "KW-PLAIN-2", "reported_at": (NOW - pd.Timedelta(days=1)).isoformat(),
                         "craving": 1, "phq9": min(27, lowest + 8)}, actor=CLINICIAN, validator=Validator(now=NOW))
    records = load_records(sample)
    table = caseload_table(records, assess(records, as_of=NOW.date(), tz="Europe/London"), tz="Europe/London",
                           today=NOW.date(), review_again_days=28)
    worse = table[table["phq9_worse"] & table["status"].isin(["active", "paused"])]
    assert len(worse) and "green" in set(worse["level"]), table[["patient_id", "level", "phq9_latest"]]
    text = " ".join(pdf_text(_pdf(export_caseload(sample, "pdf", actor=CLINICIAN, role="clinician", now=NOW))).split())
    section = text[text.index("PHQ-9 reliably worse (mood, which the level does not cover)"):]
    for r in worse.itertuples():
        assert r.patient_id in section and f"{r.phq9_latest:g} (" in section
    hidden = " ".join(pdf_text(_pdf(export_caseload(sample, "pdf", actor=CLINICIAN, role="reviewer", deidentify=True,
                                                    now=NOW))).split())
    hidden_section = hidden[hidden.index("PHQ-9 reliably worse"):]
    key = Pseudonymiser.from_settings(sample)
    assert all(key.patient(pid) in hidden_section and pid not in hidden for pid in worse["patient_id"])
    rows = pd.read_csv(_io.BytesIO(next(iter(export_caseload(sample, "csv", actor=CLINICIAN, role="clinician",
                                                             now=NOW).files.values()))), dtype=str)
    listed = table.set_index("patient_id").loc[rows["patient_id"], "phq9_worse"]
    assert rows["phq9_reliably_worse"].tolist() == listed.map({True: "yes", False: "no"}).tolist()


def test_the_caseload_export_holds_the_patients_under_care_as_the_caseload_and_alerts_do(sample):
    """A discharged patient still red on old records is not for the team meeting (the PDF says one was left out);
    a paused one is."""
    from ketawatch.exports.caseload_pdf import caseload_pdf
    from ketawatch.exports.casefile import Author, load_caseload
    from store.records import amend_patient
    from store.validation import Validator

    before = load_caseload(sample, author=Author(CLINICIAN, None, "clinician"), now=NOW)
    gone = str(before.rows.iloc[0]["patient_id"])
    amend_patient(sample, gone, {"status": "paused"}, actor=CLINICIAN, reason="travelling", expected_version=1,
                  validator=Validator(now=NOW))
    paused = load_caseload(sample, author=Author(CLINICIAN, None, "clinician"), now=NOW)
    assert gone in paused.rows["patient_id"].astype(str).tolist() and paused.discharged == 0
    amend_patient(sample, gone, {"status": "discharged"}, actor=CLINICIAN, reason="treatment ended", expected_version=2,
                  validator=Validator(now=NOW))
    after = load_caseload(sample, author=Author(CLINICIAN, None, "clinician"), now=NOW)
    assert gone not in after.rows["patient_id"].astype(str).tolist() and after.discharged == 1
    assert sum(after.counts.values()) == sum(before.counts.values()) - 1
    assert "(1 discharged amber or red patient not included)" in " ".join(
        pdf_text(caseload_pdf(after, tz="Europe/London")).split())
    # A discharged green patient would not have been listed anyway: not counted as left out.
    from store.queries import patients_frame

    green = next(p for p in patients_frame(sample)["patient_id"] if p not in set(before.rows["patient_id"].astype(str)))
    amend_patient(sample, green, {"status": "discharged"}, actor=CLINICIAN, reason="treatment ended", expected_version=1,
                  validator=Validator(now=NOW))
    assert load_caseload(sample, author=Author(CLINICIAN, None, "clinician"), now=NOW).discharged == 1


def _safety_checkin(engine, patient_id: str, day: str, notes: str, *, entered=NOW) -> None:
    from store.records import add_checkin
    from store.validation import Validator
    from tests.store_support import CHECKIN

    add_checkin(engine, dict(CHECKIN, patient_id=patient_id, reported_at=f"{day}T10:00", phq9="19", notes=notes),
                actor=CLINICIAN, validator=Validator(now=entered))


def test_a_phq9_question_9_answer_leads_page_one_of_the_case_review(sample):
    """Not only in the Notes table near the end: the answer that needs a clinician the same day comes first."""
    from ketawatch.safety_answers import UNSTANDARD_WORDING, safety_line
    from tests.test_export_support import OTHER_PID

    standard = safety_line(["More than half the days"])
    _safety_checkin(sample, OTHER_PID, "2026-11-20", f"{standard}\nSlept badly.")
    identified = export_patient(sample, OTHER_PID, "pdf", actor=CLINICIAN, role="clinician", now=NOW)
    name, data, _ = identified.download()
    first_page = " ".join(PdfReader(io.BytesIO(data)).pages[0].extract_text().split())
    assert "answered above 'not at all' in this period" in first_page
    assert f"2026-11-20 10:00: {standard}" in first_page
    assert first_page.index("PHQ-9 question 9") < first_page.index("Patient and plan")
    # beside the level, where mood stands, whatever the level
    assert "Mood does not raise this level: PHQ-9 19 (moderately severe) on 20 Nov 2026" in first_page

    deidentified = export_patient(sample, OTHER_PID, "pdf", actor=CLINICIAN, role="reviewer", deidentify=True, now=NOW)
    first_page = " ".join(PdfReader(io.BytesIO(deidentified.download()[1])).pages[0].extract_text().split())
    assert standard in first_page and "2026-11-20" not in first_page  # the form's own words; the date is shifted
    # A line a clinician typed could name someone: a de-identified export shows fixed words instead.
    _safety_checkin(sample, OTHER_PID, "2026-11-21", "[Safety] spoke with her sister Philippa Quist")
    deidentified = export_patient(sample, OTHER_PID, "pdf", actor=CLINICIAN, role="reviewer", deidentify=True, now=NOW)
    text = " ".join(pdf_text(deidentified.download()[1]).split())
    assert UNSTANDARD_WORDING in text and "Philippa" not in text and "Quist" not in text


def test_the_caseload_export_lists_any_patient_with_a_recent_question_9_answer_whatever_the_level(sample):
    import pandas as pd

    from ketawatch.safety_answers import safety_line
    from tests.test_export_support import OTHER_PID

    before = export_caseload(sample, "csv", actor=CLINICIAN, role="clinician", now=NOW)
    rows = pd.read_csv(io.BytesIO(next(iter(before.files.values()))), dtype=str)
    assert OTHER_PID not in rows["patient_id"].tolist()  # green, so not on the list ...
    _safety_checkin(sample, OTHER_PID, "2026-11-01", safety_line(["Several days"]))  # 21 days ago: not recent
    _safety_checkin(sample, OTHER_PID, "2026-11-20", safety_line(["Nearly every day"]))
    after = export_caseload(sample, "csv", actor=CLINICIAN, role="clinician", now=NOW)
    rows = pd.read_csv(io.BytesIO(next(iter(after.files.values()))), dtype=str).set_index("patient_id")
    assert rows.loc[OTHER_PID, "level"] == "green"  # ... until question 9 is answered
    assert rows.loc[OTHER_PID, "phq9_question_9"] == f"2026-11-20: {safety_line(['Nearly every day'])}"
    assert rows.drop(index=OTHER_PID)["phq9_question_9"].isna().all()
    from store.records import amend_patient

    amend_patient(sample, OTHER_PID, {"status": "discharged"}, actor=CLINICIAN, reason="moved away", expected_version=1)
    gone = export_caseload(sample, "csv", actor=CLINICIAN, role="clinician", now=NOW)
    rows = pd.read_csv(io.BytesIO(next(iter(gone.files.values()))), dtype=str).set_index("patient_id")
    assert OTHER_PID in rows.index  # discharged after answering it: still someone to call, as the banner says
    pdf = export_caseload(sample, "pdf", actor=CLINICIAN, role="clinician", now=NOW)
    text = " ".join(pdf_text(pdf.download()[1]).split())
    assert "PHQ-9 question 9 answered above 'not at all', not yet followed up or followed up in the last 14 days" in text
    assert f"{OTHER_PID}: 2026-11-20" in text and "Several days" not in text
    deidentified = export_caseload(sample, "csv", actor=CLINICIAN, role="reviewer", deidentify=True, now=NOW)
    rows = pd.read_csv(io.BytesIO(next(iter(deidentified.files.values()))), dtype=str)
    said = rows["phq9_question_9"].dropna().tolist()
    assert len(said) == 1 and "Nearly every day" in said[0] and "2026-11-20" not in said[0]


def test_an_exported_question_9_answer_says_whether_it_was_followed_up_by_whom_and_what_was_done(sample):
    """As the dashboard's banner does: a team meeting reading the export must not call a patient twice, or never."""
    from datetime import timedelta

    import pandas as pd

    from ketawatch.safety_answers import safety_line
    from store.records import add_alert_review
    from store.vocabulary import SAFETY_FOLLOW_UP
    from tests.test_export_support import OTHER_PID

    def caseload_row(**options) -> pd.Series:
        result = export_caseload(sample, "csv", actor=CLINICIAN, now=NOW, **options)
        rows = pd.read_csv(io.BytesIO(next(iter(result.files.values()))), dtype=str)
        return rows[rows["phq9_question_9"].notna()].squeeze(axis=0)

    def first_page(**options) -> str:
        data = export_patient(sample, OTHER_PID, "pdf", actor=CLINICIAN, now=NOW, **options).download()[1]
        return " ".join(PdfReader(io.BytesIO(data)).pages[0].extract_text().split())

    _safety_checkin(sample, OTHER_PID, "2026-11-20", safety_line(["Several days"]))
    assert "Follow-up: none recorded" in first_page(role="clinician")
    assert caseload_row(role="clinician")["phq9_question_9_follow_up"] == "none recorded"

    add_alert_review(sample, patient_id=OTHER_PID, level="green", reasons=[SAFETY_FOLLOW_UP], action="discussed_with_patient",
                     note="Phoned her; safety plan agreed with Philippa", actor=CLINICIAN, now=NOW + timedelta(minutes=5))
    done = f"2026-11-22 12:05 by {CLINICIAN}, discussed with patient: Phoned her; safety plan agreed with Philippa"
    assert f"Follow-up: {done}" in first_page(role="clinician")
    text = " ".join(pdf_text(export_patient(sample, OTHER_PID, "pdf", actor=CLINICIAN, role="clinician", now=NOW).download()[1]).split())
    assert "PHQ-9 question 9 follow-up (not a review of the level)" in text  # the alert reviews table, not its marker id
    assert f"{CLINICIAN} - PHQ-9 question 9 follow-up" in text  # and no level in the Level column: it reviewed none
    assert SAFETY_FOLLOW_UP not in text
    assert caseload_row(role="clinician")["phq9_question_9_follow_up"] == done
    caseload_text = " ".join(pdf_text(export_caseload(sample, "pdf", actor=CLINICIAN, role="clinician", now=NOW).download()[1]).split())
    assert f"Follow-up: {done}" in caseload_text

    # De-identified: the time shifted like the patient's, the clinician by pseudonym, and no note (free text).
    page = first_page(role="reviewer", deidentify=True)
    said = page.split("Follow-up: ", 1)[1]
    assert ", discussed with patient" in said and " by S-" in said
    assert "Philippa" not in page and CLINICIAN not in page and "2026-11-22" not in page
    row = caseload_row(role="reviewer", deidentify=True)
    assert " by S-" in row["phq9_question_9_follow_up"] and "Philippa" not in row.to_string()
    assert not row["phq9_question_9_follow_up"].startswith("2026-11-22")

    # A paper form dated before the follow-up but typed in after it waits for its own, and the caseload shows that one.
    _safety_checkin(sample, OTHER_PID, "2026-11-19", safety_line(["Nearly every day"]), entered=NOW + timedelta(hours=1))
    row = caseload_row(role="clinician")
    assert row["phq9_question_9"].startswith("2026-11-19: ") and row["phq9_question_9_follow_up"] == "none recorded"
    lines = first_page(role="clinician")
    assert lines.count("Follow-up: none recorded") == 1 and lines.count(f"Follow-up: {done}") == 1


def test_a_long_name_is_shortened_in_the_page_header_and_the_patient_id_stays(sample):
    from store.records import amend_patient
    from store.validation import Validator
    from tests.test_export_support import OTHER_PID

    amend_patient(sample, OTHER_PID, {"display_name": ("Maximiliana " * 16).strip()}, actor=CLINICIAN, reason="full name",
                  expected_version=1, validator=Validator(now=NOW))
    data = export_patient(sample, OTHER_PID, "pdf", actor=CLINICIAN, role="clinician", now=NOW).download()[1]
    for page in PdfReader(io.BytesIO(data)).pages:
        header = page.extract_text().splitlines()[0]
        assert header.startswith("KetaWatch") and header.endswith(f"\u2026 ({OTHER_PID})"), header


def test_a_review_note_taller_than_a_page_goes_on_in_further_rows_and_none_of_it_is_lost(sample):
    """The Alerts form takes 2,000 characters; in a narrow column that is taller than a page, which stopped the export."""
    from store.records import add_alert_review
    from tests.test_export_support import OTHER_PID

    note = " ".join(f"w{i:03d}" for i in range(400))  # 2,000 characters, every word findable
    add_alert_review(sample, patient_id=OTHER_PID, level="red", reasons=["craving_high"], action="other", note=note,
                     actor=CLINICIAN, now=NOW)
    data = export_patient(sample, OTHER_PID, "pdf", actor=CLINICIAN, role="clinician", now=NOW).download()[1]
    words = pdf_text(data).split()
    assert all(f"w{i:03d}" in words for i in range(400))
    assert "(continued)" in words


def test_the_caseload_csv_says_its_date_and_splits_reasons_as_their_ids_split(sample):
    """Reasons are one per line (a reason's own words may hold '; '), each naming its rule among reason_ids."""
    import datetime as dt

    import pandas as pd

    result = export_caseload(sample, "csv", actor=CLINICIAN, role="clinician", now=NOW, as_of=dt.date(2025, 3, 21))
    rows = pd.read_csv(io.BytesIO(next(iter(result.files.values()))), dtype=str)
    assert len(rows) and set(rows["as_of"]) == {"2025-03-21"}
    for ids, reasons in zip(rows["reason_ids"], rows["reasons"]):
        named = [line.rsplit(" (", 1)[1].rstrip(")") for line in reasons.split("\n")]
        assert set(named) == set(ids.split(";")) and len(named) >= len(ids.split(";"))
    deidentified = export_caseload(sample, "csv", actor=CLINICIAN, role="reviewer", deidentify=True, now=NOW)
    assert "as_of" not in pd.read_csv(io.BytesIO(next(iter(deidentified.files.values()))), dtype=str).columns


def test_a_green_case_review_says_what_was_seen_but_not_counted(sample):
    """A craving of 9 beside a green level must say why it is green, in the identified and the de-identified PDF."""
    from store.records import add_checkin
    from store.validation import Validator
    from tests.store_support import CHECKIN
    from tests.test_export_support import OTHER_PID

    add_checkin(sample, dict(CHECKIN, patient_id=OTHER_PID, reported_at="2026-11-20T10:00", craving="9"),
                actor=CLINICIAN, validator=Validator(now=NOW))
    identified = " ".join(pdf_text(_pdf(export_patient(sample, OTHER_PID, "pdf", actor=CLINICIAN, role="clinician",
                                                       now=NOW))).split())
    assert "No rule raises the level as of this date; what was seen but not counted is below." in identified
    assert "Seen, not counted (recent observations the rules do not count, and what would count):" in identified
    assert "Craving 9 of 10 on 20 Nov 2026 (7 or more counts as high" in identified
    assert "the next check-in on or after 25 Nov 2026 decides; " in identified
    deidentified = " ".join(pdf_text(_pdf(export_patient(sample, OTHER_PID, "pdf", actor=CLINICIAN, role="reviewer",
                                                         deidentify=True, now=NOW))).split())
    assert "Craving 9 of 10 on " in deidentified and "20 Nov 2026" not in deidentified  # its date shifted as the records'
    secret = " ".join(pdf_text(_pdf(export_patient(sample, SECRET_PID, "pdf", actor=CLINICIAN, role="clinician",
                                                   now=NOW))).split())
    assert "History of substance use disorder yes (graded thresholds lowered to 75% of the clinic's" in secret


def test_the_case_review_says_how_recent_the_records_are_and_warns_when_nothing_is(sample):
    """The PDF said 'As of 2026-11-30' and 'as the latest PHQ-9 is' for records 8 weeks old (browser check)."""
    import datetime as dt

    from store.queries import checkins_frame, sessions_frame
    from tests.test_export_support import OTHER_PID

    newest = max(pd.to_datetime(sessions_frame(sample, [OTHER_PID])["session_at"]).max(),
                 pd.to_datetime(checkins_frame(sample, [OTHER_PID])["reported_at"]).max()).tz_convert("Europe/London")
    recent = " ".join(pdf_text(export_patient(sample, OTHER_PID, "pdf", actor=CLINICIAN, role="clinician", now=NOW,
                                              end=newest.date()).download()[1]).split())
    assert "Latest session " in recent and "Nothing recorded for" not in recent
    later = newest.date() + dt.timedelta(days=60)
    quiet = " ".join(pdf_text(export_patient(sample, OTHER_PID, "pdf", actor=CLINICIAN, role="clinician", now=NOW,
                                             end=later).download()[1]).split())
    assert f"Nothing recorded for 8 weeks: the level and the reasons are as of {newest.date().isoformat()}." in quiet


def test_the_pdf_says_where_the_level_shown_at_the_time_differs_from_the_replay(sqlite_engine):
    """A craving typed in wrongly showed amber on 14 Sep and was corrected on 16 Sep: the replay says green for that
    date, and the case review must still say what the screen showed (de-identified: on the shifted date)."""
    from tests.test_known_then import enter_a_craving_typo_corrected_later

    enter_a_craving_typo_corrected_later(sqlite_engine, "KT-1")
    text = " ".join(pdf_text(_pdf(export_patient(sqlite_engine, "KT-1", "pdf", actor=CLINICIAN, role="clinician",
                                                  now=NOW))).split())
    assert "Level as shown at the time" in text
    assert "2026-09-14 amber Craving rising · Craving drifting up (supporting) green" in text
    assert "2026-09-16 green" not in text.split("Level as shown at the time")[1]  # only the days that differ
    hidden = " ".join(pdf_text(_pdf(export_patient(sqlite_engine, "KT-1", "pdf", actor=CLINICIAN, role="clinician",
                                                    now=NOW, deidentify=True))).split())
    section = hidden.split("Level as shown at the time")[1]
    assert "amber Craving rising · Craving drifting up (supporting) green" in section and "2026-09-14" not in hidden


def test_the_level_history_and_the_alert_reviews_name_reasons_in_words_not_rule_ids(sample):
    """'craving_rising; craving_drift' could not be read in a clinician's case-review reading: the history and the
    reviews say the reasons in the caseload's few words; the reasons above still end with their rule ids."""
    text = " ".join(pdf_text(_pdf(export_patient(sample, SECRET_PID, "pdf", actor=CLINICIAN, role="clinician",
                                                  now=NOW))).split())
    history = text.split("Level history (first assessment and every change)")[1].split("Trends")[0]
    reviews = text.split("Alert reviews")[1].split("Reviewer sign-off")[0]
    from ketawatch.risk import RULE_IDS

    assert "Recent dose request (supporting)" in history and "Asked to come earlier, repeatedly" in reviews
    assert [rule_id for rule_id in RULE_IDS if rule_id in history + reviews] == []
    assert "(rule early_requests_repeated)" in text.split("Level history")[0]


def test_a_rule_id_alone_reads_as_the_caseload_words_it():
    from ketawatch.risk.reasons import rule_title

    assert rule_title("craving_rising") == "Craving rising"
    assert rule_title("dose_request_recent") == "Recent dose request (supporting)"
    assert rule_title("specific_sign_persistent") == "A warning sign, persistent"  # a review stores no sign


def test_the_check_in_table_lists_every_sign_its_burden_adds_up_with_its_weight(sample):
    """A burden of 2 stood beside an empty 'clearly or more' cell: the 'a little' answers it counts were not listed
    (clinician's case-review reading). Each row lists every sign answered, by answer, with its catalogue weight."""
    from ketawatch.exports.casefile import Author, load_patient_case
    from ketawatch.exports.pdf import checkin_rows

    case = load_patient_case(sample, SECRET_PID, author=Author(CLINICIAN, None, "clinician"), now=NOW)
    first, *_, last = checkin_rows(case)
    assert first[3:5] == ["2", "A little (1): Withdrawal from social activities \u00d71, Sleep disturbance \u00d71"]
    assert last[3:5] == ["10", "Clearly (2): Secrecy about ketamine use \u00d72, Tolerance \u00d72. "
                               "A little (1): Withdrawal from social activities \u00d71, Sleep disturbance \u00d71"]
    text = " ".join(pdf_text(_pdf(export_patient(sample, SECRET_PID, "pdf", actor=CLINICIAN, role="clinician",
                                                  now=NOW))).split())
    assert "times its catalogue weight (\u00d7), added up over the signs listed beside it" in text


def test_the_period_reads_as_a_clinician_says_it_and_a_de_identified_one_says_its_dates_are_shifted(sample):
    """'Records from first record to 2026-05-15' read awkwardly in a clinician's case-review reading."""
    from datetime import date

    from ketawatch.exports.casefile import Author, load_patient_case
    from ketawatch.exports.pdf import window_text

    def period(**kw) -> str:
        return window_text(load_patient_case(sample, SECRET_PID, author=Author(CLINICIAN, None, "clinician"), now=NOW, **kw))

    assert period() == "All records up to 22 Nov 2026"
    assert period(start=date(2025, 3, 6), end=date(2025, 3, 12)) == "Records from 6 Mar 2025 to 12 Mar 2025"
    assert period(deidentify=True) == "All records up to the day of export"  # never printed, shifted or not
    hidden = load_patient_case(sample, SECRET_PID, author=Author(CLINICIAN, None, "clinician"), now=NOW, deidentify=True,
                               start=date(2025, 3, 6), end=date(2025, 4, 1))
    assert hidden.end != date(2025, 4, 1)  # shifted like the records, and said to be
    assert window_text(hidden) == f"Records from {hidden.start.day} {hidden.start:%b %Y} to {hidden.end.day} " \
                                  f"{hidden.end:%b %Y} (shifted dates)"
    assert period(deidentify=True, start=date(2025, 3, 6)).endswith(" (shifted date) to the day of export")
    text = " ".join(pdf_text(_pdf(export_patient(sample, SECRET_PID, "pdf", actor=CLINICIAN, role="clinician", now=NOW,
                                                  deidentify=True, end=date(2025, 4, 1)))).split())
    assert f"All records up to {hidden.end.day} {hidden.end:%b %Y} (shifted date). Generated by" in text
