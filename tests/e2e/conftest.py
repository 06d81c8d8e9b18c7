"""Browser end-to-end fixtures: a demo database, the real app as `ketawatch serve` runs it, and Debian's Chromium.

The server and the browser start once per test module (Playwright must stop before another
module starts its own); each test gets a fresh browser context, so a fresh Streamlit session,
signed in as the demo clinician. Screenshots go to tests/artifacts/.
"""

from __future__ import annotations

import shutil

import pytest
from browser_support import sign_in

from tests.access_support import serve, stop

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync", "--disable-quic"]


@pytest.fixture(scope="module")
def demo_db_url(tmp_path_factory) -> str:
    """A demo database built once per module through the lead's demo builder (the real importer)."""
    from ketawatch.demo import build_demo
    from store.db import make_engine, upgrade

    url = f"sqlite:///{tmp_path_factory.mktemp('e2e') / 'demo.db'}"
    engine = make_engine(url)
    upgrade(engine)
    build_demo(engine)
    engine.dispose()
    return url


@pytest.fixture(scope="module")
def app_url(demo_db_url, tmp_path_factory):
    """The dashboard served as `ketawatch serve` serves it (same command and settings) on a free port."""
    if shutil.which("chromium") is None:
        pytest.fail("Chromium is not installed: the browser tests need Debian's chromium (apt-get install chromium)")
    proc, base = serve(demo_db_url, tmp_path_factory.mktemp("e2e-log") / "streamlit.log")
    yield base
    stop(proc)


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium driven by Playwright (no `playwright install`)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, app_url):
    """A fresh browser session signed in as the demo clinician, on the caseload."""
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    pg = context.new_page()
    pg.set_default_timeout(30000)
    sign_in(pg, app_url)
    yield pg
    context.close()
