"""The `ketawatch` command line (CONTRACT section 1): demo, serve, import, flags, export, users, backup, restore.

Errors are printed as one readable line per problem on stderr, never a traceback. Exit status:
0 success, 1 input or request rejected (nothing changed), 2 usage error.
"""

from __future__ import annotations

import errno
import os
import re
import sys
import tomllib
from pathlib import Path
from typing import NoReturn, Optional

import typer
from sqlalchemy.engine import make_url

from ketawatch.cli_actor import acting_account, cli_actor
from ketawatch.cli_dates import day_option
from store.audit import written_through
from store.settings import SettingsInvalid, get_settings

app = typer.Typer(
    name="ketawatch",
    help="KetaWatch: early warning of psychological dependence in ketamine treatment. Decision support, not diagnosis.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: the boxed one showed '--history <bool>', as if a flag took a value
)

def _installed_version() -> str:
    """The version pip installed, as `pip show ketawatch` gives it."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ketawatch")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "(not installed)"


def _print_version(value: bool) -> None:
    """`--version`: the installed version and the schema it migrates to, so IT can check an upgrade took before
    starting the service; no database is opened."""
    if not value:
        return
    from store.db import schema_head

    typer.echo(f"KetaWatch {_installed_version()} (database schema {schema_head()})")
    raise typer.Exit()


@app.callback()
def _global_options(
    version: bool = typer.Option(False, "--version", "-V", callback=_print_version, is_eager=True,
                                 help="Print the installed KetaWatch version and the database schema it migrates to, "
                                      "and exit (no database is opened)."),
) -> None:
    """Options before any command: typer's documented eager callback handles --version."""


DbOption = typer.Option(None, "--db", metavar="URL", help="SQLAlchemy database URL (default: $KETAWATCH_DATABASE_URL, else sqlite:///ketawatch.db).")
DASHBOARD_APP = Path(__file__).resolve().parents[1] / "dashboard" / "app.py"


#: Said where a command would put real patients or accounts into a demo database.
DEMO_REFUSAL = ("this is a demo database: its patients are invented and its demo accounts' password is published, so "
                "real patients do not belong in it")


class Rejected(Exception):
    """The request was refused; each line of `lines` is one problem for stderr (exit status 1, or 2 for a usage
    error such as a --db that names no database KetaWatch can use)."""

    def __init__(self, *lines: str, status: int = 1):
        super().__init__(lines[0] if lines else "rejected")
        self.lines = list(lines)
        self.status = status


def fail(*lines: str) -> None:
    """Refuse the request with readable lines and exit status 1."""
    raise Rejected(*lines)


def resolve_url(db: str | None, default: str | None = None) -> str:
    """The database URL from --db, the environment, or the default, as CONTRACT section 1 orders them; a plain path
    to an SQLite file (`demo.db`, `/srv/kw/ketawatch.db`) is taken as one.

    A KETAWATCH_DATABASE_URL (environment or .env) that is no database URL stops the command as any
    wrong setting does (SettingsInvalid: one line naming it, exit 2), whichever command reads it.
    """
    from store.db import as_url, url_problem

    if db:
        return as_url(db)
    url = as_url(os.environ.get("KETAWATCH_DATABASE_URL") or default or get_settings().database_url)
    problem = None if default and not os.environ.get("KETAWATCH_DATABASE_URL") else url_problem(url)
    if problem:
        raise SettingsInvalid([f"setting KETAWATCH_DATABASE_URL: {problem}"])
    return url


_QUERY_PASSWORD = re.compile(r"([?&][^=&]*password=)[^&]*", re.IGNORECASE)  # password=, sslpassword=
#: Said when a URL holds more than one @ before its host: a password's @ ended the password there.
ENCODE_HINT = ("the URL has more than one @ before the host; write @, # and / in a password as %40, %23 and %2F "
               "(percent-encoded)")


