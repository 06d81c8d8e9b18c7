"""Durability: an import killed mid-write leaves the database as it was; two processes on one PostgreSQL see each
other's writes; a database of the first released schema (0001) upgrades to the current one with every row intact."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from alembic import command
from sqlalchemy import MetaData, Table, create_engine, func, select, text
from sqlalchemy.engine import make_url

from ketawatch import accounts
from store.db import alembic_config, make_engine, upgrade
from store.importer import import_folder
from store.queries import load_records
from tests.access_support import (  # noqa: F401 - fixtures
    PASSWORD, browser, cheap_hashes, make_user, serve, settle, sign_in_browser, stop,
)
from tests.conftest import BACKENDS, NOW, PG_URL, REPO, TZ, fresh_database_url
from tests.store_support import write_folder

IMPORT_CLI = "from ketawatch.cli import main; main()"
CLINICAL = ("patient", "infusion_session", "side_effect_event", "check_in", "audit_event", "record_revision")


def generated_folder(folder: Path, patients: int = 500, per_patient: int = 50) -> int:
    """A large, valid import folder (vectorised): `patients` x `per_patient` sessions and as many check-ins."""
    folder.mkdir(parents=True, exist_ok=True)
    ids = pd.Series([f"BULK-{i:05d}" for i in range(patients)])
    pd.DataFrame({"patient_id": ids, "indication": "depression", "sud_history": "no",
                  "treatment_start": "2023-12-01"}).to_csv(folder / "patients.csv", index=False)
    pid = ids.repeat(per_patient).reset_index(drop=True)
    week = np.tile(np.arange(per_patient), patients)
    start = pd.Timestamp("2024-01-01T10:00:00Z")
    session_at = (start + pd.to_timedelta(week * 7, unit="D")).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    pd.DataFrame({"patient_id": pid, "session_at": session_at, "route": "iv",
                  "dose_mg": 30 + week % 10, "weight_kg": 70, "notes": "bulk"}).to_csv(folder / "sessions.csv", index=False)
    reported = (start + pd.to_timedelta(week * 7 + 3, unit="D")).strftime("%Y-%m-%d")
    pd.DataFrame({"patient_id": pid, "reported_at": reported, "craving": week % 11}).to_csv(
        folder / "checkins.csv", index=False)
    return patients + 2 * patients * per_patient


def counts(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in CLINICAL}


def _wal_size(url: str) -> int:
    wal = Path(make_url(url).database + "-wal")
    return wal.stat().st_size if wal.exists() else 0


def _pg_inserting(watcher, pid: int) -> bool:
    """True once another connection is running an INSERT or a COPY (the importer has begun writing)."""
    with watcher.connect() as conn:
        return bool(conn.execute(text(
            "SELECT count(*) FROM pg_stat_activity WHERE pid <> :me AND datname = current_database() "
            "AND state = 'active' AND (query ILIKE 'INSERT INTO%' OR query ILIKE 'COPY%')"), {"me": pid}).scalar_one())


def test_an_import_killed_in_the_middle_leaves_the_database_unchanged_and_usable(db_url, tmp_path):
    engine = make_engine(db_url)
    upgrade(engine)
    import_folder(engine, write_folder(tmp_path / "small"), actor="setup")
    before = counts(engine)
    rows = generated_folder(tmp_path / "bulk")
    assert rows >= 50_000

    env = {**os.environ, "PYTHONPATH": str(REPO), "KETAWATCH_CLINIC_TIMEZONE": TZ}
    importer = subprocess.Popen([sys.executable, "-c", IMPORT_CLI, "import", str(tmp_path / "bulk"), "--db", db_url],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    sqlite = engine.dialect.name == "sqlite"
    baseline = _wal_size(db_url) if sqlite else 0
    watcher = None if sqlite else create_engine(db_url)
    my_pid = None
    if watcher is not None:
        with watcher.connect() as conn:
            my_pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
    deadline = time.monotonic() + 50
    writing = False
    while importer.poll() is None and time.monotonic() < deadline:
        writing = _wal_size(db_url) > baseline + 256 * 1024 if sqlite else _pg_inserting(watcher, my_pid)
        if writing:
            break
        time.sleep(0.005)
    importer.send_signal(signal.SIGKILL)
    importer.wait(timeout=30)
    if watcher is not None:
        watcher.dispose()
    assert writing, f"the import finished (status {importer.returncode}) before it could be killed mid-write"
    assert importer.returncode == -signal.SIGKILL

    engine.dispose()
    reopened = make_engine(db_url)  # as the next process would
    if sqlite:
        with reopened.connect() as conn:
            assert conn.execute(text("PRAGMA integrity_check")).scalar_one() == "ok"
    else:  # the killed client's transaction is gone once the server notices the closed connection
        time.sleep(0.2)
    assert counts(reopened) == before
    report = import_folder(reopened, tmp_path / "bulk", actor="retry")  # a later import works
    assert sum(report.new.values()) == rows
    after = counts(reopened)
    assert after["patient"] - before["patient"] == 500 and after["check_in"] - before["check_in"] == 25_000
    reopened.dispose()


# ----- two processes on one PostgreSQL -------------------------------------------------------

WORKER = r"""
import json, sys
from store.db import open_database
from store import records, queries
from store.validation import Validator
engine = open_database(sys.argv[1])
for line in sys.stdin:
    cmd = json.loads(line)
    try:
        if cmd["do"] == "add_patient":
            records.add_patient(engine, cmd["row"], actor=cmd["actor"])
            out = {"ok": True}
        elif cmd["do"] == "patients":
            out = {"ok": True, "ids": sorted(queries.patients_frame(engine)["patient_id"].tolist())}
        elif cmd["do"] == "version":
            frame = queries.patients_frame(engine, [cmd["id"]], with_tracking=True)
            out = {"ok": True, "version": int(frame["version"].iloc[0]), "plan": float(frame["planned_interval_days"].iloc[0])}
        elif cmd["do"] == "amend_patient":
            records.amend_patient(engine, cmd["id"], cmd["changes"], actor=cmd["actor"], reason="plan changed",
                                  expected_version=cmd["expected"])
            out = {"ok": True}
    except records.RecordConflict as exc:
        out = {"ok": False, "conflict": str(exc)}
    print(json.dumps(out), flush=True)
