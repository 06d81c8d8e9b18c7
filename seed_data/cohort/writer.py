"""Write a cohort as an import folder (CONTRACT section 2) and its truth table beside it.

The files are what `ketawatch import` reads: UTF-8, a header, yes/no booleans, YYYY-MM-DD dates,
ISO 8601 date-times with their UTC offset, an empty cell for "not recorded", whole numbers
without ".0". Same cohort, same bytes.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from seed_data.cohort.params import Cohort

IMPORT_FILES = ("patients.csv", "sessions.csv", "checkins.csv")


def _cell_text(column: pd.Series) -> pd.Series:
    """One column as the text the import format expects, "" where nothing was recorded."""
    dtype = column.dtype
    if pd.api.types.is_bool_dtype(dtype):
        text = column.map({True: "yes", False: "no"})
    elif isinstance(dtype, pd.DatetimeTZDtype):
        text = column.dt.tz_convert("UTC").dt.strftime("%Y-%m-%dT%H:%M:%S+00:00")
    elif pd.api.types.is_datetime64_dtype(dtype):
        text = column.dt.strftime("%Y-%m-%d")
    elif pd.api.types.is_float_dtype(dtype):
        text = column.astype("string").str.replace(r"\.0$", "", regex=True)
    else:
        text = column.astype("string")
    return text.astype("string").fillna("")


def import_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Every cell of `frame` as the import format's text ("" where nothing was recorded), as a file or a form sends it."""
    return pd.DataFrame({name: _cell_text(frame[name]) for name in frame.columns})


def _write_csv(frame: pd.DataFrame, path: Path) -> int:
    """Write `frame` in the import format; returns the number of data rows."""
    text = import_text(frame)
    text.to_csv(path, index=False, encoding="utf-8", lineterminator="\n")
    return len(text)


def write_import_folder(cohort: Cohort, folder: Path) -> dict[str, int]:
    """Write patients.csv, sessions.csv and checkins.csv into `folder`; returns rows per file name."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    frames = (cohort.patients, cohort.sessions, cohort.checkins)
    return {name: _write_csv(frame, folder / name) for name, frame in zip(IMPORT_FILES, frames)}


def write_truth(cohort: Cohort, path: Path) -> int:
    """Write the truth table (archetype, dependence onset and midpoint) as CSV, kept out of any import folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return _write_csv(cohort.truth, path)
