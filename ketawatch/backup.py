"""`ketawatch backup` and `ketawatch restore`: a consistent copy of the whole database, and putting it back.

SQLite uses the online backup API (`sqlite3.Connection.backup`), which copies a consistent
snapshot even while the dashboard is writing. PostgreSQL uses its documented route, `pg_dump
--format=custom` and `pg_restore --clean`. A restore first checks that the file really is a
KetaWatch backup of a schema this version knows, and refuses to replace a database that holds
data unless forced.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DatabaseError, OperationalError

from sqlmodel import Session

import store.models  # noqa: F401 - every KetaWatch table in the metadata

from store.app_settings import mark_restored
from store.audit import record_event
from store.db import (
    MIGRATION_FUNCTIONS, alembic_config, create_private, foreign_tables, forget_engines, ketawatch_tables, make_engine,
    normalise_url, schema_revision, upgrade, url_problem,
)

SQLITE_HEADER = b"SQLite format 3\x00"
_TABLE_DATA = re.compile(r"TABLE DATA \S+ (\S+)")
PG_CUSTOM_HEADER = b"PGDMP"
#: Tables whose presence marks a KetaWatch database (and whose rows mean "this database holds data").
KETAWATCH_TABLES = ("patient", "infusion_session", "check_in", "app_user", "audit_event")
COUNTED = {"patient": "patients", "infusion_session": "sessions", "check_in": "check-ins", "app_user": "accounts",
           "audit_event": "audit lines"}


class BackupRefused(Exception):
    """The backup or restore was refused; `message` says why in one line, and nothing was changed."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class BackupFile:
    """What a backup file is: its format ("sqlite" or "pg_custom") and the schema revision it holds."""

    path: Path
    format: str
    revision: str | None


def known_revisions() -> set[str]:
    """Every schema revision this version of KetaWatch can open (and upgrade)."""
    return {script.revision for script in ScriptDirectory.from_config(alembic_config(None)).walk_revisions()}


def _backend(url: str) -> str:
    problem = url_problem(url)
    if problem:
        raise BackupRefused(f"the database URL given is {problem}" if problem.startswith("not a") else problem)
    return make_url(normalise_url(url)).get_backend_name()


def sqlite_path(url: str) -> Path:
    """The database file of an SQLite URL (a plain path too); an in-memory database is refused."""
    database = make_url(normalise_url(url)).database  # a plain file path too, as the command line takes it
    if not database or database == ":memory:":
        raise BackupRefused("an in-memory SQLite database cannot be backed up or restored; use a file URL")
    return Path(database)


def _read_only(path: Path) -> str:
    """An SQLite URI that opens `path` read-only (percent-encoded, so any file name works)."""
    return f"{Path(path).resolve().as_uri()}?mode=ro"


def _counts_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{counts.get(table, 0)} {words}" for table, words in COUNTED.items())


def _sqlite_counts(conn: sqlite3.Connection) -> dict[str, int]:
    names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    return {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in KETAWATCH_TABLES if t in names}


def _sqlite_revision(conn: sqlite3.Connection) -> str | None:
    try:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.DatabaseError:
        return None
    return row[0] if row else None


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """A libpq connection URL for pg_dump/pg_restore, with the password moved to PGPASSWORD (not the command line)."""
    parsed: URL = make_url(normalise_url(url))
    env = dict(os.environ)
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    plain = parsed.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _tool(name: str) -> str:
    found = shutil.which(name)
    if not found:
        raise BackupRefused(
            f"{name} is not installed or not on PATH; PostgreSQL databases are backed up and restored with "
            f"pg_dump and pg_restore (install the PostgreSQL client tools, version at least the server's)"
        )
    return found


