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


def _edges(rule) -> tuple[list[float], list[float]]:
    """Values just inside and just outside a rule's range (an int rule steps by 1, a number by a hundredth)."""
    step = 1 if rule.kind == "int" else 0.01
    inside, outside = [], []
    if rule.low is not None:
        (outside if rule.low_exclusive else inside).append(rule.low)
        (inside if rule.low_exclusive else outside).append(rule.low + step if rule.low_exclusive else rule.low - step)
    if rule.high is not None:
        inside.append(rule.high)
        outside.append(rule.high + step)
    return inside, outside


def test_the_database_refuses_exactly_what_the_validator_refuses_at_every_range_edge(engine):
    """The database's CHECK constraints are written out in the migrations, which must never change once released,
    so they repeat the validator's ranges (store/validation.py, the one place the rules live): this holds the two
    together, edge by edge, on both databases, so a range changed in one place and not the other fails here."""
    from datetime import date, datetime, timezone

    from sqlalchemy.exc import IntegrityError

    from store.models import CheckIn, InfusionSession, Patient
    from store.validation import CHECKIN_RULES, PATIENT_RULES, SESSION_RULES

    made = {"version": 1, "recorded_at": datetime(2026, 11, 20, tzinfo=timezone.utc), "recorded_by": "dr"}
    patient = {"patient_id": "P1", "indication": "depression", "sud_history": False,
               "treatment_start": date(2026, 1, 5), "status": "active", **made}
    with engine.begin() as conn:
        conn.execute(Patient.__table__.insert(), dict(patient, patient_id="P0"))
    rows = {
        Patient: (PATIENT_RULES, patient),
        InfusionSession: (SESSION_RULES, {"patient_id": "P0", "session_at": datetime(2026, 2, 1, tzinfo=timezone.utc),
                                          "route": "iv", "dose_mg": 35.0, **made}),
        CheckIn: (CHECKIN_RULES, {"patient_id": "P0", "reported_at": datetime(2026, 2, 1, tzinfo=timezone.utc),
                                  "craving": 1, **made}),
    }

    def stored(table, row) -> bool:
        with engine.connect() as conn:
            transaction = conn.begin()
            try:
                conn.execute(table.__table__.insert(), row)
                return True
            except IntegrityError:
                return False
            finally:
                transaction.rollback()

    checked, wrong = 0, []
    for table, (rules, base) in rows.items():
        for rule in rules.values():
            if rule.kind not in ("int", "number") or rule.high_is_current_year:
                continue
            inside, outside = _edges(rule)
            for value, expected in [(v, True) for v in inside] + [(v, False) for v in outside]:
                row = dict(base, **{rule.name: value})
                if rule.name.startswith("sds_"):  # an SDS is all five items or none (its own CHECK)
                    row.update({f"sds_{i}": value for i in range(1, 6)})
                checked += 1
                if stored(table, row) != expected:
                    wrong.append(f"{table.__tablename__}.{rule.name} = {value}: "
                                 f"{'refused' if expected else 'stored'} by the database, the validator says otherwise")
    assert wrong == []
    assert checked >= 80  # every ranged column of the three tables was tried


def test_the_planned_mg_migration_keeps_every_record_both_ways_and_the_database_checks_its_range(db_url):
    """0006 adds the planned mg of fixed-dose routes. Its downgrade first rebuilt `patient` on SQLite, which the
    foreign keys of the records refused once there were any (code review): up and down, nothing may be lost."""
    from alembic import command
    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError

    import pytest

    engine = make_engine(db_url)
    command.upgrade(alembic_config(engine), "0005")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO patient (patient_id, indication, sud_history, treatment_start, status, version, "
                          "recorded_at, recorded_by) VALUES ('P1', 'depression', false, '2026-01-01', 'active', 1, "
                          "'2026-11-20 10:00:00+00:00', 'dr')"))
        conn.execute(text("INSERT INTO check_in (patient_id, reported_at, craving, version, recorded_at, recorded_by) "
                          "VALUES ('P1', '2026-02-01 10:00:00+00:00', 3, 1, '2026-11-20 10:00:00+00:00', 'dr')"))
    count = "SELECT (SELECT count(*) FROM patient) + (SELECT count(*) FROM check_in)"
    command.upgrade(alembic_config(engine), "0006")
    with engine.begin() as conn:
        assert conn.execute(text(count)).scalar_one() == 2
        conn.execute(text("UPDATE patient SET planned_dose_mg = 84 WHERE patient_id = 'P1'"))
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(text("UPDATE patient SET planned_dose_mg = 2000 WHERE patient_id = 'P1'"))
    command.downgrade(alembic_config(engine), "0005")
    with engine.connect() as conn:
        assert conn.execute(text(count)).scalar_one() == 2
    assert "planned_dose_mg" not in {c["name"] for c in inspect(engine).get_columns("patient")}
    command.upgrade(alembic_config(engine), "head")
    engine.dispose()