def safe_url(url: str) -> str:
    """The URL for messages, with no character of any password shown, however the URL is written.

    Everything between `//` and the last `@` is hidden but the user name (up to the first `:`): a URL parser splits a
    password holding an unencoded `@` at that `@` and would show the rest of it as the host and database.
    """
    if _is_sqlite(url):
        return url  # a file path, which may hold an @ or a :, and never a password
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    userinfo, at, address = rest.rpartition("@")
    if at:
        user, colon, _ = userinfo.partition(":")
        rest = f"{user}{':***' if colon else ''}@{address}"
    else:
        try:  # no @, so no password in the address, unless a lost @ left "user:password" where "host:port" goes
            make_url(url)
        except Exception:  # noqa: BLE001 - not shown: it may hold the password where the parser failed
            return "(the URL given)"
    return _QUERY_PASSWORD.sub(r"\1***", scheme + sep + rest)


def _is_sqlite(url: str) -> bool:
    """True for an sqlite:// URL (with or without a driver), whose path is shown as it is."""
    return url.partition("://")[0].partition("+")[0].strip().lower() == "sqlite"


def _several_ats(url: str) -> bool:
    """True when the URL has more than one @ before its host, most often an @ in a password not written as %40."""
    return not _is_sqlite(url) and url.partition("://")[2].count("@") > 1


def _cannot_open(url: str, reason: str, *, from_driver: bool = False, usage: bool = False) -> NoReturn:
    """Refuse with "cannot open database URL: reason", and how to write a password whose @ made the URL misread.

    The driver's own reason is left out for such a URL: it names the host it was given, a piece of the password.
    `usage`: the URL itself names no database KetaWatch can use (exit status 2, as the same URL in
    KETAWATCH_DATABASE_URL: scripts could not tell the two apart; IT review).
    """
    if _several_ats(url):
        if from_driver:
            reason = "the connection failed (the driver's message is left out: it may quote part of the password)"
        reason += f"; {ENCODE_HINT}"
    raise Rejected(f"cannot open database {safe_url(url)}: {reason}", status=2 if usage else 1)


def checked_url(db: str | None, default: str | None = None) -> str:
    """The database URL (`resolve_url`), refused with exit status 2 when it names no database KetaWatch can use."""
    from store.db import url_problem

    url = resolve_url(db, default)  # a wrong KETAWATCH_DATABASE_URL stops here, as a setting
    problem = url_problem(url)
    if problem:
        _cannot_open(url, problem, usage=True)
    return url


def open_db(db: str | None, default: str | None = None, *, say_if_new: bool = True):
    """Open (creating or upgrading) the database, turning any failure into one readable line; say so on stderr
    when it had to be made (`say_if_new`), unless making it is the command's purpose (`demo`)."""
    from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError

    from store.db import NewerSchema, UnsupportedDatabase, open_database, schema_revision

    url = checked_url(db, default)
    try:
        found = _stored_schema(url)
        kept = _copy_before_upgrade(url, found)
        try:
            engine = open_database(url)
        except BaseException:
            _drop_unused_copy(url, found, kept)
            raise
        if say_if_new and found == "":  # most often a command run outside the service's folder, which has the settings
            typer.echo(f"note: {safe_url(absolute_sqlite(url))} held no KetaWatch database, so a new, empty one was "
                       "made there", err=True)
        after = schema_revision(engine) if found else None
        if found and after != found:  # said, not done in silence: the older KetaWatch cannot open it now
            typer.echo(f"note: upgraded the database's schema from {found} to {after} (no data is dropped); "
                       + (f"the database as it was is kept in {kept}; an older KetaWatch can open only that copy"
                          if kept else "an older KetaWatch can no longer open it, so keep the backup made before "
                          "upgrading"), err=True)
        return engine
    except ArgumentError:
        _cannot_open(url, "not a valid database URL (for example sqlite:///ketawatch.db)", usage=True)
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else "connection failed"
        _cannot_open(url, reason, from_driver=True)
    except (SQLAlchemyError, ModuleNotFoundError, NewerSchema, UnsupportedDatabase) as exc:
        _cannot_open(url, str(exc).splitlines()[0], from_driver=True)
    except OSError as exc:  # a new SQLite file in a read-only folder, or a path under /proc: said, not "unexpected"
        where = f" ({exc.filename})" if exc.filename else ""
        _cannot_open(url, f"the file cannot be made or opened{where}: {exc.strerror or exc}; the folder must exist and "
                          "be writable by this user")


