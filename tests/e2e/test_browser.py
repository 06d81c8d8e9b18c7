"""The dashboard in a real browser, as a clinician uses it: triage, review a red patient, log records.

Run with `pytest -m browser tests/e2e`. Screenshots land in tests/artifacts/ for a human look.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from sqlalchemy import func, select
from sqlmodel import Session

from browser_support import settle, shot, sign_in
from store.db import make_engine
from store.models import AlertReview, CheckIn, InfusionSession

pytestmark = pytest.mark.browser


def _count(url: str, table) -> int:
    engine = make_engine(url)
    try:
        with Session(engine) as db:
            return int(db.execute(select(func.count()).select_from(table)).scalar_one())
    finally:
        engine.dispose()


def _red_patient(url: str) -> str:
    from ketawatch.risk import assess
    from store.queries import load_records

    engine = make_engine(url)
    try:
        levels = assess(load_records(engine), tz="Europe/London")
    finally:
        engine.dispose()
    return str(levels.loc[levels["level"] == "red", "patient_id"].iloc[0])


def _go(page, title: str) -> None:
    page.get_by_test_id("stSidebarNav").get_by_text(title, exact=True).click()
    settle(page)


def _pick(page, label: str, text: str) -> None:
    """Choose an option of a Streamlit selectbox by typing into it."""
    box = page.get_by_label(label, exact=False).first
    box.click()
    page.keyboard.type(text)
    page.get_by_role("option").filter(has_text=text).first.click()
    settle(page)


def _session_form(page, patient: str, dose: float | None = None) -> None:
    """The Log session page with a patient chosen (and a dose typed)."""
    _go(page, "Log session")
    _pick(page, "Patient *", patient)
    if dose is not None:
        _number(page, "Dose (mg) *", dose)


def _save_session(page) -> None:
    page.get_by_role("button", name="Save session").click()
    settle(page)


def _refused(page) -> bool:
    """The form's "Nothing was saved" list is on the page, and a toast says so wherever the page is scrolled."""
    return (page.get_by_test_id("stAlert").filter(has_text="Nothing was saved").count() == 1
            and page.get_by_test_id("stToast").filter(has_text="Nothing was saved").count() == 1)


def _number(page, label: str, value) -> None:
    field = page.get_by_label(label, exact=True)
    field.fill(str(value))
    field.press("Enter")
    settle(page)


def test_caseload_then_red_patient_charts(page, demo_db_url):
    red = _red_patient(demo_db_url)
    assert page.get_by_text("supports clinical judgement; it does not diagnose").count() >= 1
    metrics = page.get_by_test_id("stMetric")
    try:  # the first page of a new server on a busy machine: wait for the counts, and say what showed instead
        metrics.first.wait_for(timeout=30000)
    except PlaywrightTimeout:
        pytest.fail("no level counts on the caseload; the page said: " + page.inner_text("[data-testid=stMain]")[:800])
    assert metrics.count() >= 3
    shot(page, "01_caseload")
    _pick(page, "Open a patient", red)
    page.get_by_role("button", name="Open patient page").click()
    settle(page, pause_ms=1500)
    page.get_by_role("heading", name=re.compile(re.escape(red))).wait_for()
    page.locator(".js-plotly-plot").first.wait_for()
    assert page.locator(".js-plotly-plot").count() >= 8
    assert page.get_by_text("Red: review now").count() >= 1
    shot(page, "02_patient_red")
    # Back to the caseload, and into the top (worst) patient by selecting its row in the table.
    _go(page, "Caseload")
    grid = page.get_by_test_id("stDataFrame").first
    box = grid.bounding_box()
    page.mouse.click(box["x"] + 16, box["y"] + 36 + 18)
    settle(page, pause_ms=1500)
    page.get_by_role("heading", name="Patient", exact=True).wait_for()
    page.locator(".js-plotly-plot").first.wait_for()
    _go(page, "Caseload")
    page.get_by_role("heading", name="Caseload").wait_for()
    page.wait_for_timeout(1000)
    assert page.get_by_role("heading", name="Caseload").count() == 1, "returning to the caseload stays there"


def test_the_app_asks_nothing_of_any_other_server(browser, app_url):
    """A clinic network may have no internet, and a third party would see every page load: only the app is asked.

    The tab icon used to come from fonts.gstatic.com (a Material icon as `page_icon`)."""
    from urllib.parse import urlparse

    from browser_support import sign_in

    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    sign_in(page, app_url)
    for title in ("Patient", "Alerts", "Log session"):
        _go(page, title)
    context.close()
    assert asked and {urlparse(url).netloc for url in asked} == {urlparse(app_url).netloc}, sorted(set(asked))[:5]


