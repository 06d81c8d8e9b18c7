"""Signing in inside tests: accounts for each role, AppTests that start signed in, and a real server and browser."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from streamlit.testing.v1 import AppTest

from ketawatch import accounts
from ketawatch.accounts import create_user

REPO = Path(__file__).resolve().parents[1]
PASSWORD = "correct-horse-battery"
#: Every page file of the dashboard: the access-control walk covers each one.
PAGES = sorted(p.name for p in (REPO / "dashboard" / "views").glob("*.py") if p.name != "__init__.py")
ROLE_USERS = {"admin": "ada", "clinician": "cleo", "reviewer": "rhea"}
APP_TIMEOUT = 30


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch):
    """Argon2id at its smallest cost, so tests can hash and verify often through the same code path."""
    monkeypatch.setattr(accounts, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


@pytest.fixture
def real_hashes(cheap_hashes, monkeypatch):
    """The production hasher (argon2-cffi's default cost), for the test that checks it."""
    monkeypatch.setattr(accounts, "_hasher", PasswordHasher())


def make_user(engine, role: str, username: str | None = None, display_name: str | None = None):
    """An account with the test password (hashed by the real code path)."""
    username = username or ROLE_USERS[role]
    return create_user(engine, username=username, display_name=display_name or username.title(), role=role,
                       password=PASSWORD, actor="test-setup")


def sign_in(at: AppTest, user) -> AppTest:
    """Put the signed-in user where dashboard/auth.py keeps it, as the auth contract allows tests to."""
    at.session_state["user"] = {"username": user.username, "display_name": user.display_name, "role": user.role}
    at.session_state["last_activity"] = time.time()
    return at


def app_from(script: str) -> AppTest:
    """An AppTest of a small script (source text) with a timeout that allows for a cold start."""
    return AppTest.from_string(script, default_timeout=APP_TIMEOUT)


#: A page that shows one patient's sessions and check-ins with the amend/void actions and history.
RECORD_PAGE = '''
import streamlit as st
from dashboard import data
from dashboard.auth import require_user
from dashboard.amend import change_notice, changed_records, record_actions, record_history
from store import queries

user = require_user()
engine = data.engine()
change_notice()
patient_id = st.session_state.get("patient_id", "KW-T1")
for kind, frame in (("session", queries.sessions_frame(engine, [patient_id], include_voided=True)),
                    ("checkin", queries.checkins_frame(engine, [patient_id], include_voided=True))):
    for record in frame.to_dict("records"):
        st.subheader(f"{kind} {record['id']}")
        record_actions(engine, user, kind, record)
record_history(changed_records(engine, patient_id))
'''


def everything_shown(at) -> str:
    """All content of an AppTest run (text, labels, options, table bytes) as one string, to search for leaks."""
    return "\n".join(str(getattr(node, "proto", "")) for node in at._tree)


def app_at(page: str | None = None):
    """The real app (dashboard/app.py), optionally switched to one page file as a visitor's URL would."""
    at = AppTest.from_file(str(REPO / "dashboard" / "app.py"), default_timeout=APP_TIMEOUT)
    if page is not None:
        at.switch_page(f"views/{page}")
    return at


# ----- a real server and browser ---------------------------------------------------------------

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run"]
IDLE = "[data-testid=stApp][data-test-script-state=notRunning]"


def serve(url: str, log: Path) -> tuple[subprocess.Popen, str]:
    """The dashboard as `ketawatch serve` starts it, on a free port; returns the process and its base URL once healthy."""
    from ketawatch.served import start_dashboard

    return start_dashboard(url, log, env={"KETAWATCH_CLINIC_TIMEZONE": "Europe/London"}, wait_s=60)


def stop(proc: subprocess.Popen) -> None:
    from ketawatch.served import stop_dashboard

    stop_dashboard(proc)


def settle(page) -> None:
    page.wait_for_timeout(600)
    page.wait_for_selector(IDLE, timeout=30000)
    page.wait_for_timeout(200)
    page.wait_for_selector(IDLE, timeout=30000)


@pytest.fixture(scope="module")
def browser():
    if shutil.which("chromium") is None:
        pytest.fail("Chromium is not installed: the browser tests need Debian's chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def sign_in_browser(browser, base: str, username: str):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30000)
    page.goto(base)
    settle(page)
    page.get_by_label("Username", exact=True).fill(username)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    # Signed in once the page list is there: on a loaded machine the run could start after settle's first look,
    # which then saw the sign-in page still idle (a reviewer's test once found no pages at all).
    page.locator("[data-testid=stSidebarNav] a").first.wait_for()
    settle(page)
    return context, page


def nav_labels(page) -> list[str]:
    """The page names in the sidebar navigation (without the icon's ligature text)."""
    return [t.strip().splitlines()[-1] for t in page.locator("[data-testid=stSidebarNav] a").all_inner_texts()]