def _copy_before_upgrade(url: str, found: str | None) -> Path | None:
    """A SQLite database about to be upgraded is first copied beside itself (`NAME.before-schema-HEAD-TIME.bak`,
    owner-only), so an upgrade that any command or a service restart starts is never without a way back (IT review);
    if the copy cannot be made, nothing is upgraded. PostgreSQL is the DBA's to back up (README: Upgrading)."""
    from datetime import datetime, timezone

    from ketawatch.backup import BackupRefused, backup, known_revisions, sqlite_path
    from store.db import schema_head

    head = schema_head()
    if not found or found == head or found not in known_revisions() or not _is_sqlite(url):
        return None
    source = sqlite_path(url)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")  # to the microsecond: two servers starting
    kept = source.with_name(f"{source.name}.before-schema-{head}-{stamp}.bak").resolve()
    try:
        backup(url, kept, actor="cli-before-upgrade")
    except (BackupRefused, OSError) as exc:
        _cannot_open(url, f"it is at schema {found} and needs upgrading to {head}, but the copy kept before upgrading "
                          f"could not be made ({exc}); nothing was changed")
    return kept


def _drop_unused_copy(url: str, found: str | None, kept: Path | None) -> None:
    """After a failed upgrade that left the database at its old schema, its copy is not needed: a service restarted
    every few seconds would otherwise fill the disk with copies (code review)."""
    if kept is not None and _stored_schema(url) == found:  # cannot tell (None): the copy is kept
        kept.unlink(missing_ok=True)


def _stored_schema(url: str) -> str | None:
    """The migration the database at `url` is at before this command opens (and so creates or upgrades) it: "" when
    it holds no KetaWatch database yet, None when that cannot be told (opening it gives the reason).

    A missing or empty SQLite file is not connected to: connecting would make it, readable by all, before the
    engine can make it owner-only.
    """
    from sqlalchemy import create_engine

    from store.db import normalise_url, schema_revision

    parsed = make_url(normalise_url(url))
    if parsed.get_backend_name() == "sqlite":
        path = Path(parsed.database or "")
        if not parsed.database or parsed.database == ":memory:" or not path.exists() or path.stat().st_size == 0:
            return ""
    probe = create_engine(parsed)  # an existing file or server database: which migration, if any, is it at?
    try:
        return schema_revision(probe) or ""
    except Exception:  # noqa: BLE001 - cannot tell: opening it gives the reason
        return None
    finally:
        probe.dispose()


