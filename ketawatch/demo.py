"""Building the demo database: the seed cohort goes in through the real importer, then the demo accounts."""

from __future__ import annotations

import tempfile
from pathlib import Path

from sqlalchemy import Engine, func, select
from sqlmodel import Session

from store.app_settings import DEMO_KEY, set_value
from store.importer import import_folder
from store.models import Patient


def build_demo(engine: Engine) -> str:
    """Fill an empty database with the demo cohort and demo accounts; leave an existing one alone.

    Returns a sentence for the terminal saying what happened.
    """
    from ketawatch.accounts import DEMO_PASSWORD, DEMO_USERNAMES, create_demo_accounts
    from seed_data.cohort import demo_cohort, write_import_folder

    with Session(engine) as db:
        existing = db.execute(select(func.count()).select_from(Patient)).scalar_one()
    if existing:
        return f"Using the existing database ({existing} patients); nothing was added."
    set_value(engine, DEMO_KEY, "yes")
    with tempfile.TemporaryDirectory(prefix="ketawatch-demo-") as folder:
        write_import_folder(demo_cohort(), Path(folder))
        report = import_folder(engine, folder, actor="demo-setup")
    create_demo_accounts(engine)
    return (
        f"Demo database built: {report.summary()}. "
        f"Sign in as {', '.join(DEMO_USERNAMES)} with password {DEMO_PASSWORD}."
    )
