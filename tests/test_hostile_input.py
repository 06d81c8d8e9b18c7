"""Hostile input: names and notes are shown as text (never HTML, never active markdown), patient data stays out of
the logs, and refusals do not tell a visitor more than their role may know."""

from __future__ import annotations

import logging
import re
import tomllib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ketawatch import accounts
from store import records
from store.db import make_engine, open_database, upgrade
from store.importer import import_folder
from store.queries import sessions_frame
from tests.access_support import (  # noqa: F401 - fixtures
    PAGES, PASSWORD, RECORD_PAGE, app_at, app_from, browser, cheap_hashes, make_user, serve, settle, sign_in,
    sign_in_browser, stop,
)
from tests.conftest import REPO
from tests.store_support import CHECKIN, PATIENT, SESSION, write_folder

ARTIFACTS = REPO / "tests" / "artifacts"
HOSTILE = "<script>alert(1)</script>**bold** [x](javascript:alert(1)) :material/add:"
#: What must never reach a markdown or HTML renderer unescaped (a backslash before it makes it literal text; an icon
#: code is drawn even with its colons escaped, so only a joiner after the first colon keeps it text).
ACTIVE = re.compile(r"(?<!\\)<(script|img)|\*\*bold|(?<!\\)\[x(?<!\\)\]\(javascript|:(\\)?material/add")
EVIL_ID = "KW-EVIL-1"
#: Bare addresses: Streamlit's markdown makes links of them even when every character is escaped.
BARE_ADDRESSES = "https://evil.example/x www.evil.example kim@evil.example _http://evil.example/y _www.evil.example"
EVIL_NAME = HOSTILE + " <img src=x onerror=alert(2)> " + BARE_ADDRESSES
#: Element types whose text Streamlit renders as markdown; widgets and blocks render their labels as markdown too.
MARKDOWN_ELEMENTS = {"markdown", "caption", "title", "header", "subheader", "error", "info", "warning", "success",
                     "toast", "exception"}


def hostile_folder(folder):
    """An import folder whose patient name and notes are hostile."""
    patient = {**PATIENT, "patient_id": EVIL_ID, "display_name": EVIL_NAME}
    session = {**SESSION, "patient_id": EVIL_ID, "notes": HOSTILE}
    checkin = {**CHECKIN, "patient_id": EVIL_ID, "notes": HOSTILE}
    return write_folder(folder, patients=(patient,), sessions=(session,), checkins=(checkin,))


def rendered_as_markdown(at) -> list[str]:
    """Every string of this run that Streamlit would render as markdown: bodies, labels, options."""
    texts = []
    for node in at._tree:
        kind = getattr(node, "type", "")
        if kind in MARKDOWN_ELEMENTS and isinstance(getattr(node, "value", None), str):
            texts.append(node.value)
        for attr in ("label", "help", "placeholder"):
            value = getattr(node, attr, None) if not callable(getattr(type(node), attr, None)) else None
            if isinstance(value, str):
                texts.append(value)
        if kind == "radio":
            texts.extend(str(o) for o in getattr(node, "options", []))
    return texts


def assert_inert(at, where: str) -> None:
    for text in rendered_as_markdown(at):
        found = ACTIVE.search(text)
        assert found is None, f"{where}: {found.group(0)!r} reaches the markdown renderer in {text!r}"


@pytest.fixture
def hostile_clinic(tmp_path):
    engine = open_database()
    import_folder(engine, hostile_folder(tmp_path / "in"), actor="setup")
    users = {role: make_user(engine, role, display_name=f"{role} {HOSTILE}") for role in ("admin", "clinician", "reviewer")}
    return engine, users


@pytest.mark.parametrize("role", ["admin", "clinician", "reviewer"])
@pytest.mark.parametrize("page", PAGES)
def test_hostile_names_and_notes_never_reach_markdown_on_any_page(hostile_clinic, role, page):
    _, users = hostile_clinic
    at = sign_in(app_at(page), users[role])
    at.session_state["selected_patient"] = EVIL_ID  # the page opens on the hostile patient where it can
    at.query_params["patient"] = EVIL_ID
    at.run()
    assert not at.exception
    assert_inert(at, f"{page} as {role}")