def absolute_sqlite(url: str) -> str:
    """A SQLite URL with its file path made absolute, so a server started in another folder opens the same file."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        return parsed.set(database=str(Path(parsed.database).resolve())).render_as_string(hide_password=False)
    return url


def _flags(table: dict, prefix: str = "") -> list[str]:
    """`--section.option=value` for every option of a Streamlit config table, nested sections included."""
    out = []
    for key, value in table.items():
        if isinstance(value, dict):
            out += _flags(value, f"{prefix}{key}.")
        else:
            shown = str(value).lower() if isinstance(value, bool) else str(value)
            out.append(f"--{prefix}{key}={shown}")
    return out


def streamlit_command(port: int, address: str = "127.0.0.1") -> list[str]:
    """`streamlit run` for the dashboard with the packaged settings (dashboard/streamlit.toml) as flags.

    Flags rather than a .streamlit folder: Streamlit looks for that only in the working folder and
    the home folder, so an installed KetaWatch would otherwise start without its settings, and
    among them the one that keeps error details (which may hold patient data) off the screen.
    """
    settings = tomllib.loads((DASHBOARD_APP.parent / "streamlit.toml").read_text(encoding="utf-8"))
    return [sys.executable, "-m", "streamlit", "run", str(DASHBOARD_APP), *_flags(settings), f"--server.port={port}",
            f"--server.address={address}"]


def _streamlit(url: str, port: int, address: str) -> NoReturn:
    """Become the dashboard server, with its settings, on the given database until stopped.

    The process is replaced rather than given a child, so the process id that an administrator or
    a service manager (systemd) holds is Streamlit's own: stopping it stops the server. With a
    child, `kill` of `ketawatch serve` left Streamlit running and serving the port.
    """
    env = {**os.environ, "KETAWATCH_DATABASE_URL": absolute_sqlite(url)}
    shown = "localhost" if address in ("127.0.0.1", "localhost", "::1") else address
    every = " (every network interface: plain HTTP, put a TLS proxy in front)" if address in ("0.0.0.0", "::") else ""
    typer.echo(f"KetaWatch is starting at http://{shown}:{port}{every} (Ctrl+C to stop)")
    sys.stdout.flush()
    sys.stderr.flush()
    command = streamlit_command(port, address)
    # Started in the caller's folder, where Streamlit looks for .streamlit/secrets.toml (single sign-on).
    os.execve(command[0], command, env)


def _check_listen(address: str, port: int) -> None:
    """Refuse, in one line and before anything else, an address that is no name of this machine or a port already
    in use: once Streamlit has the process (`os.execve`), either ends it with a page of traceback."""
    import socket

    try:
        family, kind, proto, _, where = socket.getaddrinfo(address, port, type=socket.SOCK_STREAM,
                                                           flags=socket.AI_PASSIVE)[0]
    except (socket.gaierror, UnicodeError):
        raise typer.BadParameter(f"{address} is not an address of this machine (for example 127.0.0.1 or 0.0.0.0)",
                                 param_hint="'--address'") from None
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server will: a closed port is free
        try:
            probe.bind(where)
        except OSError as exc:
            fail(f"cannot listen on {address} port {port}: {exc.strerror or exc}"
                 + (" (is KetaWatch already running? choose another --port)" if exc.errno == errno.EADDRINUSE else ""))


def _check_rules_file() -> None:
    """Read the rules file now (`main` has read the settings), so a wrong one is named in one line, not by the first page."""
    from ketawatch.risk.rules import load_rules

    load_rules()


def _check_sso_setup() -> None:
    """A broken single sign-on setup stops the start, naming each problem, rather than a button that fails on a click."""
    from ketawatch.sso_setup import sso_setup_problems
    from store.settings import SettingsInvalid

    problems = sso_setup_problems()
    if problems:
        raise SettingsInvalid(problems)


AddressOption = typer.Option(
    "127.0.0.1", "--address", metavar="ADDRESS",
    help="Where the dashboard listens: 127.0.0.1 (this machine only, e.g. behind a reverse proxy that adds TLS) "
         "or 0.0.0.0 (every network interface, plain HTTP).")


@app.command()
def serve(db: Optional[str] = DbOption, port: int = typer.Option(8501, "--port", metavar="PORT", min=1, max=65535),
          address: str = AddressOption) -> None:
    """Start the dashboard on the configured database."""
    from ketawatch.accounts import new_setup_code

    _check_listen(address, port)  # first: a start that fails must not replace the last start's set-up code
    _check_rules_file()
    _check_sso_setup()
    engine = open_db(db)
    code = new_setup_code(engine)
    if code is not None:  # on the console only (stderr), never in the app's logs: it makes an administrator
        here = f" --db {safe_url(resolve_url(db))}" if db else ""  # the same database, its password hidden
        typer.echo("This database has no accounts yet. Create the first administrator in the browser with this "
                   f"one-time set-up code:\n    {code}\nor on this machine: ketawatch users add NAME --role admin{here}",
                   err=True)
    _streamlit(resolve_url(db), port, address)


@app.command()
def demo(
    db: Optional[str] = typer.Option(None, "--db", metavar="URL", help="Database URL for the demo (default sqlite:///demo.db)."),
    port: int = typer.Option(8501, "--port", metavar="PORT", min=1, max=65535),
    address: str = AddressOption,
    no_serve: bool = typer.Option(False, "--no-serve", help="Build the demo database and exit without starting the app."),
    csv: Optional[Path] = typer.Option(None, "--csv", metavar="FOLDER", help="Only write the demo cohort in the import format (patients.csv, "
                                       "sessions.csv, checkins.csv) into this new or empty folder, to try `ketawatch "
                                       "import` with; no database is made."),
) -> None:
    """Build a demo database from seed_data/ if none exists at that URL, then start the dashboard on it."""
    from ketawatch.demo import DemoRefused, build_demo

    if csv is not None:
        _write_demo_csv(csv)
        return
    if not no_serve:
        _check_listen(address, port)
        _check_sso_setup()
    _check_rules_file()
    from store.db import as_url

    url = as_url(db) if db else "sqlite:///demo.db"  # a path as given to --db elsewhere: the app gets the URL
    engine = open_db(url, say_if_new=False)
    try:
        built = build_demo(engine)
    except DemoRefused as exc:
        fail(f"demo refused: {exc}")
    typer.echo(built)
    if not no_serve:
        _streamlit(url, port, address)


def _write_demo_csv(folder: Path) -> None:
    """The demo cohort's import files in `folder`, refused where they would mix with, or replace, other files."""
    from seed_data.cohort import demo_cohort, write_import_folder

    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        fail(f"--csv {folder}: {'is not a folder' if not folder.is_dir() else 'is not empty'}; give a new or empty folder")
    if not folder.parent.resolve().is_dir():
        fail(f"--csv {folder}: the folder {folder.parent.resolve()} does not exist; create it first")
    rows = write_import_folder(demo_cohort(), folder)
    typer.echo(f"wrote the demo cohort (invented patients) to {folder}: "
               + ", ".join(f"{name} ({n} rows)" for name, n in rows.items()))


