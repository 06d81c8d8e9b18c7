"""The administration commands of `ketawatch`: `users ...` (accounts), `backup PATH` and `restore PATH`.

Passwords are never taken as a plain argument: they are typed at a hidden prompt (twice) or read
from the first line of standard input with --password-stdin, for scripts. Every refusal is one
readable line on stderr with exit status 1 (ketawatch.cli.Rejected).
"""

from __future__ import annotations

import getpass
import json
import sys
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import typer

from ketawatch.cli_actor import acting_account, cli_actor
from store.vocabulary import ROLES

users_app = typer.Typer(
    name="users",
    help="Manage local accounts: add, set-role, reset-password, disable, enable, list. Roles: " + ", ".join(ROLES) + ".",
    no_args_is_help=True,
    rich_markup_mode=None,  # plain help: the boxed one showed '--history <bool>', as if a flag took a value
)

_DB = typer.Option(None, "--db", metavar="URL", help="SQLAlchemy database URL (default: $KETAWATCH_DATABASE_URL, else sqlite:///ketawatch.db).")
_STDIN = typer.Option(False, "--password-stdin", help="Read the password from the first line of standard input.")
_AS = typer.Option(None, "--as", metavar="USER", help="Admin account recorded as the actor in the audit trail (default: cli:<your OS user>).")
_AS_NAME = typer.Option(None, "--as", metavar="USER", help="Name recorded as the actor in the audit trail (default: cli:<your OS user>).")


def _password(from_stdin: bool) -> str:
    """A new password from stdin (first line) or a hidden prompt typed twice."""
    if from_stdin:
        raw = sys.stdin.buffer.readline()
        if not raw:
            _fail("--password-stdin: standard input was empty")
        try:  # strictly: read leniently, a Latin-1 byte failed later with a traceback line quoting it (IT review)
            line = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            _fail("--password-stdin: the password is not UTF-8 text (was it written in another encoding?); "
                  "nothing changed")
        return line.rstrip("\r\n")
    with warnings.catch_warnings():  # without a terminal getpass warns, naming its own source file
        warnings.simplefilter("ignore", getpass.GetPassWarning)
        try:
            return typer.prompt("Password", hide_input=True, confirmation_prompt="Repeat the password")
        except typer.Abort:  # end of input: a script or a service, with nobody to type it
            _fail("no password was typed (no terminal?): give it on standard input with --password-stdin")


def _fail(*lines: str):
    from ketawatch.cli import Rejected

    raise Rejected(*lines)


def _engine(db: str | None):
    from ketawatch.cli import open_db

    return open_db(db)


def _refused(call):
    """Run an account change, turning its refusal into one readable line."""
    from ketawatch.accounts import AccountRefused

    try:
        return call()
    except AccountRefused as exc:
        _fail(exc.message)


def _admin(engine, actor: str | None) -> str:
    """Who an account change is recorded as: an enabled admin account named by --as, else cli:<OS user>."""
    return acting_account(engine, actor, roles=("admin",), doing="change accounts")[0]


def _role(role: str, hint: str) -> str:
    if role not in ROLES:
        raise typer.BadParameter(f"must be one of {', '.join(ROLES)}", param_hint=hint)
    return role


@users_app.command("add")
def add(
    username: str = typer.Argument(..., metavar="USERNAME", help="Login name (an email address works, and links single sign-on)."),
    role: str = typer.Option(..., "--role", metavar="ROLE", help="admin, clinician or reviewer."),
    name: Optional[str] = typer.Option(None, "--name", metavar="NAME", help="Full name shown in the app (default: the username)."),
    password_stdin: bool = _STDIN,
    actor: Optional[str] = _AS,
    db: Optional[str] = _DB,
) -> None:
    """Add an account (the first admin of a new database too)."""
    from ketawatch.accounts import create_user

    _role(role, "--role")
    engine = _engine(db)
    who = _admin(engine, actor)
    password = _password(password_stdin)
    user = _refused(lambda: create_user(engine, username=username, display_name=name or username, role=role,
                                        password=password, actor=who))
    typer.echo(f"added {user.username} ({user.role})")
    from ketawatch.cli import DEMO_REFUSAL
    from store.app_settings import is_demo

    if is_demo(engine):  # added, since trying the account commands on the demo is what --db demo.db is for: said
        typer.echo(f"note: {DEMO_REFUSAL}; the demo accounts stay active (IT review)", err=True)


@users_app.command("set-role")
def set_role(
    username: str = typer.Argument(..., metavar="USERNAME"),
    role: str = typer.Argument(..., metavar="ROLE", help="admin, clinician or reviewer."),
    actor: Optional[str] = _AS,
    db: Optional[str] = _DB,
) -> None:
    """Change an account's role (the last active admin cannot be demoted)."""
    from ketawatch import accounts

    _role(role, "ROLE")
    engine = _engine(db)
    who = _admin(engine, actor)
    user = _refused(lambda: accounts.set_role(engine, username, role, actor=who))
    typer.echo(f"{user.username} is now {user.role}")


