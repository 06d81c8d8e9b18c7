"""Opening a database: one engine per URL, SQLite pragmas on every connection, schema brought to head."""

from __future__ import annotations

import os
import re
import sqlite3
import threading
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.util.exc import CommandError
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import StaticPool

from store.settings import get_settings

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
#: The PostgreSQL functions the migrations create (for their triggers); a restore drops them with the tables.
MIGRATION_FUNCTIONS = ("audit_event_append_only", "data_change_bump")
_engines: dict[str, Engine] = {}
WRITE_OPTION = "ketawatch_writer"
_lock = threading.Lock()


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    """WAL for concurrent readers, enforced foreign keys, and a wait instead of 'database is locked'."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class UnsupportedDatabase(ValueError):
    """The URL names a database KetaWatch does not run on (its migrations and tests cover SQLite and PostgreSQL)."""


def normalise_url(url: str) -> str:
    """Accept `postgresql://` and `postgres://` URLs and use the psycopg 3 driver for them, and a plain path to an
    SQLite file (`as_url`); refuse other databases."""
    parsed = make_url(as_url(url))
    if parsed.get_backend_name() not in ("sqlite", "postgresql", "postgres"):
        raise UnsupportedDatabase(
            f"KetaWatch runs on SQLite or PostgreSQL, not {parsed.get_backend_name()}; "
            "use sqlite:///FILE or postgresql+psycopg://USER@HOST/DATABASE")
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


#: File endings that make a bare path (no `scheme://`) an SQLite file: `--db demo.db`. A typo without one, such as
#: `--db postgres@host/kw`, stays a wrong URL rather than quietly becoming a new, empty file of that name.
SQLITE_FILE_ENDINGS = (".db", ".sqlite", ".sqlite3")


def as_url(text: str) -> str:
    """A database URL as given, or the SQLite URL of a plain file path ending in .db, .sqlite or .sqlite3."""
    if "://" not in text and text.lower().endswith(SQLITE_FILE_ENDINGS):
        # Built, not pasted into a string: a '?', '#' or '%' in the file name stays part of the name.
        return URL.create("sqlite", database=str(Path(text).expanduser())).render_as_string()
    return text


def url_problem(url: str) -> str | None:
    """Why `url` cannot name a KetaWatch database, or None; in words that never repeat it, since a mistyped URL
    can hold the database password."""
    try:
        normalise_url(url)
    except UnsupportedDatabase as exc:  # (a ValueError too: first)
        return str(exc)
    except (ArgumentError, ValueError):  # SQLAlchemy raises ValueError for a bad port, quoting the text
        return "not a database URL (for example sqlite:///ketawatch.db or postgresql+psycopg://USER@HOST/DATABASE)"
    parsed = make_url(normalise_url(url))
    return _driver_problem(parsed) or _sqlite_file_problem(parsed)


def _driver_problem(parsed) -> str | None:
    """Why the URL's driver cannot be loaded, in place of Python's "No module named 'psycopg2'": a URL copied from
    another application's settings often names psycopg2, which KetaWatch does not install."""
    from sqlalchemy.exc import NoSuchModuleError

    try:
        parsed.get_dialect().import_dbapi()
    except (ImportError, NoSuchModuleError):
        use = ("postgresql+psycopg:// (psycopg 3 is what KetaWatch installs)" if parsed.get_backend_name() == "postgresql"
               else "sqlite:///FILE")
        return f"the URL names the driver {parsed.get_driver_name()}, which is not installed; use {use}"
    return None


def _sqlite_file_problem(parsed) -> str | None:
    """Why an SQLite URL's file cannot be opened or made, in place of SQLite's own "unable to open database file"."""
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:" \
            or parsed.database.startswith("file:"):
        return None
    path = Path(parsed.database).expanduser()
    if path.is_dir():
        return f"{path} is a folder; name a database file in it, for example {path / 'ketawatch.db'}"
    if not path.parent.is_dir():
        return (f"the folder {path.parent} does not exist; KetaWatch makes the database file but not its folder "
                "(make the folder first, or check the path)")
    return None


def _private_file(url: str) -> None:
    """Create a new SQLite file readable by its owner only: it holds every patient record and the password hashes.

    SQLite gives its -wal and -shm files the database file's own permissions, so they follow.
    """
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    create_private(Path(database))


def create_private(path: Path) -> None:
    """Create `path` as an empty file only its owner may read or write, unless it exists already (its mode stands)."""
    if not path.exists() and path.parent.is_dir():
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        except FileExistsError:  # made meanwhile by another process
            pass


def make_engine(url: str) -> Engine:
    """A new engine for `url`; SQLite connections get the pragmas KetaWatch relies on.

    SQL parameters are never written into an error's text (`hide_parameters`): an error that
    reaches the server log would otherwise carry patient ids, names and notes with it.
    """
    url = normalise_url(url)
    if url.startswith("sqlite"):
        _private_file(url)
        return _sqlite_ways(create_engine(url, connect_args={"check_same_thread": False, "timeout": 10},
                                          hide_parameters=True))
    return create_engine(url, pool_pre_ping=True, hide_parameters=True)


