"""Shared fixtures: a fresh, migrated database on SQLite always and on PostgreSQL when configured."""

from __future__ import annotations

import os
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from store.db import forget_engines, make_engine, normalise_url, upgrade
from store.settings import get_settings
from store.validation import Validator

#: Set by .ci/run when the PostgreSQL server answers, e.g. postgresql+psycopg://postgres@127.0.0.1:5432/postgres
PG_URL = os.environ.get("KETAWATCH_TEST_DATABASE_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])

#: A fixed "now" for validation, so tests about "not in the future" do not depend on the day they run.
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)
TZ = "Europe/London"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _isolated_settings(monkeypatch, tmp_path):
    """No test reads the developer's environment or writes outside its own folder."""
    for name in list(os.environ):
        if name.startswith("KETAWATCH_") and name != "KETAWATCH_TEST_DATABASE_URL" and name != "KETAWATCH_SEEDS_DIR":
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KETAWATCH_CLINIC_TIMEZONE", TZ)
    monkeypatch.setenv("KETAWATCH_DATABASE_URL", f"sqlite:///{tmp_path / 'default.db'}")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
    forget_engines()


def fresh_database_url(backend: str, tmp_path: Path) -> tuple[str, callable]:
    """A URL of a new, empty database of `backend`, and a function that removes it."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'ketawatch-test.db'}", lambda: None
    admin_url = normalise_url(PG_URL)
    name = f"kw_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)

    def drop() -> None:
        forget_engines()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return url, drop


@pytest.fixture(params=BACKENDS)
def db_url(request, tmp_path):
    """URL of a fresh, empty (unmigrated) database, once per backend."""
    url, drop = fresh_database_url(request.param, tmp_path)
    yield url
    drop()


@pytest.fixture
def engine(db_url):
    """A migrated engine on a fresh database, once per backend."""
    eng = make_engine(db_url)
    upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def sqlite_engine(tmp_path):
    """A migrated engine on a fresh SQLite file, for tests that need only one backend."""
    eng = make_engine(f"sqlite:///{tmp_path / 'one.db'}")
    upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def validator():
    """Validation with a fixed clock and the clinic's time zone."""
    return Validator(now=NOW, tz=TZ)
