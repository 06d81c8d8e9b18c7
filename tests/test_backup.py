"""`ketawatch backup` / `ketawatch restore`: a consistent copy while the app writes, a faithful round trip on
SQLite (and PostgreSQL with pg_dump/pg_restore), and refusals that protect data."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError
from sqlmodel import SQLModel

import store.models  # noqa: F401 - every table in the metadata
from ketawatch import backup as kb
from store import records
from store.db import make_engine, upgrade
from store.importer import import_folder
from store.queries import sessions_frame
from store.validation import Validator
from tests.access_support import cheap_hashes, make_user  # noqa: F401 - autouse fixture
from tests.conftest import BACKENDS, NOW, PG_URL, REPO, TZ, fresh_database_url
from tests.store_support import write_folder

#: Runs the real `ketawatch` entry point, as the installed console script does.
CLI = "from ketawatch.cli import main; main()"


def ketawatch(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess:
    """`ketawatch ARGS` in a subprocess, as a clinic's script would run it."""
    return subprocess.run([sys.executable, "-c", CLI, *args], cwd=cwd, input=stdin, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "HOME": str(cwd)}, timeout=120)


def table_rows(engine) -> dict[str, list[tuple]]:
    """Every row of every KetaWatch table, in primary-key order: the whole content of a database."""
    out = {}
    with engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            order = list(table.primary_key.columns)
            out[table.name] = [tuple(r) for r in conn.execute(select(table).order_by(*order))]
        out["alembic_version"] = [tuple(r) for r in conn.execute(text("SELECT version_num FROM alembic_version"))]
    return out


def without_restore_mark(rows: dict[str, list[tuple]]) -> dict[str, list[tuple]]:
    """A restored database's rows less the one restore adds to app_setting (its restore mark), which must be there."""
    from store.app_settings import RESTORE_KEY

    marks = [row for row in rows["app_setting"] if row[0] == RESTORE_KEY]
    assert len(marks) == 1 and len(marks[0][1]) == 16, marks
    return {**rows, "app_setting": [row for row in rows["app_setting"] if row[0] != RESTORE_KEY]}


def fill(engine, folder: Path) -> None:
    """Records of every kind: import, an amendment (a revision), an account, sign-in lines."""
    validator = Validator(now=NOW, tz=TZ)
    import_folder(engine, write_folder(folder), actor="setup", validator=validator)
    sid = int(sessions_frame(engine)["id"].iloc[0])
    records.amend_session(engine, sid, {"dose_mg": 41}, actor="cleo", reason="typo", expected_version=1,
                          validator=validator)
    make_user(engine, "clinician")


@pytest.fixture
def filled_sqlite(tmp_path):
    url = f"sqlite:///{tmp_path / 'live.db'}"
    engine = make_engine(url)
    upgrade(engine)
    fill(engine, tmp_path / "in")
    yield url, engine
    engine.dispose()


