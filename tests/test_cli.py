"""The `ketawatch` command as a user runs it: readable errors on stderr, no tracebacks, CONTRACT exit codes."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ketawatch.accounts import create_user
from ketawatch.cli_actor import cli_actor
from store.db import open_database
from store.queries import audit_frame
from tests.store_support import CHECKIN, PATIENT, SESSION, counts, write_folder


def ketawatch(*args: str, cwd: Path, env: dict | None = None, stdin: str | None = None) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("KETAWATCH_")}
    environment["KETAWATCH_CLINIC_TIMEZONE"] = "Europe/London"
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-c", "from ketawatch.cli import main; main()", *args],
        cwd=cwd, env=environment, capture_output=True, text=True, timeout=120, input=stdin,
    )


def test_import_then_reimport(db_url, tmp_path):
    folder = write_folder(tmp_path / "in")
    first = ketawatch("import", str(folder), "--db", db_url, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "patients.csv: 1 new" in first.stdout
    # The sample's clinician has no account here: imported, and said on stderr with the line
    assert "\nnote: patients.csv:2: clinician: no KetaWatch account is named 'demo-clinician'" in first.stderr, first.stderr
    # --as names a KetaWatch account that may add records: no other name reaches the audit trail
    engine = open_database(db_url)
    create_user(engine, username="dr-ahmed", display_name="Dr Ahmed", role="clinician", password="a-long-password-1",
                actor="setup")
    create_user(engine, username="rev-one", display_name="Reviewer", role="reviewer", password="a-long-password-1",
                actor="setup")
    for actor, said in (("dr-ahmad", "--as dr-ahmad: no such KetaWatch account"),
                        ("rev-one", "--as rev-one: a reviewer account cannot add records")):
        refused = ketawatch("import", str(folder), "--db", db_url, "--as", actor, cwd=tmp_path)
        assert refused.returncode == 1 and refused.stderr.startswith(said), refused.stderr
    second = ketawatch("import", str(folder), "--db", db_url, "--as", "dr-ahmed", cwd=tmp_path)
    assert second.returncode == 0
    assert "sessions.csv: 0 new, 1 already present" in second.stdout
    # Like every command-line action, the import names its actor the one way: --as, else cli:<OS user>.
    imports = audit_frame(open_database(db_url), action="import")
    actors = imports["actor"].tolist()
    assert actors == ["dr-ahmed", cli_actor()] and cli_actor().startswith("cli:")
    # --as is taken on trust, so each line also says it came from the command line, and whose login ran it.
    assert [d.get("via") for d in imports["detail"]] == [cli_actor(), cli_actor()]
    setup = audit_frame(open_database(db_url), action="user_create")
    assert [d.get("via") for d in setup["detail"]] == [None, None], "not written through the command line"


def test_the_command_line_actor_is_the_process_account_not_what_logname_or_user_say(tmp_path):
    """LOGNAME and USER are anyone's to set: `LOGNAME=dr-ahmed ketawatch users disable gus` was recorded as
    cli:dr-ahmed; run through `sudo -u ketawatch`, every admin was recorded as cli:ketawatch (IT review)."""
    import pwd

    me = pwd.getpwuid(os.getuid()).pw_name
    url = f"sqlite:///{tmp_path / 'who.db'}"
    folder = write_folder(tmp_path / "in")
    base = {"LOGNAME": "dr-ahmed", "USER": "dr-ahmed", "LNAME": "dr-ahmed", "USERNAME": "dr-ahmed", "SUDO_USER": ""}
    assert ketawatch("import", str(folder), "--db", url, cwd=tmp_path, env=base).returncode == 0
    assert ketawatch("import", str(folder), "--db", url, cwd=tmp_path,
                     env={**base, "SUDO_USER": "alice"}).returncode == 0
    actors = audit_frame(open_database(url), action="import")["actor"].tolist()
    # newest first; SUDO_USER is named as the environment's word (it can be set), the account from the user id
    assert actors == [f"cli:{me} (SUDO_USER=alice)", f"cli:{me}"]


def test_a_command_that_makes_a_new_database_says_where(db_url, tmp_path):
    """Run outside the service's folder, a command would otherwise work on an empty database of its own in silence."""
    first = ketawatch("users", "list", "--db", db_url, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "held no KetaWatch database, so a new, empty one was made there" in first.stderr
    second = ketawatch("users", "list", "--db", db_url, cwd=tmp_path)
    assert second.returncode == 0 and "new, empty" not in second.stderr
    import sqlite3

    other = tmp_path / "someone-elses.db"  # a file that exists but holds another application's tables: refused
    sqlite3.connect(other).execute("CREATE TABLE notes (x)").connection.commit()
    third = ketawatch("users", "list", "--db", f"sqlite:///{other}", cwd=tmp_path)
    assert third.returncode == 1 and "holds tables that are not KetaWatch's (notes)" in third.stderr, third.stderr
    empty = tmp_path / "empty.db"  # an SQLite file with no tables at all is made a KetaWatch database, and said so
    sqlite3.connect(empty).execute("PRAGMA user_version = 0").connection.commit()
    fourth = ketawatch("users", "list", "--db", f"sqlite:///{empty}", cwd=tmp_path)
    assert fourth.returncode == 0 and "held no KetaWatch database" in fourth.stderr, fourth.stderr


def test_a_plain_path_to_an_sqlite_file_is_taken_for_its_url_and_a_bare_word_is_not(tmp_path):
    """`--db demo.db` is what people type; a word with no file ending stays a wrong URL, not a new file of that name."""
    from store.db import as_url

    path = tmp_path / "clinic.db"
    made = ketawatch("users", "list", "--db", str(path), cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert path.is_file() and "held no KetaWatch database" in made.stderr
    assert ketawatch("users", "list", "--db", "clinic.db", cwd=tmp_path).stderr == ""  # relative: the same file
    typo = ketawatch("users", "list", "--db", "postgres@dbhost/ketawatch", cwd=tmp_path)
    assert typo.returncode != 0 and not (tmp_path / "postgres@dbhost").exists()
    assert as_url("sqlite:///x.db") == "sqlite:///x.db" and as_url("~/k.sqlite3").startswith("sqlite:////")
    from sqlalchemy.engine import make_url

    for odd in ("we?ird.db", "a%41.db", "x#1.db"):  # the name is the file's, never read as URL syntax
        assert make_url(as_url(odd)).database == odd
    demo = ketawatch("demo", "--db", "demo-here.db", "--no-serve", cwd=tmp_path)  # the demo takes a path too
    assert demo.returncode == 0, demo.stderr
    assert (tmp_path / "demo-here.db").stat().st_size > 0


def test_bad_import_lists_problems_exits_1_and_changes_nothing(db_url, tmp_path):
    folder = write_folder(tmp_path / "in", sessions=[dict(SESSION, sbp_pre="400", route="nasal")], checkins=[dict(CHECKIN, craving="12")])
    result = ketawatch("import", str(folder), "--db", db_url, cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert "sessions.csv:2: route: Route, 'nasal', is not one of: iv, im, intranasal, oral, sublingual" in lines
    assert "sessions.csv:2: sbp_pre: Systolic blood pressure before dosing, 400, is outside 40-300 mmHg" in lines
    assert "checkins.csv:2: craving: Craving, 12, is outside 0-10" in lines
    assert "Traceback" not in result.stderr
    assert counts(open_database(db_url))["Patient"] == 0
    # The attempt is in the audit trail: who, which folder, how many problems; not their words, which quote the rows
    refused = audit_frame(open_database(db_url), action="import_refused")
    assert len(refused) == 1 and refused.iloc[0]["actor"] == cli_actor()
    assert refused.iloc[0]["detail"]["problems"] == 3 and refused.iloc[0]["detail"]["folder"] == str(folder.resolve())
    assert "nasal" not in str(refused.iloc[0]["detail"])


def test_dry_run_writes_nothing(tmp_path):
    url = f"sqlite:///{tmp_path / 'k.db'}"
    result = ketawatch("import", str(write_folder(tmp_path / "in")), "--db", url, "--dry-run", cwd=tmp_path)
    assert result.returncode == 0 and "dry run, nothing written" in result.stdout
    assert counts(open_database(url))["InfusionSession"] == 0


def test_default_database_is_ketawatch_db_in_the_current_folder(tmp_path):
    result = ketawatch("import", str(write_folder(tmp_path / "in")), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "ketawatch.db").exists()


def test_environment_variable_chooses_the_database(tmp_path):
    url = f"sqlite:///{tmp_path / 'from-env.db'}"
    result = ketawatch("import", str(write_folder(tmp_path / "in")), cwd=tmp_path, env={"KETAWATCH_DATABASE_URL": url})
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "from-env.db").exists() and not (tmp_path / "ketawatch.db").exists()


def test_unreachable_database_is_one_readable_line(tmp_path):
    result = ketawatch("import", str(tmp_path), "--db", "postgresql://kw:secret@127.0.0.1:1/none", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("cannot open database postgresql://kw:***@127.0.0.1:1/none")
    assert "secret" not in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("url, shown", [
    ("postgresql+psycopg://app:Tr0ub@dor#9/x@127.0.0.1:5432/db", "postgresql+psycopg://app:***@127.0.0.1:5432/db"),
    ("postgresql+psycopg://kw:s3cret@db.example:5432/kw", "postgresql+psycopg://kw:***@db.example:5432/kw"),
    ("postgresql://kw@db/kw?sslmode=require&password=s3cret", "postgresql://kw@db/kw?sslmode=require&password=***"),
    ("postgresql://kw@db/kw?sslpassword=k3y&sslmode=require", "postgresql://kw@db/kw?sslpassword=***&sslmode=require"),
    ("sqlite:////srv/kw@clinic/ketawatch.db", "sqlite:////srv/kw@clinic/ketawatch.db"),
])
def test_safe_url_shows_no_part_of_any_password(url, shown):
    """An unencoded @ in a password made the parser show the rest of it as the host (app:***@dor#9/x%40127...)."""
    from ketawatch.cli import safe_url

    assert safe_url(url) == shown


def test_a_password_with_an_unencoded_at_is_not_shown_and_the_message_says_how_to_write_it(tmp_path):
    url = "postgresql+psycopg://app:Tr0ub@dor#9/x@127.0.0.1:5432/db"
    result = ketawatch("users", "list", "--db", url, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cannot open database postgresql+psycopg://app:***@127.0.0.1:5432/db: ")
    assert "write @, # and / in a password as %40, %23 and %2F" in lines[0], lines[0]
    assert not any(piece in result.stderr for piece in ("Tr0ub", "dor", "#9", "/x", "%40127")), result.stderr
    normal = ketawatch("users", "list", "--db", "postgresql+psycopg://kw:s3cret@127.0.0.1:1/kw", cwd=tmp_path)
    assert normal.returncode == 1 and normal.stderr.startswith("cannot open database postgresql+psycopg://kw:***@127.0.0.1:1/kw: ")
    assert "s3cret" not in normal.stderr and "%40" not in normal.stderr, normal.stderr


@pytest.mark.parametrize("option", ["--version", "-V"])
def test_version_names_the_installed_release_and_its_schema_without_opening_a_database(tmp_path, option):
    """IT checks an upgrade took before starting the service: the release pip installed and the schema it migrates to."""
    from importlib.metadata import version

    newest = max(p.name[:4] for p in (Path(__file__).parents[1] / "store" / "migrations" / "versions").glob("[0-9]*.py"))
    unreachable = {"KETAWATCH_DATABASE_URL": "postgresql+psycopg://kw:s3cret@127.0.0.1:1/none"}
    result = ketawatch(option, cwd=tmp_path, env=unreachable)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"KetaWatch {version('ketawatch')} (database schema {newest})\n"
    assert result.stderr == "" and not list(tmp_path.iterdir())
    broken = ketawatch(option, cwd=tmp_path, env={"KETAWATCH_CLINIC_TIMEZONE": "Mars/Olympus"})  # told even so
    assert broken.returncode == 0 and broken.stdout == result.stdout, broken.stderr


def _help_texts(command, path: str = "ketawatch"):
    """(command path, text) for the help of `command`, every option and argument, and every sub-command's."""
    yield path, command.help or ""
    for param in command.params:
        yield path, getattr(param, "help", None) or ""
    for name, sub in getattr(command, "commands", {}).items():
        yield from _help_texts(sub, f"{path} {name}")


def test_no_help_text_or_readme_points_to_a_document_the_repository_does_not_have():
    """`ketawatch export csv --help` sent the reader to "CONTRACT section 2", which is not in the repository."""
    import typer

    from ketawatch.cli import app

    texts = list(_help_texts(typer.main.get_command(app)))
    assert any(path == "ketawatch export csv" for path, _ in texts)
    assert [(path, text) for path, text in texts if "CONTRACT" in text] == []
    assert "CONTRACT" not in (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")


def test_every_argument_is_named_in_capitals_like_the_options():
    """Help read 'Usage: ketawatch import [OPTIONS] {folder}' beside '--out PATH' (IT review)."""
    import typer

    from ketawatch.cli import app

    def arguments(command, path="ketawatch"):
        for param in command.params:
            if param.param_type_name == "argument":
                yield path, param.metavar
        for name, sub in getattr(command, "commands", {}).items():
            yield from arguments(sub, f"{path} {name}")

    found = list(arguments(typer.main.get_command(app)))
    assert ("ketawatch import", "FOLDER") in found and ("ketawatch users set-role", "ROLE") in found
    assert [(path, name) for path, name in found if not (name or "").isupper()] == []


@pytest.mark.parametrize("args", [["flags", "--format", "xml"], ["flags", "--as-of", "last tuesday"], ["no-such-command"]])
def test_usage_errors_exit_2_with_one_readable_line(tmp_path, args):
    result = ketawatch(*args, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ketawatch") and "--help" in lines[0], result.stderr


@pytest.mark.parametrize("url", ["mysql://root@127.0.0.1/test", "mssql+pyodbc://sa@db/kw"])
def test_a_database_kind_ketawatch_does_not_run_on_is_named_not_a_missing_driver(tmp_path, url):
    result = ketawatch("flags", "--db", url, cwd=tmp_path)
    assert result.returncode == 2  # a usage error, as the same URL in KETAWATCH_DATABASE_URL (IT review)
    backend = url.split(":")[0].split("+")[0]
    assert result.stderr.strip() == (f"cannot open database {url}: KetaWatch runs on SQLite or PostgreSQL, not {backend}; "
                                     "use sqlite:///FILE or postgresql+psycopg://USER@HOST/DATABASE"), result.stderr


def test_serve_refuses_an_unknown_address_or_a_busy_port_in_one_line_and_keeps_the_last_set_up_code(tmp_path):
    """Both ended Streamlit with a page of traceback; a failed start also replaced the set-up code the last one printed."""
    import socket

    from ketawatch.accounts import SETUP_CODE_KEY, new_setup_code
    from store.app_settings import get_value
    from store.db import make_engine, upgrade

    nonsense = ketawatch("serve", "--address", "nonsense.invalid", "--port", "8718", cwd=tmp_path)
    assert nonsense.returncode == 2, nonsense.stderr
    assert nonsense.stderr.strip() == ("ketawatch serve: Invalid value for '--address': nonsense.invalid is not an "
                                       "address of this machine (for example 127.0.0.1 or 0.0.0.0) "
                                       "(see 'ketawatch serve --help')")
    assert not list(tmp_path.iterdir()), "refused before any database was made"
    url = f"sqlite:///{tmp_path / 'kw.db'}"
    engine = make_engine(url)
    upgrade(engine)
    new_setup_code(engine)  # as the running server's start printed it
    printed = get_value(engine, SETUP_CODE_KEY)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        for command in (["serve"], ["demo", "--db", str(tmp_path / "demo.db")]):
            result = ketawatch(*command, "--port", str(port), *(["--db", url] if command == ["serve"] else []),
                               cwd=tmp_path)
            assert result.returncode == 1, result.stderr
            assert result.stderr.strip() == (f"cannot listen on 127.0.0.1 port {port}: Address already in use (is "
                                             "KetaWatch already running? choose another --port)")
    assert get_value(engine, SETUP_CODE_KEY) == printed and not (tmp_path / "demo.db").exists()
    engine.dispose()


GOOD_AUTH = ('[auth]\nredirect_uri = "https://kw.example/oauth2callback"\ncookie_secret = "' + "s" * 40 + '"\n'
             '[auth.microsoft]\nclient_id = "id"\nclient_secret = "secret"\n'
             'server_metadata_url = "https://login.example/.well-known/openid-configuration"\n')


@pytest.mark.parametrize("text, said", [
    (GOOD_AUTH, []),
    ("[other]\nkey = 1\n", []),  # no [auth]: single sign-on is not set up, nothing to check
    (GOOD_AUTH.replace('client_secret = "secret"\n', ""), ["single sign-on: [auth.microsoft] has no client_secret"]),
    (GOOD_AUTH.replace("[auth.microsoft]", "[auth.ms_entra]"),
     ["single sign-on: [auth.ms_entra]: a provider's name may not contain '_' (Streamlit refuses it)"]),
    (GOOD_AUTH.replace('cookie_secret = "' + "s" * 40 + '"\n', 'cookie_secret = "short"\n'),
     ["single sign-on: [auth] cookie_secret is shorter than 32 characters; use a random one, e.g. python3 -c 'import "
      "secrets; print(secrets.token_hex(32))'"]),
    ('[auth]\nredirect_uri = "https://kw.example/oauth2callback"\nclient_id = "id"\n',
     ["single sign-on: [auth] in here.toml has no cookie_secret",
      "single sign-on: [auth] has no client_secret, server_metadata_url"]),
])
def test_single_sign_on_settings_are_checked_as_streamlit_reads_them(tmp_path, text, said):
    """A broken [auth] was found only when a clinician clicked the button (IT review)."""
    from ketawatch.sso_setup import sso_setup_problems

    (tmp_path / "here.toml").write_text(text)
    assert sso_setup_problems((tmp_path / "no-such-home.toml", tmp_path / "here.toml")) == [
        line.replace("in here.toml", f"in {tmp_path / 'here.toml'}") for line in said]


def test_a_later_secrets_file_s_auth_replaces_the_earlier_one_whole_as_in_streamlit(tmp_path):
    """A provider-only [auth] in the working folder hid the home file's redirect_uri and cookie_secret from Streamlit,
    and the check, merging key by key, passed it (code review)."""
    from ketawatch.sso_setup import sso_setup_problems

    (tmp_path / "home.toml").write_text(GOOD_AUTH)
    (tmp_path / "here.toml").write_text(GOOD_AUTH.split("[auth.microsoft]")[0].replace(
        "redirect_uri", "# redirect_uri").replace("cookie_secret", "# cookie_secret") + "[auth.microsoft]"
        + GOOD_AUTH.split("[auth.microsoft]")[1])
    assert sso_setup_problems((tmp_path / "home.toml", tmp_path / "here.toml")) == [
        f"single sign-on: [auth] in {tmp_path / 'here.toml'} has no redirect_uri",
        f"single sign-on: [auth] in {tmp_path / 'here.toml'} has no cookie_secret"]
    assert sso_setup_problems((tmp_path / "here.toml", tmp_path / "home.toml")) == []


def test_a_secrets_file_behind_a_folder_that_cannot_be_read_is_named_not_an_unexpected_error(tmp_path, monkeypatch):
    """With systemd's ProtectHome=yes the service's home cannot be read, and the check raised (IT review). The
    tests run as root, who reads any folder, so the refusal the kernel gives others is made here."""
    from ketawatch import sso_setup

    hidden = tmp_path / "home" / ".streamlit" / "secrets.toml"

    def refused(self, **_):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(sso_setup.Path, "stat", refused)
    (line,) = sso_setup.sso_setup_problems((hidden,))
    assert line == f"single sign-on: {hidden} cannot be read: [Errno 13] Permission denied: '{hidden}'", line


def test_serve_stops_on_a_broken_single_sign_on_setup_before_making_a_database(tmp_path):
    """Streamlit only logged 'Failed to load secrets' for an unreadable file, and the button vanished (IT review)."""
    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / "secrets.toml").write_text("[auth\nredirect_uri = 1\n")
    home = tmp_path / "home"
    home.mkdir()
    result = ketawatch("serve", "--port", "8719", "--db", f"sqlite:///{tmp_path / 'kw.db'}", cwd=tmp_path,
                       env={"HOME": str(home)})
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"ketawatch: single sign-on: {tmp_path / '.streamlit' / 'secrets.toml'} cannot be read: "), line
    assert not (tmp_path / "kw.db").exists()
    (tmp_path / ".streamlit" / "secrets.toml").write_text(GOOD_AUTH.replace('client_id = "id"\n', ""))
    result = ketawatch("demo", "--port", "8719", "--db", str(tmp_path / "demo.db"), cwd=tmp_path, env={"HOME": str(home)})
    assert result.returncode == 2 and result.stderr.strip() == (
        "ketawatch: single sign-on: [auth.microsoft] has no client_id"), result.stderr
    assert not (tmp_path / "demo.db").exists()


def test_demo_csv_writes_the_cohort_in_the_import_format_for_trying_the_importer(tmp_path):
    """IT could not find the demo's CSV files from the README; they import as they are, and nothing is overwritten."""
    done = ketawatch("demo", "--csv", "demo-csv", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "demo-csv").iterdir()) == ["checkins.csv", "patients.csv", "sessions.csv"]
    assert done.stdout.startswith("wrote the demo cohort (invented patients) to demo-csv: patients.csv (40 rows)")
    assert not list(tmp_path.glob("*.db")), "no database made"
    imported = ketawatch("import", "demo-csv", "--dry-run", "--db", "kw.db", cwd=tmp_path)
    assert imported.returncode == 0 and "patients.csv: 40 new" in imported.stdout, imported.stderr
    again = ketawatch("demo", "--csv", "demo-csv", cwd=tmp_path)
    assert again.returncode == 1 and again.stderr.strip() == "--csv demo-csv: is not empty; give a new or empty folder"


def test_a_command_that_upgrades_an_older_database_says_so_once(tmp_path):
    """Any command, even a read-only `flags`, migrates an older database forward, after which the older KetaWatch
    refuses it: an administrator must hear of it, not find out on a roll-back."""
    from alembic import command
    from alembic.script import ScriptDirectory

    from store.db import alembic_config, make_engine

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(url)
    command.upgrade(alembic_config(engine), "0002")  # as an earlier KetaWatch left it
    head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    engine.dispose()
    first = ketawatch("flags", "--db", url, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    (kept,) = tmp_path.glob(f"old.db.before-schema-{head}-*.bak")  # the way back, made before anything changed
    assert first.stderr.strip() == (f"note: upgraded the database's schema from 0002 to {head} (no data is dropped); "
                                    f"the database as it was is kept in {kept}; an older KetaWatch can open only that "
                                    "copy")
    assert kept.stat().st_mode & 0o777 == 0o600
    from ketawatch.backup import inspect_backup

    assert inspect_backup(kept).revision == "0002"
    second = ketawatch("flags", "--db", url, cwd=tmp_path)
    assert second.returncode == 0 and second.stderr == "", second.stderr
    assert len(list(tmp_path.glob("*.bak"))) == 1


def test_an_upgrade_whose_copy_cannot_be_written_changes_nothing(tmp_path):
    """No way back, no upgrade: with a full disk (here a file-size limit, which fails the copy's writes as a full disk
    does) the older database is left as it was, the command says why in one line, and no half-written copy stays."""
    import resource

    from alembic import command

    from store.db import alembic_config, make_engine, schema_revision

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(url)
    command.upgrade(alembic_config(engine), "0002")
    engine.dispose()
    limit = (tmp_path / "old.db").stat().st_size // 2

    def small_disk():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    environment = {k: v for k, v in os.environ.items() if not k.startswith("KETAWATCH_")}
    refused = subprocess.run([sys.executable, "-c", "from ketawatch.cli import main; main()", "flags", "--db", url],
                             cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=120,
                             preexec_fn=small_disk)
    assert refused.returncode == 1, refused.stderr
    (line,) = refused.stderr.strip().splitlines()
    assert "is at schema 0002 and needs upgrading to" in line and line.endswith("; nothing was changed"), line
    assert "the copy could not be written to" in line
    left = [p.name for p in tmp_path.iterdir() if p.name not in ("old.db", "old.db-wal", "old.db-shm")]
    assert left == []  # no copy, no temporary file, no journal
    engine = make_engine(url)
    assert schema_revision(engine) == "0002"
    engine.dispose()


def test_a_failed_upgrade_does_not_leave_its_copy_behind(tmp_path, monkeypatch):
    """A service restarted every few seconds after a failing migration made a full copy each time (code review)."""
    from alembic import command

    import store.db
    from ketawatch.cli import open_db
    from store.db import alembic_config, forget_engines, make_engine, schema_revision

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(url)
    command.upgrade(alembic_config(engine), "0002")
    engine.dispose()

    def migration_fails(engine):
        raise RuntimeError("a migration failed")

    monkeypatch.setattr(store.db, "upgrade", migration_fails)
    for _ in range(2):
        with pytest.raises(RuntimeError):
            open_db(url)
        forget_engines()
    assert not list(tmp_path.glob("*.bak")) and not list(tmp_path.glob(".ketawatch-backup-*"))
    engine = make_engine(url)
    assert schema_revision(engine) == "0002"
    engine.dispose()


def test_a_password_asked_for_with_nobody_to_type_it_and_a_missing_import_folder_are_said_plainly(tmp_path):
    """From a script or a service: Python's GetPassWarning with a file path, then "ketawatch: stopped"; and an import
    of a folder that is not there said only that it "is not a folder"."""
    added = ketawatch("users", "add", "jo", "--role", "clinician", "--db", "k.db", cwd=tmp_path, stdin="")
    assert added.returncode == 1, added.stderr
    said = [line for line in added.stderr.splitlines() if not line.startswith("note: ")]
    assert said[-1].endswith("no password was typed (no terminal?): give it on standard input with --password-stdin")
    assert "GetPassWarning" not in added.stderr and "stopped" not in added.stderr and ".py" not in added.stderr
    missing = ketawatch("import", str(tmp_path / "no-such"), "--db", "k.db", cwd=tmp_path)
    assert missing.returncode == 1 and missing.stderr.startswith(f"{tmp_path / 'no-such'}:0: -: no such folder\n")


@pytest.mark.parametrize("command", [["demo", "--no-serve"], ["flags"], ["users", "list"]])
def test_a_database_file_a_command_makes_is_readable_by_its_owner_only(tmp_path, command):
    """Every patient record and password hash is in it. A look at the schema before opening once made the file
    through a plain connection (mode 0644), before the engine could make it owner-only: seen on `demo`."""
    old = os.umask(0o022)  # the usual one, which the command inherits: a plain new file would be readable by all
    try:
        made = ketawatch(*command, "--db", "clinic.db", cwd=tmp_path)
    finally:
        os.umask(old)
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "clinic.db").stat().st_mode & 0o777 == 0o600


def test_an_sqlite_file_in_a_missing_folder_or_a_folder_named_as_the_file_is_said_plainly(tmp_path):
    """SQLite's own words are "unable to open database file"; the command says what is wrong with the path, and
    makes nothing: neither the folder nor a file."""
    missing = tmp_path / "no-such-folder" / "kw.db"
    result = ketawatch("flags", "--db", str(missing), cwd=tmp_path)
    assert result.returncode == 2, result.stderr  # as in the setting, which exits 2 below
    assert result.stderr.strip() == (f"cannot open database sqlite:///{missing}: the folder {missing.parent} does not "
                                     "exist; KetaWatch makes the database file but not its folder (make the folder "
                                     "first, or check the path)"), result.stderr
    assert not missing.parent.exists()
    folder = ketawatch("users", "list", "--db", f"sqlite:///{tmp_path}", cwd=tmp_path)
    assert folder.returncode == 2 and folder.stderr.strip().endswith(
        f"{tmp_path} is a folder; name a database file in it, for example {tmp_path / 'ketawatch.db'}"), folder.stderr
    setting = ketawatch("flags", cwd=tmp_path, env={"KETAWATCH_DATABASE_URL": str(missing)})
    assert setting.returncode == 2 and setting.stderr.startswith(
        f"ketawatch: setting KETAWATCH_DATABASE_URL: the folder {missing.parent} does not exist"), setting.stderr
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("value, said", [
    ("mysql://root@127.0.0.1/test", "KetaWatch runs on SQLite or PostgreSQL, not mysql"),
    ("postgres ql://kw:hunter2-secret@db/kw", "not a database URL"),
    ("postgresql+psycopg://kw:hunter2db.example.org/kw", "not a database URL"),  # the parser's own error quotes it
])
def test_a_wrong_database_url_setting_is_named_like_any_other_setting(tmp_path, value, said):
    """As the README promises of every setting: one line naming it, exit status 2, and no password shown;
    --db, which comes first (CONTRACT section 1), is not stopped by it."""
    result = ketawatch("users", "list", cwd=tmp_path, env={"KETAWATCH_DATABASE_URL": value})
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"ketawatch: setting KETAWATCH_DATABASE_URL: {said}"), result.stderr
    assert "hunter2" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "ketawatch.db").exists()
    for command in (["serve", "--port", "8779"], ["backup", "b.db"], ["restore", "b.db"], ["flags"]):
        also = ketawatch(*command, cwd=tmp_path, env={"KETAWATCH_DATABASE_URL": value})  # every command that reads it
        assert also.returncode == 2 and "setting KETAWATCH_DATABASE_URL" in also.stderr, (command, also.stderr)
    given = ketawatch("users", "list", "--db", f"sqlite:///{tmp_path / 'k.db'}", cwd=tmp_path,
                      env={"KETAWATCH_DATABASE_URL": value})
    assert given.returncode == 0, given.stderr
    typed = ketawatch("users", "list", "--db", value, cwd=tmp_path)  # the same exit status: scripts can tell (IT review)
    assert typed.returncode == 2 and said in typed.stderr and "hunter2" not in typed.stderr, typed.stderr


_NEXT_WEEK = (dt.datetime.now(ZoneInfo("Europe/London")) + dt.timedelta(days=7)).date().isoformat()


@pytest.mark.parametrize("command", [["flags"], ["export", "caseload", "--format", "csv", "--out", "c.csv"],
                                     ["export", "patient", "P1", "--format", "pdf", "--out", "p.pdf"]])
@pytest.mark.parametrize("value, said", [("20261001", "20261001 is not a date in the form YYYY-MM-DD"),
                                         ("2026-02-30", "'2026-02-30' is not a real calendar date"),
                                         (_NEXT_WEEK, f"{_NEXT_WEEK} is in the future (today is "),
                                         ("", "is empty; give a date in the form YYYY-MM-DD, or leave the option out")])
def test_a_compact_impossible_or_future_date_option_is_refused_before_anything_is_opened(tmp_path, command, value, said):
    """`date.fromisoformat` alone takes 20261001 and next year; the store's date rule refuses both, naming the option."""
    option = "--to" if command[:2] == ["export", "patient"] else "--as-of"
    result = ketawatch(*command, option, value, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"Invalid value for {option}: {said}" in lines[0], result.stderr
    assert not list(tmp_path.iterdir())  # no database made, no file written


def _demo_like_folder(tmp_path: Path) -> Path:
    """A small generated cohort (with dependence and look-alikes) in the import format."""
    from datetime import date

    from seed_data.cohort import CohortParams, generate_cohort, write_import_folder

    cohort = generate_cohort(CohortParams(n_patients=30, months=6, end=date(2026, 10, 31), seed=3, dependence_fraction=0.2))
    folder = tmp_path / "cohort"
    folder.mkdir()
    write_import_folder(cohort, folder)
    return folder


def test_flags_csv_json_and_history(tmp_path):
    from ketawatch.risk import RULE_IDS, assess
    from store.queries import load_records

    url = f"sqlite:///{tmp_path / 'k.db'}"
    assert ketawatch("import", str(_demo_like_folder(tmp_path)), "--db", url, cwd=tmp_path).returncode == 0

    result = ketawatch("flags", "--db", url, "--as-of", "2026-10-31", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert result.stdout.splitlines()[0] == "patient_id,as_of,level,reasons"
    assert len(rows) == 30 and {r["as_of"] for r in rows} == {"2026-10-31"}
    for row in rows:
        assert row["level"] in ("green", "amber", "red")
        reasons = [r for r in row["reasons"].split(";") if r]
        assert (row["level"] == "green") == (reasons == [])
        assert set(reasons) <= set(RULE_IDS)
    # the CLI prints exactly what the engine says
    expected = assess(load_records(open_database(url)), as_of=__import__("datetime").date(2026, 10, 31), tz="Europe/London")
    assert {r["patient_id"]: r["level"] for r in rows} == dict(zip(expected.patient_id, expected.level))
    assert any(r["level"] != "green" for r in rows)

    # Every patient's level left the database: the trail says who took it, as for an export.
    [line] = audit_frame(open_database(url), action="export").to_dict("records")
    assert (line["entity_key"], line["actor"].startswith("cli:"), line["detail"]["patient_count"]) == ("flags", True, 30)
    assert (line["detail"]["format"], line["detail"]["as_of"], line["detail"]["history"]) == ("csv", "2026-10-31", False)

    as_json = ketawatch("flags", "--db", url, "--as-of", "2026-10-31", "--format", "json", cwd=tmp_path)
    parsed = json.loads(as_json.stdout)
    assert [(r["patient_id"], r["level"], ";".join(r["reasons"])) for r in parsed] == [
        (r["patient_id"], r["level"], r["reasons"]) for r in rows
    ]

    until = ketawatch("flags", "--db", url, "--history", "--as-of", "2026-08-31", cwd=tmp_path)
    assert until.returncode == 0, until.stderr
    until_rows = list(csv.DictReader(io.StringIO(until.stdout)))
    assert until_rows and max(r["as_of"] for r in until_rows) <= "2026-08-31"

    history = ketawatch("flags", "--db", url, "--history", cwd=tmp_path)
    assert history.returncode == 0, history.stderr
    hist = list(csv.DictReader(io.StringIO(history.stdout)))
    dates = [h["as_of"] for h in hist]
    assert dates == sorted(dates)
    assert [r for r in hist if r["as_of"] <= "2026-08-31"] == until_rows  # --as-of cuts the same history
    per_patient: dict[str, list[dict]] = {}
    for h in hist:
        per_patient.setdefault(h["patient_id"], []).append(h)
    assert set(per_patient) == {r["patient_id"] for r in rows}
    for pid, changes in per_patient.items():
        levels = [c["level"] for c in changes]
        assert all(a != b for a, b in zip(levels, levels[1:])), (pid, levels)  # a row only when the level changes
        before_cutoff = [c for c in changes if c["as_of"] <= "2026-10-31"]
        current = {r["patient_id"]: r["level"] for r in rows}[pid]
        assert before_cutoff[-1]["level"] == current  # history replays to the same level as --as-of


def test_demo_is_never_built_into_a_database_that_holds_data(tmp_path):
    from ketawatch.accounts import create_user

    url = f"sqlite:///{tmp_path / 'clinic.db'}"
    create_user(open_database(url), username="boss", display_name="Clinic Admin", role="admin",
                password="a-long-enough-password", actor="setup")
    result = ketawatch("demo", "--no-serve", "--db", url, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("demo refused: this database is not a demo database and already holds 0 patient(s), 1 account(s)")
    engine = open_database(url)
    assert counts(engine)["Patient"] == 0
    from store.app_settings import is_demo

    assert not is_demo(engine)


def test_a_demo_database_takes_no_import_and_says_so_of_a_new_account(tmp_path):
    """`--db demo.db`, as the README suggests to try commands, took a clinic's CSV files into a database whose demo
    accounts' password is published, without a word (IT review)."""
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    assert ketawatch("demo", "--no-serve", "--db", url, cwd=tmp_path).returncode == 0
    before = counts(open_database(url))
    folder = write_folder(tmp_path / "clinic")
    refused = ketawatch("import", str(folder), "--db", url, cwd=tmp_path)
    assert refused.returncode == 1 and refused.stderr.startswith("this is a demo database: its patients are invented")
    assert "nothing was imported" in refused.stderr and counts(open_database(url)) == before
    checked = ketawatch("import", str(folder), "--db", url, "--dry-run", cwd=tmp_path)  # checking the files writes nothing
    assert checked.returncode == 0 and "patients.csv: 1 new" in checked.stdout, checked.stderr
    added = ketawatch("users", "add", "realadmin", "--role", "admin", "--password-stdin", "--db", url, cwd=tmp_path,
                      stdin="amber kettle orchard ninety\n")
    assert added.returncode == 0 and "note: this is a demo database" in added.stderr, added.stderr
    assert ketawatch("import", str(folder), "--db", f"sqlite:///{tmp_path / 'clinic.db'}", cwd=tmp_path).returncode == 0


def test_demo_builds_once_and_then_reuses(tmp_path):
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    first = ketawatch("demo", "--no-serve", "--db", url, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "Demo database built: patients.csv: 40 new" in first.stdout
    # its intranasal patients have their planned dose in mg, as a clinician sets it: an amendment with its reason
    from seed_data.cohort import demo_cohort
    from store.queries import patients_frame

    patients = patients_frame(open_database(url), with_tracking=True).set_index("patient_id")
    plans = demo_cohort().mg_plans.set_index("patient_id")["planned_dose_mg"]
    intranasal = set(demo_cohort().sessions.loc[lambda s: s["route"] == "intranasal", "patient_id"])
    assert set(plans.index) == intranasal and set(plans) <= {28.0, 56.0, 84.0}
    assert patients["planned_dose_mg"].dropna().to_dict() == plans.to_dict()
    assert (patients.loc[list(intranasal), "version"] == 2).all()
    assert f"planned doses in mg set for {len(intranasal)} intranasal patient(s)" in first.stdout
    second = ketawatch("demo", "--no-serve", "--db", url, cwd=tmp_path)
    assert second.returncode == 0 and "Using the existing demo database (40 patients)" in second.stdout


def test_serve_on_a_database_with_no_accounts_prints_a_set_up_code_that_makes_the_first_admin(tmp_path):
    """The code is the only way the browser can create the first admin: it appears on the server's console alone."""
    import re
    import select as io_select
    import socket
    import time

    from ketawatch import accounts

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"sqlite:///{tmp_path / 'new.db'}"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("KETAWATCH_")}
    server = subprocess.Popen([sys.executable, "-c", "from ketawatch.cli import main; main()", "serve", "--db", url,
                               "--port", str(port)], cwd=tmp_path, env=environment, stderr=subprocess.PIPE, text=True)
    try:
        said, deadline = "", time.monotonic() + 60
        while "users add" not in said and time.monotonic() < deadline:
            if io_select.select([server.stderr], [], [], 1)[0]:
                said += server.stderr.readline()
    finally:
        server.kill()
        server.wait(timeout=30)
    found = re.search(r"set-up code:\n +([0-9A-F]{6}-[0-9A-F]{6}-[0-9A-F]{6})\n", said)
    assert found, said
    assert f"ketawatch users add NAME --role admin --db {url}" in said  # the same database, not ./ketawatch.db
    engine = open_database(url)
    admin = accounts.create_first_admin(engine, username="boss", display_name="B", password="correct-horse-battery",
                                        setup_code=f" {found.group(1).lower()} ,")  # copied with a space and comma
    assert admin.role == "admin"


def test_serve_passes_every_packaged_streamlit_setting_as_a_flag_streamlit_knows():
    """An installed KetaWatch has no .streamlit folder beside it: its settings travel as flags."""
    import tomllib

    from streamlit import config

    from ketawatch.cli import DASHBOARD_APP, streamlit_command

    command = streamlit_command(8765)
    flags = dict(arg[2:].split("=", 1) for arg in command if arg.startswith("--"))
    assert flags["client.showErrorDetails"] == "type"  # no message or trace (may hold patient data) on screen
    assert flags["server.port"] == "8765" and flags["runner.magicEnabled"] == "false"
    assert flags["server.address"] == "127.0.0.1"  # this machine only, unless --address says otherwise
    assert flags["logger.hideWelcomeMessage"] == "true"  # its banner looked up the address on an outside server
    packaged = tomllib.loads((DASHBOARD_APP.parent / "streamlit.toml").read_text())
    assert flags["theme.light.primaryColor"] == packaged["theme"]["light"]["primaryColor"]
    for name in flags:
        config.get_option(name)  # raises for an option this Streamlit does not have


@pytest.mark.parametrize(("setting", "value", "message"), [
    ("KETAWATCH_CLINIC_TIMEZONE", "Mars/Olympus", "unknown time zone 'Mars/Olympus'; use an IANA name such as Europe/London"),
    ("KETAWATCH_IDLE_TIMEOUT_MINUTES", "0", "Input should be greater than or equal to 1"),
    ("KETAWATCH_RULES_FILE", "/no/such/rules.toml",
     "no rules file at /no/such/rules.toml; copy seed_data/rules.toml and give the full path of the copy"),
    ("KETAWATCH_PDF_FALLBACK_FONTS", "/no/such/font.ttc",
     "no font file at /no/such/font.ttc; give the full path of a .ttf, .otf or .ttc file"),
    ("KETAWATCH_DATABSE_URL", "postgresql://elsewhere/ketawatch",  # ignored, it left a new, empty SQLite in use
     "no such setting; did you mean KETAWATCH_DATABASE_URL?"),
    ("KETAWATCH_SEEDS_DIR", "/nonexistent", "no folder at /nonexistent; give the folder that holds the seed documents"),
    ("KETAWATCH_PSEUDONYM_SECRET", "x", "1 character is too short to keep pseudonyms from being reversed; give at least "
     "16 random characters (for example from `openssl rand -hex 32`), or leave it unset for a random key kept in the "
     "database"),
])
@pytest.mark.parametrize("command", [("flags",), ("export", "caseload", "--format", "csv", "--out", "c.csv"), ("serve", "--port", "8597"),
                                     ("users", "list"), ("backup", "b.db")])
def test_a_wrong_setting_is_named_in_one_line_before_anything_runs(tmp_path, setting, value, message, command):
    url = f"sqlite:///{tmp_path / 'k.db'}"
    result = ketawatch(*command, "--db", url, cwd=tmp_path, env={setting: value})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"ketawatch: setting {setting}: {message}"]
    assert not (tmp_path / "c.csv").exists() and not (tmp_path / "b.db").exists() and "starting" not in result.stdout
    assert not (tmp_path / "k.db").exists()  # no database made or migrated first


def test_a_misspelt_setting_in_the_env_file_is_named_too(tmp_path):
    (tmp_path / ".env").write_text("KETAWATCH_IDLE_TIMOUT_MINUTES=5\n")
    result = ketawatch("users", "list", "--db", f"sqlite:///{tmp_path / 'k.db'}", cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.strip() == (
        "ketawatch: setting KETAWATCH_IDLE_TIMOUT_MINUTES: no such setting; did you mean KETAWATCH_IDLE_TIMEOUT_MINUTES?")
    assert not (tmp_path / "k.db").exists()


def test_an_env_file_line_that_systemd_would_read_otherwise_is_named(tmp_path):
    """`KETAWATCH_CLINIC_TIMEZONE=Europe/London # UK` passed `ketawatch users list` (python-dotenv drops the comment)
    and the service would not start (systemd keeps it in the value), and a line python-dotenv cannot read was skipped
    with a warning only (IT review). A quoted value may hold a '#'."""
    (tmp_path / ".env").write_text("# the clinic\nKETAWATCH_CLINIC_TIMEZONE=Europe/London # UK\nnot a setting line\n"
                                   "KETAWATCH_IDLE_TIMEOUT_MINUTES='15'\n")
    result = ketawatch("users", "list", "--db", f"sqlite:///{tmp_path / 'k.db'}", cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        "ketawatch: setting KETAWATCH_CLINIC_TIMEZONE: .env line 2 has a comment after its value, which systemd would "
        "read as part of the value; put the comment on a line of its own",
        "ketawatch: setting file .env, line 3: not a NAME=value line; remove it, or put # before it to keep it as a "
        "comment"], result.stderr
    assert not (tmp_path / "k.db").exists()
    # a '#' inside a value, then a comment; and a comment where the value should be (code review)
    (tmp_path / ".env").write_text("KETAWATCH_DATABASE_URL=sqlite:///k#1.db # the file\nKETAWATCH_PDF_FALLBACK_FONTS= # none\n")
    result = ketawatch("users", "list", cwd=tmp_path)
    assert result.returncode == 2 and [line.split(":")[1] for line in result.stderr.strip().splitlines()] == [
        " setting KETAWATCH_DATABASE_URL", " setting KETAWATCH_PDF_FALLBACK_FONTS"], result.stderr
    (tmp_path / ".env").write_text("# the clinic\n# UK\nKETAWATCH_CLINIC_TIMEZONE=Europe/London\n"
                                   "KETAWATCH_DATABASE_URL='sqlite:///k#1.db'\nKETAWATCH_IDLE_TIMEOUT_MINUTES = 15\n")
    assert ketawatch("users", "list", cwd=tmp_path).returncode == 0


@pytest.mark.parametrize("group", [(), ("users",), ("export",)])
def test_a_command_group_without_arguments_prints_its_help_once(tmp_path, group):
    result = ketawatch(*group, cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.count("Usage:") == 1, result.stdout


def test_a_database_from_a_newer_ketawatch_is_refused_in_one_line_and_left_alone(tmp_path):
    import sqlite3

    url = f"sqlite:///{tmp_path / 'k.db'}"
    assert ketawatch("users", "list", "--db", url, cwd=tmp_path).returncode == 0
    with sqlite3.connect(tmp_path / "k.db") as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0099_from_the_future'")
    result = ketawatch("flags", "--db", url, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"cannot open database {url}: its schema 0099_from_the_future is unknown to this KetaWatch: a newer KetaWatch "
        "made it (upgrade KetaWatch to open it), or it is not a KetaWatch database"]
    with sqlite3.connect(tmp_path / "k.db") as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == ("0099_from_the_future",)


def test_ketawatch_serve_asks_no_outside_server_even_on_every_interface(tmp_path):
    """Streamlit's start-up banner fetched http://checkip.amazonaws.com/; a proxy set here would receive that request."""
    import socket
    import threading
    import time
    import urllib.request

    from ketawatch.served import free_port

    proxy = socket.socket()
    proxy.bind(("127.0.0.1", 0))
    proxy.listen()
    proxy.settimeout(0.5)
    asked: list[bytes] = []

    def listen() -> None:
        while not stopped.is_set():
            try:
                conn, _ = proxy.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    asked.append(conn.recv(200))
                except OSError:
                    asked.append(b"?")

    stopped = threading.Event()
    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    port = free_port()
    proxy_url = f"http://127.0.0.1:{proxy.getsockname()[1]}"
    environment = {**{k: v for k, v in os.environ.items() if not k.startswith("KETAWATCH_")},
                   "http_proxy": proxy_url, "HTTP_PROXY": proxy_url, "https_proxy": proxy_url,
                   "HTTPS_PROXY": proxy_url, "no_proxy": "localhost,127.0.0.1", "NO_PROXY": "localhost,127.0.0.1"}
    server = subprocess.Popen([sys.executable, "-c", "from ketawatch.cli import main; main()", "serve", "--db",
                               f"sqlite:///{tmp_path / 'kw.db'}", "--port", str(port), "--address", "0.0.0.0"],
                              cwd=tmp_path, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.5)
        time.sleep(4)  # the banner's lookup ran just after the server came up
        assert asked == [], f"the server asked an outside server: {asked}"
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0]
        stopped.set()
        proxy.close()
    assert f"KetaWatch is starting at http://0.0.0.0:{port} (every network interface" in output


def test_stopping_ketawatch_serve_stops_the_server(tmp_path):
    """An administrator or systemd stops the process id it started; a child server left behind kept serving."""
    import signal
    import time
    import urllib.request

    from ketawatch.served import free_port

    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("KETAWATCH_")}
    server = subprocess.Popen([sys.executable, "-c", "from ketawatch.cli import main; main()", "serve", "--db",
                               f"sqlite:///{tmp_path / 'kw.db'}", "--port", str(port)], cwd=tmp_path, env=environment,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def answers() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    try:
        deadline = time.monotonic() + 90
        while not answers():
            assert server.poll() is None and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.5)
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        time.sleep(1)
        assert not answers(), "the dashboard still answers after its process was stopped"
    finally:
        if server.poll() is None:
            server.kill()


def test_run_as_a_module_it_reports_a_refusal_as_the_installed_command_does(tmp_path):
    environment = {k: v for k, v in os.environ.items() if not k.startswith("KETAWATCH_")}
    result = subprocess.run(
        [sys.executable, "-m", "ketawatch.cli", "users", "add", "demo-clinician", "--role", "clinician",
         "--password-stdin", "--db", f"sqlite:///{tmp_path / 'k.db'}"],
        input="plum-anchor-violet-9\n", cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 1
    said = [line for line in result.stderr.splitlines() if not line.startswith("note: ")]  # a new database: the note
    assert said[0].startswith("demo-clinician is a demo account name"), result.stderr


def test_help_shows_flags_as_flags_and_names_what_an_option_takes(tmp_path):
    """The boxed help showed '--history <bool>' (and '--help <bool>'), as if a flag took a value (IT review)."""
    shown = ketawatch("flags", "--help", cwd=tmp_path)
    assert shown.returncode == 0 and "<bool>" not in shown.stdout
    lines = {line.split()[0]: line for line in shown.stdout.splitlines() if line.strip().startswith("--")}
    assert lines["--history"].split()[1] == "Every" and lines["--db"].split()[1] == "URL"
    assert lines["--as-of"].split()[1] == "DATE"
    export = ketawatch("export", "patient", "--help", cwd=tmp_path)
    assert "<bool>" not in export.stdout and "--out PATH" in export.stdout and "--deidentify " in export.stdout


def test_a_database_holding_another_applications_tables_is_refused_and_left_as_it_was(db_url, tmp_path):
    """A mistyped KETAWATCH_DATABASE_URL added KetaWatch's tables and triggers to another system's database (IT review)."""
    from sqlalchemy import create_engine, inspect, text

    from store.db import normalise_url

    other = create_engine(normalise_url(db_url))
    with other.begin() as conn:
        conn.execute(text("CREATE TABLE other_app (a INTEGER)"))
    try:
        for args in (["users", "list"], ["flags"]):
            result = ketawatch(*args, "--db", db_url, cwd=tmp_path)
            assert result.returncode == 1 and result.stdout == "", result.stderr
            (line,) = result.stderr.strip().splitlines()
            assert "holds tables that are not KetaWatch's (other_app) and no KetaWatch data" in line, line
        assert inspect(other).get_table_names() == ["other_app"]
    finally:
        other.dispose()


def test_flags_on_a_database_that_cannot_take_the_audit_line_gives_no_levels(tmp_path):
    """A read-only database printed every patient's level and then failed, unaudited (IT review)."""
    path = tmp_path / "clinic.db"
    assert ketawatch("import", str(write_folder(tmp_path / "in")), "--db", str(path), cwd=tmp_path).returncode == 0
    read_only = f"sqlite:///file:{path}?mode=ro&uri=true"  # SQLite's own read-only opening: a real refusal to write
    result = ketawatch("flags", "--db", read_only, cwd=tmp_path)
    assert result.returncode == 1 and result.stdout == "", result.stdout
    assert "no levels given: the audit trail, which records every read of the levels, cannot be written" in result.stderr
    assert "Traceback" not in result.stderr
    allowed = ketawatch("flags", "--db", str(path), cwd=tmp_path)
    assert allowed.returncode == 0 and PATIENT["patient_id"] in allowed.stdout


def test_a_database_or_backup_where_no_file_can_be_made_is_one_readable_line(tmp_path):
    """'unexpected error: PermissionError: ... .ketawatch-backup-n0uihd0n.db' named a temporary file (IT review). /proc
    refuses new files even to root, who runs CI, where permission bits would not."""
    made = ketawatch("users", "list", "--db", "/proc/clinic.db", cwd=tmp_path)
    assert made.returncode == 1 and "unexpected" not in made.stderr, made.stderr
    assert made.stderr.startswith("cannot open database sqlite:////proc/clinic.db: the file cannot be made or opened")
    path = tmp_path / "clinic.db"
    assert ketawatch("users", "list", "--db", str(path), cwd=tmp_path).returncode == 0
    copy = ketawatch("backup", "/proc/clinic.bak", "--db", str(path), cwd=tmp_path)
    assert copy.returncode == 1 and copy.stderr.strip().splitlines() == [
        "cannot write in /proc (No such file or directory); nothing was written"], copy.stderr


def test_a_dry_run_against_a_database_that_does_not_exist_yet_makes_none(db_url, tmp_path):
    """`import --dry-run` made the database it was pointed at, with a 'new, empty one was made' note (IT review)."""
    from sqlalchemy import create_engine, inspect

    from store.db import normalise_url

    folder = write_folder(tmp_path / "in")
    result = ketawatch("import", str(folder), "--db", db_url, "--dry-run", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("dry run, nothing written: ") and "patients.csv: 1 new" in result.stdout
    assert "holds no KetaWatch database yet: checked against an empty one, and none was made" in result.stderr
    assert "was made there" not in result.stderr
    if db_url.startswith("sqlite"):
        assert not (tmp_path / "ketawatch-test.db").exists()
    else:
        probe = create_engine(normalise_url(db_url))
        assert inspect(probe).get_table_names() == []
        probe.dispose()
    if db_url.startswith("sqlite"):  # an SQLite file with no tables yet is no KetaWatch database either (code review)
        import sqlite3

        sqlite3.connect(tmp_path / "ketawatch-test.db").execute("PRAGMA user_version = 1").connection.commit()
        again = ketawatch("import", str(folder), "--db", db_url, "--dry-run", cwd=tmp_path)
        assert again.returncode == 0 and "none was made" in again.stderr, again.stderr
        assert sqlite3.connect(tmp_path / "ketawatch-test.db").execute("SELECT count(*) FROM sqlite_master").fetchone() == (0,)
    bad = write_folder(tmp_path / "bad", checkins=[dict(CHECKIN, craving="12")])  # problems are still found
    refused = ketawatch("import", str(bad), "--db", db_url, "--dry-run", cwd=tmp_path)
    assert refused.returncode == 1 and "checkins.csv:2: craving" in refused.stderr, refused.stderr


def test_a_dry_run_against_an_older_schema_leaves_the_database_as_it_was(db_url, tmp_path):
    """`import --dry-run` on a database at an older schema upgraded it, which an older KetaWatch could then no longer
    open (IT review): SQLite is checked through an upgraded copy, PostgreSQL is refused, and neither is changed."""
    from alembic import command
    from sqlalchemy import text

    from ketawatch.cli import safe_url
    from store.db import alembic_config, make_engine, schema_head, schema_revision

    engine = make_engine(db_url)
    command.upgrade(alembic_config(engine), "0003")
    with engine.begin() as conn:  # a patient only the database holds, whose session the folder brings
        conn.execute(text("INSERT INTO patient (patient_id, indication, sud_history, treatment_start, status, version, "
                          "recorded_at, recorded_by) VALUES ('P1', 'depression', false, '2025-01-06', 'active', 1, "
                          "'2026-11-20 10:00:00+00:00', 'dr')"))
    engine.dispose()
    folder = write_folder(tmp_path / "in", patients=None, sessions=[dict(SESSION, patient_id="P1")], checkins=None)
    result = ketawatch("import", str(folder), "--db", db_url, "--dry-run", cwd=tmp_path)
    if db_url.startswith("sqlite"):  # P1 is found: the copy holds the database's records, it is not an empty stand-in
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("dry run, nothing written: ") and "sessions.csv: 1 new" in result.stdout, result.stdout
        assert (f"is at schema 0003, older than this KetaWatch's {schema_head()}: checked against an upgraded copy of "
                "it; the database itself was not changed") in result.stderr, result.stderr
        assert [p.name for p in tmp_path.iterdir() if ".bak" in p.name] == []  # not even the copy kept before upgrading
    else:
        assert result.returncode == 1 and result.stdout == "", result.stdout
        assert result.stderr.strip().splitlines() == [
            f"dry run refused: {safe_url(db_url)} is at schema 0003 and "
            f"this KetaWatch needs {schema_head()}; a dry run changes nothing, so it does not upgrade the database. "
            "Upgrade it first (README: Upgrading KetaWatch), then run the dry run again; nothing was changed"], result.stderr
    engine = make_engine(db_url)
    assert schema_revision(engine) == "0003"
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM patient")).scalar_one() == 1
    engine.dispose()


@pytest.mark.skipif(not os.environ.get("KETAWATCH_TEST_DATABASE_URL"), reason="needs KETAWATCH_TEST_DATABASE_URL (PostgreSQL)")
def test_a_new_postgresql_database_with_an_extensions_views_is_not_taken_for_another_application(tmp_path):
    """pg_stat_statements' views, which managed services install in every database, were refused as 'tables that
    are not KetaWatch's' (code review). The PostgreSQL server of this suite (and CI) ships the extension."""
    from sqlalchemy import create_engine, text

    from store.db import normalise_url
    from tests.conftest import fresh_database_url

    url, drop = fresh_database_url("postgresql", tmp_path)
    try:
        server = create_engine(normalise_url(url))
        with server.begin() as conn:
            conn.execute(text("CREATE EXTENSION pg_stat_statements"))
        server.dispose()
        result = ketawatch("users", "list", "--db", url, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    finally:
        drop()


@pytest.mark.skipif(not os.environ.get("KETAWATCH_TEST_DATABASE_URL"), reason="needs KETAWATCH_TEST_DATABASE_URL (PostgreSQL)")
def test_flags_on_a_read_only_postgresql_database_gives_no_levels_in_one_line(tmp_path):
    """A read-only standby or role raises other errors than SQLite's OperationalError: 'unexpected error' (code review)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from store.db import normalise_url
    from tests.conftest import fresh_database_url

    url, drop = fresh_database_url("postgresql", tmp_path)
    try:
        assert ketawatch("import", str(write_folder(tmp_path / "in")), "--db", url, cwd=tmp_path).returncode == 0
        server = create_engine(normalise_url(url), isolation_level="AUTOCOMMIT")
        with server.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{make_url(normalise_url(url)).database}" '
                              "SET default_transaction_read_only = on"))
        server.dispose()
        result = ketawatch("flags", "--db", url, cwd=tmp_path)
        assert result.returncode == 1 and result.stdout == "", result.stdout
        (line,) = result.stderr.strip().splitlines()
        assert line.startswith("no levels given: the audit trail, which records every read of the levels, cannot be "
                               "written (cannot execute INSERT in a read-only transaction"), line
    finally:
        drop()


def test_a_database_error_is_named_without_its_message_which_may_quote_patient_data(db_url, tmp_path):
    """'unexpected error: RaiseException: refused row for KW-0001 secret note ...' reached stderr, which cron mail and
    the journal keep (IT review): a database error is given by type and SQL state, its message withheld."""
    from sqlalchemy import text

    engine = open_database(db_url)
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(text("CREATE TRIGGER kw_refuse BEFORE INSERT ON check_in "
                              "BEGIN SELECT RAISE(ABORT, 'refused row for KW-0001: SECRETNOTE'); END"))
        else:
            conn.execute(text("CREATE FUNCTION kw_refuse() RETURNS trigger AS $$ BEGIN "
                              "RAISE EXCEPTION 'refused row for %: SECRETNOTE', NEW.patient_id; END $$ LANGUAGE plpgsql"))
            conn.execute(text("CREATE TRIGGER kw_refuse BEFORE INSERT ON check_in FOR EACH ROW "
                              "EXECUTE FUNCTION kw_refuse()"))
    engine.dispose()
    result = ketawatch("import", str(write_folder(tmp_path / "in")), "--db", db_url, cwd=tmp_path)
    assert result.returncode == 1
    assert "SECRETNOTE" not in result.stderr + result.stdout and "KW-0001" not in result.stderr, result.stderr
    (line,) = [line for line in result.stderr.splitlines() if "unexpected" in line]
    state = "SQLITE_CONSTRAINT_TRIGGER" if db_url.startswith("sqlite") else "P0001"
    error = "IntegrityError" if db_url.startswith("sqlite") else "RaiseException"
    assert line == (f"ketawatch: unexpected database error: {error} ({error}, {state}); the message is withheld, as it "
                    "may quote patient data: the database's own log has it"), line
    assert counts(open_database(db_url))["Patient"] == 0  # the import changed nothing
