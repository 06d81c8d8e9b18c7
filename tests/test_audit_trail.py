"""The audit trail: every write, import, sign-in and account change leaves a line; no line can be changed or removed;
admins filter it and download it as spreadsheet-safe CSV."""

from __future__ import annotations

import csv
import io
import re
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.engine import make_url
from sqlmodel import Session

from ketawatch import accounts
from ketawatch.audit_trail import ACTIONS, audit_csv_bytes, audit_lines, describe_detail
from ketawatch.change_words import describe_changes, field_words
from store import records
from store.audit import record_event
from store.importer import import_folder
from store.models import AuditEvent
from store.queries import audit_frame, sessions_frame
from tests.access_support import PASSWORD, app_from, cheap_hashes, make_user, sign_in  # noqa: F401 - autouse fixture
from tests.conftest import NOW, REPO
from tests.store_support import PATIENT, SESSION, write_folder

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def add_line(engine, **values):
    with Session(engine) as db, db.begin():
        event = record_event(db, **values)
        db.flush()
        return event.id


def all_lines(engine):
    with Session(engine) as db:
        return [(e.id, e.actor, e.action, e.detail) for e in db.exec(select(AuditEvent).order_by(AuditEvent.id)).scalars()]


# ----- append-only ---------------------------------------------------------------------------


def test_no_audit_line_can_be_updated_or_deleted_through_sql(engine):
    add_line(engine, actor="ada", action="create", entity="patient", entity_key="P1", patient_id="P1", after={"x": 1})
    before = all_lines(engine)
    for statement in ("UPDATE audit_event SET actor = 'mallory'",
                      "UPDATE audit_event SET detail = '{}'",
                      "DELETE FROM audit_event",
                      "DELETE FROM audit_event WHERE actor = 'ada'",
                      # PostgreSQL's TRUNCATE skips row triggers; SQLite has none (it reads as a syntax error there)
                      *(["TRUNCATE audit_event", "TRUNCATE TABLE audit_event CASCADE"]
                        if engine.dialect.name == "postgresql" else [])):
        with pytest.raises(DBAPIError, match="append-only"):
            with engine.begin() as conn:
                conn.execute(text(statement))
    assert all_lines(engine) == before


def test_no_audit_line_can_be_changed_or_deleted_through_the_orm(engine):
    line_id = add_line(engine, actor="ada", action="sign_in", entity="user", entity_key="ada")
    before = all_lines(engine)
    with pytest.raises(DBAPIError, match="append-only"):
        with Session(engine) as db, db.begin():
            event = db.get(AuditEvent, line_id)
            event.actor = "mallory"
            db.add(event)
    with pytest.raises(DBAPIError, match="append-only"):
        with Session(engine) as db, db.begin():
            db.delete(db.get(AuditEvent, line_id))
    assert all_lines(engine) == before


def test_the_trail_is_append_only_even_from_a_plain_sqlite_connection(sqlite_engine):
    add_line(sqlite_engine, actor="ada", action="sign_in")
    path = make_url(str(sqlite_engine.url)).database
    conn = sqlite3.connect(path)
    try:
        for statement in ("UPDATE audit_event SET actor = 'x'", "DELETE FROM audit_event"):
            with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                conn.execute(statement)
        assert conn.execute("SELECT actor FROM audit_event").fetchall() == [("ada",)]
    finally:
        conn.close()


