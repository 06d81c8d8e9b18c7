"""Per-database facts kept in the `app_setting` table (for example, that this is a demo database)."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlmodel import Session

from store.db import for_writing
from store.models import AppSetting

DEMO_KEY = "demo_database"


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
