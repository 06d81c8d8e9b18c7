"""The dashboard's reads: one shared engine per database, and frames cached under the store's
data version, so a click does not recompute the whole caseload and a write shows on the next run.

Every cached function takes the database URL and `data_version(engine)` as its key: a write
changes the version, so the next run of any page misses the cache and reads fresh records.
"""

from __future__ import annotations

from datetime import date

import pandas as pd
import streamlit as st
from sqlalchemy import Engine

from store import queries
from store.db import open_database
from store.frames import Records
from store.settings import get_settings


@st.cache_resource(show_spinner=False)
def _engine_for(url: str) -> Engine:
    """One migrated engine per database URL for the whole server."""
    return open_database(url)


def engine() -> Engine:
    """The engine of the configured database."""
    return _engine_for(get_settings().database_url)


def url() -> str:
    """The configured database URL (part of every cache key)."""
    return get_settings().database_url


def version() -> tuple[int, ...]:
    """The store's data version now: changes with every clinical write."""
    return tuple(queries.data_version(engine()))


def today() -> date:
    """Today's date in the clinic's time zone (levels are assessed as of today)."""
    return pd.Timestamp.now(tz=get_settings().tz).date()


@st.cache_data(show_spinner=False, max_entries=4)
def _records(db_url: str, data_version: tuple[int, ...]) -> Records:
    return queries.load_records(_engine_for(db_url))


@st.cache_data(show_spinner="Assessing the caseload…", max_entries=4)
def _assessment(db_url: str, data_version: tuple[int, ...], as_of: date) -> pd.DataFrame:
    from ketawatch.risk import assess

    return assess(_records(db_url, data_version), as_of=as_of, tz=get_settings().clinic_timezone)


@st.cache_data(show_spinner=False, max_entries=4)
def _reviews(db_url: str, data_version: tuple[int, ...]) -> pd.DataFrame:
    return queries.alert_reviews_frame(_engine_for(db_url))


@st.cache_data(show_spinner=False, max_entries=4)
def _caseload(db_url: str, data_version: tuple[int, ...], as_of: date) -> pd.DataFrame:
    from ketawatch.caseload import caseload_table

    return caseload_table(
        _records(db_url, data_version),
        _assessment(db_url, data_version, as_of),
        reviews=_reviews(db_url, data_version),
        tz=get_settings().clinic_timezone,
        today=as_of,
    )


@st.cache_data(show_spinner=False, max_entries=32)
def _level_history(db_url: str, data_version: tuple[int, ...], patient_id: str) -> pd.DataFrame:
    from ketawatch.risk import level_history

    records = _records(db_url, data_version).for_patients([patient_id])
    return level_history(records, tz=get_settings().clinic_timezone)


@st.cache_data(show_spinner="Drawing the charts…", max_entries=32)
def _chart_specs(db_url: str, data_version: tuple[int, ...], patient_id: str, date_from: date | None,
                 date_to: date | None) -> list:
    from ketawatch.charts import patient_chart_specs

    records = _records(db_url, data_version).for_patients([patient_id])
    return patient_chart_specs(records, patient_id, tz=get_settings().clinic_timezone, date_from=date_from,
                               date_to=date_to)


def records() -> Records:
    """Every live record (cached until the next write)."""
    return _records(url(), version())


def assessment() -> pd.DataFrame:
    """Every patient's level, since-when and reasons as of today (cached until the next write or day)."""
    return _assessment(url(), version(), today())


def caseload() -> pd.DataFrame:
    """The caseload table of ketawatch.caseload (cached until the next write or day)."""
    return _caseload(url(), version(), today())


def reviews() -> pd.DataFrame:
    """Alert reviews, newest first (cached until the next write)."""
    return _reviews(url(), version())


def level_history(patient_id: str) -> pd.DataFrame:
    """One patient's level changes (cached until the next write)."""
    return _level_history(url(), version(), patient_id)


def chart_specs(patient_id: str, date_from: date | None = None, date_to: date | None = None) -> list:
    """One patient's chart descriptions from ketawatch.charts for a period (cached until the next write)."""
    return _chart_specs(url(), version(), patient_id, date_from, date_to)


def patients() -> pd.DataFrame:
    """Every patient (not voided) with the plan and status."""
    return records().patients


def patient_with_version(patient_id: str) -> dict | None:
    """One patient's current row including its `version`, read fresh for an edit form."""
    frame = queries.patients_frame(engine(), [patient_id], with_tracking=True)
    if frame.empty:
        return None
    return frame.iloc[0].to_dict()
