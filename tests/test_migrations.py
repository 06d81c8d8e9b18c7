"""Alembic is the only way the schema is made: an empty database upgrades to head, and models and migrations agree."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlmodel import SQLModel

import store.models  # noqa: F401
from store.db import alembic_config, make_engine, open_database, upgrade


def test_empty_database_upgrades_to_head(db_url):
    engine = make_engine(db_url)
    upgrade(engine)
    head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    with engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == head
    tables = set(inspect(engine).get_table_names())
    assert set(SQLModel.metadata.tables) <= tables
    engine.dispose()


def test_models_and_migrations_agree(db_url):
    engine = make_engine(db_url)
    upgrade(engine)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, SQLModel.metadata)
    assert diff == [], diff
    engine.dispose()


def test_opening_twice_is_harmless(db_url):
    first = open_database(db_url)
    second = open_database(db_url)
    assert first is second
    upgrade(first)  # already at head: nothing to do, no error
