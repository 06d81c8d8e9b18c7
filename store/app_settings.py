"""Per-database facts kept in the `app_setting` table (for example, that this is a demo database)."""

from __future__ import annotations

import secrets

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from store.db import for_writing
from store.models import AppSetting

DEMO_KEY = "demo_database"
PSEUDONYM_KEY = "pseudonym_secret"
#: A new random mark written by every restore: readers that keep results between runs (the dashboard's caches, the
#: live caseload) start again when it changes, since a restored database can repeat the counts of another state.
RESTORE_KEY = "restore_mark"


def get_value(engine: Engine, key: str) -> str | None:
    """The stored value of `key`, or None."""
    with Session(engine) as db:
        row = db.get(AppSetting, key)
        return None if row is None else row.value


def set_value(engine: Engine, key: str, value: str) -> None:
    """Store `value` under `key`, replacing an earlier value (these are settings, not clinical records)."""
    with Session(for_writing(engine)) as db, db.begin():
        row = db.get(AppSetting, key) or AppSetting(key=key, value=value)
        row.value = value
        db.add(row)


def is_demo(engine: Engine) -> bool:
    """True only for a database built by `ketawatch demo`; demo accounts exist only there."""
    return get_value(engine, DEMO_KEY) == "yes"


def database_secret(engine: Engine, key: str = PSEUDONYM_KEY) -> str:
    """A random secret made once per database and kept in it (and so in its backups), never changed."""
    existing = get_value(engine, key)
    if existing:
        return existing
    try:
        with Session(for_writing(engine)) as db, db.begin():
            db.add(AppSetting(key=key, value=secrets.token_hex(32)))
    except IntegrityError:
        pass  # another process made it first: use theirs
    return get_value(engine, key)


def restore_mark(engine: Engine) -> str | None:
    """The database's restore mark (`RESTORE_KEY`): new after every restore, None before any."""
    return get_value(engine, RESTORE_KEY)


def mark_restored(engine: Engine) -> None:
    """Give the database a new restore mark (`RESTORE_KEY`), so that a running dashboard reads it all again."""
    set_value(engine, RESTORE_KEY, secrets.token_hex(8))