def test_sqlite_round_trip_restores_every_row(filled_sqlite, tmp_path):
    url, engine = filled_sqlite
    original = table_rows(engine)
    message = kb.backup(url, tmp_path / "copy.db", actor="ops")
    assert "1 patients, 1 sessions, 1 check-ins, 1 accounts" in message
    copy = make_engine(f"sqlite:///{tmp_path / 'copy.db'}")
    assert table_rows(copy) == original
    copy.dispose()

    records.add_checkin(engine, {"patient_id": "KW-T1", "reported_at": "2026-03-01", "craving": 9}, actor="cleo",
                        validator=Validator(now=NOW, tz=TZ))
    with pytest.raises(kb.BackupRefused, match="already holds data"):
        kb.restore(url, tmp_path / "copy.db")
    kb.restore(url, tmp_path / "copy.db", force=True, actor="ops")
    restored = without_restore_mark(table_rows(engine))
    added_lines = restored.pop("audit_event")[len(original["audit_event"]):]
    assert restored == {k: v for k, v in original.items() if k != "audit_event"}
    assert [line[3] for line in added_lines] == ["restore"]  # (id, at, actor, action, ...)
    with sqlite3.connect(tmp_path / "live.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_restore_into_a_new_database_needs_no_force(filled_sqlite, tmp_path):
    url, engine = filled_sqlite
    kb.backup(url, tmp_path / "b.db")
    new_url = f"sqlite:///{tmp_path / 'fresh' / 'new.db'}"
    (tmp_path / "fresh").mkdir()
    kb.restore(new_url, tmp_path / "b.db")
    new = make_engine(new_url)
    assert table_rows(new)["infusion_session"] == table_rows(engine)["infusion_session"]
    new.dispose()


def test_a_restore_over_a_database_that_is_being_written_waits_then_changes_nothing(filled_sqlite, tmp_path, monkeypatch):
    """The dashboard left running mid-write: one readable line, and the live file exactly as it was."""
    url, engine = filled_sqlite
    kb.backup(url, tmp_path / "b.db")
    pid = str(sessions_frame(engine)["patient_id"].iloc[0])
    records.add_checkin(engine, {"patient_id": pid, "reported_at": "2026-11-21T09:00", "craving": "4"},
                        actor="t", validator=Validator(now=NOW, tz=TZ))  # in the live file, not in the backup
    before = table_rows(engine)
    engine.dispose()
    monkeypatch.setattr(kb, "BUSY_SECONDS", 0.2)
    writer = sqlite3.connect(url.removeprefix("sqlite:///"))
    writer.execute("BEGIN IMMEDIATE")  # another program holds the write lock
    try:
        with pytest.raises(kb.BackupRefused, match="is busy: another program .* nothing was changed"):
            kb.restore(url, tmp_path / "b.db", force=True)
    finally:
        writer.rollback()
        writer.close()
    assert table_rows(make_engine(url)) == before


def test_a_backup_never_overwrites_a_file(filled_sqlite, tmp_path):
    url, _ = filled_sqlite
    target = tmp_path / "exists.db"
    target.write_bytes(b"precious")
    with pytest.raises(kb.BackupRefused, match="already exists"):
        kb.backup(url, target)
    assert target.read_bytes() == b"precious"


def not_ketawatch(tmp_path: Path) -> Path:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE notes (x)")
    return path


def newer_schema(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "newer.db"
    kb.backup(url, path)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    return path


def garbage(tmp_path: Path) -> Path:
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not a database at all" * 100)
    return path


def truncated(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "whole.db"
    kb.backup(url, path)
    cut = tmp_path / "truncated.db"
    cut.write_bytes(path.read_bytes()[:6000])
    return cut


@pytest.mark.parametrize("make,message", [
    (lambda tmp, url: not_ketawatch(tmp), "not a KetaWatch backup"),
    (lambda tmp, url: newer_schema(tmp, url), "newer KetaWatch"),
    (lambda tmp, url: garbage(tmp), "not a KetaWatch backup"),
    (lambda tmp, url: truncated(tmp, url), "damaged|not a readable|not a KetaWatch"),
    (lambda tmp, url: tmp / "missing.db", "no such backup file"),
])
def test_restore_checks_the_file_first_and_changes_nothing_when_it_is_wrong(filled_sqlite, tmp_path, make, message):
    url, engine = filled_sqlite
    bad = make(tmp_path, url)
    before = table_rows(engine)
    with pytest.raises(kb.BackupRefused, match=message):
        kb.restore(url, bad, force=True)
    assert table_rows(engine) == before


def other_application(tmp_path: Path) -> Path:
    path = tmp_path / "payroll.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE salaries (name, amount)")
        conn.execute("INSERT INTO salaries VALUES ('someone', 1)")
    return path


def empty_other_application(tmp_path: Path) -> Path:
    """Another application's tables before it has stored anything: a restore copied over the file took them with it."""
    path = tmp_path / "invoices.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE invoices (id, total)")
        conn.execute("CREATE VIEW unpaid AS SELECT * FROM invoices")
    return path


def text_file(tmp_path: Path) -> Path:
    path = tmp_path / "notes.txt"
    path.write_text("a clinic's notes, not a database\n" * 200)
    return path


@pytest.mark.parametrize("make,message", [
    (other_application, r"holds tables that are not KetaWatch's \(salaries\); restore only replaces a KetaWatch database"),
    (empty_other_application, r"holds tables that are not KetaWatch's \(invoices, unpaid\); restore only replaces"),
    (text_file, "is not an SQLite database; restore does not overwrite other files"),
])
@pytest.mark.parametrize("force", [False, True])
def test_restore_never_overwrites_a_file_that_is_not_a_ketawatch_database(filled_sqlite, tmp_path, make, message, force):
    url, _ = filled_sqlite
    kb.backup(url, tmp_path / "b.db")
    target = make(tmp_path)
    before = target.read_bytes()
    with pytest.raises(kb.BackupRefused, match=message):
        kb.restore(f"sqlite:///{target}", tmp_path / "b.db", force=force)
    assert target.read_bytes() == before


def test_a_damaged_backup_is_named_in_one_line(filled_sqlite, tmp_path):
    url, _ = filled_sqlite
    kb.backup(url, tmp_path / "whole.db")
    data = bytearray((tmp_path / "whole.db").read_bytes())
    for page in range(2, len(data) // 4096):  # scribble over every b-tree page header after the first
        data[page * 4096:page * 4096 + 8] = b"\xff" * 8
    (tmp_path / "scribbled.db").write_bytes(bytes(data))
    with pytest.raises(kb.BackupRefused) as refused:
        kb.restore(url, tmp_path / "scribbled.db", force=True)
    assert "\n" not in refused.value.message and "damaged" in refused.value.message


def test_a_backup_taken_while_the_app_writes_is_consistent(filled_sqlite, tmp_path):
    """Each check-in and its audit line commit together; a consistent copy has exactly as many of one as the other."""
    url, engine = filled_sqlite
    imported = len(table_rows(engine)["check_in"])
    stop = threading.Event()
    written = []

    def clinic_at_work():
        validator = Validator(now=NOW, tz=TZ)
        start = datetime(2020, 1, 1, tzinfo=timezone.utc)
        while not stop.is_set():
            when = start + timedelta(hours=len(written))
            try:
                records.add_checkin(engine, {"patient_id": "KW-T1", "reported_at": when, "craving": len(written) % 11},
                                    actor="cleo", validator=validator)
            except OperationalError:  # SQLite's deferred BEGIN vs. the backup's own audit line: see test_amend_void
                continue
            written.append(when)

    writer = threading.Thread(target=clinic_at_work)
    writer.start()
    copies = []
    try:
        for i in range(4):
            path = tmp_path / f"during-{i}.db"
            kb.backup(url, path)
            copies.append(path)
    finally:
        stop.set()
        writer.join()
    assert written, "the writer ran during the backups"
    for path in copies:
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            checkins = conn.execute("SELECT count(*) FROM check_in").fetchone()[0]
            lines = conn.execute("SELECT count(*) FROM audit_event WHERE action = 'create' AND entity = 'checkin'").fetchone()[0]
            assert checkins - imported == lines
    assert len(set(copies_counts(copies))) > 1, "the copies were taken at different moments of the writing"


def copies_counts(paths):
    for path in paths:
        with sqlite3.connect(path) as conn:
            yield conn.execute("SELECT count(*) FROM check_in").fetchone()[0]


def test_backup_and_restore_are_audited(filled_sqlite, tmp_path):
    url, engine = filled_sqlite
    kb.backup(url, tmp_path / "a.db", actor="night-ops")
    with engine.connect() as conn:
        actor, action, detail = conn.execute(text(
            "SELECT actor, action, detail FROM audit_event ORDER BY id DESC LIMIT 1")).one()
    assert (actor, action) == ("night-ops", "backup") and "a.db" in str(detail)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_restore_line_says_how_many_audit_lines_the_replaced_trail_held_and_its_newest(backend, tmp_path):
    """A restore replaces the trail with the backup's: the lines written since the backup must be known to be gone."""
    import json

    if backend == "postgresql" and not (os.environ.get("KETAWATCH_TEST_DATABASE_URL") and shutil.which("pg_dump")):
        pytest.skip("needs KETAWATCH_TEST_DATABASE_URL and pg_dump/pg_restore on PATH")
    url, drop = fresh_database_url(backend, tmp_path)
    try:
        engine = make_engine(url)
        upgrade(engine)
        fill(engine, tmp_path / "in")
        kb.backup(url, tmp_path / "copy.bak", actor="night-ops")
        from store.audit import record_patient_view

        late = datetime.now(timezone.utc).replace(microsecond=250000) + timedelta(minutes=5)
        record_patient_view(engine, actor="dr-late", patient_id="P1", page="patient", at=late)  # after the backup
        with engine.connect() as conn:
            held, last = conn.execute(text("SELECT count(*), max(id) FROM audit_event")).one()
        engine.dispose()
        kb.restore(url, tmp_path / "copy.bak", force=True, actor="night-ops")
        engine = make_engine(url)
        with engine.connect() as conn:
            number, actor, action, detail = conn.execute(text(
                "SELECT id, actor, action, detail FROM audit_event ORDER BY id DESC LIMIT 1")).one()
            views = conn.execute(text("SELECT count(*) FROM audit_event WHERE actor = 'dr-late'")).scalar_one()
        engine.dispose()
        detail = detail if isinstance(detail, dict) else json.loads(detail)
        assert (actor, action, views) == ("night-ops", "restore", 0)  # the late line is gone with the old trail...
        assert detail["replaced_trail_lines"] == held  # ...and the restore says how many lines were replaced
        assert detail["replaced_trail_newest"] == late.isoformat()  # ISO UTC on either database
        # ...and its number, and every later one, follows the replaced trail's: none means two different lines
        assert detail["replaced_trail_last_line"] == last and number == last + 1
        record_patient_view(engine, actor="dr-after", patient_id="P1", page="patient")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT id FROM audit_event WHERE actor = 'dr-after'")).scalar_one() == last + 2
        engine.dispose()
    finally:
        drop()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_dashboard_left_running_through_a_restore_reads_the_restored_database_not_its_caches(backend, tmp_path):
    """The README says to stop the app first; when it was not, it showed a patient the restore had removed and missed
    one added after it: the restored counter (PostgreSQL) or row counts (SQLite) repeated those of its cached state."""
    from ketawatch.live_caseload import LiveCaseload
    from store.queries import data_version
    from store.settings import get_settings

    if backend == "postgresql" and not (os.environ.get("KETAWATCH_TEST_DATABASE_URL") and shutil.which("pg_dump")):
        pytest.skip("needs KETAWATCH_TEST_DATABASE_URL and pg_dump/pg_restore on PATH")
    url, drop = fresh_database_url(backend, tmp_path)
    app = make_engine(url)  # the running dashboard's engine, kept open throughout
    try:
        upgrade(app)
        fill(app, tmp_path / "in")
        kb.backup(url, tmp_path / "copy.bak", actor="ops")
        new_patient = {"indication": "depression", "sud_history": "no", "treatment_start": "2026-01-05"}
        records.add_patient(app, {"patient_id": "KW-7777", **new_patient}, actor="cleo")
        seen, caseload = data_version(app), LiveCaseload(app, TZ, get_settings().review_again_days)
        assert "KW-7777" in set(caseload.refresh(NOW.date()).table["patient_id"])
        kb.restore(url, tmp_path / "copy.bak", force=True, actor="ops")
        records.add_patient(app, {"patient_id": "KW-8888", **new_patient}, actor="cleo")  # the same counts again
        assert data_version(app) != seen
        shown = set(caseload.refresh(NOW.date()).table["patient_id"])
        assert "KW-8888" in shown and "KW-7777" not in shown
    finally:
        app.dispose()
        drop()


# ----- through the command line --------------------------------------------------------------


UNSUPPORTED = ("KetaWatch runs on SQLite or PostgreSQL, not mysql; "
               "use sqlite:///FILE or postgresql+psycopg://USER@HOST/DATABASE")


def test_the_commands_exit_with_one_readable_line(filled_sqlite, tmp_path):
    url, _ = filled_sqlite
    done = ketawatch("backup", "nightly.db", "--db", url, cwd=tmp_path)
    assert done.returncode == 0 and "backup written to nightly.db" in done.stdout
    again = ketawatch("backup", "nightly.db", "--db", url, cwd=tmp_path)
    assert again.returncode == 1 and again.stderr.strip().count("\n") == 0 and "already exists" in again.stderr
    refused = ketawatch("restore", "nightly.db", "--db", url, cwd=tmp_path)
    assert refused.returncode == 1 and "--force" in refused.stderr and "Traceback" not in refused.stderr
    forced = ketawatch("restore", "nightly.db", "--db", url, "--force", cwd=tmp_path)
    assert forced.returncode == 0 and forced.stdout.startswith("restored")
    wrong = ketawatch("restore", str(garbage(tmp_path)), "--db", f"sqlite:///{tmp_path / 'x.db'}", cwd=tmp_path)
    assert wrong.returncode == 1 and "not a KetaWatch backup" in wrong.stderr
    for command in ("backup", "restore"):
        # a --db that names no database KetaWatch can use is a usage error (2), as the same URL in the setting is
        typo = ketawatch(command, "nightly.db" if command == "restore" else "other.db", "--db", "notaurl", cwd=tmp_path)
        assert typo.returncode == 2
        assert typo.stderr.strip().startswith("cannot open database (the URL given): not a database URL (for example "
                                              "sqlite:///"), typo.stderr
        other = ketawatch(command, "nightly.db" if command == "restore" else "other.db", "--db", "mysql://root@127.0.0.1/kw",
                          cwd=tmp_path)
        assert other.returncode == 2 and other.stderr.strip() == f"cannot open database mysql://root@127.0.0.1/kw: {UNSUPPORTED}", \
            other.stderr


# ----- PostgreSQL ----------------------------------------------------------------------------

needs_pg_tools = pytest.mark.skipif(
    not (PG_URL and shutil.which("pg_dump") and shutil.which("pg_restore")),
    reason="needs KETAWATCH_TEST_DATABASE_URL and pg_dump/pg_restore on PATH",
)


@pytest.fixture
def filled_pg(tmp_path):
    """(URL and engine of a filled PostgreSQL database, URL of a new empty one beside it); both dropped after."""
    source_url, drop_source = fresh_database_url("postgresql", tmp_path)
    target_url, drop_target = fresh_database_url("postgresql", tmp_path)
    source = make_engine(source_url)
    try:
        upgrade(source)
        fill(source, tmp_path / "in")
        yield source_url, source, target_url
    finally:
        source.dispose()
        drop_source()
        drop_target()


@needs_pg_tools
def test_postgresql_round_trip_with_pg_dump_and_pg_restore(filled_pg, tmp_path):
    source_url, source, target_url = filled_pg
    original = table_rows(source)
    assert "pg_dump" in kb.backup(source_url, tmp_path / "pg.dump")
    assert kb.inspect_backup(tmp_path / "pg.dump").format == "pg_custom"
    assert (tmp_path / "pg.dump").stat().st_mode & 0o777 == 0o600  # every record and password hash: owner only
    kb.restore(target_url, tmp_path / "pg.dump")
    target = make_engine(target_url)
    restored = without_restore_mark(table_rows(target))
    added = restored.pop("audit_event")[len(original["audit_event"]):]
    assert restored == {k: v for k, v in original.items() if k != "audit_event"}
    assert [line[3] for line in added] == ["restore"]
    with pytest.raises(kb.BackupRefused, match="already holds data"):
        kb.restore(target_url, tmp_path / "pg.dump")
    # the restored trail is still append-only
    with pytest.raises(Exception, match="append-only"):
        with target.begin() as conn:
            conn.execute(text("DELETE FROM audit_event"))
    with pytest.raises(kb.BackupRefused, match="is an SQLite backup"):
        kb.restore(target_url, sqlite_backup(tmp_path))
    target.dispose()


@needs_pg_tools
def test_a_postgresql_backup_restores_on_a_server_without_a_role_granted_rights_in_it(filled_pg, tmp_path):
    """A SELECT on audit_event granted to another role (as the README suggests for copying the trail out) stopped the
    restore with 'role ... does not exist' on a server without it, a rebuilt one most of all (IT review)."""
    import uuid

    from sqlalchemy import create_engine

    from store.db import normalise_url

    source_url, source, target_url = filled_pg
    role = f"kw_auditor_{uuid.uuid4().hex[:8]}"
    admin = create_engine(normalise_url(PG_URL), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE ROLE "{role}" NOLOGIN'))
        with source.begin() as conn:
            conn.execute(text(f'GRANT SELECT ON audit_event TO "{role}"'))
        kb.backup(source_url, tmp_path / "pg.dump")
        with source.begin() as conn:
            conn.execute(text(f'REVOKE SELECT ON audit_event FROM "{role}"'))
        source.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP ROLE "{role}"'))
        assert kb.restore(target_url, tmp_path / "pg.dump").startswith("restored the database")
        target = make_engine(target_url)
        assert table_rows(target)["patient"] == table_rows(make_engine(source_url))["patient"]
        target.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
        admin.dispose()


def sqlite_backup(tmp_path: Path) -> Path:
    """A genuine SQLite KetaWatch backup (to try restoring into PostgreSQL)."""
    url = f"sqlite:///{tmp_path / 'sq.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    kb.backup(url, tmp_path / "sq-backup.db")
    return tmp_path / "sq-backup.db"


def test_postgresql_without_pg_dump_gives_a_clear_message(monkeypatch, tmp_path):
    monkeypatch.setattr(kb.shutil, "which", lambda name: None)
    with pytest.raises(kb.BackupRefused, match="pg_dump is not installed or not on PATH"):
        kb.backup("postgresql://postgres@127.0.0.1:5432/postgres", tmp_path / "x.dump")


@needs_pg_tools
def test_postgresql_restore_of_an_older_backup_over_a_newer_schema_leaves_a_working_database(tmp_path):
    """pg_restore --clean drops only what the backup holds: a table of a later migration stayed, and the upgrade
    after the restore failed on it, leaving a database that no command could open."""
    from alembic import command

    from store.db import alembic_config

    old_url, drop_old = fresh_database_url("postgresql", tmp_path)
    live_url, drop_live = fresh_database_url("postgresql", tmp_path)
    try:
        old = make_engine(old_url)
        command.upgrade(alembic_config(old), "0001")  # as an older KetaWatch left it
        old.dispose()
        assert kb.inspect_backup(_pg_dump(old_url, tmp_path / "old.dump")).revision == "0001"
        live = make_engine(live_url)
        upgrade(live)
        fill(live, tmp_path / "in")
        live.dispose()
        kb.restore(live_url, tmp_path / "old.dump", force=True)
        engine = make_engine(live_url)
        upgrade(engine)  # what every command does on opening: it must work
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM patient")).scalar_one() == 0  # the backup's (empty) data
            actions = [row[0] for row in conn.execute(text("SELECT action FROM audit_event ORDER BY id"))]
        assert actions == ["restore"]
        engine.dispose()
    finally:
        drop_old()
        drop_live()


def test_a_restore_knows_every_function_the_migrations_create():
    """A restore drops them with the tables; a migration that adds one must add it to the list."""
    import re

    from store.db import MIGRATION_FUNCTIONS, MIGRATIONS_DIR

    made = {name for path in (MIGRATIONS_DIR / "versions").glob("*.py")
            for name in re.findall(r"CREATE (?:OR REPLACE )?FUNCTION\s+(\w+)", path.read_text(), re.IGNORECASE)}
    assert made == set(MIGRATION_FUNCTIONS)


def _pg_dump(url: str, path: Path) -> Path:
    """A plain pg_dump archive, as an older KetaWatch's backup command made (it refuses nothing)."""
    target, env = kb._libpq(url)
    subprocess.run(["pg_dump", "--format=custom", "--no-owner", "--file", str(path), "--dbname", target], env=env,
                   check=True)
    return path


@needs_pg_tools
def test_postgresql_restore_never_writes_into_another_application_s_database(tmp_path):
    url, drop = fresh_database_url("postgresql", tmp_path)
    source_url, drop_source = fresh_database_url("postgresql", tmp_path)
    try:
        source = make_engine(source_url)
        upgrade(source)
        source.dispose()
        kb.backup(source_url, tmp_path / "pg.dump")
        other = make_engine(url)
        with other.begin() as conn:
            conn.execute(text("CREATE TABLE lab_results (id int, mrn text)"))
            conn.execute(text("INSERT INTO lab_results VALUES (1, 'x')"))
            conn.execute(text("CREATE TABLE lab_orders (id int)"))  # empty: still another application's
        for force in (False, True):
            with pytest.raises(kb.BackupRefused, match=r"not KetaWatch's \(lab_orders, lab_results\)"):
                kb.restore(url, tmp_path / "pg.dump", force=force)
        with other.begin() as conn:
            conn.execute(text("DELETE FROM lab_results"))
        with pytest.raises(kb.BackupRefused, match=r"not KetaWatch's \(lab_orders, lab_results\)"):
            kb.restore(url, tmp_path / "pg.dump", force=True)  # empty tables too
        with other.connect() as conn:
            tables = {row[0] for row in conn.execute(text(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"))}
        assert tables == {"lab_results", "lab_orders"}  # nothing of KetaWatch's was added
        other.dispose()
    finally:
        drop()
        drop_source()


def test_a_restore_into_a_new_sqlite_file_makes_it_owner_only(filled_sqlite, tmp_path):
    old = os.umask(0o022)
    try:
        kb.backup(filled_sqlite[0], tmp_path / "b.db")
        kb.restore(f"sqlite:///{tmp_path / 'new.db'}", tmp_path / "b.db")
        assert (tmp_path / "new.db").stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_database_made_by_a_newer_ketawatch_is_not_backed_up_or_touched(tmp_path, backend):
    url, drop = fresh_database_url(backend, tmp_path)
    engine = make_engine(url)
    try:
        upgrade(engine)
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '0099_from_the_future'"))
            lines = conn.execute(text("SELECT count(*) FROM audit_event")).scalar_one()
        with pytest.raises(kb.BackupRefused) as refused:
            kb.backup(url, tmp_path / "b.dump")
        assert refused.value.message == ("the database was made by a newer KetaWatch (schema 0099_from_the_future); "
                                         "back it up with that KetaWatch. Nothing was written")
        assert not (tmp_path / "b.dump").exists() and list(tmp_path.glob(".*partial")) == []
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM audit_event")).scalar_one() == lines
    finally:
        engine.dispose()
        drop()


def test_a_backup_into_a_folder_that_does_not_exist_says_so(filled_sqlite, tmp_path):
    """`ketawatch backup /no/such/dir/x.bak` said the folder "is not a folder"; a folder that is a file still is not."""
    url, _ = filled_sqlite
    result = ketawatch("backup", str(tmp_path / "no-such" / "x.bak"), "--db", url, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert result.stderr == f"the folder {tmp_path / 'no-such'} does not exist; create it first, or check the path\n"
    assert not (tmp_path / "no-such").exists()
    (tmp_path / "a-file").write_text("")
    with pytest.raises(kb.BackupRefused, match="is not a folder$"):
        kb.backup(url, tmp_path / "a-file" / "x.bak")


@pytest.mark.parametrize("command", [["backup", "new.db"], ["restore", "b.db"], ["users", "list"]])
def test_a_psycopg2_url_says_to_use_psycopg_3(filled_sqlite, tmp_path, command):
    """A URL copied from another application's settings said only "No module named 'psycopg2'" (backup: as an
    unexpected error)."""
    kb.backup(filled_sqlite[0], tmp_path / "b.db")  # a good backup, so restore gets as far as the URL
    result = ketawatch(*command, "--db", "postgresql+psycopg2://kw@127.0.0.1:1/kw", cwd=tmp_path)
    assert result.returncode == 2, result.stderr  # a usage error, as in KETAWATCH_DATABASE_URL
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].endswith(
        "the URL names the driver psycopg2, which is not installed; use postgresql+psycopg:// (psycopg 3 is what "
        "KetaWatch installs)"), result.stderr


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_going_back_restores_the_backup_over_a_database_a_newer_version_upgraded(backend, tmp_path):
    """README, Upgrading KetaWatch: the older version's `restore --force` replaces the upgraded database; one holding
    a table the older version does not know is refused even with --force, and a new database takes the restore."""
    if backend == "postgresql" and not (os.environ.get("KETAWATCH_TEST_DATABASE_URL") and shutil.which("pg_dump")):
        pytest.skip("needs KETAWATCH_TEST_DATABASE_URL and pg_dump/pg_restore on PATH")
    url, drop = fresh_database_url(backend, tmp_path)
    (tmp_path / "new").mkdir()
    new_url, drop_new = fresh_database_url(backend, tmp_path / "new")
    try:
        engine = make_engine(url)
        upgrade(engine)
        fill(engine, tmp_path / "in")
        before = table_rows(engine)
        kb.backup(url, tmp_path / "before-upgrade")
        with engine.begin() as conn:  # what a newer version's migration might do: a column, and its schema number
            conn.execute(text("ALTER TABLE patient ADD COLUMN from_a_newer_version TEXT"))
            conn.execute(text("UPDATE alembic_version SET version_num = '0099_newer'"))
        engine.dispose()
        kb.restore(url, tmp_path / "before-upgrade", force=True)
        engine = make_engine(url)
        assert without_restore_mark(table_rows(engine))["patient"] == before["patient"]
        with engine.begin() as conn:  # a newer version that added a table
            conn.execute(text("CREATE TABLE from_a_newer_version (x INTEGER)"))
            conn.execute(text("UPDATE alembic_version SET version_num = '0099_newer'"))
        engine.dispose()
        with pytest.raises(kb.BackupRefused, match="holds tables that are not KetaWatch's \\(from_a_newer_version\\)"):
            kb.restore(url, tmp_path / "before-upgrade", force=True)
        kb.restore(new_url, tmp_path / "before-upgrade")  # a new database needs no --force
        engine = make_engine(new_url)
        assert without_restore_mark(table_rows(engine))["patient"] == before["patient"]
        engine.dispose()
    finally:
        drop_new()
        drop()


def test_restoring_an_older_backup_says_that_its_schema_was_upgraded(tmp_path):
    """`restore old1.bak` said 'schema 0001' and left the database at the newest schema without a word (IT review)."""
    from alembic import command

    from store.db import alembic_config, schema_head

    old_path = tmp_path / "old.db"
    old = make_engine(f"sqlite:///{old_path}")
    command.upgrade(alembic_config(old), "0001")  # as an older KetaWatch left it
    old.dispose()
    kb.backup(f"sqlite:///{old_path}", tmp_path / "old.bak")
    assert kb.inspect_backup(tmp_path / "old.bak").revision == "0001"
    said = kb.restore(f"sqlite:///{tmp_path / 'new.db'}", tmp_path / "old.bak")
    assert said.endswith(f"; its schema was then upgraded from 0001 to {schema_head()} (no data is dropped; an older "
                         "KetaWatch can no longer open the restored database)"), said
    current = kb.restore(f"sqlite:///{tmp_path / 'newer.db'}", tmp_path / "old.bak")
    again = kb.backup(f"sqlite:///{tmp_path / 'newer.db'}", tmp_path / "current.bak")
    assert again and "upgraded" not in kb.restore(f"sqlite:///{tmp_path / 'third.db'}", tmp_path / "current.bak")
    assert "upgraded" in current