def test_no_code_outside_the_migrations_writes_update_or_delete_against_the_trail():
    pattern = re.compile(r"(update|delete)\s*\(\s*AuditEvent|(UPDATE|DELETE\s+FROM)\s+audit_event", re.IGNORECASE)
    offenders = [
        str(path.relative_to(REPO))
        for folder in ("store", "ketawatch", "dashboard", "seed_data")
        for path in (REPO / folder).rglob("*.py")
        if "migrations" not in path.parts and pattern.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


# ----- what is recorded ----------------------------------------------------------------------


def test_every_kind_of_write_and_sign_in_leaves_a_line_with_who_what_and_values(engine, validator, tmp_path):
    make_user(engine, "admin")
    make_user(engine, "clinician")
    import_folder(engine, write_folder(tmp_path / "in", checkins=None), actor="ada", validator=validator)
    [session_id] = sessions_frame(engine)["id"].tolist()
    amended = records.amend_session(engine, session_id, {"dose_mg": 42}, actor="cleo", reason="dose misread",
                                    expected_version=1, validator=validator)
    records.void_session(engine, session_id, actor="cleo", reason="wrong patient", expected_version=amended.version,
                         validator=validator)
    records.add_checkin(engine, {"patient_id": PATIENT["patient_id"], "reported_at": "2026-02-01", "craving": 2},
                        actor="cleo", validator=validator)
    accounts.authenticate(engine, "cleo", PASSWORD, now=NOW)
    with pytest.raises(accounts.SignInRefused):
        accounts.authenticate(engine, "cleo", "wrong", now=NOW)
    accounts.set_role(engine, "cleo", "reviewer", actor="ada", now=NOW)

    lines = audit_lines(engine)
    seen = set(lines["action"])
    assert {"user_create", "import", "amend", "void", "create", "sign_in", "sign_in_failed", "role_change"} <= seen
    assert seen <= set(ACTIONS)
    amend = lines[lines["action"] == "amend"].iloc[0]
    assert (amend["actor"], amend["entity"], amend["patient_id"]) == ("cleo", "session", PATIENT["patient_id"])
    assert amend["detail"]["before"]["dose_mg"] == float(SESSION["dose_mg"])
    assert amend["detail"]["after"]["dose_mg"] == 42
    assert amend["detail"]["reason"] == "dose misread"
    void = lines[lines["action"] == "void"].iloc[0]
    assert void["detail"]["reason"] == "wrong patient" and void["detail"]["before"]["dose_mg"] == 42
    role = lines[lines["action"] == "role_change"].iloc[0]
    assert (role["detail"]["before"]["role"], role["detail"]["after"]["role"]) == ("clinician", "reviewer")
    assert lines["at"].notna().all() and lines["actor"].str.len().gt(0).all()


# ----- filters and CSV -----------------------------------------------------------------------


@pytest.fixture
def varied_trail(sqlite_engine):
    """Lines by two people, on two patients, over three days, plus an import that touched both patients."""
    spec = [
        ("ada", "create", "P1", 0), ("ada", "amend", "P1", 1), ("bob", "create", "P2", 1),
        ("bob", "void", "P2", 2), ("ada", "sign_in", None, 2), ("bob", "sign_in_failed", None, 0),
    ]
    for actor, action, patient, day in spec:
        add_line(sqlite_engine, actor=actor, action=action, patient_id=patient, at=NOW + timedelta(days=day))
    add_line(sqlite_engine, actor="bob", action="import", patients=["P1", "P2"], at=NOW + timedelta(days=1))
    spec.append(("bob", "import", "P1+P2", 1))
    return sqlite_engine, spec


@pytest.mark.parametrize("filters", [
    {"actor": "ada"}, {"action": "create"}, {"patient_id": "P1"}, {"patient_id": "P2", "actor": "bob"},
    {"since": 1}, {"until": 0}, {"since": 1, "until": 1, "actor": "bob"}, {"patient_id": "P1", "action": "import"}, {},
])
def test_the_filters_find_exactly_the_matching_lines(varied_trail, filters):
    engine, spec = varied_trail
    query = dict(filters)
    for bound in ("since", "until"):
        if bound in query:
            query[bound] = NOW + timedelta(days=query[bound], hours=0 if bound == "since" else 1)
    got = audit_lines(engine, **query)

    def matches(actor, action, patient, day):
        return ((not filters.get("actor") or actor == filters["actor"])
                and (not filters.get("action") or action == filters["action"])
                and (not filters.get("patient_id") or filters["patient_id"] in (patient or "").split("+"))
                and ("since" not in filters or day >= filters["since"])
                and ("until" not in filters or day <= filters["until"]))

    expected = sorted((a, b) for a, b, p, d in spec if matches(a, b, p, d))
    assert sorted(zip(got["actor"], got["action"])) == expected
    assert list(got["id"]) == sorted(got["id"], reverse=True)  # newest first


def read_csv(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(st.text(alphabet=st.sampled_from("=+-@\t\r\n'\",;abc 1"), min_size=0, max_size=8),
                       min_size=3, max_size=3))
def test_the_csv_never_starts_a_cell_with_a_formula_and_keeps_the_text(values):
    import pandas as pd

    actor, key, patient = values
    frame = pd.DataFrame([{"id": 1, "at": NOW, "actor": actor, "action": "=cmd|' /C calc'!A0", "entity": "-1+1",
                           "entity_key": key, "patient_id": patient, "detail": {"note": "@SUM(1)"}}])
    header, row = read_csv(audit_csv_bytes(frame))
    assert header == ["id", "at", "actor", "action", "entity", "entity_key", "patient_id", "detail"]
    for cell in row:  # nor after a semicolon or line break, where Excel splits when ';' is the list separator
        assert not [piece for piece in re.split(r"[;\n\r]", cell) if piece.startswith(FORMULA_STARTS)], cell
    shown = dict(zip(header, row))
    for column, original in (("actor", actor), ("entity_key", key), ("patient_id", patient), ("action", "=cmd|' /C calc'!A0")):
        expected, at_cell_start = "", True  # a quote before each formula character (or quotes and one) starting a cell
        for at, char in enumerate(original):
            expected += ("'" if at_cell_start and original[at:].lstrip("'").startswith(FORMULA_STARTS) else "") + char
            at_cell_start = char in ";\n\r"
        assert shown[column] == expected
    assert shown["at"] == NOW.isoformat()


# ----- the Audit page ------------------------------------------------------------------------


def audit_page(user):
    at = app_from((REPO / "dashboard" / "views" / "audit.py").read_text(encoding="utf-8"))
    return sign_in(at, user) if user is not None else at


def test_admins_see_and_filter_the_trail_on_the_audit_page():
    from store.db import open_database

    engine = open_database()
    admin = make_user(engine, "admin")
    make_user(engine, "clinician")
    accounts.authenticate(engine, "cleo", PASSWORD)
    with pytest.raises(accounts.SignInRefused):
        accounts.authenticate(engine, "cleo", "wrong")
    at = audit_page(admin).run()
    assert not at.exception
    table = at.dataframe[0].value
    assert {"sign_in", "sign_in_failed", "user_create"} <= {a.lower().replace(" ", "_") for a in table["Action"]}
    at.selectbox(key="audit_action").set_value("sign_in_failed")
    at.button[0].click().run()
    table = at.dataframe[0].value
    assert list(table["Action"].str.lower()) == ["sign in failed"] and list(table["Who"]) == ["cleo"]
    assert not at.get("download_button"), "no file is built before it is asked for"
    exports = lambda: len(audit_frame(engine, action="export"))  # noqa: E731
    before = exports()
    next(b for b in at.button if b.label == "Prepare export").click().run()
    assert at.get("download_button"), "the CSV download is offered once prepared"
    assert exports() == before + 1, "preparing the file is audited"


def test_the_audit_page_picks_who_from_the_trail_and_says_what_changed_in_words():
    from store.db import open_database

    engine = open_database()
    admin = make_user(engine, "admin")
    make_user(engine, "clinician")
    make_user(engine, "admin", username="adam")  # 'ada' must not also find 'adam', as a typed filter did
    accounts.set_role(engine, "cleo", "reviewer", actor="ada")
    accounts.set_role(engine, "cleo", "clinician", actor="adam")
    at = audit_page(admin).run()
    assert at.selectbox(key="audit_actor").options == ["anyone", "ada", "adam", "test-setup"]
    at.selectbox(key="audit_actor").set_value("ada")
    at.button[0].click().run()
    table = at.dataframe[0].value
    assert set(table["Who"]) == {"ada"}
    changes = table[table["Action"] != "View"]  # ada's own reading of the trail is in it too, as a view
    assert list(changes["What changed"]) == ["Role: clinician -> reviewer"]
    assert list(table.loc[table["Action"] == "View", "Record"]) == ["audit_trail"]


@pytest.mark.parametrize("patient", ["P1", "Zoë-7", 'A_%"\\B'])
def test_a_patients_exports_are_found_however_many_later_lines_name_others(engine, patient):
    """The patient filter read the newest lines of every export and then kept the patient's: later exports of other
    patients (a nightly `ketawatch flags`) pushed an older one off the list (new-engineer code review)."""
    add_line(engine, actor="ada", action="export", patients=["P0", patient], format="pdf")
    for n in range(4):
        add_line(engine, actor="cron", action="export", patients=[f"Q{n}", "P10", "A_%B"], format="csv")
    lines = audit_lines(engine, patient_id=patient, limit=3)
    assert list(lines["actor"]) == ["ada"] and lines["detail"].iloc[0]["patients"] == ["P0", patient]


def test_what_changed_lists_only_the_fields_that_differ():
    amended = {"before": {"dose_mg": 35, "weight_kg": 70.0, "side_effects": ["nausea"], "notes": None},
               "after": {"dose_mg": 40, "weight_kg": 70.0, "side_effects": ["nausea", "headache"], "notes": "re-dosed"},
               "reason": "typed 35 for 40"}
    assert describe_changes(amended) == ("Dose (mg): 35 -> 40; Notes: blank -> re-dosed; "
                                         "Side effects: nausea -> nausea, headache")
    assert describe_detail(amended) == "Reason: typed 35 for 40"
    assert describe_changes({"after": {"role": "clinician", "username": "jo", "notes": None}}) == \
        "Role: clinician; Username: jo"  # a new record: the values written, blanks left out
    assert describe_changes({"before": {"disabled": False}, "after": {"disabled": True}}) == "Disabled: no -> yes"
    assert describe_changes({"reason": "wrong_password"}) == "" and describe_changes(None) == ""
    assert describe_detail({"effects": [["nausea", "mild"], ["headache", "severe"]]}) == \
        "Effects: (nausea, mild), (headache, severe)"
    assert describe_detail({"reason": "wrong_password", "failed_attempts": 3}) == \
        "Failed attempts: 3; Reason: wrong password"  # a code KetaWatch wrote, in words
    assert describe_detail({"purpose": "leave_patient_mode", "method": "password"}) == \
        "Method: password; Purpose: leave patient mode"
    assert describe_detail({"reason": "see dose_mg note"}) == "Reason: see dose_mg note"  # typed text as typed
    assert describe_detail({"reason": "wrong_patient"}) == "Reason: wrong_patient"  # even when it looks like a code


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                     max_leaves=12)