def test_a_patient_link_opened_before_sign_in_leads_to_that_patient_after_it(browser, app_url):
    from browser_support import sign_in

    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    page.goto(f"{app_url}/patient?patient=KW-0003")
    settle(page, pause_ms=1000)
    assert page.get_by_text("KW-0003").count() == 0  # nothing before sign-in
    page.get_by_label("Username", exact=True).fill("demo-clinician")
    page.get_by_label("Password", exact=True).fill("demo-password")
    page.get_by_role("button", name="Sign in").click()
    settle(page, pause_ms=1500)
    page.get_by_role("heading", name=re.compile("KW-0003")).wait_for()
    assert "/patient" in page.url and "patient=KW-0003" in page.url
    context.close()


def test_signing_out_takes_the_page_list_away_and_signing_in_brings_it_back(browser, app_url):
    """The last user's pages stayed in the sidebar of the sign-in page after signing out (failed on the old code)."""
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    page.goto(app_url)
    settle(page, pause_ms=1000)
    assert page.get_by_test_id("stSidebarNav").count() == 0  # nothing before sign-in
    sign_in(page, app_url)
    assert page.get_by_test_id("stSidebarNav").get_by_text("Log session", exact=True).count() == 1
    page.get_by_role("button", name="Sign out").click()
    settle(page, pause_ms=1000)
    page.get_by_text("You are signed out.").wait_for()
    assert page.get_by_test_id("stSidebarNav").count() == 0
    assert page.get_by_text("Log session", exact=True).count() == 0 and page.get_by_text("Alerts", exact=True).count() == 0
    page.get_by_label("Username", exact=True).fill("demo-reviewer")
    page.get_by_label("Password", exact=True).fill("demo-password")
    page.get_by_role("button", name="Sign in").click()
    settle(page, pause_ms=1000)
    nav = page.get_by_test_id("stSidebarNav")
    nav.get_by_text("Caseload", exact=True).wait_for()
    assert nav.get_by_text("Log session", exact=True).count() == 0  # the reviewer's own list, not the last user's
    context.close()


def test_an_edit_reason_is_not_saved_again_with_the_next_change(page, demo_db_url):
    """The reason box kept its text after a save, and the next change was recorded with the old reason."""
    from store.models import Patient

    def version() -> int:
        engine = make_engine(demo_db_url)
        try:
            with Session(engine) as db:
                return db.get(Patient, "KW-0006").version
        finally:
            engine.dispose()

    _go(page, "Patients and plans")
    page.get_by_role("tab", name="Edit a patient").click()
    _pick(page, "Patient to edit", "KW-0006")
    before = version()
    interval = page.get_by_label("Planned interval between maintenance sessions (days)", exact=True).last  # the edit tab's
    interval.fill("30")
    interval.press("Enter")
    settle(page)
    page.get_by_label("Reason for the change *", exact=True).fill("Interval agreed at the team meeting")
    page.get_by_role("button", name="Save changes").click()
    settle(page)
    assert version() == before + 1
    assert page.get_by_label("Reason for the change *", exact=True).input_value() == ""
    interval = page.get_by_label("Planned interval between maintenance sessions (days)", exact=True).last  # the edit tab's
    interval.fill("21")
    interval.press("Enter")
    settle(page)
    page.get_by_role("button", name="Save changes").click()
    settle(page)
    assert version() == before + 1, "a second change needs its own reason"


def test_after_amending_a_dose_the_chosen_record_shows_the_new_dose(page, demo_db_url):
    """The record picker kept the old words of the chosen session after its dose was amended (nurse's review), so the
    correction looked as if it had not taken."""
    from store.queries import sessions_frame

    engine = make_engine(demo_db_url)
    try:
        last = sessions_frame(engine, ["KW-0021"]).sort_values("session_at").iloc[-1]
    finally:
        engine.dispose()
    old, new = float(last["dose_mg"]), float(last["dose_mg"]) - 3
    _go(page, "Patient")
    _pick(page, "Choose a patient", "KW-0021")
    page.get_by_text("Correct or void a record").click()
    settle(page)
    picker = page.get_by_test_id("stSelectbox").filter(has_text="Record")
    picker.get_by_role("combobox").click()
    page.get_by_role("option").filter(has_text=f"{old:g} mg").first.click()
    settle(page)
    assert f"{old:g} mg" in picker.get_by_role("combobox").input_value()
    page.get_by_role("button", name="Amend this session").click()
    settle(page)
    dose = page.get_by_label("Dose (mg)", exact=False).first
    dose.fill(f"{new:g}")
    dose.press("Tab")
    page.get_by_label("Reason for the amendment", exact=False).fill("Wrong dose typed")
    page.get_by_role("button", name="Save amendment").click()
    settle(page)
    assert page.get_by_test_id("stAlert").filter(has_text="Amendment saved").count() == 1
    shown = picker.get_by_role("combobox").input_value()
    assert f"{new:g} mg" in shown and f"{old:g} mg" not in shown, shown
    assert page.get_by_role("button", name="Amend this session").count() == 1, "the same record stays chosen"