def _engine_for_a_dry_run(db: str | None):
    """The database a dry run checks against: the real one when it holds KetaWatch data at the current schema, else
    one of its own in memory (empty, or an upgraded copy), so that a dry run never makes or upgrades the database it
    was pointed at (IT review)."""
    import sqlite3

    from sqlalchemy import create_engine

    from ketawatch.backup import known_revisions
    from store.db import foreign_tables, normalise_url, schema_head, url_problem

    url = resolve_url(db)
    found = _stored_schema(url) if url_problem(url) is None else None
    if found and found != schema_head() and found in known_revisions():
        return _upgraded_copy_for_a_dry_run(url, found)
    if found == "":
        if not _is_sqlite(url) or _sqlite_file_with_content(url):  # a database is there: whose tables are in it?
            probe = create_engine(normalise_url(url))
            try:
                if foreign_tables(probe):
                    return open_db(db)  # refused there, in the same words as any command
            finally:
                probe.dispose()
        typer.echo(f"note: {safe_url(absolute_sqlite(url))} holds no KetaWatch database yet: checked against an empty "
                   "one, and none was made", err=True)
        return _migrated_in_memory(sqlite3.connect(":memory:", check_same_thread=False))
    return open_db(db)


def _migrated_in_memory(connection):
    """An engine on an in-memory SQLite connection, its schema brought to the current one: a dry run's stand-in."""
    from store.db import engine_in_memory, upgrade

    engine = engine_in_memory(connection)
    upgrade(engine)
    return engine


def _upgraded_copy_for_a_dry_run(url: str, found: str):
    """A dry run against a database at an older schema checks an upgraded copy of it held in memory, since a dry run
    changes nothing and opening would upgrade it (IT review); a PostgreSQL database cannot be copied here, so it is
    refused instead."""
    from ketawatch.backup import BackupRefused, sqlite_in_memory, sqlite_path
    from store.db import schema_head

    head = schema_head()
    if not _is_sqlite(url):
        fail(f"dry run refused: {safe_url(url)} is at schema {found} and this KetaWatch needs {head}; a dry run changes "
             "nothing, so it does not upgrade the database. Upgrade it first (README: Upgrading KetaWatch), then run "
             "the dry run again; nothing was changed")
    try:
        copy = sqlite_in_memory(sqlite_path(url))
    except BackupRefused as exc:
        fail(f"dry run refused: {safe_url(absolute_sqlite(url))} is at schema {found} and could not be copied to check "
             f"against ({exc}); nothing was changed")
    engine = _migrated_in_memory(copy)
    typer.echo(f"note: {safe_url(absolute_sqlite(url))} is at schema {found}, older than this KetaWatch's {head}: "
               "checked against an upgraded copy of it; the database itself was not changed (the import will upgrade it)",
               err=True)
    return engine