@users_app.command("reset-password")
def reset_password(
    username: str = typer.Argument(..., metavar="USERNAME"),
    password_stdin: bool = _STDIN,
    actor: Optional[str] = _AS,
    db: Optional[str] = _DB,
) -> None:
    """Give an account a new password and lift any lockout."""
    from ketawatch import accounts

    engine = _engine(db)
    who = _admin(engine, actor)
    if accounts.get_user(engine, username) is None:
        _fail(f"There is no account called {accounts.normalise_username(username)}")
    password = _password(password_stdin)
    user = _refused(lambda: accounts.reset_password(engine, username, password, actor=who))
    typer.echo(f"password of {user.username} reset; any lockout lifted")


def _access(username: str, disabled: bool, actor: str | None, db: str | None) -> None:
    from ketawatch import accounts

    engine = _engine(db)
    who = _admin(engine, actor)
    user = _refused(lambda: accounts.set_disabled(engine, username, disabled, actor=who))
    typer.echo(f"{user.username} is now {'disabled' if user.disabled else 'enabled'}")


@users_app.command("disable")
def disable(username: str = typer.Argument(..., metavar="USERNAME"), actor: Optional[str] = _AS, db: Optional[str] = _DB) -> None:
    """Stop an account from signing in (its open sessions end on their next click)."""
    _access(username, True, actor, db)


@users_app.command("enable")
def enable(username: str = typer.Argument(..., metavar="USERNAME"), actor: Optional[str] = _AS, db: Optional[str] = _DB) -> None:
    """Let a disabled account sign in again (and lift any lockout)."""
    _access(username, False, actor, db)


@users_app.command("list")
def list_(
    fmt: str = typer.Option("table", "--format", metavar="FORMAT", help="table or json."),
    db: Optional[str] = _DB,
) -> None:
    """Every account with its role and state (never a password hash)."""
    from ketawatch.accounts import list_users

    if fmt not in ("table", "json"):
        raise typer.BadParameter("must be table or json", param_hint="--format")
    from store.settings import get_settings

    tz, now = get_settings().tz, datetime.now(timezone.utc)

    def clinic(moment) -> str | None:  # in the clinic's time, as the dashboard shows it; json keeps the offset
        if moment is None:
            return None
        local = moment.astimezone(tz)
        return local.isoformat(timespec="seconds") if fmt == "json" else local.strftime("%Y-%m-%d %H:%M")

    rows = [
        {
            "username": u.username, "display_name": u.display_name, "role": u.role,
            "status": "disabled" if u.disabled else ("locked" if u.locked_until and u.locked_until > now else "active"),
            "locked_until": clinic(u.locked_until),
            "last_sign_in_at": clinic(u.last_sign_in_at),
        }
        for u in list_users(_engine(db))
    ]
    if fmt == "json":
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo("no accounts yet: add the first admin with `ketawatch users add NAME --role admin`")
        return
    columns = ("username", "role", "status", "locked_until", "last_sign_in_at", "display_name")
    widths = {c: max(len(c), *(len(str(r[c] or "")) for r in rows)) for c in columns}
    typer.echo("  ".join(c.ljust(widths[c]) for c in columns).rstrip())
    for r in rows:
        typer.echo("  ".join(str(r[c] or "").ljust(widths[c]) for c in columns).rstrip())
    typer.echo(f"(times in clinic time, {tz.key})")


def backup_command(
    path: Path = typer.Argument(..., metavar="PATH", help="New file to write the backup to (never overwritten)."),
    db: Optional[str] = _DB,
    actor: Optional[str] = _AS_NAME,
) -> None:
    """Write a consistent copy of the whole database (SQLite online backup, or pg_dump for PostgreSQL)."""
    from ketawatch.backup import BackupRefused, backup
    from ketawatch.cli import checked_url

    try:
        typer.echo(backup(checked_url(db), path, actor=cli_actor(actor)))
    except BackupRefused as exc:
        _fail(exc.message)


def restore_command(
    path: Path = typer.Argument(..., metavar="PATH", help="A backup made by `ketawatch backup`."),
    db: Optional[str] = _DB,
    force: bool = typer.Option(False, "--force", help="Replace a database that already holds data."),
    actor: Optional[str] = _AS_NAME,
) -> None:
    """Restore a backup into the database (refused if it holds data, unless --force); stop the app first."""
    from ketawatch.backup import BackupRefused, restore
    from ketawatch.cli import checked_url

    try:
        typer.echo(restore(checked_url(db), path, force=force, actor=cli_actor(actor)))
    except BackupRefused as exc:
        _fail(exc.message)


def register(app: typer.Typer) -> None:
    """Add `users`, `backup` and `restore` to the main `ketawatch` command."""
    app.add_typer(users_app, name="users")
    app.command("backup")(backup_command)
    app.command("restore")(restore_command)