@settings(max_examples=200, deadline=None)
@given(detail=st.dictionaries(st.sampled_from(["before", "after", "reason", "patients", "x"]), _JSON, max_size=4))
def test_any_stored_detail_is_described_without_error_and_never_as_a_field_it_did_not_change(detail):
    changes, rest = describe_changes(detail), describe_detail(detail)
    assert isinstance(changes, str) and isinstance(rest, str)
    before, after = detail.get("before"), detail.get("after")
    if isinstance(before, dict) and isinstance(after, dict):
        same = [k for k in set(before) & set(after) if before[k] == after[k]]
        named = {part.split(": ", 1)[0] for part in changes.split("; ") if part}
        differ = [k for k in set(before) | set(after) if before.get(k, ...) != after.get(k, ...)]
        assert not {field_words(k) for k in same} & named - {field_words(k) for k in differ}


@pytest.mark.parametrize("role", [None, "clinician", "reviewer"])
def test_nobody_but_an_admin_sees_the_audit_page(role):
    from store.db import open_database

    engine = open_database()
    make_user(engine, "admin")  # leaves a user_create line that must not be shown
    user = make_user(engine, role) if role else None
    at = audit_page(user).run()
    assert not at.exception
    if user is None:
        assert [t.value for t in at.title] == ["KetaWatch"]  # the sign-in form, nothing else
    else:
        assert "admins only" in at.error[0].value
    assert len(at.dataframe) == 0 and not at.get("download_button")
