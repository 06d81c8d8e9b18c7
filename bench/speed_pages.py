"""Dashboard pages timed as AppTest script runs, warm and right after a write, beside a floor page with the same content and no logic.

The real page is dashboard/app.py, signed in through session state as the tests do. The floor
is a script written here that draws what the real page drew (its title, metrics, choice lists,
tables and the same Plotly figures, captured from the real run) from a pickle, so the
difference between the two is the page's own work. After a write, the floor also re-reads with
bare SQL the rows of the patient written to: the least any page must read to show the change.
"""

from __future__ import annotations

import itertools
import logging
import os
import pickle
import statistics
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
from streamlit import config as streamlit_config
from streamlit.testing.v1 import AppTest

from speed_store import median_seconds
from store.records import add_checkin
from store.settings import get_settings

REPO = Path(__file__).resolve().parents[1]
APP = str(REPO / "dashboard" / "app.py")
TIMEOUT = 300
USER = {"username": "bench-clinician", "display_name": "Bench clinician", "role": "clinician"}
_write_times = itertools.count()
# AppTest outside a server warns about a missing ScriptRunContext on cached calls: noise in the bench's output.
logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").addFilter(
    lambda record: "missing ScriptRunContext" not in record.getMessage())
streamlit_config.set_option("client.showErrorDetails", "full")  # the app hides them from users; a failed run should say why
WRITES_FROM = datetime(2026, 11, 1, 8, 0, tzinfo=timezone.utc)

FLOOR_SCRIPT = '''\
"""Floor page of the speed benchmark: the same content as a KetaWatch page, precomputed, no logic."""
import pickle

import plotly.io as pio
import streamlit as st
from sqlalchemy import create_engine

DATA = {data!r}


@st.cache_resource
def content(path):  # the path is the cache key: every floor script's function looks the same to Streamlit
    with open(path, "rb") as f:
        d = pickle.load(f)
    d["figures"] = [pio.from_json(spec) for spec in d["figures"]]
    return d


@st.cache_resource
def engine(url):
    return create_engine(url)


d = content(DATA)
if d["reread"]:
    conn = engine(d["url"]).raw_connection()
    cur = conn.cursor()
    for sql, params in d["reread"]:
        cur.execute(sql, params)
        cur.fetchall()
    cur.close()
    conn.rollback()
    conn.close()
st.title(d["title"])
for label, value in d["metrics"]:
    st.metric(label, value, border=True)
for i, (label, options) in enumerate(d["selectboxes"]):
    st.selectbox(label, options, index=None, key=f"select_{{i}}")
for i, fig in enumerate(d["figures"]):
    st.plotly_chart(fig, key=f"chart_{{i}}", config={{"displaylogo": False}})
for i, (frame, sparklines) in enumerate(d["tables"]):
    config = {{c: st.column_config.LineChartColumn(y_min=0, y_max=10) for c in sparklines}}
    st.dataframe(frame, hide_index=True, key=f"table_{{i}}", column_config=config)
'''


@dataclass
class PageTimes:
    """Median seconds of one page: warm runs and first runs after a write, each beside its floor."""

    warm: float
    after_write: float
    floor_warm: float
    floor_after_write: float
    charts: int
    figures: list[str]


def use_database(url: str) -> None:
    """Point KetaWatch's settings (read by the dashboard inside AppTest) at `url`."""
    os.environ["KETAWATCH_DATABASE_URL"] = url
    get_settings.cache_clear()


def _checked(at: AppTest, what: str) -> AppTest:
    if at.exception:
        raise SystemExit(f"{what} failed under AppTest: {at.exception[0].message}")
    return at


def _real_page(page: str, patient_id: str | None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["user"] = dict(USER)
    at.session_state["last_activity"] = time.time()
    if patient_id:
        at.query_params["patient"] = patient_id
    if page != "caseload":
        at.switch_page(f"views/{page}.py")
    return _checked(at.run(), f"the {page} page")


def write_one_checkin(engine, patient_id: str) -> None:
    """One clinical write through the store, as the Log check-in page makes it."""
    when = WRITES_FROM + timedelta(minutes=7 * next(_write_times))
    add_checkin(engine, {"patient_id": patient_id, "reported_at": when.isoformat(), "craving": 2}, actor="bench")


def _sparkline_columns(frame) -> list[str]:
    """Columns holding a list per row (drawn as a line chart in the cell)."""
    out = []
    for column in frame.columns:
        values = frame[column].dropna()
        if len(values) and isinstance(values.iloc[0], (list, tuple, np.ndarray)):
            out.append(column)
    return out


def _content(at: AppTest) -> dict:
    """What the real page drew, as plain data for the floor page."""
    return {
        "title": at.title[0].value if at.title else "",
        "metrics": [(m.label, m.value) for m in at.metric],
        "selectboxes": [(s.label, list(s.options)) for s in at.selectbox],
        "figures": [el.proto.spec for el in at.get("plotly_chart")],
        "tables": [(df.value, _sparkline_columns(df.value)) for df in at.dataframe],
    }


def _floor_app(folder: Path, name: str, content: dict, url: str, reread: list | None) -> AppTest:
    data = folder / f"{name}.pickle"
    with data.open("wb") as f:
        pickle.dump({**content, "url": url, "reread": reread}, f)
    script = folder / f"{name}.py"
    script.write_text(FLOOR_SCRIPT.format(data=str(data)), encoding="utf-8")
    return _checked(AppTest.from_file(str(script), default_timeout=TIMEOUT).run(), f"floor page {name}")


def _runs(at: AppTest, repeats: int, what: str) -> float:
    def once():
        _checked(at.run(), what)

    return median_seconds(once, repeats)


def _after_writes(at: AppTest, engine, write_for: str, repeats: int, what: str) -> float:
    times = []
    for _ in range(repeats):
        write_one_checkin(engine, write_for)
        start = time.perf_counter()
        _checked(at.run(), what)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_page(
    page: str, engine, url: str, folder: Path, *, patient_id: str | None, write_for: str, reread: list,
    fast: int, slow: int,
) -> PageTimes:
    """Warm and after-write medians of one dashboard page and of its floor pages."""
    at = _real_page(page, patient_id)  # the first, cold run fills the caches
    content = _content(at)
    if page == "patient" and not content["figures"]:
        raise SystemExit("the patient page drew no charts; nothing to time")
    warm = _runs(at, fast, f"the {page} page")
    after = _after_writes(at, engine, write_for, slow, f"the {page} page")
    floor = _floor_app(folder, f"floor_{page}", content, url, None)
    floor_reread = _floor_app(folder, f"floor_{page}_reread", content, url, reread)
    floor_warm = _runs(floor, fast, f"floor of the {page} page")
    floor_after = _runs(floor_reread, slow, f"floor of the {page} page")
    return PageTimes(warm, after, floor_warm, floor_after, len(content["figures"]), content["figures"])