def _sqlite_file_with_content(url: str) -> bool:
    """An SQLite URL whose file exists and is not empty (it may hold another application's tables: opening says so)."""
    if not _is_sqlite(url):
        return False
    from store.db import normalise_url

    path = Path(make_url(normalise_url(url)).database or "")
    return path.is_file() and path.stat().st_size > 0


@app.command("import")
def import_(
    folder: Path = typer.Argument(..., metavar="FOLDER", help="Folder with patients.csv, sessions.csv and/or checkins.csv."),
    db: Optional[str] = DbOption,
    dry_run: bool = typer.Option(False, "--dry-run", help="Validate and report counts; write nothing."),
    actor: Optional[str] = typer.Option(None, "--as", metavar="USER", help="KetaWatch account recorded as the importer (an admin or clinician; default: cli:<your OS user>)."),
) -> None:
    """Import patients.csv, sessions.csv and checkins.csv from a folder, all or nothing."""
    from store.app_settings import is_demo
    from store.importer import ImportRejected, import_folder

    from ketawatch.accounts import WRITER_ROLES

    engine = _engine_for_a_dry_run(db) if dry_run else open_db(db)
    who, _, _ = acting_account(engine, actor, roles=WRITER_ROLES, doing="add records")
    if not dry_run and is_demo(engine):  # the README's "--db demo.db" to try commands took a clinic's CSVs (IT review)
        fail(f"{DEMO_REFUSAL}; nothing was imported. Import into the clinic's database (--db URL, or "
             "KETAWATCH_DATABASE_URL); a dry run here checks the files without writing")
    try:
        report = import_folder(engine, folder, actor=who, dry_run=dry_run)
    except ImportRejected as exc:
        fail(*exc.problems, f"nothing was imported: {len(exc.problems)} problem(s)")
    prefix = "dry run, nothing written: " if dry_run else "imported: "
    typer.echo(prefix + report.summary())
    for note in report.notes:
        typer.echo(f"note: {note}", err=True)


@app.command()
def flags(
    db: Optional[str] = DbOption,
    as_of: Optional[str] = typer.Option(None, "--as-of", metavar="DATE", help="Date YYYY-MM-DD (default: today in the clinic's time zone)."),
    history: bool = typer.Option(False, "--history", help="Every patient's first assessment and every change of level."),
    fmt: str = typer.Option("csv", "--format", metavar="FORMAT", help="csv or json."),
) -> None:
    """Dependence-risk level (green, amber, red) per patient, with the ids of the rules behind it.

    A level supports clinical judgement; it does not diagnose.
    """
    from ketawatch.flags import flag_rows, write_rows

    if fmt not in ("csv", "json"):
        raise typer.BadParameter("must be csv or json", param_hint="--format")
    from sqlalchemy.exc import DBAPIError

    from ketawatch.exports.audit import record_export

    when = day_option(as_of, "--as-of")
    engine = open_db(db)
    rows = flag_rows(engine, as_of=when, history=history)
    # Every patient's risk level leaves the database here, as in an export: the trail says who took it, and it is
    # written first, so a database that cannot take the line gives nothing rather than every level and then an error
    # (IT review: a read-only file printed the whole CSV, then failed unaudited).
    try:
        record_export(engine, actor=cli_actor(), role="command line", what="flags", fmt=fmt,
                      patient_ids=[row["patient_id"] for row in rows], deidentified=False,
                      as_of=when.isoformat() if when else None, history=history)
    except DBAPIError as exc:  # SQLite read-only: OperationalError; a PostgreSQL read-only role or standby: others
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else "the database refused the write"
        fail(f"no levels given: the audit trail, which records every read of the levels, cannot be written ({reason})")
    write_rows(rows, fmt, sys.stdout)