def test_values_typed_into_a_session_survive_a_look_at_another_page(page, demo_db_url):
    """Streamlit drops a page's widget values when it is left; the form keeps them without re-saving them on its own
    page (which sent each stored value back to the browser on every run and could undo a box being typed into)."""
    _session_form(page, "KW-0021", dose=40)
    _number(page, "Systolic BP before (mmHg)", 131)
    _number(page, "Peak CADSS total", 7)
    _go(page, "Caseload")
    _go(page, "Log session")
    values = [page.get_by_label(label, exact=True).input_value()
              for label in ("Dose (mg) *", "Systolic BP before (mmHg)", "Peak CADSS total")]
    assert values == ["40.0", "131", "7"], values


def test_a_table_offers_no_download_of_its_own_so_every_export_is_audited(page, demo_db_url):
    """The table toolbar's "Download as CSV" gave a reviewer the identified caseload with no audit line."""
    page.get_by_test_id("stDataFrame").first.hover()
    page.wait_for_timeout(800)
    buttons = [b.get_attribute("aria-label") for b in page.locator("[data-testid=stElementToolbar] button").all()]
    assert "Search" in buttons, buttons  # the toolbar is there ...
    assert "Download as CSV" not in buttons, buttons  # ... without its own export


def test_log_session_then_find_it_on_the_patient_page(page, demo_db_url):
    before = _count(demo_db_url, InfusionSession)
    _go(page, "Log session")
    _pick(page, "Patient *", "KW-0001")
    weight = page.get_by_label("Weight (kg)", exact=True)
    assert weight.input_value() != "", "weight is pre-filled from the last session"
    _number(page, "Dose (mg) *", 41.5)
    assert page.get_by_text("mg/kg", exact=False).count() >= 1
    _number(page, "Systolic BP before (mmHg)", 128)
    page.get_by_label("Notes", exact=True).fill("Browser test session <b>not bold</b>")
    page.get_by_label("Notes", exact=True).press("Tab")
    settle(page)
    shot(page, "03_log_session_filled")
    page.get_by_role("button", name="Save session").click()
    settle(page)
    saved = page.get_by_test_id("stAlert").filter(has_text="Session saved for KW-0001")
    saved.wait_for()
    when = re.search(r"at (\d{4}-\d\d-\d\d \d\d:\d\d)", saved.inner_text()).group(1)
    assert _count(demo_db_url, InfusionSession) == before + 1
    shot(page, "04_log_session_saved")
    page.get_by_role("button", name="Open the patient's page").click()
    settle(page, pause_ms=1500)
    page.get_by_role("heading", name=re.compile("KW-0001")).wait_for()
    sessions = page.get_by_test_id("stDataFrame").first
    sessions.scroll_into_view_if_needed()
    cells = sessions.locator("[role=gridcell]")
    assert cells.filter(has_text=when).count() >= 1, f"the new session at {when} is in the sessions table"
    shot(page, "05_patient_after_session")


def test_invalid_session_shows_error_and_saves_nothing(page, demo_db_url):
    before = _count(demo_db_url, InfusionSession)
    _session_form(page, "KW-0002")
    _number(page, "Systolic BP before (mmHg)", 90)
    _number(page, "Diastolic BP before (mmHg)", 120)
    _save_session(page)
    assert _refused(page)
    assert page.get_by_text("Dose is required").count() >= 2  # in the summary and beside the field
    assert page.get_by_text("must be below the systolic").count() >= 2
    assert _count(demo_db_url, InfusionSession) == before
    shot(page, "06_log_session_invalid")


def test_a_typed_vital_outside_its_range_is_refused_in_words_not_dropped(page, demo_db_url):
    """A number box with a min and max makes the browser drop a typed value outside them, and the session then
    saved with the vital 'not recorded'. The boxes have no limits; the store refuses the value and names its range."""
    before = _count(demo_db_url, InfusionSession)
    _session_form(page, "KW-0003", dose=40)
    _number(page, "SpO₂ before (%)", 9)
    assert page.get_by_label("SpO₂ before (%)", exact=True).input_value() == "9"
    _save_session(page)
    assert _refused(page)
    assert page.get_by_text(re.compile(r"Oxygen saturation before dosing.*50-100%")).count() >= 1
    assert _count(demo_db_url, InfusionSession) == before
    shot(page, "06b_log_session_vital_out_of_range")


