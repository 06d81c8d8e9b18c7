"""The dashboard's reads: one shared engine per database, and frames cached under the store's
data version, so a click does not recompute the whole caseload and a write shows on the next run.

Every cached frame is keyed by the database URL and the store's data version (`version`): a write
changes the version, so the next run of any page misses the cache and reads fresh records.
The patient page reads only its patient's rows (`patient_records`, `patient_level`), so its cost
does not grow with the caseload; the caseload-wide pages share one `LiveCaseload`, which after
a write recomputes only the patients whose records changed.
"""

from __future__ import annotations

import threading
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING

import pandas as pd
import streamlit as st
from sqlalchemy import Engine, event

from store import queries
from store.db import open_database
from store.frames import Records
from store.settings import get_settings

if TYPE_CHECKING:
    from ketawatch.live_caseload import CaseloadNow, LiveCaseload


class _Commits:
    """How many transactions this server has committed on one engine (a change marker for `version`)."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()  # sessions commit from their own threads; no increment may be lost

    def bump(self, _connection) -> None:
        with self._lock:
            self.count += 1


@st.cache_resource(show_spinner=False)
def _commits_for(url: str) -> _Commits:
    return _Commits()


@st.cache_resource(show_spinner=False)
def _engine_for(url: str) -> Engine:
    """One migrated engine per database URL for the whole server, counting its commits."""
    engine = open_database(url)
    event.listen(engine, "commit", _commits_for(url).bump)
    return engine


def engine() -> Engine:
    """The engine of the configured database."""
    return _engine_for(get_settings().database_url)


def url() -> str:
    """The configured database URL (part of every cache key)."""
    return get_settings().database_url


_RUN_KEY, _VERSION_KEY = "_kw_run", "_kw_version"


def new_run() -> None:
    """Mark the start of a script run (app.py calls this first): `version` is read once per run."""
    st.session_state[_RUN_KEY] = object()


def version() -> tuple[int, ...]:
    """The store's data version and the rules in force: changes with every clinical write, and with an edit of the
    clinic's rules file (read again when it changes), so no page keeps levels from the rules before.

    Read from the database once per script run (counting rows grows with the caseload, and a page
    asks for many cached frames), and again whenever this server has committed since, so a page
    that writes and then reads sees its own write. Widget callbacks run before app.py marks the
    new run, so they see the version of the previous run (at most one run old).
    """
    run, commits = st.session_state.get(_RUN_KEY), _commits_for(url()).count
    memo = st.session_state.get(_VERSION_KEY)
    if run is not None and memo is not None and memo[0] is run and memo[1] == commits:
        return memo[2]
    from ketawatch.risk import load_rules

    current = (*queries.data_version(engine()), hash(load_rules()))
    st.session_state[_VERSION_KEY] = (run, commits, current)
    return current


def today() -> date:
    """Today's date in the clinic's time zone (levels are assessed as of today)."""
    return pd.Timestamp.now(tz=get_settings().tz).date()


@st.cache_resource(show_spinner=False)
def _live_caseload(db_url: str) -> "LiveCaseload":
    from ketawatch.live_caseload import LiveCaseload

    return LiveCaseload(_engine_for(db_url), get_settings().clinic_timezone, get_settings().review_again_days)


@st.cache_resource(show_spinner=False, max_entries=4)
def _caseload_now(db_url: str, data_version: tuple[int, ...], as_of: date) -> "CaseloadNow":
    # Kept as shared objects (not pickled copies); the public functions below hand out copies.
    live = _live_caseload(db_url)
    with st.spinner("Assessing the caseload…"):
        return live.refresh(as_of)


@st.cache_data(show_spinner=False, ttl=60, max_entries=4)
def _staff_names(db_url: str) -> dict[str, str]:
    from ketawatch.accounts import staff_names

    return staff_names(_engine_for(db_url))


@st.cache_data(show_spinner=False, max_entries=4)
def _reviews(db_url: str, data_version: tuple[int, ...]) -> pd.DataFrame:
    return queries.alert_reviews_frame(_engine_for(db_url))


@st.cache_data(show_spinner=False, max_entries=4)
def _safety_answers(db_url: str, data_version: tuple[int, ...], day: date) -> pd.DataFrame:
    from ketawatch.safety_answers import in_view

    return in_view(_engine_for(db_url), now=datetime.now(timezone.utc))


@st.cache_data(show_spinner=False, max_entries=4)
def _patients(db_url: str, data_version: tuple[int, ...]) -> pd.DataFrame:
    return queries.patients_frame(_engine_for(db_url))


@st.cache_data(show_spinner=False, max_entries=32)
def _patient_records(db_url: str, data_version: tuple[int, ...], patient_id: str) -> Records:
    return queries.load_records(_engine_for(db_url), [patient_id])


@st.cache_data(show_spinner=False, max_entries=32)
def _patient_level(db_url: str, data_version: tuple[int, ...], patient_id: str, as_of: date) -> dict:
    from ketawatch.risk import assess, seen_not_counted

    # The engine assesses each patient from their own records alone, so this equals their caseload row.
    records, tz = _patient_records(db_url, data_version, patient_id), get_settings().clinic_timezone
    levels = assess(records, as_of=as_of, tz=tz)
    mine = levels[levels["patient_id"] == patient_id]
    found = mine.iloc[0].to_dict() if len(mine) else {"patient_id": patient_id, "as_of": as_of, "level": None, "since": None,
                                                      "reasons": []}
    return {**found, "not_counted": seen_not_counted(records, patient_id, as_of=as_of, tz=tz)}


@st.cache_data(show_spinner=False, max_entries=32)
def _shown_then(db_url: str, data_version: tuple[int, ...], patient_id: str, as_of: date) -> pd.DataFrame:
    from ketawatch.risk import load_rules
    from ketawatch.risk.as_seen import shown_then
    from store.known_then import record_timeline

    timeline = record_timeline(_engine_for(db_url), [patient_id])
    return shown_then(timeline, rules=load_rules(), tz=get_settings().clinic_timezone, until=as_of)


@st.cache_data(show_spinner=False, max_entries=32)
def _patient_reviews(db_url: str, data_version: tuple[int, ...], patient_id: str) -> pd.DataFrame:
    return queries.alert_reviews_frame(_engine_for(db_url), [patient_id])


@st.cache_data(show_spinner=False, max_entries=32)
def _changed_records(db_url: str, data_version: tuple[int, ...], patient_id: str, staff: tuple[tuple[str, str], ...]) -> list:
    from dashboard.amend import changed_records

    return changed_records(_engine_for(db_url), patient_id, dict(staff))


@st.cache_data(show_spinner=False, max_entries=64)
def _amended_versions(db_url: str, data_version: tuple[int, ...], patient_id: str, record_type: str) -> dict[int, int]:
    return queries.amended_versions(_engine_for(db_url), record_type, patient_id)


@st.cache_resource(show_spinner=False, max_entries=32)
def _figures(db_url: str, data_version: tuple[int, ...], patient_id: str, date_from: date | None,
             date_to: date | None) -> list:
    from dashboard.plotly_charts import figure

    # Kept as objects, not pickled copies: building a figure validates every trace, which costs
    # more than drawing it. Pages must not change them (st.plotly_chart copies before it draws).
    return [(spec, None if spec.is_empty else figure(spec))
            for spec in _chart_specs(db_url, data_version, patient_id, date_from, date_to)]


@st.cache_data(show_spinner="Drawing the charts…", max_entries=32)
def _chart_specs(db_url: str, data_version: tuple[int, ...], patient_id: str, date_from: date | None,
                 date_to: date | None) -> list:
    from ketawatch.charts import patient_chart_specs

    records = _patient_records(db_url, data_version, patient_id)
    return patient_chart_specs(records, patient_id, tz=get_settings().clinic_timezone, date_from=date_from,
                               date_to=date_to)


def assessment() -> pd.DataFrame:
    """Every patient's level, since-when and reasons as of today (recomputed for changed patients after a write)."""
    return _caseload_now(url(), version(), today()).assessment.copy()