def _register_sub_commands() -> None:
    """`export`, `users`, `backup` and `restore` live in their own modules, each adding its commands here."""
    from ketawatch import cli_admin, cli_export

    cli_export.register(app)
    cli_admin.register(app)


_register_sub_commands()


def _usage_error(exc: Exception) -> bool:
    """True for click's usage errors (exit status 2), which typer raises from its own copy of click."""
    return getattr(exc, "exit_code", None) == 2 and hasattr(exc, "format_message")


def main() -> None:
    """Entry point: every error is one readable line on stderr, never a traceback.

    Exit status 0 success, 1 rejected (nothing changed), 2 usage error.
    """
    try:
        if sys.argv[1:2] not in (["--version"], ["-V"]):  # the version is told even with a broken setting
            get_settings()  # every command reads the settings first, so a wrong one is named before anything happens
        with written_through(cli_actor()):  # every audit line it writes names the command line and the login
            app(standalone_mode=False, prog_name="ketawatch")
    except Rejected as exc:
        for line in exc.lines:
            typer.echo(line, err=True)
        sys.exit(exc.status)
    except SettingsInvalid as exc:
        for line in exc.lines:
            typer.echo(f"ketawatch: {line}", err=True)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("ketawatch: stopped", err=True)
        sys.exit(1)
    except Exception as exc:  # noqa: BLE001 - usage errors and surprises alike become one line
        if type(exc).__name__ == "NoArgsIsHelpError":
            # Making the error already rendered the help (with rich, straight to the terminal); only
            # text it kept is still to be shown, so the help appears once.
            if exc.format_message().strip():
                typer.echo(exc.format_message())
            sys.exit(0)
        if _usage_error(exc):
            command = exc.ctx.command_path if getattr(exc, "ctx", None) else "ketawatch"
            typer.echo(f"{command}: {exc.format_message()} (see '{command} --help')", err=True)
            sys.exit(2)
        if hasattr(exc, "format_message") and hasattr(exc, "exit_code"):
            typer.echo(f"ketawatch: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)
        if _database_error(exc):
            typer.echo(f"ketawatch: unexpected database error: {_database_error(exc)}", err=True)
            sys.exit(1)
        # A text-encoding error quotes the text it choked on, which may be a password or a patient's name: not shown.
        said = "" if isinstance(exc, UnicodeError) else str(exc).strip()
        first = said.splitlines()[0] if said else ""
        typer.echo(f"ketawatch: unexpected error: {type(exc).__name__}" + (f": {first}" if first else ""), err=True)
        sys.exit(1)


def _database_error(exc: BaseException) -> str:
    """A database error by type and SQL state only, or '' for any other error.

    Its message can quote the row the database refused ("Key (patient_id)=(...) already exists", a trigger's own
    words), and the command's stderr reaches cron mail and the journal (IT review); the dashboard's log withholds it
    the same way.
    """
    import sqlite3

    import psycopg
    from sqlalchemy.exc import DBAPIError

    if isinstance(exc, DBAPIError):  # through SQLAlchemy: the driver's own error inside
        driver = exc.orig
    elif isinstance(exc, (sqlite3.Error, psycopg.Error)):  # from the importer's and the readers' raw cursors
        driver = exc
    else:
        return ""
    state = getattr(driver, "sqlstate", None) or getattr(driver, "sqlite_errorname", None)
    return (f"{type(exc).__name__} ({type(driver).__name__}{f', {state}' if state else ''}); the message is "
            "withheld, as it may quote patient data: the database's own log has it")


if __name__ == "__main__":
    # Run as `python -m ketawatch.cli`, this file is __main__ and the sub-commands' modules import it again
    # as ketawatch.cli: call that copy, so the errors they raise are the ones caught above.
    from ketawatch.cli import main as _installed_main

    _installed_main()
