"""The patient page in a real browser (Debian's Chromium through Playwright), timed until its Plotly charts are drawn.

The dashboard runs as `ketawatch serve` runs it (`ketawatch.served.start_dashboard`) on a free
port against the bench database; the browser signs in once through the sign-in form, opens the patient from the
caseload, then repeatedly goes back to the caseload and times the click on "Patient" in the
navigation until every chart of the page has its SVG. The floor draws the same Plotly figures
(as the real page sent them) with Plotly.newPlot in an already loaded blank page.
"""

from __future__ import annotations

import json
import re
import shutil
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import plotly

from ketawatch.served import start_dashboard, stop_dashboard

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync", "--disable-quic"]
IDLE = "[data-testid=stApp][data-test-script-state=notRunning]"
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
DRAWN = """n => [...document.querySelectorAll('.js-plotly-plot')].filter(e => e.querySelector('.main-svg')).length >= n"""
NO_CHARTS = "() => document.querySelectorAll('.js-plotly-plot').length === 0"
DRAW_FLOOR = """async figures => {
    const root = document.getElementById('root');
    for (const el of root.children) { Plotly.purge(el); }
    root.innerHTML = '';
    for (const f of figures) {
        const div = document.createElement('div');
        root.appendChild(div);
        await Plotly.newPlot(div, f.data, f.layout, {displaylogo: false, responsive: true});
    }
    return root.querySelectorAll('.main-svg').length;
}"""


@dataclass
class BrowserTimes:
    """Median seconds until the patient page's charts are drawn, and of drawing the same figures bare."""

    patient_page: float
    floor: float


def _settle(page, pause_ms: int = 300) -> None:
    """Wait until Streamlit has finished the run the last action started."""
    page.wait_for_timeout(pause_ms)
    page.wait_for_selector(IDLE)
    page.wait_for_timeout(100)
    page.wait_for_selector(IDLE)
    if page.locator("[data-testid=stException]").count():
        raise SystemExit("the dashboard showed an error in the browser")


def _nav(page, title: str):
    return page.get_by_test_id("stSidebarNav").get_by_text(title, exact=True)


def _sign_in_and_open(page, base: str, username: str, password: str, patient_id: str) -> None:
    page.goto(base)
    _settle(page, 1000)
    page.get_by_label("Username", exact=True).fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()
    _settle(page, 1000)
    page.get_by_role("heading", name="Caseload").wait_for()
    box = page.get_by_label("Open a patient", exact=False).first
    box.click()
    page.keyboard.type(patient_id)
    page.get_by_role("option").filter(has_text=patient_id).first.click()
    _settle(page)
    page.get_by_role("button", name="Open patient page").click()


def time_patient_page(url: str, username: str, password: str, patient_id: str, figures: list[str], repeats: int,
                      log: Path) -> BrowserTimes:
    """Median seconds from clicking "Patient" in the navigation until all `len(figures)` charts are drawn."""
    from playwright.sync_api import sync_playwright

    chromium_path = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium_path).exists():
        raise SystemExit("Chromium is not installed: apt-get install -y chromium (or run with --no-browser)")
    n = len(figures)
    proc, base = start_dashboard(url, log)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
            context = browser.new_context(viewport={"width": 1440, "height": 1000})
            page = context.new_page()
            page.set_default_timeout(120_000)
            _sign_in_and_open(page, base, username, password, patient_id)
            page.wait_for_function(DRAWN, arg=n, polling="raf")
            _settle(page)
            times = []
            for _ in range(repeats):
                _nav(page, "Caseload").click()
                page.get_by_role("heading", name="Caseload").wait_for()
                page.wait_for_function(NO_CHARTS, polling="raf")
                _settle(page)
                start = time.perf_counter()
                _nav(page, "Patient").click()
                page.wait_for_function(DRAWN, arg=n, polling="raf")
                times.append(time.perf_counter() - start)
                _settle(page)
                if not page.get_by_role("heading", name=re.compile(re.escape(patient_id))).count():
                    raise SystemExit(f"the browser's patient page did not show {patient_id}")
            floor = _floor(context, [json.loads(f) for f in figures], repeats)
            browser.close()
    finally:
        stop_dashboard(proc)
    return BrowserTimes(statistics.median(times), floor)


def _floor(context, figures: list[dict], repeats: int) -> float:
    page = context.new_page()
    page.set_content("<html><body style='width:1200px'><div id='root'></div></body></html>")
    page.add_script_tag(path=str(PLOTLY_JS))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        drawn = page.evaluate(DRAW_FLOOR, figures)
        times.append(time.perf_counter() - start)
        if drawn < len(figures):
            raise SystemExit("the floor page did not draw every figure")
    page.close()
    return statistics.median(times)