"""


class Worker:
    """A separate Python process with its own engine, as a second app server would have."""

    def __init__(self, url: str):
        env = {**os.environ, "PYTHONPATH": str(REPO), "KETAWATCH_CLINIC_TIMEZONE": TZ}
        self.proc = subprocess.Popen([sys.executable, "-c", WORKER, url], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=env)

    def ask(self, **cmd):
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


needs_pg = pytest.mark.skipif(not PG_URL, reason="needs KETAWATCH_TEST_DATABASE_URL (PostgreSQL)")

PATIENT_ROW = {"patient_id": "TWO-1", "indication": "ptsd", "sud_history": "no", "treatment_start": "2026-01-01",
               "planned_interval_days": 21}


@needs_pg
def test_two_server_processes_on_one_postgresql_see_each_others_writes(tmp_path):
    url, drop = fresh_database_url("postgresql", tmp_path)
    upgrade(make_engine(url))
    first, second = Worker(url), Worker(url)
    try:
        assert second.ask(do="patients")["ids"] == []
        assert first.ask(do="add_patient", row=PATIENT_ROW, actor="alice")["ok"]
        assert second.ask(do="patients")["ids"] == ["TWO-1"]
        assert second.ask(do="add_patient", row={**PATIENT_ROW, "patient_id": "TWO-2"}, actor="bob")["ok"]
        assert first.ask(do="patients")["ids"] == ["TWO-1", "TWO-2"]
        # both open version 1; the first to save wins, the other is told, across processes
        assert first.ask(do="version", id="TWO-1")["version"] == second.ask(do="version", id="TWO-1")["version"] == 1
        assert first.ask(do="amend_patient", id="TWO-1", changes={"planned_interval_days": 28}, actor="alice", expected=1)["ok"]
        refused = second.ask(do="amend_patient", id="TWO-1", changes={"planned_interval_days": 14}, actor="bob", expected=1)
        assert not refused["ok"] and "changed by alice" in refused["conflict"]
        assert second.ask(do="version", id="TWO-1") == {"ok": True, "version": 2, "plan": 28.0}
    finally:
        first.close()
        second.close()
        drop()


# ----- upgrading a database of the first released schema -------------------------------------

FIRST_SCHEMA = "0001"
AT = datetime(2026, 3, 1, 9, 30, tzinfo=timezone.utc)


def rows_at_0001(password_hash: str) -> dict[str, list[dict]]:
    """One or more rows for every table of migration 0001, written against that schema only (frozen with it)."""
    tracked = {"version": 1, "recorded_at": AT, "recorded_by": "alice"}
    return {
        "app_setting": [{"key": "clinic_name", "value": "Riverside"}],
        "app_user": [{"username": "alice", "display_name": "Alice", "role": "clinician", "password_hash": password_hash,
                      "disabled": False, "failed_attempts": 2, "locked_until": None, "created_at": AT,
                      "last_sign_in_at": AT}],
        "patient": [
            {**tracked, "patient_id": "OLD-1", "display_name": "Ann O'Neil", "birth_year": 1971, "sex": "female",
             "indication": "depression", "sud_history": True, "treatment_start": datetime(2026, 1, 5).date(),
             "planned_dose_mg_per_kg": 0.5, "planned_interval_days": 21, "clinician": "alice", "status": "active"},
            {**tracked, "version": 2, "patient_id": "OLD-2", "indication": "ptsd", "sud_history": False,
             "treatment_start": datetime(2026, 2, 1).date(), "status": "paused", "amended_at": AT,
             "amended_by": "bob", "amendment_reason": "paused by the team"},
        ],
        "infusion_session": [
            {**tracked, "id": 1, "patient_id": "OLD-1", "session_at": AT, "route": "iv", "dose_mg": 35.0,
             "weight_kg": 70.0, "duration_min": 40, "early_request": False, "dose_increase_request": True,
             "sbp_pre": 120, "dbp_pre": 80, "sbp_post": 140, "dbp_post": 90, "hr_pre": 70, "hr_post": 80,
             "spo2_pre": 98, "spo2_post": 97, "dissociation_cadss": 12, "notes": "felt floaty"},
            {**tracked, "version": 2, "id": 2, "patient_id": "OLD-1", "session_at": datetime(2026, 2, 1, 9, tzinfo=timezone.utc),
             "route": "intranasal", "dose_mg": 56.0, "voided_at": AT, "voided_by": "bob", "void_reason": "duplicate"},
        ],
        "side_effect_event": [{"id": 1, "session_id": 1, "effect": "nausea", "severity": "mild", "superseded_at": None},
                              {"id": 2, "session_id": 1, "effect": "dizziness", "severity": "moderate", "superseded_at": AT}],
        "check_in": [{**tracked, "id": 1, "patient_id": "OLD-1", "reported_at": AT, "craving": 3, "sds_1": 1, "sds_2": 0,
                      "sds_3": 1, "sds_4": 0, "sds_5": 2, "secrecy": 1, "tolerance": 2, "phq9": 14, "notes": "ok week"}],
        "record_revision": [{"id": 1, "record_type": "session", "record_key": "2", "version": 1,
                             "data": {"dose_mg": 56.0, "route": "intranasal"}, "changed_at": AT, "changed_by": "bob",
                             "change": "void", "reason": "duplicate"}],
        "audit_event": [{"id": 1, "at": AT, "actor": "alice", "action": "create", "entity": "session", "entity_key": "1",
                         "patient_id": "OLD-1", "detail": {"after": {"dose_mg": 35.0}}}],
        "alert_review": [{"id": 1, "patient_id": "OLD-1", "reviewed_at": AT, "reviewed_by": "alice", "level": "amber",
                          "reasons": "craving_rising", "action": "discussed_with_patient", "note": "talked it through"}],
    }


def read_tables(engine, names) -> dict[str, list[tuple]]:
    """The rows of the named tables (their columns as the database has them now), in primary-key order."""
    meta = MetaData()
    out = {}
    with engine.connect() as conn:
        for name in names:
            table = Table(name, meta, autoload_with=conn)
            out[name] = [tuple(r) for r in conn.execute(select(table).order_by(*table.primary_key.columns))]
    return out


def test_a_database_of_the_first_schema_upgrades_with_every_row_intact(db_url):
    engine = make_engine(db_url)
    command.upgrade(alembic_config(engine), FIRST_SCHEMA)
    data = rows_at_0001(accounts.hash_password(PASSWORD))
    meta = MetaData()
    with engine.begin() as conn:
        tables = {name: Table(name, meta, autoload_with=conn) for name in data}
        for name in ("app_setting", "app_user", "patient", "infusion_session", "side_effect_event", "check_in",
                     "record_revision", "audit_event", "alert_review"):
            for row in data[name]:
                conn.execute(tables[name].insert(), row)
        if engine.dialect.name == "postgresql":
            for name in ("infusion_session", "side_effect_event", "check_in", "record_revision", "audit_event", "alert_review"):
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), (SELECT max(id) FROM {name}))"))
    first_columns = {name: [c.name for c in table.columns] for name, table in tables.items()}
    before = read_tables(engine, data)
    assert all(len(before[name]) == len(rows) for name, rows in data.items())

    upgrade(engine)  # to head: whatever migrations exist by now
    meta_after = MetaData()
    with engine.connect() as conn:
        after = {}
        for name, columns in first_columns.items():
            table = Table(name, meta_after, autoload_with=conn)
            after[name] = [tuple(r) for r in conn.execute(
                select(*(table.c[c] for c in columns)).order_by(*table.primary_key.columns))]
    assert after == before

    # and the app works on the upgraded data: records load, the account signs in, new writes get fresh ids
    loaded = load_records(engine)
    assert list(loaded.patients["patient_id"]) == ["OLD-1", "OLD-2"]
    assert list(loaded.sessions["id"]) == [1]  # the voided session stays out of the live records
    assert accounts.authenticate(engine, "alice", PASSWORD, now=NOW).username == "alice"
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Table("audit_event", MetaData(), autoload_with=conn))).scalar_one() == 2
    engine.dispose()


@needs_pg
@pytest.mark.browser
def test_two_streamlit_servers_on_one_postgresql_share_their_writes(tmp_path, browser):
    """An admin adds an account through server A; that person signs in through server B at once."""
    url, drop = fresh_database_url("postgresql", tmp_path)
    engine = make_engine(url)
    upgrade(engine)
    make_user(engine, "admin")
    engine.dispose()
    first, base_a = serve(url, tmp_path / "a.log")
    second, base_b = serve(url, tmp_path / "b.log")
    try:
        context, page = sign_in_browser(browser, base_a, "ada")
        page.locator("[data-testid=stSidebarNav] a", has_text="Users").first.click()
        settle(page)
        page.get_by_label("Username (an email address works, and links single sign-on)").fill("nurse.b")
        page.get_by_label("Full name").fill("Nurse B")
        page.get_by_label(re.compile(r"^Password \(at least \d+ characters\)$")).fill(PASSWORD)  # not "New password ..."
        page.get_by_label("Repeat the password").fill(PASSWORD)
        page.get_by_role("button", name="Add account").click()
        settle(page)
        assert "Account nurse.b added as clinician" in page.inner_text("[data-testid=stMain]")
        context.close()

        context, page = sign_in_browser(browser, base_b, "nurse.b")
        assert page.get_by_role("heading", name="Caseload").count() == 1
        assert "Signed in as Nurse B" in page.inner_text("[data-testid=stSidebar]")
        context.close()
    finally:
        stop(first)
        stop(second)
        drop()


@needs_pg
def test_app_servers_starting_together_on_a_new_postgresql_migrate_one_at_a_time(tmp_path):
    """Two processes opening one new database at once: both start, and the schema is made once (advisory lock)."""
    url, drop = fresh_database_url("postgresql", tmp_path)
    try:
        opener = "import sys; from store.db import make_engine, upgrade; upgrade(make_engine(sys.argv[1])); print('ok')"
        for _ in range(3):  # without the lock, one of the two failed in most rounds (duplicate pg_type)
            procs = [subprocess.Popen([sys.executable, "-c", opener, url], cwd=REPO, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True) for _ in range(2)]
            results = [p.communicate(timeout=120) for p in procs]
            assert [p.returncode for p in procs] == [0, 0], [err[-400:] for _, err in results]
            engine = make_engine(url)
            with engine.connect() as conn:
                assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar_one() == 1
                conn.execute(text("DROP SCHEMA public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
                conn.commit()
            engine.dispose()
    finally:
        drop()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_failed_statement_never_carries_its_values_into_its_error_text(tmp_path, backend):
    """SQLAlchemy would quote the values of a failed statement in the error, which Streamlit logs."""
    from sqlalchemy.exc import DBAPIError

    url, drop = fresh_database_url(backend, tmp_path)
    engine = make_engine(url)
    try:
        with pytest.raises(DBAPIError) as caught, engine.connect() as conn:
            conn.execute(text("SELECT * FROM no_such_table WHERE patient_id = :pid"), {"pid": "QX-7731-SECRET"})
        assert "QX-7731" not in str(caught.value) and "hidden" in str(caught.value)
    finally:
        engine.dispose()
        drop()


def test_an_uncaught_page_error_reaches_the_server_log_by_type_and_place_only(capfd):
    """Through the path Streamlit itself takes: with rich installed it printed the whole error, message and all."""
    from streamlit import config, error_util
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(REPO / "dashboard" / "app.py"), default_timeout=30).run()  # the app's own settings
    assert not at.exception
    assert config.get_option("logger.enableRich") is False
    capfd.readouterr()
    import io
    import logging

    logged = io.StringIO()
    handler = logging.StreamHandler(logged)  # the journal's view of the log (Streamlit's own handler may be
    handler.setFormatter(logging.Formatter("%(message)s"))  # bound to an earlier test's captured stream)
    logger = logging.getLogger("streamlit.error_util")
    logger.addHandler(handler)
    quoted = "Failing row contains (" + ", ".join(["KW-0014", "Called Zelda Secretname at home"]) + ")"
    try:
        raise RuntimeError(quoted)  # a stack frame shows this line, not the words it holds
    except RuntimeError as exc:
        error_util._log_uncaught_app_exception(exc)
    finally:
        logger.removeHandler(handler)
    out, err = capfd.readouterr()  # whatever was printed past logging (rich wrote to stdout)
    everything = logged.getvalue() + out + err
    assert "RuntimeError" in logged.getvalue() and "test_durability.py" in logged.getvalue()  # by type and place ...
    assert "Zelda" not in everything and "KW-0014" not in everything  # ... without the message


@needs_pg
def test_an_uncaught_database_error_reaches_the_server_log_without_the_row_it_quotes(tmp_path):
    """PostgreSQL's own message quotes the refused row ('Key (patient_id)=(...) already exists'): the log keeps
    the error's type and stack, not its message."""
    import io
    import logging

    from sqlalchemy.exc import IntegrityError

    from dashboard import private_logs

    url, drop = fresh_database_url("postgresql", tmp_path)
    engine = make_engine(url)
    upgrade(engine)
    insert = text("INSERT INTO app_setting (key, value) VALUES (:key, 'x')")
    row = {"key": "-".join(["QX", "7731", "SECRET"])}  # not on the source line a stack frame would show
    try:
        with engine.begin() as conn:
            conn.execute(insert, row)
        with pytest.raises(IntegrityError) as caught, engine.begin() as conn:
            conn.execute(insert, row)
        assert "QX-7731" in str(caught.value)  # the database's own words quote it ...
        private_logs.install()
        private_logs.install()  # once per process, however many runs call it
        logger = logging.getLogger("streamlit.error_util")
        assert sum(isinstance(f, private_logs.WithholdErrorMessages) for f in logger.filters) == 1
        out = io.StringIO()
        handler = logging.StreamHandler(out)
        handler.setFormatter(logging.Formatter("%(message)s"))  # the default formatter would print exc_info
        logger.addHandler(handler)
        try:
            logger.error("Uncaught app execution", exc_info=caught.value)
        finally:
            logger.removeHandler(handler)
        logged = out.getvalue()
        assert "QX-7731" not in logged  # ... the log does not
        assert "IntegrityError <- UniqueViolation" in logged and "test_durability.py" in logged
    finally:
        engine.dispose()
        drop()


def test_a_new_sqlite_database_is_readable_by_its_owner_only(tmp_path):
    old = os.umask(0o022)
    try:
        path = tmp_path / "clinic.db"
        engine = make_engine(f"sqlite:///{path}")
        upgrade(engine)
        with engine.connect() as conn:  # the -wal and -shm files exist while a connection is open
            conn.execute(text("SELECT 1"))
            for made in [path, *tmp_path.glob("clinic.db-*")]:
                assert made.stat().st_mode & 0o777 == 0o600, made.name
        engine.dispose()
    finally:
        os.umask(old)
