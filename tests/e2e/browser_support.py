"""Helpers for the browser tests: wait for Streamlit to finish a run, and keep screenshots."""

from __future__ import annotations

from pathlib import Path

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
IDLE = "[data-testid=stApp][data-test-script-state=notRunning]"


def settle(page, *, pause_ms: int = 400, timeout_ms: int = 30000) -> None:
    """Wait until Streamlit has finished the run triggered by the last action, then check for errors."""
    page.wait_for_timeout(pause_ms)
    page.wait_for_selector(IDLE, timeout=timeout_ms)
    page.wait_for_timeout(150)
    page.wait_for_selector(IDLE, timeout=timeout_ms)
    assert page.locator("[data-testid=stException]").count() == 0, page.locator("[data-testid=stException]").first.inner_text()


def shot(page, name: str) -> Path:
    """Save a full-page screenshot under tests/artifacts/."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    size = page.viewport_size
    # Streamlit scrolls inside its main block, so grow the window to the content for a whole-page picture.
    height = page.evaluate("() => { const m = document.querySelector('[data-testid=stMain]');"
                           " return m ? m.scrollHeight : document.body.scrollHeight; }")
    page.set_viewport_size({"width": size["width"], "height": min(max(int(height), size["height"]), 12000)})
    page.wait_for_timeout(400)
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(size)
    return path


def sign_in(page, base_url: str, username: str = "demo-clinician", password: str = "demo-password") -> None:
    """Open the app and sign in through the real sign-in form; lands on the caseload."""
    page.goto(base_url)
    settle(page, pause_ms=1000)
    page.get_by_label("Username", exact=True).fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()
    settle(page, pause_ms=1000)
    page.get_by_role("heading", name="Caseload").wait_for()