def engine_in_memory(connection: sqlite3.Connection) -> Engine:
    """An engine on one in-memory SQLite connection (a dry run's stand-in database), set up as `make_engine` sets up
    every SQLite engine: the same pragmas and transactions, parameters kept out of error texts."""
    return _sqlite_ways(create_engine("sqlite://", creator=lambda: connection, poolclass=StaticPool,
                                      hide_parameters=True))


def _sqlite_ways(engine: Engine) -> Engine:
    """The pragmas and transaction handling every SQLite engine of KetaWatch's gets."""
    event.listen(engine, "connect", _sqlite_pragmas)
    # Let SQLAlchemy own transactions (pysqlite's implicit BEGIN would break SAVEPOINTs).
    @event.listens_for(engine, "connect")
    def _no_implicit_begin(dbapi_connection, _record):
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(conn):
        # A writer takes the write lock up front, so two simultaneous saves queue (busy_timeout)
        # and the second sees the first's version, instead of failing with "database is locked".
        immediate = conn.get_execution_options().get(WRITE_OPTION)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def alembic_config(engine: Engine | None) -> Config:
    """An Alembic configuration bound to `engine`, without needing an alembic.ini on disk."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["engine"] = engine
    return cfg


class NewerSchema(Exception):
    """The database was made by a newer KetaWatch: this version does not know its schema and must not touch it."""


#: Key of the PostgreSQL advisory lock held while migrating, so app servers starting together migrate one at a time.
MIGRATION_LOCK = 0x4B57_0001


class ForeignDatabase(UnsupportedDatabase):
    """The database holds another application's tables and no KetaWatch schema: KetaWatch does not move in beside them."""


def ketawatch_tables() -> set[str]:
    """The names of KetaWatch's own tables, the migrations' bookkeeping included."""
    from sqlmodel import SQLModel

    import store.models  # noqa: F401 - registers the tables on SQLModel.metadata

    return {table.name for table in SQLModel.metadata.sorted_tables} | {"alembic_version"}


def foreign_tables(engine: Engine) -> list[str]:
    """Tables and views that are not KetaWatch's, in any schema a user made ('schema.name' outside the default one).

    On PostgreSQL, what an extension owns (pg_stat_statements' views, which managed services often install in every
    database) is not another application's (code review)."""
    from sqlalchemy import inspect, text

    ours = ketawatch_tables()
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            default = conn.execute(text("SELECT current_schema()")).scalar()
            found = conn.execute(text(
                "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') "
                "AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%' "
                "AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass "
                "AND d.objid = c.oid AND d.deptype = 'e')")).all()
    else:
        inspector = inspect(engine)
        default = inspector.default_schema_name
        found = [(schema, name) for schema in inspector.get_schema_names()
                 for name in inspector.get_table_names(schema=schema) + inspector.get_view_names(schema=schema)]
    return sorted(name if schema == default else f"{schema}.{name}" for schema, name in found
                  if not (schema == default and (name in ours or name.startswith("sqlite_"))))


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest migration; a new database is created, an older one moved forward.

    A database with no KetaWatch schema but another application's tables is refused: a mistyped URL must not add
    KetaWatch's tables and triggers to some other system's database (IT review)."""
    if schema_revision(engine) is None:
        foreign = foreign_tables(engine)
        if foreign:
            shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
            raise ForeignDatabase(f"it holds tables that are not KetaWatch's ({shown}) and no KetaWatch data: KetaWatch "
                                  "makes its tables only in an empty database or its own. Check the URL, or give a new "
                                  "database")
    try:
        if engine.dialect.name == "postgresql":
            with engine.connect() as lock:
                lock.exec_driver_sql(f"SELECT pg_advisory_lock({MIGRATION_LOCK})")
                try:
                    command.upgrade(alembic_config(engine), "head")
                finally:
                    lock.exec_driver_sql(f"SELECT pg_advisory_unlock({MIGRATION_LOCK})")
                    lock.commit()
        else:
            command.upgrade(alembic_config(engine), "head")
    except CommandError as exc:
        found = re.search(r"Can't locate revision identified by '([^']+)'", str(exc))
        if found is None:
            raise
        raise NewerSchema(f"its schema {found.group(1)} is unknown to this KetaWatch: a newer KetaWatch made it (upgrade "
                          "KetaWatch to open it), or it is not a KetaWatch database") from None


def schema_head() -> str:
    """The migration this code brings every database to ("0005"), read from the migration scripts without a database."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config(None)).get_current_head()


def schema_revision(engine: Engine) -> str | None:
    """The migration the database is at ("0005"), or None when it holds no KetaWatch schema yet."""
    from sqlalchemy import inspect, text

    if not inspect(engine).has_table("alembic_version"):
        return None
    with engine.connect() as conn:
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one_or_none()


def open_database(url: str | None = None) -> Engine:
    """The shared, migrated engine for `url` (default: the configured database)."""
    url = normalise_url(url or get_settings().database_url)
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            engine = make_engine(url)
            upgrade(engine)
            _engines[url] = engine
        return engine


def forget_engines() -> None:
    """Dispose every cached engine (tests, restore)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


def for_writing(engine: Engine) -> Engine:
    """The same engine marked for write transactions (on SQLite they begin IMMEDIATE; elsewhere no change)."""
    return engine.execution_options(**{WRITE_OPTION: True})
