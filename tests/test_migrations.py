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


def test_the_safety_follow_up_actions_migration_keeps_every_review_and_allows_the_new_actions(db_url):
    """0004 rebuilds alert_review on SQLite (a CHECK constraint cannot be altered there): nothing may be lost, and
    the database itself, not only the form, takes a question 9 follow-up's safety actions and refuses others."""
    from alembic import command
    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError

    import pytest

    from store.vocabulary import ALL_REVIEW_ACTIONS, SAFETY_FOLLOW_UP_ACTIONS

    engine = make_engine(db_url)
    command.upgrade(alembic_config(engine), "0003")
    insert = text("INSERT INTO alert_review (patient_id, reviewed_at, reviewed_by, level, reasons, action, note) "
                  "VALUES ('P1', '2026-11-20 10:00:00+00:00', 'dr', 'red', 'craving_high', :action, :note)")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO patient (patient_id, indication, sud_history, treatment_start, status, version, "
                          "recorded_at, recorded_by) VALUES ('P1', 'depression', false, '2026-01-01', 'active', 1, "
                          "'2026-01-01 09:00:00+00:00', 'setup')"))
        conn.execute(insert, {"action": "dose_held", "note": "kept through the rebuild"})
        with pytest.raises(IntegrityError):
            with conn.begin_nested():
                conn.execute(insert, {"action": "safety_plan_made", "note": None})  # not allowed before 0004
    upgrade(engine)
    with engine.begin() as conn:
        rows = conn.execute(text("SELECT patient_id, action, note FROM alert_review")).all()
        assert [tuple(r) for r in rows] == [("P1", "dose_held", "kept through the rebuild")]
        for action in SAFETY_FOLLOW_UP_ACTIONS:
            conn.execute(insert, {"action": action, "note": "n"})
        with pytest.raises(IntegrityError):
            with conn.begin_nested():
                conn.execute(insert, {"action": "made_up", "note": None})
    assert set(SAFETY_FOLLOW_UP_ACTIONS) <= set(ALL_REVIEW_ACTIONS)
    assert inspect(engine).get_indexes("alert_review")[0]["name"] == "ix_review_patient_time"
    assert inspect(engine).get_foreign_keys("alert_review")[0]["referred_table"] == "patient"
    engine.dispose()