def _run(command: list[str], env: dict[str, str], what: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(command, env=env, capture_output=True, text=True, input=stdin)
    if result.returncode != 0:
        first = next((line for line in result.stderr.splitlines() if line.strip()), "no message")
        raise BackupRefused(f"{what} failed: {first.strip()}")
    return result


# ----- checking a backup file --------------------------------------------------------------------------


def inspect_backup(path: Path | str) -> BackupFile:
    """Check that `path` is a KetaWatch backup with a schema this version knows; refuse anything else."""
    path = Path(path)
    if not path.is_file():
        raise BackupRefused(f"{path}: no such backup file")
    with path.open("rb") as handle:
        head = handle.read(16)
    if head.startswith(SQLITE_HEADER):
        conn = sqlite3.connect(_read_only(path), uri=True)
        try:
            names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            revision = _sqlite_revision(conn)
            problem = conn.execute("PRAGMA quick_check").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise BackupRefused(f"{path}: not a readable SQLite database ({exc})") from None
        finally:
            conn.close()
        if problem != "ok":
            first = " ".join(problem.split())  # SQLite lists one problem per line; one line is enough here
            raise BackupRefused(f"{path}: the SQLite file is damaged ({first[:160]})")
        fmt = "sqlite"
        missing = [t for t in KETAWATCH_TABLES if t not in names]
    elif head.startswith(PG_CUSTOM_HEADER):
        tool = _tool("pg_restore")
        listing = _run([tool, "--list", str(path)], dict(os.environ), "reading the backup").stdout
        tables = set(_TABLE_DATA.findall(listing))
        missing = [t for t in (*KETAWATCH_TABLES, "alembic_version") if t not in tables]
        revision = None if missing else _pg_archive_revision(tool, path)
        fmt = "pg_custom"
    else:
        raise BackupRefused(f"{path}: not a KetaWatch backup (neither an SQLite database nor a pg_dump custom archive)")
    if missing:
        raise BackupRefused(f"{path}: not a KetaWatch backup (no {', '.join(missing)} table)")
    if revision is None:
        raise BackupRefused(f"{path}: not a KetaWatch backup (no schema version recorded)")
    if revision not in known_revisions():
        raise BackupRefused(f"{path}: made by a newer KetaWatch (schema {revision}); upgrade KetaWatch to restore it")
    return BackupFile(path=path, format=fmt, revision=revision)


def _pg_archive_revision(tool: str, path: Path) -> str | None:
    """The schema revision inside a pg_dump archive, read from its alembic_version data without restoring."""
    script = _run([tool, "--data-only", "--table=alembic_version", "--file=-", str(path)], dict(os.environ),
                  "reading the backup").stdout
    lines = script.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("COPY ") and "alembic_version" in line and i + 1 < len(lines):
            value = lines[i + 1].strip()
            return None if value == "\\." else value
    return None


# ----- backup --------------------------------------------------------------------------------


def _audit(url: str, *, actor: str, action: str, path: Path, after_line: int | None = None, **detail) -> None:
    """Leave a line in the database's own audit trail: a backup copies every record, a restore replaces them.

    `after_line` (a restore: the replaced trail's last line number): this line, and so every later one, is numbered
    after it, so no number means two different lines (IT review: after a restore, new lines reused the numbers of
    replaced ones, and a trail exported before the restore clashed with the new one).
    """
    engine = make_engine(url)
    try:
        with Session(engine) as db, db.begin():
            number = None
            if after_line is not None:
                restored = db.execute(text("SELECT coalesce(max(id), 0) FROM audit_event")).scalar_one()
                number = max(int(restored), after_line) + 1
            event = record_event(db, actor=actor, action=action, entity="database", file=str(path.resolve()), **detail)
            if number is not None:
                event.id = number
                db.flush()
                if db.get_bind().dialect.name == "postgresql":  # its sequence, which a given id does not move
                    db.execute(text("SELECT setval(pg_get_serial_sequence('audit_event', 'id'), :n)"), {"n": number})
    finally:
        engine.dispose()


def _trail_summary(url: str) -> dict[str, object]:
    """How many audit lines the database at `url` holds and when the newest was written (none: no trail yet).

    A restore replaces the trail with the backup's: its own line says what the replaced one held, so the lines
    written since the backup are known to be gone, and from when.
    """
    if _backend(url) == "sqlite" and not sqlite_path(url).exists():
        return {}
    engine = create_engine(normalise_url(url))
    try:
        with engine.connect() as conn:
            if "audit_event" not in inspect(conn).get_table_names():
                return {}
            count, newest, last = conn.execute(text("SELECT count(*), max(at), max(id) FROM audit_event")).one()
    except DatabaseError:  # unreachable or not a database: the restore's own checks say so in words
        return {}
    finally:
        engine.dispose()
    return {"replaced_trail_lines": int(count), "replaced_trail_newest": _utc_iso(newest),
            "replaced_trail_last_line": int(last or 0)}


def _utc_iso(value) -> str | None:
    """A stored instant as ISO 8601 UTC, whichever database gave it (SQLite: naive UTC text; PostgreSQL: aware)."""
    return None if value is None else pd.to_datetime(value, utc=True).isoformat()  # naive is read as UTC


def _no_folder(folder: Path) -> str:
    """Why a file cannot be made in `folder`: most often a mistyped path, so the folder is not made for it."""
    if not folder.exists():
        return f"the folder {folder} does not exist; create it first, or check the path"
    return f"{folder} is not a folder"


def backup(url: str, path: Path | str, *, actor: str = "cli") -> str:
    """Write a consistent copy of the database at `url` to `path` (a new file); returns a summary sentence."""
    path = Path(path)
    if path.exists():
        raise BackupRefused(f"{path} already exists; choose a new file name (a backup never overwrites a file)")
    if not path.parent.is_dir():
        raise BackupRefused(_no_folder(path.parent))
    try:  # really try, before any work: the refusal named a temporary file, not the folder given (IT review)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".ketawatch-"):
            pass
    except OSError as exc:
        raise BackupRefused(f"cannot write in {path.parent} ({exc.strerror or exc}); nothing was written") from None
    backend = _backend(url)
    _refuse_newer(url, backend)
    if backend == "sqlite":
        message = copy_sqlite(sqlite_path(url), path)
    elif backend == "postgresql":
        message = _backup_postgres(url, path)
    else:
        raise BackupRefused(f"backups of {backend} databases are not supported (SQLite and PostgreSQL are)")
    _audit(url, actor=actor, action="backup", path=path)
    return message


def _refuse_newer(url: str, backend: str) -> None:
    """A database made by a newer KetaWatch is left untouched (the backup would add an audit line to it)."""
    revision = None
    if backend == "sqlite":
        source = sqlite_path(url)
        if not source.is_file():
            return  # said in words by the backup itself
        conn = sqlite3.connect(_read_only(source), uri=True, timeout=BUSY_SECONDS)
        try:
            revision = _sqlite_revision(conn)
        except sqlite3.DatabaseError:
            return  # not a database: the backup says so
        finally:
            conn.close()
    elif backend == "postgresql":
        engine = create_engine(normalise_url(url))
        try:
            with engine.connect() as conn:
                if "alembic_version" in inspect(conn).get_table_names():
                    revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except OperationalError:
            return  # the backup names the connection problem
        finally:
            engine.dispose()
    if revision is not None and revision not in known_revisions():
        raise BackupRefused(f"the database was made by a newer KetaWatch (schema {revision}); back it up with that "
                            "KetaWatch. Nothing was written")


def sqlite_in_memory(source: Path) -> sqlite3.Connection:
    """A consistent copy of the SQLite database `source` held in memory, for a dry run to upgrade and check against:
    nothing is written to disk, so no copy of patient data is left behind by a run that is killed (code review)."""
    if not source.is_file():
        raise BackupRefused(f"there is no database at {source}")
    src = sqlite3.connect(_read_only(source), uri=True, timeout=BUSY_SECONDS)
    copy = sqlite3.connect(":memory:", check_same_thread=False)
    try:
        src.backup(copy)
    except sqlite3.Error as exc:
        copy.close()
        raise BackupRefused(f"{source} could not be read ({exc})") from None
    finally:
        src.close()
    return copy  # its pragmas come with the engine (store.db.engine_in_memory)


def copy_sqlite(source: Path, path: Path) -> str:
    """A consistent, checked copy of the SQLite database `source` in the new file `path`, adding nothing to the source
    (the backup's audit line is written by `backup`)."""
    if not source.is_file():
        raise BackupRefused(f"there is no database at {source}")
    handle, temp_name = tempfile.mkstemp(prefix=".ketawatch-backup-", suffix=".db", dir=path.parent)
    os.close(handle)
    temp = Path(temp_name)
    try:
        src = sqlite3.connect(_read_only(source), uri=True, timeout=BUSY_SECONDS)
        dst = sqlite3.connect(temp)
        try:
            src.backup(dst)  # one consistent snapshot, even while the app writes
            dst.execute("PRAGMA journal_mode=DELETE")  # a single self-contained file
            check = dst.execute("PRAGMA quick_check").fetchone()[0]
            counts = _sqlite_counts(dst)
            revision = _sqlite_revision(dst)
        except sqlite3.Error as exc:  # a full disk comes as "disk I/O error": one readable line, not a crash
            raise BackupRefused(f"the copy could not be written to {path.parent} ({exc})") from exc
        finally:
            src.close()
            dst.close()
        if check != "ok":
            raise BackupRefused(f"the copy failed its integrity check ({check}); the database may be damaged")
        if revision is None:
            raise BackupRefused(f"{source} is not a KetaWatch database (no schema version recorded)")
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
        temp.with_name(temp.name + "-journal").unlink(missing_ok=True)  # left by a copy that failed half-way
    return f"backup written to {path} (schema {revision}: {_counts_text(counts)})"


def _pg_counts(url: str) -> dict[str, int]:
    engine = create_engine(normalise_url(url))
    try:
        with engine.connect() as conn:
            present = set(inspect(conn).get_table_names())
            return {t: conn.execute(text(f'SELECT count(*) FROM "{t}"')).scalar_one() for t in KETAWATCH_TABLES
                    if t in present}
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else "connection failed"
        raise BackupRefused(f"cannot open the database: {reason}") from None
    finally:
        engine.dispose()


def _backup_postgres(url: str, path: Path) -> str:
    dump = _tool("pg_dump")
    counts = _pg_counts(url)
    if "audit_event" not in counts:
        raise BackupRefused("that database is not a KetaWatch database (no audit_event table)")
    target, env = _libpq(url)
    # A new file of its own, readable by its owner only (every record and password hash), as on SQLite.
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    os.close(handle)
    temp = Path(temp_name)
    try:
        _run([dump, "--format=custom", "--no-owner", "--file", str(temp), "--dbname", target], env, "pg_dump")
        inspect_backup(temp)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    return f"backup written to {path} with pg_dump ({_counts_text(counts)})"


# ----- restore -------------------------------------------------------------------------------


def _has_data(counts: dict[str, int]) -> bool:
    return any(counts.values())


#: How long a backup or restore waits for another program's write to an SQLite file to finish.
BUSY_SECONDS = 30
_SQLITE_BUSY, _SQLITE_LOCKED = 5, 6


class _StillBusy(Exception):
    """The file stayed locked by another writer for longer than a restore waits."""


def _give_up_when_busy_for(seconds: float):
    """A progress callback for `sqlite3.Connection.backup`, which on its own retries a locked file for ever."""
    deadline = time.monotonic() + seconds

    def progress(status: int, remaining: int, total: int) -> None:
        if status in (_SQLITE_BUSY, _SQLITE_LOCKED) and time.monotonic() > deadline:
            raise _StillBusy()
    return progress


def restore(url: str, path: Path | str, *, force: bool = False, actor: str = "cli") -> str:
    """Replace the database at `url` with the backup at `path`; refused if the database holds data, unless `force`."""
    found = inspect_backup(path)
    backend = _backend(url)
    if found.format == "sqlite" and backend != "sqlite":
        raise BackupRefused(f"{found.path} is an SQLite backup; restore it to an SQLite database URL")
    if found.format == "pg_custom" and backend != "postgresql":
        raise BackupRefused(f"{found.path} is a PostgreSQL (pg_dump) backup; restore it to a PostgreSQL database URL")
    forget_engines()  # no pooled connection keeps reading the database being replaced
    replaced = _trail_summary(url)
    if backend == "sqlite":
        message = _restore_sqlite(found, sqlite_path(url), force)
    else:
        message = _restore_postgres(found, url, force)
    engine = make_engine(url)
    try:
        upgrade(engine)  # a backup made by an older KetaWatch is brought to the current schema
        now = schema_revision(engine)
        mark_restored(engine)  # a dashboard still running on it reads everything again, not its caches
    finally:
        engine.dispose()
    _audit(url, actor=actor, action="restore", path=found.path, after_line=replaced.get("replaced_trail_last_line"),
           **replaced)
    if found.revision and now and now != found.revision:  # said, as every command says an upgrade (IT review)
        message += (f"; its schema was then upgraded from {found.revision} to {now} (no data is dropped; an older "
                    "KetaWatch can no longer open the restored database)")
    return message


def _refuse_if_data(counts: dict[str, int], where: str, force: bool) -> None:
    if _has_data(counts) and not force:
        raise BackupRefused(
            f"{where} already holds data ({_counts_text(counts)}); restoring would replace it. "
            "Back it up first, then run restore again with --force"
        )


def _foreign_tables(conn: sqlite3.Connection) -> list[str]:
    """Tables and views that are not KetaWatch's, empty or not: the file is (also) some other application's database,
    and a restore, which copies the backup over the whole file, would take them with it."""
    ours = ketawatch_tables()
    names = [row[0] for row in conn.execute(
        "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%'")]
    return sorted(n for n in names if n not in ours)


def _restore_sqlite(found: BackupFile, target: Path, force: bool) -> str:
    if target.exists() and target.stat().st_size:
        conn = sqlite3.connect(f"{target.resolve().as_uri()}?mode=ro", uri=True, timeout=BUSY_SECONDS)
        try:
            foreign = _foreign_tables(conn)
            counts = _sqlite_counts(conn)
        except sqlite3.OperationalError as exc:  # locked, busy, unreadable: a database, but not one to replace now
            raise BackupRefused(f"{target} cannot be checked before restoring ({exc}); nothing was changed") from None
        except sqlite3.DatabaseError:
            raise BackupRefused(f"{target} is not an SQLite database; restore does not overwrite other files. "
                                "Give the path of a KetaWatch database, or a new file") from None
        finally:
            conn.close()
        if foreign:
            raise BackupRefused(f"{target} holds tables that are not KetaWatch's ({', '.join(foreign[:5])}); restore "
                                "only replaces a KetaWatch database, even with --force. Give a new file instead")
        _refuse_if_data(counts, str(target), force)
    elif not target.parent.is_dir():
        raise BackupRefused(_no_folder(target.parent))
    create_private(target)  # a new database file is owner-only, like the backup it comes from
    src = sqlite3.connect(_read_only(found.path), uri=True)
    dst = sqlite3.connect(target, timeout=BUSY_SECONDS)
    try:
        try:
            src.backup(dst, progress=_give_up_when_busy_for(BUSY_SECONDS))  # page by page, under SQLite's locking
        except _StillBusy:  # the copy is rolled back: the file is as it was
            raise BackupRefused(f"{target} is busy: another program (the dashboard?) kept writing to it for "
                                f"{BUSY_SECONDS:g} s. Stop the dashboard and run restore again; nothing was "
                                "changed") from None
        except sqlite3.OperationalError as exc:  # read-only, disk full, I/O: the cause, as SQLite gives it
            raise BackupRefused(f"cannot restore into {target}: {exc}; nothing was changed") from None
        counts = _sqlite_counts(dst)
    finally:
        src.close()
        dst.close()
    return f"restored {target} from {found.path} (schema {found.revision}: {_counts_text(counts)})"


def _pg_foreign_tables(url: str) -> list[str]:
    """Tables and views of the database that are not KetaWatch's: the same check as opening a database makes."""
    engine = create_engine(normalise_url(url))
    try:
        return foreign_tables(engine)
    finally:
        engine.dispose()


def _restore_postgres(found: BackupFile, url: str, force: bool) -> str:
    """pg_restore's script, after dropping every KetaWatch table, in one psql transaction: all of it or nothing.

    `pg_restore --clean` alone drops only what the backup holds: a table added by a later migration
    would stay, and upgrading the restored (older) schema would then fail on it, leaving a database
    no command could open.
    """
    restore_tool, psql = _tool("pg_restore"), _tool("psql")
    try:
        counts = _pg_counts(url)
    except BackupRefused as exc:
        raise BackupRefused(f"{exc.message} (create the empty database first, e.g. with createdb)") from None
    foreign = _pg_foreign_tables(url)
    if foreign:
        raise BackupRefused(f"the database holds tables that are not KetaWatch's ({', '.join(foreign[:5])}); restore "
                            "only replaces a KetaWatch database, even with --force. Give a new, empty database instead")
    _refuse_if_data(counts, "the database", force)
    target, env = _libpq(url)
    env["PGOPTIONS"] = "-c client_min_messages=warning"  # no "does not exist, skipping" notices
    # Without the backup's grants: a role granted SELECT on audit_event (as the README suggests for copying the trail
    # out) stopped the whole restore on a server without that role, a rebuilt one most of all (IT review).
    script = _run([restore_tool, "--clean", "--if-exists", "--no-owner", "--no-privileges", "--file=-", str(found.path)],
                  env, "pg_restore").stdout
    drops = "".join(f'DROP TABLE IF EXISTS public."{name}" CASCADE;\n' for name in sorted(ketawatch_tables()))
    drops += "".join(f'DROP FUNCTION IF EXISTS public."{name}"() CASCADE;\n' for name in MIGRATION_FUNCTIONS)
    _run([psql, "--no-psqlrc", "--quiet", "--single-transaction", "--set", "ON_ERROR_STOP=1", "--dbname", target],
         env, "restore", stdin=drops + script)
    return f"restored the database from {found.path} with pg_restore ({_counts_text(_pg_counts(url))})"