def test_the_amend_form_and_history_keep_hostile_text_inert_and_literal(hostile_clinic):
    engine, users = hostile_clinic
    sid = int(sessions_frame(engine)["id"].iloc[0])
    records.amend_session(engine, sid, {"notes": HOSTILE + " (amended)"}, actor="cleo", reason=HOSTILE,
                          expected_version=1)
    at = sign_in(app_from(RECORD_PAGE), users["clinician"])
    at.session_state["patient_id"] = EVIL_ID
    at.run()
    at.button(key=f"kw_amend_session_{sid}_open_amend").click().run()
    assert not at.exception
    assert at.text_area(key=f"kw_amend_session_{sid}_f_notes").value == HOSTILE + " (amended)"  # literal in the field
    history = at.dataframe[-1].value
    assert HOSTILE in history["What happened next"].iloc[0]  # the reason, as plain table text
    assert list(history["Notes"]) == [HOSTILE, HOSTILE + " (amended)"]
    assert_inert(at, "amend form")


def test_the_signed_in_name_is_escaped_in_the_sidebar(hostile_clinic):
    _, users = hostile_clinic
    at = sign_in(app_at(), users["admin"]).run()
    captions = [c.value for c in at.sidebar.caption]
    assert any("Signed in as" in c for c in captions)
    assert_inert(at, "sidebar")


def test_no_patient_data_in_the_logs(tmp_path, caplog):
    """Import, sign-in, amend and page runs at DEBUG level: no patient id, name or note in any log record."""
    caplog.set_level(logging.DEBUG)
    engine = open_database()
    import_folder(engine, hostile_folder(tmp_path / "in"), actor="setup")
    make_user(engine, "clinician")
    accounts.authenticate(engine, "cleo", PASSWORD)
    sid = int(sessions_frame(engine)["id"].iloc[0])
    records.amend_session(engine, sid, {"notes": "second note"}, actor="cleo", reason="private reason", expected_version=1)
    at = sign_in(app_from(RECORD_PAGE), accounts.get_user(engine, "cleo"))
    at.session_state["patient_id"] = EVIL_ID
    at.run()
    logged = caplog.text
    for secret in (EVIL_ID, "alert(1)", "second note", "private reason", PATIENT["display_name"], PASSWORD):
        assert secret not in logged


def test_crashes_show_no_details_to_the_screen():
    """A page error must not put a record on screen: Streamlit is told to show the error type only."""
    config = tomllib.loads((REPO / "dashboard" / "streamlit.toml").read_text(encoding="utf-8"))
    assert config["client"]["showErrorDetails"] in ("type", "none", False)


def test_sign_in_refusals_reveal_nothing_about_accounts(hostile_clinic):
    at = app_at().run()
    messages = []
    for username in ("cleo", "no-such-person", EVIL_ID):
        at.text_input[0].input(username)
        at.text_input[1].input("wrong-password-here")
        at.button[0].click().run()
        messages.append(at.error[0].value)
    assert len(set(messages)) == 1 and not any(name in messages[0] for name in ("cleo", "no-such-person", EVIL_ID))


# ----- in a real browser ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def hostile_server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    url = f"sqlite:///{folder / 'clinic.db'}"
    engine = make_engine(url)
    upgrade(engine)
    import_folder(engine, hostile_folder(folder / "in"), actor="setup")
    make_user(engine, "clinician")
    engine.dispose()
    log = folder / "streamlit.log"
    proc, base = serve(url, log)
    yield base, log
    stop(proc)


