"""The export panels under Streamlit's AppTest: reviewers locked to de-identified, files prepared and audited."""

from __future__ import annotations

import time

import pytest
from streamlit.testing.v1 import AppTest

from store.db import make_engine, upgrade
from store.queries import audit_frame
from tests.test_export_support import SECRET_PID, load_sample


def _patient_page(db_url: str, patient_id: str) -> None:
    from dashboard.auth import current_user
    from dashboard.export_panel import patient_exports
    from store.db import open_database

    patient_exports(open_database(db_url), current_user(), patient_id)


def _caseload_page(db_url: str) -> None:
    from dashboard.auth import current_user
    from dashboard.export_panel import caseload_exports
    from store.db import open_database

    caseload_exports(open_database(db_url), current_user())


@pytest.fixture
def db_url(tmp_path):
    url = f"sqlite:///{tmp_path / 'panel.db'}"
    engine = make_engine(url)
    upgrade(engine)
    load_sample(engine, tmp_path)
    engine.dispose()
    return url


def _signed_in(at: AppTest, username: str, role: str) -> AppTest:
    at.session_state["user"] = {"username": username, "display_name": username.title(), "role": role}
    at.session_state["last_activity"] = time.time()
    return at


def test_reviewer_is_locked_to_deidentified_and_the_export_is_audited_as_such(db_url):
    at = _signed_in(AppTest.from_function(_patient_page, kwargs={"db_url": db_url, "patient_id": SECRET_PID}, default_timeout=60),
                    "rev-panel", "reviewer")
    at.run()
    assert not at.exception
    box = at.checkbox(key=f"export-patient-{SECRET_PID}-deidentify")
    assert box.value is True and box.disabled is True
    at.selectbox(key=f"export-patient-{SECRET_PID}-format").set_value("csv")
    at.button(key=f"export-patient-{SECRET_PID}-prepare").click().run()
    assert not at.exception and not at.error
    from store.db import open_database

    line = audit_frame(open_database(db_url), action="export").iloc[0]
    assert line["actor"] == "rev-panel" and line["detail"]["deidentified"] is True and line["detail"]["format"] == "csv"


def test_clinician_can_export_identified_caseload(db_url):
    at = _signed_in(AppTest.from_function(_caseload_page, kwargs={"db_url": db_url}, default_timeout=60), "dr-panel", "clinician")
    at.run()
    box = at.checkbox(key="export-caseload-deidentify")
    assert box.value is False and box.disabled is False
    at.selectbox(key="export-caseload-format").set_value("csv")
    at.button(key="export-caseload-prepare").click().run()
    assert not at.exception and not at.error
    from store.db import open_database

    line = audit_frame(open_database(db_url), action="export").iloc[0]
    assert (line["actor"], line["entity_key"], line["detail"]["deidentified"]) == ("dr-panel", "caseload", False)


def _hand_over_twice() -> None:
    import streamlit as st

    from dashboard import export_panel

    prepared = export_panel.Prepared(("params",), "case.pdf", b"%PDF-1.7", "application/pdf", ("KW-0001",))
    st.session_state[export_panel._RESULT_KEY] = {"slot": prepared}
    give = export_panel._hand_over("slot", prepared, lambda: None)
    st.write(f"first: {give()!r}")
    st.write(f"kept: {'slot' in st.session_state[export_panel._RESULT_KEY]}")
    st.write(f"done: {st.session_state[export_panel._DONE_KEY]['slot']}")
    try:
        give()
    except RuntimeError as exc:
        st.write(f"second: {exc}")


def test_a_prepared_file_is_handed_over_once_and_then_forgotten():
    """A quick second click gave a second copy of one audited export (browser check, code review)."""
    at = AppTest.from_function(_hand_over_twice).run()
    said = [m.value for m in at.markdown]
    assert said == ["first: b'%PDF-1.7'", "kept: False", "done: case.pdf",
                    "second: already downloaded; prepare the file again for another copy (each is audited)"], said


def _hand_over_after_the_account_changed(username: str, change: str) -> None:
    import streamlit as st

    from dashboard import auth, export_panel
    from ketawatch import accounts

    import time as clock

    engine = auth._engine()
    st.session_state[auth._PASSWORD_KEY] = auth._password_stamp(accounts.get_user(engine, username))
    idle = 60 * (auth.get_settings().idle_timeout_minutes + 1) if change == "idle" else 0
    st.session_state[auth.ACTIVITY_KEY] = clock.time() - idle  # the last click the page saw
    prepared = export_panel.Prepared(("params",), "case.pdf", b"%PDF-1.7", "application/pdf", ("KW-0001",))
    st.session_state[export_panel._RESULT_KEY] = {"slot": prepared}
    user = auth.SignedInUser(username=username, display_name="Cleo", role="clinician")
    give = export_panel._hand_over("slot", prepared, auth.account_check_for_later(user),
                                   export_panel._refusal_to_audit(username))
    if change == "disabled":
        accounts.set_disabled(engine, username, True, actor="ada")
    elif change == "reviewer":
        accounts.set_role(engine, username, "reviewer", actor="ada")
    elif change == "password":
        accounts.reset_password(engine, username, "another-long-secret-7", actor="ada")
    try:
        st.write(f"given: {give()!r}")
    except RuntimeError as exc:
        st.write(f"refused: {exc}")
    st.write(f"kept: {'slot' in st.session_state[export_panel._RESULT_KEY]}")


@pytest.mark.parametrize("change, said", [
    ("none", "given: b'%PDF-1.7'"),
    ("disabled", "refused: not handed over: the account is no longer active"),
    ("reviewer", "refused: not handed over: the account's role is now reviewer"),
    ("password", "refused: not handed over: the account's password was changed after you signed in here"),
    ("idle", "refused: not handed over: you were signed out after 30 minutes without activity"),
])
def test_a_prepared_file_is_not_handed_over_to_an_account_disabled_demoted_or_reset_since_or_idle(db_url, monkeypatch, change, said):
    """The download's click starts no run, so the page's sign-in check never saw it (security review)."""
    from ketawatch.accounts import create_user
    from store.db import open_database
    from store.settings import get_settings

    monkeypatch.setenv("KETAWATCH_DATABASE_URL", db_url)
    get_settings.cache_clear()
    engine = open_database(db_url)
    create_user(engine, username="ada", display_name="Ada", role="admin", password="correct-horse-battery", actor="t")
    create_user(engine, username="cleo", display_name="Cleo", role="clinician", password="correct-horse-battery", actor="t")
    at = AppTest.from_function(_hand_over_after_the_account_changed, kwargs={"username": "cleo", "change": change},
                               default_timeout=30).run()
    assert not at.exception, at.exception
    assert [m.value for m in at.markdown] == [said, f"kept: {change != 'none'}"]
    # the export's line, written when the file was built, says it left: a refusal must say it did not (and why)
    refused = audit_frame(engine, action="download_refused")
    if change == "none":
        assert refused.empty
    else:
        line = refused.iloc[0]
        assert (len(refused), line["actor"], line["entity_key"], line["patient_id"]) == (1, "cleo", "case.pdf", "KW-0001")
        assert "not handed over: " + line["detail"]["why"] == said.removeprefix("refused: ")