def test_a_typed_future_year_is_refused_not_replaced_by_the_time_shown_before(page, demo_db_url):
    """With a max on the box, a year typed past it was dropped and the session saved at the earlier time shown."""
    before = _count(demo_db_url, InfusionSession)
    _session_form(page, "KW-0003", dose=40)
    when = page.get_by_test_id("stDateTimeInput").first
    when.locator("[data-type=year]").click()
    page.keyboard.type("2030")
    page.keyboard.press("Tab")
    settle(page)
    assert when.locator("input").first.input_value().startswith("2030-")
    _save_session(page)
    assert _refused(page)
    assert page.get_by_text(re.compile(r"Session date and time, 2030-.*, is in the future")).count() >= 1
    assert _count(demo_db_url, InfusionSession) == before


def test_checkin_in_patient_mode(page, demo_db_url):
    before = _count(demo_db_url, CheckIn)
    _go(page, "Log check-in")
    _pick(page, "Patient *", "KW-0003")
    shot(page, "07a_checkin_clinician_view")
    page.get_by_role("button", name="Hand the tablet to the patient").click()
    settle(page)
    page.get_by_role("heading", name="Your check-in").wait_for()
    assert page.get_by_test_id("stSidebarNav").count() == 0, "patient mode hides the navigation"
    sidebar = page.get_by_test_id("stSidebar")  # and its empty staff sidebar (it stayed open until the answers were sent)
    assert sidebar.count() == 0 or sidebar.get_attribute("data-collapsed") == "true"
    page.get_by_test_id("stButtonGroup").first.get_by_role("radio", name="3", exact=True).click()
    settle(page)
    page.get_by_text("Not at all").first.click()
    settle(page)
    shot(page, "07_patient_mode_form")
    page.get_by_role("button", name="Send my answers").click()
    settle(page)
    page.get_by_text("Thank you, your answers are saved").wait_for()
    assert _count(demo_db_url, CheckIn) == before + 1
    shot(page, "08_patient_mode_thanks")
    page.get_by_text("For staff: return to KetaWatch").click()
    page.get_by_label("Password for demo-clinician", exact=True).fill("wrong-password")
    page.get_by_role("button", name="Return to the clinician view").click()
    settle(page)
    assert page.get_by_test_id("stSidebarNav").count() == 0, "a wrong password keeps patient mode"
    page.get_by_label("Password for demo-clinician", exact=True).fill("demo-password")
    page.get_by_role("button", name="Return to the clinician view").click()
    settle(page)
    page.get_by_role("heading", name="Log check-in").wait_for()
    assert page.get_by_test_id("stSidebarNav").count() == 1


def test_alerts_acknowledge_and_patients_page(page, demo_db_url):
    before = _count(demo_db_url, AlertReview)
    _go(page, "Alerts")
    shot(page, "09_alerts")
    action = page.get_by_label("Action taken for ").first
    action.scroll_into_view_if_needed()  # as a person scrolls to it first: the list closes if the page scrolls
    settle(page)
    action.click()
    page.get_by_role("option", name="Discussed with patient").click()
    settle(page)
    note = page.get_by_label(re.compile(r"^Note for KW-\d+( \*| \(required for 'Other'\))$")).first  # required (*) for red
    note.fill("Discussed the early requests; keep the plan.")
    note.press("Tab")
    settle(page)
    page.get_by_role("button", name=re.compile(r"^Acknowledge KW-")).first.click()
    settle(page)
    assert _count(demo_db_url, AlertReview) == before + 1
    page.get_by_text("recorded").first.wait_for()
    _go(page, "Patients and plans")
    page.get_by_role("tab", name="Edit a patient").click()
    settle(page)
    _pick(page, "Patient to edit", "KW-0005")
    shot(page, "10_patients_edit")


def test_dark_theme_patient_page(browser, app_url, demo_db_url):
    """The same red patient with the browser asking for dark mode: the app follows it and stays readable."""
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, color_scheme="dark")
    page = context.new_page()
    try:
        sign_in(page, app_url)
        background = page.evaluate("() => getComputedStyle(document.querySelector('[data-testid=stApp]')).backgroundColor")
        channels = [int(v) for v in re.findall(r"\d+", background)[:3]]
        assert sum(channels) < 150, f"dark background expected, got {background}"
        _pick(page, "Open a patient", _red_patient(demo_db_url))
        page.get_by_role("button", name="Open patient page").click()
        settle(page, pause_ms=1500)
        page.locator(".js-plotly-plot").first.wait_for()
        shot(page, "11_patient_red_dark")
    finally:
        context.close()