@pytest.mark.browser
def test_in_the_browser_hostile_text_appears_literally_and_runs_nothing(browser, hostile_server):
    base, log = hostile_server
    context, page = sign_in_browser(browser, base, "cleo")
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    try:
        page.locator("[data-testid=stSidebarNav] a", has_text="Patient").first.click()
        settle(page)
        page.get_by_role("combobox").first.click()
        page.get_by_role("option").first.click()
        settle(page)
        main = page.locator("[data-testid=stMain]")
        text = main.inner_text()
        assert "<script>alert(1)</script>**bold** [x](javascript:alert(1)) :material/add:" in \
            text.replace("\u2060", "")  # shown as typed, an invisible joiner apart
        assert page.locator("[data-testid=stMain] span[role=img][aria-label='add icon']").count() == 0, \
            "an icon code in patient data was drawn as an icon"
        html = main.inner_html()
        assert "<script>alert" not in html
        assert page.locator("a[href^='javascript']").count() == 0
        assert page.locator("[data-testid=stMain] strong", has_text="bold").count() == 0
        assert page.locator("[data-testid=stMain] img[src='x']").count() == 0
        assert page.locator("a[href*='evil.example']").count() == 0, "a bare address in patient data became a link"
        assert BARE_ADDRESSES in text.replace("\u2060", "")  # shown as typed, only an invisible joiner added
        page.wait_for_timeout(500)
        assert dialogs == [], "a script from patient data ran"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "hostile-patient.png"), full_page=True)
    finally:
        context.close()
    server_log = log.read_text(encoding="utf-8", errors="replace")
    for secret in (EVIL_ID, "alert(1)", PATIENT["display_name"]):
        assert secret not in server_log


def test_patient_mode_shows_the_hostile_name_inertly(hostile_clinic):
    """The tablet handed to the patient greets them by name: that name is user text too."""
    _, users = hostile_clinic
    at = sign_in(app_at("log_checkin.py"), users["clinician"])
    at.session_state["patient_mode"] = {"patient_id": EVIL_ID}
    at.run()
    assert not at.exception
    assert any("alert" in t for t in rendered_as_markdown(at)), "the patient's name is shown"
    assert_inert(at, "patient mode")


@pytest.mark.parametrize("code", [":material/home:", ":material_home:", ":skull:", ":streamlit:", ":Material/Home:"])
def test_no_icon_or_emoji_code_survives_escaping_whatever_its_spelling(code):
    """Streamlit reads icon codes after escapes are undone: only a joiner inside the code keeps it text."""
    from dashboard.ui import md_escape

    escaped = md_escape(f"Seen {code} at 10:30").replace("\\", "")
    assert code not in escaped and code.replace(":", ":\u2060", 1) in escaped
    assert "10:30" in escaped  # a time is left as it is


@settings(max_examples=300, deadline=None)
@given(text=st.lists(st.sampled_from(list("ab1 \t\n\r=-*_#>+.)`~<&|[]:!\\\u00a0") + ["    ", "http://x.y", "1. "]),
                     max_size=30).map("".join))
def test_escaped_text_is_only_paragraphs_of_plain_text_whatever_it_holds(text):
    """No heading ("===" under a line), code block (indented after a blank line), list, quote, rule, emphasis, link or
    HTML comes out of any user text (security review: '===' made a heading, four spaces a code block)."""
    from markdown_it import MarkdownIt

    from dashboard.ui import md_escape

    tokens = MarkdownIt("commonmark").parse(md_escape(text))
    kinds = {t.type for t in tokens} | {c.type for t in tokens for c in t.children or []}
    assert kinds <= {"paragraph_open", "paragraph_close", "inline", "text", "softbreak", "hardbreak"}, (text, kinds)


@settings(max_examples=300, deadline=None)
@given(text=st.lists(st.sampled_from(list("ab1 =-*_#>+.)(`~<&|[]:!/'·\\é") + ["http://x.y", "1. ", ":skull:"]),
                     min_size=1, max_size=20).map("".join))
def test_text_in_the_middle_of_a_label_shows_as_typed(text):
    """`mid_label` leaves plain text unescaped (a widget's accessible name is its raw label: 'KW\\-0014' was read out
    with its backslash) and escapes the rest, so in a label's middle any text renders as plain text, and as typed."""
    from markdown_it import MarkdownIt

    from dashboard.ui import mid_label

    label = f"Note for {mid_label(text)} *"
    tokens = MarkdownIt("commonmark").parse(label)
    kinds = {t.type for t in tokens} | {c.type for t in tokens for c in t.children or []}
    assert kinds <= {"paragraph_open", "paragraph_close", "inline", "text"}, (text, kinds)
    if mid_label(text) == text:  # left as typed: markdown shows it exactly so
        shown = "".join(c.content for t in tokens for c in t.children or [] if c.type == "text")
        assert shown == label.strip(), (text, shown)
        assert ":" not in text and "\\" not in text  # an icon code or an escape is never left as typed
