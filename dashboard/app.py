"""KetaWatch dashboard entry point: sign-in first, then the navigation (nothing else lives here).

The page scripts live in `views/`, not `pages/`: Streamlit would serve a `pages/` folder by URL on
its own, before this file's sign-in ran. Each page's URL path is its file name, so a test (or a
bookmark) can address a page by file before the navigation has run.

Run it with `ketawatch serve`: it passes the dashboard's settings (dashboard/streamlit.toml, among
them hidden error details) to Streamlit. A bare `streamlit run dashboard/app.py` runs without them.
"""

from __future__ import annotations

import logging
from pathlib import Path

import streamlit as st
from sqlalchemy.exc import InterfaceError, OperationalError

from dashboard import data, private_logs, ui
from dashboard.auth import SignedInUser, account_menu, can_write, is_admin, requested_page, require_user
from dashboard.ui import PATIENT_MODE_KEY

# The tab icon is a file of the package: a Material icon here makes the browser fetch it from
# fonts.gstatic.com, which a clinic network without internet access refuses (and which would see
# every page load).
st.set_page_config(page_title="KetaWatch", page_icon=str(Path(__file__).with_name("favicon.png")), layout="wide",
                   # a tablet handed to a patient shows the questionnaire only: no empty staff sidebar beside it
                   initial_sidebar_state="collapsed" if st.session_state.get(PATIENT_MODE_KEY) else "auto")
# The three protections of dashboard/streamlit.toml that Streamlit lets a script set hold here too,
# however the app was started (a bare `streamlit run` does not read that file).
st.set_option("client.showErrorDetails", "type")
st.set_option("client.disableDataExport", True)
st.set_option("logger.enableRich", False)  # errors through logging, where private_logs withholds the message
private_logs.install()
data.new_run()
#: The page of the last run, so a form's page knows when it is being come back to.
_LAST_PAGE = "kw_last_page"


#: Every page: section, file, title, icon, address, and who may open it ("all", "writer" or "admin").
PAGES = (
    ("Triage", "views/caseload.py", "Caseload", ":material/groups:", "caseload", "all"),
    ("Triage", "views/alerts.py", "Alerts", ":material/notifications_active:", "alerts", "all"),
    ("Triage", "views/patient.py", "Patient", ":material/person:", "patient", "all"),
    ("Record", "views/log_session.py", "Log session", ":material/vaccines:", "log_session", "writer"),
    ("Record", "views/log_checkin.py", "Log check-in", ":material/checklist:", "log_checkin", "writer"),
    ("Record", "views/patients.py", "Patients and plans", ":material/assignment_ind:", "patients", "all"),
    ("Admin", "views/audit.py", "Audit trail", ":material/history:", "audit", "admin"),
    ("Admin", "views/users.py", "Users", ":material/manage_accounts:", "users", "admin"),
    ("Account", "views/account.py", "My account", ":material/key:", "account", "all"),
)
_DEFAULT_PAGE = "caseload"


def _sections(user: SignedInUser) -> dict[str, list[st.Page]]:
    """The pages `user` may open, by section."""
    allowed = {"all": True, "writer": can_write(user), "admin": is_admin(user)}
    sections: dict[str, list[st.Page]] = {}
    for section, file, title, icon, path, who in PAGES:
        if allowed[who]:
            sections.setdefault(section, []).append(
                st.Page(file, title=title, icon=icon, url_path=path, default=path == _DEFAULT_PAGE))
    return sections


def _signed_out_pages() -> list[st.Page]:
    """Every page, for the sign-in run to declare hidden, so that a link's page is known after sign-in and the last
    user's page list leaves the sidebar (an empty sidebar may stay open beside the form: Streamlit's, not a list)."""
    return [st.Page(file, title=title, icon=icon, url_path=path, default=path == _DEFAULT_PAGE)
            for _, file, title, icon, path, _ in PAGES]


def _checkin_page() -> st.Page:
    """The tablet's one page, for a patient answering their check-in."""
    _, file, title, icon, path, _ = next(page for page in PAGES if page[4] == "log_checkin")
    return st.Page(file, title=title, icon=icon, url_path=path)


def _run() -> None:
    """Sign-in, then the navigation and the chosen page."""
    # Signed out, the pages are declared hidden: a sign-in run that declared none kept the last user's page list in
    # the sidebar (the page a link asked for stays in the address, for after sign-in).
    user = require_user(hide_pages=lambda: st.navigation(_signed_out_pages(), position="hidden"))

    if st.session_state.get(PATIENT_MODE_KEY):
        # A tablet handed to the patient: only their check-in, until the clinician signs back in.
        st.navigation([_checkin_page()], position="hidden").run()
    else:
        account_menu(user)
        sections = _sections(user)
        current = st.navigation(sections)
        asked = requested_page()  # a link opened before sign-in leads there once signed in, not to the caseload
        if asked is not None:
            wanted = next((p for pages in sections.values() for p in pages if p.url_path == asked[0]), None)
            if wanted is not None and wanted.url_path != current.url_path:
                st.switch_page(wanted, query_params=asked[1])
        # Log session and Log check-in, half filled in, survive a look elsewhere: copied after a run of their own
        # page and put back from the copy on coming back.
        forms = {"log_session": ("ls_", ("ls_save",)),
                 "log_checkin": ("lc_", ("lc_save", "lc_leave", "lc_safety_ack", "lc_clear", "lc_clear_sds",
                                         "lc_clear_phq9", "lc_keep", "lc_clear_anyway", "lc_password"))}
        arrived = st.session_state.get(_LAST_PAGE) != current.url_path
        if current.url_path in forms and arrived:  # only on coming back: what the form itself removed stays removed
            ui.restore_entries(forms[current.url_path][0])
        try:
            current.run()
        finally:
            st.session_state[_LAST_PAGE] = current.url_path
            if current.url_path in forms:
                prefix, buttons = forms[current.url_path]
                ui.copy_entries(prefix, skip=buttons)


try:
    _run()
except (OperationalError, InterfaceError) as exc:
    # The database went away (a restart, the network, a full disk): say so in words, not as a stack.
    # For IT, the driver's own first line (which host and port, refused or timed out, disk full): the database's
    # words about reaching it, never a statement's parameters (`hide_parameters`), so no patient data.
    cause = getattr(exc, "orig", None) or exc
    said = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
    logging.getLogger("ketawatch.dashboard").error("database unavailable: %s: %s", type(cause).__name__, said)
    st.error("KetaWatch cannot reach its database just now, so nothing can be shown or saved. Anything you were "
             "entering was saved only if a green message said so. Try again in a minute; if this goes on, tell "
             "the IT team (the server log says what failed).", icon=":material/cloud_off:")