def caseload() -> pd.DataFrame:
    """The caseload table of ketawatch.caseload (recomputed for changed patients after a write)."""
    return _caseload_now(url(), version(), today()).table.copy()


def staff_names() -> dict[str, str]:
    """Username -> full name of every account; read again each minute, since an account change is not a clinical write."""
    return _staff_names(url())


def reviews() -> pd.DataFrame:
    """Alert reviews, newest first (cached until the next write)."""
    return _reviews(url(), version())


def safety_answers() -> pd.DataFrame:
    """PHQ-9 question 9 answers above 'not at all' still waiting for a follow-up, however old, and those followed up
    in the last two weeks (ketawatch.safety_answers.in_view); who followed up as colleagues know them."""
    from dashboard.ui import staff_column

    answers = _safety_answers(url(), version(), today())
    return answers.assign(followed_up_by=staff_column(answers["followed_up_by"], staff_names()))


def patient_records(patient_id: str) -> Records:
    """One patient's live records, read alone (cached until the next write)."""
    return _patient_records(url(), version(), patient_id)


def patient_level(patient_id: str) -> dict:
    """One patient's level as of today: `level`, `since` and `reasons`, as in their caseload row, and what was seen
    but `not_counted`."""
    return _patient_level(url(), version(), patient_id, today())


def shown_then(patient_id: str) -> pd.DataFrame:
    """One patient's level as it was shown at the end of each day their stored records changed, beside today's replay
    of that day (ketawatch.risk.as_seen; cached until the next write)."""
    return _shown_then(url(), version(), patient_id, today())


def patient_reviews(patient_id: str) -> pd.DataFrame:
    """One patient's alert reviews, newest first (cached until the next write)."""
    return _patient_reviews(url(), version(), patient_id)


def amended_versions(patient_id: str, record_type: str) -> dict[int, int]:
    """The version of each of one patient's amended sessions or check-ins, by id (cached until the next write)."""
    return _amended_versions(url(), version(), patient_id, record_type)


def changed_records(patient_id: str) -> list:
    """One patient's amended and voided records with their version tables (cached until the next write)."""
    # keyed by the staff names too: a renamed colleague showed their old name until the next clinical write
    return _changed_records(url(), version(), patient_id, tuple(sorted(staff_names().items())))


def chart_figures(patient_id: str, date_from: date | None = None, date_to: date | None = None) -> list:
    """One patient's charts for a period as (description, Plotly figure or None if empty), built once per write."""
    return _figures(url(), version(), patient_id, date_from, date_to)


def patients() -> pd.DataFrame:
    """Every patient (not voided) with the plan and status (read without their sessions and check-ins)."""
    return _patients(url(), version())


def patient_with_version(patient_id: str) -> dict | None:
    """One patient's current row including its `version`, read fresh for an edit form."""
    frame = queries.patients_frame(engine(), [patient_id], with_tracking=True)
    if frame.empty:
        return None
    return frame.iloc[0].to_dict()
